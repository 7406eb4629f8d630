"""The Tariffs page driven as a supervisor would: see the tariffs, add a version now and one for
later, refuse one in the past, and price a purchase for a tiered customer line by line; a clerk does
not see the page. Runs offscreen on both backends and leaves a screenshot for a reviewer."""

from __future__ import annotations

import json
import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from decimal import Decimal

from PyQt6.QtCore import QDateTime, Qt
from sqlalchemy import update

from dbmis_core.storage.models import CustomerRow
from dbmis_qt.window import MainWindow

WAIT_MS = 20_000


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def open_page(qtbot, app, operator):
    window = MainWindow(app, operator)
    qtbot.addWidget(window)
    window.resize(1200, 900)
    window.show()
    window.page_actions["tariffs"].trigger()
    page = window.stack.currentWidget()
    assert page.objectName() == "page-tariffs"
    qtbot.waitUntil(lambda: not page.busy and page.versions is not None
                    and page.history_name is not None, timeout=WAIT_MS)
    return window, page


def cell(table, row, col) -> str:
    return table.item(row, col).text()


def test_tariffs_page(qtbot, demo, admin, artifacts_dir):
    with demo.uow() as uow:
        uow.session.execute(update(CustomerRow).where(CustomerRow.account_no == "100001")
                            .values(tariff="tiered"))
        uow.commit()
    window, page = open_page(qtbot, demo, admin)
    names = [cell(page.tariff_table, r, 0) for r in range(page.tariff_table.rowCount())]
    assert names == ["flat", "tiered", "tiered-annual"]
    assert cell(page.tariff_table, 0, 2) == "yes" and cell(page.tariff_table, 1, 1) == "month"

    page.select_tariff("tiered")
    qtbot.waitUntil(lambda: not page.busy and page.history_name == "tiered", timeout=WAIT_MS)
    assert page.history_table.rowCount() == 0 and "configuration applies" in page.history_label.text()
    settings = {"blocks": {"residential": [{"upto": "50", "price": "0.3000"}, {"price": "0.6000"}]},
                "surcharges": [{"name": "Rural levy", "per_kwh": "0.0100"}]}
    page.settings_edit.setPlainText(json.dumps(settings))
    page.note_edit.setText("levy from today")
    click(qtbot, page.add_button)
    qtbot.waitUntil(lambda: not page.busy and page.history_table.rowCount() == 1, timeout=WAIT_MS)
    assert page.last_added.state == "in force" and cell(page.history_table, 0, 2) == "in force"
    assert "version 1" in cell(page.tariff_table, 1, 3)

    # a version in the past is refused and nothing is added
    page.from_now.setChecked(False)
    page.from_edit.setDateTime(QDateTime.currentDateTimeUtc().addDays(-2))
    click(qtbot, page.add_button)
    qtbot.waitUntil(lambda: not page.busy and bool(page.error_label.text()), timeout=WAIT_MS)
    assert "cannot start in the past" in page.error_label.text()
    assert page.history_table.rowCount() == 1

    # one for next month is kept as future
    page.from_edit.setDateTime(QDateTime.currentDateTimeUtc().addDays(30))
    page.settings_edit.setPlainText(json.dumps({"blocks": {"residential": [{"price": "0.9000"}]}}))
    click(qtbot, page.add_button)
    qtbot.waitUntil(lambda: not page.busy and page.history_table.rowCount() == 2, timeout=WAIT_MS)
    assert [cell(page.history_table, r, 2) for r in range(2)] == ["in force", "future"]
    assert page.error_label.text() == ""

    # quote: 50 kWh at 0.31 = 15.50, then 4.50 / 0.61 = 7.377 -> 7.37
    page.account_edit.setText("100001")
    page.amount_edit.setText("20.00")
    click(qtbot, page.quote_button)
    qtbot.waitUntil(lambda: not page.busy and page.last_pricing is not None, timeout=WAIT_MS)
    assert page.last_pricing.quote.energy == Decimal("57.37")
    lines = [(cell(page.lines_table, r, 0), cell(page.lines_table, r, 1))
             for r in range(page.lines_table.rowCount())]
    assert lines[0] == ("50.00 kWh @ 0.3000", "15.00") and lines[-1] == ("Total", "20.00")
    assert ("Rural levy", "0.57") in lines
    assert "57.37 kWh" in page.quote_summary.text()
    window.grab().save(os.path.join(artifacts_dir, "qt-tariffs.png"))

    # a bad account is an error on the page, not a crash
    page.account_edit.setText("999999")
    click(qtbot, page.quote_button)
    qtbot.waitUntil(lambda: not page.busy and bool(page.error_label.text()), timeout=WAIT_MS)
    assert "999999" in page.error_label.text()


def test_clerk_does_not_see_the_tariffs_page(qtbot, demo):
    clerk = demo.login("clerk", "clerk-demo-1")
    window = MainWindow(demo, clerk)
    qtbot.addWidget(window)
    assert "tariffs" not in window.page_actions
    assert "sale" in window.page_actions
