"""Changes to a customer over their life: details, category, tariff, capacity, a new meter, closure,
and the one chronological record of everything that happened to the account.

Every change is a CustomerChangeRow with the values before and after and the operator, written in
the same transaction as the change itself.

Meter replacement (docs/decisions/0009-meter-replacement.md): a card's header (meter number) is
burnt at personalisation and a meter refuses cards of other meters, so the customer keeps the account
and its history but gets a new card for the new meter. The old card is retired ("replaced"), the old
meter is "removed", and the new card carries a make-up record (vends.kind "makeup", amount 0,
sequence 1 of the new meter) with the old meter's remaining credit: the latest return data's
remaining credit plus credit sold but not yet loaded. The make-up record goes through the vend state
machine (PENDING committed with the replacement, then written and read back), so a pulled card or a
crash is settled by ordinary reconciliation and the meter credits it exactly once.

Closure refunds the remaining credit in cash (kWh meters: remaining kWh x the unit price of the
customer's last sale, rounded down to the cent) or transfers it to another customer as a make-up
record written on the target's card, which must be in the reader.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

import attrs
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..cards import CardHeader, VendRecord
from ..domain import CardStatus, CardType, CreditUnit, MeterStatus, VendState, customer_category
from ..errors import BusinessRuleError, CardError, ValidationError
from ..money import CENT, money, to_decimal
from ..storage.models import (
    ApplicationRow,
    ApplicationStepRow,
    CardRow,
    CashEntryRow,
    CustomerChangeRow,
    CustomerRow,
    DebtPaymentRow,
    DebtRow,
    InspectionNoticeRow,
    MeterReturnRow,
    MeterRow,
    ReissueRow,
    ReversalRow,
    VendRow,
)
from . import vending
from .auth import Operator, Perm
from .cards import connected, ensure_user_card, meter_key_version, utility_numeric_code
from .cash import record_cash
from .debts import add_debt_row
from .registry import current_meter, get_customer_row, get_meter_row, set_meter_status

CLOSED = "closed"
CAPACITY_MODES = ("none", "trip", "alarm")
MAKEUP_TARIFF = "(make-up)"


def now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class Change:
    id: int
    kind: str
    before: dict
    after: dict
    operator: str
    at: datetime


@attrs.frozen
class Remaining:
    """Credit a meter still owes its customer, in the meter's credit unit."""

    on_meter: Decimal        # remaining credit in the latest return data
    unloaded: Decimal        # credit sold (or made up) that the meter has not loaded yet
    data_written_at: datetime | None
    unit: CreditUnit

    @property
    def total(self) -> Decimal:
        return max(self.on_meter, Decimal(0)) + self.unloaded


@attrs.frozen
class MakeUp:
    vend_id: int
    account_no: str
    meter_no: str
    card_uid: str
    sequence: int
    credit: Decimal
    credit_unit: CreditUnit
    state: str
    receipt_no: str | None


@attrs.frozen
class Replacement:
    account_no: str
    old_meter_no: str
    new_meter_no: str
    old_card_uid: str | None
    new_card_uid: str
    remaining: Remaining
    makeup: MakeUp
    fee_debt_id: int | None


@attrs.frozen
class Closure:
    account_no: str
    meter_no: str | None
    remaining: Remaining
    value: Decimal                  # money value of the remaining credit
    refund_receipt: str | None      # closure_refund cash entry (refund)
    transfer_to: str | None
    makeup: MakeUp | None           # make-up record written on the target's card (transfer)


@attrs.frozen
class RecordEntry:
    at: datetime
    kind: str
    summary: str
    ref: str


def _active_customer(uow, account_no: str) -> CustomerRow:
    c = get_customer_row(uow, account_no)
    if c.status == CLOSED:
        raise BusinessRuleError(f"account {c.account_no} is closed; no changes are possible")
    return c


def _change(uow, op: Operator, customer: CustomerRow, kind: str, before: dict, after: dict,
            note: str = "") -> CustomerChangeRow:
    row = CustomerChangeRow(customer_id=customer.id, kind=kind, before=before, after=after,
                            operator=op.login, at=now(), note=note)
    uow.session.add(row)
    uow.session.flush()
    from . import audit

    audit.record(uow, op, "customer.change", f"account {customer.account_no}",
                 {"change": kind, "before": before, "after": after, "note": note})
    return row


def _as_change(r: CustomerChangeRow) -> Change:
    return Change(r.id, r.kind, r.before, r.after, r.operator, r.at)


def _text(value, what: str, limit: int, required: bool = False) -> str:
    v = (value or "").strip()
    if required and not v:
        raise ValidationError(f"{what} must not be empty")
    if len(v) > limit:
        raise ValidationError(f"{what} is longer than {limit} characters")
    return v


def change_customer(app, op: Operator, account_no: str, *, name: str | None = None,
                    address: str | None = None, phone: str | None = None,
                    category: str | None = None, tariff: str | None = None,
                    capacity_amps=None, capacity_mode: str | None = None,
                    note: str = "") -> list[Change]:
    """Change what is given (None leaves a field alone); one change row per kind of change.

    ``tariff`` "" or "default" goes back to the configured default tariff; ``capacity_amps`` ""
    removes the limit. All values are checked before anything is written."""
    op.require(Perm.MANAGE_CUSTOMERS)
    planned: list[tuple[str, dict]] = []
    details = {}
    if name is not None:
        details["name"] = _text(name, "name", 120, required=True)
    if address is not None:
        details["address"] = _text(address, "address", 255)
    if phone is not None:
        details["phone"] = _text(phone, "phone", 32)
    if details:
        planned.append(("details", details))
    if category is not None:
        planned.append(("category", {"category": customer_category(category).value}))
    if tariff is not None:
        t = tariff.strip()
        if t in ("", "default"):
            planned.append(("tariff", {"tariff": None}))
        else:
            installed = app.pm.tariffs()
            if t not in installed:
                raise ValidationError(f"unknown tariff {t!r}; installed: {', '.join(sorted(installed))}")
            planned.append(("tariff", {"tariff": t}))
    capacity = {}
    if capacity_amps is not None:
        if str(capacity_amps).strip() == "":
            capacity["capacity_amps"] = None
        else:
            amps = to_decimal(capacity_amps, "capacity (A)")
            if amps <= 0 or amps > 1000 or amps != amps.quantize(CENT):
                raise ValidationError(f"capacity must be above 0 and at most 1000 A with at most two "
                                      f"decimals, got {capacity_amps}")
            capacity["capacity_amps"] = amps.quantize(CENT)
    if capacity_mode is not None:
        mode = capacity_mode.strip().lower()
        if mode not in CAPACITY_MODES:
            raise ValidationError(f"capacity mode must be one of {', '.join(CAPACITY_MODES)}, "
                                  f"got {capacity_mode!r}")
        capacity["capacity_mode"] = mode
    if capacity:
        planned.append(("capacity", capacity))
    if not planned:
        raise ValidationError("nothing to change: give a name, address, phone, category, tariff or "
                              "capacity")
    with app.uow() as uow:
        c = _active_customer(uow, account_no)
        if category is not None:
            from .codes import check_category

            check_category(uow, category)
        done = []
        for kind, values in planned:
            before = {k: _plain(getattr(c, k)) for k in values}
            after = {k: _plain(v) for k, v in values.items()}
            if before == after:
                continue
            for k, v in values.items():
                setattr(c, k, v)
            done.append(_change(uow, op, c, kind, before, after, note))
        if not done:
            raise ValidationError("nothing changed: the values are the ones already recorded")
        uow.commit()
        return [_as_change(r) for r in done]


def _plain(v):
    return str(v) if isinstance(v, Decimal) else v


def changes_of(app, op: Operator, account_no: str) -> list[Change]:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        c = get_customer_row(uow, account_no)
        return [_as_change(r) for r in uow.session.scalars(
            select(CustomerChangeRow).where(CustomerChangeRow.customer_id == c.id)
            .order_by(CustomerChangeRow.at, CustomerChangeRow.id))]


# -- remaining credit ------------------------------------------------------------------------------
def remaining_credit(uow, meter: MeterRow) -> Remaining:
    """The latest data of the meter (from a user card or a clear/check card import, whichever the
    meter wrote last) plus credit sold that it has not loaded. Refused while a sale is unfinished."""
    s = uow.session
    if s.scalar(select(func.count()).select_from(VendRow).where(
            VendRow.meter_id == meter.id, VendRow.state.in_(vending.OPEN_STATES))):
        raise BusinessRuleError(f"a sale to meter {meter.meter_no} is unfinished; present the card "
                                "and reconcile first")
    latest = s.execute(select(MeterReturnRow.remaining, MeterReturnRow.last_sequence,
                              MeterReturnRow.written_at)
                       .where(MeterReturnRow.meter_id == meter.id)
                       .order_by(MeterReturnRow.written_at.desc()).limit(1)).first()
    on_meter, loaded, at = (latest.remaining, latest.last_sequence, latest.written_at) if latest \
        else (Decimal("0.00"), 0, None)
    unloaded = Decimal(vending._unloaded_credit(uow, meter.id, loaded)).quantize(CENT)
    return Remaining(on_meter, unloaded, at, CreditUnit(meter.model.credit_unit))


def credit_value(uow, customer: CustomerRow, rem: Remaining) -> Decimal:
    """Money value of remaining credit: money meters hold money; kWh are valued at the unit price
    of the customer's last sale, rounded down to the cent (the utility never pays out more)."""
    if rem.total <= 0:
        return Decimal("0.00")
    if rem.unit == CreditUnit.MONEY:
        return rem.total.quantize(CENT, rounding=ROUND_DOWN)
    price = uow.session.scalar(select(VendRow.unit_price).where(
        VendRow.customer_id == customer.id, VendRow.kind == "sale",
        VendRow.state == VendState.COMPLETED.value, VendRow.unit_price > 0)
        .order_by(VendRow.created_at.desc(), VendRow.id.desc()).limit(1))
    if price is None:
        raise BusinessRuleError(f"customer {customer.account_no} has never bought energy, so the "
                                f"{rem.total} kWh left have no price to refund at; transfer instead")
    return (rem.total * price).quantize(CENT, rounding=ROUND_DOWN)


# -- make-up records -------------------------------------------------------------------------------
def _add_makeup(app, uow, op: Operator, customer: CustomerRow, meter: MeterRow, card: CardRow,
                credit: Decimal, note: str) -> tuple[int, VendRecord]:
    """A PENDING make-up vend (amount 0) that reserves the meter's next sequence."""
    seq = meter.last_sequence + 1
    try:
        claimed = vending._CLAIM.execute(uow.connection, {
            "mid": meter.id, "prev": seq - 1, "next_seq": seq}).rowcount
    except IntegrityError:
        claimed = 0
    if claimed != 1:
        raise BusinessRuleError(f"meter {meter.meter_no} was sold to at the same moment; try again")
    unit = CreditUnit(meter.model.credit_unit)
    issued = now().replace(microsecond=0)
    station = app.config.station_code
    row = VendRow(customer_id=customer.id, meter_id=meter.id, card_id=card.id, sequence=seq,
                  amount=Decimal("0.00"), energy=credit if unit == CreditUnit.KWH else Decimal("0.00"),
                  credit=credit, credit_unit=int(unit), tariff=MAKEUP_TARIFF, unit_price=Decimal(0),
                  price_lines=[["Make-up credit", str(credit)]], operator=op.login, station=station,
                  state=VendState.PENDING.value, issued_at=issued, created_at=now(), note=note,
                  kind="makeup", debt_recovered=Decimal("0.00"),
                  receipt_no=vending._next_receipt(uow, station))
    uow.session.add(row)
    uow.session.flush()
    return row.id, VendRecord(seq, credit, unit, meter.meter_no, customer.account_no, issued)


def _deliver(app, conn, vend_id: int, record: VendRecord, uid: str) -> MakeUp:
    """Write the make-up record, read it back, complete it (same rules as a sale)."""
    fmt = app.card_format
    try:
        fmt.write_vend(conn, record)
        back = fmt.read(conn)
    except CardError as exc:
        vending._settle_after_error(app, vend_id, conn, fmt)
        raise CardError(f"{exc}; make-up record {vend_id} is pending until the card is presented "
                        "again (reconcile)") from exc
    ok = back.vend is not None and back.vend.sequence == record.sequence \
        and back.vend.credit == record.credit
    with app.uow() as uow:
        row = uow.session.get(VendRow, vend_id)
        if ok:
            vending._finish(uow, row)
        uow.commit()
        result = MakeUp(row.id, row.customer.account_no, record.meter_no, uid, record.sequence,
                        record.credit, record.unit, row.state, row.receipt_no)
    if not ok:
        raise CardError(f"the card did not show make-up record {vend_id} on read-back; it stays "
                        "pending: present the card again and reconcile")
    return result


def resend_makeup(app, op: Operator, account_no: str) -> MakeUp:
    """Write again, on the customer's card in the reader, make-up credit whose record ended FAILED
    (the card was presented again without it), so moved credit is delayed, never lost. The failed
    rows are marked as re-sent in the same transaction, so the credit cannot be sent twice."""
    op.require(Perm.CHANGE_METER)
    with connected(app) as conn:
        image = app.card_format.read(conn)
        ensure_user_card(image)
        with app.uow() as uow:
            c = _active_customer(uow, account_no)
            failed = list(uow.session.scalars(select(VendRow).where(
                VendRow.customer_id == c.id, VendRow.kind == "makeup",
                VendRow.state == VendState.FAILED.value, ~VendRow.note.contains("re-sent as"))))
            if not failed:
                raise BusinessRuleError(f"customer {c.account_no} has no failed make-up credit")
            _, meter, card = _transfer_target(uow, None, c.account_no, image)
            credit = sum((v.credit for v in failed), Decimal("0.00"))
            vend_id, record = _add_makeup(app, uow, op, c, meter, card, credit,
                                          "re-sent make-up credit of " +
                                          ", ".join(str(v.id) for v in failed))
            for v in failed:
                v.note = f"{v.note}; re-sent as {vend_id}"
            uow.commit()
        return _deliver(app, conn, vend_id, record, image.uid)


# -- meter replacement -----------------------------------------------------------------------------
def replace_meter(app, op: Operator, account_no: str, new_meter_no: str, fee=None,
                  note: str = "") -> Replacement:
    """Replace the customer's meter by ``new_meter_no`` (from the store), issuing the blank card in
    the reader for it with the old meter's remaining credit as a make-up record. ``fee`` records a
    debt "meter replacement fee" that later purchases pay off."""
    op.require(Perm.CHANGE_METER)
    fee_amt = None
    if fee not in (None, "", "0", "0.00"):
        fee_amt = money(fee, "replacement fee")
        if fee_amt < 0:
            raise ValidationError("the replacement fee cannot be negative")
    fmt = app.card_format
    with connected(app) as conn, app.uow() as uow:
        s = uow.session
        c = _active_customer(uow, account_no)
        old = current_meter(uow, c)
        if old is None:
            raise BusinessRuleError(f"customer {c.account_no} has no installed meter to replace")
        new = get_meter_row(uow, new_meter_no)
        if new.status != MeterStatus.IN_STORE:
            raise ValidationError(f"meter {new.meter_no} is {new.status}, not in the store")
        if new.model.credit_unit != old.model.credit_unit:
            raise BusinessRuleError("the new meter counts credit in another unit (kWh vs money) "
                                    "than the old one; the remaining credit cannot move as is")
        rem = remaining_credit(uow, old)
        old_cards = list(s.scalars(select(CardRow).where(
            CardRow.customer_id == c.id, CardRow.meter_id == old.id,
            CardRow.status == CardStatus.ACTIVE.value)))
        uid = fmt.read_uid(conn)
        if s.scalar(select(CardRow).where(CardRow.uid == uid)):
            raise ValidationError(f"card {uid} is already registered; insert a blank card for the "
                                  "new meter")
        header = CardHeader(CardType.USER, utility_numeric_code(uow), new.meter_no, c.account_no,
                            meter_key_version(app, new))
        fmt.personalise(conn, header)
        for card in old_cards:
            card.status = CardStatus.REPLACED.value
        set_meter_status(uow, old, MeterStatus.REMOVED, op.login, "replace",
                         f"replaced by {new.meter_no} at {c.account_no}")
        new.customer = c
        set_meter_status(uow, new, MeterStatus.INSTALLED, op.login, "replace",
                         f"replaces {old.meter_no} at {c.account_no}")
        card = CardRow(uid=uid, card_type=int(CardType.USER), status=CardStatus.ACTIVE.value,
                       meter=new, customer=c, key_version=header.key_version, issued_by=op.login)
        s.add(card)
        s.flush()
        credit = rem.total.quantize(CENT, rounding=ROUND_DOWN)
        vend_id, record = _add_makeup(app, uow, op, c, new, card, credit,
                                      f"make-up credit from meter {old.meter_no}")
        debt_id = None
        if fee_amt:
            debt_id = add_debt_row(uow, op, c.id, "meter replacement fee", fee_amt).id
        old_uid = old_cards[0].uid if old_cards else None
        _change(uow, op, c, "meter",
                {"meter_no": old.meter_no, "card_uid": old_uid},
                {"meter_no": new.meter_no, "card_uid": uid, "makeup_credit": str(credit),
                 "remaining_on_meter": str(rem.on_meter), "unloaded": str(rem.unloaded),
                 "makeup_vend_id": vend_id, "fee": str(fee_amt) if fee_amt else None}, note)
        uow.commit()
        names = (c.account_no, old.meter_no, new.meter_no)
        makeup = _deliver(app, conn, vend_id, record, uid)
    return Replacement(names[0], names[1], names[2], old_uid, uid, rem, makeup, debt_id)


# -- closure ---------------------------------------------------------------------------------------
def close_account(app, op: Operator, account_no: str, refund: bool = False,
                  transfer_to: str | None = None, note: str = "") -> Closure:
    """Close the account: refund the remaining credit in cash or move it to ``transfer_to``'s meter
    (that customer's card in the reader). The meter is removed, the cards and the account closed."""
    op.require(Perm.CLOSE_ACCOUNT)
    if bool(refund) == bool(transfer_to):
        raise ValidationError("closing an account needs either a refund or a transfer target")
    station = app.config.station_code
    conn_cm = connected(app) if transfer_to else None
    conn = conn_cm.__enter__() if conn_cm else None
    try:
        image = None
        if conn is not None:
            image = app.card_format.read(conn)
            ensure_user_card(image)
        with app.uow() as uow:
            s = uow.session
            c = _active_customer(uow, account_no)
            meter = current_meter(uow, c)
            if meter is not None:
                rem = remaining_credit(uow, meter)
            else:
                rem = Remaining(Decimal("0.00"), Decimal("0.00"), None, CreditUnit.KWH)
            value = credit_value(uow, c, rem) if rem.total > 0 else Decimal("0.00")
            receipt = None
            target = makeup_args = None
            if refund and value > 0:
                receipt = record_cash(uow, op, station, "closure_refund", -value, customer_id=c.id,
                                      note=f"closure of {c.account_no}: {rem.total} remaining"
                                      ).receipt_no
            if transfer_to:
                target, tmeter, tcard = _transfer_target(uow, c, transfer_to, image)
                if meter is not None and rem.total > 0 and tmeter.model.credit_unit != int(rem.unit):
                    raise BusinessRuleError("the target's meter counts credit in another unit "
                                            "(kWh vs money); refund instead")
                if value > 0:
                    record_cash(uow, op, station, "transfer_out", -value, customer_id=c.id,
                                note=f"credit moved to {target.account_no}")
                    record_cash(uow, op, station, "transfer_in", value, customer_id=target.id,
                                note=f"credit moved from {c.account_no}")
                credit = rem.total.quantize(CENT, rounding=ROUND_DOWN)
                if credit > 0:
                    makeup_args = _add_makeup(app, uow, op, target, tmeter, tcard, credit,
                                              f"credit transferred from account {c.account_no}")
            cards = list(s.scalars(select(CardRow).where(CardRow.customer_id == c.id,
                                                         CardRow.status == CardStatus.ACTIVE.value)))
            for card in cards:
                card.status = CLOSED
            before = {"status": c.status, "meter_no": meter.meter_no if meter else None,
                      "cards": [card.uid for card in cards]}
            if meter is not None:
                set_meter_status(uow, meter, MeterStatus.REMOVED, op.login, "closure",
                                 f"account {c.account_no} closed")
            c.status, c.closed_at = CLOSED, now()
            _change(uow, op, c, "closure", before,
                    {"status": CLOSED, "remaining": str(rem.total), "value": str(value),
                     "refund_receipt": receipt,
                     "transfer_to": target.account_no if target else None,
                     "makeup_vend_id": makeup_args[0] if makeup_args else None}, note)
            uow.commit()
            result = Closure(c.account_no, meter.meter_no if meter else None, rem, value, receipt,
                             target.account_no if target else None, None)
        if makeup_args:
            makeup = _deliver(app, conn, makeup_args[0], makeup_args[1], image.uid)
            result = attrs.evolve(result, makeup=makeup)
        return result
    finally:
        if conn_cm is not None:
            conn_cm.__exit__(None, None, None)


def _transfer_target(uow, source: CustomerRow, account_no: str, image):
    target = _active_customer(uow, account_no)
    if source is not None and target.id == source.id:
        raise ValidationError("credit cannot be transferred to the account being closed")
    ctx = vending._sale_context(uow, image.uid)
    if ctx is None or ctx.customer_id != target.id:
        raise BusinessRuleError(f"the card in the reader is not customer {target.account_no}'s card")
    if ctx.card_status != CardStatus.ACTIVE.value or ctx.meter_status != MeterStatus.INSTALLED:
        raise BusinessRuleError(f"customer {target.account_no}'s card or meter is not in use")
    if ctx.has_open:
        raise BusinessRuleError(f"a sale to customer {target.account_no} is unfinished; reconcile "
                                "first")
    card_seq = image.vend.sequence if image.vend else 0
    if image.header.meter_no != ctx.meter_no or card_seq != ctx.last_sequence:
        raise BusinessRuleError(f"customer {target.account_no}'s card does not match the database "
                                "(check the card before transferring)")
    if image.unloaded:
        raise BusinessRuleError(f"customer {target.account_no}'s card holds a purchase not yet "
                                "loaded into the meter; load it first")
    meter = uow.session.get(MeterRow, ctx.meter_id)
    card = uow.session.get(CardRow, ctx.card_id)
    return target, meter, card


# -- the customer's record -------------------------------------------------------------------------
def customer_record(app, op: Operator, account_no: str) -> list[RecordEntry]:
    """Everything that happened to the account, oldest first."""
    op.require(Perm.VIEW)
    with app.uow() as uow:
        s = uow.session
        c = get_customer_row(uow, account_no)
        out = [RecordEntry(c.created_at, "account", f"account {c.account_no} opened ({c.name})",
                           c.account_no)]
        apps = list(s.scalars(select(ApplicationRow).where(ApplicationRow.customer_id == c.id)))
        for a in apps:
            out.append(RecordEntry(a.created_at, "application",
                                   f"application {a.number} by {a.applicant_name}: {a.state}",
                                   a.number))
        if apps:
            for st in s.scalars(select(ApplicationStepRow).where(
                    ApplicationStepRow.application_id.in_([a.id for a in apps]))):
                out.append(RecordEntry(st.at, "application",
                                       f"application step {st.state} by {st.operator}"
                                       + (f": {st.notes}" if st.notes else ""),
                                       str(st.application_id)))
        vends = list(s.scalars(select(VendRow).where(VendRow.customer_id == c.id)))
        for v in vends:
            unit = "kWh" if v.credit_unit == int(CreditUnit.KWH) else ""
            what = "make-up credit" if v.kind == "makeup" else f"purchase {v.amount}"
            extra = f", debt {v.debt_recovered}" if v.debt_recovered else ""
            out.append(RecordEntry(v.created_at, "purchase" if v.kind != "makeup" else "makeup",
                                   f"{what} -> {v.credit} {unit} on meter {v.meter.meter_no} "
                                   f"#{v.sequence} ({v.state}{extra})".replace("  ", " "),
                                   v.receipt_no or f"vend {v.id}"))
        for card in s.scalars(select(CardRow).where(CardRow.customer_id == c.id)):
            out.append(RecordEntry(card.issued_at, "card",
                                   f"card {card.uid} issued for meter "
                                   f"{card.meter.meter_no if card.meter else '-'} (now {card.status})",
                                   card.uid))
        for r in s.scalars(select(MeterReturnRow).where(MeterReturnRow.customer_id == c.id)):
            out.append(RecordEntry(r.read_at, "return",
                                   f"meter data ({r.source}) written {r.written_at:%Y-%m-%d %H:%M}: "
                                   f"remaining {r.remaining}, consumed {r.cumulative_consumed}",
                                   str(r.id)))
        for ch in s.scalars(select(CustomerChangeRow).where(CustomerChangeRow.customer_id == c.id)):
            out.append(RecordEntry(ch.at, "change", f"{ch.kind}: {ch.before} -> {ch.after} "
                                   f"by {ch.operator}", str(ch.id)))
        for e in s.scalars(select(CashEntryRow).where(CashEntryRow.customer_id == c.id)):
            out.append(RecordEntry(e.created_at, "cash", f"{e.kind} {e.amount}"
                                   + (f" ({e.note})" if e.note else ""), e.receipt_no or str(e.id)))
        debts = list(s.scalars(select(DebtRow).where(DebtRow.customer_id == c.id)))
        for d in debts:
            out.append(RecordEntry(d.created_at, "debt", f"debt {d.amount} for {d.reason} "
                                   f"(recovered {d.recovered})", str(d.id)))
        if debts:
            for p in s.scalars(select(DebtPaymentRow).where(
                    DebtPaymentRow.debt_id.in_([d.id for d in debts]))):
                how = f"from sale {p.vend_id}" if p.vend_id else "in cash"
                out.append(RecordEntry(p.at, "debt_payment", f"{p.amount} paid on debt {p.debt_id} "
                                       f"{how}", str(p.id)))
        if vends:
            for r in s.scalars(select(ReversalRow).where(
                    ReversalRow.vend_id.in_([v.id for v in vends]))):
                out.append(RecordEntry(r.created_at, "reversal", f"reversal of sale {r.vend_id}: "
                                       f"{r.state}, refund {r.refund}", str(r.id)))
        for r in s.scalars(select(ReissueRow).where(ReissueRow.customer_id == c.id)):
            out.append(RecordEntry(r.created_at, "reissue", f"card reissue: {r.state}, fee {r.fee}"
                                   + (f", new card {r.new_uid}" if r.new_uid else ""), str(r.id)))
        for n in s.scalars(select(InspectionNoticeRow).where(
                InspectionNoticeRow.customer_id == c.id)):
            out.append(RecordEntry(n.raised_at, "inspection",
                                   f"inspection notice ({n.status}): {n.reason}", str(n.id)))
        if c.closed_at:
            out.append(RecordEntry(c.closed_at, "account", f"account {c.account_no} closed",
                                   c.account_no))
        order = {k: i for i, k in enumerate(("account", "application", "card", "purchase", "makeup",
                                              "debt", "debt_payment", "cash", "return", "change",
                                              "reversal", "reissue", "inspection"))}
        return sorted(out, key=lambda e: (e.at, order.get(e.kind, 99)))


def customer_summary(app, op: Operator, account_no: str) -> dict:
    """Account, status, tariff, capacity, meter and card, for the record page and ``record``."""
    op.require(Perm.VIEW)
    with app.uow() as uow:
        c = get_customer_row(uow, account_no)
        meter = current_meter(uow, c)
        card = uow.session.scalar(select(CardRow).where(CardRow.customer_id == c.id,
                                                        CardRow.status == CardStatus.ACTIVE.value))
        from .debts import owed

        return {"account_no": c.account_no, "name": c.name, "address": c.address,
                "phone": c.phone, "category": c.category, "status": c.status,
                "tariff": c.tariff or "(default)", "capacity_amps": c.capacity_amps,
                "capacity_mode": c.capacity_mode, "meter_no": meter.meter_no if meter else None,
                "card_uid": card.uid if card else None, "debt_owed": owed(uow, c.id),
                "closed_at": c.closed_at}
