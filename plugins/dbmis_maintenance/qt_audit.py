"""The "Audit log" page: filter the records (operator, date range, kind, subject text), read one
record's details, and verify the hash chains. Work runs through ``ctx.run`` off the GUI thread."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

from PyQt6.QtCore import QDate
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.services import audit
from dbmis_core.types import ERROR_STYLE

COLUMNS = ("Time", "Station", "No.", "Operator", "Kind", "Subject")
OK_STYLE = "color: #1b5e20; font-weight: bold;"


class AuditPage(QWidget):
    def __init__(self, ctx) -> None:
        super().__init__(objectName="page-audit")
        self.ctx = ctx
        self._jobs = 0
        self.entries: list = []
        self.operator_edit = QLineEdit(objectName="filter-operator", placeholderText="any")
        self.kind_box = QComboBox(objectName="filter-kind", editable=True)
        self.kind_box.addItem("")
        self.subject_edit = QLineEdit(objectName="filter-subject",
                                      placeholderText="account, meter, card, operator...")
        self.use_dates = QCheckBox("From", objectName="filter-dates")
        today = QDate.currentDate()
        self.from_date = QDateEdit(today.addDays(-7), objectName="filter-from", calendarPopup=True)
        self.to_date = QDateEdit(today, objectName="filter-to", calendarPopup=True)
        for d in (self.from_date, self.to_date):
            d.setDisplayFormat("yyyy-MM-dd")
        self.search_button = QPushButton("Search", objectName="search")
        self.verify_button = QPushButton("Verify chains", objectName="verify")
        self.table = QTableWidget(0, len(COLUMNS), objectName="records")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.details = QPlainTextEdit(objectName="details", readOnly=True)
        self.details.setMaximumHeight(170)
        self.status_label = QLabel(objectName="verify-status", wordWrap=True)
        self.error_label = QLabel(objectName="error", wordWrap=True)
        self.error_label.setStyleSheet(ERROR_STYLE)

        filters = QHBoxLayout()
        for label, w in (("Operator:", self.operator_edit), ("Kind:", self.kind_box),
                         ("Subject:", self.subject_edit)):
            filters.addWidget(QLabel(label))
            filters.addWidget(w)
        filters.addWidget(self.use_dates)
        filters.addWidget(self.from_date)
        filters.addWidget(QLabel("to"))
        filters.addWidget(self.to_date)
        filters.addWidget(self.search_button)
        filters.addStretch(1)
        filters.addWidget(self.verify_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Audit log</h2>"))
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.status_label)
        layout.addWidget(self.error_label)

        self.search_button.clicked.connect(self.search)
        self.subject_edit.returnPressed.connect(self.search)
        self.operator_edit.returnPressed.connect(self.search)
        self.verify_button.clicked.connect(self.verify)
        self.table.itemSelectionChanged.connect(self._show_details)
        self._load_kinds()
        self.search()

    @property
    def busy(self) -> bool:
        return self._jobs > 0

    def _run(self, fn, on_done) -> None:
        self._jobs += 1
        self.error_label.clear()
        self.search_button.setEnabled(False)
        self.verify_button.setEnabled(False)
        self.ctx.run(fn, lambda r: self._finished(on_done, r),
                     lambda msg: self._finished(self.error_label.setText, msg))

    def _finished(self, callback, value) -> None:
        self._jobs -= 1
        if not self._jobs:
            self.search_button.setEnabled(True)
            self.verify_button.setEnabled(True)
        callback(value)

    def _load_kinds(self) -> None:
        app, op = self.ctx.app, self.ctx.operator

        def done(kinds):
            current = self.kind_box.currentText()
            self.kind_box.clear()
            self.kind_box.addItems([""] + kinds)
            self.kind_box.setCurrentText(current)

        self._run(lambda: audit.kinds(app, op), done)

    def _range(self) -> tuple[datetime | None, datetime | None]:
        if not self.use_dates.isChecked():
            return None, None
        local = datetime.now().astimezone().tzinfo

        def at(qd: QDate, days: int = 0) -> datetime:
            d = datetime(qd.year(), qd.month(), qd.day()).date() + timedelta(days=days)
            return datetime.combine(d, time(0), local).astimezone(UTC)

        return at(self.from_date.date()), at(self.to_date.date(), 1)

    def search(self) -> None:
        app, op = self.ctx.app, self.ctx.operator
        since, until = self._range()
        operator = self.operator_edit.text().strip() or None
        kind = self.kind_box.currentText().strip() or None
        subject = self.subject_edit.text().strip() or None
        self._run(lambda: audit.search(app, op, operator=operator, since=since, until=until,
                                       kind=kind, subject=subject), self._show)

    def _show(self, entries) -> None:
        self.entries = list(entries)
        self.table.setRowCount(len(self.entries))
        for i, e in enumerate(self.entries):
            values = (f"{e.at.astimezone():%Y-%m-%d %H:%M:%S}", e.station, str(e.seq), e.operator,
                      e.kind, e.subject)
            for j, v in enumerate(values):
                self.table.setItem(i, j, QTableWidgetItem(v))
        self.details.clear()
        self.ctx.status(f"{len(self.entries)} audit records")

    def _show_details(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        e = self.entries[rows[0].row()]
        self.details.setPlainText(json.dumps(e.as_dict(), indent=2, ensure_ascii=False))

    def verify(self) -> None:
        app, op = self.ctx.app, self.ctx.operator

        def done(res):
            chains = ", ".join(f"{c.station}: {c.records} records" for c in res.chains) or "empty"
            if res.ok:
                self.status_label.setStyleSheet(OK_STYLE)
                self.status_label.setText(f"Audit log intact ({chains}).")
            else:
                self.status_label.setStyleSheet(ERROR_STYLE)
                self.status_label.setText(
                    f"Audit log NOT intact: {len(res.findings)} problem(s)\n" + "\n".join(
                        f"{f.problem.upper()} station {f.station} record {f.seq}: {f.detail}"
                        for f in res.findings[:20]))

        self._run(lambda: audit.verify(app, op), done)
