"""Tariff versions with effective dates, and the price a sale gets (docs/decisions/0006-tariff-versions.md).

A version holds a tariff's settings from a moment on. Versions are never edited or deleted, so the
price of every past sale can still be explained; a new version may start now or later, never
earlier, because sales already made were priced by what was in force then. Before a tariff's first
version its ``[tariffs.<name>]`` configuration applies.

A sale asks :func:`quote_for_customer`: the customer's tariff (``customers.tariff``; None = the
configured default), the version in force at the moment of the sale and, for tariffs with a
``period``, the energy the customer bought in the current calendar month or year. Period boundaries
are midnight in ``[tariff] period_timezone`` (default UTC). The look-up is one indexed query; the
settings of a version are read once per application and kept, since versions never change.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from sqlalchemy import bindparam, func, literal_column, select

from ..domain import Quote
from ..errors import BusinessRuleError, ConfigError, NotFound, PluginError, ValidationError
from ..money import KWH_STEP, money
from ..storage.models import TariffVersionRow, UtcDateTime, VendRow
from ..storage.precompiled import constant_in
from ..types import Tariff, TariffContext
from .auth import Operator, Perm
from .registry import get_customer_row

SOLD_STATES = ("pending", "written", "completed")  # sales whose energy counts towards a period


def now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class TariffVersion:
    id: int
    tariff: str
    effective_from: datetime
    settings: dict
    note: str
    created_by: str
    created_at: datetime
    state: str  # "past", "in force" or "future" at the time it was listed


@attrs.frozen
class Pricing:
    """How a quote was reached: which tariff, which version, how much energy the period held."""

    quote: Quote
    tariff: str
    category: str
    version_id: int | None  # None: the configuration's settings
    settings: dict
    period: str | None
    period_start: datetime | None
    period_energy: Decimal
    at: datetime


# -- settings ------------------------------------------------------------------------------------
def _json_safe(value, where: str = "settings"):
    """Settings as they are stored: Decimal becomes text, floats are refused (not exact)."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"{where}: key {k!r} is not text")
            out[k] = _json_safe(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        raise ValidationError(f"{where}: {value!r} is a float; write numbers as text, e.g. \"0.56\"")
    raise ValidationError(f"{where}: {value!r} ({type(value).__name__}) cannot be stored")


def parse_settings_text(text: str, fmt: str) -> dict:
    """Settings from a TOML or JSON file's text; numbers keep every digit (never floats)."""
    import tomllib

    try:
        if fmt == "toml":
            data = tomllib.loads(text, parse_float=Decimal)
        elif fmt == "json":
            data = json.loads(text, parse_float=Decimal)
        else:
            raise ValidationError(f"settings format must be toml or json, not {fmt}")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"settings are not valid {fmt.upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationError("settings must be a table (TOML) or an object (JSON)")
    return _json_safe(data)


def _tariff(app, name: str) -> Tariff:
    try:
        return app.pm.get_tariff(name)
    except PluginError as exc:
        raise NotFound(str(exc)) from None


def check_settings(app, name: str, settings: Mapping) -> dict:
    """The settings as they would be stored, after the tariff plugin accepted them."""
    tariff = _tariff(app, name)
    safe = _json_safe(settings)
    if tariff.validate is not None:
        try:
            tariff.validate(safe)
        except ConfigError as exc:
            raise ValidationError(str(exc)) from None
    return safe


# -- versions ------------------------------------------------------------------------------------
def version_in_force(uow, tariff_name: str, at: datetime) -> TariffVersionRow | None:
    return uow.session.scalar(
        select(TariffVersionRow).where(TariffVersionRow.tariff == tariff_name,
                                       TariffVersionRow.effective_from <= at)
        .order_by(TariffVersionRow.effective_from.desc()).limit(1))


def in_force(uow, tariff_name: str, at: datetime, config=None) -> dict:
    """Settings of ``tariff_name`` in force at ``at``; before its first version, the configuration's
    ``[tariffs.<name>]`` (``config`` is ``app.config``; without it, no settings)."""
    row = version_in_force(uow, tariff_name, _aware(at))
    if row is not None:
        return dict(row.settings)
    return config.tariff_settings(tariff_name) if config is not None else {}


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValidationError(f"time {t} has no time zone")
    return t.astimezone(UTC)


def _versions(uow, name: str, at: datetime) -> list[TariffVersion]:
    rows = list(uow.session.scalars(select(TariffVersionRow)
                                    .where(TariffVersionRow.tariff == name)
                                    .order_by(TariffVersionRow.effective_from)))
    current = max((r.effective_from for r in rows if r.effective_from <= at), default=None)
    return [TariffVersion(r.id, r.tariff, r.effective_from, dict(r.settings), r.note, r.created_by,
                          r.created_at, "in force" if r.effective_from == current
                          else "past" if r.effective_from < at else "future") for r in rows]


def history(app, op: Operator, tariff_name: str, at: datetime | None = None) -> list[TariffVersion]:
    """Every version of a tariff, oldest first, each marked past / in force / future."""
    op.require(Perm.VIEW)
    _tariff(app, tariff_name)
    with app.uow() as uow:
        return _versions(uow, tariff_name, _aware(at) if at else now())


def list_tariffs(app, op: Operator, at: datetime | None = None) -> list[dict[str, Any]]:
    """Installed tariffs with the version in force and the next one planned."""
    op.require(Perm.VIEW)
    at = _aware(at) if at else now()
    default = app.config.data["tariff"]["default"]
    out = []
    with app.uow() as uow:
        for name, t in sorted(app.pm.tariffs().items()):
            vs = _versions(uow, name, at)
            cur = next((v for v in vs if v.state == "in force"), None)
            nxt = next((v for v in vs if v.state == "future"), None)
            out.append({"name": name, "title": t.title, "period": t.period,
                        "default": name == default, "versions": len(vs),
                        "in_force_version": cur.id if cur else None,
                        "in_force_from": cur.effective_from if cur else None,
                        "next_change": nxt.effective_from if nxt else None})
    return out


def add_version(app, op: Operator, tariff_name: str, settings: Mapping,
                effective_from: datetime | None = None, note: str = "") -> TariffVersion:
    """Store new settings of a tariff from ``effective_from`` (None: now) on.

    Refused when it would start in the past (sales already made were priced by the version then in
    force) or at the same moment as an existing version (versions are never edited)."""
    op.require(Perm.MANAGE_TARIFFS)
    safe = check_settings(app, tariff_name, settings)
    t = now()
    start = t if effective_from is None else _aware(effective_from)
    if start < t:
        raise BusinessRuleError(f"a tariff version cannot start in the past ({start:%Y-%m-%d %H:%M:%S}"
                                " UTC); sales already made keep their prices — choose now or later")
    if len(note) > 2000:
        raise ValidationError("the note is longer than 2000 characters")
    with app.uow() as uow:
        s = uow.session
        if s.scalar(select(TariffVersionRow.id).where(TariffVersionRow.tariff == tariff_name,
                                                      TariffVersionRow.effective_from == start)):
            raise BusinessRuleError(f"tariff {tariff_name} already has a version from {start}; "
                                    "versions are never changed — add one from another time")
        row = TariffVersionRow(tariff=tariff_name, effective_from=start, settings=safe,
                               note=note.strip(), created_by=op.login, created_at=t)
        previous = version_in_force(uow, tariff_name, start)
        s.add(row)
        s.flush()
        from . import audit

        audit.record(uow, op, "tariff.version", f"tariff {tariff_name}",
                     {"version_id": row.id, "effective_from": start, "note": row.note,
                      "before": dict(previous.settings) if previous else None, "after": safe})
        uow.commit()
        return TariffVersion(row.id, row.tariff, row.effective_from, dict(row.settings), row.note,
                             row.created_by, row.created_at,
                             "in force" if start <= now() else "future")


# -- pricing a sale ------------------------------------------------------------------------------
def period_timezone(app) -> ZoneInfo:
    name = app.config.data["tariff"].get("period_timezone") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[tariff] period_timezone {name!r} is not a known time zone") from None


def period_start(period: str, at: datetime, tz: ZoneInfo | None = None) -> datetime:
    """Start (as UTC) of the calendar month or year holding ``at`` in time zone ``tz``."""
    local = _aware(at).astimezone(tz or UTC)
    if period == "month":
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif period == "year":
        start = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        raise ConfigError(f"unknown tariff period {period!r}; use month or year")
    return start.astimezone(UTC)


def _version_in_force(tariff, at):
    """The id of tariff ``tariff``'s version in force at ``at`` (SQL expressions), or NULL."""
    return (select(TariffVersionRow.id)
            .where(TariffVersionRow.tariff == tariff, TariffVersionRow.effective_from <= at)
            .order_by(TariffVersionRow.effective_from.desc()).limit(1).scalar_subquery())


def _energy_since(customer_id, start):
    """The energy customer ``customer_id`` bought in sales made since ``start`` (SQL)."""
    return (select(func.coalesce(func.sum(VendRow.energy), 0))
            .where(VendRow.customer_id == customer_id,
                   VendRow.kind == literal_column("'sale'"),
                   constant_in(VendRow.state, SOLD_STATES),
                   VendRow.created_at >= start)
            .scalar_subquery())


_VERSION_ID = _version_in_force(bindparam("tariff"), bindparam("at")).label("version_id")
_PERIOD_ENERGY = _energy_since(bindparam("customer_id"), bindparam("start")).label("energy")
# One prebuilt statement each: the version in force and, for period tariffs, the period's energy.
_LOOKUP = {False: select(_VERSION_ID), True: select(_VERSION_ID, _PERIOD_ENERGY)}


@attrs.frozen
class Lookup:
    """What price() looks up, read beforehand by a caller's own query (see lookup_columns)."""

    version_id: int | None
    energy: Decimal
    at: datetime
    start: datetime


def lookup_columns(tariff_column, customer_id_column) -> tuple:
    """price()'s look-up as two columns another query can carry (the sale context does, which
    saves a round trip per sale): the version in force of the customer's tariff (the column, or
    bind ``lookup_default``) at bind ``lookup_at``, and the customer's energy bought since bind
    ``lookup_start``. Fill the binds with lookup_params()."""
    name = func.coalesce(func.nullif(tariff_column, ""), bindparam("lookup_default"))
    version = _version_in_force(name, bindparam("lookup_at", type_=UtcDateTime))
    energy = _energy_since(customer_id_column, bindparam("lookup_start", type_=UtcDateTime))
    return version.label("lookup_version_id"), energy.label("lookup_energy")


def lookup_params(app, at: datetime | None = None) -> dict:
    """Binds for lookup_columns: the default tariff, now, and the start of the default tariff's
    period (for a flat default, ``at`` itself: an empty range)."""
    at = _aware(at) if at else now()
    name = app.config.data["tariff"]["default"]
    period = app.tariff(name).period
    start = period_start(period, at, period_timezone(app)) if period else at
    return {"lookup_default": name, "lookup_at": at, "lookup_start": start}


def lookup_from(row, params: dict) -> Lookup:
    """The Lookup carried by ``row`` (a result of a query with lookup_columns and ``params``)."""
    return Lookup(row.lookup_version_id, Decimal(str(row.lookup_energy)), params["lookup_at"],
                  params["lookup_start"])


_RAW: dict = {}  # (dialect name, period?) -> (compiled statement, SQL text, time processor)


def _read_outside(app, stmt, params: dict | None = None, key=None) -> tuple:
    """Run a read outside the caller's transaction.

    On SQLite every transaction of this program begins IMMEDIATE (storage.db), so a second one would
    wait for the caller's own open write transaction; a plain autocommit SELECT on a raw connection
    reads the last committed state (WAL) and takes no lock. PostgreSQL reads on a second connection
    in autocommit mode.
    """
    engine = app.engine
    if engine.dialect.name != "sqlite":  # autocommit: no BEGIN/ROLLBACK round trips
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return tuple(conn.execute(stmt, params or {}).one())
    if key is None:
        sql, args = str(stmt.compile(dialect=engine.dialect,
                                     compile_kwargs={"literal_binds": True})), ()
    else:
        if key not in _RAW:
            compiled = stmt.compile(dialect=engine.dialect)
            _RAW[key] = (compiled, str(compiled), UtcDateTime().bind_processor(engine.dialect))
        compiled, sql, as_text = _RAW[key]
        values = compiled.construct_params(params)
        args = tuple(as_text(values[n]) if isinstance(values[n], datetime) else values[n]
                     for n in compiled.positiontup)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(sql, args)
        row = cur.fetchone()
        cur.close()
    finally:
        raw.close()
    return tuple(row)


_SETTINGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # app -> {version id: settings}


def _version_settings(app, uow, version_id: int) -> dict:
    cache = _SETTINGS.setdefault(app, {})
    if version_id not in cache:
        stmt = select(TariffVersionRow.settings).where(TariffVersionRow.id == version_id)
        value = (uow.session.execute(stmt).scalar_one() if uow is not None
                 else _read_outside(app, stmt)[0])
        cache[version_id] = json.loads(value) if isinstance(value, str) else dict(value)
    return cache[version_id]


def price(app, customer, amount: Decimal, *, uow=None, at: datetime | None = None,
          known: Lookup | None = None) -> Pricing:
    """Price ``amount`` for ``customer`` (a customer row, or a sale-context row with customer_id,
    category and customer_tariff) with the tariff in force at ``at`` (default: now).

    Runs its one query in ``uow`` when given, else outside any transaction (see _read_outside),
    unless ``known`` already holds its answer (then ``at`` is known.at)."""
    if known is not None:
        at = known.at
    at = _aware(at) if at else now()
    name = (getattr(customer, "customer_tariff", None) or getattr(customer, "tariff", None)
            or app.config.data["tariff"]["default"])
    tariff = app.tariff(name)
    customer_id = getattr(customer, "customer_id", None) or getattr(customer, "id", None)
    start = period_start(tariff.period, at, period_timezone(app)) if tariff.period else None
    if known is not None and (start is None or start == known.start):
        row = (known.version_id, known.energy)
    else:
        stmt = _LOOKUP[start is not None]
        params = {"tariff": name, "at": at, "customer_id": customer_id, "start": start}
        row = (tuple(uow.session.connection().execute(stmt, params).one()) if uow is not None
               else _read_outside(app, stmt, params, ("sqlite", start is not None)))
    version_id = row[0]
    energy = Decimal(str(row[1])).quantize(KWH_STEP) if start is not None else Decimal("0.00")
    settings = (_version_settings(app, uow, version_id) if version_id is not None
                else app.config.tariff_settings(name))
    q = tariff.quote(amount, TariffContext(customer.category, settings, energy))
    _check(tariff, q, amount)
    return Pricing(q, name, customer.category, version_id, settings, tariff.period, start, energy,
                   at)


def _check(tariff: Tariff, q: Quote, amount: Decimal) -> None:
    """A plugin's quote is checked before money is taken for it."""
    if q.energy < 0:
        raise BusinessRuleError(f"tariff {tariff.name} returned negative energy; sale refused")
    if q.amount != amount:
        raise BusinessRuleError(f"tariff {tariff.name} priced {q.amount} instead of {amount}; "
                                "sale refused")
    if q.lines and sum((v for _n, v in q.lines), Decimal("0")) != amount:
        raise BusinessRuleError(f"tariff {tariff.name}'s receipt lines do not add up to {amount}; "
                                "sale refused")


def quote_for_customer(app, customer, amount: Decimal, *, uow=None,
                       at: datetime | None = None, known: Lookup | None = None) -> Quote:
    return price(app, customer, amount, uow=uow, at=at, known=known).quote


def explain(app, op: Operator, account_no: str, amount, at: datetime | None = None) -> Pricing:
    """What ``amount`` would buy for a customer now (or at ``at``), and why: for the tariff page
    and ``dbmis tariff quote``. Sales limits are not applied (this is not a sale)."""
    op.require(Perm.VIEW)
    amt = money(amount)
    if amt <= 0:
        raise ValidationError(f"amount must be positive, got {amt}")
    with app.uow() as uow:
        customer = get_customer_row(uow, account_no)
        return price(app, customer, amt, uow=uow, at=at)
