"""Reversing a sale whose credit is still unloaded on the card (docs/decisions/0008-reversal-and-reissue.md).

Only the card can prove that the meter never received a sale: the card in the reader must be the
card the sale was written to, its newest record must be that sale's, and its return data must show
the meter has not loaded it. The sale must be the meter's latest, completed, a plain sale, and not
in a closed day. A supervisor approves (or the operator, if they hold ``REVERSE_SALE``).

Durable like a sale:
    1. commit (durably) a PENDING reversal
    2. revoke the record on the card (``CardFormat.revoke_vend``), read the card back
    3. commit COMPLETED (sale "reversed", the meter's sequence back to n-1 so the next sale reuses
       n, a refund cash entry) or FAILED (nothing changed)
A PENDING reversal is settled from the card (``settle_reversals``, run by every reconciliation):
the card no longer holds n -> completed, it still holds n (or a later sale) -> failed. No sale is
ever deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs
from sqlalchemy import func, select, update

from ..cards import CardImage
from ..crashpoints import crashpoint
from ..domain import VendState
from ..errors import BusinessRuleError, CardError, NotFound, PermissionDenied, ValidationError
from ..storage.models import CardRow, MeterReturnRow, MeterRow, ReversalRow, VendRow
from . import audit, debts
from .auth import Operator, Perm
from .cards import connected, ensure_user_card
from .cash import record_cash

PENDING, COMPLETED, FAILED = "pending", "completed", "failed"


@attrs.frozen
class ReversalResult:
    reversal_id: int
    vend_id: int
    account_no: str
    meter_no: str
    sequence: int
    refund: Decimal
    refund_receipt_no: str | None
    operator: str
    approved_by: str
    state: str
    note: str


def now() -> datetime:
    return datetime.now(UTC)


def approver_for(op: Operator, supervisor: Operator | None) -> Operator:
    """Who approves: the supervisor the host authenticated, or the operator themself if they may."""
    approver = supervisor or op
    if not approver.can(Perm.REVERSE_SALE):
        if supervisor is None:
            raise PermissionDenied(f"operator {op.login} may not reverse sales; a supervisor must "
                                   "approve (log in as the supervisor)")
        raise PermissionDenied(f"{supervisor.login} ({supervisor.role}) may not approve reversals; "
                               "a supervisor or administrator must")
    return approver


def _ensure_open_day(uow, v: VendRow) -> None:
    try:
        from .dayclose import ensure_not_closed
    except ImportError:  # day closing not installed in this build
        if v.closing_id is not None:
            raise BusinessRuleError(f"sale {v.id} was closed in day closing {v.closing_id}; it can "
                                    "no longer be reversed") from None
        return
    ensure_not_closed(v, uow)


def check_reversible(uow, v: VendRow, card: CardRow, image: CardImage) -> None:
    """Every reason a sale cannot be reversed now, as a clear BusinessRuleError."""
    what = f"sale {v.id} ({v.receipt_no or 'no receipt'}, sequence {v.sequence})"
    if v.state == VendState.REVERSED.value:
        raise BusinessRuleError(f"{what} is already reversed")
    if v.kind != "sale":
        raise BusinessRuleError(f"{what} is a {v.kind}, not a sale; only sales are reversed")
    if v.state != VendState.COMPLETED.value:
        raise BusinessRuleError(f"{what} is {v.state}; only a completed sale can be reversed "
                                "(settle it with the card first)")
    _ensure_open_day(uow, v)
    busy = uow.session.scalar(select(ReversalRow.id).where(ReversalRow.vend_id == v.id,
                                                           ReversalRow.state == PENDING))
    if busy is not None:
        raise BusinessRuleError(f"reversal {busy} of {what} is unfinished; reconcile with the card")
    meter = v.meter
    if v.sequence != meter.last_sequence:
        raise BusinessRuleError(f"{what} is not the latest sale of meter {meter.meter_no} (the meter "
                                f"is at sequence {meter.last_sequence}); it cannot be reversed")
    if card.id != v.card_id:
        raise BusinessRuleError(f"{what} was written to card {v.card.uid}, not to card {card.uid} in "
                                "the reader; only that card can show the credit was never loaded")
    held = image.vend.sequence if image.vend else 0
    if image.vend is None or held != v.sequence or image.vend.credit != v.credit:
        raise BusinessRuleError(f"the card does not hold {what} (its newest record is sequence "
                                f"{held}); it cannot be reversed")
    if (image.returned is None and image.return_problem
            and not image.return_problem.startswith("empty")):
        raise BusinessRuleError(f"the meter data on the card is {image.return_problem}: the card "
                                f"cannot show that {what} was never loaded; it cannot be reversed")
    if not image.unloaded:
        raise BusinessRuleError(f"the credit of {what} has already been loaded into the meter (the "
                                "card's return data shows it); it cannot be reversed")
    known = uow.session.scalar(select(func.max(MeterReturnRow.last_sequence))
                               .where(MeterReturnRow.meter_id == v.meter_id)) or 0
    if known >= v.sequence:
        raise BusinessRuleError(f"meter data already recorded shows {what} loaded into the meter; "
                                "it cannot be reversed")


def reverse_sale(app, op: Operator, vend_id: int, reason: str,
                 supervisor: Operator | None = None) -> ReversalResult:
    """Take sale ``vend_id`` back off the card in the reader and refund the amount paid."""
    op.require(Perm.VEND)
    approver = approver_for(op, supervisor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("a reversal needs a reason")
    from .vending import reconcile_with_card, record_return

    fmt = app.card_format
    with connected(app) as conn:
        image = fmt.read(conn)
        ensure_user_card(image)
        with app.uow() as uow:
            s = uow.session
            card = s.scalar(select(CardRow).where(CardRow.uid == image.uid))
            if card is None:
                raise NotFound(f"card {image.uid} is not registered")
            reconcile_with_card(uow, image)  # unfinished sales and reversals of this meter first
            record_return(uow, op, image, card.meter_id, card.customer_id)
            uow.commit()
            v = s.get(VendRow, int(vend_id))
            if v is None:
                raise NotFound(f"no sale with id {vend_id}")
            check_reversible(uow, v, card, image)
            row = ReversalRow(vend_id=v.id, state=PENDING, refund=v.amount, reason=reason,
                              operator=op.login, approved_by=approver.login,
                              station=app.config.station_code)
            s.add(row)
            s.flush()
            rid, seq = row.id, v.sequence
            audit.record(uow, op, "reversal.request", v.receipt_no or f"sale {v.id}",
                         {"reversal_id": rid, "vend_id": v.id, "refund": v.amount,
                          "reason": reason, "approved_by": approver.login})
            uow.commit()
        crashpoint("reversal.pending")
        try:
            fmt.revoke_vend(conn, seq)
            crashpoint("reversal.card_written")
            back = fmt.read(conn)
        except CardError as exc:
            _settle_after_error(app, conn)
            raise CardError(f"{exc}; reversal {rid} is pending until the card is presented again "
                            "(dbmis reconcile); do not refund yet") from exc
    crashpoint("reversal.verified")
    with app.uow() as uow:
        row = uow.session.get(ReversalRow, rid)
        receipt = settle(uow, row, back)
        result = _result(row, receipt)
        uow.commit()
    crashpoint("reversal.completed")
    if result.state != COMPLETED:
        raise CardError(f"the card still holds the sale ({result.note}); reversal {rid} failed and "
                        "nothing changed")
    return result


def _settle_after_error(app, conn) -> None:
    try:
        image = app.card_format.read(conn)
    except CardError:
        return  # card gone: the reversal stays pending until the card is back
    from .vending import reconcile_with_card

    with app.uow() as uow:
        reconcile_with_card(uow, image)
        uow.commit()


def _result(row: ReversalRow, receipt: str | None) -> ReversalResult:
    v = row.vend
    return ReversalResult(row.id, v.id, v.customer.account_no, v.meter.meter_no, v.sequence,
                          row.refund, receipt, row.operator, row.approved_by, row.state, row.note)


def settle(uow, row: ReversalRow, image: CardImage) -> str | None:
    """Settle PENDING reversal ``row`` from ``image`` of the sale's card; returns the refund's
    receipt number when it completes."""
    s = uow.session
    v = row.vend
    held = image.vend.sequence if image.vend else 0
    row.completed_at = now()
    if held >= v.sequence:
        row.state = FAILED
        row.note = (f"the card still holds sequence {held}" if held == v.sequence
                    else f"a later sale (sequence {held}) is on the card")
        s.flush()
        _audit_outcome(uow, row, v)
        return None
    released = s.execute(update(MeterRow).where(MeterRow.id == v.meter_id,
                                                MeterRow.last_sequence == v.sequence)
                         .values(last_sequence=v.sequence - 1)).rowcount
    if released != 1:
        row.state = FAILED
        row.note = "the meter's sequence moved on meanwhile; inspect the meter's sales"
        s.flush()
        _audit_outcome(uow, row, v)
        return None
    v.state = VendState.REVERSED.value
    debts.undo_for_vend(uow, v.id)  # what the sale paid towards debts is owed again
    v.note = (v.note + "; " if v.note else "") + f"reversed ({row.reason}), approved by {row.approved_by}"
    row.state = COMPLETED
    clerk = Operator(login=row.operator, full_name=row.operator, role="clerk")
    receipt = record_cash(uow, clerk, row.station, "refund", -row.refund,
                          customer_id=v.customer_id, vend_id=v.id,
                          note=f"reversal {row.id} of sale {v.receipt_no or v.id}").receipt_no
    s.flush()
    _audit_outcome(uow, row, v, receipt)
    return receipt


def _audit_outcome(uow, row: ReversalRow, v: VendRow, receipt: str | None = None) -> None:
    audit.record(uow, row.operator, "reversal", v.receipt_no or f"sale {v.id}",
                 {"reversal_id": row.id, "vend_id": v.id, "state": row.state, "note": row.note,
                  "refund": row.refund if row.state == COMPLETED else "0.00",
                  "refund_receipt": receipt, "approved_by": row.approved_by},
                 station=row.station)


def settle_reversals(uow, image: CardImage) -> list[tuple[int, str]]:
    """Settle PENDING reversals of sales written to the card of ``image``; returns
    (vend id, "reversed" or "completed") per settled reversal."""
    rows = list(uow.session.scalars(
        select(ReversalRow).join(VendRow, ReversalRow.vend_id == VendRow.id)
        .join(CardRow, VendRow.card_id == CardRow.id)
        .where(ReversalRow.state == PENDING, CardRow.uid == image.uid)
        .order_by(ReversalRow.id)))
    done = []
    for row in rows:
        settle(uow, row, image)
        done.append((row.vend_id, row.vend.state))
    return done


def reversals_of_sale(app, op: Operator, vend_id: int) -> list[ReversalRow]:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        return list(uow.session.scalars(select(ReversalRow).where(ReversalRow.vend_id == vend_id)
                                        .order_by(ReversalRow.id)))
