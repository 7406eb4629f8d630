"""The "New service" page: applications by state, one application with its steps and the button for
its next step, and the new-application form with batch mode.

In batch mode the service settings (meter model, capacity-limit mode, tariff, district, batch label)
stay filled in after each submission and only the applicant's fields are cleared, so a row of houses
is entered one customer after the other. Every service call runs through ``ctx.run``.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFontDatabase
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.services import applications as A
from dbmis_core.services.auth import Perm
from dbmis_core.types import ERROR_STYLE

OK_STYLE = "color: #1b6e20;"
LIST_COLUMNS = ("Number", "State", "Applicant", "Account", "Next step")
STEP_COLUMNS = ("When (UTC)", "State", "By", "Notes")
BUTTON_TEXT = {
    "survey": "Site survey done",
    "approve": "Approve",
    "assign-meter": "Assign meter from store",
    "install": "Meter installed",
    "open": "Open account and issue card",
    "complete": "Complete",
}


def _label(name: str, text: str = "", style: str | None = None) -> QLabel:
    label = QLabel(text, objectName=name, wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if style:
        label.setStyleSheet(style)
    return label


def _item(text) -> QTableWidgetItem:
    return QTableWidgetItem("" if text is None else str(text))


class ApplicationsPage(QWidget):
    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.app, self.op = ctx.app, ctx.operator
        self.can_manage = self.op.can(Perm.MANAGE_APPLICATIONS)
        self.current: A.Application | None = None
        self.rows: list[A.Application] = []
        self.last_submitted: list[A.Application] = []
        self._jobs = 0
        self._build()
        self._show_details(None)
        self.load_choices()
        self.refresh()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.tabs = QTabWidget(objectName="tabs")
        self.tabs.addTab(self._list_tab(), "&Applications")
        self.tabs.addTab(self._new_tab(), "&New application")
        self.busy_bar = QProgressBar(objectName="busy", maximumWidth=160, textVisible=False)
        self.busy_bar.setRange(0, 0)
        self.busy_bar.hide()
        self.busy_label = _label("busy_text")
        self.error_label = _label("error", style=ERROR_STYLE)
        busy_row = QHBoxLayout()
        busy_row.addWidget(self.busy_bar)
        busy_row.addWidget(self.busy_label, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>New service applications</h2>"))
        layout.addWidget(self.tabs, 1)
        layout.addLayout(busy_row)
        layout.addWidget(self.error_label)

    def _list_tab(self) -> QWidget:
        tab = QWidget()
        self.state_combo = QComboBox(objectName="state_filter")
        self.state_combo.addItem("All states", None)
        for s in A.AppState:
            self.state_combo.addItem(s.value.replace("_", " "), s.value)
        self.state_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.search_edit = QLineEdit(objectName="search", placeholderText="number or name")
        self.search_edit.returnPressed.connect(self.refresh)
        self.refresh_button = QPushButton("&Refresh", objectName="refresh")
        self.refresh_button.clicked.connect(self.refresh)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("State:"))
        filters.addWidget(self.state_combo)
        filters.addWidget(self.search_edit, 1)
        filters.addWidget(self.refresh_button)

        self.table = QTableWidget(0, len(LIST_COLUMNS), objectName="applications")
        self.table.setHorizontalHeaderLabels(LIST_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.itemSelectionChanged.connect(self._selected)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addLayout(filters)
        lv.addWidget(self.table, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self._details_box())
        splitter.setSizes([480, 560])
        v = QVBoxLayout(tab)
        v.addWidget(splitter, 1)
        return tab

    def _details_box(self) -> QWidget:
        box = QGroupBox("Application")
        self.summary_label = _label("summary")
        self.steps_table = QTableWidget(0, len(STEP_COLUMNS), objectName="steps")
        self.steps_table.setHorizontalHeaderLabels(STEP_COLUMNS)
        self.steps_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.steps_table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.steps_table.verticalHeader().hide()

        self.notes_edit = QLineEdit(objectName="notes", placeholderText="notes for the step")
        self.meter_edit = QLineEdit(objectName="meter", placeholderText="first free meter")
        self.account_edit = QLineEdit(objectName="account", placeholderText="next free number")
        self.next_button = QPushButton("Next step", objectName="next_step", minimumHeight=34)
        self.next_button.clicked.connect(self.next_step)
        self.reason_edit = QLineEdit(objectName="reason", placeholderText="reason (required)")
        self.reject_button = QPushButton("Re&ject", objectName="reject")
        self.reject_button.clicked.connect(lambda: self.withdraw("reject"))
        self.cancel_button = QPushButton("&Cancel application", objectName="cancel")
        self.cancel_button.clicked.connect(lambda: self.withdraw("cancel"))
        self.form_button = QPushButton("Show &form", objectName="show_form")
        self.form_button.clicked.connect(self.show_form)
        self.pdf_button = QPushButton("Save form as &PDF...", objectName="save_pdf")
        self.pdf_button.clicked.connect(self._ask_pdf_file)
        self.result_label = _label("result", style=OK_STYLE)
        self.form_view = QPlainTextEdit(objectName="form_text", readOnly=True)
        self.form_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.form_view.hide()

        step_form = QFormLayout()
        step_form.addRow("Notes:", self.notes_edit)
        step_form.addRow("Meter (assign):", self.meter_edit)
        step_form.addRow("Account no (open):", self.account_edit)
        withdraw = QHBoxLayout()
        withdraw.addWidget(self.reason_edit, 1)
        withdraw.addWidget(self.reject_button)
        withdraw.addWidget(self.cancel_button)
        printing = QHBoxLayout()
        printing.addWidget(self.form_button)
        printing.addWidget(self.pdf_button)
        printing.addStretch(1)
        v = QVBoxLayout(box)
        v.addWidget(self.summary_label)
        v.addWidget(self.steps_table, 1)
        v.addLayout(step_form)
        v.addWidget(self.next_button)
        v.addLayout(withdraw)
        v.addLayout(printing)
        v.addWidget(self.result_label)
        v.addWidget(self.form_view, 1)
        return box

    def _new_tab(self) -> QWidget:
        tab = QWidget()
        person = QGroupBox("Applicant (cleared after each submission)")
        self.name_edit = QLineEdit(objectName="name")
        self.address_edit = QLineEdit(objectName="address")
        self.phone_edit = QLineEdit(objectName="phone")
        self.category_combo = QComboBox(objectName="category")
        self.amps_edit = QLineEdit(objectName="amps", placeholderText="e.g. 32 (default: rating)")
        self.new_notes_edit = QLineEdit(objectName="new_notes")
        pf = QFormLayout(person)
        pf.addRow("Name:", self.name_edit)
        pf.addRow("Address:", self.address_edit)
        pf.addRow("Phone:", self.phone_edit)
        pf.addRow("Category:", self.category_combo)
        pf.addRow("Requested amps:", self.amps_edit)
        pf.addRow("Notes:", self.new_notes_edit)

        settings = QGroupBox("Service settings (kept from one customer to the next in batch mode)")
        self.model_combo = QComboBox(objectName="model")
        self.capacity_combo = QComboBox(objectName="capacity_mode")
        self.tariff_combo = QComboBox(objectName="tariff")
        self.district_combo = QComboBox(objectName="district")
        self.batch_edit = QLineEdit(objectName="batch", placeholderText="e.g. ELM-STREET-2026")
        self.target_combo = QComboBox(objectName="advance_to")
        for s in A.BATCH_TARGETS:
            self.target_combo.addItem(s.value.replace("_", " "), s.value)
        sf = QFormLayout(settings)
        sf.addRow("Meter model:", self.model_combo)
        sf.addRow("Capacity-limit mode:", self.capacity_combo)
        sf.addRow("Tariff:", self.tariff_combo)
        sf.addRow("District (area code):", self.district_combo)
        sf.addRow("Batch label:", self.batch_edit)
        sf.addRow("Take it to:", self.target_combo)

        self.batch_check = QCheckBox("&Batch mode: keep the service settings after submitting",
                                     objectName="batch_mode")
        self.submit_button = QPushButton("&Submit application", objectName="submit",
                                         minimumHeight=36)
        self.submit_button.clicked.connect(self.submit)
        self.submit_result = _label("submit_result", style=OK_STYLE)
        v = QVBoxLayout(tab)
        v.addWidget(person)
        v.addWidget(settings)
        v.addWidget(self.batch_check)
        v.addWidget(self.submit_button)
        v.addWidget(self.submit_result)
        v.addStretch(1)
        return tab

    # -- background jobs -------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._jobs > 0

    def _run(self, text: str, fn, on_done) -> None:
        """Run ``fn`` on the worker thread; the page is busy until every job has answered."""
        self._jobs += 1
        self.error_label.clear()
        self.busy_label.setText(text)
        self.busy_bar.show()
        self._update_buttons()
        self.ctx.run(fn, lambda value: self._finished(on_done, value),
                     lambda message: self._finished(self._failed, message))

    def _finished(self, callback, value) -> None:
        self._jobs -= 1
        if not self.busy:
            self.busy_label.clear()
            self.busy_bar.hide()
        callback(value)
        self._update_buttons()

    def _failed(self, message: str) -> None:
        self.error_label.setText(message)

    def _update_buttons(self) -> None:
        idle, a = not self.busy, self.current
        live = a is not None and A.AppState(a.state) in A.WITHDRAWABLE
        self.next_button.setEnabled(idle and self.can_manage and a is not None
                                    and a.next_action is not None)
        self.reject_button.setEnabled(idle and self.can_manage and live)
        self.cancel_button.setEnabled(idle and self.can_manage and live)
        self.form_button.setEnabled(idle and a is not None)
        self.pdf_button.setEnabled(idle and a is not None)
        self.submit_button.setEnabled(idle and self.can_manage)
        self.meter_edit.setEnabled(a is not None and a.next_action == "assign-meter")
        self.account_edit.setEnabled(a is not None and a.next_action == "open")

    # -- the list and one application ------------------------------------------------------------
    def load_choices(self) -> None:
        self._run("Loading models, districts and tariffs...",
                  lambda: A.form_choices(self.app, self.op), self._fill_choices)

    def _fill_choices(self, choices: A.FormChoices) -> None:
        for combo, pairs, blank in (
                (self.model_combo, choices.models, "(choose)"),
                (self.capacity_combo, [(m, m) for m in choices.capacity_modes], "(none given)"),
                (self.tariff_combo, choices.tariffs, "(default tariff)"),
                (self.district_combo, choices.districts, "(none given)")):
            combo.clear()
            combo.addItem(blank, None)
            for code, title in pairs:
                combo.addItem(title, code)
        self.category_combo.clear()
        for c in choices.categories:
            self.category_combo.addItem(c, c)

    def refresh(self, select: str | None = None) -> None:
        state, text = self.state_combo.currentData(), self.search_edit.text()
        keep = select or (self.current.number if self.current else None)
        self._run("Loading applications...",
                  lambda: A.list_applications(self.app, self.op, state=state, text=text),
                  lambda rows: self._fill_table(rows, keep))

    def _fill_table(self, rows: list[A.Application], select: str | None) -> None:
        self.rows = rows
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        chosen = None
        for r, a in enumerate(rows):
            for c, value in enumerate((a.number, a.state.replace("_", " "), a.applicant_name,
                                       a.account_no, a.next_action)):
                self.table.setItem(r, c, _item(value))
            if a.number == select:
                chosen = r
        self.table.resizeColumnToContents(0)
        if chosen is not None:
            self.table.selectRow(chosen)
        self.table.blockSignals(False)
        if chosen is not None:
            self.open_application(select)
        else:
            self.table.clearSelection()
            self._show_details(None)

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.open_application(self.rows[rows[0].row()].number)

    def open_application(self, number: str) -> None:
        self._run(f"Loading {number}...", lambda: A.get_application(self.app, self.op, number),
                  self._show_details)

    def _show_details(self, a: A.Application | None) -> None:
        if a is not None and self.current is not None and a.number != self.current.number:
            self.form_view.hide()
        self.current = a
        if a is None:
            self.summary_label.setText("Choose an application in the list.")
            self.steps_table.setRowCount(0)
            self.next_button.setText("Next step")
            self._update_buttons()
            return
        amps = f", {a.requested_amps} A" if a.requested_amps is not None else ""
        self.summary_label.setText(
            f"<b>{a.number}</b> - <b>{a.state.replace('_', ' ')}</b><br>"
            f"{a.applicant_name}, {a.address or '-'}, {a.phone or '-'} ({a.category}{amps})<br>"
            f"District {a.district_code or '-'}, model {a.model_code or '-'}, capacity limit "
            f"{a.capacity_mode or '-'}, tariff {a.tariff or '(default)'}"
            + (f", batch {a.batch}" if a.batch else "") +
            f"<br>Meter {a.meter_no or '-'}, account {a.account_no or '-'}, "
            f"card {a.card_uid or '-'}")
        self.steps_table.setRowCount(len(a.steps))
        for r, s in enumerate(a.steps):
            for c, value in enumerate((s.at.strftime("%Y-%m-%d %H:%M"), s.state.replace("_", " "),
                                       s.operator, s.notes)):
                self.steps_table.setItem(r, c, _item(value))
        self.steps_table.resizeColumnsToContents()
        self.next_button.setText(BUTTON_TEXT.get(a.next_action, "No further step"))
        self._update_buttons()

    # -- actions -------------------------------------------------------------------------------
    def next_step(self) -> None:
        a = self.current
        if a is None or a.next_action is None:
            return
        action, number = a.next_action, a.number
        kw = {"notes": self.notes_edit.text()}
        if action == "assign-meter":
            kw["meter_no"] = self.meter_edit.text().strip() or None
        elif action == "open":
            kw["account_no"] = self.account_edit.text().strip() or None
        text = ("Opening the account and writing the card..." if action == "open"
                else f"{BUTTON_TEXT[action]}...")
        self._run(text, lambda: A.advance(self.app, self.op, number, action, **kw),
                  self._moved)

    def withdraw(self, how: str) -> None:
        if self.current is None:
            return
        number, reason = self.current.number, self.reason_edit.text()
        fn = A.reject if how == "reject" else A.cancel
        self._run(f"{how.title()}ing {number}...", lambda: fn(self.app, self.op, number, reason),
                  self._moved)

    def _moved(self, a: A.Application) -> None:
        self.notes_edit.clear()
        self.meter_edit.clear()
        self.account_edit.clear()
        self.reason_edit.clear()
        extra = ""
        if a.steps and a.steps[-1].notes:
            extra = f" ({a.steps[-1].notes})"
        self.result_label.setText(f"Application {a.number} is {a.state.replace('_', ' ')}{extra}")
        self.ctx.status(f"Application {a.number}: {a.state}")
        self._show_details(a)
        self.refresh(select=a.number)

    def show_form(self) -> None:
        if self.current is None:
            return
        number = self.current.number
        self._run("Preparing the form...", lambda: A.render_form(self.app, self.op, number),
                  self._form_shown)

    def _form_shown(self, text: str) -> None:
        self.form_view.setPlainText(text)
        self.form_view.show()

    def _ask_pdf_file(self) -> None:
        if self.current is None:
            return
        name, _ = QFileDialog.getSaveFileName(self, "Save application form",
                                              f"application-{self.current.number}.pdf",
                                              "PDF files (*.pdf)")
        if name:
            self.save_pdf(Path(name))

    def save_pdf(self, path: Path) -> None:
        number = self.current.number

        def write():
            data = A.render_form(self.app, self.op, number, pdf=True)
            path.write_bytes(data)
            return path

        self._run("Writing the PDF...", write,
                  lambda p: self.result_label.setText(f"Form {number} saved to {p}"))

    # -- new applications ------------------------------------------------------------------------
    def settings(self) -> A.BatchSettings:
        return A.BatchSettings(self.model_combo.currentData(), self.capacity_combo.currentData(),
                               self.tariff_combo.currentData(), self.district_combo.currentData(),
                               self.batch_edit.text().strip() or None)

    def submit(self) -> None:
        applicant = A.Applicant(self.name_edit.text(), self.address_edit.text(),
                                self.phone_edit.text(), self.category_combo.currentData()
                                or "residential", self.amps_edit.text().strip() or None)
        settings, target = self.settings(), self.target_combo.currentData()
        notes = self.new_notes_edit.text()
        self._run(f"Submitting the application of {applicant.name.strip()}...",
                  lambda: A.submit_batch(self.app, self.op, [applicant], settings, target, notes),
                  self._submitted)

    def _submitted(self, made: list[A.Application]) -> None:
        self.last_submitted = made
        a = made[0]
        self.submit_result.setText(f"Application {a.number} for {a.applicant_name} is "
                                   f"{a.state.replace('_', ' ')}"
                                   + (f", meter {a.meter_no}" if a.meter_no else ""))
        for edit in (self.name_edit, self.address_edit, self.phone_edit, self.amps_edit,
                     self.new_notes_edit):
            edit.clear()
        if not self.batch_check.isChecked():
            for combo in (self.model_combo, self.capacity_combo, self.tariff_combo,
                          self.district_combo, self.target_combo):
                combo.setCurrentIndex(0)
            self.batch_edit.clear()
        self.category_combo.setCurrentIndex(0)
        self.name_edit.setFocus()
        self.refresh()
