"""The card tools page driven as a technician would: write a set card, carry it to two meters, write
and read a check card, import its data; clerks and auditors may look but not write.

Runs offscreen on both backends and leaves a screenshot in the artifacts folder for a reviewer.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from PyQt6.QtCore import Qt
from sqlalchemy import select

from dbmis_core.services import cards, vending
from dbmis_core.services.auth import create_operator
from dbmis_core.storage.models import MeterReturnRow, ServiceCardRow
from dbmis_qt.window import MainWindow
from dbmis_sim.meter import MeterSimulator
from dbmis_sim.reader import SimReader, reader_folder

M1, M2 = "000020240001", "000020240002"
WAIT_MS = 20_000


@pytest.fixture
def people(demo):
    with demo.uow() as uow:
        create_operator(uow, "tom", "Tom Technician", "tech-pass-1", "technician")
        create_operator(uow, "ann", "Ann Auditor", "audit-pass-1", "auditor")
        uow.commit()
    return {"tom": demo.login("tom", "tech-pass-1"), "ann": demo.login("ann", "audit-pass-1"),
            "clerk": demo.login("clerk", "clerk-demo-1")}


def meter(app, meter_no: str) -> MeterSimulator:
    path = app.config.home / "meters" / f"{meter_no}.json"
    if path.exists():
        return MeterSimulator.load(path)
    return MeterSimulator.provision(path, meter_no, app.keys.meter_key(meter_no),
                                    service_key=app.keys.service_key())


def hand(app) -> SimReader:
    """The technician's hand at the simulated reader (the window owns the reader itself)."""
    return SimReader(reader_folder(app.config.driver_settings("sim")))


def insert_into(app, meter_no: str):
    sim = meter(app, meter_no)
    with hand(app).connect() as conn:
        return sim.insert(conn, app.card_format)


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def open_page(qtbot, app, operator):
    window = MainWindow(app, operator)
    qtbot.addWidget(window)
    window.show()
    window.page_actions["card-tools"].trigger()
    page = window.stack.currentWidget()
    assert page.objectName() == "page-card-tools"
    qtbot.waitUntil(lambda: not page.busy, timeout=WAIT_MS)  # the log loads on opening
    return window, page


def choose(qtbot, page, card_type: str, meter_no: str = "", **params) -> None:
    page.tabs.setCurrentIndex(1)
    page.type_combo.setCurrentIndex(page.type_combo.findData(card_type))
    page.meter_edit.clear()
    qtbot.keyClicks(page.meter_edit, meter_no)
    for name, value in params.items():
        edit = page.param_edits[card_type][name]
        edit.clear()
        qtbot.keyClicks(edit, value)


def write(qtbot, page, card_type: str, meter_no: str = "", **params):
    before = page.last_written
    choose(qtbot, page, card_type, meter_no, **params)
    click(qtbot, page.write_button)
    qtbot.waitUntil(lambda: page.last_written is not before and not page.busy, timeout=WAIT_MS)
    return page.last_written


def test_technician_writes_a_set_card_and_reads_a_check_card(demo, people, qtbot, artifacts_dir,
                                                             backend):
    app, tom, clerk = demo, people["tom"], people["clerk"]
    hand(app).new_card()
    cards.issue_user_card(app, clerk, "100001")
    vending.vend(app, clerk, "100001", "56.00")
    assert insert_into(app, M1).applied == Decimal(100)
    meter(app, M1).run(12, Decimal("2.5"))

    window, page = open_page(qtbot, app, tom)
    assert window.page_actions["card-tools"] in window.module_menus[
        "Card reading and writing"].actions()
    assert page.write_button.isEnabled() and page.import_button.isEnabled()

    # -- a set card for every meter ---------------------------------------------------------------
    hand(app).new_card()
    written = write(qtbot, page, "set", alarm1="15", alarm2="5", hoarding_limit="400",
                    power_limit_w="4400")
    assert written.targets == "any" and written.parameters["version"] == 1
    assert page.write_result.text().startswith(f"Set card {written.uid} written for any meter")
    assert page.error_label.text() == ""
    qtbot.waitUntil(lambda: page.log_table.rowCount() == 1, timeout=WAIT_MS)
    assert [page.log_table.item(0, c).text() for c in (1, 2, 3, 5)] == [
        "set", written.uid, "tom", "any"]
    with app.uow() as uow:
        [row] = uow.session.scalars(select(ServiceCardRow))
    assert (row.uid, row.operator, row.parameters["hoarding_limit"]) == (written.uid, "tom",
                                                                         "400.00")
    for m in (M1, M2):
        assert insert_into(app, m).message == "parameter version 1 applied"
    page.tabs.setCurrentIndex(0)
    click(qtbot, page.read_button)
    qtbot.waitUntil(lambda: page.value_at("answers") == "2 items", timeout=WAIT_MS)
    assert page.value_at("command", "params", "hoarding limit") == "400.00"
    assert page.value_at("areas", "command") == "valid"

    # -- a check card for meter 1, read through the window ------------------------------------------
    hand(app).new_card()
    check = write(qtbot, page, "check", M1)
    assert check.targets == [M1]
    assert insert_into(app, M1).message == "meter data copied onto the check card"
    page.tabs.setCurrentIndex(0)
    click(qtbot, page.read_button)
    qtbot.waitUntil(lambda: page.value_at("answer", "returned", "remaining") == "70.00",
                    timeout=WAIT_MS)
    assert page.value_at("answer", "returned", "cumulative consumed") == "30.00"
    assert page.value_at("answer", "params", "version") == "1"
    assert page.value_at("answer", "params", "power limit w") == "4400"
    assert page.value_at("areas", "answer") == "valid" and page.value_at("command", "card type") == "check"
    assert page.value_at("database", "written by") == "tom"
    assert f"Check card</b> {check.uid} for meter {M1}" in page.summary_label.text()
    assert page.warnings_label.text() == ""
    name = "qt-cardtools.png" if backend == "sqlite" else f"qt-cardtools-{backend}.png"
    path = Path(artifacts_dir) / name
    assert window.grab().save(str(path)) and path.stat().st_size > 10_000

    # -- its data goes into the customer's history, once -------------------------------------------
    page.tabs.setCurrentIndex(2)
    click(qtbot, page.import_button)
    qtbot.waitUntil(lambda: page.last_import is not None and not page.busy, timeout=WAIT_MS)
    assert f"Imported: meter {M1} (account 100001)" in page.import_result.toPlainText()
    first = page.last_import
    click(qtbot, page.import_button)
    qtbot.waitUntil(lambda: page.last_import is not first, timeout=WAIT_MS)
    assert "Already imported" in page.import_result.toPlainText()
    with app.uow() as uow:
        rows = list(uow.session.scalars(select(MeterReturnRow)))
    assert [(r.source, r.cumulative_consumed) for r in rows] == [("check", Decimal(30))]


@pytest.mark.parametrize("who", ["clerk", "ann"])
def test_clerks_and_auditors_read_but_do_not_write(demo, people, qtbot, who):
    _window, page = open_page(qtbot, demo, people[who])
    assert page.read_button.isEnabled()
    assert not page.write_button.isEnabled() and not page.import_button.isEnabled()
    assert page.findChild(type(page.summary_label), "write_denied").text().startswith("Your role")
    hand(demo).new_card()
    click(qtbot, page.read_button)
    qtbot.waitUntil(lambda: page.description is not None, timeout=WAIT_MS)
    assert page.description["kind"] == "blank" and "Blank card" in page.summary_label.text()


def test_a_refused_card_shows_the_reason_and_writes_nothing(demo, people, qtbot):
    _window, page = open_page(qtbot, demo, people["tom"])
    hand(demo).new_card()
    choose(qtbot, page, "check")
    assert page.meter_edit.placeholderText() == "meter number (required)"
    click(qtbot, page.write_button)
    qtbot.waitUntil(lambda: page.error_label.text() != "", timeout=WAIT_MS)
    assert page.error_label.text() == "a check card is for one meter; give its meter number"
    choose(qtbot, page, "test", uses="12")
    assert page.meter_edit.placeholderText() == "empty: any meter of the utility"
    click(qtbot, page.write_button)
    qtbot.waitUntil(lambda: "from 1 to 8" in page.error_label.text(), timeout=WAIT_MS)
    assert page.last_written is None and page.log_table.rowCount() == 0
    assert page.write_button.isEnabled()


def test_cardtools_plugin_loads_without_pyqt6():
    code = ("import sys; sys.modules['PyQt6'] = None\n"
            "from dbmis_core.plugins import DbmisPluginManager\n"
            "pm = DbmisPluginManager(); pm.load_entry_points()\n"
            "assert pm.infos['cardtools'].status == 'loaded', pm.infos['cardtools']\n"
            "[page] = [p for p in pm.qt_pages() if p.name == 'card-tools']\n"
            "print(page.title, '|', page.menu, '|', page.permission)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Card tools | Card reading and writing | read_card"
