"""Code tables: customer categories, regions / lines / transformer districts, meter models,
manufacturers and payment methods (docs/user-guide/settings.md).

Entries are never deleted, only deactivated, because customers, meters and sales keep referring
to them. The built-in customer categories (domain.CustomerCategory) always exist; added ones come
from ``customer_categories`` and a customer's category is checked against both
(``check_category``).
"""

from __future__ import annotations

import re

import attrs
from sqlalchemy import func, select

from ..domain import LEVEL_PARENT, CreditUnit, CustomerCategory, MeterModel, RegionLevel, customer_category
from ..errors import BusinessRuleError, NotFound, ValidationError
from ..storage.models import (
    CustomerCategoryRow,
    ManufacturerRow,
    MeterModelRow,
    MeterRow,
    PaymentMethodRow,
    RegionRow,
)
from .auth import Operator, Perm

REGION_KINDS = {"region": RegionLevel.REGION, "line": RegionLevel.LINE,
                "district": RegionLevel.DISTRICT}
SIMPLE = {"category": CustomerCategoryRow, "manufacturer": ManufacturerRow,
          "payment": PaymentMethodRow}
KINDS = ("category", "region", "line", "district", "model", "manufacturer", "payment")
LABELS = {"category": "customer category", "region": "region", "line": "line",
          "district": "transformer district", "model": "meter model",
          "manufacturer": "manufacturer", "payment": "payment method"}
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


@attrs.frozen
class CodeEntry:
    kind: str
    code: str
    name: str
    active: bool = True
    parent: str | None = None
    builtin: bool = False
    details: dict = attrs.Factory(dict)


def _kind(kind: str) -> str:
    k = (kind or "").strip().lower()
    if k not in KINDS:
        raise ValidationError(f"unknown code table {kind!r}; tables: {', '.join(KINDS)}")
    return k


def _perm(kind: str) -> Perm:
    return Perm.MANAGE_METERS if kind in ("model", "manufacturer") else Perm.MANAGE_SETTINGS


def _code(kind: str, code: str) -> str:
    c = (code or "").strip()
    if kind == "category":
        return customer_category(c).value
    if not CODE_RE.match(c):
        raise ValidationError(f"{LABELS[kind]} code {code!r} must be 1 to 32 letters, digits, "
                              ". - or _")
    return c


def _name(name: str | None, kind: str) -> str:
    n = (name or "").strip()
    if not n or len(n) > 120:
        raise ValidationError(f"{LABELS[kind]} name must be 1 to 120 characters")
    return n


# -- reading ----------------------------------------------------------------------------------------

def _entry(kind: str, row) -> CodeEntry:
    if kind in REGION_KINDS:
        return CodeEntry(kind, row.code, row.name, bool(row.active),
                         row.parent.code if row.parent else None)
    if kind == "model":
        return CodeEntry(kind, row.code, row.code, True, None, False, {
            "constant": row.constant, "phases": row.phases, "rated_amps": row.rated_amps,
            "credit_unit": CreditUnit(row.credit_unit).name.lower(),
            "manufacturer": row.manufacturer_code})
    details = {"country": row.country} if kind == "manufacturer" else {}
    return CodeEntry(kind, row.code, row.name, bool(row.active), details=details)


def _rows(uow, kind: str):
    s = uow.session
    if kind in REGION_KINDS:
        return s.scalars(select(RegionRow).where(RegionRow.level == REGION_KINDS[kind].value)
                         .order_by(RegionRow.code))
    if kind == "model":
        return s.scalars(select(MeterModelRow).order_by(MeterModelRow.code))
    table = SIMPLE[kind]
    return s.scalars(select(table).order_by(table.code))


def list_entries(app, op: Operator, kind: str, active_only: bool = False) -> list[CodeEntry]:
    op.require(Perm.VIEW)
    kind = _kind(kind)
    with app.uow(durable=False) as uow:
        out = [_entry(kind, r) for r in _rows(uow, kind)]
    if kind == "category":
        added = {e.code for e in out}
        out = [CodeEntry("category", c.value, c.value.capitalize(), True, builtin=True)
               for c in CustomerCategory if c.value not in added] + out
    return [e for e in out if e.active] if active_only else out


def _find(uow, kind: str, code: str):
    s = uow.session
    if kind in REGION_KINDS:
        row = s.scalar(select(RegionRow).where(RegionRow.code == code))
        if row is not None and row.level != REGION_KINDS[kind].value:
            raise ValidationError(f"{code} is a {row.level}, not a {kind}")
    elif kind == "model":
        row = s.scalar(select(MeterModelRow).where(MeterModelRow.code == code))
    else:
        row = s.scalar(select(SIMPLE[kind]).where(SIMPLE[kind].code == code))
    if row is None:
        raise NotFound(f"no {LABELS[kind]} {code!r}")
    return row


def active_categories(uow) -> list[str]:
    """Built-in categories and the active added ones."""
    added = uow.session.execute(select(CustomerCategoryRow.code, CustomerCategoryRow.active)).all()
    off = {c for c, a in added if not a}
    return [c.value for c in CustomerCategory if c.value not in off] + sorted(
        c for c, a in added if a and c not in {x.value for x in CustomerCategory})


def check_category(uow, value):
    """The customer category ``value`` if it is built-in or an active added one."""
    cat = customer_category(value)
    allowed = active_categories(uow)
    if cat.value not in allowed:
        raise ValidationError(f"unknown category {value!r}; categories: "
                              f"{', '.join(allowed)}")
    return cat


def check_manufacturer(uow, code: str | None) -> str | None:
    if not code:
        return None
    row = uow.session.scalar(select(ManufacturerRow).where(ManufacturerRow.code == code.strip()))
    if row is None or not row.active:
        raise ValidationError(f"unknown manufacturer {code!r}")
    return row.code


# -- changing ---------------------------------------------------------------------------------------

def _parent(uow, kind: str, parent_code: str | None) -> RegionRow | None:
    want = LEVEL_PARENT[REGION_KINDS[kind]]
    if want is None:
        if parent_code:
            raise ValidationError("a region has no parent")
        return None
    parent = uow.session.scalar(select(RegionRow).where(RegionRow.code == (parent_code or "")
                                                        .strip()))
    if parent is None or parent.level != want.value:
        raise ValidationError(f"a {LABELS[kind]}'s parent must be a {want.value}, got "
                              f"{parent_code!r}")
    if not parent.active:
        raise BusinessRuleError(f"{want.value} {parent.code} is deactivated")
    return parent


def _model_fields(details: dict) -> dict:
    """Checked model fields from text or typed values (domain.MeterModel's rules)."""
    out = {}
    for key in ("constant", "phases"):
        if details.get(key) not in (None, ""):
            try:
                out[key] = int(str(details[key]).strip())
            except ValueError:
                raise ValidationError(f"{key} must be a whole number, got {details[key]!r}") from None
    if details.get("rated_amps") not in (None, ""):
        out["rated_amps"] = details["rated_amps"]
    if details.get("credit_unit") not in (None, ""):
        cu = str(details["credit_unit"]).strip().lower()
        try:
            out["credit_unit"] = int(CreditUnit[cu.upper()]) if not cu.isdigit() else int(CreditUnit(int(cu)))
        except (KeyError, ValueError):
            raise ValidationError(f"credit unit must be kwh or money, got {cu!r}") from None
    return out


def add(app, op: Operator, kind: str, code: str, name: str | None = None, *,
        parent: str | None = None, **details) -> CodeEntry:
    """Add an entry; ``parent`` for lines (a region) and districts (a line); models take
    constant, phases, rated_amps, credit_unit and manufacturer; manufacturers a country."""
    from . import audit

    kind = _kind(kind)
    op.require(_perm(kind))
    code = _code(kind, code)
    with app.uow() as uow:
        s = uow.session
        try:
            _find(uow, kind, code)
            raise ValidationError(f"{LABELS[kind]} {code} already exists")
        except NotFound:
            pass
        if kind in REGION_KINDS:
            if s.scalar(select(RegionRow).where(RegionRow.code == code)):
                raise ValidationError(f"region code {code} is already used")
            row = RegionRow(code=code, name=_name(name, kind), level=REGION_KINDS[kind].value,
                            parent=_parent(uow, kind, parent), active=True)
        elif kind == "model":
            f = _model_fields(details)
            missing = {"constant", "phases", "rated_amps"} - set(f)
            if missing:
                raise ValidationError(f"a meter model needs {', '.join(sorted(missing))}")
            m = MeterModel(code, f["constant"], f["phases"], f["rated_amps"],
                           f.get("credit_unit", 0))
            row = MeterModelRow(code=m.code, constant=m.constant, phases=m.phases,
                                rated_amps=m.rated_amps, credit_unit=int(m.credit_unit),
                                manufacturer_code=check_manufacturer(uow, details.get("manufacturer")))
        else:
            if kind == "category" and code in {c.value for c in CustomerCategory}:
                raise ValidationError(f"{code} is a built-in customer category")
            row = SIMPLE[kind](code=code, name=_name(name, kind), active=True)
            if kind == "manufacturer":
                row.country = str(details.get("country") or "").strip()[:60]
        s.add(row)
        s.flush()
        entry = _entry(kind, row)
        audit.record(uow, op, "code.add", f"{kind}:{code}", {"after": attrs.asdict(entry)},
                     station=app.config.station_code)
        uow.commit()
    return entry


def change(app, op: Operator, kind: str, code: str, *, name: str | None = None,
           parent: str | None = None, **details) -> CodeEntry:
    """Rename an entry, move a line or district to another parent, or change a model."""
    from . import audit

    kind = _kind(kind)
    op.require(_perm(kind))
    with app.uow() as uow:
        row = _find(uow, kind, _code(kind, code))
        before = _entry(kind, row)
        if kind == "model":
            f = _model_fields(details)
            fixed = {k for k in ("constant", "phases", "credit_unit")
                     if k in f and f[k] != getattr(row, k)}
            if fixed and uow.session.scalar(select(func.count()).select_from(MeterRow)
                                            .where(MeterRow.model_id == row.id)):
                raise BusinessRuleError(f"meters of model {row.code} exist: its "
                                        f"{', '.join(sorted(fixed))} cannot change")
            m = MeterModel(row.code, f.get("constant", row.constant), f.get("phases", row.phases),
                           f.get("rated_amps", row.rated_amps), f.get("credit_unit", row.credit_unit))
            row.constant, row.phases, row.rated_amps = m.constant, m.phases, m.rated_amps
            row.credit_unit = int(m.credit_unit)
            if "manufacturer" in details and details["manufacturer"] is not None:
                row.manufacturer_code = check_manufacturer(uow, details["manufacturer"])
        else:
            if name is not None:
                row.name = _name(name, kind)
            if kind == "manufacturer" and details.get("country") is not None:
                row.country = str(details["country"]).strip()[:60]
            if parent is not None:
                if kind not in REGION_KINDS:
                    raise ValidationError(f"a {LABELS[kind]} has no parent")
                row.parent = _parent(uow, kind, parent)
        uow.session.flush()
        entry = _entry(kind, row)
        if entry != before:
            audit.record(uow, op, "code.change", f"{kind}:{row.code}",
                         {"before": attrs.asdict(before), "after": attrs.asdict(entry)},
                         station=app.config.station_code)
        uow.commit()
    return entry


def set_active(app, op: Operator, kind: str, code: str, active: bool) -> CodeEntry:
    """Deactivate (or activate again) an entry. A region or line with active entries under it
    cannot be deactivated; a built-in category cannot either."""
    from . import audit

    kind = _kind(kind)
    op.require(_perm(kind))
    if kind == "model":
        raise ValidationError("meter models are not deactivated; stop buying meters of the model")
    with app.uow() as uow:
        s = uow.session
        if kind == "category" and _code(kind, code) in {c.value for c in CustomerCategory}:
            raise BusinessRuleError(f"{code} is a built-in customer category")
        row = _find(uow, kind, _code(kind, code))
        before = _entry(kind, row)
        if kind in REGION_KINDS:
            if not active:
                children = s.scalar(select(func.count()).select_from(RegionRow).where(
                    RegionRow.parent_id == row.id, RegionRow.active.is_(True)))
                if children:
                    raise BusinessRuleError(f"{kind} {row.code} still has {children} active "
                                            "entries under it; deactivate or move them first")
            elif row.parent is not None and not row.parent.active:
                raise BusinessRuleError(f"{row.parent.level} {row.parent.code} is deactivated")
        row.active = bool(active)
        s.flush()
        entry = _entry(kind, row)
        if entry != before:
            audit.record(uow, op, "code.change", f"{kind}:{row.code}",
                         {"before": attrs.asdict(before), "after": attrs.asdict(entry)},
                         station=app.config.station_code)
        uow.commit()
    return entry
