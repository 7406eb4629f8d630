"""System parameters kept in the database (docs/decisions/0016-settings-in-the-database.md).

Each parameter has a type, a check and a default. A value set in the database wins; without one
the TOML configuration's value applies (where the parameter has one), then the built-in default.
Utility name/code and the station name live in their own rows (``utilities``, ``stations``) and
are read and written there.

The sale path reads limits through ``sales(app)``: database values are cached per process and
re-read only when the ``settings_version`` counter moved, which is looked at no more often than
every ``REFRESH_SECONDS`` (a change made in this process is seen at once, another station's within
that time). TOML values are parsed on each call (memoised), so a configuration edited at run time
still applies.
"""

from __future__ import annotations

import re
import threading
import time as _time
from collections.abc import Callable
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import attrs
from sqlalchemy import select, update

from ..errors import NotFound, ValidationError
from ..storage.models import SettingRow, SettingsVersionRow, StationRow, UtilityRow
from .auth import Operator, Perm

REFRESH_SECONDS = 2.0


# -- types ------------------------------------------------------------------------------------------

def _decimal(raw, what: str) -> Decimal:
    if isinstance(raw, float):
        raise ValidationError(f"{what}: give a decimal text, not a float")
    try:
        v = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValidationError(f"{what} must be a number, got {raw!r}") from None
    if not v.is_finite():
        raise ValidationError(f"{what} must be a number, got {raw!r}")
    return v


def _amount(raw, what: str) -> Decimal:
    """Money or energy: not negative, at most 2 decimals."""
    v = _decimal(raw, what)
    if v < 0:
        raise ValidationError(f"{what} must not be negative, got {v}")
    if v != v.quantize(Decimal("0.01")):
        raise ValidationError(f"{what} has more than 2 decimals: {v}")
    if v >= Decimal("1e10"):
        raise ValidationError(f"{what} {v} is too large")
    return v.quantize(Decimal("0.01"))


def _positive_money(raw, what: str) -> Decimal:
    v = _amount(raw, what)
    if v <= 0:
        raise ValidationError(f"{what} must be above 0, got {v}")
    return v


def _share(raw, what: str) -> Decimal:
    v = _decimal(raw, what)
    if not Decimal(0) <= v <= Decimal(1):
        raise ValidationError(f"{what} must be from 0 to 1 (0.20 = 20%), got {v}")
    if v != v.quantize(Decimal("0.0001")):
        raise ValidationError(f"{what} has more than 4 decimals: {v}")
    return v


def _bool(raw, what: str) -> bool:
    if isinstance(raw, bool):
        return raw
    v = str(raw).strip().lower()
    if v in ("true", "yes", "on", "1"):
        return True
    if v in ("false", "no", "off", "0"):
        return False
    raise ValidationError(f"{what} must be yes or no, got {raw!r}")


def _whole(lo: int, hi: int):
    def check(raw, what: str) -> int:
        try:
            v = int(str(raw).strip())
        except ValueError:
            raise ValidationError(f"{what} must be a whole number, got {raw!r}") from None
        if not lo <= v <= hi:
            raise ValidationError(f"{what} must be from {lo} to {hi}, got {v}")
        return v
    return check


def _minutes(raw, what: str) -> Decimal:
    v = _decimal(raw if not isinstance(raw, float) else repr(raw), what)
    if not Decimal(0) <= v <= Decimal(1440):
        raise ValidationError(f"{what} must be from 0 to 1440 minutes, got {v}")
    return v


def _time_of_day(raw, what: str) -> str:
    v = str(raw).strip()
    if not re.fullmatch(r"\d{2}:\d{2}", v):
        raise ValidationError(f"{what} must be a time of day like 02:00, got {raw!r}")
    try:
        time.fromisoformat(v)
    except ValueError:
        raise ValidationError(f"{what} must be a time of day like 02:00, got {raw!r}") from None
    return v


def _text(pattern: str, hint: str, upper: bool = False):
    rx = re.compile(pattern)

    def check(raw, what: str) -> str:
        v = str(raw if raw is not None else "").strip()
        if upper:
            v = v.upper()
        if not rx.fullmatch(v):
            raise ValidationError(f"{what} {hint}, got {raw!r}")
        return v
    return check


@attrs.frozen
class Definition:
    name: str
    kind: str                     # text, money, amount, share, bool, whole, time
    check: Callable[[Any, str], Any]
    default: str
    description: str
    config: tuple[str, str] | None = None   # TOML fallback: (section, key)
    stored: str = "settings"      # "settings", or the row it lives in: "utility", "station"


DEFINITIONS: dict[str, Definition] = {d.name: d for d in (
    Definition("utility.name", "text", _text(r".{1,120}", "must be 1 to 120 characters"), "",
               "Utility name printed on receipts and reports", stored="utility"),
    Definition("utility.code", "text", _text(r"[A-Z0-9_-]{1,16}", "must be 1 to 16 letters, "
                                             "digits, - or _", upper=True), "",
               "Utility's short code", stored="utility"),
    Definition("station.name", "text", _text(r".{1,120}", "must be 1 to 120 characters"), "",
               "Name of this sales station", stored="station"),
    Definition("receipt.prefix", "text", _text(r"[A-Z0-9]{0,6}", "must be up to 6 letters or "
                                               "digits", upper=True), "",
               "Prefix for invoice and receipt numbers (not yet used by numbering)"),
    Definition("alarm.alarm1", "amount", _amount, "0", "Default alarm level 1 for set cards"),
    Definition("alarm.alarm2", "amount", _amount, "0",
               "Default alarm level 2 (the lower one) for set cards"),
    Definition("alarm.hoarding_limit", "amount", _amount, "0",
               "Default meter hoarding limit for set cards (0: none)"),
    Definition("alarm.overdraft_limit", "amount", _amount, "0",
               "Default overdraft (emergency credit) for set cards"),
    Definition("sales.min_amount", "money", _positive_money, "1.00", "Smallest purchase",
               ("sales", "min_amount")),
    Definition("sales.max_amount", "money", _positive_money, "5000.00", "Largest purchase",
               ("sales", "max_amount")),
    Definition("sales.hoarding_limit", "amount", _amount, "0",
               "Most credit a meter may hold after a sale (0: no limit)",
               ("sales", "hoarding_limit")),
    Definition("sales.refuse_unloaded", "bool", _bool, "true",
               "Refuse a sale while the previous one is not loaded into the meter",
               ("sales", "refuse_unloaded")),
    Definition("sales.debt_share", "share", _share, "0.20",
               "Share of each purchase that pays off debts (0: no recovery)",
               ("sales", "debt_share")),
    Definition("backup.time", "time", _time_of_day, "02:00", "Time of the daily automatic backup",
               ("backup", "time")),
    Definition("backup.keep_daily", "whole", _whole(1, 3650), "14", "Daily backups kept",
               ("backup", "keep_daily")),
    Definition("security.idle_lock_minutes", "minutes", _minutes, "10",
               "Minutes without input before the workstation locks (0: never)",
               ("security", "idle_lock_minutes")),
)}


@attrs.frozen
class SettingValue:
    name: str
    value: Any
    source: str          # "database", "config" or "default"
    default: Any
    kind: str
    description: str
    updated_by: str | None = None
    updated_at: datetime | None = None


@attrs.frozen
class SalesLimits:
    min_amount: Decimal
    max_amount: Decimal
    hoarding_limit: Decimal
    refuse_unloaded: bool
    debt_share: Decimal


def definition(name: str) -> Definition:
    d = DEFINITIONS.get((name or "").strip().lower())
    if d is None:
        raise NotFound(f"unknown setting {name!r}; settings: {', '.join(DEFINITIONS)}")
    return d


def _text_of(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- cache ------------------------------------------------------------------------------------------

@attrs.define
class _Cache:
    version: int | None = None
    checked: float = 0.0
    values: dict = attrs.Factory(dict)      # name -> typed value set in the database
    sales: tuple | None = None              # (values, configured values, SalesLimits) of sales()
    lock: threading.Lock = attrs.Factory(threading.Lock)


def _cache(app) -> _Cache:
    c = app.__dict__.get("_settings_cache")
    if c is None:
        c = app.__dict__.setdefault("_settings_cache", _Cache())
    return c


def _load(session) -> dict:
    values = {}
    for row in session.scalars(select(SettingRow).where(SettingRow.value.is_not(None))):
        d = DEFINITIONS.get(row.name)
        if d is not None:
            values[row.name] = d.check(row.value, row.name)
    return values


def _db_values(app, uow=None) -> dict:
    """Database values, re-read only when the version counter moved (checked at most every
    REFRESH_SECONDS). Inside a unit of work pass it as ``uow``: the check then runs in that
    transaction, since a second connection would wait on the first's SQLite write lock."""
    c = _cache(app)
    now = _time.monotonic()
    if c.version is not None and now - c.checked < REFRESH_SECONDS:
        return c.values
    with c.lock:
        if c.version is not None and _time.monotonic() - c.checked < REFRESH_SECONDS:
            return c.values
        if uow is not None:
            _refresh(c, uow.session)
        else:
            with app.uow(durable=False) as own:
                _refresh(c, own.session)
        c.checked = _time.monotonic()
        return c.values


def _refresh(c: _Cache, session) -> None:
    version = session.scalar(select(SettingsVersionRow.version)
                             .where(SettingsVersionRow.id == 1)) or 0
    if version != c.version:
        c.values = _load(session)
        c.version = version


def invalidate(app) -> None:
    """Forget the cached values (after a change in this process)."""
    c = _cache(app)
    c.version, c.checked = None, 0.0


@lru_cache(maxsize=64)
def _parsed(name: str, raw: Any) -> Any:
    return DEFINITIONS[name].check(raw, name.replace(".", " ").replace("_", " "))


def _fallback(app, d: Definition) -> tuple[Any, str]:
    if d.config is not None:
        section, key = d.config
        raw = app.config.section(section).get(key)
        if raw is not None and raw != "":
            return _parsed(d.name, raw if not isinstance(raw, float) else str(raw)), "config"
    return _parsed(d.name, d.default), "default"


def value(app, name: str) -> Any:
    """The effective typed value (database, else configuration, else default); no permission
    needed, for the services that apply the parameter."""
    d = definition(name)
    if d.stored != "settings":
        with app.uow(durable=False) as uow:
            return _row_value(uow, app, d)
    db = _db_values(app)
    if d.name in db:
        return db[d.name]
    return _fallback(app, d)[0]


_SALES = ("sales.min_amount", "sales.max_amount", "sales.hoarding_limit", "sales.refuse_unloaded",
          "sales.debt_share")


_SALES_CONFIG = tuple(DEFINITIONS[name].config for name in _SALES)  # (section, key) or None
_NONE: dict = {}


def sales(app, uow=None) -> SalesLimits:
    """Sale limits for the sale path (cheap: cached, see the module docstring); pass the open
    unit of work when there is one. Built again only when the database values or the
    configuration file's values behind them change (a sale asks twice)."""
    db = _db_values(app, uow)
    data = app.config.data
    configured = tuple([data.get(where[0], _NONE).get(where[1]) if where else None
                        for where in _SALES_CONFIG])
    c = _cache(app)
    if c.sales is not None and c.sales[0] is db and c.sales[1] == configured:
        return c.sales[2]

    def pick(name: str):
        return db[name] if name in db else _fallback(app, DEFINITIONS[name])[0]

    limits = SalesLimits(*map(pick, _SALES))
    c.sales = (db, configured, limits)
    return limits


def alarm_defaults(app) -> dict[str, Decimal]:
    """Default alarm levels for set cards: alarm1, alarm2, hoarding_limit, overdraft_limit."""
    return {n.split(".", 1)[1]: value(app, n) for n in
            ("alarm.alarm1", "alarm.alarm2", "alarm.hoarding_limit", "alarm.overdraft_limit")}


# -- rows that live elsewhere ---------------------------------------------------------------------

def _utility(uow) -> UtilityRow:
    row = uow.session.scalar(select(UtilityRow).order_by(UtilityRow.id).limit(1))
    if row is None:
        raise NotFound("no utility is registered; run 'dbmis init'")
    return row


def _station(uow, app) -> StationRow:
    code = app.config.station_code
    row = uow.session.scalar(select(StationRow).where(StationRow.code == code))
    if row is None:
        raise NotFound(f"station {code} is not registered; run 'dbmis init'")
    return row


def _row_value(uow, app, d: Definition) -> str:
    if d.stored == "utility":
        return getattr(_utility(uow), d.name.split(".", 1)[1])
    return _station(uow, app).name


# -- service ----------------------------------------------------------------------------------------

def _describe(app, uow, d: Definition, row: SettingRow | None) -> SettingValue:
    default = _parsed(d.name, d.default) if d.stored == "settings" else None
    if d.stored != "settings":
        return SettingValue(d.name, _row_value(uow, app, d), "database", default, d.kind,
                            d.description)
    if row is not None and row.value is not None:
        return SettingValue(d.name, d.check(row.value, d.name), "database", default, d.kind,
                            d.description, row.updated_by, row.updated_at)
    v, source = _fallback(app, d)
    return SettingValue(d.name, v, source, default, d.kind, d.description,
                        row.updated_by if row else None, row.updated_at if row else None)


def list_settings(app, op: Operator) -> list[SettingValue]:
    op.require(Perm.VIEW)
    with app.uow(durable=False) as uow:
        rows = {r.name: r for r in uow.session.scalars(select(SettingRow))}
        return [_describe(app, uow, d, rows.get(d.name)) for d in DEFINITIONS.values()]


def get(app, op: Operator, name: str) -> SettingValue:
    op.require(Perm.VIEW)
    d = definition(name)
    with app.uow(durable=False) as uow:
        row = uow.session.scalar(select(SettingRow).where(SettingRow.name == d.name))
        return _describe(app, uow, d, row)


def _check_together(app, uow, d: Definition, new) -> None:
    """Rules between parameters, with the others at their effective values."""
    def other(name):
        if name == d.name:
            return new
        row = uow.session.scalar(select(SettingRow).where(SettingRow.name == name))
        if row is not None and row.value is not None:
            return DEFINITIONS[name].check(row.value, name)
        return _fallback(app, DEFINITIONS[name])[0]

    if d.name in ("sales.min_amount", "sales.max_amount"):
        lo, hi = other("sales.min_amount"), other("sales.max_amount")
        if lo > hi:
            raise ValidationError(f"the smallest purchase ({lo}) may not be above the largest "
                                  f"({hi})")
    if d.name.startswith("alarm.") and d.name != "alarm.overdraft_limit":
        a1, a2, hoard = other("alarm.alarm1"), other("alarm.alarm2"), other("alarm.hoarding_limit")
        if a1 and a2 > a1:
            raise ValidationError("alarm level 2 is the lower one: it must not be above alarm "
                                  f"level 1 ({a2} > {a1})")
        if hoard and a1 > hoard:
            raise ValidationError(f"alarm level 1 ({a1}) must not be above the hoarding limit "
                                  f"({hoard})")


def set_value(app, op: Operator, name: str, raw) -> SettingValue:
    """Set a parameter (validated with its type and the rules between parameters)."""
    return _change(app, op, name, raw)


def reset(app, op: Operator, name: str) -> SettingValue:
    """Remove the database value: the configuration's value or the default applies again."""
    return _change(app, op, name, None)


def _change(app, op: Operator, name: str, raw) -> SettingValue:
    from . import audit

    op.require(Perm.MANAGE_SETTINGS)
    d = definition(name)
    if raw is None and d.stored != "settings":
        raise ValidationError(f"{d.name} has no default to go back to; set a value")
    new = None if raw is None else d.check(raw, d.name)
    with app.uow() as uow:
        s = uow.session
        if d.stored != "settings":
            before = _row_value(uow, app, d)
            target = _utility(uow) if d.stored == "utility" else _station(uow, app)
            setattr(target, d.name.split(".", 1)[1], new)
        else:
            if new is not None:
                _check_together(app, uow, d, new)
            row = s.scalar(select(SettingRow).where(SettingRow.name == d.name))
            before = _describe(app, uow, d, row).value
            if row is None:
                row = SettingRow(name=d.name, value=None, updated_by=op.login)
                s.add(row)
            row.value = None if new is None else _text_of(new)
            row.updated_by, row.updated_at = op.login, datetime.now().astimezone()
            s.execute(update(SettingsVersionRow).where(SettingsVersionRow.id == 1)
                      .values(version=SettingsVersionRow.version + 1))
        s.flush()
        after = _describe(app, uow, d, s.scalar(select(SettingRow)
                                                .where(SettingRow.name == d.name)))
        audit.record(uow, op, "setting.change", d.name,
                     {"before": _text_of(before), "after": _text_of(after.value),
                      "source": after.source}, station=app.config.station_code)
        uow.commit()
    invalidate(app)
    return after
