"""Inspection notices: something seen at the counter that an inspector must look at (a card of
another meter, a sequence from the future, a forged record).

A notice is written in the caller's transaction and committed even when the sale it came from is
refused, so the refusal never loses the evidence. The same open notice (same card, same reason) is
not raised twice: a clerk who checks a card and then tries to sell sees one notice, not two.
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
from sqlalchemy import select

from ..errors import BusinessRuleError, NotFound, ValidationError
from ..storage.models import CustomerRow, InspectionNoticeRow, MeterRow
from .auth import Operator, Perm
from .registry import get_customer_row

OPEN, CLOSED = "open", "closed"


@attrs.frozen
class Notice:
    id: int
    account_no: str | None
    meter_no: str | None
    card_uid: str | None
    reason: str
    status: str
    raised_by: str
    station: str
    raised_at: datetime


def add_notice(uow, op: Operator, station: str, reason: str, customer_id: int | None = None,
               meter_id: int | None = None, card_uid: str | None = None) -> InspectionNoticeRow:
    """Raise a notice in the caller's transaction (no permission needed: the system raises it)."""
    s = uow.session
    same = s.scalar(select(InspectionNoticeRow).where(
        InspectionNoticeRow.status == OPEN, InspectionNoticeRow.card_uid == card_uid,
        InspectionNoticeRow.customer_id == customer_id, InspectionNoticeRow.reason == reason))
    if same is not None:
        return same
    row = InspectionNoticeRow(customer_id=customer_id, meter_id=meter_id, card_uid=card_uid,
                              reason=reason, status=OPEN, raised_by=op.login, station=station,
                              raised_at=datetime.now(UTC))
    s.add(row)
    s.flush()
    return row


def raise_notice(app, op: Operator, reason: str, account_no: str | None = None,
                 card_uid: str | None = None) -> int:
    """Raise a notice by hand (an inspector or clerk saw something) and commit it; a write, so
    not open to the read-only auditor."""
    op.require(Perm.VEND if op.can(Perm.VEND) else Perm.MANAGE_INSPECTIONS)
    if not (reason or "").strip():
        raise ValidationError("an inspection notice needs a reason")
    with app.uow() as uow:
        customer_id = meter_id = None
        if account_no:
            c = get_customer_row(uow, account_no)
            customer_id = c.id
            m = uow.session.scalar(select(MeterRow).where(MeterRow.customer_id == c.id,
                                                          MeterRow.status == "installed"))
            meter_id = m.id if m else None
        row = add_notice(uow, op, app.config.station_code, reason.strip(), customer_id, meter_id,
                         card_uid)
        uow.commit()
        return row.id


def _notice(row: InspectionNoticeRow, accounts: dict, meters: dict) -> Notice:
    return Notice(row.id, accounts.get(row.customer_id), meters.get(row.meter_id), row.card_uid,
                  row.reason, row.status, row.raised_by, row.station, row.raised_at)


def list_notices(app, op: Operator, status: str | None = OPEN,
                 account_no: str | None = None) -> list[Notice]:
    """Notices, newest first; ``status`` None lists all."""
    op.require(Perm.VIEW)
    if status not in (None, OPEN, CLOSED):
        raise ValidationError(f"status must be {OPEN!r} or {CLOSED!r}, got {status!r}")
    with app.uow() as uow:
        s = uow.session
        q = select(InspectionNoticeRow).order_by(InspectionNoticeRow.raised_at.desc(),
                                                 InspectionNoticeRow.id.desc())
        if status:
            q = q.where(InspectionNoticeRow.status == status)
        if account_no:
            q = q.where(InspectionNoticeRow.customer_id == get_customer_row(uow, account_no).id)
        rows = list(s.scalars(q))
        accounts = dict(s.execute(select(CustomerRow.id, CustomerRow.account_no).where(
            CustomerRow.id.in_({r.customer_id for r in rows if r.customer_id}))).all())
        meters = dict(s.execute(select(MeterRow.id, MeterRow.meter_no).where(
            MeterRow.id.in_({r.meter_id for r in rows if r.meter_id}))).all())
        return [_notice(r, accounts, meters) for r in rows]


def close_notice(app, op: Operator, notice_id: int, finding: str) -> None:
    """Close a notice after inspection. The table has no columns for the closing, so the finding,
    inspector and time are appended to the reason (the notice stays one readable text)."""
    op.require(Perm.MANAGE_METERS)
    finding = (finding or "").strip()
    if not finding:
        raise ValidationError("closing a notice needs the inspector's finding")
    with app.uow() as uow:
        row = uow.session.get(InspectionNoticeRow, int(notice_id))
        if row is None:
            raise NotFound(f"no inspection notice {notice_id}")
        if row.status != OPEN:
            raise BusinessRuleError(f"inspection notice {notice_id} is already {row.status}")
        row.status = CLOSED
        row.reason = (f"{row.reason}\n-- closed by {op.login} at "
                      f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {finding}")
        uow.commit()
