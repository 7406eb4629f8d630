"""The Customer record page and the sale page's card check, driven as an administrator would, on
both backends; leaves artifacts/qt-customer-record.png."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from decimal import Decimal
from pathlib import Path

from PyQt6.QtCore import Qt

from dbmis_core.services import cards, customers, vending
from dbmis_qt.window import MainWindow
from dbmis_sim.meter import MeterSimulator
from dbmis_sim.reader import SimReader, reader_folder

WAIT_MS = 20_000
NEW_METER = "000020249001"


def hand(app) -> SimReader:
    return SimReader(reader_folder(app.config.driver_settings("sim")))


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def test_record_page_changes_debts_meter_and_sale_check(demo, admin, qtbot, artifacts_dir):
    demo.reader.new_card()
    cards.issue_user_card(demo, admin, "100001")
    first = vending.vend(demo, admin, "100001", "50.00")
    window = MainWindow(demo, admin)
    qtbot.addWidget(window)
    window.show()
    action = window.page_actions["customer-record"]
    assert action in window.module_menus["Daily business"].actions()
    action.trigger()
    page = window.stack.currentWidget()
    qtbot.keyClicks(page.account_edit, "100001")
    click(qtbot, page.show_button)
    qtbot.waitUntil(lambda: page.summary is not None, timeout=WAIT_MS)
    assert "Li Wei" in page.summary_label.text() and page.history.rowCount() >= 3

    # details: phone and tariff
    page.phone_edit.setText("0700 123 456")
    page.tariff_combo.setCurrentText("flat")
    click(qtbot, page.save_button)
    qtbot.waitUntil(lambda: page.message_label.text().startswith("saved"), timeout=WAIT_MS)
    assert page.message_label.text() == "saved: details, tariff"
    qtbot.waitUntil(lambda: "tariff flat" in page.summary_label.text(), timeout=WAIT_MS)

    # a bad debt is refused with the service's message, a good one is recorded
    page.tabs.setCurrentIndex(2)
    qtbot.keyClicks(page.debt_reason_edit, "meter replacement fee")
    qtbot.keyClicks(page.debt_amount_edit, "0")
    click(qtbot, page.add_debt_button)
    qtbot.waitUntil(lambda: "positive" in page.error_label.text(), timeout=WAIT_MS)
    page.debt_amount_edit.setText("25.00")
    click(qtbot, page.add_debt_button)
    qtbot.waitUntil(lambda: "owed 25.00" in page.debts_label.text(), timeout=WAIT_MS)
    assert page.error_label.text() == ""

    # the meter is replaced; the new card carries the unloaded purchase as make-up credit
    page.tabs.setCurrentIndex(1)
    hand(demo).new_card()
    qtbot.keyClicks(page.new_meter_edit, NEW_METER)
    click(qtbot, page.replace_button)
    qtbot.waitUntil(lambda: "replaced by" in page.message_label.text(), timeout=WAIT_MS)
    assert f"{first.credit} make-up credit" in page.message_label.text()
    qtbot.waitUntil(lambda: NEW_METER in page.summary_label.text(), timeout=WAIT_MS)
    kinds = [page.history.item(i, 1).text() for i in range(page.history.rowCount())]
    assert "makeup" in kinds and "debt" in kinds and "change" in kinds
    assert page.summary["meter_no"] == NEW_METER
    assert page.grab().save(str(Path(artifacts_dir) / "qt-customer-record.png"))
    assert (Path(artifacts_dir) / "qt-customer-record.png").stat().st_size > 10_000

    # the customer loads the make-up credit, then buys: the sale page shows the debt share first
    sim = MeterSimulator.provision(demo.config.home / "m.json", NEW_METER,
                                   demo.keys.meter_key(NEW_METER))
    with hand(demo).connect() as conn:
        assert sim.insert(conn, demo.card_format).applied == first.credit
    window.page_actions["sale"].trigger()
    sale = window.stack.currentWidget()
    qtbot.keyClicks(sale.search_edit, "100001")
    qtbot.waitUntil(lambda: sale.results.count() > 0 and sale.results.item(0).text()
                    .startswith("100001"), timeout=WAIT_MS)
    sale.results.setCurrentRow(0)
    qtbot.keyClicks(sale.amount_edit, "40.00")
    qtbot.waitUntil(lambda: "repays debts" in sale.check_label.text(), timeout=WAIT_MS)
    assert sale.check_label.text().startswith("8.00 of 40.00 repays debts")
    click(qtbot, sale.sell_button)
    qtbot.waitUntil(lambda: sale.last_sale is not None, timeout=WAIT_MS)
    assert sale.last_sale.debt_recovered == Decimal("8.00")
    assert "Debt recovered: 8.00" in sale.result_label.text()
    assert "Debt recovered" in sale.receipt_view.toPlainText()
    assert customers.customer_summary(demo, admin, "100001")["debt_owed"] == Decimal("17.00")
