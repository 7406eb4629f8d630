"""Inspection work orders: raised from the ranked list (with the score and reasons of that moment)
or from a counter notice, assigned to an inspector, closed with an outcome.

The outcome (theft, fault, no problem) stays with the score and the month it was raised for, so
``labels`` gives (customer, month, score, outcome) rows to measure the detector on real
inspections later. Counter notices live in ``inspections.py``; a work order only points at one.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import attrs
from sqlalchemy import select

from ..errors import BusinessRuleError, NotFound, ValidationError
from ..storage.models import (
    CustomerRow,
    InspectionNoticeRow,
    MeterRow,
    OperatorRow,
    WorkOrderRow,
)
from .auth import Operator, Perm
from .registry import get_customer_row

OPEN, ASSIGNED, DONE = "open", "assigned", "done"
OUTCOMES = ("theft", "fault", "no_problem")
ORIGINS = ("ranking", "notice", "manual")


@attrs.frozen
class WorkOrder:
    id: int
    account_no: str
    customer_name: str
    meter_no: str | None
    origin: str
    notice_id: int | None
    period: str | None
    score: Decimal | None
    reasons: tuple[str, ...]
    status: str
    assigned_to: str | None
    outcome: str | None
    notes: str
    created_by: str
    created_at: datetime
    closed_by: str | None
    closed_at: datetime | None


@attrs.frozen
class Label:
    """One inspected case: what the detector said and what the inspector found."""

    work_order: int
    account_no: str
    period: str | None
    score: Decimal | None
    outcome: str
    origin: str
    closed_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _period(period: str | None) -> tuple[int | None, int | None]:
    if not period:
        return None, None
    try:
        y, m = (int(p) for p in period.split("-"))
        if not 1 <= m <= 12:
            raise ValueError
    except ValueError:
        raise ValidationError(f"month must look like 2025-03, got {period!r}") from None
    return y, m


def _to_order(r: WorkOrderRow, account: str, name: str, meter_no: str | None) -> WorkOrder:
    period = (f"{r.period_year:04d}-{r.period_month:02d}" if r.period_year else None)
    return WorkOrder(r.id, account, name, meter_no, r.origin, r.notice_id, period, r.score,
                     tuple(r.reasons or ()), r.status, r.assigned_to, r.outcome, r.notes,
                     r.created_by, r.created_at, r.closed_by, r.closed_at)


def _installed_meter(uow, customer_id: int) -> int | None:
    return uow.session.scalar(select(MeterRow.id).where(MeterRow.customer_id == customer_id,
                                                        MeterRow.status == "installed"))


def create(app, op: Operator, account_no: str, *, origin: str = "manual",
           reasons: list[str] | tuple[str, ...] = (), score=None, period: str | None = None,
           notes: str = "", notice_id: int | None = None) -> WorkOrder:
    """A new open work order for the customer. One open order per customer: asking again
    returns the open one (a ranked list clicked twice makes one visit, not two)."""
    op.require(Perm.MANAGE_INSPECTIONS)
    if origin not in ORIGINS:
        raise ValidationError(f"origin must be one of {', '.join(ORIGINS)}")
    py, pm = _period(period)
    score_d = None if score is None else Decimal(str(score)).quantize(Decimal("0.001"))
    with app.uow() as uow:
        s = uow.session
        c = get_customer_row(uow, account_no)
        oid = s.scalar(select(WorkOrderRow.id).where(WorkOrderRow.customer_id == c.id,
                                                     WorkOrderRow.status != DONE))
        if oid is None:
            row = WorkOrderRow(customer_id=c.id, meter_id=_installed_meter(uow, c.id),
                               origin=origin, notice_id=notice_id, period_year=py,
                               period_month=pm, score=score_d,
                               reasons=[str(r) for r in reasons], status=OPEN,
                               notes=notes or "", created_by=op.login, created_at=_now())
            s.add(row)
            uow.commit()
            oid = row.id
    return get(app, op, oid)


def create_from_ranking(app, op: Operator, ranked) -> WorkOrder:
    """A work order for one line of ``consumption.rank``: its score, month and reasons."""
    op.require(Perm.MANAGE_INSPECTIONS)
    return create(app, op, ranked.account_no, origin="ranking", reasons=ranked.reasons,
                  score=ranked.score, period=ranked.period)


def create_from_notice(app, op: Operator, notice_id: int) -> WorkOrder:
    """A work order for a counter notice (the notice itself stays as it is)."""
    op.require(Perm.MANAGE_INSPECTIONS)
    with app.uow() as uow:
        n = uow.session.get(InspectionNoticeRow, int(notice_id))
        if n is None:
            raise NotFound(f"no inspection notice {notice_id}")
        if n.customer_id is None:
            raise BusinessRuleError(f"inspection notice {notice_id} names no customer; raise a "
                                    "work order for the customer by hand")
        account = uow.session.get(CustomerRow, n.customer_id).account_no
        reason = n.reason
        raised = n.raised_at
    return create(app, op, account, origin="notice", reasons=[reason], notice_id=int(notice_id),
                  period=f"{raised:%Y-%m}")


def assign(app, op: Operator, order_id: int, inspector: str) -> WorkOrder:
    op.require(Perm.MANAGE_INSPECTIONS)
    with app.uow() as uow:
        row = _row(uow, order_id)
        if row.status == DONE:
            raise BusinessRuleError(f"work order {order_id} is already done")
        who = uow.session.scalar(select(OperatorRow).where(OperatorRow.login == inspector))
        if who is None or not who.active:
            raise ValidationError(f"no active operator {inspector!r} to assign")
        row.assigned_to, row.assigned_at, row.status = inspector, _now(), ASSIGNED
        uow.commit()
    return get(app, op, order_id)


def record_outcome(app, op: Operator, order_id: int, outcome: str, notes: str = "") -> WorkOrder:
    """Close the order with what the inspector found; the outcome becomes a label."""
    op.require(Perm.MANAGE_INSPECTIONS)
    outcome = (outcome or "").strip().lower().replace(" ", "_").replace("-", "_")
    if outcome not in OUTCOMES:
        raise ValidationError(f"outcome must be one of {', '.join(OUTCOMES)}")
    with app.uow() as uow:
        row = _row(uow, order_id)
        if row.status == DONE:
            raise BusinessRuleError(f"work order {order_id} already has outcome {row.outcome}")
        row.outcome, row.status, row.closed_by, row.closed_at = outcome, DONE, op.login, _now()
        if notes:
            row.notes = (row.notes + "\n" if row.notes else "") + notes.strip()
        uow.commit()
    return get(app, op, order_id)


def _row(uow, order_id: int) -> WorkOrderRow:
    row = uow.session.get(WorkOrderRow, int(order_id))
    if row is None:
        raise NotFound(f"no work order {order_id}")
    return row


def get(app, op: Operator, order_id: int) -> WorkOrder:
    op.require(Perm.VIEW)
    found = list_orders(app, op, status=None, order_id=order_id)
    if not found:
        raise NotFound(f"no work order {order_id}")
    return found[0]


def list_orders(app, op: Operator, status: str | None = None, assigned_to: str | None = None,
                order_id: int | None = None) -> list[WorkOrder]:
    """Work orders, newest first; ``status`` open, assigned, done or None for all."""
    op.require(Perm.VIEW)
    if status not in (None, OPEN, ASSIGNED, DONE):
        raise ValidationError(f"status must be {OPEN}, {ASSIGNED} or {DONE}")
    with app.uow() as uow:
        q = (select(WorkOrderRow, CustomerRow.account_no, CustomerRow.name, MeterRow.meter_no)
             .join(CustomerRow, CustomerRow.id == WorkOrderRow.customer_id)
             .outerjoin(MeterRow, MeterRow.id == WorkOrderRow.meter_id)
             .order_by(WorkOrderRow.created_at.desc(), WorkOrderRow.id.desc()))
        if status:
            q = q.where(WorkOrderRow.status == status)
        if assigned_to:
            q = q.where(WorkOrderRow.assigned_to == assigned_to)
        if order_id is not None:
            q = q.where(WorkOrderRow.id == int(order_id))
        return [_to_order(r, a, n, m) for r, a, n, m in uow.session.execute(q)]


def labels(app, op: Operator) -> list[Label]:
    """Every closed work order as (customer, month, score, outcome), oldest first."""
    op.require(Perm.VIEW)
    with app.uow() as uow:
        q = (select(WorkOrderRow, CustomerRow.account_no)
             .join(CustomerRow, CustomerRow.id == WorkOrderRow.customer_id)
             .where(WorkOrderRow.status == DONE).order_by(WorkOrderRow.closed_at, WorkOrderRow.id))
        return [Label(r.id, a, f"{r.period_year:04d}-{r.period_month:02d}" if r.period_year
                      else None, r.score, r.outcome, r.origin, r.closed_at)
                for r, a in uow.session.execute(q)]


def labels_csv(app, op: Operator) -> str:
    """The labels as CSV (account_no, period, score, outcome, origin, work_order, closed_at)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["account_no", "period", "score", "outcome", "origin", "work_order", "closed_at"])
    for lb in labels(app, op):
        w.writerow([lb.account_no, lb.period or "", "" if lb.score is None else lb.score,
                    lb.outcome, lb.origin, lb.work_order, lb.closed_at.isoformat()])
    return out.getvalue()
