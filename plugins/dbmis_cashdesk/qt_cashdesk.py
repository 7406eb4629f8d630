"""The cash desk page: reprint a receipt (marked COPY), save it or an invoice as PDF, see the open
till, close it with the counted cash, and the list of closings.

Database work goes through ``ctx.run`` (the host's worker thread). The receipts and dayclose services
decide everything; the page shows the discrepancy before the clerk confirms, and asks for file names
and confirmation through two replaceable methods (``ask_file``, ``confirm``) so tests can answer.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from PyQt6.QtCore import QRegularExpression, Qt
from PyQt6.QtGui import QBrush, QColor, QFont, QFontDatabase, QRegularExpressionValidator
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.services import dayclose, receipts
from dbmis_core.services.auth import Perm
from dbmis_core.types import ERROR_STYLE

BAD, GOOD = QColor("#b00020"), QColor("#1b6e20")
CLOSING_COLUMNS = ("No", "Business day", "Operator", "Sales", "Expected", "Counted", "Discrepancy",
                   "Closed by", "Note")


def _label(name: str, text: str = "", style: str | None = None) -> QLabel:
    label = QLabel(text, objectName=name, wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if style:
        label.setStyleSheet(style)
    return label


def discrepancy_text(expected: Decimal, counted: Decimal) -> str:
    d = counted - expected
    if d == 0:
        return "0.00 (balanced)"
    return f"{d} ({'over' if d > 0 else 'short'})"


class CashDeskPage(QWidget):
    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.app, self.op = ctx.app, ctx.operator
        self.till = None
        self.last_closing = None
        self._build()
        self.refresh()

    # -- hooks a test replaces ---------------------------------------------------------------------
    def ask_file(self, title: str, suggested: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, suggested, "PDF (*.pdf)")
        return path

    def confirm(self, text: str) -> bool:
        return QMessageBox.question(self, "Close the till", text) == QMessageBox.StandardButton.Yes

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        columns = QHBoxLayout()
        columns.addWidget(self._reprint_box(), 1)
        columns.addWidget(self._till_box(), 1)
        self.error_label = _label("error", style=ERROR_STYLE)
        self.info_label = _label("info")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Cash desk</h2>"))
        layout.addLayout(columns, 3)
        layout.addWidget(self._closings_box(), 2)
        layout.addWidget(self.info_label)
        layout.addWidget(self.error_label)

    def _reprint_box(self) -> QGroupBox:
        box = QGroupBox("Receipts")
        self.receipt_edit = QLineEdit(objectName="receipt_no", placeholderText="e.g. S01-00000001")
        self.receipt_edit.returnPressed.connect(self.reprint)
        self.reprint_button = QPushButton("&Reprint (COPY)", objectName="reprint")
        self.reprint_button.clicked.connect(self.reprint)
        self.pdf_button = QPushButton("Save receipt &PDF...", objectName="save_pdf")
        self.pdf_button.clicked.connect(lambda: self.save_pdf("receipt"))
        self.invoice_button = QPushButton("Save &invoice PDF...", objectName="save_invoice")
        self.invoice_button.clicked.connect(lambda: self.save_pdf("invoice"))
        self.receipt_view = QPlainTextEdit(objectName="receipt", readOnly=True)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.receipt_view.setFont(mono)
        self.receipt_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        row = QHBoxLayout()
        row.addWidget(self.receipt_edit, 1)
        row.addWidget(self.reprint_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pdf_button)
        buttons.addWidget(self.invoice_button)
        buttons.addStretch(1)
        v = QVBoxLayout(box)
        v.addLayout(row)
        v.addLayout(buttons)
        v.addWidget(self.receipt_view, 1)
        return box

    def _till_box(self) -> QGroupBox:
        box = QGroupBox("Today's till")
        self.operator_combo = QComboBox(objectName="operator", editable=True)
        self.operator_combo.addItem(self.op.login)
        self.operator_combo.setEnabled(self.op.can(Perm.CLOSE_ANY_DAY))
        self.operator_combo.activated.connect(lambda _i: self.refresh())
        self.refresh_button = QPushButton("Re&fresh", objectName="refresh")
        self.refresh_button.clicked.connect(self.refresh)
        who = QHBoxLayout()
        who.addWidget(self.operator_combo, 1)
        who.addWidget(self.refresh_button)
        self.summary_view = QPlainTextEdit(objectName="summary", readOnly=True)
        self.summary_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.expected_label = _label("expected", "-")
        self.counted_edit = QLineEdit(objectName="counted", placeholderText="0.00")
        self.counted_edit.setValidator(QRegularExpressionValidator(
            QRegularExpression(r"\d{0,9}(\.\d{0,4})?"), self.counted_edit))
        self.counted_edit.textChanged.connect(self._show_discrepancy)
        self.discrepancy_label = _label("discrepancy", "-")
        bold = self.discrepancy_label.font()
        bold.setBold(True)
        self.discrepancy_label.setFont(bold)
        self.note_edit = QLineEdit(objectName="note", placeholderText="remark (e.g. why it is short)")
        self.close_button = QPushButton("&Close the till...", objectName="close_till",
                                        minimumHeight=36)
        self.close_button.clicked.connect(self.close_till)
        self.close_button.setEnabled(False)  # until the till is loaded and cash typed in
        form = QFormLayout()
        form.addRow("Operator:", who)
        form.addRow("Expected cash:", self.expected_label)
        form.addRow("Counted cash:", self.counted_edit)
        form.addRow("Discrepancy:", self.discrepancy_label)
        form.addRow("Note:", self.note_edit)
        v = QVBoxLayout(box)
        v.addWidget(self.summary_view, 1)
        v.addLayout(form)
        v.addWidget(self.close_button)
        return box

    def _closings_box(self) -> QGroupBox:
        box = QGroupBox("Day closings")
        self.closings_table = QTableWidget(0, len(CLOSING_COLUMNS), objectName="closings")
        self.closings_table.setHorizontalHeaderLabels(CLOSING_COLUMNS)
        self.closings_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.closings_table.horizontalHeader().setSectionResizeMode(
            len(CLOSING_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.closings_table.verticalHeader().hide()
        v = QVBoxLayout(box)
        v.addWidget(self.closings_table)
        return box

    # -- receipts ------------------------------------------------------------------------------
    def _receipt_no(self) -> str:
        return self.receipt_edit.text().strip()

    def reprint(self) -> None:
        no = self._receipt_no()
        self.error_label.clear()
        self.ctx.run(lambda: receipts.receipt_text(self.app, self.op, no, copy=True),
                     self._show_receipt, self._failed)

    def _show_receipt(self, text: str) -> None:
        self.receipt_view.setPlainText(text)
        self.ctx.status("Receipt copy ready")

    def save_pdf(self, kind: str) -> None:
        no = self._receipt_no()
        if not no:
            self.error_label.setText("give a receipt number first")
            return
        path = self.ask_file(f"Save {kind} {no}", f"{kind}-{no}.pdf")
        if not path:
            return
        make = receipts.receipt_pdf if kind == "receipt" else receipts.invoice_pdf
        self.error_label.clear()

        def save():
            data = make(self.app, self.op, no, copy=True)
            with open(path, "wb") as f:
                f.write(data)
            return path

        self.ctx.run(save, lambda p: self.info_label.setText(f"{kind} {no} saved in {p}"),
                     self._failed)

    # -- till ----------------------------------------------------------------------------------
    def _operator(self) -> str:
        return self.operator_combo.currentText().strip() or self.op.login

    def refresh(self) -> None:
        who = self._operator()
        can_any = self.op.can(Perm.CLOSE_ANY_DAY)

        def load():
            till = dayclose.summary(self.app, self.op, who)
            others = dayclose.open_operators(self.app, self.op) if can_any else []
            return till, others, dayclose.closings(self.app, self.op)

        self.ctx.run(load, self._loaded, self._failed)

    def _loaded(self, result) -> None:
        till, others, closings = result
        self.till = till
        current = self._operator()
        for login in others:
            if self.operator_combo.findText(login) < 0:
                self.operator_combo.addItem(login)
        self.operator_combo.setCurrentText(current)
        s = till.summary
        lines = [f"Sales            {s['sales']['count']:>4}  {s['sales']['total']:>12}"]
        for kind, v in s["cash"].items():
            lines.append(f"{kind:<16} {v['count']:>4}  {v['total']:>12}")
        lines.append(f"{'Expected cash':<22}{s['expected']:>12}")
        if s["first_receipt"]:
            lines.append(f"Receipts {s['first_receipt']} .. {s['last_receipt']}")
        if till.unfinished:
            lines.append(f"Unfinished sales: {', '.join(till.unfinished)} - reconcile them "
                         "with the customers' cards before closing")
        self.summary_view.setPlainText("\n".join(lines))
        self.expected_label.setText(str(till.expected))
        self._show_discrepancy()
        self._show_closings(closings)

    def _counted(self) -> Decimal | None:
        try:
            return Decimal(self.counted_edit.text().strip())
        except InvalidOperation:
            return None

    def _show_discrepancy(self, _text: str = "") -> None:
        counted = self._counted()
        if self.till is None or counted is None:
            self.discrepancy_label.setText("-")
            self.close_button.setEnabled(False)
            return
        self.discrepancy_label.setText(discrepancy_text(self.till.expected, counted))
        self.discrepancy_label.setStyleSheet(
            f"color: {(GOOD if counted == self.till.expected else BAD).name()};")
        self.close_button.setEnabled(not self.till.unfinished
                                     and bool(self.till.vend_ids or self.till.cash_ids))

    def close_till(self) -> None:
        counted, who = self._counted(), self._operator()
        if self.till is None or counted is None:
            return
        text = (f"Close the till of {who}?\n\nExpected cash: {self.till.expected}\n"
                f"Counted cash: {counted}\n"
                f"Discrepancy: {discrepancy_text(self.till.expected, counted)}\n\n"
                "The sales and cash entries of this till can no longer change afterwards.")
        if not self.confirm(text):
            return
        note, amount = self.note_edit.text(), self.counted_edit.text().strip()
        self.error_label.clear()
        self.ctx.run(lambda: dayclose.close(self.app, self.op, amount, note=note, operator=who),
                     self._closed, self._failed)

    def _closed(self, row) -> None:
        self.last_closing = row
        self.info_label.setText(f"Day closing {row.id} for {row.operator} on {row.business_day}: "
                                f"expected {row.expected}, counted {row.counted}, discrepancy "
                                f"{row.discrepancy}")
        self.counted_edit.clear()
        self.note_edit.clear()
        self.refresh()

    def _show_closings(self, rows) -> None:
        t = self.closings_table
        t.setRowCount(len(rows))
        for r, c in enumerate(rows):
            values = (c.id, c.business_day, c.operator, c.sales_count, c.expected, c.counted,
                      c.discrepancy, c.closed_by, c.note)
            for col, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                if CLOSING_COLUMNS[col] == "Discrepancy" and c.discrepancy != 0:
                    item.setForeground(QBrush(BAD))
                t.setItem(r, col, item)
        t.resizeColumnsToContents()

    def _failed(self, message: str) -> None:
        self.error_label.setText(message)
