"""The "Reissue card" page: replace a customer's lost card with the blank card in the reader.

The service decides everything (which card is replaced, which record the new card carries, the
fee); the page collects the account, fee and reason, runs the service on the host's worker thread
and shows what it says.
"""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.services import reissue
from dbmis_core.types import ERROR_STYLE


class ReissuePage(QWidget):
    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.app, self.op = ctx.app, ctx.operator
        self.last_result = None
        self._busy = False
        self._build()

    def _build(self) -> None:
        self.account_edit = QLineEdit(objectName="account", placeholderText="e.g. 100001")
        self.fee_edit = QLineEdit(str(self.app.config.data["card"]["reissue_fee"]), objectName="fee")
        self.reason_edit = QLineEdit(objectName="reason", placeholderText="lost, damaged, ...")
        form = QFormLayout()
        form.addRow("Account number", self.account_edit)
        form.addRow("Fee", self.fee_edit)
        form.addRow("Reason", self.reason_edit)
        hint = QLabel("Insert a <b>blank</b> card in the reader. The customer's current card is "
                      "marked lost; the new card carries the last purchase again, so the meter "
                      "credits nothing twice. The customer inserts the new card in the meter once; "
                      "from then on the meter refuses the old card.", wordWrap=True)
        self.reissue_button = QPushButton("Reissue card", objectName="reissue")
        self.reissue_button.clicked.connect(self.reissue)
        self.reconcile_button = QPushButton("Settle card in reader", objectName="reconcile")
        self.reconcile_button.setToolTip("After a pulled card or a crash: settle an unfinished "
                                         "reissue from the card in the reader")
        self.reconcile_button.clicked.connect(self.reconcile)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reissue_button)
        buttons.addWidget(self.reconcile_button)
        buttons.addStretch(1)
        self.error_label = QLabel("", objectName="error", wordWrap=True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.result_text = QPlainTextEdit(objectName="result", readOnly=True)
        box = QGroupBox("Replacement card")
        inner = QVBoxLayout(box)
        inner.addWidget(hint)
        inner.addLayout(form)
        inner.addLayout(buttons)
        inner.addWidget(self.error_label)
        inner.addWidget(self.result_text, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Reissue card</h2>"))
        layout.addWidget(box, 1)
        self.account_edit.returnPressed.connect(self.reissue)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.reissue_button.setEnabled(not busy)
        self.reconcile_button.setEnabled(not busy)

    def reissue(self) -> None:
        if self._busy:
            return
        account = self.account_edit.text().strip()
        fee = self.fee_edit.text().strip() or None
        reason = self.reason_edit.text()
        self.error_label.setText("")
        self._set_busy(True)
        self.ctx.run(lambda: reissue.reissue_card(self.app, self.op, account, fee=fee, reason=reason),
                     self._done, self._failed)

    def _done(self, r) -> None:
        self._set_busy(False)
        self.last_result = r
        carried = (f"sequence {r.sequence}, credit {r.credit}" if r.sequence is not None
                   else "no purchase yet")
        lines = [f"Replacement card {r.new_uid} issued for {r.account_no} (meter {r.meter_no})",
                 f"Carries: {carried}", f"Card {r.old_uid} is now lost and refused"]
        if r.fee_receipt_no:
            lines.append(f"Fee {r.fee} taken, receipt {r.fee_receipt_no}")
        lines.append("Ask the customer to insert the new card in the meter once.")
        self.result_text.setPlainText("\n".join(lines))
        self.ctx.status(f"card {r.new_uid} issued for {r.account_no}")

    def _failed(self, message: str) -> None:
        self._set_busy(False)
        self.error_label.setText(message)

    def reconcile(self) -> None:
        if self._busy:
            return
        self.error_label.setText("")
        self._set_busy(True)
        self.ctx.run(lambda: reissue.reconcile_card(self.app, self.op), self._reconciled,
                     self._failed)

    def _reconciled(self, settled) -> None:
        self._set_busy(False)
        reissued, sales = settled
        lines = [f"Reissue {r.reissue_id} (card {r.new_uid}): {r.state}"
                 + ("" if r.state == "completed" else f" - {r.note}; reissue again") for r in reissued]
        lines += [f"Sale {i}: {s}" for i, s in sales]
        self.result_text.setPlainText("\n".join(lines) or "Nothing to settle on this card.")

