"""User management pages: consumption per customer (table and interactive chart), the abnormal-
change ranking with a region filter and "create work order", and the work orders with outcomes.

Database work runs through ``ctx.run`` (the host's worker thread); the figures are drawn on the GUI
thread from the plain data the services return, on a ``FigureCanvasQTAgg`` with matplotlib's
navigation toolbar (pan, zoom, save) and a hover label showing the month's value.
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.services import charts, consumption, workorders
from dbmis_core.services.auth import Perm
from dbmis_core.types import ERROR_STYLE


def _table(headers: list[str], name: str) -> QTableWidget:
    t = QTableWidget(0, len(headers), objectName=name)
    t.setHorizontalHeaderLabels(headers)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.horizontalHeader().setSectionResizeMode(len(headers) - 1, QHeaderView.ResizeMode.Stretch)
    t.verticalHeader().setVisible(False)
    return t


def _fill(table: QTableWidget, rows: list[list]) -> None:
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            item = QTableWidgetItem("" if value is None else str(value))
            item.setToolTip(item.text())
            table.setItem(i, j, item)
    # the last column (reasons, notes) stretches and wraps instead of running off the page
    for j in range(table.columnCount() - 1):
        table.resizeColumnToContents(j)
    table.resizeRowsToContents()


class _Page(QWidget):
    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx, self.app, self.op = ctx, ctx.app, ctx.operator
        self.message = QLabel("", objectName="message", wordWrap=True)

    def _run(self, fn, done) -> None:
        self.ctx.run_reporting(self.message, fn, done)


class ChartView(QWidget):
    """A figure with the navigation toolbar and a hover label for bar/point values."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.figure = Figure(figsize=(7, 3.5), dpi=100)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.toolbar = NavigationToolbar2QT(self.canvas, self)
        self.hover = QLabel("", objectName="hover")
        self.labels: tuple[str, ...] = ()
        self.series: dict[str, tuple] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.toolbar)
        lay.addWidget(self.canvas, 1)
        lay.addWidget(self.hover)
        self.canvas.mpl_connect("motion_notify_event", self._moved)

    def show_data(self, labels, series: dict[str, tuple]) -> None:
        self.labels, self.series = tuple(labels), series
        self.canvas.draw_idle()

    def _moved(self, event) -> None:
        if event.inaxes is None or event.xdata is None or not self.labels:
            return
        i = int(round(event.xdata))
        if 0 <= i < len(self.labels):
            parts = [f"{name}: {'-' if v[i] is None else f'{v[i]:.1f} kWh'}"
                     for name, v in self.series.items() if i < len(v)]
            self.hover.setText(f"{self.labels[i]}   " + "   ".join(parts))


class ConsumptionPage(_Page):
    """A customer's months, the checks' findings and the trend against last year; or totals per
    district or line."""

    def __init__(self, ctx, parent=None) -> None:
        super().__init__(ctx, parent)
        self.account_edit = QLineEdit(objectName="account", placeholderText="Account number")
        self.view_combo = QComboBox(objectName="view")
        self.view_combo.addItems(["Customer trend", "Totals per district", "Totals per line"])
        self.show_button = QPushButton("Show", objectName="show")
        self.compute_button = QPushButton("Recompute all from meter returns",
                                          objectName="compute")
        self.table = _table(["Month", "kWh", "Bought kWh", "Returns", "Quality", "Note"],
                            "months")
        self.findings = QLabel("", objectName="findings", wordWrap=True)
        self.findings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chart = ChartView()
        top = QHBoxLayout()
        for w in (QLabel("Customer"), self.account_edit, self.view_combo, self.show_button,
                  self.compute_button):
            top.addWidget(w)
        body = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.table, 1)
        left.addWidget(self.findings)
        body.addLayout(left, 2)
        body.addWidget(self.chart, 3)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("<h2>Consumption per customer</h2>"))
        lay.addLayout(top)
        lay.addWidget(self.message)
        lay.addLayout(body, 1)
        self.show_button.clicked.connect(self.show_selected)
        self.account_edit.returnPressed.connect(self.show_selected)
        self.compute_button.clicked.connect(self.recompute)
        self.compute_button.setVisible(self.op.can(Perm.ANALYSE))
        self.shown: str | None = None

    def recompute(self) -> None:
        self._run(lambda: consumption.compute(self.app, self.op),
                  lambda r: (self.ctx.status(f"{r.rows} monthly rows for {r.customers} "
                                             "customer(s)"), self.show_selected()))

    def show_selected(self) -> None:
        view = self.view_combo.currentIndex()
        account = self.account_edit.text().strip()
        if view == 0:
            if not account:
                self.message.setStyleSheet(ERROR_STYLE)
                self.message.setText("Enter an account number")
                return

            def fetch():
                return (consumption.monthly(self.app, self.op, account),
                        consumption.analyse_customer(self.app, self.op, account),
                        charts.customer_trend(self.app, self.op, account))

            self._run(fetch, self._show_customer)
        else:
            level = "district" if view == 1 else "line"
            self._run(lambda: charts.area_totals(self.app, self.op, level), self._show_area)

    def _show_customer(self, result) -> None:
        rows, found, trend = result
        self.shown = found.account_no
        _fill(self.table, [[r.label, r.kwh if r.kwh is not None else "-", r.purchased, r.returns,
                            r.quality, r.note] for r in rows])
        self.table.scrollToBottom()
        if found.findings:
            self.findings.setText(f"<b>Suspicion score {found.score}</b><ul>" + "".join(
                f"<li>{f.title}: {f.reason}</li>" for f in found.findings) + "</ul>")
        else:
            self.findings.setText("No findings.")
        charts.trend_figure(trend, self.chart.figure)
        self.chart.show_data(trend.labels, {"this year": trend.this_year,
                                            "last year": trend.last_year,
                                            "bought": trend.purchased})

    def _show_area(self, totals) -> None:
        self.shown = totals.level
        codes = list(totals.totals)
        _fill(self.table, [[label, f"{sum(totals.totals[c][i] for c in codes):.0f}", "", "",
                            "all", ", ".join(f"{c} {totals.totals[c][i]:.0f}" for c in codes)]
                           for i, label in enumerate(totals.labels)])
        self.findings.setText("")
        charts.area_figure(totals, self.chart.figure)
        self.chart.show_data(totals.labels, dict(totals.totals))


class RankingPage(_Page):
    """Customers by suspicion with reasons; filter by region, line or district; create orders."""

    def __init__(self, ctx, parent=None) -> None:
        super().__init__(ctx, parent)
        self.region_edit = QLineEdit(objectName="region",
                                     placeholderText="Region, line or district code (all)")
        self.top_spin = QSpinBox(objectName="top", minimum=1, maximum=10000, value=50)
        self.rank_button = QPushButton("Rank", objectName="rank")
        self.order_button = QPushButton("Create work order for selected", objectName="order")
        self.table = _table(["#", "Account", "Name", "District", "Score", "From", "Reasons"],
                            "ranking")
        self.table.setWordWrap(True)
        top = QHBoxLayout()
        for w in (QLabel("Region"), self.region_edit, QLabel("Top"), self.top_spin,
                  self.rank_button, self.order_button):
            top.addWidget(w)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("<h2>Abnormal change ranking</h2>"))
        lay.addLayout(top)
        lay.addWidget(self.message)
        lay.addWidget(self.table, 1)
        self.rank_button.clicked.connect(self.refresh)
        self.region_edit.returnPressed.connect(self.refresh)
        self.order_button.clicked.connect(self.create_orders)
        self.order_button.setEnabled(self.op.can(Perm.MANAGE_INSPECTIONS))
        self.ranked: list = []

    def refresh(self) -> None:
        region = self.region_edit.text().strip() or None
        top = self.top_spin.value()
        self._run(lambda: consumption.rank(self.app, self.op, region=region, top=top), self._show)

    def _show(self, ranked) -> None:
        self.ranked = ranked
        _fill(self.table, [[n, r.account_no, r.name, r.district or "-", f"{r.score:.2f}",
                            r.period or "-", "\n".join(r.reasons)]
                           for n, r in enumerate(ranked, 1)])
        self.table.resizeRowsToContents()
        self.ctx.status(f"{len(ranked)} customer(s) to look at")

    def create_orders(self) -> None:
        picked = sorted({i.row() for i in self.table.selectedIndexes()})
        chosen = [self.ranked[i] for i in picked if i < len(self.ranked)]
        if not chosen:
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText("Select customers in the list first")
            return
        self._run(lambda: [workorders.create_from_ranking(self.app, self.op, r) for r in chosen],
                  lambda made: self.ctx.status(
                      "work order(s) " + ", ".join(f"#{o.id} {o.account_no}" for o in made)))


class WorkOrdersPage(_Page):
    """Open, assigned and done work orders; assign an inspector; record the outcome."""

    def __init__(self, ctx, parent=None) -> None:
        super().__init__(ctx, parent)
        self.status_combo = QComboBox(objectName="status")
        self.status_combo.addItems(["all", "open", "assigned", "done"])
        self.refresh_button = QPushButton("Refresh", objectName="refresh")
        self.notice_edit = QLineEdit(objectName="notice", placeholderText="Counter notice #")
        self.notice_button = QPushButton("Create from notice", objectName="from_notice")
        self.table = _table(["#", "Account", "Name", "Origin", "Score", "Status", "Inspector",
                             "Outcome", "Reasons"], "orders")
        self.inspector_edit = QLineEdit(objectName="inspector", placeholderText="Inspector login")
        self.assign_button = QPushButton("Assign", objectName="assign")
        self.outcome_combo = QComboBox(objectName="outcome")
        self.outcome_combo.addItems(list(workorders.OUTCOMES))
        self.notes_edit = QLineEdit(objectName="notes", placeholderText="What was found")
        self.outcome_button = QPushButton("Record outcome", objectName="record")
        top = QHBoxLayout()
        for w in (QLabel("Status"), self.status_combo, self.refresh_button, self.notice_edit,
                  self.notice_button):
            top.addWidget(w)
        bottom = QHBoxLayout()
        for w in (self.inspector_edit, self.assign_button, self.outcome_combo, self.notes_edit,
                  self.outcome_button):
            bottom.addWidget(w)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("<h2>Inspection work orders</h2>"))
        lay.addLayout(top)
        lay.addWidget(self.message)
        lay.addWidget(self.table, 1)
        lay.addLayout(bottom)
        self.refresh_button.clicked.connect(self.refresh)
        self.status_combo.currentIndexChanged.connect(self.refresh)
        self.assign_button.clicked.connect(self.assign)
        self.outcome_button.clicked.connect(self.record)
        self.notice_button.clicked.connect(self.from_notice)
        allowed = self.op.can(Perm.MANAGE_INSPECTIONS)
        for w in (self.assign_button, self.outcome_button, self.notice_button):
            w.setEnabled(allowed)
        self.orders: list = []
        self.refresh()

    def refresh(self) -> None:
        status = self.status_combo.currentText()
        status = None if status == "all" else status
        self._run(lambda: workorders.list_orders(self.app, self.op, status=status), self._show)

    def _show(self, orders) -> None:
        self.orders = orders
        _fill(self.table, [[o.id, o.account_no, o.customer_name, o.origin,
                            "" if o.score is None else o.score, o.status, o.assigned_to or "",
                            o.outcome or "", " | ".join(o.reasons)] for o in orders])

    def _selected(self):
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if not rows or rows[0] >= len(self.orders):
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText("Select a work order first")
            return None
        return self.orders[rows[0]]

    def assign(self) -> None:
        order = self._selected()
        who = self.inspector_edit.text().strip()
        if order is None:
            return
        self._run(lambda: workorders.assign(self.app, self.op, order.id, who),
                  lambda _o: self.refresh())

    def record(self) -> None:
        order = self._selected()
        if order is None:
            return
        outcome, notes = self.outcome_combo.currentText(), self.notes_edit.text()
        self._run(lambda: workorders.record_outcome(self.app, self.op, order.id, outcome, notes),
                  lambda _o: self.refresh())

    def from_notice(self) -> None:
        text = self.notice_edit.text().strip()
        if not text.isdigit():
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText("Enter the number of a counter notice")
            return
        self._run(lambda: workorders.create_from_notice(self.app, self.op, int(text)),
                  lambda _o: self.refresh())
