"""Card tools: read any card, write logged service cards, bring meter data back from them.

Service cards are how technicians reach meters (docs/decisions/0005-service-cards.md). Writing one
needs the ``write_service_cards`` permission and leaves a row in the service-card log in the same
transaction, so a card exists only if its log row does. Data that meters wrote onto check, clear and
meter-reading cards goes into the customers' history like the return data of user cards.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..cards import (
    ANY_METER,
    MAX_TEST_USES,
    SINGLE_METER_TYPES,
    CardHeader,
    CardImage,
    CheckCommand,
    ClearCommand,
    ManagementCommand,
    MeterParameters,
    MeterReading,
    PresetCommand,
    ReadingCommand,
    SelfTestCommand,
    ServiceCardImage,
    SetCommand,
)
from ..domain import CardType, MeterReturn
from ..errors import BlankCardError, BusinessRuleError, CardFormatError, ValidationError
from ..money import CENT, PRICE_STEP, to_decimal
from ..storage.models import (
    CardRow,
    MeterParameterSetRow,
    MeterReturnRow,
    MeterRow,
    ServiceCardRow,
)
from .auth import Operator, Perm
from .cards import connected, describe, meter_key_version, utility_numeric_code
from .registry import get_meter_row
from .vending import store_return

SERVICE_TYPES = {t.name.lower(): t for t in CardType if t.is_service}
PARAMETERS: dict[CardType, tuple[str, ...]] = {
    CardType.TEST: ("credit", "uses"),
    CardType.CHECK: (),
    CardType.SET: ("alarm1", "alarm2", "hoarding_limit", "overdraft_limit", "power_limit_w",
                   "price"),
    CardType.CLEAR: (),
    CardType.PRESET: ("credit",),
    CardType.METER_READING: ("route",),
    CardType.MANAGEMENT: ("action",),
}
MAX_TEST_CREDIT = Decimal(20)  # kWh: a test card proves the meter works, it does not sell


def service_type(value: CardType | str | int) -> CardType:
    """A service card type from a CardType, its code or its name ("set", "meter_reading", ...)."""
    try:
        t = CardType(value) if not isinstance(value, str) else SERVICE_TYPES[
            value.strip().lower().replace("-", "_")]
    except (KeyError, ValueError):
        raise ValidationError(f"unknown service card type {value!r}; types: "
                              f"{', '.join(SERVICE_TYPES)}") from None
    if not t.is_service:
        raise ValidationError(f"a {t.name.lower()} card is not a service card")
    return t


# -- parameters ------------------------------------------------------------------------------------
def _quantity(params: dict, name: str, step: Decimal = CENT, default: str = "0") -> Decimal:
    """A non-negative amount with at most ``step``'s decimals that fits a u32 count of steps."""
    what = name.replace("_", " ")
    value = to_decimal(params.get(name, default) or default, what)
    if value < 0:
        raise ValidationError(f"{what} must not be negative, got {value}")
    if value >= step * 2**32:
        raise ValidationError(f"{what} {value} is too large for a card")
    if value != value.quantize(step):
        raise ValidationError(f"{what} has more than {-step.as_tuple().exponent} decimals: {value}")
    return value.quantize(step)


def _whole(params: dict, name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name, default)
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValidationError(f"{name.replace('_', ' ')} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ValidationError(f"{name.replace('_', ' ')} must be from {lo} to {hi}, got {value}")
    return value


def _command(uow, op: Operator, ctype: CardType, params: dict[str, Any]):
    """(command, parameters for the log) from what an operator typed; SET allocates a version."""
    unknown = set(params) - set(PARAMETERS[ctype])
    if unknown:
        takes = ", ".join(PARAMETERS[ctype]) or "no parameters"
        raise ValidationError(f"a {ctype.name.lower()} card takes {takes}; not "
                              f"{', '.join(sorted(unknown))}")
    if ctype == CardType.TEST:
        credit = _quantity(params, "credit", default="1.00")
        if not 0 < credit <= MAX_TEST_CREDIT:
            raise ValidationError(f"test credit must be above 0 and at most {MAX_TEST_CREDIT} kWh")
        uses = _whole(params, "uses", 3, 1, MAX_TEST_USES)
        return SelfTestCommand(credit, uses), {"credit": str(credit), "uses": uses}
    if ctype == CardType.PRESET:
        credit = _quantity(params, "credit")
        if credit <= 0:
            raise ValidationError("a preset card needs a credit above 0")
        return PresetCommand(credit), {"credit": str(credit)}
    if ctype == CardType.METER_READING:
        route = str(params.get("route") or "").strip()
        if len(route) > 32 or not route.isascii() or not route.isprintable():
            raise ValidationError(f"route code {route!r} must be up to 32 plain characters")
        return ReadingCommand(route), {"route": route}
    if ctype == CardType.MANAGEMENT:
        action = str(params.get("action") or "").strip().lower()
        if action not in ("suspend", "resume"):
            raise ValidationError("a management card needs action 'suspend' or 'resume'")
        return ManagementCommand(action == "suspend"), {"action": action}
    if ctype == CardType.SET:
        return _set_command(uow, op, params)
    return {CardType.CHECK: CheckCommand, CardType.CLEAR: ClearCommand}[ctype](), {}


def _set_command(uow, op: Operator, params: dict) -> tuple[SetCommand, dict]:
    values = {n: _quantity(params, n) for n in ("alarm1", "alarm2", "hoarding_limit",
                                                "overdraft_limit")}
    values["power_limit_w"] = _whole(params, "power_limit_w", 0, 0, 10**6)
    values["price"] = _quantity(params, "price", PRICE_STEP)
    if values["alarm1"] and values["alarm2"] > values["alarm1"]:
        raise ValidationError("alarm level 2 is the lower one: it must not be above alarm level 1")
    if values["hoarding_limit"] and values["alarm1"] > values["hoarding_limit"]:
        raise ValidationError("alarm level 1 must not be above the hoarding limit")
    logged = {k: v if isinstance(v, int) else str(v) for k, v in values.items()}
    # one numbering for the whole utility: a meter applies a version only if it is newer
    version = (uow.session.scalar(select(func.max(MeterParameterSetRow.version))) or 0) + 1
    if version > 0xFFFF:
        raise BusinessRuleError("meter parameter versions are used up (65535)")
    uow.session.add(MeterParameterSetRow(version=version, parameters=logged, created_by=op.login))
    return SetCommand(MeterParameters(**values, version=version)), {**logged, "version": version}


# -- writing ---------------------------------------------------------------------------------------
@attrs.frozen
class ServiceCardWritten:
    uid: str
    card_type: CardType
    targets: list[str] | str
    parameters: dict
    written_at: datetime


def write_service_card(app, op: Operator, card_type, target_meter: str | None = None,
                       **params) -> ServiceCardWritten:
    """Write a service card on the blank card in the reader and log it in the same transaction.

    Without ``target_meter`` a test, set, preset or meter-reading card is for any meter of the
    utility; check, clear and management cards always name their meter."""
    op.require(Perm.WRITE_SERVICE_CARDS)
    ctype = service_type(card_type)
    kind = ctype.name.lower()
    if ctype == CardType.SET:  # levels not given come from the alarm defaults (settings)
        from .settings import alarm_defaults

        params = {**{k: str(v) for k, v in alarm_defaults(app).items()},
                  **{k: v for k, v in params.items() if v not in (None, "")}}
    with app.uow() as uow:
        meter = get_meter_row(uow, target_meter) if target_meter else None
        if meter is None and ctype in SINGLE_METER_TYPES:
            raise ValidationError(f"a {kind} card is for one meter; give its meter number")
        command, logged = _command(uow, op, ctype, params)
        account = meter.customer.account_no if meter is not None and meter.customer else "0000"
        header = CardHeader(ctype, utility_numeric_code(uow), meter.meter_no if meter else ANY_METER,
                            account, meter_key_version(app, meter) if meter
                            else app.keys.current_version)
        issued = datetime.now(UTC).replace(microsecond=0)
        targets: list[str] | str = [meter.meter_no] if meter else "any"
        with connected(app) as conn:
            uid = app.card_format.read_uid(conn)
            if (uow.session.scalar(select(CardRow.id).where(CardRow.uid == uid)) is not None
                    or uow.session.scalar(select(ServiceCardRow.id)
                                          .where(ServiceCardRow.uid == uid)) is not None):
                raise ValidationError(f"card {uid} is already in use; insert a blank card")
            uow.session.add(ServiceCardRow(
                uid=uid, card_type=int(ctype), operator=op.login, station=app.config.station_code,
                written_at=issued, targets=targets, parameters=logged,
                key_version=header.key_version))
            try:
                uow.session.flush()  # a database refusal comes before the card is touched
            except IntegrityError:
                raise BusinessRuleError("another station wrote a service card at the same moment; "
                                        "try again") from None
            from . import audit

            audit.record(uow, op, "card.service", f"card {uid}",
                         {"type": kind, "targets": targets, "parameters": logged})
            app.card_format.write_service(conn, header, command, issued)
        uow.commit()
    return ServiceCardWritten(uid, ctype, targets, logged, issued)


# -- reading ---------------------------------------------------------------------------------------
@attrs.frozen
class AreaCheck:
    """One area of the card and whether its CRC and MAC hold: "valid", "empty" or the problem."""

    name: str
    status: str

    @property
    def valid(self) -> bool:
        return self.status == "valid"


@attrs.frozen
class CardDescription:
    """Everything on a card (decoded and checked) next to what the database knows of it."""

    uid: str
    kind: str  # "user", "service", "blank" or "unreadable"
    tries_left: int
    raw: bytes
    image: CardImage | ServiceCardImage | None
    problem: str | None
    areas: tuple[AreaCheck, ...]
    database: dict
    warnings: tuple[str, ...]


def _status(problem: str | None) -> str:
    if problem is None:
        return "valid"
    return "empty" if problem.startswith("empty") else problem


def _areas(image) -> tuple[AreaCheck, ...]:
    if isinstance(image, CardImage):
        return tuple([AreaCheck(f"vend slot {s.name}", _status(s.problem)) for s in image.slots]
                     + [AreaCheck("return data", _status(image.return_problem))])
    areas = [AreaCheck("command", _status(image.command_problem))]
    if image.entries:
        areas += [AreaCheck(f"answer entry {e.index + 1}", _status(e.problem)) for e in image.entries]
    else:
        areas.append(AreaCheck("answer", _status(image.answer_problem)))
    return tuple(areas)


def describe_any_card(app, op: Operator) -> CardDescription:
    """Read whatever card is in the reader and say everything about it; changes nothing."""
    op.require(Perm.READ_CARD)
    fmt = app.card_format
    with connected(app) as conn:
        raw, tries, uid = conn.read(0, 256), conn.tries_left(), fmt.read_uid(conn)
        try:
            image, problem = fmt.read_any(conn), None
        except BlankCardError as exc:
            image, problem, kind = None, str(exc), "blank"
        except CardFormatError as exc:
            image, problem, kind = None, str(exc), "unreadable"
    if image is not None:
        kind = "service" if isinstance(image, ServiceCardImage) else "user"
    with app.uow() as uow:
        if isinstance(image, ServiceCardImage):
            database, warnings = _service_view(uow, image)
        elif image is not None:
            report = describe(uow, image)
            database = {"registered": report.registered, "status": report.status,
                        "account_no": report.account_no, "meter_no": report.meter_no,
                        "last_sequence": report.db_last_sequence}
            warnings = list(report.warnings)
        else:
            database, warnings = _unknown_view(uow, uid), []
    return CardDescription(uid, kind, tries, raw, image, problem,
                           _areas(image) if image is not None else (), database, tuple(warnings))


def _unknown_view(uow, uid: str) -> dict:
    card = uow.session.scalar(select(CardRow).where(CardRow.uid == uid))
    log = uow.session.scalar(select(ServiceCardRow).where(ServiceCardRow.uid == uid))
    return {"registered": card is not None or log is not None}


def _answer_returns(image: ServiceCardImage) -> list[MeterReturn]:
    """Meter data on the card in the shape of return data (readings carry no monthly history)."""
    if image.snapshot is not None:
        return [image.snapshot.returned]
    return [MeterReturn(r.meter_no, r.last_sequence, r.remaining, r.cumulative_purchased,
                        r.cumulative_consumed, r.status, r.tamper_count, r.illegal_card_count,
                        (r.written_at.year, r.written_at.month), (), r.written_at)
            for r in image.answers if isinstance(r, MeterReading)]


def _service_view(uow, image: ServiceCardImage) -> tuple[dict, list[str]]:
    log = uow.session.scalar(select(ServiceCardRow).where(ServiceCardRow.uid == image.uid))
    warnings = []
    if log is None:
        warnings.append("this service card is not in this database's service-card log")
    if image.command_problem:
        warnings.append(f"command: {image.command_problem}")
    if image.answer_problem and not image.answer_problem.startswith("empty"):
        warnings.append(f"answer: {image.answer_problem}")
    warnings += [f"answer entry {e.index + 1}: {e.problem}" for e in image.entries
                 if e.problem and e.problem != "empty"]
    stored = {(r.meter_no, r.written_at) for r in _answer_returns(image)}
    numbers = sorted({m for m, _ in stored} | {a.meter_no for a in image.answers}
                     | ({image.header.meter_no} - {ANY_METER}))
    meters = []
    for number in numbers:
        row = uow.session.scalar(select(MeterRow).where(MeterRow.meter_no == number))
        if row is None:
            warnings.append(f"meter {number} is not registered")
            meters.append({"meter_no": number, "registered": False})
            continue
        imported = [t for m, t in stored if m == number and uow.session.scalar(
            select(MeterReturnRow.id).where(MeterReturnRow.meter_id == row.id,
                                            MeterReturnRow.written_at == t)) is not None]
        meters.append({"meter_no": number, "registered": True, "status": row.status,
                       "account_no": row.customer.account_no if row.customer else None,
                       "last_sequence": row.last_sequence,
                       "parameter_version": row.parameter_version,
                       "data_imported": bool(imported) if any(m == number for m, _ in stored)
                       else None})
    view = {"logged": log is not None, "meters": meters}
    if log is not None:
        view.update(written_by=log.operator, written_at=log.written_at, station=log.station,
                    targets=log.targets, parameters=log.parameters, imported_at=log.imported_at,
                    imported_by=log.imported_by)
    return view, warnings


# -- importing -------------------------------------------------------------------------------------
@attrs.frozen
class ImportResult:
    uid: str
    card_type: CardType
    imported: tuple[tuple[str, str, datetime], ...]  # (meter, account, written at) newly stored
    already: tuple[tuple[str, datetime], ...]         # stored by an earlier import or sale
    skipped: tuple[tuple[str, str], ...]              # (meter, why)
    parameter_versions: tuple[tuple[str, int], ...]   # (meter, version) now known
    notes: tuple[str, ...]


def import_service_card_data(app, op: Operator) -> ImportResult:
    """Bring the meter data on the check, clear, meter-reading (or set) card in the reader into
    the customers' history; importing the same card again stores nothing twice."""
    op.require(Perm.MANAGE_METERS)
    with connected(app) as conn:
        image = app.card_format.read_any(conn)
    if not isinstance(image, ServiceCardImage):
        raise BusinessRuleError("this is a user card: its meter data is recorded when the card is "
                                "read or at the next sale")
    ctype, kind = image.header.card_type, image.header.card_type.name.lower()
    if ctype not in (CardType.CHECK, CardType.CLEAR, CardType.METER_READING, CardType.SET):
        raise BusinessRuleError(f"a {kind} card brings back no meter data to import")
    if image.command is None:
        raise CardFormatError(f"the {kind} card's command is unusable ({image.command_problem}); "
                              "its data cannot be trusted")
    imported, already, skipped, versions, notes = [], [], [], [], []
    with app.uow() as uow:
        meters = {}

        def meter(number: str) -> MeterRow | None:
            if number not in meters:
                meters[number] = uow.session.scalar(select(MeterRow)
                                                    .where(MeterRow.meter_no == number))
                if meters[number] is None:
                    skipped.append((number, "meter is not registered"))
            return meters[number]

        for ret in _answer_returns(image):
            row = meter(ret.meter_no)
            if row is None:
                continue
            if row.customer_id is None:
                skipped.append((ret.meter_no, "meter has no customer"))
                continue
            _, new = store_return(uow, op, row.id, row.customer_id, ret, source=kind)
            if new:
                imported.append((ret.meter_no, row.customer.account_no, ret.written_at))
            else:
                already.append((ret.meter_no, ret.written_at))
        known = ([(image.snapshot.returned.meter_no, image.snapshot.params.version)]
                 if image.snapshot else
                 [(m.meter_no, m.code) for m in image.answers if ctype == CardType.SET])
        for number, version in known:
            row = meter(number)
            if row is not None and (row.parameter_version or 0) <= version:
                row.parameter_version = version
                versions.append((number, version))
        if ctype == CardType.CLEAR and image.snapshot is not None:
            notes.append(f"meter {image.snapshot.returned.meter_no} now counts purchases from "
                         "sequence 0 again; remove it from its customer before it serves anyone")
        if not (image.answers or image.snapshot):
            notes.append(f"no meter has answered on this {kind} card yet")
        log = uow.session.scalar(select(ServiceCardRow).where(ServiceCardRow.uid == image.uid))
        if log is not None:
            log.imported_at, log.imported_by = datetime.now(UTC), op.login
        uow.commit()
    return ImportResult(image.uid, ctype, tuple(imported), tuple(already), tuple(skipped),
                        tuple(versions), tuple(notes))


# -- the log ---------------------------------------------------------------------------------------
@attrs.frozen
class LogEntry:
    uid: str
    card_type: CardType
    operator: str
    station: str
    written_at: datetime
    targets: list[str] | str
    parameters: dict
    imported_at: datetime | None


def service_card_log(app, op: Operator, limit: int = 100,
                     card_type: CardType | str | None = None) -> list[LogEntry]:
    """The newest service cards first."""
    op.require(Perm.VIEW)
    query = select(ServiceCardRow).order_by(ServiceCardRow.written_at.desc(),
                                            ServiceCardRow.id.desc()).limit(limit)
    if card_type is not None:
        query = query.where(ServiceCardRow.card_type == int(service_type(card_type)))
    with app.uow() as uow:
        return [LogEntry(r.uid, CardType(r.card_type), r.operator, r.station, r.written_at,
                         r.targets, r.parameters, r.imported_at)
                for r in uow.session.scalars(query)]


# -- one plain view for hosts ----------------------------------------------------------------------
def description_dict(d: CardDescription) -> dict:
    """The description as nested dicts and lists (for --json output and the Qt tree)."""
    out: dict[str, Any] = {"uid": d.uid, "kind": d.kind, "psc_tries_left": d.tries_left}
    if d.problem:
        out["problem"] = d.problem
    image = d.image
    if image is not None:
        h = image.header
        out["header"] = {"card_type": h.card_type.name.lower(), "utility_code": h.utility_code,
                         "meter_no": "any" if h.meter_no == ANY_METER and h.card_type.is_service
                         else h.meter_no, "account_no": h.account_no, "key_version": h.key_version}
        out["areas"] = {a.name: a.status for a in d.areas}
    if isinstance(image, CardImage):
        out["slots"] = [{"slot": s.name, **(_plain(s.record) if s.record else {}),
                         "problem": s.problem} for s in image.slots]
        out["vend"] = _plain(image.vend) if image.vend else None
        out["loaded_into_meter"] = not image.unloaded
        out["return"] = _plain(image.returned) if image.returned else None
    elif isinstance(image, ServiceCardImage):
        out["command"] = ({"card_type": h.card_type.name.lower(), **_plain(image.command)}
                          if image.command else None)
        out["issued_at"] = image.issued_at
        if image.snapshot is not None or not image.entries:
            out["answer"] = _plain(image.snapshot) if image.snapshot else None
        else:
            out["answers"] = [_plain(a) for a in image.answers]
            if image.header.card_type == CardType.TEST:
                out["uses_consumed"] = len(image.answers)
            out["meters_answered"] = sorted({a.meter_no for a in image.answers})
    out["database"] = d.database
    out["warnings"] = list(d.warnings)
    out["raw"] = {f"0x{i:02X}": d.raw[i:i + 16].hex(" ") for i in range(0, len(d.raw), 16)}
    return out


STATUS_FLAGS = (("relay_open", MeterReturn.RELAY_OPEN), ("tamper", MeterReturn.TAMPER),
                ("low_credit", MeterReturn.LOW_CREDIT), ("overdraft", MeterReturn.OVERDRAFT),
                ("alarm2", MeterReturn.ALARM2), ("suspended", MeterReturn.SUSPENDED))


def _plain(obj) -> Any:
    if attrs.has(type(obj)):
        out = {k: _plain(v) for k, v in attrs.asdict(obj, recurse=False).items()}
        if isinstance(obj, (MeterReturn, MeterReading)):
            out["status_flags"] = [name for name, bit in STATUS_FLAGS if obj.status & bit]
        if isinstance(obj, MeterReturn):
            year, month = obj.history_month
            out["history_month"] = f"{year:04d}-{month:02d}"
            out["history"] = {}
            for value in obj.history:  # newest month first
                out["history"][f"{year:04d}-{month:02d}"] = value
                year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return out
    if isinstance(obj, tuple):
        return [_plain(v) for v in obj]
    return obj.name.lower() if isinstance(obj, enum.Enum) else obj
