"""The sale page: find the customer, read the card, preview the price, sell, show the receipt.

Everything that touches the card or the database goes through ``ctx.run`` (the host's worker thread),
so the window stays responsive and callbacks come back on the GUI thread. Amounts, card checks and the
sale itself are decided by the services; the page only shows what they say.
"""

from __future__ import annotations

from PyQt6.QtCore import QRegularExpression, Qt, QTimer
from PyQt6.QtGui import QFont, QFontDatabase, QRegularExpressionValidator
from PyQt6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.domain import CreditUnit
from dbmis_core.services import cards, registry, vending
from dbmis_core.types import ERROR_STYLE

DEBOUNCE_MS = 250
WARNING_STYLE = "color: #a05a00;"
CARD_FIELDS = (
    ("uid", "Card UID"),
    ("owner", "Account / meter"),
    ("sequence", "Last sequence on card"),
    ("loaded", "Last purchase loaded"),
    ("remaining", "Remaining credit"),
    ("consumed", "Cumulative consumed"),
    ("returned_at", "Return data written"),
)


def _label(name: str, text: str = "", style: str | None = None) -> QLabel:
    label = QLabel(text, objectName=name, wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if style:
        label.setStyleSheet(style)
    return label


class SalePage(QWidget):
    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.app, self.op = ctx.app, ctx.operator
        self.account_no: str | None = None
        self.card_report = None
        self.last_sale = None
        self._busy = False
        self._search_generation = 0
        self._quote_generation = 0
        self._search_timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._search_timer.timeout.connect(self.search)
        self._quote_timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._quote_timer.timeout.connect(self.update_quote)
        self._build()
        self._update_buttons()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        title = QLabel("<h2>Sell electricity</h2>")
        left, right = QVBoxLayout(), QVBoxLayout()
        left.addWidget(self._customer_box(), 1)
        left.addWidget(self._card_box())
        right.addWidget(self._sale_box())
        right.addWidget(self._result_box(), 1)
        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)

        self.busy_bar = QProgressBar(objectName="busy", maximumWidth=160, textVisible=False)
        self.busy_bar.setRange(0, 0)
        self.busy_label = _label("busy_text")
        self.error_label = _label("error", style=ERROR_STYLE)
        busy_row = QHBoxLayout()
        busy_row.addWidget(self.busy_bar)
        busy_row.addWidget(self.busy_label, 1)
        self.busy_bar.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addLayout(columns, 1)
        layout.addLayout(busy_row)
        layout.addWidget(self.error_label)

    def _customer_box(self) -> QGroupBox:
        box = QGroupBox("1. Customer")
        self.search_edit = QLineEdit(objectName="search",
                                     placeholderText="account number or part of the name")
        self.search_edit.textChanged.connect(lambda _t: self._search_timer.start())
        self.search_edit.returnPressed.connect(self.search)
        self.results = QListWidget(objectName="results")
        self.results.currentItemChanged.connect(self._customer_chosen)
        self.customer_label = _label("customer", "No customer chosen")
        v = QVBoxLayout(box)
        v.addWidget(self.search_edit)
        v.addWidget(self.results, 1)
        v.addWidget(self.customer_label)
        return box

    def _card_box(self) -> QGroupBox:
        box = QGroupBox("2. Card")
        self.read_button = QPushButton("&Read card", objectName="read_card")
        self.read_button.clicked.connect(self.read_card)
        form = QFormLayout()
        self.card_labels = {}
        for key, text in CARD_FIELDS:
            self.card_labels[key] = _label(f"card_{key}", "-")
            form.addRow(f"{text}:", self.card_labels[key])
        self.card_warnings = _label("card_warnings", style=WARNING_STYLE)
        v = QVBoxLayout(box)
        v.addWidget(self.read_button, 0, Qt.AlignmentFlag.AlignLeft)
        v.addLayout(form)
        v.addWidget(self.card_warnings)
        return box

    def _sale_box(self) -> QGroupBox:
        box = QGroupBox("3. Amount")
        self.amount_edit = QLineEdit(objectName="amount", placeholderText="0.00")
        # Only keeps letters out; the vend service decides what amount is acceptable.
        self.amount_edit.setValidator(QRegularExpressionValidator(
            QRegularExpression(r"\d{0,9}(\.\d{0,4})?"), self.amount_edit))
        font = self.amount_edit.font()
        font.setPointSize(font.pointSize() + 6)
        self.amount_edit.setFont(font)
        self.amount_edit.textChanged.connect(self._amount_changed)
        self.preview_label = _label("preview")
        self.check_label = _label("sale_check")
        self.sell_button = QPushButton("&Sell", objectName="sell", minimumHeight=40)
        self.sell_button.clicked.connect(self.sell)
        form = QFormLayout()
        form.addRow("Amount paid:", self.amount_edit)
        form.addRow("Preview:", self.preview_label)
        form.addRow("Card check:", self.check_label)
        v = QVBoxLayout(box)
        v.addLayout(form)
        v.addWidget(self.sell_button)
        return box

    def _result_box(self) -> QGroupBox:
        box = QGroupBox("4. Result")
        self.receipt_no_label = _label("receipt_no")
        bold = self.receipt_no_label.font()
        bold.setBold(True)
        bold.setPointSize(bold.pointSize() + 2)
        self.receipt_no_label.setFont(bold)
        self.result_label = _label("result")
        self.receipt_view = QPlainTextEdit(objectName="receipt", readOnly=True)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.receipt_view.setFont(mono)
        self.receipt_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        v = QVBoxLayout(box)
        v.addWidget(self.receipt_no_label)
        v.addWidget(self.result_label)
        v.addWidget(self.receipt_view, 1)
        return box

    # -- state ---------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        self.read_button.setEnabled(not self._busy)
        self.sell_button.setEnabled(not self._busy and self.account_no is not None
                                    and bool(self.amount_edit.text().strip()))

    def _set_busy(self, text: str) -> None:
        self._busy = True
        self.error_label.clear()
        self.busy_label.setText(text)
        self.busy_bar.show()
        self._update_buttons()

    def _set_idle(self) -> None:
        self._busy = False
        self.busy_label.clear()
        self.busy_bar.hide()
        self._update_buttons()

    def _failed(self, message: str) -> None:
        self._set_idle()
        self.error_label.setText(message)

    # -- customer ------------------------------------------------------------------------------
    def search(self, select: str | None = None) -> None:
        """Look customers up off the GUI thread; a newer search makes older answers stale."""
        self._search_timer.stop()
        self._search_generation += 1
        generation, text = self._search_generation, self.search_edit.text()
        if not text.strip():
            self.results.clear()
            return

        def find():
            with self.app.uow() as uow:
                return registry.find_customers(uow, self.op, text)

        self.ctx.run(find, lambda rows: self._show_results(rows, generation, select),
                     self.error_label.setText)

    def _show_results(self, customers, generation: int, select: str | None) -> None:
        if generation != self._search_generation:
            return
        self.results.clear()
        for c in customers:
            item = QListWidgetItem(f"{c.account_no}   {c.name}   {c.address or ''}")
            item.setData(Qt.ItemDataRole.UserRole, c)
            self.results.addItem(item)
            if c.account_no == select:
                self.results.setCurrentItem(item)
        if not customers:
            self.results.addItem("(no customer matches)")

    def _customer_chosen(self, item: QListWidgetItem | None, _previous=None) -> None:
        customer = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if customer is None:
            return  # a new search keeps the customer until another one is picked
        self.account_no = customer.account_no
        self.customer_label.setText(f"<b>{customer.account_no}</b> {customer.name}, "
                                    f"{customer.address or ''} ({customer.category.value})")
        self._show_card_warnings()
        self._amount_changed()

    # -- card ----------------------------------------------------------------------------------
    def read_card(self) -> None:
        self._set_busy("Reading the card...")
        self.ctx.run(lambda: cards.read_card(self.app, self.op), self._card_read, self._failed)

    def _card_read(self, report) -> None:
        self._set_idle()
        self.card_report = report
        img, ret = report.image, report.image.returned
        unit = "" if img.vend is not None and img.vend.unit == CreditUnit.MONEY else " kWh"
        values = {
            "uid": img.uid,
            "owner": f"{report.account_no or '?'} / meter {report.meter_no or '?'}"
                     + ("" if report.registered else " (not registered)"),
            "sequence": str(img.vend.sequence) if img.vend else "0 (no purchase on the card yet)",
            "loaded": ("-" if img.vend is None
                       else "No - the customer must insert the card in the meter first"
                       if img.unloaded else "Yes"),
            "remaining": f"{ret.remaining}{unit}" if ret else "-",
            "consumed": f"{ret.cumulative_consumed} kWh" if ret else "-",
            "returned_at": (ret.written_at.strftime("%Y-%m-%d %H:%M") if ret
                            else img.return_problem or "-"),
        }
        for key, text in values.items():
            self.card_labels[key].setText(text)
        self._show_card_warnings()
        if self.account_no is None and report.account_no:
            self.search_edit.setText(report.account_no)
            self.search(select=report.account_no)

    def _show_card_warnings(self) -> None:
        if self.card_report is None:
            return
        warnings = list(self.card_report.warnings)
        owner = self.card_report.account_no
        if owner and self.account_no and owner != self.account_no:
            warnings.append(f"this card belongs to account {owner}, not to {self.account_no}")
        self.card_warnings.setText("\n".join(f"Warning: {w}" for w in warnings))

    # -- amount and sale -----------------------------------------------------------------------
    def _amount_changed(self, _text: str = "") -> None:
        self._update_buttons()
        if self.amount_edit.text().strip():
            self._quote_timer.start()
        else:
            self.update_quote()  # clear the preview at once, not after the debounce

    def update_quote(self) -> None:
        """Price the typed amount with the same service the sale uses, so the preview is honest."""
        self._quote_timer.stop()
        self._quote_generation += 1
        generation, account, amount = (self._quote_generation, self.account_no,
                                       self.amount_edit.text().strip())
        if account is None or not amount:
            self.preview_label.clear()
            self.check_label.clear()
            return

        def shown(text: str, style: str = "") -> None:
            if generation == self._quote_generation:
                self.preview_label.setStyleSheet(style)
                self.preview_label.setText(text)

        def quoted(q) -> None:
            shown(f"<b>{q.energy} kWh</b> at {q.unit_price} per kWh ({q.tariff} tariff) for "
                  f"{q.amount}")
            self.check_sale(generation, account, amount)

        self.ctx.run(lambda: vending.quote(self.app, self.op, account, amount), quoted,
                     lambda message: shown(message, ERROR_STYLE))

    def check_sale(self, generation: int, account: str, amount: str) -> None:
        """Show what the sale would meet on this card (warnings, a refusal, debt recovered) before
        the clerk takes the money; the sale itself checks again."""
        def shown(text: str, style: str = "") -> None:
            if generation == self._quote_generation:
                self.check_label.setStyleSheet(style)
                self.check_label.setText(text)

        def checked(c) -> None:
            lines = [f"Warning: {w}" for w in c.warnings]
            if c.refusal:
                lines.append(f"Sale will be refused: {c.refusal}"
                             + (" (inspection notice raised)" if c.inspection else ""))
            elif c.debt_recovered:
                lines.append(f"{c.debt_recovered} of {c.amount} repays debts; the rest buys "
                             f"{c.energy} kWh")
            else:
                lines.append("OK")
            shown("\n".join(lines), ERROR_STYLE if c.refusal else WARNING_STYLE if
                  (c.warnings or c.debt_recovered) else "")

        self.ctx.run(lambda: vending.check_sale(self.app, self.op, account, amount), checked,
                     lambda message: shown(message, WARNING_STYLE))

    def sell(self) -> None:
        if self.account_no is None:
            self.error_label.setText("choose a customer first")
            return
        account, amount = self.account_no, self.amount_edit.text().strip()
        self._set_busy(f"Selling {amount} to {account}: writing the card...")
        self.ctx.run(lambda: vending.vend(self.app, self.op, account, amount), self._sold,
                     self._failed)

    def _sold(self, sale) -> None:
        self._set_idle()
        self.last_sale = sale
        unit = "" if sale.credit_unit == CreditUnit.MONEY else " kWh"
        text = (f"Purchase {sale.sequence} for {sale.account_no}: {sale.energy} kWh for "
                f"{sale.amount}; credit {sale.credit}{unit} written to the card.")
        if sale.consumption_recorded is not None:
            text += f" Consumption since the last reading: {sale.consumption_recorded} kWh."
        if sale.debt_recovered:
            text += f" Debt recovered: {sale.debt_recovered} (the rest bought the energy)."
        for w in sale.warnings:
            text += f" Warning: {w}."
        self.receipt_no_label.setText(f"Receipt {sale.receipt_no}")
        self.result_label.setText(text)
        self.receipt_view.setPlainText(sale.receipt_text)
        self.amount_edit.clear()  # a second click cannot sell the same amount twice
        self.ctx.status(f"Sale completed: receipt {sale.receipt_no}")
        self.read_card()
