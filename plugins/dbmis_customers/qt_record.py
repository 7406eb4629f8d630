"""The "Customer record" page: one customer's whole history, and the changes made to an account
(details, tariff, capacity, a new meter, debts, closure).

Service calls run through ``ctx.run`` (the host's worker thread). The services decide what is allowed;
buttons the operator's role may not use are disabled, so nobody clicks only to be refused.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.domain import CustomerCategory
from dbmis_core.services import customers, debts
from dbmis_core.services.auth import Perm
from dbmis_core.types import ERROR_STYLE

OK_STYLE = "color: #1b6e20;"
HISTORY_COLUMNS = ("When (UTC)", "What", "Details", "Reference")


def _label(name: str, text: str = "", style: str | None = None) -> QLabel:
    label = QLabel(text, objectName=name, wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if style:
        label.setStyleSheet(style)
    return label


class CustomerRecordPage(QWidget):
    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.app, self.op = ctx.app, ctx.operator
        self.account_no: str | None = None
        self.summary: dict | None = None
        self._build()
        self._update_buttons()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.account_edit = QLineEdit(objectName="account", placeholderText="account number")
        self.account_edit.returnPressed.connect(self.show_account)
        self.show_button = QPushButton("&Show", objectName="show")
        self.show_button.clicked.connect(self.show_account)
        top = QHBoxLayout()
        top.addWidget(QLabel("Account:"))
        top.addWidget(self.account_edit)
        top.addWidget(self.show_button)
        top.addStretch(1)
        self.summary_label = _label("summary", "No account shown")
        self.message_label = _label("message", style=OK_STYLE)
        self.error_label = _label("error", style=ERROR_STYLE)

        self.tabs = QTabWidget(objectName="actions")
        self.tabs.addTab(self._details_tab(), "Details, tariff, capacity")
        self.tabs.addTab(self._meter_tab(), "Replace meter")
        self.tabs.addTab(self._debts_tab(), "Debts")
        self.tabs.addTab(self._close_tab(), "Close account")

        self.history = QTableWidget(0, len(HISTORY_COLUMNS), objectName="history")
        self.history.setHorizontalHeaderLabels(HISTORY_COLUMNS)
        self.history.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.history.horizontalHeader()
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        history_box = QGroupBox("History (oldest first)")
        QVBoxLayout(history_box).addWidget(self.history)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Customer record</h2>"))
        layout.addLayout(top)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.tabs)
        layout.addWidget(history_box, 1)
        layout.addWidget(self.message_label)
        layout.addWidget(self.error_label)

    def _details_tab(self) -> QWidget:
        w = QWidget()
        self.name_edit = QLineEdit(objectName="name")
        self.address_edit = QLineEdit(objectName="address")
        self.phone_edit = QLineEdit(objectName="phone")
        self.category_combo = QComboBox(objectName="category")
        self.category_combo.addItems([c.value for c in CustomerCategory])
        self.tariff_combo = QComboBox(objectName="tariff")
        self.tariff_combo.addItems(["default"] + sorted(self.app.pm.tariffs()))
        self.capacity_edit = QLineEdit(objectName="capacity", placeholderText="A, empty = none")
        self.mode_combo = QComboBox(objectName="capacity_mode")
        self.mode_combo.addItems(list(customers.CAPACITY_MODES))
        self.save_button = QPushButton("Save changes", objectName="save")
        self.save_button.clicked.connect(self.save_changes)
        form = QFormLayout(w)
        form.addRow("Name:", self.name_edit)
        form.addRow("Address:", self.address_edit)
        form.addRow("Phone:", self.phone_edit)
        form.addRow("Category:", self.category_combo)
        form.addRow("Tariff:", self.tariff_combo)
        form.addRow("Capacity (A):", self.capacity_edit)
        form.addRow("Capacity mode:", self.mode_combo)
        form.addRow(self.save_button)
        return w

    def _meter_tab(self) -> QWidget:
        w = QWidget()
        self.new_meter_edit = QLineEdit(objectName="new_meter", placeholderText="meter from the store")
        self.fee_edit = QLineEdit(objectName="fee", placeholderText="0.00 (recorded as a debt)")
        self.replace_button = QPushButton("Replace meter (blank card in the reader)",
                                          objectName="replace")
        self.replace_button.clicked.connect(self.replace_meter)
        form = QFormLayout(w)
        form.addRow(_label("meter_help", "The customer keeps the account; a new card is issued for "
                                         "the new meter carrying the old meter's remaining credit. "
                                         "The old card stops working."))
        form.addRow("New meter:", self.new_meter_edit)
        form.addRow("Replacement fee:", self.fee_edit)
        form.addRow(self.replace_button)
        return w

    def _debts_tab(self) -> QWidget:
        w = QWidget()
        self.debt_reason_edit = QLineEdit(objectName="debt_reason", placeholderText="reason")
        self.debt_amount_edit = QLineEdit(objectName="debt_amount", placeholderText="amount")
        self.debt_share_edit = QLineEdit(objectName="debt_share",
                                         placeholderText="share, empty = configured")
        self.add_debt_button = QPushButton("Record debt", objectName="add_debt")
        self.add_debt_button.clicked.connect(self.add_debt)
        self.pay_edit = QLineEdit(objectName="pay_amount", placeholderText="cash amount")
        self.pay_button = QPushButton("Take cash payment", objectName="pay_debt")
        self.pay_button.clicked.connect(self.pay_debt)
        self.debts_label = _label("debts", "-")
        form = QFormLayout(w)
        row = QHBoxLayout()
        for x in (self.debt_reason_edit, self.debt_amount_edit, self.debt_share_edit,
                  self.add_debt_button):
            row.addWidget(x)
        form.addRow("New debt:", row)
        pay = QHBoxLayout()
        pay.addWidget(self.pay_edit)
        pay.addWidget(self.pay_button)
        form.addRow("Payment:", pay)
        form.addRow("Debts:", self.debts_label)
        return w

    def _close_tab(self) -> QWidget:
        w = QWidget()
        self.refund_radio = QRadioButton("Refund the remaining credit in cash", objectName="refund",
                                         checked=True)
        self.transfer_radio = QRadioButton("Transfer it to account (its card in the reader):",
                                           objectName="transfer")
        self.transfer_edit = QLineEdit(objectName="transfer_to")
        self.close_button = QPushButton("Close account", objectName="close_account")
        self.close_button.clicked.connect(self.close_account)
        v = QVBoxLayout(w)
        v.addWidget(self.refund_radio)
        row = QHBoxLayout()
        row.addWidget(self.transfer_radio)
        row.addWidget(self.transfer_edit)
        v.addLayout(row)
        v.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignLeft)
        return w

    # -- state ---------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        shown = self.summary is not None and self.summary["status"] != "closed"
        self.save_button.setEnabled(shown and self.op.can(Perm.MANAGE_CUSTOMERS))
        self.replace_button.setEnabled(shown and self.op.can(Perm.CHANGE_METER))
        self.add_debt_button.setEnabled(shown and self.op.can(Perm.MANAGE_DEBTS))
        self.pay_button.setEnabled(shown and self.op.can(Perm.VEND))
        self.close_button.setEnabled(shown and self.op.can(Perm.CLOSE_ACCOUNT))

    def _run(self, fn, done_text) -> None:
        """Run a change, then show what it did and reload the record."""
        self.error_label.clear()
        self.message_label.clear()

        def done(result):
            self.message_label.setText(done_text(result))
            self.show_account()

        self.ctx.run(fn, done, self.error_label.setText)

    # -- loading -------------------------------------------------------------------------------
    def show_account(self) -> None:
        account = self.account_edit.text().strip() or self.account_no
        if not account:
            self.error_label.setText("type an account number")
            return

        def load():
            return (customers.customer_summary(self.app, self.op, account),
                    customers.customer_record(self.app, self.op, account),
                    debts.list_debts(self.app, self.op, account))

        self.ctx.run(load, self._loaded, self.error_label.setText)

    def _loaded(self, result) -> None:
        summary, entries, debt_rows = result
        self.summary, self.account_no = summary, summary["account_no"]
        cap = (f"{summary['capacity_amps']} A ({summary['capacity_mode'] or 'none'})"
               if summary["capacity_amps"] else "none")
        self.summary_label.setText(
            f"<b>{summary['account_no']}</b> {summary['name']}, {summary['address'] or ''} - "
            f"<b>{summary['status']}</b>; {summary['category']}, tariff {summary['tariff']}, "
            f"capacity {cap}; meter {summary['meter_no'] or '-'}, card {summary['card_uid'] or '-'}; "
            f"debt owed {summary['debt_owed']}")
        self.name_edit.setText(summary["name"])
        self.address_edit.setText(summary["address"] or "")
        self.phone_edit.setText(summary["phone"] or "")
        self.category_combo.setCurrentText(summary["category"])
        self.tariff_combo.setCurrentText("default" if summary["tariff"] == "(default)"
                                         else summary["tariff"])
        self.capacity_edit.setText(str(summary["capacity_amps"] or ""))
        self.mode_combo.setCurrentText(summary["capacity_mode"] or "none")
        self.debts_label.setText("\n".join(
            f"#{d.id} {d.reason}: {d.amount}, owed {d.owed}" for d in debt_rows) or "none")
        self.history.setRowCount(len(entries))
        for i, e in enumerate(entries):
            for j, text in enumerate((e.at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.summary, e.ref)):
                self.history.setItem(i, j, QTableWidgetItem(text))
        self.history.resizeColumnToContents(0)
        self.history.resizeColumnToContents(1)
        self._update_buttons()

    # -- changes -------------------------------------------------------------------------------
    def save_changes(self) -> None:
        s, account = self.summary, self.account_no
        wanted = {"name": self.name_edit.text(), "address": self.address_edit.text(),
                  "phone": self.phone_edit.text(), "category": self.category_combo.currentText(),
                  "tariff": self.tariff_combo.currentText(),
                  "capacity_amps": self.capacity_edit.text().strip(),
                  "capacity_mode": self.mode_combo.currentText()}
        current = {"name": s["name"], "address": s["address"] or "", "phone": s["phone"] or "",
                   "category": s["category"],
                   "tariff": "default" if s["tariff"] == "(default)" else s["tariff"],
                   "capacity_amps": str(s["capacity_amps"] or ""),
                   "capacity_mode": s["capacity_mode"] or "none"}
        changed = {k: v for k, v in wanted.items() if v != current[k]}
        self._run(lambda: customers.change_customer(self.app, self.op, account, **changed),
                  lambda done: "saved: " + ", ".join(c.kind for c in done))

    def replace_meter(self) -> None:
        account, meter, fee = self.account_no, self.new_meter_edit.text(), self.fee_edit.text()
        self._run(lambda: customers.replace_meter(self.app, self.op, account, meter, fee=fee),
                  lambda r: (f"meter {r.old_meter_no} replaced by {r.new_meter_no}; card "
                             f"{r.new_card_uid} carries {r.makeup.credit} make-up credit"))

    def add_debt(self) -> None:
        account = self.account_no
        reason, amount = self.debt_reason_edit.text(), self.debt_amount_edit.text()
        share = self.debt_share_edit.text().strip() or None
        self._run(lambda: debts.add_debt(self.app, self.op, account, reason, amount, share=share),
                  lambda d: f"debt {d.id} recorded: {d.amount} for {d.reason}")

    def pay_debt(self) -> None:
        account, amount = self.account_no, self.pay_edit.text()
        self._run(lambda: debts.pay_debt(self.app, self.op, account, amount),
                  lambda p: f"{p.paid} paid towards debts, receipt {p.receipt_no}")

    def close_account(self) -> None:
        account = self.account_no
        target = self.transfer_edit.text().strip() if self.transfer_radio.isChecked() else None
        self._run(lambda: customers.close_account(self.app, self.op, account,
                                                  refund=target is None, transfer_to=target),
                  lambda c: f"account {c.account_no} closed; remaining {c.remaining.total} "
                            f"worth {c.value} " + (f"moved to {c.transfer_to}" if c.transfer_to
                                                   else f"refunded (receipt {c.refund_receipt})"))
