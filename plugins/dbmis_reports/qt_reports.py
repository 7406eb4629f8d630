"""The "Query and reports" pages: Reports (chooser, filters, sortable table, chart, exports, print
preview) and Find (one search box, a result tab per kind).

Database work runs through ``ctx.run`` (the host's worker thread). The report table is a
``QStandardItemModel`` behind a ``QSortFilterProxyModel``; each cell keeps its typed value under
``SORT_ROLE`` (numbers as floats, dates as ISO text) so numbers sort as numbers.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PyQt6.QtCore import QSortFilterProxyModel, Qt
from PyQt6.QtGui import QStandardItem, QStandardItemModel, QTextDocument
from PyQt6.QtPrintSupport import QPrintPreviewDialog, QPrinter
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.services import reports, search
from dbmis_core.services.reports import NUMERIC

SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def sort_key(value, ctype: str):
    """The value the proxy sorts on: a float for numbers, ISO text for dates, else text."""
    if value is None:
        return float("-inf") if ctype in NUMERIC else ""
    if ctype in NUMERIC:
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


class _Page(QWidget):
    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx, self.app, self.op = ctx, ctx.app, ctx.operator
        self.message = QLabel("", objectName="message", wordWrap=True)

    def _run(self, fn, done) -> None:
        self.ctx.run_reporting(self.message, fn, done)


class ReportsPage(_Page):
    """Choose a report, set filters, run; sort by any column; chart; export; print preview."""

    def __init__(self, ctx, parent=None) -> None:
        super().__init__(ctx, parent)
        self.result = None
        self.specs = reports.list_reports(self.app, self.op)
        self.report_combo = QComboBox(objectName="report")
        for s in self.specs:
            self.report_combo.addItem(s.title, s.name)
        self.level_combo = QComboBox(objectName="level")
        self.level_combo.addItems(["district", "line", "region"])
        self.region_edit = QLineEdit(objectName="region", placeholderText="code")
        self.from_edit = QLineEdit(objectName="month_from", placeholderText="YYYY-MM")
        self.to_edit = QLineEdit(objectName="month_to", placeholderText="YYYY-MM")
        self.station_edit = QLineEdit(objectName="station")
        self.operator_edit = QLineEdit(objectName="operator")
        self.category_edit = QLineEdit(objectName="category")
        self.account_edit = QLineEdit(objectName="account_no")
        form = QFormLayout()
        form.addRow("Report", self.report_combo)
        form.addRow("Level", self.level_combo)
        form.addRow("Region/line/district", self.region_edit)
        form.addRow("From month", self.from_edit)
        form.addRow("To month", self.to_edit)
        form.addRow("Station", self.station_edit)
        form.addRow("Operator", self.operator_edit)
        form.addRow("Category", self.category_edit)
        form.addRow("Account (statement)", self.account_edit)
        self.run_button = QPushButton("Run", objectName="run")
        self.run_button.clicked.connect(self.run_report)
        self.export_buttons = {}
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        for fmt in ("pdf", "xlsx", "csv", "html"):
            b = QPushButton(f"Export {fmt.upper()}", objectName=f"export-{fmt}")
            b.clicked.connect(lambda _=False, f=fmt: self.export(f))
            b.setEnabled(False)
            self.export_buttons[fmt] = b
            buttons.addWidget(b)
        self.preview_button = QPushButton("Print preview", objectName="preview")
        self.preview_button.clicked.connect(self.print_preview)
        self.preview_button.setEnabled(False)
        buttons.addWidget(self.preview_button)
        buttons.addStretch(1)

        self.model = QStandardItemModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView(objectName="table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.totals = QLabel("", objectName="totals", wordWrap=True)
        self.figure = Figure(figsize=(6, 2.6))
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(200)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addLayout(form)
        lv.addStretch(1)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addLayout(buttons)
        rv.addWidget(self.message)
        rv.addWidget(self.table, 3)
        rv.addWidget(self.totals)
        rv.addWidget(self.canvas, 2)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 4)
        QVBoxLayout(self).addWidget(split)

    def filters(self) -> dict:
        spec = self.specs[self.report_combo.currentIndex()]
        values = {"level": self.level_combo.currentText(), "region": self.region_edit.text(),
                  "month_from": self.from_edit.text(), "month_to": self.to_edit.text(),
                  "station": self.station_edit.text(), "operator": self.operator_edit.text(),
                  "category": self.category_edit.text(), "account_no": self.account_edit.text()}
        allowed = set(spec.filters) | {"month_from", "month_to"}
        return {k: v.strip() for k, v in values.items() if v.strip() and k in allowed}

    def run_report(self) -> None:
        name = self.report_combo.currentData()
        f = self.filters()
        self._run(lambda: reports.run(self.app, self.op, name, **f), self.show_result)

    def show_result(self, result) -> None:
        self.result = result
        self.model.clear()
        self.model.setHorizontalHeaderLabels([c.title for c in result.columns])
        for row in result.rows:
            items = []
            for c in result.columns:
                v = row.get(c.name)
                item = QStandardItem(reports.display(v, c.type))
                item.setData(sort_key(v, c.type), SORT_ROLE)
                if c.type in NUMERIC:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                items.append(item)
            self.model.appendRow(items)
        self.table.resizeColumnsToContents()
        if result.totals:
            self.totals.setText("Totals: " + ", ".join(
                f"{c.title} {reports.display(result.totals.get(c.name), c.type)}"
                for c in result.columns if c.type in NUMERIC and result.totals.get(c.name)
                is not None))
        else:
            self.totals.setText("")
        self.figure.clear()
        if result.charts and result.rows:
            reports.draw_chart(self.figure, result, result.charts[0])
        self.canvas.draw()
        for b in self.export_buttons.values():
            b.setEnabled(True)
        self.preview_button.setEnabled(True)
        self.message.setText(f"{len(result.rows)} row(s)")

    def export(self, fmt: str, path: str | None = None) -> str | None:
        if self.result is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export report",
                                                  f"{self.result.name}.{fmt}")
            if not path:
                return None
        Path(path).write_bytes(reports.export(self.result, fmt))
        self.message.setText(f"Saved {path}")
        return path

    def document(self) -> QTextDocument:
        doc = QTextDocument(self)
        doc.setHtml(reports.to_html(self.result))
        return doc

    def print_to(self, printer: QPrinter) -> None:
        self.document().print(printer)

    def print_preview(self, dialog_factory=QPrintPreviewDialog) -> None:
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        dialog = dialog_factory(printer, self)
        dialog.paintRequested.connect(self.print_to)
        self.preview_dialog = dialog
        dialog.open()


class FindPage(_Page):
    """One search box; customers, meters, cards and sales in their own tabs."""

    HEADERS = {
        "customers": (["Account", "Name", "Address", "Phone", "Category", "District", "Status",
                       "Matched"],
                      ("account_no", "name", "address", "phone", "category", "district",
                       "status", "matched")),
        "meters": (["Meter", "Model", "Status", "Account", "Name"],
                   ("meter_no", "model", "status", "account_no", "name")),
        "cards": (["Card UID", "Type", "Status", "Account", "Meter"],
                  ("uid", "card_type", "status", "account_no", "meter_no")),
        "sales": (["Receipt", "Time (UTC)", "State", "Account", "Name", "Amount", "Energy",
                   "Operator", "Station"],
                  ("receipt_no", "completed_at", "state", "account_no", "name", "amount",
                   "energy", "operator", "station")),
    }

    def __init__(self, ctx, parent=None) -> None:
        super().__init__(ctx, parent)
        self.box = QLineEdit(objectName="search",
                             placeholderText="account, name, address, phone, meter, card, receipt")
        self.box.returnPressed.connect(self.search)
        self.find_button = QPushButton("Find", objectName="find")
        self.find_button.clicked.connect(self.search)
        top = QHBoxLayout()
        top.addWidget(self.box, 1)
        top.addWidget(self.find_button)
        self.tabs = QTabWidget(objectName="tabs")
        self.tables = {}
        for kind, (headers, _keys) in self.HEADERS.items():
            t = QTableWidget(0, len(headers), objectName=f"found-{kind}")
            t.setHorizontalHeaderLabels(headers)
            t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            t.setSortingEnabled(True)
            t.verticalHeader().setVisible(False)
            self.tables[kind] = t
            self.tabs.addTab(t, kind.capitalize())
        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addWidget(self.message)
        v.addWidget(self.tabs, 1)
        self.found = None

    def search(self) -> None:
        text = self.box.text()
        self._run(lambda: search.find(self.app, self.op, text), self.show_found)

    def show_found(self, found) -> None:
        self.found = found
        for n, (kind, (_headers, keys)) in enumerate(self.HEADERS.items()):
            hits = getattr(found, kind)
            t = self.tables[kind]
            t.setSortingEnabled(False)
            t.setRowCount(len(hits))
            for i, hit in enumerate(hits):
                for j, key in enumerate(keys):
                    v = getattr(hit, key)
                    item = QTableWidgetItem()
                    if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
                        item.setData(Qt.ItemDataRole.DisplayRole, float(v) if isinstance(
                            v, Decimal) else v)
                    else:
                        item.setText(v.strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime)
                                     else "" if v is None else str(v))
                    t.setItem(i, j, item)
            t.setSortingEnabled(True)
            t.resizeColumnsToContents()
            self.tabs.setTabText(n, f"{kind.capitalize()} ({len(hits)})")
        first = next((n for n, k in enumerate(self.HEADERS) if getattr(found, k)), 0)
        self.tabs.setCurrentIndex(first)
        self.message.setText(f"{found.total} found for {found.text!r}")
