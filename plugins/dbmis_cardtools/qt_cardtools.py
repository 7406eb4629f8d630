"""The card tools page: read any card, write service cards, import their data, the service-card log.

Everything that touches the card or the database goes through ``ctx.run`` (the host's worker
thread), so the window stays responsive. The cardtools service decides what is allowed; the page
disables what the operator's role may not do, so nobody clicks a button only to be refused.
"""

from __future__ import annotations

from datetime import datetime

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QBrush, QColor, QFontDatabase
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.cards import SINGLE_METER_TYPES
from dbmis_core.services import cardtools
from dbmis_core.services.auth import Perm
from dbmis_core.types import ERROR_STYLE

WARNING_STYLE = "color: #a05a00;"
BAD, GOOD = QColor("#b00020"), QColor("#1b6e20")
TYPES = (  # (shown, service type, what it does)
    ("Test card", "test", "A small test credit, usable a limited number of times, to prove a meter "
                          "works."),
    ("Check card", "check", "The meter copies all its data and parameters onto the card and "
                            "changes nothing."),
    ("Set card", "set", "Meter parameters. Each card gets a new version; a meter applies a version "
                        "once. 0 means the limit is not used."),
    ("Clear card", "clear", "The meter writes its data onto the card, then forgets its customer "
                            "(sequence, credit, bound card)."),
    ("Preset card", "preset", "Credit for a newly installed meter; its first purchase repays it."),
    ("Meter-reading card", "meter_reading", "Collects compact readings of the meters along a "
                                            "route (4 meters per card)."),
    ("Management card", "management", "Suspends or resumes supply of one meter without touching "
                                      "its data."),
)
FIELDS = {
    "test": (("credit", "Test credit (kWh)", "1.00"), ("uses", "Uses in all (1-8)", "3")),
    "set": (("alarm1", "Alarm level 1", "0"), ("alarm2", "Alarm level 2 (lower)", "0"),
            ("hoarding_limit", "Hoarding limit", "0"), ("overdraft_limit", "Overdraft limit", "0"),
            ("power_limit_w", "Power limit (W)", "0"), ("price", "Price per kWh (money meters)",
                                                        "0")),
    "preset": (("credit", "Preset credit", ""),),
    "meter_reading": (("route", "Route code", ""),),
}
LOG_COLUMNS = ("Written", "Type", "Card", "Operator", "Station", "Meters", "Parameters", "Imported")


def _label(name: str, text: str = "", style: str | None = None) -> QLabel:
    label = QLabel(text, objectName=name, wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if style:
        label.setStyleSheet(style)
    return label


def _text(value) -> str:
    if value is None or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


class CardToolsPage(QWidget):
    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.app, self.op = ctx.app, ctx.operator
        self.can_write = self.op.can(Perm.WRITE_SERVICE_CARDS)
        self.can_import = self.op.can(Perm.MANAGE_METERS)
        self.description: dict | None = None
        self.last_written = None
        self.last_import = None
        self._jobs = 0
        self._build()
        self._type_changed()
        self._update_buttons()
        self.refresh_log()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.tabs = QTabWidget(objectName="tabs")
        self.tabs.addTab(self._read_tab(), "&Read card")
        self.tabs.addTab(self._write_tab(), "&Write service card")
        self.tabs.addTab(self._import_tab(), "&Import data")
        self.tabs.addTab(self._log_tab(), "Service card &log")
        self.busy_bar = QProgressBar(objectName="busy", maximumWidth=160, textVisible=False)
        self.busy_bar.setRange(0, 0)
        self.busy_bar.hide()
        self.busy_label = _label("busy_text")
        self.error_label = _label("error", style=ERROR_STYLE)
        busy_row = QHBoxLayout()
        busy_row.addWidget(self.busy_bar)
        busy_row.addWidget(self.busy_label, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Card tools</h2>"))
        layout.addWidget(self.tabs, 1)
        layout.addLayout(busy_row)
        layout.addWidget(self.error_label)

    def _read_tab(self) -> QWidget:
        tab = QWidget()
        self.read_button = QPushButton("Read the card in the reader", objectName="read_any")
        self.read_button.clicked.connect(self.read_card)
        self.summary_label = _label("summary", "Insert any card and read it: user cards, service "
                                    "cards, blank or foreign cards.")
        self.warnings_label = _label("warnings", style=WARNING_STYLE)
        self.tree = QTreeWidget(objectName="tree", columnCount=2)
        self.tree.setHeaderLabels(["Field", "Value"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        v = QVBoxLayout(tab)
        v.addWidget(self.read_button, 0, Qt.AlignmentFlag.AlignLeft)
        v.addWidget(self.summary_label)
        v.addWidget(self.warnings_label)
        v.addWidget(self.tree, 1)
        return tab

    def _write_tab(self) -> QWidget:
        tab = QWidget()
        self.type_combo = QComboBox(objectName="card_type")
        for shown, name, _ in TYPES:
            self.type_combo.addItem(shown, name)
        self.type_combo.currentIndexChanged.connect(self._type_changed)
        self.type_hint = _label("type_hint")
        self.meter_edit = QLineEdit(objectName="meter")
        self.forms = QStackedWidget(objectName="forms")
        self.param_edits: dict[str, dict[str, QLineEdit]] = {}
        for _, name, _ in TYPES:
            page, form = QWidget(), QFormLayout()
            page.setLayout(form)
            edits = self.param_edits[name] = {}
            for field, text, default in FIELDS.get(name, ()):
                edits[field] = QLineEdit(default, objectName=f"{name}_{field}")
                form.addRow(f"{text}:", edits[field])
            if name == "management":
                self.action_combo = QComboBox(objectName="management_action")
                self.action_combo.addItem("Suspend supply", "suspend")
                self.action_combo.addItem("Resume supply", "resume")
                form.addRow("Action:", self.action_combo)
            if form.rowCount() == 0:
                form.addRow(QLabel("This card takes no parameters."))
            self.forms.addWidget(page)
        self.write_button = QPushButton("&Write service card onto the blank card", objectName="write",
                                        minimumHeight=36)
        self.write_button.clicked.connect(self.write_card)
        self.write_result = _label("write_result")
        form = QFormLayout()
        form.addRow("Card type:", self.type_combo)
        form.addRow(self.type_hint)
        form.addRow("Meter:", self.meter_edit)
        v = QVBoxLayout(tab)
        v.addLayout(form)
        v.addWidget(self.forms)
        if not self.can_write:
            v.addWidget(_label("write_denied", f"Your role ({self.op.role}) may not write service "
                               "cards.", WARNING_STYLE))
            self.write_button.setToolTip("needs the write_service_cards permission")
        v.addWidget(self.write_button)
        v.addWidget(self.write_result)
        v.addStretch(1)
        return tab

    def _import_tab(self) -> QWidget:
        tab = QWidget()
        self.import_button = QPushButton("&Import the meter data on the card", objectName="import")
        self.import_button.clicked.connect(self.import_data)
        if not self.can_import:
            self.import_button.setToolTip("needs the manage_meters permission")
        self.import_result = QPlainTextEdit(objectName="import_result", readOnly=True)
        v = QVBoxLayout(tab)
        v.addWidget(QLabel("Check, clear and meter-reading cards bring meter data back into the "
                           "customers' history; set cards tell which parameter version each meter "
                           "holds. Importing a card twice stores nothing twice.", wordWrap=True))
        v.addWidget(self.import_button, 0, Qt.AlignmentFlag.AlignLeft)
        v.addWidget(self.import_result, 1)
        return tab

    def _log_tab(self) -> QWidget:
        tab = QWidget()
        self.refresh_button = QPushButton("Refresh", objectName="refresh_log")
        self.refresh_button.clicked.connect(self.refresh_log)
        self.log_table = QTableWidget(0, len(LOG_COLUMNS), objectName="log_table")
        self.log_table.setHorizontalHeaderLabels(LOG_COLUMNS)
        self.log_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.log_table.horizontalHeader().setStretchLastSection(True)
        v = QVBoxLayout(tab)
        v.addWidget(self.refresh_button, 0, Qt.AlignmentFlag.AlignLeft)
        v.addWidget(self.log_table, 1)
        return tab

    # -- state ---------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._jobs > 0

    def _update_buttons(self) -> None:
        idle = not self.busy
        self.read_button.setEnabled(idle)
        self.write_button.setEnabled(idle and self.can_write)
        self.import_button.setEnabled(idle and self.can_import)
        self.refresh_button.setEnabled(idle)

    def _run(self, text: str, fn, on_done) -> None:
        """Run ``fn`` on the worker thread; the page is busy until every job has answered."""
        self._jobs += 1
        self.error_label.clear()
        self.busy_label.setText(text)
        self.busy_bar.show()
        self._update_buttons()
        self.ctx.run(fn, lambda result: self._finished(on_done, result),
                     lambda message: self._finished(self.error_label.setText, message))

    def _finished(self, callback, value) -> None:
        self._jobs -= 1
        if not self.busy:
            self.busy_label.clear()
            self.busy_bar.hide()
        self._update_buttons()
        callback(value)

    def _type_changed(self, _index: int = 0) -> None:
        name = self.type_combo.currentData()
        self.forms.setCurrentIndex(self.type_combo.currentIndex())
        self.type_hint.setText(TYPES[self.type_combo.currentIndex()][2])
        single = cardtools.service_type(name) in SINGLE_METER_TYPES
        self.meter_edit.setPlaceholderText("meter number (required)" if single
                                           else "empty: any meter of the utility")

    # -- reading -------------------------------------------------------------------------------
    def read_card(self) -> None:
        self._run("Reading the card...", lambda: cardtools.description_dict(
            cardtools.describe_any_card(self.app, self.op)), self._show)

    def _show(self, data: dict) -> None:
        self.description = data
        kind = data["kind"]
        header = data.get("header", {})
        what = header.get("card_type", kind).replace("_", "-")
        text = f"<b>{what.capitalize()} card</b> {data['uid']}"
        if kind == "service":
            target = header["meter_no"]
            text += f" for {'any meter' if target == 'any' else 'meter ' + target}"
        elif kind == "user":
            text += f" of account {header['account_no']}, meter {header['meter_no']}"
        if data.get("problem"):
            text += f": {data['problem']}"
        self.summary_label.setText(text + f" - PSC tries left: {data['psc_tries_left']}")
        self.warnings_label.setText("\n".join(f"Warning: {w}" for w in data["warnings"]))
        self.tree.clear()
        self._fill(self.tree.invisibleRootItem(), data, "")
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            item.setExpanded(item.text(0) != "raw")

    def _fill(self, parent: QTreeWidgetItem, data, key: str) -> None:
        pairs = (data.items() if isinstance(data, dict)
                 else ((self._list_label(v, i), v) for i, v in enumerate(data)))
        for name, value in pairs:
            label = str(name).replace("_", " ")
            if isinstance(value, (dict, list)) and value:
                item = QTreeWidgetItem(parent, [label, f"{len(value)} items"
                                                if isinstance(value, list) else ""])
                self._fill(item, value, str(name))
                item.setExpanded(str(name) not in ("raw", "history"))
                continue
            item = QTreeWidgetItem(parent, [label, _text(value)])
            if key == "areas":
                item.setForeground(1, QBrush(GOOD if value in ("valid", "empty") else BAD))
            elif key == "raw":
                item.setFont(1, QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))

    @staticmethod
    def _list_label(value, index: int) -> str:
        if isinstance(value, dict) and "meter_no" in value:
            return f"{index + 1}: meter {value['meter_no']}"
        if isinstance(value, dict) and "slot" in value:
            return f"slot {value['slot']}"
        return str(index + 1)

    def value_at(self, *path: str) -> str | None:
        """The value shown under ``path`` of field labels, e.g. ("answer", "returned", "remaining")."""
        item = self.tree.invisibleRootItem()
        for label in path:
            item = next((item.child(i) for i in range(item.childCount())
                         if item.child(i).text(0) == label), None)
            if item is None:
                return None
        return item.text(1)

    # -- writing -------------------------------------------------------------------------------
    def write_card(self) -> None:
        name = self.type_combo.currentData()
        meter = self.meter_edit.text().strip() or None
        params = {k: e.text().strip() for k, e in self.param_edits[name].items() if e.text().strip()}
        if name == "management":
            params["action"] = self.action_combo.currentData()
        self.write_result.clear()
        self._run(f"Writing a {name.replace('_', '-')} card...",
                  lambda: cardtools.write_service_card(self.app, self.op, name, meter, **params),
                  self._written)

    def _written(self, written) -> None:
        self.last_written = written
        target = "any meter" if written.targets == "any" else f"meter {written.targets[0]}"
        shown = ", ".join(f"{k} {v}" for k, v in written.parameters.items())
        text = (f"{written.card_type.name.lower().replace('_', '-').capitalize()} card "
                f"{written.uid} written for {target}" + (f": {shown}" if shown else "") + ".")
        self.write_result.setText(text)
        self.ctx.status(text)
        self.refresh_log()
        self.read_card()

    # -- importing -----------------------------------------------------------------------------
    def import_data(self) -> None:
        self._run("Importing the card's meter data...",
                  lambda: cardtools.import_service_card_data(self.app, self.op), self._imported)

    def _imported(self, result) -> None:
        self.last_import = result
        lines = [f"Imported: meter {m} (account {a}), data of {t:%Y-%m-%d}"
                 for m, a, t in result.imported]
        lines += [f"Already imported: meter {m}, data of {t:%Y-%m-%d}" for m, t in result.already]
        lines += [f"Skipped: meter {m}: {why}" for m, why in result.skipped]
        lines += [f"Meter {m} holds parameter version {v}" for m, v in result.parameter_versions]
        lines += list(result.notes)
        kind = result.card_type.name.lower().replace("_", "-")
        self.import_result.setPlainText(f"{kind.capitalize()} card {result.uid}\n"
                                        + ("\n".join(lines) or "Nothing to import."))
        self.ctx.status(f"{len(result.imported)} readings imported from card {result.uid}")
        self.refresh_log()

    # -- the log -------------------------------------------------------------------------------
    def refresh_log(self) -> None:
        self._run("Loading the service card log...",
                  lambda: cardtools.service_card_log(self.app, self.op), self._fill_log)

    def _fill_log(self, entries) -> None:
        self.log_table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            values = (_text(e.written_at), e.card_type.name.lower().replace("_", "-"), e.uid,
                      e.operator, e.station, "any" if e.targets == "any" else ", ".join(e.targets),
                      ", ".join(f"{k} {v}" for k, v in e.parameters.items()),
                      _text(e.imported_at))
            for col, value in enumerate(values):
                self.log_table.setItem(row, col, QTableWidgetItem(value))
        self.log_table.resizeColumnsToContents()
