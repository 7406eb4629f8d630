"""The "New service" page driven as a clerk would: two applications in batch mode (settings kept,
applicant cleared), one of them through every step to an opened account with its card, the other
cancelled; technicians do not see the page.

Runs offscreen on both backends and leaves a screenshot in the artifacts folder for a reviewer.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from pathlib import Path

import pytest
from PyQt6.QtCore import Qt
from sqlalchemy import select

from dbmis_core.services import applications as A
from dbmis_core.services.auth import create_operator
from dbmis_core.storage.models import CardRow, CustomerRow
from dbmis_qt.window import MainWindow
from dbmis_sim.reader import SimReader, reader_folder

WAIT_MS = 20_000


def hand(app) -> SimReader:
    """The clerk's hand at the simulated reader (the window owns the reader itself)."""
    return SimReader(reader_folder(app.config.driver_settings("sim")))


def click(qtbot, widget) -> None:
    assert widget.isEnabled(), widget.objectName()
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def type_into(qtbot, edit, text: str) -> None:
    edit.clear()
    qtbot.keyClicks(edit, text)


def pick(combo, data) -> None:
    index = combo.findData(data)
    assert index >= 0, (combo.objectName(), data)
    combo.setCurrentIndex(index)


def idle(qtbot, page) -> None:
    qtbot.waitUntil(lambda: not page.busy, timeout=WAIT_MS)


def open_page(qtbot, app, operator):
    window = MainWindow(app, operator)
    qtbot.addWidget(window)
    window.show()
    window.page_actions["applications"].trigger()
    page = window.stack.currentWidget()
    assert page.objectName() == "page-applications"
    idle(qtbot, page)
    return window, page


def submit(qtbot, page, name: str, address: str, amps: str = "") -> A.Application:
    type_into(qtbot, page.name_edit, name)
    type_into(qtbot, page.address_edit, address)
    type_into(qtbot, page.amps_edit, amps)
    before = page.last_submitted
    click(qtbot, page.submit_button)
    qtbot.waitUntil(lambda: page.last_submitted is not before, timeout=WAIT_MS)
    idle(qtbot, page)
    assert page.error_label.text() == ""
    return page.last_submitted[0]


def step(qtbot, page, expected_state: str, notes: str = "") -> None:
    type_into(qtbot, page.notes_edit, notes)
    click(qtbot, page.next_button)
    qtbot.waitUntil(lambda: page.current is not None and page.current.state == expected_state
                    and not page.busy, timeout=WAIT_MS)
    assert page.error_label.text() == ""


def test_clerk_takes_an_application_to_an_opened_account(demo, qtbot, artifacts_dir, backend,
                                                         tmp_path):
    app = demo
    clerk = app.login("clerk", "clerk-demo-1")
    window, page = open_page(qtbot, app, clerk)
    assert window.page_actions["applications"] in window.module_menus["Daily business"].actions()

    # -- batch mode: the service settings stay, the applicant is cleared --------------------------
    page.tabs.setCurrentIndex(1)
    pick(page.model_combo, "DDSY-1P")
    pick(page.capacity_combo, "trip")
    pick(page.tariff_combo, "flat")
    pick(page.district_combo, "R1-L1-T1")
    type_into(qtbot, page.batch_edit, "ELM-2026")
    page.batch_check.setChecked(True)
    first = submit(qtbot, page, "Rosa Park", "5 Elm Street", "32")
    assert (page.name_edit.text(), page.address_edit.text(), page.amps_edit.text()) == ("", "", "")
    assert [c.currentData() for c in (page.model_combo, page.capacity_combo, page.tariff_combo,
                                      page.district_combo)] == ["DDSY-1P", "trip", "flat",
                                                                "R1-L1-T1"]
    assert page.batch_edit.text() == "ELM-2026"
    if backend == "sqlite":
        assert window.grab().save(str(Path(artifacts_dir) / "qt-applications-batch.png"))
    second = submit(qtbot, page, "Tom Hill", "7 Elm Street")
    for a in (first, second):
        assert (a.model_code, a.capacity_mode, a.tariff, a.district_code, a.batch, a.state) == (
            "DDSY-1P", "trip", "flat", "R1-L1-T1", "ELM-2026", "received")
    assert page.submit_result.text().startswith(f"Application {second.number} for Tom Hill")
    # a refused submission shows why and keeps what was typed
    type_into(qtbot, page.name_edit, "Bad Amps")
    type_into(qtbot, page.amps_edit, "lots")
    click(qtbot, page.submit_button)
    qtbot.waitUntil(lambda: page.error_label.text() != "", timeout=WAIT_MS)
    assert "requested amps is not a number" in page.error_label.text()
    assert page.name_edit.text() == "Bad Amps"
    # without batch mode everything is cleared after submitting
    page.batch_check.setChecked(False)
    type_into(qtbot, page.amps_edit, "")
    third = submit(qtbot, page, "Una Once", "1 Oak Lane")
    assert third.model_code == "DDSY-1P" and page.model_combo.currentData() is None
    assert page.batch_edit.text() == ""

    # -- the list by state, one application through every step -----------------------------------
    page.tabs.setCurrentIndex(0)
    pick(page.state_combo, "received")
    qtbot.waitUntil(lambda: page.table.rowCount() == 3 and not page.busy, timeout=WAIT_MS)
    row = [page.table.item(r, 0).text() for r in range(3)].index(first.number)
    page.table.selectRow(row)
    qtbot.waitUntil(lambda: page.current is not None and page.current.number == first.number
                    and not page.busy, timeout=WAIT_MS)
    assert page.next_button.text() == "Site survey done"
    pick(page.state_combo, None)
    idle(qtbot, page)
    step(qtbot, page, "surveyed", "pole 20 m away")
    step(qtbot, page, "approved")
    assert page.next_button.text() == "Assign meter from store" and page.meter_edit.isEnabled()
    type_into(qtbot, page.meter_edit, "000020249003")
    step(qtbot, page, "meter_assigned")
    assert page.current.meter_no == "000020249003"
    step(qtbot, page, "installed", "seal 0042")
    assert page.next_button.text() == "Open account and issue card"
    blank = hand(app).new_card()
    step(qtbot, page, "opened")
    opened = page.current
    assert (opened.account_no, opened.card_uid) == ("100007", blank)
    assert page.result_label.text().startswith(f"Application {first.number} is opened (account "
                                               "100007")
    step(qtbot, page, "completed", "file closed")
    assert not page.next_button.isEnabled() and not page.cancel_button.isEnabled()
    assert page.steps_table.rowCount() == 7
    assert [page.steps_table.item(r, 1).text() for r in range(7)] == [
        "received", "surveyed", "approved", "meter assigned", "installed", "opened", "completed"]
    assert page.steps_table.item(1, 3).text() == "pole 20 m away"
    with app.uow() as uow:
        c = uow.session.scalar(select(CustomerRow).where(CustomerRow.account_no == "100007"))
        assert (c.name, c.tariff, c.capacity_mode) == ("Rosa Park", "flat", "trip")
        assert uow.session.scalar(select(CardRow.uid).where(CardRow.customer_id == c.id)) == blank

    click(qtbot, page.form_button)
    qtbot.waitUntil(lambda: page.form_view.isVisible() and not page.busy, timeout=WAIT_MS)
    form = page.form_view.toPlainText()
    assert "Rosa Park" in form and "pole 20 m away" in form and blank in form
    pdf = tmp_path / "form.pdf"
    page.save_pdf(pdf)
    idle(qtbot, page)
    assert pdf.read_bytes().startswith(b"%PDF-")
    if backend == "sqlite":
        assert window.grab().save(str(Path(artifacts_dir) / "qt-applications.png"))

    # -- cancelling needs a reason ----------------------------------------------------------------
    page.open_application(second.number)
    qtbot.waitUntil(lambda: page.current.number == second.number and not page.busy,
                    timeout=WAIT_MS)
    click(qtbot, page.cancel_button)
    qtbot.waitUntil(lambda: page.error_label.text() != "", timeout=WAIT_MS)
    assert "give a reason" in page.error_label.text()
    assert A.get_application(app, clerk, second.number).state == "received"
    type_into(qtbot, page.reason_edit, "moved away")
    click(qtbot, page.cancel_button)
    qtbot.waitUntil(lambda: page.current.state == "cancelled" and not page.busy, timeout=WAIT_MS)
    assert page.steps_table.item(1, 3).text() == "moved away"


@pytest.mark.parametrize("role", ["technician", "auditor"])
def test_page_is_hidden_without_the_permission(demo, qtbot, role):
    with demo.uow() as uow:
        create_operator(uow, "someone", "Some One", "some-pass-1", role)
        uow.commit()
    window = MainWindow(demo, demo.login("someone", "some-pass-1"))
    qtbot.addWidget(window)
    assert "applications" not in window.page_actions
