"""Master meter readings: the energy supplied into a line or transformer district in a month.

Entered one by one or imported from CSV (``code,month,supplied[,note]``, month as YYYY-MM). An
import is all or nothing: every line is checked first, and one bad line names its line number
and changes nothing. Entering a month again replaces that month's reading (a corrected reading).
Writing needs ``manage_meters`` (the people who read master meters); the line-loss report reads
them (plugins/dbmis_reports).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation

import attrs
from sqlalchemy import select

from ..errors import NotFound, ValidationError
from ..storage.models import MasterMeterReadingRow, RegionRow
from .auth import Operator, Perm
from .reports import month_index, month_label, parse_month

CENT = Decimal("0.01")


@attrs.frozen
class Reading:
    code: str
    level: str
    month: str
    supplied: Decimal
    source: str
    entered_by: str
    note: str


def _supplied(value) -> Decimal:
    if isinstance(value, float):
        raise ValidationError("supplied energy must be given as text or Decimal, not float")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError(f"supplied energy {value!r} is not a number") from None
    if not d.is_finite() or d < 0:
        raise ValidationError("supplied energy must be zero or more kWh")
    if d != d.quantize(CENT):
        raise ValidationError("supplied energy has at most two decimals")
    return d.quantize(CENT)


def _region(uow, code: str) -> RegionRow:
    row = uow.session.scalar(select(RegionRow).where(RegionRow.code == code))
    if row is None:
        raise NotFound(f"no line or district with code {code!r}")
    if row.level not in ("line", "district"):
        raise ValidationError(f"{code} is a {row.level}; master meters are read per line or "
                              "transformer district")
    return row


def _put(uow, op: Operator, code: str, month: str, supplied, note: str, source: str) -> Reading:
    region = _region(uow, code.strip())
    y, m = parse_month(month.strip())
    amount = _supplied(supplied)
    s = uow.session
    row = s.scalar(select(MasterMeterReadingRow).where(
        MasterMeterReadingRow.region_id == region.id, MasterMeterReadingRow.year == y,
        MasterMeterReadingRow.month == m))
    if row is None:
        row = MasterMeterReadingRow(region_id=region.id, year=y, month=m)
        s.add(row)
    row.supplied, row.source, row.entered_by, row.note = amount, source, op.login, note or ""
    s.flush()
    return Reading(region.code, region.level, month_label(y, m), amount, source, op.login,
                   row.note)


def enter(app, op: Operator, code: str, month: str, supplied, note: str = "") -> Reading:
    """Record (or correct) the master meter reading of line/district ``code`` for ``month``."""
    op.require(Perm.MANAGE_METERS)
    with app.uow() as uow:
        r = _put(uow, op, code, month, supplied, note, "entered")
        uow.commit()
        return r


def import_csv(app, op: Operator, text: str) -> list[Reading]:
    """Import ``code,month,supplied[,note]`` lines (a header line is allowed); all or nothing."""
    op.require(Perm.MANAGE_METERS)
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and rows[0][0].strip().lower() == "code":
        rows = rows[1:]
        first = 2
    else:
        first = 1
    if not rows:
        raise ValidationError("the file holds no readings")
    out = []
    with app.uow() as uow:
        seen = set()
        for n, r in enumerate(rows, first):
            if len(r) < 3:
                raise ValidationError(f"line {n}: expected code,month,supplied[,note]")
            key = (r[0].strip(), r[1].strip())
            if key in seen:
                raise ValidationError(f"line {n}: {key[0]} {key[1]} appears twice")
            seen.add(key)
            try:
                out.append(_put(uow, op, r[0], r[1], r[2], r[3].strip() if len(r) > 3 else "",
                                "import"))
            except (ValidationError, NotFound) as exc:
                raise type(exc)(f"line {n}: {exc}") from None
        uow.commit()
    return out


def readings(app, op: Operator, month_from: str | None = None, month_to: str | None = None,
             code: str | None = None) -> list[Reading]:
    op.require(Perm.VIEW)
    with app.uow() as uow:
        q = (select(MasterMeterReadingRow, RegionRow)
             .join(RegionRow, RegionRow.id == MasterMeterReadingRow.region_id))
        if code:
            q = q.where(RegionRow.code == code)
        out = []
        lo = month_index(*parse_month(month_from)) if month_from else None
        hi = month_index(*parse_month(month_to)) if month_to else None
        for row, region in uow.session.execute(q):
            i = row.year * 12 + row.month - 1
            if (lo is not None and i < lo) or (hi is not None and i > hi):
                continue
            out.append(Reading(region.code, region.level, month_label(row.year, row.month),
                               row.supplied, row.source, row.entered_by, row.note))
        return sorted(out, key=lambda r: (r.month, r.code))
