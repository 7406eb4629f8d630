"""Settings pages: system parameters, code tables (one tab per table), the meter store (list with
a status filter, history, status change, import with its error report) and personnel.

Database work goes through ``ctx.run`` (the host's worker); services check the permissions, so a
page only greys out what the operator may not do and shows the service's message on refusal.
"""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.domain import MeterStatus
from dbmis_core.services import codes, meterstore, personnel, settings
from dbmis_core.services.auth import Perm


def _text(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return "" if v is None else str(v)


def _fill(table: QTableWidget, headers: list[str], rows: list[list]) -> None:
    table.clear()
    table.setColumnCount(len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(_text(v)))
    table.resizeColumnsToContents()


class _Page(QWidget):
    def __init__(self, ctx) -> None:
        super().__init__()
        self.ctx, self.app, self.op = ctx, ctx.app, ctx.operator
        self._jobs = 0
        self.layout_ = QVBoxLayout(self)
        self.error_label = QLabel(objectName="error", wordWrap=True)
        self.error_label.setStyleSheet("color: #b00020")

    @property
    def busy(self) -> bool:
        return self._jobs > 0

    def _run(self, fn, on_done) -> None:
        self._jobs += 1
        self.error_label.clear()

        def done(result):
            self._jobs -= 1
            on_done(result)

        def failed(message):
            self._jobs -= 1
            self.error_label.setText(message)

        self.ctx.run(fn, done, failed)


class ParametersPage(_Page):
    """Every parameter with its value and source; select one, type a value, Set or Reset."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.table = QTableWidget(objectName="parameters")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.itemSelectionChanged.connect(self._selected)
        form = QHBoxLayout()
        self.name_label = QLabel()
        self.value_edit = QLineEdit(objectName="value")
        self.set_button = QPushButton("Set", objectName="set")
        self.reset_button = QPushButton("Reset to default", objectName="reset")
        allowed = self.op.can(Perm.MANAGE_SETTINGS)
        for w in (self.value_edit, self.set_button, self.reset_button):
            w.setEnabled(allowed)
        self.set_button.clicked.connect(lambda: self._change(self.value_edit.text()))
        self.reset_button.clicked.connect(lambda: self._change(None))
        for w in (self.name_label, self.value_edit, self.set_button, self.reset_button):
            form.addWidget(w)
        self.layout_.addWidget(self.table)
        self.layout_.addLayout(form)
        self.layout_.addWidget(self.error_label)
        self.values: list = []
        self.refresh()

    def refresh(self) -> None:
        self._run(lambda: settings.list_settings(self.app, self.op), self._show)

    def _show(self, values) -> None:
        self.values = values
        _fill(self.table, ["Parameter", "Value", "Source", "Default", "Description"],
              [[v.name, v.value, v.source, v.default, v.description] for v in values])

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows and rows[0].row() < len(self.values):
            v = self.values[rows[0].row()]
            self.name_label.setText(v.name)
            self.value_edit.setText(_text(v.value) if v.kind != "bool" else
                                    ("true" if v.value else "false"))

    def select(self, name: str) -> None:
        for i, v in enumerate(self.values):
            if v.name == name:
                self.table.selectRow(i)

    def _change(self, raw) -> None:
        name = self.name_label.text()
        if not name:
            self.error_label.setText("choose a parameter first")
            return
        fn = ((lambda: settings.reset(self.app, self.op, name)) if raw is None
              else (lambda: settings.set_value(self.app, self.op, name, raw)))
        self._run(fn, lambda v: (self.ctx.status(f"{v.name} = {_text(v.value)}"), self.refresh()))


class _CodeTab(QWidget):
    def __init__(self, page: "CodeTablesPage", kind: str) -> None:
        super().__init__()
        self.page, self.kind = page, kind
        lay = QVBoxLayout(self)
        self.table = QTableWidget(objectName=f"codes-{kind}")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        lay.addWidget(self.table)
        form = QHBoxLayout()
        self.code_edit = QLineEdit(placeholderText="code")
        self.name_edit = QLineEdit(placeholderText="name")
        form.addWidget(self.code_edit)
        form.addWidget(self.name_edit)
        self.parent_edit = QLineEdit(placeholderText="parent")
        self.extra_edit = QLineEdit(placeholderText="constant,phases,rated amps[,manufacturer]")
        if kind in ("line", "district"):
            form.addWidget(self.parent_edit)
        if kind == "model":
            self.name_edit.hide()
            form.addWidget(self.extra_edit)
        self.add_button = QPushButton("Add", objectName=f"add-{kind}")
        self.change_button = QPushButton("Change", objectName=f"change-{kind}")
        self.deactivate_button = QPushButton("Deactivate", objectName=f"deactivate-{kind}")
        self.add_button.clicked.connect(self.add)
        self.change_button.clicked.connect(self.change)
        self.deactivate_button.clicked.connect(self.deactivate)
        for b in (self.add_button, self.change_button, self.deactivate_button):
            form.addWidget(b)
        if kind == "model":
            self.deactivate_button.hide()
        lay.addLayout(form)

    def load(self) -> None:
        self.page._run(lambda: codes.list_entries(self.page.app, self.page.op, self.kind), self.show_)

    def show_(self, entries) -> None:
        _fill(self.table, ["Code", "Name", "Active", "Parent", "Details"],
              [[e.code, e.name, e.active, e.parent,
                ", ".join(f"{k} {_text(v)}" for k, v in e.details.items() if v not in (None, ""))
                + (" (built-in)" if e.builtin else "")] for e in entries])

    def _details(self) -> dict:
        if self.kind != "model":
            return {}
        parts = [p.strip() for p in self.extra_edit.text().split(",")]
        keys = ("constant", "phases", "rated_amps", "manufacturer")
        return {k: v for k, v in zip(keys, parts) if v}

    def add(self) -> None:
        code, name, parent = self.code_edit.text(), self.name_edit.text(), self.parent_edit.text()
        self.page._run(lambda: codes.add(self.page.app, self.page.op, self.kind, code, name,
                                         parent=parent or None, **self._details()),
                       lambda e: self.load())

    def change(self) -> None:
        code, name, parent = self.code_edit.text(), self.name_edit.text(), self.parent_edit.text()
        self.page._run(lambda: codes.change(self.page.app, self.page.op, self.kind, code,
                                            name=name or None, parent=parent or None,
                                            **self._details()), lambda e: self.load())

    def deactivate(self) -> None:
        code = self.code_edit.text()
        self.page._run(lambda: codes.set_active(self.page.app, self.page.op, self.kind, code,
                                                False), lambda e: self.load())


class CodeTablesPage(_Page):
    """One tab per code table."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.tabs = QTabWidget(objectName="code-tabs")
        self.tab = {}
        for kind in codes.KINDS:
            self.tab[kind] = _CodeTab(self, kind)
            self.tabs.addTab(self.tab[kind], codes.LABELS[kind].capitalize())
        self.layout_.addWidget(self.tabs)
        self.layout_.addWidget(self.error_label)
        for t in self.tab.values():
            t.load()


class MeterStorePage(_Page):
    """Meters by status; select one for its history; change its status; import a file."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        top = QHBoxLayout()
        self.status_combo = QComboBox(objectName="status-filter")
        self.status_combo.addItem("all statuses", None)
        for s in MeterStatus:
            self.status_combo.addItem(s.value.replace("_", " "), s.value)
        self.status_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.import_button = QPushButton("Import meters...", objectName="import")
        self.import_button.clicked.connect(self._choose_file)
        self.import_button.setEnabled(self.op.can(Perm.MANAGE_METERS))
        top.addWidget(QLabel("Status:"))
        top.addWidget(self.status_combo)
        top.addStretch(1)
        top.addWidget(self.import_button)
        self.table = QTableWidget(objectName="meters")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.itemSelectionChanged.connect(self._selected)
        self.history_table = QTableWidget(objectName="history")
        change = QFormLayout()
        row = QHBoxLayout()
        self.new_status = QComboBox(objectName="new-status")
        for s in MeterStatus:
            if s != MeterStatus.INSTALLED:
                self.new_status.addItem(s.value.replace("_", " "), s.value)
        self.note_edit = QLineEdit(objectName="note", placeholderText="note")
        self.change_button = QPushButton("Change status", objectName="change-status")
        self.change_button.clicked.connect(self._change)
        self.change_button.setEnabled(self.op.can(Perm.MANAGE_METERS))
        for w in (self.new_status, self.note_edit, self.change_button):
            row.addWidget(w)
        change.addRow("Selected meter:", row)
        self.report_label = QLabel(objectName="import-report", wordWrap=True)
        self.report_table = QTableWidget(objectName="import-errors")
        self.report_table.hide()
        self.layout_.addLayout(top)
        self.layout_.addWidget(self.table, 3)
        self.layout_.addLayout(change)
        self.layout_.addWidget(QLabel("History:"))
        self.layout_.addWidget(self.history_table, 2)
        self.layout_.addWidget(self.report_label)
        self.layout_.addWidget(self.report_table, 2)
        self.layout_.addWidget(self.error_label)
        self.meters: list = []
        self.last_import = None
        self.refresh()

    def refresh(self) -> None:
        status = self.status_combo.currentData()
        self._run(lambda: meterstore.list_meters(self.app, self.op, status=status), self._show)

    def _show(self, meters) -> None:
        self.meters = meters
        self.history_table.setRowCount(0)  # the selection is gone with the old list
        _fill(self.table, ["Meter", "Model", "Manufacturer", "Status", "Customer"],
              [[m.meter_no, m.model, m.manufacturer, m.status, m.account_no] for m in meters])

    def selected_meter(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.meters[rows[0].row()].meter_no if rows else None

    def _selected(self) -> None:
        no = self.selected_meter()
        if no:
            self._run(lambda: meterstore.history(self.app, self.op, no), self._history)

    def _history(self, events) -> None:
        _fill(self.history_table, ["When", "From", "To", "How", "Operator", "Note"],
              [[f"{e.at.astimezone():%Y-%m-%d %H:%M}", e.from_status, e.to_status, e.kind,
                e.operator, e.note] for e in events])

    def _change(self) -> None:
        no = self.selected_meter()
        if not no:
            self.error_label.setText("select a meter first")
            return
        to, note = self.new_status.currentData(), self.note_edit.text()
        self._run(lambda: meterstore.change_status(self.app, self.op, no, to, note),
                  lambda ev: (self.ctx.status(f"meter {no}: {ev.from_status} -> {ev.to_status}"),
                              self.refresh()))

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import meters", "",
                                              "Meter lists (*.csv *.xlsx)")
        if path:
            self.import_file(path)

    def import_file(self, path: str, dry_run: bool = False) -> None:
        self._run(lambda: meterstore.import_meters(self.app, self.op, path, dry_run=dry_run),
                  self._report)

    def _report(self, rep) -> None:
        self.last_import = rep
        if rep.errors:
            self.report_label.setText(f"<b>{rep.file}: {len(rep.errors)} problem(s) in {rep.rows} "
                                      "rows - nothing was imported.</b> Correct the rows below "
                                      "and import the file again.")
            _fill(self.report_table, ["Row", "Column", "Value", "Problem"],
                  [[e.row, e.column, e.value, e.reason] for e in rep.errors])
            self.report_table.show()
        else:
            self.report_table.hide()
            self.report_label.setText(f"{rep.file}: {len(rep.added)} meters added to the store")
            self.refresh()


class PersonnelPage(_Page):
    """Personnel list; add a person or change the selected one."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.table = QTableWidget(objectName="personnel")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        form = QHBoxLayout()
        self.edits = {k: QLineEdit(objectName=k, placeholderText=k.replace("_", " "))
                      for k in ("employee_no", "name", "title", "phone", "operator_login")}
        for e in self.edits.values():
            form.addWidget(e)
        self.add_button = QPushButton("Add", objectName="add-person")
        self.change_button = QPushButton("Change", objectName="change-person")
        self.add_button.clicked.connect(self.add)
        self.change_button.clicked.connect(self.change)
        for b in (self.add_button, self.change_button):
            b.setEnabled(self.op.can(Perm.MANAGE_SETTINGS))
            form.addWidget(b)
        self.layout_.addWidget(self.table)
        self.layout_.addLayout(form)
        self.layout_.addWidget(self.error_label)
        self.refresh()

    def refresh(self) -> None:
        self._run(lambda: personnel.list_people(self.app, self.op), self._show)

    def _show(self, people) -> None:
        _fill(self.table, ["Employee no", "Name", "Title", "Phone", "Login", "Active"],
              [[p.employee_no, p.name, p.title, p.phone, p.operator_login, p.active]
               for p in people])

    def _values(self) -> dict:
        return {k: e.text() for k, e in self.edits.items()}

    def add(self) -> None:
        v = self._values()
        self._run(lambda: personnel.add(self.app, self.op, v["employee_no"], v["name"], v["title"],
                                        v["phone"], v["operator_login"] or None),
                  lambda p: self.refresh())

    def change(self) -> None:
        v = self._values()
        self._run(lambda: personnel.change(self.app, self.op, v["employee_no"],
                                           name=v["name"] or None, title=v["title"] or None,
                                           phone=v["phone"] or None,
                                           operator_login=v["operator_login"] or None),
                  lambda p: self.refresh())
