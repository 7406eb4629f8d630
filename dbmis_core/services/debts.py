"""Debts a customer owes (a meter replacement fee, an inspection penalty) and their recovery.

A debt is paid off in two ways: in cash at the counter (a "debt_payment" cash entry), or as a share of
each purchase. The share is ``sales.debt_share`` unless the oldest open debt carries its own; that
share of the amount paid (rounded down to the cent) goes to the open debts oldest first and never
beyond what is owed, and the energy is bought with the rest. Every part paid is a DebtPaymentRow, tied
to the sale (``vend_id``) or to nothing for cash. Recovery by a sale is written in the sale's PENDING
transaction; a sale that ends FAILED gives its parts back (``undo_for_vend``).

``debts.recovered`` moves only by UPDATEs guarded by the value read (optimistic locking), so a cash
payment and a sale at two stations at once cannot overpay a debt. New values are computed as Decimal
in Python, never by SQL arithmetic, because SQLite keeps NUMERIC as binary floating point.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

import attrs
from sqlalchemy import bindparam, delete, select, update

from ..errors import BusinessRuleError, NotFound, ValidationError
from ..money import CENT, money, to_decimal
from ..storage.models import CustomerRow, DebtPaymentRow, DebtRow
from .auth import Operator, Perm
from .cash import record_cash
from .registry import get_customer_row


@attrs.frozen
class Debt:
    id: int
    account_no: str
    reason: str
    amount: Decimal
    recovered: Decimal
    owed: Decimal
    share: Decimal | None
    created_by: str
    created_at: datetime
    settled_at: datetime | None


@attrs.frozen
class DebtPayment:
    receipt_no: str
    paid: Decimal
    parts: tuple[tuple[int, Decimal], ...]  # (debt id, amount)


def now() -> datetime:
    return datetime.now(UTC)


def check_share(value, what: str = "debt share") -> Decimal:
    """A share is a fraction 0 <= share < 1: some of every purchase must still buy energy."""
    d = to_decimal(value, what)
    if not Decimal(0) <= d < Decimal(1):
        raise ValidationError(f"{what} must be at least 0 and below 1 (e.g. 0.20), got {value}")
    if d != d.quantize(Decimal("0.0001")):
        raise ValidationError(f"{what} has more than four decimals: {value}")
    return d


def default_share(app, uow=None) -> Decimal:
    """The database setting, else the configuration's sales.debt_share (services/settings.py);
    ``uow``: the caller's open unit of work, if any."""
    from .settings import sales

    return sales(app, uow).debt_share


def _debt(row: DebtRow, account_no: str) -> Debt:
    return Debt(row.id, account_no, row.reason, row.amount, row.recovered,
                row.amount - row.recovered, row.share, row.created_by, row.created_at,
                row.settled_at)


def add_debt(app, op: Operator, account_no: str, reason: str, amount, share=None) -> Debt:
    op.require(Perm.MANAGE_DEBTS)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("a debt needs a reason (e.g. 'meter replacement fee')")
    if len(reason) > 120:
        raise ValidationError("the reason is longer than 120 characters")
    amt = money(amount, "debt amount")
    if amt <= 0:
        raise ValidationError(f"a debt must be positive, got {amt}")
    sh = None if share in (None, "") else check_share(share)
    with app.uow() as uow:
        c = get_customer_row(uow, account_no)
        if c.status == "closed":
            raise BusinessRuleError(f"account {c.account_no} is closed")
        row = add_debt_row(uow, op, c.id, reason, amt, sh)
        uow.commit()
        return _debt(row, c.account_no)


def add_debt_row(uow, op: Operator, customer_id: int, reason: str, amount: Decimal,
                 share: Decimal | None = None) -> DebtRow:
    row = DebtRow(customer_id=customer_id, reason=reason, amount=amount, recovered=Decimal("0"),
                  share=share, created_by=op.login, created_at=now())
    uow.session.add(row)
    uow.session.flush()
    from . import audit

    account = uow.session.get(CustomerRow, customer_id).account_no
    audit.record(uow, op, "debt.add", f"account {account}",
                 {"debt_id": row.id, "reason": reason, "amount": amount, "share": share})
    return row


def list_debts(app, op: Operator, account_no: str, open_only: bool = False) -> list[Debt]:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        c = get_customer_row(uow, account_no)
        return [_debt(r, c.account_no) for r in _debts(uow, c.id, open_only)]


def _debts(uow, customer_id: int, open_only: bool) -> list[DebtRow]:
    q = select(DebtRow).where(DebtRow.customer_id == customer_id)
    if open_only:
        q = q.where(DebtRow.settled_at.is_(None))
    return list(uow.session.scalars(q.order_by(DebtRow.created_at, DebtRow.id)))


def owed(uow, customer_id: int) -> Decimal:
    return sum((r.amount - r.recovered for r in _debts(uow, customer_id, True)), Decimal("0.00"))


_SET_RECOVERED = (update(DebtRow)
                  .where(DebtRow.id == bindparam("did"), DebtRow.recovered == bindparam("was"))
                  .values(recovered=bindparam("now_recovered"), settled_at=bindparam("settled")))


def _set_recovered(uow, debt_id: int, was: Decimal, new: Decimal, amount: Decimal,
                   at: datetime | None) -> None:
    if not Decimal(0) <= new <= amount:
        raise BusinessRuleError(f"debt {debt_id} would be recovered {new} of {amount}")
    done = uow.session.connection().execute(_SET_RECOVERED, {
        "did": debt_id, "was": was, "now_recovered": new,
        "settled": at if new == amount else None}).rowcount
    if done != 1:
        raise BusinessRuleError(f"debt {debt_id} changed at another station; try again")


def _take(uow, debt: DebtRow, part: Decimal, vend_id: int | None, at: datetime) -> None:
    _set_recovered(uow, debt.id, debt.recovered, debt.recovered + part, debt.amount, at)
    uow.session.add(DebtPaymentRow(debt_id=debt.id, vend_id=vend_id, amount=part, at=at))
    uow.session.expire(debt)


def _spread(rows: list[DebtRow], total: Decimal) -> list[tuple[DebtRow, Decimal]]:
    parts, left = [], total
    for r in rows:
        if left <= 0:
            break
        part = min(r.amount - r.recovered, left)
        if part > 0:
            parts.append((r, part))
            left -= part
    return parts


def plan_recovery(uow, customer_id: int, amount: Decimal,
                  share: Decimal) -> list[tuple[DebtRow, Decimal]]:
    """The parts of ``amount`` a sale pays towards open debts (nothing is written yet)."""
    rows = _debts(uow, customer_id, True)
    if not rows:
        return []
    if rows[0].share is not None:
        share = rows[0].share
    total = min((amount * share).quantize(CENT, rounding=ROUND_DOWN),
                sum((r.amount - r.recovered for r in rows), Decimal(0)))
    return _spread(rows, total) if total > 0 else []


def apply_recovery(uow, plan: list[tuple[DebtRow, Decimal]], vend_id: int, at: datetime) -> None:
    for debt, part in plan:
        _take(uow, debt, part, vend_id, at)


def undo_for_vend(uow, vend_id: int) -> Decimal:
    """A sale that failed gives back what it paid towards debts; returns the amount given back."""
    s = uow.session
    payments = list(s.scalars(select(DebtPaymentRow).where(DebtPaymentRow.vend_id == vend_id)))
    back = Decimal("0.00")
    for p in payments:
        debt = s.get(DebtRow, p.debt_id)
        s.refresh(debt)
        _set_recovered(uow, debt.id, debt.recovered, debt.recovered - p.amount, debt.amount, None)
        s.expire(debt)
        back += p.amount
    if payments:
        s.execute(delete(DebtPaymentRow).where(DebtPaymentRow.vend_id == vend_id))
    return back


def pay_debt(app, op: Operator, account_no: str, amount, debt_id: int | None = None) -> DebtPayment:
    """Take cash towards the customer's open debts (oldest first, or only ``debt_id``)."""
    op.require(Perm.VEND)
    amt = money(amount, "payment")
    if amt <= 0:
        raise ValidationError(f"a payment must be positive, got {amt}")
    with app.uow() as uow:
        c = get_customer_row(uow, account_no)
        rows = _debts(uow, c.id, True)
        if debt_id is not None:
            rows = [r for r in rows if r.id == int(debt_id)]
            if not rows:
                raise NotFound(f"customer {c.account_no} has no open debt {debt_id}")
        total = sum((r.amount - r.recovered for r in rows), Decimal(0))
        if total == 0:
            raise BusinessRuleError(f"customer {c.account_no} owes nothing")
        if amt > total:
            raise ValidationError(f"the customer owes {total}; a payment of {amt} is too much")
        at = now()
        parts = _spread(rows, amt)
        for debt, part in parts:
            _take(uow, debt, part, None, at)
        entry = record_cash(uow, op, app.config.station_code, "debt_payment", amt, customer_id=c.id,
                            note="debts " + ", ".join(f"#{d.id}: {p}" for d, p in parts))
        uow.commit()
        return DebtPayment(entry.receipt_no, amt, tuple((d.id, p) for d, p in parts))
