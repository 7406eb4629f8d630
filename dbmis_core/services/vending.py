"""Selling electricity: the durable vend state machine (docs/decisions/0003-vend-state-machine.md).

    1. read the card, record its return data, reconcile any unfinished sale of this meter
    2. commit (durably) a PENDING vend that reserves sequence n = meter.last_sequence + 1 and the
       station's next receipt number
    3. write the vend record to the card, then read it back
    4. render the receipt, commit COMPLETED (WRITTEN instead when the receipt cannot be made)
A failure at any point leaves either a PENDING/WRITTEN row (resolved by reconciliation against the
card: the card holds n -> completed, it does not -> failed, its receipt number void) or nothing at
all. Money is never taken twice and a sequence is never credited twice because the meter applies
only last + 1.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import attrs

from sqlalchemy import Integer, bindparam, case, func, insert, null, select, update
from sqlalchemy.exc import IntegrityError

from ..cards import CardImage, VendRecord
from ..crashpoints import crashpoint
from ..domain import CardStatus, CreditUnit, MeterReturn, MeterStatus, Quote, VendState
from ..errors import BusinessRuleError, CardError, CardFormatError, NotFound, ValidationError
from ..money import money
from ..storage.models import (
    CardRow,
    CustomerRow,
    DebtRow,
    MeterModelRow,
    MeterReturnRow,
    MeterRow,
    StationRow,
    UtilityRow,
    VendRow,
)
from ..storage.precompiled import Precompiled, constant_in, run_batch
from . import audit, debts, settings, tariffs
from .auth import Operator, Perm
from .cards import card_row, connected, ensure_user_card
from .inspections import add_notice
from .registry import get_customer_row


@attrs.frozen
class SaleResult:
    vend_id: int
    account_no: str
    meter_no: str
    sequence: int
    amount: Decimal
    energy: Decimal
    credit: Decimal
    credit_unit: CreditUnit
    state: VendState
    receipt_no: str | None
    receipt_text: str
    consumption_recorded: Decimal | None
    debt_recovered: Decimal = Decimal("0.00")
    warnings: tuple[str, ...] = ()


OPEN_STATES = (VendState.PENDING.value, VendState.WRITTEN.value)  # sales that still need the card


def now() -> datetime:
    return datetime.now(UTC)


def quote(app, op: Operator, account_no: str, amount) -> Quote:
    op.require(Perm.VIEW)
    amt = _check_amount(app, amount)
    with app.uow() as uow:
        customer = get_customer_row(uow, account_no)
        return _quote(app, customer, amt, uow=uow)


def _check_amount(app, amount) -> Decimal:
    amt = money(amount)
    limits = settings.sales(app)
    lo, hi = limits.min_amount, limits.max_amount
    if amt < lo:
        raise ValidationError(f"the smallest purchase is {lo}; got {amt}")
    if amt > hi:
        raise ValidationError(f"the largest purchase is {hi}; got {amt}")
    return amt


def _quote(app, customer, amount: Decimal, *, uow=None, at: datetime | None = None,
           known=None) -> Quote:
    """The customer's tariff (None: the configured default) with the settings in force at ``at``
    (default now) and, for period tariffs, the energy bought so far this month or year
    (services.tariffs). Pass the caller's ``uow`` to run the one look-up query in its transaction;
    without it the query reads outside any transaction; ``known`` (tariffs.Lookup) saves it."""
    from .tariffs import quote_for_customer

    return quote_for_customer(app, customer, amount, uow=uow, at=at, known=known)


def record_return(uow, op: Operator, image: CardImage, meter_id: int | None = None,
                  customer_id: int | None = None, newest=None) -> Decimal | None:
    """Store the meter's return data once; returns the consumption since the previous return.
    ``newest``: the meter's newest stored return as read in this transaction, if the caller has it
    (see store_return)."""
    ret = image.returned
    if ret is None:
        return None
    if meter_id is None:
        card = card_row(uow, image.uid)
        meter_id, customer_id = card.meter_id, card.customer_id
    return store_return(uow, op, meter_id, customer_id, ret, newest=newest)[0]


_LATEST_RETURN = Precompiled(
    select(MeterReturnRow.written_at, MeterReturnRow.cumulative_consumed,
           MeterReturnRow.consumed_since_previous)
    .where(MeterReturnRow.meter_id == bindparam("meter_id"),
           MeterReturnRow.written_at <= bindparam("written_at"))
    .order_by(MeterReturnRow.written_at.desc()).limit(1))
_INSERT_RETURN = Precompiled(insert(MeterReturnRow), keys=(
    "meter_id", "customer_id", "last_sequence", "remaining", "cumulative_purchased",
    "cumulative_consumed", "consumed_since_previous", "status", "tamper_count",
    "illegal_card_count", "history_year", "history_month", "history", "written_at", "read_at",
    "read_by", "source"))


def store_return(uow, op: Operator, meter_id: int, customer_id: int, ret: MeterReturn,
                 source: str = "user", newest=None) -> tuple[Decimal | None, bool]:
    """Store one piece of meter data unless it is already stored; returns (consumption since the
    meter's previous data, newly stored).

    The meter's write time identifies it, so data brought back twice (or on two cards) counts once;
    consumption is measured from the latest earlier data of the meter. ``newest`` (written_at,
    cumulative_consumed, consumed_since_previous of the meter's newest stored data, or None when
    it has none) saves the look-up when the card's data is not older than it: the usual sale."""
    if newest is not None and (newest.written_at is None or newest.written_at <= ret.written_at):
        latest = newest if newest.written_at is not None else None
    else:
        latest = _LATEST_RETURN.execute(uow.connection, {
            "meter_id": meter_id, "written_at": ret.written_at}).first()
    if latest is not None and latest.written_at == ret.written_at:
        return latest.consumed_since_previous, False
    consumed = ret.cumulative_consumed - (latest.cumulative_consumed if latest else 0)
    _INSERT_RETURN.execute(uow.connection, dict(
        meter_id=meter_id, customer_id=customer_id, last_sequence=ret.last_sequence,
        remaining=ret.remaining, cumulative_purchased=ret.cumulative_purchased,
        cumulative_consumed=ret.cumulative_consumed, consumed_since_previous=consumed,
        status=ret.status, tamper_count=ret.tamper_count,
        illegal_card_count=ret.illegal_card_count, history_year=ret.history_month[0],
        history_month=ret.history_month[1], history=[str(h) for h in ret.history],
        written_at=ret.written_at, read_at=now(), read_by=op.login, source=source))
    return consumed, True


_NEXT_RECEIPT = (update(StationRow).where(StationRow.code == bindparam("station_code"))
                 .values(next_receipt=StationRow.next_receipt + 1)
                 .returning(StationRow.next_receipt))


# a sale's PENDING transaction numbers its receipt and its audit record on the station row, which
# its sale context read locked (FOR UPDATE; on SQLite the transaction holds the write lock): the
# numbers are the ones read, and a guard like the claim's makes a surprise an error, never a gap
_STATION_NUMBERS = Precompiled(
    update(StationRow).where(StationRow.code == bindparam("station_code"))
    .values(next_receipt=case(
        ((StationRow.next_receipt == bindparam("receipt_was", type_=Integer))
         & (StationRow.audit_seq == bindparam("audit_seq_was", type_=Integer)),
         bindparam("receipt_now", type_=Integer)), else_=null()),
            audit_seq=bindparam("audit_seq_now"), audit_head=bindparam("audit_head_now")))


def _next_receipt(uow, station_code: str) -> str:
    n = uow.session.connection().execute(_NEXT_RECEIPT,
                                         {"station_code": station_code}).scalar_one_or_none()
    if n is None:
        raise BusinessRuleError(f"station {station_code} is not registered; run 'dbmis init'")
    return f"{station_code}-{n - 1:08d}"


def _finish(uow, vend: VendRow) -> None:
    """WRITTEN/PENDING-verified -> COMPLETED with a receipt number, in the caller's transaction."""
    t = now()
    vend.written_at = vend.written_at or t
    vend.receipt_no = vend.receipt_no or _next_receipt(uow, vend.station)
    vend.completed_at = t
    vend.state = VendState.COMPLETED.value


def _matches(vend: VendRow, image: CardImage) -> bool:
    v = image.vend
    return (v is not None and v.sequence == vend.sequence and v.credit == vend.credit
            and v.meter_no == vend.meter.meter_no)


def reconcile_with_card(uow, image: CardImage) -> list[tuple[int, str]]:
    """Settle unfinished sales of the card's meter against what the card holds, and unfinished
    reversals of sales written to this card (those come back as (vend id, "reversed"/"completed"))."""
    from .reversal import settle_reversals

    done = settle_reversals(uow, image)
    meter = uow.session.scalar(select(MeterRow).where(MeterRow.meter_no == image.header.meter_no))
    if meter is None:
        return done
    open_vends = uow.session.scalars(select(VendRow).where(
        VendRow.meter_id == meter.id,
        VendRow.state.in_(OPEN_STATES))
        .order_by(VendRow.sequence))
    card_seq = image.vend.sequence if image.vend else 0
    loaded = image.returned.last_sequence if image.returned else 0
    for v in open_vends:
        if v.state == VendState.WRITTEN.value or _matches(v, image) or loaded >= v.sequence:
            _finish(uow, v)
            _audit_outcome(uow, v, v.operator)
            done.append((v.id, VendState.COMPLETED.value))
        elif card_seq < v.sequence and v.card.uid == image.uid:
            v.state = VendState.FAILED.value
            v.note = "card did not receive the record (reconciled)"
            v.completed_at = now()
            _release_sequence(uow, v)
            debts.undo_for_vend(uow, v.id)
            _audit_outcome(uow, v, v.operator)
            done.append((v.id, VendState.FAILED.value))
    uow.session.flush()
    return done


def _audit_outcome(uow, v: VendRow, op) -> None:
    """A sale that did not complete at the counter: failed, or settled later from the card."""
    audit.record(uow, op, "sale.failed" if v.state == VendState.FAILED.value else "sale.settled",
                 f"account {v.customer.account_no}",
                 {"receipt": v.receipt_no, "vend_id": v.id, "state": v.state, "note": v.note,
                  "amount": v.amount})


def _release_sequence(uow, v: VendRow) -> None:
    uow.session.execute(update(MeterRow).where(MeterRow.id == v.meter_id,
                                               MeterRow.last_sequence == v.sequence)
                        .values(last_sequence=v.sequence - 1))


_NEWEST = MeterReturnRow.__table__.alias("newest")  # the meter's newest stored return
_SALE_CONTEXT = Precompiled(
    select(CardRow.id.label("card_id"), CardRow.status.label("card_status"),
           CustomerRow.id.label("customer_id"), CustomerRow.account_no, CustomerRow.name,
           CustomerRow.category, CustomerRow.tariff.label("customer_tariff"),
           MeterRow.id.label("meter_id"), MeterRow.meter_no,
           MeterRow.status.label("meter_status"), MeterRow.customer_id.label("meter_customer"),
           MeterRow.last_sequence, MeterModelRow.credit_unit,
           select(UtilityRow.name).limit(1).scalar_subquery().label("utility"),
           select(VendRow.id).where(VendRow.meter_id == MeterRow.id,
                                    constant_in(VendRow.state, OPEN_STATES))
           .exists().label("has_open"),
           CustomerRow.status.label("customer_status"),
           select(DebtRow.id).where(DebtRow.customer_id == CustomerRow.id,
                                    DebtRow.settled_at.is_(None)).exists().label("has_debt"),
           _NEWEST.c.written_at.label("latest_return"),
           _NEWEST.c.cumulative_consumed.label("latest_cumulative"),
           _NEWEST.c.consumed_since_previous.label("latest_consumed"),
           *tariffs.lookup_columns(CustomerRow.tariff, CustomerRow.id),
           StationRow.next_receipt, StationRow.audit_seq, StationRow.audit_head)
    .select_from(CardRow)
    .join(MeterRow, CardRow.meter_id == MeterRow.id)
    .join(MeterModelRow, MeterRow.model_id == MeterModelRow.id)
    .join(CustomerRow, CardRow.customer_id == CustomerRow.id)
    .outerjoin(_NEWEST, (_NEWEST.c.meter_id == MeterRow.id) & (
        _NEWEST.c.written_at == select(func.max(MeterReturnRow.written_at))
        .where(MeterReturnRow.meter_id == MeterRow.id).scalar_subquery()))
    .join(StationRow, StationRow.code == bindparam("station_code"))
    .where(CardRow.uid == bindparam("uid"))
    .with_for_update(of=StationRow))
# The meter's next sequence, claimed only from the value the sale read: if another station got
# there first, the new value is NULL and the NOT NULL column refuses it. An error (not a row count
# of 0) stops the rest of a batch and its COMMIT on the server, so the claim can travel with them.
_CLAIM = Precompiled(update(MeterRow).where(MeterRow.id == bindparam("mid"))
                     .values(last_sequence=case(
                         (MeterRow.last_sequence == bindparam("prev", type_=Integer),
                          bindparam("next_seq", type_=Integer)), else_=null())))
_INSERT_VEND = Precompiled(insert(VendRow).returning(VendRow.id), keys=(
    "customer_id", "meter_id", "card_id", "sequence", "amount", "energy", "credit", "credit_unit",
    "tariff", "unit_price", "price_lines", "operator", "debt_recovered", "station", "state",
    "issued_at", "created_at", "note", "receipt_no", "kind"))
# the card holds the sale and its receipt exists: PENDING -> COMPLETED in one relaxed statement
_MARK_COMPLETED = Precompiled(
    update(VendRow).where(VendRow.id == bindparam("vid"), VendRow.state == VendState.PENDING.value)
    .values(state=VendState.COMPLETED.value, written_at=bindparam("t_written"),
            completed_at=bindparam("t_completed")))
# the card holds the sale but its receipt could not be made (a broken receipt template)
_MARK_WRITTEN = Precompiled(
    update(VendRow).where(VendRow.id == bindparam("vid"), VendRow.state == VendState.PENDING.value)
    .values(state=VendState.WRITTEN.value, written_at=bindparam("t_written")))


# binds for a sale context read that does not price anything: no version, an empty period
_NO_LOOKUP = {"lookup_default": "", "lookup_at": datetime(1970, 1, 1, tzinfo=UTC),
              "lookup_start": datetime(9999, 1, 1, tzinfo=UTC)}


def _sale_context(uow, uid: str, lookup: dict | None = None):
    """Card, customer, meter, model, newest meter return, (with ``lookup``, from
    tariffs.lookup_params) the tariff look-up of a card, and the station's receipt and audit
    numbers, locked until the transaction ends, in one round trip: the hot path of every sale.
    None when the card is not registered."""
    ctx = _SALE_CONTEXT.execute(uow.connection, {"uid": uid, "station_code": uow.station,
                                                 **(lookup or _NO_LOOKUP)}).first()
    if ctx is None and uow.connection.scalar(
            select(StationRow.id).where(StationRow.code == uow.station)) is None:
        raise BusinessRuleError(f"station {uow.station} is not registered; run 'dbmis init'")
    return ctx


@attrs.frozen
class SaleCheck:
    """What the card and the database say about a sale before it is made (nothing is sold)."""

    account_no: str
    card_uid: str
    amount: Decimal
    warnings: tuple[str, ...]
    refusal: str | None          # the sale would be refused, and why
    inspection: bool             # the refusal raised an inspection notice
    debt_recovered: Decimal      # part of the amount that would pay off debts
    energy: Decimal | None
    credit: Decimal | None
    credit_unit: CreditUnit | None


@attrs.frozen
class _Assessment:
    warnings: tuple[str, ...]
    refusal: str | None
    serious: bool
    quote: Quote | None
    credit: Decimal | None
    plan: list
    recovered: Decimal


def _unloaded_credit(uow, meter_id: int, loaded_seq: int) -> Decimal:
    """Credit sold to the meter (sales and make-up) that the meter has not loaded yet."""
    return uow.session.scalar(select(func.coalesce(func.sum(VendRow.credit), 0)).where(
        VendRow.meter_id == meter_id, VendRow.sequence > loaded_seq,
        VendRow.state.in_(OPEN_STATES + (VendState.COMPLETED.value,)))) or Decimal(0)


def _hoarding_refusal(app, uow, ctx, image: CardImage, credit: Decimal, unit: CreditUnit) -> str | None:
    """Remaining credit + credit not yet loaded + this sale must stay within sales.hoarding_limit."""
    limit = settings.sales(app, uow).hoarding_limit
    if limit <= 0:
        return None
    ret = image.returned
    if ret is not None:
        remaining, loaded = ret.remaining, ret.last_sequence
    else:
        latest = uow.session.execute(select(MeterReturnRow.remaining, MeterReturnRow.last_sequence)
                                     .where(MeterReturnRow.meter_id == ctx.meter_id)
                                     .order_by(MeterReturnRow.written_at.desc()).limit(1)).first()
        remaining, loaded = (latest.remaining, latest.last_sequence) if latest else (Decimal(0), 0)
    pending = Decimal(_unloaded_credit(uow, ctx.meter_id, loaded))
    if remaining + pending + credit <= limit:
        return None
    what = "kWh" if unit == CreditUnit.KWH else ""
    room = max(limit - remaining - pending, Decimal(0))
    return (f"hoarding limit {limit} {what}: the meter holds {remaining}, {pending} more is not yet "
            f"loaded, and this sale adds {credit}; at most {room} {what} can be sold now").replace(
                "  ", " ")


def _assess(app, uow, ctx, image: CardImage, amt: Decimal, account_no: str,
            lookup: dict | None = None) -> _Assessment:
    """Compare the card with the database. Mismatches warn; a wrong meter, a sequence from the
    future or a forged record stop the sale for inspection (``serious``)."""
    if ctx is None:
        raise NotFound(f"card {image.uid} is not registered")
    if ctx.customer_status == "closed":
        raise BusinessRuleError(f"account {ctx.account_no} is closed; sales are refused")
    if (ctx.account_no != account_no.strip() or ctx.meter_status != MeterStatus.INSTALLED
            or ctx.meter_customer != ctx.customer_id):
        raise BusinessRuleError(f"card {image.uid} does not belong to customer {account_no}'s "
                                "meter")
    if ctx.card_status != CardStatus.ACTIVE.value:
        raise BusinessRuleError(f"card {image.uid} is {ctx.card_status}; sale refused")
    warnings, serious = [], []
    card_seq = image.vend.sequence if image.vend else 0
    if image.header.meter_no != ctx.meter_no:
        serious.append(f"card header names meter {image.header.meter_no} but the customer's meter "
                       f"is {ctx.meter_no}; sale stopped for inspection")
    if card_seq > ctx.last_sequence:
        serious.append(f"card holds sequence {card_seq} but the database is at "
                       f"{ctx.last_sequence}; sale stopped for inspection")
    for slot in image.slots:
        if slot.problem and "MAC" in slot.problem:
            serious.append(f"card slot {slot.name} is {slot.problem}; sale stopped for inspection")
    if image.header.account_no != ctx.account_no:
        warnings.append(f"card header names account {image.header.account_no}, the database "
                        f"{ctx.account_no}")
    ret = image.returned
    if ret is not None and ctx.latest_return is not None and ret.written_at < ctx.latest_return:
        warnings.append(f"the card's meter data ({ret.written_at:%Y-%m-%d %H:%M}) is older than the "
                        f"newest stored ({ctx.latest_return:%Y-%m-%d %H:%M}); is this an old card?")
    if image.return_problem and not image.return_problem.startswith("empty"):
        warnings.append(f"return data on the card: {image.return_problem}")
    if serious:
        return _Assessment(tuple(warnings), "; ".join(serious), True, None, None, [], Decimal(0))
    refusal = None
    if card_seq < ctx.last_sequence:
        refusal = (f"card holds sequence {card_seq} but the database is at "
                   f"{ctx.last_sequence}; the card is out of date")
    elif image.unloaded and settings.sales(app, uow).refuse_unloaded:
        refusal = (f"the previous purchase (sequence {card_seq}) has not been loaded into the "
                   "meter; the customer must insert the card in the meter first")
    if refusal:
        return _Assessment(tuple(warnings), refusal, False, None, None, [], Decimal(0))
    plan, recovered = [], Decimal("0.00")
    if ctx.has_debt:
        share = debts.default_share(app, uow)
        plan = debts.plan_recovery(uow, ctx.customer_id, amt, share)
        recovered = sum((part for _, part in plan), Decimal("0.00"))
    known = tariffs.lookup_from(ctx, lookup) if lookup else None
    q = _quote(app, ctx, amt - recovered, uow=uow, known=known)
    unit = CreditUnit(ctx.credit_unit)
    credit = q.energy if unit == CreditUnit.KWH else q.amount
    refusal = _hoarding_refusal(app, uow, ctx, image, credit, unit)
    return _Assessment(tuple(warnings), refusal, False, q, credit, plan, recovered)


def _notice(app, uow, op: Operator, ctx, image: CardImage, reason: str) -> None:
    add_notice(uow, op, app.config.station_code, reason, ctx.customer_id, ctx.meter_id, image.uid)


def check_sale(app, op: Operator, account_no: str, amount) -> SaleCheck:
    """Read the card and say what a sale of ``amount`` would meet: warnings, a refusal, the debt
    it would recover. Nothing is sold; a serious mismatch still raises an inspection notice (the
    card was seen at the counter), and the return data read is stored as any card reading is."""
    op.require(Perm.VIEW)
    amt = _check_amount(app, amount)
    with connected(app) as conn:
        image = app.card_format.read(conn)
    ensure_user_card(image)
    with app.uow() as uow:
        lookup = tariffs.lookup_params(app)
        ctx = _sale_context(uow, image.uid, lookup)
        a = _assess(app, uow, ctx, image, amt, account_no, lookup)
        if a.serious:
            _notice(app, uow, op, ctx, image, a.refusal)
        uow.commit()
        unit = CreditUnit(ctx.credit_unit)
        return SaleCheck(ctx.account_no, image.uid, amt, a.warnings, a.refusal, a.serious,
                         a.recovered, a.quote.energy if a.quote else None, a.credit,
                         unit if a.quote else None)


def vend(app, op: Operator, account_no: str, amount) -> SaleResult:
    """Sell ``amount`` of money to the customer whose card is in the reader.

    The hot path uses a handful of precompiled Core statements (storage/precompiled.py), one
    durable commit (PENDING) and one relaxed one (COMPLETED), on the connection the station
    keeps for its sales (Application.held_connection); see
    bench/vend_throughput.py for what that buys against the raw commit rate. A customer without
    debts costs one indexed EXISTS in the sale context; with debts, a share of ``amount`` pays
    them off (debts.py) and the energy is bought with the rest.
    """
    op.require(Perm.VEND)
    amt = _check_amount(app, amount)
    with app.held_connection() as db:  # one connection for both of the sale's transactions
        return _vend(app, op, account_no, amt, db)


def _vend(app, op: Operator, account_no: str, amt: Decimal, db) -> SaleResult:
    fmt = app.card_format
    station = app.config.station_code
    with connected(app) as conn:
        image = fmt.read(conn)
        ensure_user_card(image)
        # -- step 1: check the card against the database, record returns, reconcile -----------
        with app.uow(connection=db) as uow:
            lookup = tariffs.lookup_params(app)
            ctx = _sale_context(uow, image.uid, lookup)
            if ctx is not None and ctx.has_open:
                reconcile_with_card(uow, image)
                uow.commit()
                ctx = _sale_context(uow, image.uid, lookup)
            a = _assess(app, uow, ctx, image, amt, account_no, lookup)
            consumed = record_return(uow, op, image, ctx.meter_id, ctx.customer_id,
                                     SimpleNamespace(written_at=ctx.latest_return,
                                                     cumulative_consumed=ctx.latest_cumulative,
                                                     consumed_since_previous=ctx.latest_consumed))
            if a.refusal:
                if a.serious:
                    _notice(app, uow, op, ctx, image, a.refusal)
                uow.commit()  # keep the return data just read, and the notice
                raise BusinessRuleError(a.refusal)
            q, credit, recovered = a.quote, a.credit, a.recovered
            unit = CreditUnit(ctx.credit_unit)
            seq = ctx.last_sequence + 1
            issued = now().replace(microsecond=0)
            # -- step 2: reserve the sequence durably: claim, numbers, sale and its audit record
            #    in one batch with the commit (one round trip on PostgreSQL) -------------------
            lines = [[k, str(v)] for k, v in q.lines]
            if recovered:
                lines.append(["Debt recovered", str(recovered)])
            receipt_no = f"{station}-{ctx.next_receipt:08d}"
            values = dict(customer_id=ctx.customer_id, meter_id=ctx.meter_id, card_id=ctx.card_id,
                          sequence=seq, amount=q.amount + recovered, energy=q.energy, credit=credit,
                          credit_unit=int(unit), tariff=q.tariff, unit_price=q.unit_price,
                          price_lines=lines, operator=op.login, debt_recovered=recovered,
                          station=station, state=VendState.PENDING.value, issued_at=issued,
                          created_at=now(), note="", kind="sale", receipt_no=receipt_no)
            entry = audit.build(station, ctx.audit_seq + 1, ctx.audit_head, op, "sale",
                                 f"account {ctx.account_no}",
                                 {"receipt": receipt_no, "meter": ctx.meter_no,
                                  "card": image.uid, "sequence": seq, "amount": values["amount"],
                                  "energy": q.energy, "credit": credit, "tariff": q.tariff,
                                  "debt_recovered": recovered, "state": VendState.PENDING.value})
            steps = [
                (_CLAIM, {"mid": ctx.meter_id, "prev": seq - 1, "next_seq": seq}),
                (_STATION_NUMBERS, {"station_code": station, "receipt_was": ctx.next_receipt,
                                    "audit_seq_was": ctx.audit_seq,
                                    "receipt_now": ctx.next_receipt + 1,
                                    "audit_seq_now": entry["seq"],
                                    "audit_head_now": entry["hash"]}),
                (_INSERT_VEND, values),
                (audit.INSERT, entry)]
            try:  # with its COMMIT when nothing else is to be written (debts are)
                claim, numbers, inserted, _ = run_batch(uow.connection, steps,
                                                        commit=not a.plan)
            except IntegrityError as exc:
                done = len(getattr(exc, "batch_results", ()))
                if done == 0:  # the claim: another station took this sequence
                    raise _raced() from None
                if done == 1:
                    raise RuntimeError(f"station {station}'s numbers changed inside the sale's "
                                       "transaction") from exc
                raise
            if claim.rowcount != 1 or numbers.rowcount != 1:
                raise RuntimeError(f"meter {ctx.meter_no} or station {station} is gone")
            vend_id = inserted.scalar_one()
            if a.plan:
                debts.apply_recovery(uow, a.plan, vend_id, values["created_at"])
                uow.commit()
        crashpoint("vend.pending")
        record = VendRecord(seq, credit, unit, ctx.meter_no, image.header.account_no, issued)
        # -- step 3: write and read back -----------------------------------------------------
        try:
            fmt.write_vend(conn, record)
            crashpoint("vend.card_written")
            back = fmt.read(conn)
        except CardError as exc:
            _settle_after_error(app, vend_id, conn, fmt)
            raise CardError(f"{exc}; sale {vend_id} is pending until the card is presented "
                            "again (do not refund: the card may hold the credit)") from exc
    verified = back.vend is not None and back.vend.sequence == seq and back.vend.credit == credit
    # -- step 4: COMPLETED once the receipt exists. This commit does not wait for the disk: if a
    #    power cut loses it, the PENDING row (with its receipt number) is completed from the card by
    #    reconciliation; a killed process loses nothing. ------------------------------------------
    if not verified:
        with app.uow() as uow:
            row = uow.session.get(VendRow, vend_id)
            row.state = VendState.FAILED.value
            row.note = "read-back after write did not show the record (receipt void)"
            row.completed_at = now()
            _release_sequence(uow, row)
            debts.undo_for_vend(uow, vend_id)
            _audit_outcome(uow, row, op)
            uow.commit()
        raise CardError("the card did not keep the vend record (read-back failed); no credit was "
                        "sold, try again")
    crashpoint("vend.verified")
    written = now()
    from .receipts import render_receipt_text

    v = SimpleNamespace(**values, id=vend_id, written_at=written, completed_at=written,
                        customer=SimpleNamespace(account_no=ctx.account_no, name=ctx.name),
                        meter=SimpleNamespace(meter_no=ctx.meter_no))
    try:
        receipt = render_receipt_text(v, ctx.utility)
    except Exception:
        # the card holds the credit: WRITTEN, and reconciliation or a reprint completes it
        app.relaxed_execute(_MARK_WRITTEN, {"vid": vend_id, "t_written": written}, db)
        raise
    crashpoint("vend.receipt")
    app.relaxed_execute(_MARK_COMPLETED, {"vid": vend_id, "t_written": written,
                                          "t_completed": now()}, db)
    crashpoint("vend.completed")
    return SaleResult(vend_id, ctx.account_no, ctx.meter_no, seq, values["amount"], q.energy, credit,
                      unit, VendState.COMPLETED, values["receipt_no"], receipt, consumed, recovered,
                      a.warnings)


def _raced() -> BusinessRuleError:
    return BusinessRuleError("another station sold to this meter at the same moment; read the "
                             "card again")


def _settle_after_error(app, vend_id: int, conn, fmt) -> None:
    """After a card error, settle the pending sale now if the card can still be read."""
    try:
        image = fmt.read(conn)
    except CardError:
        return  # card gone: stays pending, reconciled when the card is back
    with app.uow() as uow:
        reconcile_with_card(uow, image)
        uow.commit()


def reconcile_card_in_reader(app, op: Operator) -> list[tuple[int, str]]:
    """Settle unfinished sales using the card in the reader (after a crash or a pulled card)."""
    op.require(Perm.RECONCILE)
    from .reissue import reconcile_reissue

    with connected(app) as conn:
        reissued = reconcile_reissue(app, op, conn)  # a replacement card whose reissue is unfinished
        try:
            image = app.card_format.read(conn)
        except CardFormatError:
            if reissued:  # blank or torn header: the reissue failed before the card held it
                return []
            raise
    with app.uow() as uow:
        done = reconcile_with_card(uow, image)
        record_return(uow, op, image)
        uow.commit()
        return done


def unfinished(app, op: Operator) -> list[tuple[int, str, int, str]]:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        rows = uow.session.scalars(select(VendRow).where(
            VendRow.state.in_(OPEN_STATES)))
        return [(r.id, r.meter.meter_no, r.sequence, r.state) for r in rows]


def sales_of(app, op: Operator, account_no: str) -> list[VendRow]:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        c = get_customer_row(uow, account_no)
        return list(uow.session.scalars(select(VendRow).where(VendRow.customer_id == c.id)
                                        .order_by(VendRow.sequence, VendRow.id)))
