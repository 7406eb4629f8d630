"""Receipts, invoices and the receipt register (docs/decisions/0007-receipt-numbering-and-day-closing.md).

Every sale and every cash entry takes the station's next receipt number when it is recorded (a sale
when it goes PENDING, so a failed sale keeps its number as *void*). The register lists every number
from 1 to the station counter and says what it is, so an auditor sees at once that no number is
missing or used twice.

Printables come from jinja2 templates (dbmis_core/templates/) through dbmis_core.documents: text for
an 80 mm printer (42 columns, long values wrapped), that text as PDF, and an A4 invoice. A reprint
is marked COPY and never takes a new number; only completed sales and cash entries print.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace

import attrs
from sqlalchemy import select

from .. import documents
from ..domain import VendState
from ..errors import BusinessRuleError, NotFound, ValidationError
from ..storage.models import CashEntryRow, CustomerRow, StationRow, UtilityRow, VendRow
from .auth import Operator, Perm
from .vending import OPEN_STATES

WIDTH = 42  # characters per line of an 80 mm receipt printer
LABEL = 11  # "Receipt no " then ": " then the value
CASH_TITLES = {
    "reissue_fee": "CARD REPLACEMENT FEE",
    "refund": "REFUND",
    "closure_refund": "ACCOUNT CLOSURE REFUND",
    "transfer_out": "BALANCE TRANSFER OUT",
    "transfer_in": "BALANCE TRANSFER IN",
    "debt_payment": "DEBT PAYMENT",
    "other": "CASH RECEIPT",
}


# -- 42-column layout helpers (the templates call them) ---------------------------------------


def _wrap(text: str, width: int) -> list[str]:
    text = str(text)
    if len(text) <= width and text.isprintable() and not text.isspace():
        return [text.rstrip()]  # what textwrap gives a short line, without its cost (every sale)
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def _center(text) -> str:
    return "\n".join(line.center(WIDTH).rstrip() for line in _wrap(text, WIDTH))


def _field(label: str, value) -> str:
    """``Label      : value``; a long value continues under itself."""
    value = "" if value is None else str(value)
    head = f"{label[:LABEL]:<{LABEL}}: "
    lines = _wrap(value, WIDTH - LABEL - 2)
    if len(lines) == 1:
        return head + lines[0]
    return "\n".join((head if i == 0 else " " * len(head)) + line for i, line in enumerate(lines))


def _amount_line(name, value) -> str:
    """A name left and an amount right; a long name wraps above the amount."""
    value = str(value)
    room = WIDTH - len(value) - 1
    names = _wrap(name, room)
    out = names[:-1] + [f"{names[-1]:<{room}} {value}"]
    return "\n".join(out)


def _fit(text: str) -> str:
    """Last guard: no line wider than the paper, whatever a template or plugin produced."""
    out = []
    for line in text.splitlines():
        out.extend(_wrap(line, WIDTH) if len(line) > WIDTH else [line])
    return "\n".join(out) + "\n"


# The receipt templates use the helpers as filters (``{{ value | field("Label") }}``): jinja2
# calls a filter directly, a function through its context, which cost a receipt a tenth of its time.
documents.environment("dbmis_core").filters.update(
    center=_center, field=lambda value, label: _field(label, value),
    amount_line=lambda value, name: _amount_line(name, value))


def _layout() -> dict:
    return {"rule": "-" * WIDTH}


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if t else ""


# -- what goes on a sale receipt ---------------------------------------------------------------


def _sale_fields(v) -> SimpleNamespace:
    """The printable facts of a sale; ``v`` is a VendRow or an object with the same attributes
    (vending builds one before the row is re-read)."""
    customer = getattr(v, "customer", None)
    credit_unit = getattr(v, "credit_unit", 0)
    debt = getattr(v, "debt_recovered", None) or Decimal("0")
    return SimpleNamespace(
        receipt_no=v.receipt_no or "(pending)", date=_when(v.completed_at), station=v.station,
        operator=v.operator, account_no=getattr(customer, "account_no", ""),
        name=getattr(customer, "name", ""), address=getattr(customer, "address", ""),
        meter_no=v.meter.meter_no, sequence=v.sequence, tariff=v.tariff, unit_price=v.unit_price,
        price_lines=[(str(name), str(value)) for name, value in (v.price_lines or [])],
        energy=v.energy, credit=f"{v.credit} kWh" if int(credit_unit) == 0 else f"{v.credit}",
        amount=v.amount, debt_recovered=debt if debt else None)


def render_receipt_text(vend, utility_name: str | None, copy: bool = False) -> str:
    """The 80 mm receipt of a sale. ``vend`` is a VendRow or any object with the same attributes
    (and .customer, .meter)."""
    return _fit(documents.render("receipt.txt.j2", s=_sale_fields(vend), copy=copy,
                                 utility=utility_name or "DBMIS", **_layout()))


def render_cash_text(entry, utility_name: str | None, customer=None, sale_receipt: str | None = None,
                     copy: bool = False) -> str:
    """The 80 mm receipt of a cash entry (fee received, refund paid out, ...)."""
    amount = Decimal(entry.amount)
    c = SimpleNamespace(
        receipt_no=entry.receipt_no, date=_when(entry.created_at), station=entry.station,
        operator=entry.operator, account_no=getattr(customer, "account_no", ""),
        name=getattr(customer, "name", ""), address=getattr(customer, "address", ""),
        sale_receipt=sale_receipt, note=entry.note,
        amount_label="AMOUNT RECEIVED" if amount > 0 else "AMOUNT PAID OUT", amount=abs(amount))
    return _fit(documents.render("cash_receipt.txt.j2", c=c, copy=copy,
                                 title=CASH_TITLES.get(entry.kind, entry.kind.upper()),
                                 utility=utility_name or "DBMIS", **_layout()))


def render_invoice_html(vend, utility_name: str | None, copy: bool = False) -> str:
    return documents.render("invoice.html.j2", s=_sale_fields(vend), copy=copy,
                            utility=utility_name or "DBMIS")


# -- finding and printing a receipt ------------------------------------------------------------


def _utility(uow) -> str | None:
    return uow.session.scalar(select(UtilityRow.name).limit(1))


def find_receipt(uow, receipt_no: str) -> VendRow | CashEntryRow:
    """The sale or cash entry that carries ``receipt_no``."""
    no = (receipt_no or "").strip()
    if not no:
        raise ValidationError("give a receipt number, e.g. S01-00000001")
    row = uow.session.scalar(select(VendRow).where(VendRow.receipt_no == no))
    if row is None:
        row = uow.session.scalar(select(CashEntryRow).where(CashEntryRow.receipt_no == no))
    if row is None:
        raise NotFound(f"no sale or cash entry has receipt number {no}")
    return row


def _printable_sale(v: VendRow) -> None:
    if v.state in OPEN_STATES:
        raise BusinessRuleError(f"sale {v.receipt_no} is still {v.state}: reconcile it with the "
                                "customer's card first (dbmis reconcile), then print")
    if v.state == VendState.FAILED.value:
        raise BusinessRuleError(f"receipt {v.receipt_no} is void: the sale failed and no credit was "
                                "sold, so there is nothing to print")


def _cash_context(uow, entry: CashEntryRow) -> dict:
    customer = uow.session.get(CustomerRow, entry.customer_id) if entry.customer_id else None
    sale = uow.session.get(VendRow, entry.vend_id) if entry.vend_id else None
    return {"customer": customer, "sale_receipt": sale.receipt_no if sale else None}


def receipt_text(app, op: Operator, receipt_no: str, copy: bool = False) -> str:
    """The receipt of a completed sale or of a cash entry; ``copy`` marks a reprint. Nothing is
    written: a reprint keeps the number it was issued with."""
    op.require(Perm.VIEW)
    with app.uow() as uow:
        row = find_receipt(uow, receipt_no)
        if isinstance(row, VendRow):
            _printable_sale(row)
            return render_receipt_text(row, _utility(uow), copy=copy)
        return render_cash_text(row, _utility(uow), copy=copy, **_cash_context(uow, row))


def receipt_pdf(app, op: Operator, receipt_no: str, copy: bool = False) -> bytes:
    """The receipt as a PDF on an 80 mm roll."""
    text = receipt_text(app, op, receipt_no, copy=copy)
    return documents.text_to_pdf(text, title=f"Receipt {receipt_no.strip()}")


def invoice_html(app, op: Operator, receipt_no: str, copy: bool = False) -> str:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        row = find_receipt(uow, receipt_no)
        if not isinstance(row, VendRow):
            raise ValidationError(f"{row.receipt_no} is a cash entry ({row.kind}), not a sale; "
                                  "print its receipt instead of an invoice")
        _printable_sale(row)
        return render_invoice_html(row, _utility(uow), copy=copy)


def invoice_pdf(app, op: Operator, receipt_no: str, copy: bool = False) -> bytes:
    """An A4 invoice of a completed sale, numbered with the sale's receipt number."""
    html = invoice_html(app, op, receipt_no, copy=copy)
    return documents.html_to_pdf(html, title=f"Invoice {receipt_no.strip()}")


# -- the receipt register ----------------------------------------------------------------------


def parse_receipt_no(receipt_no: str) -> tuple[str, int] | None:
    """("S01", 7) for "S01-00000007"; None when it is not a station receipt number."""
    station, sep, digits = (receipt_no or "").rpartition("-")
    if not sep or not station or not digits.isdigit():
        return None
    return station, int(digits)


@attrs.frozen
class RegisterLine:
    number: int
    receipt_no: str
    what: str            # "sale completed", "sale void (failed)", "sale pending", "cash refund", "MISSING"
    source: str | None   # "sale", "cash", or None for a missing number
    id: int | None = None
    amount: Decimal | None = None
    operator: str | None = None
    at: datetime | None = None
    closing_id: int | None = None


@attrs.frozen
class Register:
    station: str
    next_number: int
    lines: tuple[RegisterLine, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


_SALE_WHAT = {VendState.COMPLETED.value: "completed", VendState.FAILED.value: "void (failed)",
              VendState.PENDING.value: "pending", VendState.WRITTEN.value: "written"}


def check_register(lines, next_number: int, station: str) -> list[str]:
    """Every number from 1 to ``next_number`` - 1 used exactly once, none beyond: else a problem."""
    used: dict[int, list[RegisterLine]] = {}
    for line in lines:
        if line.source is not None:
            used.setdefault(line.number, []).append(line)
    problems = []
    for n in range(1, next_number):
        got = used.get(n, [])
        no = f"{station}-{n:08d}"
        if not got:
            problems.append(f"gap: receipt {no} belongs to no sale or cash entry")
        elif len(got) > 1:
            problems.append(f"duplicate: receipt {no} is used by "
                            + " and ".join(f"{g.source} {g.id}" for g in got))
    for n in sorted(k for k in used if not 1 <= k < next_number):
        for g in used[n]:
            problems.append(f"out of range: {g.source} {g.id} has receipt {g.receipt_no} but the "
                            f"station counter is at {next_number}")
    return problems


def receipt_register(app, op: Operator, station: str | None = None, first: int | None = None,
                     last: int | None = None) -> Register:
    """Every receipt number of ``station`` (default: this station) and what it is. ``first`` and
    ``last`` limit the lines shown; problems are always checked over all numbers."""
    op.require(Perm.VIEW)
    station = (station or app.config.station_code).strip()
    prefix = f"{station}-"
    with app.uow() as uow:
        s = uow.session
        next_number = s.scalar(select(StationRow.next_receipt).where(StationRow.code == station))
        if next_number is None:
            raise NotFound(f"station {station} is not registered")
        records: list[RegisterLine] = []
        problems: list[str] = []
        for v in s.scalars(select(VendRow).where(VendRow.receipt_no.startswith(prefix))):
            parsed = parse_receipt_no(v.receipt_no)
            if parsed is None or parsed[0] != station:
                problems.append(f"sale {v.id} has a malformed receipt number {v.receipt_no!r}")
                continue
            what = f"{v.kind} {_SALE_WHAT.get(v.state, v.state)}"
            records.append(RegisterLine(parsed[1], v.receipt_no, what, "sale", v.id, v.amount,
                                        v.operator, v.completed_at or v.created_at, v.closing_id))
        for v in s.scalars(select(VendRow).where(VendRow.station == station,
                                                 VendRow.receipt_no.is_(None))):
            problems.append(f"sale {v.id} ({v.state}) has no receipt number")
        for c in s.scalars(select(CashEntryRow).where(CashEntryRow.receipt_no.startswith(prefix))):
            parsed = parse_receipt_no(c.receipt_no)
            if parsed is None or parsed[0] != station:
                problems.append(f"cash entry {c.id} has a malformed receipt number "
                                f"{c.receipt_no!r}")
                continue
            records.append(RegisterLine(parsed[1], c.receipt_no, f"cash {c.kind}", "cash", c.id,
                                        c.amount, c.operator, c.created_at, c.closing_id))
    problems = check_register(records, next_number, station) + problems
    numbers = {r.number for r in records}
    missing = [RegisterLine(n, f"{station}-{n:08d}", "MISSING", None)
               for n in range(1, next_number) if n not in numbers]
    lines = sorted(records + missing, key=lambda r: (r.number, r.source or "", r.id or 0))
    lines = [r for r in lines if (first is None or r.number >= first)
             and (last is None or r.number <= last)]
    return Register(station, next_number, tuple(lines), tuple(problems))
