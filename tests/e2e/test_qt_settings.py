"""The Settings pages driven through the window: change a sale limit, add a code, move a meter in
the store and import a batch with a bad row (the error report is shown and nothing is written).
Runs offscreen on both backends and leaves screenshots for a reviewer."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import csv
from decimal import Decimal
from pathlib import Path

from PyQt6.QtCore import Qt

from dbmis_core.services import codes, meterstore, settings
from dbmis_qt.window import MainWindow

WAIT_MS = 20_000


def open_page(qtbot, app, operator, name):
    window = MainWindow(app, operator)
    qtbot.addWidget(window)
    window.resize(1100, 750)
    window.show()
    window.page_actions[name].trigger()
    page = window.stack.currentWidget()
    qtbot.waitUntil(lambda: not page.busy, timeout=WAIT_MS)
    return window, page


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def test_parameters_and_code_tables(demo, admin, qtbot, artifacts_dir):
    window, page = open_page(qtbot, demo, admin, "system-parameters")
    assert window.page_actions["system-parameters"] in window.module_menus["Settings"].actions()
    page.select("sales.max_amount")
    assert page.name_label.text() == "sales.max_amount"
    assert page.value_edit.text() == "5000.00"
    page.value_edit.clear()
    qtbot.keyClicks(page.value_edit, "abc")
    click(qtbot, page.set_button)
    qtbot.waitUntil(lambda: "must be a number" in page.error_label.text(), timeout=WAIT_MS)
    page.value_edit.clear()
    qtbot.keyClicks(page.value_edit, "800")
    click(qtbot, page.set_button)
    qtbot.waitUntil(lambda: not page.busy and any(
        v.name == "sales.max_amount" and v.source == "database" for v in page.values),
        timeout=WAIT_MS)
    assert settings.sales(demo).max_amount == Decimal("800.00")
    path = Path(artifacts_dir) / "qt-settings.png"
    assert window.grab().save(str(path)) and path.stat().st_size > 10_000

    window.page_actions["code-tables"].trigger()
    codes_page = window.stack.currentWidget()
    qtbot.waitUntil(lambda: not codes_page.busy, timeout=WAIT_MS)
    tab = codes_page.tab["payment"]
    codes_page.tabs.setCurrentWidget(tab)
    qtbot.keyClicks(tab.code_edit, "cash")
    qtbot.keyClicks(tab.name_edit, "Cash")
    click(qtbot, tab.add_button)
    qtbot.waitUntil(lambda: tab.table.rowCount() == 1 and not codes_page.busy, timeout=WAIT_MS)
    assert tab.table.item(0, 1).text() == "Cash"
    district = codes_page.tab["district"]
    qtbot.keyClicks(district.code_edit, "R9-T1")
    qtbot.keyClicks(district.name_edit, "Nowhere")
    qtbot.keyClicks(district.parent_edit, "R1")
    click(qtbot, district.add_button)
    qtbot.waitUntil(lambda: "parent must be a line" in codes_page.error_label.text(),
                    timeout=WAIT_MS)
    assert [e.code for e in codes.list_entries(demo, admin, "payment")] == ["cash"]


def test_meter_store_status_and_import_errors(demo, admin, qtbot, artifacts_dir, tmp_path):
    window, page = open_page(qtbot, demo, admin, "meter-store")
    page.status_combo.setCurrentIndex(page.status_combo.findData("in_store"))
    qtbot.waitUntil(lambda: not page.busy and len(page.meters) == 3, timeout=WAIT_MS)
    page.table.selectRow(0)
    qtbot.waitUntil(lambda: page.history_table.rowCount() == 1 and not page.busy,
                    timeout=WAIT_MS)
    page.new_status.setCurrentIndex(page.new_status.findData("faulty"))
    qtbot.keyClicks(page.note_edit, "cracked case")
    click(qtbot, page.change_button)
    qtbot.waitUntil(lambda: not page.busy and len(page.meters) == 2, timeout=WAIT_MS)
    assert [e.to_status for e in meterstore.history(demo, admin, "000020249001")] == [
        "in_store", "faulty"]

    rows = [["meter_no", "model"]] + [[f"{50000001 + i:012d}", "DDSY-1P"] for i in range(50)]
    rows[12][1] = "NO-SUCH"
    rows[40][0] = "12"
    f = tmp_path / "delivery.csv"
    with open(f, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    page.import_file(str(f))
    qtbot.waitUntil(lambda: page.last_import is not None and not page.busy, timeout=WAIT_MS)
    assert page.report_table.isVisible() and page.report_table.rowCount() == 2
    assert [page.report_table.item(r, 0).text() for r in range(2)] == ["13", "41"]
    assert page.report_table.item(0, 3).text() == "unknown meter model"
    assert "nothing was imported" in page.report_label.text()
    assert meterstore.list_meters(demo, admin, text="0000500000") == []
    path = Path(artifacts_dir) / "qt-meter-import-errors.png"
    assert window.grab().save(str(path)) and path.stat().st_size > 10_000
