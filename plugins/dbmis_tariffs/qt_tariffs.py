"""The Tariffs page (Settings menu): installed tariffs, a tariff's version history, a form to add a
version from now or a later moment, and a quote calculator that shows the receipt lines.

Database work runs through ``ctx.run`` (the host's worker thread); the tariffs service decides what
is allowed, the page only disables what the operator may not do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from PyQt6.QtCore import QDateTime, Qt, QTimeZone
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.services import tariffs
from dbmis_core.services.auth import Perm
from dbmis_core.types import ERROR_STYLE

TARIFF_COLUMNS = ("Tariff", "Period", "Default", "In force", "Next change", "Title")
HISTORY_COLUMNS = ("#", "From (UTC)", "State", "By", "Note", "Settings")
LINE_COLUMNS = ("Line", "Amount")


def _label(name: str, text: str = "", style: str | None = None) -> QLabel:
    label = QLabel(text, objectName=name, wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if style:
        label.setStyleSheet(style)
    return label


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t else "-"


def _table(name: str, columns) -> QTableWidget:
    table = QTableWidget(0, len(columns), objectName=name)
    table.setHorizontalHeaderLabels(columns)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    table.horizontalHeader().setStretchLastSection(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table


def _fill(table: QTableWidget, rows) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(str(value)))


class TariffsPage(QWidget):
    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.app, self.op = ctx.app, ctx.operator
        self.can_manage = self.op.can(Perm.MANAGE_TARIFFS)
        self.tariff_rows: list[dict] = []
        self.versions: list = []
        self.history_name: str | None = None
        self.last_added = None
        self.last_pricing = None
        self._jobs = 0
        self._build()
        self.refresh()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.tariff_table = _table("tariffs", TARIFF_COLUMNS)
        self.tariff_table.itemSelectionChanged.connect(self._tariff_chosen)
        self.history_table = _table("history", HISTORY_COLUMNS)
        self.history_label = _label("history_title", "Choose a tariff to see its versions.")

        top = QWidget()
        tv = QVBoxLayout(top)
        tv.setContentsMargins(0, 0, 0, 0)
        tv.addWidget(QLabel("<b>Installed tariffs</b> (a customer without a tariff of their own "
                            "uses the default)"))
        tv.addWidget(self.tariff_table)
        tv.addWidget(self.history_label)
        tv.addWidget(self.history_table)

        bottom = QWidget()
        bh = QHBoxLayout(bottom)
        bh.setContentsMargins(0, 0, 0, 0)
        bh.addWidget(self._add_box(), 3)
        bh.addWidget(self._quote_box(), 2)

        split = QSplitter(Qt.Orientation.Vertical, objectName="split")
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)

        self.error_label = _label("error", style=ERROR_STYLE)
        self.message_label = _label("message")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Tariffs</h2>"))
        layout.addWidget(split, 1)
        layout.addWidget(self.message_label)
        layout.addWidget(self.error_label)

    def _add_box(self) -> QGroupBox:
        box = QGroupBox("Add a version (versions are never changed; they start now or later)",
                        objectName="add_box")
        self.from_now = QCheckBox("Now", objectName="from_now", checked=True)
        self.from_edit = QDateTimeEdit(objectName="from", calendarPopup=True,
                                       displayFormat="yyyy-MM-dd HH:mm")
        self.from_edit.setTimeZone(QTimeZone.utc())
        self.from_edit.setDateTime(QDateTime.currentDateTimeUtc().addDays(1))
        self.from_edit.setEnabled(False)
        self.from_now.toggled.connect(lambda now: self.from_edit.setEnabled(not now))
        when = QHBoxLayout()
        when.addWidget(self.from_now)
        when.addWidget(self.from_edit, 1)
        when.addWidget(QLabel("UTC"))
        self.format_combo = QComboBox(objectName="format")
        self.format_combo.addItems(["json", "toml"])
        self.settings_edit = QPlainTextEdit(objectName="settings")
        self.settings_edit.setPlaceholderText('{"residential": "0.5600"}')
        self.note_edit = QLineEdit(objectName="note", placeholderText="why the prices change")
        self.add_button = QPushButton("Add version", objectName="add_version")
        self.add_button.clicked.connect(self.add_version)
        form = QFormLayout(box)
        form.addRow("Effective from", when)
        form.addRow("Settings format", self.format_combo)
        form.addRow("Settings", self.settings_edit)
        form.addRow("Note", self.note_edit)
        form.addRow("", self.add_button)
        if not self.can_manage:
            box.setEnabled(False)
        return box

    def _quote_box(self) -> QGroupBox:
        box = QGroupBox("Quote calculator", objectName="quote_box")
        self.account_edit = QLineEdit(objectName="quote_account", placeholderText="account no")
        self.amount_edit = QLineEdit(objectName="quote_amount", placeholderText="amount")
        self.quote_button = QPushButton("Calculate", objectName="calculate")
        self.quote_button.clicked.connect(self.calculate)
        self.amount_edit.returnPressed.connect(self.calculate)
        self.quote_summary = _label("quote_summary")
        self.lines_table = _table("quote_lines", LINE_COLUMNS)
        form = QFormLayout(box)
        form.addRow("Account", self.account_edit)
        form.addRow("Amount", self.amount_edit)
        form.addRow("", self.quote_button)
        form.addRow(self.quote_summary)
        form.addRow(self.lines_table)
        return box

    # -- background work -----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._jobs > 0

    def _run(self, fn, on_done) -> None:
        self._jobs += 1
        self.error_label.clear()
        self.ctx.run(fn, lambda result: self._finished(on_done, result),
                     lambda message: self._finished(self.error_label.setText, message))

    def _finished(self, callback, value) -> None:
        self._jobs -= 1
        callback(value)

    # -- tariffs and history -------------------------------------------------------------------
    def refresh(self) -> None:
        self._run(lambda: tariffs.list_tariffs(self.app, self.op), self._show_tariffs)

    def _show_tariffs(self, rows: list[dict]) -> None:
        chosen = self.chosen_tariff()
        self.tariff_rows = rows
        _fill(self.tariff_table, [
            (r["name"], r["period"] or "-", "yes" if r["default"] else "",
             f"version {r['in_force_version']} from {_when(r['in_force_from'])}"
             if r["in_force_version"] else "configuration", _when(r["next_change"]), r["title"])
            for r in rows])
        names = [r["name"] for r in rows]
        self.tariff_table.blockSignals(True)
        self.tariff_table.selectRow(names.index(chosen) if chosen in names else 0)
        self.tariff_table.blockSignals(False)
        self._tariff_chosen()  # the history follows, also when the same tariff stays chosen

    def chosen_tariff(self) -> str | None:
        rows = self.tariff_table.selectionModel().selectedRows() if self.tariff_rows else []
        return self.tariff_rows[rows[0].row()]["name"] if rows else None

    def select_tariff(self, name: str) -> None:
        self.tariff_table.selectRow([r["name"] for r in self.tariff_rows].index(name))

    def _tariff_chosen(self) -> None:
        name = self.chosen_tariff()
        if name:
            self._run(lambda: tariffs.history(self.app, self.op, name),
                      lambda versions: self._show_history(name, versions))

    def _show_history(self, name: str, versions: list) -> None:
        prefill = name != self.history_name
        self.history_name, self.versions = name, versions
        self.history_label.setText(
            f"<b>Versions of {name}</b>" + ("" if versions else
                                            f" - none yet: its [tariffs.{name}] configuration applies"))
        _fill(self.history_table, [
            (v.id, _when(v.effective_from), v.state, v.created_by, v.note,
             json.dumps(v.settings, sort_keys=True)) for v in versions])
        current = next((v for v in versions if v.state == "in force"), None)
        if prefill:  # start from what is in force now when another tariff is chosen
            self.settings_edit.setPlainText(json.dumps(current.settings if current else
                                                       self.app.config.tariff_settings(name),
                                                       indent=2))
            self.format_combo.setCurrentText("json")

    # -- adding a version ----------------------------------------------------------------------
    def add_version(self) -> None:
        name = self.chosen_tariff()
        if not name:
            self.error_label.setText("choose a tariff first")
            return
        text, fmt, note = (self.settings_edit.toPlainText(), self.format_combo.currentText(),
                           self.note_edit.text())
        when = None if self.from_now.isChecked() else \
            self.from_edit.dateTime().toPyDateTime().replace(tzinfo=UTC)

        def job():
            settings = tariffs.parse_settings_text(text, fmt)
            return tariffs.add_version(self.app, self.op, name, settings, when, note)

        self._run(job, self._added)

    def _added(self, version) -> None:
        self.last_added = version
        self.note_edit.clear()
        self.message_label.setText(f"tariff {version.tariff}: version {version.id} from "
                                   f"{_when(version.effective_from)} UTC ({version.state})")
        self.ctx.status(self.message_label.text())
        self.refresh()

    # -- quote calculator ----------------------------------------------------------------------
    def calculate(self) -> None:
        account, amount = self.account_edit.text().strip(), self.amount_edit.text().strip()
        self._run(lambda: tariffs.explain(self.app, self.op, account, amount), self._show_quote)

    def _show_quote(self, p) -> None:
        self.last_pricing = p
        q = p.quote
        period = f"; {p.period_energy} kWh bought this {p.period}" if p.period else ""
        version = f"version {p.version_id}" if p.version_id else "configured settings"
        self.quote_summary.setText(f"<b>{q.amount} buys {q.energy} kWh</b> on {p.tariff} "
                                   f"({version}, {p.category}{period}); average {q.unit_price}/kWh")
        _fill(self.lines_table, [(n, v) for n, v in q.lines] + [("Total", q.amount)])

