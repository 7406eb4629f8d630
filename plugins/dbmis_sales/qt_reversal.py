"""The "Reverse sale" page: take a sale back off the card while its credit is still unloaded.

The clerk picks the customer's sale and gives a reason; when the clerk may not reverse sales, a
supervisor approves in a dialog (login and password, checked by the service layer's login). The
service reads the card and says whether the sale can be reversed; the page only shows it.
"""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from PyQt6.QtCore import Qt

from dbmis_core.services import reversal, vending
from dbmis_core.services.auth import Perm
from dbmis_core.types import ERROR_STYLE


class SupervisorDialog(QDialog):
    """Asks a supervisor to approve a reversal with their own login and password."""

    def __init__(self, parent: QWidget | None, what: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("Supervisor approval")
        self.login_edit = QLineEdit(objectName="supervisor_login")
        self.password_edit = QLineEdit(objectName="supervisor_password",
                                       echoMode=QLineEdit.EchoMode.Password)
        form = QFormLayout()
        form.addRow("Supervisor", self.login_edit)
        form.addRow("Password", self.password_edit)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Approve")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Reversing {what} needs a supervisor's approval.", wordWrap=True))
        layout.addLayout(form)
        layout.addWidget(buttons)


class ReversalPage(QWidget):
    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.app, self.op = ctx.app, ctx.operator
        self.last_result = None
        self.supervisor_dialog: SupervisorDialog | None = None
        self._busy = False
        self._build()
        self._update_buttons()

    def _build(self) -> None:
        self.account_edit = QLineEdit(objectName="account", placeholderText="e.g. 100001")
        self.load_button = QPushButton("Show sales", objectName="load")
        self.load_button.clicked.connect(self.load_sales)
        self.account_edit.returnPressed.connect(self.load_sales)
        row = QHBoxLayout()
        row.addWidget(self.account_edit, 1)
        row.addWidget(self.load_button)
        self.sales_list = QListWidget(objectName="sales")
        self.sales_list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.reason_edit = QLineEdit(objectName="reason", placeholderText="why the sale is reversed")
        self.reason_edit.textChanged.connect(lambda *_: self._update_buttons())
        self.reverse_button = QPushButton("Reverse sale", objectName="reverse")
        self.reverse_button.clicked.connect(self.reverse)
        form = QFormLayout()
        form.addRow("Account number", row)
        form.addRow("Sales (newest first)", self.sales_list)
        form.addRow("Reason", self.reason_edit)
        hint = QLabel("Keep the customer's card in the reader. Only the meter's latest sale can be "
                      "reversed, and only while its credit is still on the card, not loaded into "
                      "the meter. The amount paid is refunded with its own receipt.", wordWrap=True)
        self.error_label = QLabel("", objectName="error", wordWrap=True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.result_text = QPlainTextEdit(objectName="result", readOnly=True)
        box = QGroupBox("Sale to reverse")
        inner = QVBoxLayout(box)
        inner.addWidget(hint)
        inner.addLayout(form)
        inner.addWidget(self.reverse_button, 0, Qt.AlignmentFlag.AlignLeft)
        inner.addWidget(self.error_label)
        inner.addWidget(self.result_text, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Reverse sale</h2>"))
        layout.addWidget(box, 1)

    def _update_buttons(self) -> None:
        self.load_button.setEnabled(not self._busy)
        self.reverse_button.setEnabled(not self._busy and self.selected_vend() is not None
                                       and bool(self.reason_edit.text().strip()))

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_buttons()

    def selected_vend(self) -> int | None:
        item = self.sales_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    # -- sales list ----------------------------------------------------------------------------
    def load_sales(self) -> None:
        account = self.account_edit.text().strip()
        self.error_label.setText("")
        self._set_busy(True)

        def fetch():
            return [(v.id, v.sequence, v.amount, v.state, v.receipt_no or "")
                    for v in vending.sales_of(self.app, self.op, account)]

        self.ctx.run(fetch, self._show_sales, self._failed)

    def _show_sales(self, rows) -> None:
        self._set_busy(False)
        self.sales_list.clear()
        for vid, seq, amount, state, receipt in reversed(rows):
            item = QListWidgetItem(f"#{seq}  {amount}  {state}  {receipt}  (sale {vid})")
            item.setData(Qt.ItemDataRole.UserRole, vid)
            self.sales_list.addItem(item)
        if rows:
            self.sales_list.setCurrentRow(0)
        self._update_buttons()

    # -- reversal ------------------------------------------------------------------------------
    def reverse(self) -> None:
        vid = self.selected_vend()
        if self._busy or vid is None:
            return
        self.error_label.setText("")
        if self.op.can(Perm.REVERSE_SALE):
            self._run(vid, None)
            return
        self.supervisor_dialog = SupervisorDialog(self, f"sale {vid}")
        self.supervisor_dialog.accepted.connect(lambda: self._approved(vid))
        self.supervisor_dialog.open()

    def _approved(self, vid: int) -> None:
        d = self.supervisor_dialog
        self._run(vid, (d.login_edit.text().strip(), d.password_edit.text()))

    def _run(self, vid: int, credentials) -> None:
        reason = self.reason_edit.text()
        self._set_busy(True)

        def work():
            supervisor = self.app.login(*credentials) if credentials else None
            return reversal.reverse_sale(self.app, self.op, vid, reason, supervisor=supervisor)

        self.ctx.run(work, self._done, self._failed)

    def _done(self, r) -> None:
        self._set_busy(False)
        self.last_result = r
        self.result_text.setPlainText(
            f"Sale {r.vend_id} (sequence {r.sequence}) reversed for {r.account_no}\n"
            f"Refund {r.refund}, receipt {r.refund_receipt_no}\n"
            f"Approved by {r.approved_by}; the card again holds the previous purchase")
        self.ctx.status(f"sale {r.vend_id} reversed, refund {r.refund}")
        self.load_sales()

    def _failed(self, message: str) -> None:
        self._set_busy(False)
        self.error_label.setText(message)
