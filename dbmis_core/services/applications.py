"""New-service applications (business expansion): from the request to an opened account.

    received -> surveyed -> approved -> meter_assigned -> installed -> opened -> completed
    rejected / cancelled: from any state before the account is opened, with a reason

Every move is one transaction that also writes an ``ApplicationStepRow`` (who, when, notes); a move
from the wrong state is refused and changes nothing. Application numbers are ``STATION-YEAR-NNNNN``,
allocated as "highest number so far + 1" and inserted under a savepoint: when another station takes
the same number first, the unique constraint refuses ours and we try the next
(docs/decisions/0010-new-service-applications.md).

A meter assigned to an application stays ``in_store`` but is reserved by the application (no other
live application may take it); installing it sets it ``installed`` without a customer, opening the
account attaches the new customer. Opening runs in two transactions around the card write (the card
issue is its own unit of work): if the card cannot be written the customer exists, the application
stays ``installed`` and opening again only issues the card.

Batch opening keeps one :class:`BatchSettings` (meter model, capacity-limit mode, tariff, district)
for many applicants; a batch is all-or-nothing and reports every bad row at once.
"""

from __future__ import annotations

import csv
import enum
import io
from datetime import UTC, datetime
from decimal import Decimal

import attrs
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from ..domain import (
    CardStatus,
    CardType,
    Customer,
    CustomerCategory,
    MeterStatus,
    RegionLevel,
    customer_category,
)
from ..errors import BusinessRuleError, NotFound, ValidationError
from ..money import to_decimal
from ..storage.models import (
    ApplicationRow,
    ApplicationStepRow,
    CardRow,
    CustomerRow,
    MeterModelRow,
    MeterRow,
    RegionRow,
    UtilityRow,
)
from .auth import Operator, Perm
from .registry import add_customer, set_meter_status


class AppState(enum.StrEnum):
    RECEIVED = "received"
    SURVEYED = "surveyed"
    APPROVED = "approved"
    METER_ASSIGNED = "meter_assigned"
    INSTALLED = "installed"
    OPENED = "opened"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


FINAL = frozenset({AppState.COMPLETED, AppState.REJECTED, AppState.CANCELLED})
# reject/cancel only before an account exists; an opened account is closed, not cancelled
WITHDRAWABLE = frozenset({AppState.RECEIVED, AppState.SURVEYED, AppState.APPROVED,
                          AppState.METER_ASSIGNED, AppState.INSTALLED})
# action -> (state it needs, state it leads to)
ACTIONS: dict[str, tuple[AppState, AppState]] = {
    "survey": (AppState.RECEIVED, AppState.SURVEYED),
    "approve": (AppState.SURVEYED, AppState.APPROVED),
    "assign-meter": (AppState.APPROVED, AppState.METER_ASSIGNED),
    "install": (AppState.METER_ASSIGNED, AppState.INSTALLED),
    "open": (AppState.INSTALLED, AppState.OPENED),
    "complete": (AppState.OPENED, AppState.COMPLETED),
}
NEXT_ACTION = {need: action for action, (need, _to) in ACTIONS.items()}
CAPACITY_MODES = ("none", "trip", "alarm")
# steps a batch may take every application through in its one transaction (no card, no customer)
BATCH_TARGETS = (AppState.RECEIVED, AppState.SURVEYED, AppState.APPROVED, AppState.METER_ASSIGNED,
                 AppState.INSTALLED)
CSV_COLUMNS = ("name", "address", "phone", "category", "requested_amps")
FIRST_ACCOUNT = 100001
NUMBER_TRIES = 50


def _now() -> datetime:
    return datetime.now(UTC)


# -- records -----------------------------------------------------------------------------------
@attrs.frozen
class BatchSettings:
    """What stays the same from one customer to the next while opening accounts in a batch."""

    model_code: str | None = None
    capacity_mode: str | None = None
    tariff: str | None = None
    district_code: str | None = None
    batch: str | None = None  # a label grouping the applications, e.g. "ELM-STREET-2026"


@attrs.frozen
class Applicant:
    """The per-customer part of an application, as typed (checked by the service)."""

    name: str
    address: str = ""
    phone: str = ""
    category: str = "residential"
    requested_amps: Decimal | str | None = None


@attrs.frozen
class ApplicationStep:
    state: str
    operator: str
    at: datetime
    notes: str


@attrs.frozen
class Application:
    number: str
    state: str
    applicant_name: str
    address: str
    phone: str
    category: str
    district_code: str | None
    requested_amps: Decimal | None
    model_code: str | None
    capacity_mode: str | None
    tariff: str | None
    batch: str | None
    account_no: str | None
    meter_no: str | None
    card_uid: str | None
    station: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    next_action: str | None
    steps: tuple[ApplicationStep, ...] = ()


# -- checks ------------------------------------------------------------------------------------
def _clean_applicant(a: Applicant, uow=None) -> dict:
    name = (a.name or "").strip()
    if not name:
        raise ValidationError("applicant name must not be empty")
    if len(name) > 120:
        raise ValidationError("applicant name is longer than 120 characters")
    category = customer_category(a.category or "residential")
    if uow is not None:  # the built-in categories and the active added ones (services/codes.py)
        from .codes import check_category

        check_category(uow, category)
    amps = None
    if a.requested_amps not in (None, ""):
        amps = to_decimal(a.requested_amps, "requested amps")
        if amps <= 0 or amps >= 1000000 or amps != amps.quantize(Decimal("0.01")):
            raise ValidationError(f"requested amps must be above 0 with at most two decimals, "
                                  f"got {a.requested_amps}")
    address, phone = (a.address or "").strip(), (a.phone or "").strip()
    if len(address) > 255 or len(phone) > 32:
        raise ValidationError("address (255) or phone (32 characters) is too long")
    return {"applicant_name": name, "address": address, "phone": phone,
            "category": category.value, "requested_amps": amps}


def _clean_settings(app, uow, settings: BatchSettings) -> dict:
    """Settings checked against the database and the installed tariffs; district as its row id."""
    s = uow.session
    out: dict = {"model_code": None, "capacity_mode": None, "tariff": None, "district_id": None,
                 "batch": None}
    if settings.model_code:
        code = settings.model_code.strip()
        if s.scalar(select(MeterModelRow).where(MeterModelRow.code == code)) is None:
            raise ValidationError(f"unknown meter model {code!r}")
        out["model_code"] = code
    if settings.capacity_mode:
        mode = settings.capacity_mode.strip().lower()
        if mode not in CAPACITY_MODES:
            raise ValidationError(f"capacity-limit mode must be one of "
                                  f"{', '.join(CAPACITY_MODES)}, got {settings.capacity_mode!r}")
        out["capacity_mode"] = mode
    if settings.tariff:
        name = settings.tariff.strip()
        if name not in app.pm.tariffs():
            raise ValidationError(f"unknown tariff {name!r}; installed: "
                                  f"{', '.join(sorted(app.pm.tariffs()))}")
        out["tariff"] = name
    if settings.district_code:
        d = s.scalar(select(RegionRow).where(RegionRow.code == settings.district_code.strip()))
        if d is None or d.level != RegionLevel.DISTRICT:
            raise ValidationError(f"{settings.district_code!r} is not a transformer district")
        out["district_id"] = d.id
    if settings.batch:
        label = settings.batch.strip()
        if len(label) > 32:
            raise ValidationError("a batch label has at most 32 characters")
        out["batch"] = label
    return out


# -- numbering -----------------------------------------------------------------------------------
def _insert_numbered(uow, row: ApplicationRow, station: str) -> None:
    """Give ``row`` the next free number of the station and year and insert it.

    The insert runs under a savepoint: if another transaction took the number (PostgreSQL makes us
    wait for it, then raises a unique violation), only the savepoint is rolled back and the next
    number is tried; the highest number is read again, which under READ COMMITTED sees the other
    station's committed rows.
    """
    s = uow.session
    prefix = f"{station}-{_now().year}-"
    if len(prefix) + 5 > 24:
        raise ValidationError(f"station code {station!r} is too long for application numbers")
    for _ in range(NUMBER_TRIES):
        last = s.scalar(select(ApplicationRow.number)
                        .where(ApplicationRow.number.startswith(prefix, autoescape=True))
                        .order_by(func.length(ApplicationRow.number).desc(),
                                  ApplicationRow.number.desc()).limit(1))
        row.number = f"{prefix}{(int(last[len(prefix):]) + 1) if last else 1:05d}"
        try:
            with s.begin_nested():
                s.add(row)
                s.flush()
            return
        except IntegrityError:
            continue
    raise BusinessRuleError("could not allocate an application number; try again")


# -- reading -----------------------------------------------------------------------------------
def _row(uow, number: str, lock: bool = True) -> ApplicationRow:
    q = select(ApplicationRow).where(ApplicationRow.number == (number or "").strip())
    row = uow.session.scalar(q.with_for_update() if lock else q)
    if row is None:
        raise NotFound(f"no application {number}")
    return row


def _to_record(uow, row: ApplicationRow, with_steps: bool = True) -> Application:
    s = uow.session
    district = s.get(RegionRow, row.district_id) if row.district_id else None
    customer = s.get(CustomerRow, row.customer_id) if row.customer_id else None
    meter = s.get(MeterRow, row.meter_id) if row.meter_id else None
    card = None
    if customer is not None:
        card = s.scalar(select(CardRow.uid).where(
            CardRow.customer_id == customer.id, CardRow.card_type == int(CardType.USER),
            CardRow.status == CardStatus.ACTIVE.value))
    steps = ()
    if with_steps:
        steps = tuple(ApplicationStep(r.state, r.operator, r.at, r.notes) for r in s.scalars(
            select(ApplicationStepRow).where(ApplicationStepRow.application_id == row.id)
            .order_by(ApplicationStepRow.id)))
    return Application(
        number=row.number, state=row.state, applicant_name=row.applicant_name, address=row.address,
        phone=row.phone, category=row.category, district_code=district.code if district else None,
        requested_amps=row.requested_amps, model_code=row.model_code,
        capacity_mode=row.capacity_mode, tariff=row.tariff, batch=row.batch,
        account_no=customer.account_no if customer else None,
        meter_no=meter.meter_no if meter else None, card_uid=card, station=row.station,
        created_by=row.created_by, created_at=row.created_at, updated_at=row.updated_at,
        next_action=NEXT_ACTION.get(AppState(row.state)), steps=steps)


def get_application(app, op: Operator, number: str) -> Application:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        return _to_record(uow, _row(uow, number, lock=False))


def list_applications(app, op: Operator, state: str | None = None, text: str | None = None,
                      batch: str | None = None, limit: int = 200) -> list[Application]:
    """Applications in ``state`` (all if None) whose number or applicant name contains ``text``."""
    op.require(Perm.VIEW)
    q = select(ApplicationRow)
    if state:
        q = q.where(ApplicationRow.state == _state(state).value)
    if text and text.strip():
        t = text.strip()
        q = q.where(or_(ApplicationRow.number.contains(t, autoescape=True),
                        ApplicationRow.applicant_name.ilike(f"%{t}%")))
    if batch:
        q = q.where(ApplicationRow.batch == batch.strip())
    with app.uow() as uow:
        rows = uow.session.scalars(q.order_by(ApplicationRow.id.desc()).limit(limit)).all()
        return [_to_record(uow, r, with_steps=False) for r in rows]


def _state(value: str) -> AppState:
    try:
        return AppState(value.strip().lower().replace("-", "_"))
    except ValueError:
        raise ValidationError(f"unknown application state {value!r}; states: "
                              f"{', '.join(s.value for s in AppState)}") from None


# -- moving on -----------------------------------------------------------------------------------
def _step(uow, op: Operator, row: ApplicationRow, to: AppState, notes: str = "") -> None:
    at = _now()
    row.state = to.value
    row.updated_at = at
    uow.session.add(ApplicationStepRow(application_id=row.id, state=to.value, operator=op.login,
                                       at=at, notes=(notes or "").strip()))
    uow.session.flush()
    from . import audit

    audit.record(uow, op, "application.step", f"application {row.number}",
                 {"state": to.value, "notes": (notes or "").strip()})


def _expect(row: ApplicationRow, action: str) -> None:
    need, to = ACTIONS[action]
    if row.state != need.value:
        hint = NEXT_ACTION.get(AppState(row.state))
        nxt = f"; its next step is {hint}" if hint else ""
        raise BusinessRuleError(f"application {row.number} is {row.state}: cannot {action} "
                                f"(needs {need.value}){nxt}")


def _create(app, uow, op: Operator, applicant: Applicant, settings: BatchSettings,
            notes: str = "") -> ApplicationRow:
    values = _clean_applicant(applicant, uow)
    values.update(_clean_settings(app, uow, settings))
    at = _now()
    row = ApplicationRow(state=AppState.RECEIVED.value, station=app.config.station_code,
                         created_by=op.login, created_at=at, updated_at=at, **values)
    _insert_numbered(uow, row, app.config.station_code)
    uow.session.add(ApplicationStepRow(application_id=row.id, state=AppState.RECEIVED.value,
                                       operator=op.login, at=at, notes=(notes or "").strip()))
    uow.session.flush()
    from . import audit

    audit.record(uow, op, "application.step", f"application {row.number}",
                 {"state": AppState.RECEIVED.value, "applicant": row.applicant_name,
                  "notes": (notes or "").strip()})
    return row


def new_application(app, op: Operator, applicant: Applicant,
                    settings: BatchSettings | None = None, notes: str = "") -> Application:
    """Record a request for a new connection; it starts as ``received``."""
    op.require(Perm.MANAGE_APPLICATIONS)
    with app.uow() as uow:
        row = _create(app, uow, op, applicant, settings or BatchSettings(), notes)
        uow.commit()
        return _to_record(uow, row)


def _survey(app, uow, op, row, notes=""):
    _expect(row, "survey")
    _step(uow, op, row, AppState.SURVEYED, notes)


def _approve(app, uow, op, row, notes="", settings: BatchSettings | None = None):
    _expect(row, "approve")
    if settings is not None:
        for key, value in _clean_settings(app, uow, settings).items():
            if value is not None:
                setattr(row, key, value)
    if not row.model_code:
        raise BusinessRuleError(f"application {row.number} names no meter model; give one when "
                                "approving")
    _step(uow, op, row, AppState.APPROVED, notes)


def _reserved(uow, meter_id: int, but: int) -> str | None:
    """Number of another live application holding the meter."""
    return uow.session.scalar(select(ApplicationRow.number).where(
        ApplicationRow.meter_id == meter_id, ApplicationRow.id != but,
        ApplicationRow.state.not_in([s.value for s in FINAL])))


def _assign_meter(app, uow, op, row, meter_no: str | None = None, notes=""):
    _expect(row, "assign-meter")
    s = uow.session
    model = s.scalar(select(MeterModelRow).where(MeterModelRow.code == row.model_code))
    if meter_no:
        meter = s.scalar(select(MeterRow).where(MeterRow.meter_no == meter_no.strip())
                         .with_for_update())
        if meter is None:
            raise NotFound(f"no meter with factory number {meter_no}")
        if meter.status != MeterStatus.IN_STORE.value:
            raise BusinessRuleError(f"meter {meter.meter_no} is {meter.status}, not in the store")
        if meter.model_id != model.id:
            raise BusinessRuleError(f"meter {meter.meter_no} is not a {row.model_code} meter")
        holder = _reserved(uow, meter.id, row.id)
        if holder:
            raise BusinessRuleError(f"meter {meter.meter_no} is already assigned to application "
                                    f"{holder}")
    else:
        meter = None
        for candidate in s.scalars(select(MeterRow).where(
                MeterRow.status == MeterStatus.IN_STORE.value, MeterRow.model_id == model.id)
                .order_by(MeterRow.meter_no).with_for_update()):
            if not _reserved(uow, candidate.id, row.id):
                meter = candidate
                break
        if meter is None:
            raise BusinessRuleError(f"no free {row.model_code} meter in the store")
    row.meter_id = meter.id
    _step(uow, op, row, AppState.METER_ASSIGNED,
          f"meter {meter.meter_no}" + (f"; {notes.strip()}" if notes and notes.strip() else ""))


def _install(app, uow, op, row, notes=""):
    _expect(row, "install")
    meter = uow.session.scalar(select(MeterRow).where(MeterRow.id == row.meter_id)
                               .with_for_update())
    if meter.status != MeterStatus.IN_STORE.value:
        raise BusinessRuleError(f"meter {meter.meter_no} is {meter.status}; assign another meter")
    set_meter_status(uow, meter, MeterStatus.INSTALLED, op.login, "install",
                     f"application {row.number}")
    _step(uow, op, row, AppState.INSTALLED, notes)


def _complete(app, uow, op, row, notes=""):
    _expect(row, "complete")
    _step(uow, op, row, AppState.COMPLETED, notes)


_IN_UOW = {"survey": _survey, "approve": _approve, "assign-meter": _assign_meter,
           "install": _install, "complete": _complete}


def _advance(app, op: Operator, number: str, action: str, **kw) -> Application:
    op.require(Perm.MANAGE_APPLICATIONS)
    with app.uow() as uow:
        row = _row(uow, number)
        _IN_UOW[action](app, uow, op, row, **kw)
        uow.commit()
        return _to_record(uow, row)


def survey(app, op: Operator, number: str, notes: str = "") -> Application:
    """The site survey is done (notes: what was found)."""
    return _advance(app, op, number, "survey", notes=notes)


def approve(app, op: Operator, number: str, notes: str = "",
            settings: BatchSettings | None = None) -> Application:
    """Approve the connection; settings given here fill or change the model, tariff, etc."""
    return _advance(app, op, number, "approve", notes=notes, settings=settings)


def assign_meter(app, op: Operator, number: str, meter_no: str | None = None,
                 notes: str = "") -> Application:
    """Take a meter of the approved model from the store (the first free one if none is named)."""
    return _advance(app, op, number, "assign-meter", meter_no=meter_no, notes=notes)


def install(app, op: Operator, number: str, notes: str = "") -> Application:
    """The assigned meter is installed at the site."""
    return _advance(app, op, number, "install", notes=notes)


def complete(app, op: Operator, number: str, notes: str = "") -> Application:
    """Close the application file once the account is open."""
    return _advance(app, op, number, "complete", notes=notes)


def _next_account(uow) -> str:
    for acct in uow.session.scalars(
            select(CustomerRow.account_no).where(func.length(CustomerRow.account_no) == 6)
            .order_by(CustomerRow.account_no.desc()).limit(100)):
        if acct.isdigit():
            return str(int(acct) + 1)
    return str(FIRST_ACCOUNT)


def _create_customer(uow, op: Operator, row: ApplicationRow, account_no: str | None) -> CustomerRow:
    s = uow.session
    district = s.get(RegionRow, row.district_id) if row.district_id else None
    for _ in range(NUMBER_TRIES if account_no is None else 1):
        acct = account_no or _next_account(uow)
        try:
            with s.begin_nested():
                c = add_customer(uow, op, Customer(acct, row.applicant_name, row.address, row.phone,
                                                   row.category,
                                                   district.code if district else None))
        except IntegrityError:
            continue
        return s.get(CustomerRow, c.id)
    raise BusinessRuleError("could not allocate an account number; try again")


def open_account(app, op: Operator, number: str, account_no: str | None = None,
                 notes: str = "") -> Application:
    """Create the customer from the application, bind the installed meter and issue the user card
    onto the blank card in the reader. If the card fails, the customer stays and opening again
    only issues the card."""
    from .cards import issue_user_card

    op.require(Perm.MANAGE_APPLICATIONS)
    with app.uow() as uow:
        row = _row(uow, number)
        _expect(row, "open")
        if row.customer_id is None:
            customer = _create_customer(uow, op, row, account_no)
            model = uow.session.scalar(select(MeterModelRow).where(
                MeterModelRow.code == row.model_code))
            customer.tariff = row.tariff
            customer.capacity_mode = row.capacity_mode
            customer.capacity_amps = row.requested_amps or (model.rated_amps if model else None)
            meter = uow.session.scalar(select(MeterRow).where(MeterRow.id == row.meter_id)
                                       .with_for_update())
            if meter.status != MeterStatus.INSTALLED.value or meter.customer_id is not None:
                raise BusinessRuleError(f"meter {meter.meter_no} is {meter.status} and not free "
                                        "for this account")
            meter.customer = customer
            row.customer_id = customer.id
            row.updated_at = _now()
            uow.commit()
        elif account_no:
            existing = uow.session.get(CustomerRow, row.customer_id)
            if existing.account_no != account_no.strip():
                raise BusinessRuleError(f"application {row.number} already opened account "
                                        f"{existing.account_no}; issue its card")
        acct = uow.session.get(CustomerRow, row.customer_id).account_no
    with app.uow() as uow:
        card = uow.session.scalar(select(CardRow.uid).where(
            CardRow.customer_id == row.customer_id, CardRow.card_type == int(CardType.USER),
            CardRow.status == CardStatus.ACTIVE.value))
    uid = card or issue_user_card(app, op, acct)
    with app.uow() as uow:
        row = _row(uow, number)
        _expect(row, "open")
        extra = f"; {notes.strip()}" if notes and notes.strip() else ""
        _step(uow, op, row, AppState.OPENED, f"account {acct}, card {uid}{extra}")
        uow.commit()
        return _to_record(uow, row)


def advance(app, op: Operator, number: str, action: str, **kw) -> Application:
    """One step by name (see ``ACTIONS``): what the command line and the Qt buttons call."""
    if action not in ACTIONS:
        raise ValidationError(f"unknown step {action!r}; steps: {', '.join(ACTIONS)}")
    if action == "open":
        return open_account(app, op, number, **kw)
    return _advance(app, op, number, action, **kw)


def _withdraw(app, op: Operator, number: str, to: AppState, reason: str) -> Application:
    op.require(Perm.MANAGE_APPLICATIONS)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(f"give a reason to mark an application {to.value}")
    with app.uow() as uow:
        row = _row(uow, number)
        if AppState(row.state) not in WITHDRAWABLE:
            why = ("the account is open; close the account instead"
                   if row.state == AppState.OPENED else "it is final")
            raise BusinessRuleError(f"application {row.number} is {row.state} and cannot be "
                                    f"{to.value}: {why}")
        if row.meter_id is not None:
            meter = uow.session.scalar(select(MeterRow).where(MeterRow.id == row.meter_id)
                                       .with_for_update())
            if meter.status == MeterStatus.INSTALLED.value and meter.customer_id is None:
                # taken down, back to the store
                set_meter_status(uow, meter, MeterStatus.IN_STORE, op.login, "application",
                                 f"application {row.number} {to.value}")
        _step(uow, op, row, to, reason)
        uow.commit()
        return _to_record(uow, row)


def reject(app, op: Operator, number: str, reason: str) -> Application:
    """The utility refuses the connection (e.g. the survey found no capacity)."""
    return _withdraw(app, op, number, AppState.REJECTED, reason)


def cancel(app, op: Operator, number: str, reason: str) -> Application:
    """The applicant withdraws."""
    return _withdraw(app, op, number, AppState.CANCELLED, reason)


# -- batches -------------------------------------------------------------------------------------
def applicants_from_csv(text: str) -> list[Applicant]:
    """Applicants from CSV text with a header row (columns ``CSV_COLUMNS``; only ``name`` is
    required). Every problem is reported at once, by line number."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "name" not in header:
        raise ValidationError(f"the CSV needs a header row with a name column; columns: "
                              f"{', '.join(CSV_COLUMNS)}")
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise ValidationError(f"unknown CSV columns {', '.join(unknown)}; columns: "
                              f"{', '.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    out = []
    for rec in reader:
        if None in rec:
            raise ValidationError(f"line {reader.line_num}: more fields than columns")
        values = {k: (v or "").strip() for k, v in rec.items()}
        if not any(values.values()):
            continue
        out.append(Applicant(values.get("name", ""), values.get("address", ""),
                             values.get("phone", ""), values.get("category") or "residential",
                             values.get("requested_amps") or None))
    if not out:
        raise ValidationError("the CSV holds no applicants")
    return out


def submit_batch(app, op: Operator, applicants: list[Applicant], settings: BatchSettings,
                 advance_to: str = "received", notes: str = "") -> list[Application]:
    """Applications for many applicants with the same settings, taken to ``advance_to`` (at most
    ``installed``: opening needs a card per customer). One transaction: any bad applicant, or too
    few meters in the store, and nothing is written; the error lists every bad row."""
    op.require(Perm.MANAGE_APPLICATIONS)
    target = _state(advance_to)
    if target not in BATCH_TARGETS:
        raise ValidationError(f"a batch goes at most to {BATCH_TARGETS[-1].value}; accounts are "
                              "opened one by one, each with its card")
    if not applicants:
        raise ValidationError("a batch needs at least one applicant")
    if (list(BATCH_TARGETS).index(target) >= list(BATCH_TARGETS).index(AppState.APPROVED)
            and not (settings.model_code or "").strip()):
        raise ValidationError(f"a batch taken to {target.value} needs a meter model")
    with app.uow() as uow:
        _clean_settings(app, uow, settings)
        errors = []
        for i, a in enumerate(applicants, start=1):
            try:
                _clean_applicant(a, uow)
            except ValidationError as exc:
                errors.append(f"applicant {i} ({(a.name or '').strip() or 'no name'}): {exc}")
        if errors:
            raise ValidationError(f"{len(errors)} of {len(applicants)} applicants are wrong; "
                                  "nothing was saved: " + "; ".join(errors))
        order = list(BATCH_TARGETS)
        rows = []
        for i, a in enumerate(applicants, start=1):
            row = _create(app, uow, op, a, settings, notes)
            try:
                for action in ("survey", "approve", "assign-meter", "install")[
                        :order.index(target)]:
                    _IN_UOW[action](app, uow, op, row)
            except (BusinessRuleError, NotFound) as exc:
                raise BusinessRuleError(f"applicant {i} ({row.applicant_name}): {exc}; nothing "
                                        "was saved") from None
            rows.append(row)
        uow.commit()
        return [_to_record(uow, r) for r in rows]


# -- the printable form --------------------------------------------------------------------------
def form_context(app, op: Operator, number: str) -> dict:
    op.require(Perm.VIEW)
    rec = get_application(app, op, number)
    with app.uow() as uow:
        u = uow.session.scalar(select(UtilityRow))
    return {"a": rec, "utility": u.name if u else "", "printed_at": _now(),
            "printed_by": op.login}


def render_form(app, op: Operator, number: str, pdf: bool = False) -> str | bytes:
    """The application form with the applicant's data and every step: text, or A4 PDF bytes."""
    from ..documents import html_to_pdf, render

    ctx = form_context(app, op, number)
    if not pdf:
        return render("application_form.txt.j2", **ctx)
    return html_to_pdf(render("application_form.html.j2", **ctx),
                       title=f"Application {ctx['a'].number}")


# -- what a form offers ----------------------------------------------------------------------------
@attrs.frozen
class FormChoices:
    """Values an application form offers: (code, title) pairs from the database and the plugins."""

    models: tuple[tuple[str, str], ...]
    districts: tuple[tuple[str, str], ...]
    tariffs: tuple[tuple[str, str], ...]
    capacity_modes: tuple[str, ...] = CAPACITY_MODES
    categories: tuple[str, ...] = tuple(c.value for c in CustomerCategory)


def form_choices(app, op: Operator) -> FormChoices:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        s = uow.session
        models = tuple((m.code, f"{m.code} ({m.phases}-phase, {m.rated_amps} A)")
                       for m in s.scalars(select(MeterModelRow).order_by(MeterModelRow.code)))
        districts = tuple((d.code, f"{d.code} {d.name}") for d in s.scalars(
            select(RegionRow).where(RegionRow.level == RegionLevel.DISTRICT.value)
            .order_by(RegionRow.code)))
    tariffs = tuple((name, t.title) for name, t in sorted(app.pm.tariffs().items()))
    return FormChoices(models, districts, tariffs)
