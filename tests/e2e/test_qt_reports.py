"""The "Query and reports" pages driven as a supervisor would, offscreen on both backends: run a
report with filters, sort numbers as numbers, chart, export, print preview and print to PDF; then
find customers, meters, cards and sales. Screenshots go to the artifacts folder."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtPrintSupport import QPrinter

from dbmis_core.testing.reports import seed
from dbmis_qt.window import MainWindow

WAIT_MS = 30_000


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def open_page(qtbot, window, name):
    window.page_actions[name].trigger()
    page = window.stack.currentWidget()
    assert page.objectName() == f"page-{name}"
    return page


def column(page, n):
    m = page.table.model()
    return [m.index(i, n).data() for i in range(m.rowCount())]


def test_reports_page(app, admin, qtbot, artifacts_dir, tmp_path):
    seed(app)
    artifacts = Path(artifacts_dir)
    window = MainWindow(app, admin)
    qtbot.addWidget(window)
    window.resize(1400, 850)
    window.show()
    menu = window.module_menus["Query and reports"].actions()
    assert {window.page_actions["reports"], window.page_actions["find"]} <= set(menu)

    page = open_page(qtbot, window, "reports")
    page.report_combo.setCurrentIndex(page.report_combo.findData("monthly-sales"))
    page.level_combo.setCurrentText("district")
    qtbot.keyClicks(page.from_edit, "2025-02")
    qtbot.keyClicks(page.to_edit, "2025-03")
    click(qtbot, page.run_button)
    qtbot.waitUntil(lambda: page.result is not None, timeout=WAIT_MS)
    assert page.table.model().rowCount() == 7
    assert "Amount 950.00" in page.totals.text()
    amount = [c.title for c in page.result.columns].index("Amount")
    # numbers sort as numbers: 30.00 < 40.00 < 60.00 < 120.00 < 150.00 < 250.00 < 300.00
    page.table.sortByColumn(amount, Qt.SortOrder.AscendingOrder)
    assert column(page, amount) == ["30.00", "40.00", "60.00", "120.00", "150.00", "250.00",
                                    "300.00"]
    page.table.sortByColumn(amount, Qt.SortOrder.DescendingOrder)
    assert column(page, amount)[0] == "300.00"
    ax = page.figure.axes[0]
    assert ax.get_title() == "Sales amount per district" and len(ax.lines) == 4
    assert window.grab().save(str(artifacts / "qt-reports.png"))
    assert (artifacts / "qt-reports.png").stat().st_size > 20_000

    xlsx = page.export("xlsx", str(tmp_path / "m.xlsx"))
    from openpyxl import load_workbook
    assert load_workbook(xlsx).active.cell(4, 8).data_type == "n"

    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(tmp_path / "printed.pdf"))
    page.print_to(printer)
    assert (tmp_path / "printed.pdf").read_bytes().startswith(b"%PDF")
    page.print_preview()
    dialog = page.preview_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
    dialog.close()

    # a bad month is shown on the page, nothing crashes
    page.from_edit.setText("2025-13")
    click(qtbot, page.run_button)
    qtbot.waitUntil(lambda: "YYYY-MM" in page.message.text(), timeout=WAIT_MS)


def test_find_page(app, admin, qtbot, artifacts_dir):
    seed(app)
    window = MainWindow(app, admin)
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.show()
    page = open_page(qtbot, window, "find")
    qtbot.keyClicks(page.box, "elm street")
    qtbot.keyClick(page.box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.found is not None, timeout=WAIT_MS)
    t = page.tables["customers"]
    assert sorted(t.item(i, 0).text() for i in range(t.rowCount())) == ["900001", "900005"]
    assert page.tabs.tabText(0) == "Customers (2)"
    assert window.grab().save(str(Path(artifacts_dir) / "qt-find.png"))
    page.box.clear()
    page.found = None
    qtbot.keyClicks(page.box, "S01-0000000")
    click(qtbot, page.find_button)
    qtbot.waitUntil(lambda: page.found is not None, timeout=WAIT_MS)
    assert page.tabs.currentIndex() == 3 and page.tables["sales"].rowCount() >= 5
