"""Reissuing a lost or damaged user card (docs/decisions/0008-reversal-and-reissue.md).

A replacement card carries the customer's last vend record again (same sequence, credit and issue
time as the database holds for the meter's last completed sale) under a ``REPLACEMENT`` header. The
meter, seeing a genuine replacement record, binds itself to the new card and retires the old one;
because the sequence is one the meter already has, it credits nothing, so a false "lost" report
gains nothing. The system refuses the old card from the moment the loss is recorded.

Durable like a sale:
    1. read the blank card's UID; commit (durably) a PENDING reissue naming it, and mark the old
       card lost
    2. personalise the card as a replacement, write the record, read it back
    3. commit COMPLETED (new card registered and active, fee taken) or FAILED
A PENDING reissue is settled from the card itself (``reconcile_reissue``): the card holds the
replacement header and the expected record -> completed, anything else -> failed (the card can be
used for a new attempt).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import attrs
from sqlalchemy import select

from ..cards import CardHeader, CardImage, VendRecord
from ..crashpoints import crashpoint
from ..domain import CardStatus, CardType, CreditUnit, VendState
from ..errors import BusinessRuleError, CardError, CardFormatError, ValidationError
from ..money import money
from ..storage.models import CardRow, CustomerRow, MeterRow, ReissueRow, VendRow
from .auth import Operator, Perm
from .cards import connected, meter_key_version, utility_numeric_code
from .cash import record_cash
from .registry import current_meter, get_customer_row
from .vending import OPEN_STATES

log = logging.getLogger(__name__)

PENDING, COMPLETED, FAILED = "pending", "completed", "failed"


@attrs.frozen
class ReissueResult:
    reissue_id: int
    account_no: str
    meter_no: str
    old_uid: str
    new_uid: str
    sequence: int | None     # the vend record carried again (None: no sale yet)
    credit: Decimal | None
    fee: Decimal
    fee_receipt_no: str | None
    state: str
    note: str


def now() -> datetime:
    return datetime.now(UTC)


def last_record(uow, meter: MeterRow, account_no: str) -> VendRecord | None:
    """The vend record the meter last received: its newest completed sale (failed and reversed
    sales released their sequences). Refuses when the database is not consistent with itself."""
    last = uow.session.scalar(select(VendRow).where(
        VendRow.meter_id == meter.id, VendRow.state == VendState.COMPLETED.value)
        .order_by(VendRow.sequence.desc(), VendRow.id.desc()).limit(1))
    seq = last.sequence if last else 0
    if seq != meter.last_sequence:
        raise BusinessRuleError(f"meter {meter.meter_no} is at sequence {meter.last_sequence} but its "
                                f"newest completed sale has sequence {seq}; settle the meter's sales "
                                "first")
    if last is None:
        return None
    return VendRecord(last.sequence, last.credit, CreditUnit(last.credit_unit), meter.meter_no,
                      account_no, last.issued_at)


def _header(app, uow, meter: MeterRow, customer: CustomerRow) -> CardHeader:
    return CardHeader(CardType.REPLACEMENT, utility_numeric_code(uow), meter.meter_no,
                      customer.account_no, meter_key_version(app, meter))


def _old_card(uow, customer: CustomerRow, meter: MeterRow) -> CardRow:
    """The card being replaced: the active one, else (a retry after a failed reissue) the newest
    lost card of the customer's meter."""
    s = uow.session
    active = s.scalar(select(CardRow).where(
        CardRow.customer_id == customer.id, CardRow.status == CardStatus.ACTIVE.value,
        CardRow.card_type.in_((int(CardType.USER), int(CardType.REPLACEMENT)))))
    if active is not None:
        return active
    lost = s.scalar(select(CardRow).where(
        CardRow.customer_id == customer.id, CardRow.meter_id == meter.id,
        CardRow.status == CardStatus.LOST.value).order_by(CardRow.id.desc()).limit(1))
    if lost is None:
        raise BusinessRuleError(f"customer {customer.account_no} has no card to replace; issue a "
                                "first card instead")
    return lost


def _result(uow, row: ReissueRow, record: VendRecord | None, receipt: str | None) -> ReissueResult:
    customer = uow.session.get(CustomerRow, row.customer_id)
    old = uow.session.get(CardRow, row.old_card_id)
    meter_no = old.meter.meter_no if old.meter else ""
    return ReissueResult(row.id, customer.account_no, meter_no, old.uid, row.new_uid or "",
                         record.sequence if record else None, record.credit if record else None,
                         row.fee, receipt, row.state, row.note)


def reissue_card(app, op: Operator, account_no: str, fee=None, reason: str = "") -> ReissueResult:
    """Replace the customer's lost card with the blank card in the reader.

    ``fee`` defaults to the configured ``card.reissue_fee``; it is taken (a cash entry with its own
    receipt number) in the transaction that completes the reissue, so a failed reissue costs
    nothing."""
    op.require(Perm.REISSUE_CARD)
    fee_amt = money(app.config.data["card"]["reissue_fee"] if fee is None else fee, "reissue fee")
    if fee_amt < 0:
        raise ValidationError(f"the reissue fee cannot be negative; got {fee_amt}")
    fmt = app.card_format
    station = app.config.station_code
    with connected(app) as conn:
        uid = fmt.read_uid(conn)
        settled = _settle_pending(app, conn, uid)
        if settled and settled.state == COMPLETED and settled.account_no == account_no.strip():
            return settled  # a crashed earlier attempt on this very card finished after all
        with app.uow() as uow:
            s = uow.session
            customer = get_customer_row(uow, account_no)
            meter = current_meter(uow, customer)
            if meter is None:
                raise BusinessRuleError(f"customer {account_no} has no installed meter")
            if s.scalar(select(CardRow.id).where(CardRow.uid == uid)):
                raise ValidationError(f"card {uid} is already registered; insert a blank card")
            header = _header(app, uow, meter, customer)
            try:
                current = fmt.read_header(conn)
            except CardFormatError:  # blank, or a header torn by an interrupted attempt
                current = None
            if current is not None and current != header:
                raise ValidationError(f"card {uid} is already issued; insert a blank card")
            busy = s.scalar(select(ReissueRow).where(ReissueRow.customer_id == customer.id,
                                                     ReissueRow.state == PENDING))
            if busy is not None:
                raise BusinessRuleError(f"reissue {busy.id} for customer {account_no} is unfinished: "
                                        f"insert card {busy.new_uid} and reconcile first")
            open_vend = s.scalar(select(VendRow.id).where(VendRow.meter_id == meter.id,
                                                          VendRow.state.in_(OPEN_STATES)))
            if open_vend is not None:
                raise BusinessRuleError(f"sale {open_vend} of meter {meter.meter_no} is unfinished; "
                                        "it must be settled before the card is reissued")
            old = _old_card(uow, customer, meter)
            record = last_record(uow, meter, customer.account_no)
            row = ReissueRow(customer_id=customer.id, old_card_id=old.id, new_uid=uid, state=PENDING,
                             fee=fee_amt, reason=reason.strip(), operator=op.login, station=station,
                             note=f"carries sequence {record.sequence if record else 0}")
            s.add(row)
            old.status = CardStatus.LOST.value
            s.flush()
            rid = row.id
            from . import audit

            audit.record(uow, op, "reissue.request", f"account {customer.account_no}",
                         {"reissue_id": rid, "old_card": old.uid, "new_card": uid,
                          "fee": fee_amt, "reason": row.reason,
                          "card_status": {"before": "active", "after": CardStatus.LOST.value}})
            uow.commit()
        crashpoint("reissue.pending")
        try:
            fmt.personalise(conn, header)
            crashpoint("reissue.personalised")
            if record is not None:
                fmt.write_vend(conn, record)
            crashpoint("reissue.card_written")
            back = fmt.read(conn)
        except CardError as exc:
            _settle_pending(app, conn, uid, quiet=True)
            raise CardError(f"{exc}; reissue {rid} is pending until card {uid} is presented again "
                            "(dbmis reconcile)") from exc
    crashpoint("reissue.verified")
    with app.uow() as uow:
        row = uow.session.get(ReissueRow, rid)
        receipt = _settle(app, uow, row, back)
        result = _result(uow, row, record, receipt)
        uow.commit()
    crashpoint("reissue.completed")
    if result.state != COMPLETED:
        raise CardError(f"the card did not keep the replacement record ({result.note}); reissue "
                        f"{rid} failed, nothing was charged; try again with this or another card")
    return result


def _settle(app, uow, row: ReissueRow, image: CardImage | None) -> str | None:
    """PENDING -> COMPLETED when ``image`` (the card named by the reissue, None if blank or
    unreadable) is the expected replacement, else FAILED. Returns the fee's receipt number."""
    s = uow.session
    customer = s.get(CustomerRow, row.customer_id)
    old = s.get(CardRow, row.old_card_id)
    meter = old.meter
    expected = last_record(uow, meter, customer.account_no) if meter else None
    header = _header(app, uow, meter, customer) if meter else None
    ok = (image is not None and meter is not None and image.uid == row.new_uid
          and attrs.evolve(image.header, key_version=header.key_version) == header
          and image.vend == expected)
    row.completed_at = now()
    if not ok:
        row.state = FAILED
        row.note = ("card did not receive the replacement" if image is None
                    else "card does not hold the expected replacement record")
        s.flush()
        _audit_outcome(uow, row, customer, old)
        return None
    s.add(CardRow(uid=row.new_uid, card_type=int(CardType.REPLACEMENT),
                  status=CardStatus.ACTIVE.value, meter_id=meter.id, customer_id=customer.id,
                  key_version=image.header.key_version, issued_by=row.operator))
    row.state = COMPLETED
    receipt = None
    if row.fee > 0:
        clerk = Operator(login=row.operator, full_name=row.operator, role="clerk")
        receipt = record_cash(uow, clerk, row.station, "reissue_fee", row.fee,
                              customer_id=customer.id,
                              note=f"reissue {row.id}: card {old.uid} -> {row.new_uid}").receipt_no
    s.flush()
    _audit_outcome(uow, row, customer, old, receipt)
    return receipt


def _audit_outcome(uow, row: ReissueRow, customer: CustomerRow, old: CardRow,
                   receipt: str | None = None) -> None:
    from . import audit

    audit.record(uow, row.operator, "reissue", f"account {customer.account_no}",
                 {"reissue_id": row.id, "state": row.state, "note": row.note, "old_card": old.uid,
                  "new_card": row.new_uid, "fee": row.fee if receipt else "0.00",
                  "fee_receipt": receipt}, station=row.station)


def _settle_pending(app, conn, uid: str, quiet: bool = False) -> ReissueResult | None:
    """Settle a PENDING reissue that names the card ``uid`` from what the card holds."""
    with app.uow() as uow:
        row = uow.session.scalar(select(ReissueRow).where(ReissueRow.new_uid == uid,
                                                          ReissueRow.state == PENDING))
        if row is None:
            return None
        try:
            image = app.card_format.read(conn)
        except CardFormatError:  # blank or torn header: the replacement never got onto it
            image = None
        except CardError:
            if quiet:
                return None
            raise
        receipt = _settle(app, uow, row, image)
        record = image.vend if image is not None and row.state == COMPLETED else None
        result = _result(uow, row, record, receipt)
        uow.commit()
    log.info("reissue %s settled from card %s: %s", result.reissue_id, uid, result.state)
    return result


def reconcile_reissue(app, op: Operator, conn) -> list[ReissueResult]:
    """Settle an unfinished reissue from the card in the reader (a crash or a pulled card)."""
    op.require(Perm.RECONCILE)
    result = _settle_pending(app, conn, app.card_format.read_uid(conn))
    return [result] if result else []


def reconcile_card(app, op: Operator) -> tuple[list[ReissueResult], list[tuple[int, str]]]:
    """Settle everything the card in the reader can settle: an unfinished reissue naming it, then
    its meter's unfinished sales and reversals. Returns (reissues settled, (vend id, state)s)."""
    from .vending import reconcile_card_in_reader

    op.require(Perm.RECONCILE)
    with connected(app) as conn:
        reissued = reconcile_reissue(app, op, conn)
    try:
        sales = reconcile_card_in_reader(app, op)
    except CardFormatError:
        if not reissued:  # a blank or foreign card, and no reissue waiting for it
            raise
        sales = []
    return reissued, sales


def reissues_of(app, op: Operator, account_no: str) -> list[ReissueRow]:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        c = get_customer_row(uow, account_no)
        return list(uow.session.scalars(select(ReissueRow).where(ReissueRow.customer_id == c.id)
                                        .order_by(ReissueRow.id)))
