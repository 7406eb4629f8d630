"""Day closing: an operator's till is counted and closed (docs/decisions/0007-...-day-closing.md).

An operator's *open till* at a station is every paid sale (kind "sale", completed or later
reversed: the reversal's refund is a cash entry of the till that paid it out) and every cash entry
(fees, refunds, debt payments, ...) they recorded there that no closing covers yet. Pending sales,
reversals and reissues block closing: until their card settles them nobody knows what they cost. Closing it
records the expected cash, the counted cash and the discrepancy, and points the covered rows at the
closing in the same durable transaction. From then on those rows never change: the service layer
refuses (``ensure_not_closed``) and database triggers (migration 0004) refuse too.

The business day is the closing's local date: the zone in ``[station] timezone`` (an IANA name such
as "Asia/Shanghai") if configured, else the computer's own zone, because a till is counted at the
counter, by the counter's clock.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from sqlalchemy import select, update
from sqlalchemy.orm import object_session

from ..domain import VendState
from ..errors import BusinessRuleError, ConfigError, NotFound, ValidationError
from ..money import money
from ..storage.models import (
    CashEntryRow,
    DayClosingRow,
    OperatorRow,
    ReissueRow,
    ReversalRow,
    VendRow,
)
from .auth import Operator, Perm
from .vending import OPEN_STATES, now

# money was taken for these; a reversed sale's refund is a cash entry of the till that paid it out
_PAID = (VendState.COMPLETED.value, VendState.REVERSED.value)


def station_timezone(app) -> tzinfo:
    """The zone the business day is counted in: ``[station] timezone`` or the computer's zone."""
    name = app.config.data["station"].get("timezone")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"[station] timezone {name!r} is not a known time zone") from None
    return datetime.now().astimezone().tzinfo


def business_day(app, at: datetime | None = None) -> date:
    return (at or now()).astimezone(station_timezone(app)).date()


def ensure_not_closed(row, uow=None) -> None:
    """Refuse to change a sale or cash entry a day closing covers (call before any change)."""
    if row.closing_id is None:
        return
    session = uow.session if uow is not None else object_session(row)
    closing = session.get(DayClosingRow, row.closing_id) if session is not None else None
    what = "sale" if isinstance(row, VendRow) else "cash entry"
    name = row.receipt_no or f"{what} {row.id}"
    on = f" on {closing.business_day.isoformat()}" if closing is not None else ""
    raise BusinessRuleError(f"{what} {name} was closed in day closing {row.closing_id}{on}; "
                            "it can no longer change")


@attrs.frozen
class Till:
    """An operator's open till: the rows a closing would cover and their totals."""

    operator: str
    station: str
    vend_ids: tuple[int, ...]
    cash_ids: tuple[int, ...]
    summary: dict
    expected: Decimal
    unfinished: tuple[str, ...]  # pending/written sales, pending reversals and reissues


def _row_total(rows, attr="amount") -> Decimal:
    return sum((getattr(r, attr) for r in rows), Decimal("0.00"))


def _open_till(uow, operator: str, station: str) -> Till:
    s = uow.session
    vends = list(s.scalars(select(VendRow).where(
        VendRow.operator == operator, VendRow.station == station, VendRow.kind == "sale",
        VendRow.state.in_(_PAID), VendRow.closing_id.is_(None))
        .order_by(VendRow.id)))
    cash = list(s.scalars(select(CashEntryRow).where(
        CashEntryRow.operator == operator, CashEntryRow.station == station,
        CashEntryRow.closing_id.is_(None)).order_by(CashEntryRow.id)))
    unfinished = list(s.scalars(select(VendRow.receipt_no).where(
        VendRow.operator == operator, VendRow.station == station, VendRow.state.in_(OPEN_STATES))
        .order_by(VendRow.id)))
    # a pending reversal would change a sale of this till, a pending reissue add its fee to it
    vend_ids = [v.id for v in vends]
    unfinished += [f"reversal {r.id} of sale {r.vend.receipt_no}" for r in s.scalars(
        select(ReversalRow).where(ReversalRow.state == "pending",
                                  (ReversalRow.operator == operator)
                                  | ReversalRow.vend_id.in_(vend_ids or [-1]))
        .order_by(ReversalRow.id))]
    unfinished += [f"card reissue {i}" for i in s.scalars(
        select(ReissueRow.id).where(ReissueRow.state == "pending", ReissueRow.operator == operator,
                                    ReissueRow.station == station).order_by(ReissueRow.id))]
    kinds: dict[str, dict] = {}
    for c in cash:
        k = kinds.setdefault(c.kind, {"count": 0, "total": Decimal("0.00")})
        k["count"] += 1
        k["total"] += c.amount
    sales_total = _row_total(vends)
    received = sum((c.amount for c in cash if c.amount > 0), Decimal("0.00"))
    paid_out = sum((c.amount for c in cash if c.amount < 0), Decimal("0.00"))
    expected = sales_total + received + paid_out
    times = [r.completed_at for r in vends] + [c.created_at for c in cash]
    receipts = sorted(r.receipt_no for r in vends + cash if r.receipt_no)
    summary = {
        "operator": operator, "station": station,
        "sales": {"count": len(vends), "total": str(sales_total),
                  "reversed": sum(1 for v in vends if v.state == VendState.REVERSED.value),
                  "energy": str(_row_total(vends, "energy")),
                  "debt_recovered": str(_row_total(vends, "debt_recovered"))},
        "cash": {k: {"count": v["count"], "total": str(v["total"])} for k, v in sorted(kinds.items())},
        "cash_received": str(received), "cash_paid_out": str(paid_out),
        "expected": str(expected),
        "first_receipt": receipts[0] if receipts else None,
        "last_receipt": receipts[-1] if receipts else None,
        "from": min(times).isoformat() if times else None,
        "to": max(times).isoformat() if times else None,
    }
    return Till(operator, station, tuple(v.id for v in vends), tuple(c.id for c in cash), summary,
                expected, tuple(unfinished))


def _target(app, op: Operator, operator: str | None) -> str:
    """Whose till: one's own needs CLOSE_DAY, anybody else's CLOSE_ANY_DAY (a supervisor)."""
    target = (operator or op.login).strip()
    op.require(Perm.CLOSE_DAY if target == op.login else Perm.CLOSE_ANY_DAY)
    return target


def summary(app, op: Operator, operator: str | None = None) -> Till:
    """What closing the till now would cover (nothing is written)."""
    target = _target(app, op, operator)
    with app.uow() as uow:
        return _open_till(uow, target, app.config.station_code)


def close(app, op: Operator, counted, note: str = "", operator: str | None = None) -> DayClosingRow:
    """Close ``operator``'s (default: one's own) open till at this station with the cash counted."""
    target = _target(app, op, operator)
    amount = money(counted, "counted cash")
    if amount < 0:
        raise ValidationError(f"counted cash cannot be negative: {amount}")
    station = app.config.station_code
    closed_at = now()
    with app.uow() as uow:
        s = uow.session
        if s.scalar(select(OperatorRow.id).where(OperatorRow.login == target)) is None:
            raise NotFound(f"no operator {target}")
        till = _open_till(uow, target, station)
        if till.unfinished:
            raise BusinessRuleError(
                f"{target} has unfinished sales ({', '.join(till.unfinished)}): reconcile them with "
                "the customers' cards before closing the day")
        if not till.vend_ids and not till.cash_ids:
            raise BusinessRuleError(f"{target} has no open sales or cash entries at station "
                                    f"{station}; nothing to close")
        row = DayClosingRow(operator=target, station=station,
                            business_day=business_day(app, closed_at),
                            sales_count=till.summary["sales"]["count"], expected=till.expected,
                            counted=amount, discrepancy=amount - till.expected,
                            summary=till.summary, note=note.strip(), closed_by=op.login,
                            closed_at=closed_at)
        s.add(row)
        s.flush()
        # only rows still open: a concurrent closing of the same till covers fewer rows here and
        # the whole closing is refused rather than counted twice
        for model, ids in ((VendRow, till.vend_ids), (CashEntryRow, till.cash_ids)):
            if ids:
                n = s.execute(update(model).where(model.id.in_(ids), model.closing_id.is_(None))
                              .values(closing_id=row.id)).rowcount
                if n != len(ids):
                    raise BusinessRuleError("the till changed while it was being closed (another "
                                            "closing?); look at the summary and try again")
        from . import audit

        audit.record(uow, op, "dayclose", f"operator {target}",
                     {"closing_id": row.id, "business_day": row.business_day,
                      "sales": row.sales_count, "expected": row.expected, "counted": amount,
                      "discrepancy": row.discrepancy, "note": row.note}, station=station)
        uow.commit()
        return row


def closings(app, op: Operator, operator: str | None = None, discrepancies_only: bool = False,
             limit: int = 200) -> list[DayClosingRow]:
    """Closings, newest first; optionally of one operator or only those that did not balance."""
    op.require(Perm.VIEW)
    q = select(DayClosingRow).order_by(DayClosingRow.id.desc()).limit(limit)
    if operator:
        q = q.where(DayClosingRow.operator == operator.strip())
    if discrepancies_only:
        q = q.where(DayClosingRow.discrepancy != 0)
    with app.uow() as uow:
        return list(uow.session.scalars(q))


def get_closing(app, op: Operator, closing_id: int) -> DayClosingRow:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        row = uow.session.get(DayClosingRow, closing_id)
        if row is None:
            raise NotFound(f"no day closing {closing_id}")
        return row


def open_operators(app, op: Operator) -> list[str]:
    """Operators with an open till at this station (for a supervisor choosing whose to close)."""
    op.require(Perm.VIEW)
    station = app.config.station_code
    with app.uow() as uow:
        s = uow.session
        a = set(s.scalars(select(VendRow.operator).where(
            VendRow.station == station, VendRow.closing_id.is_(None), VendRow.kind == "sale",
            VendRow.state.in_(_PAID)).group_by(VendRow.operator)))
        b = set(s.scalars(select(CashEntryRow.operator).where(
            CashEntryRow.station == station, CashEntryRow.closing_id.is_(None))
            .group_by(CashEntryRow.operator)))
        return sorted(a | b)

