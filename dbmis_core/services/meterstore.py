"""The meter store: meters by status, status changes with history, batch import.

Statuses (domain.MeterStatus): in_store, installed, removed, under_test, faulty, scrapped.
``installed`` is reached and left only through installation, meter replacement and account
closure (registry, customers, applications), which keep the customer's records straight; the
other moves are made here and must follow ``TRANSITIONS``. Every move is a ``meter_events`` row.

An import checks every row first and writes nothing when any row is wrong, returning the rows,
columns and reasons (docs/user-guide/settings.md).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import attrs
from sqlalchemy import select

from ..domain import METER_RE, MeterStatus
from ..errors import BusinessRuleError, ValidationError
from ..storage.models import CustomerRow, MeterEventRow, MeterModelRow, MeterRow
from .auth import Operator, Perm
from .registry import get_meter_row, log_meter_event, set_meter_status

S = MeterStatus
TRANSITIONS: dict[MeterStatus, frozenset[MeterStatus]] = {
    S.IN_STORE: frozenset({S.UNDER_TEST, S.FAULTY, S.SCRAPPED}),
    S.REMOVED: frozenset({S.IN_STORE, S.UNDER_TEST, S.FAULTY, S.SCRAPPED}),
    S.UNDER_TEST: frozenset({S.IN_STORE, S.FAULTY, S.SCRAPPED}),
    S.FAULTY: frozenset({S.UNDER_TEST, S.SCRAPPED}),
    S.INSTALLED: frozenset(),  # only by replacement or closure
    S.SCRAPPED: frozenset(),   # final
}
COLUMNS = {"meter_no": ("meter_no", "meter", "meter number", "factory number", "meter_number"),
           "model": ("model", "model code", "model_code", "meter model"),
           "note": ("note", "notes", "remark")}
MAX_ROWS = 100_000


@attrs.frozen
class StoreMeter:
    meter_no: str
    model: str
    manufacturer: str | None
    status: str
    account_no: str | None


@attrs.frozen
class MeterEvent:
    at: datetime
    from_status: str | None
    to_status: str
    kind: str
    operator: str
    note: str


@attrs.frozen
class RowError:
    row: int          # as the spreadsheet numbers it: the header is row 1
    column: str
    value: str
    reason: str


@attrs.frozen
class ImportReport:
    file: str
    rows: int                       # data rows read (blank rows skipped)
    errors: tuple[RowError, ...]
    added: tuple[str, ...]          # meter numbers written (empty on errors or a dry run)
    dry_run: bool

    @property
    def ok(self) -> bool:
        return not self.errors


def _status(value) -> MeterStatus:
    try:
        return MeterStatus(str(value).strip().lower().replace("-", "_").replace(" ", "_"))
    except ValueError:
        raise ValidationError(f"unknown meter status {value!r}; statuses: "
                              f"{', '.join(s.value for s in MeterStatus)}") from None


def list_meters(app, op: Operator, status: str | None = None, text: str = "",
                limit: int = 1000) -> list[StoreMeter]:
    op.require(Perm.VIEW)
    q = (select(MeterRow.meter_no, MeterModelRow.code, MeterModelRow.manufacturer_code,
                MeterRow.status, CustomerRow.account_no)
         .join(MeterModelRow, MeterRow.model_id == MeterModelRow.id)
         .outerjoin(CustomerRow, MeterRow.customer_id == CustomerRow.id)
         .order_by(MeterRow.meter_no).limit(limit))
    if status:
        q = q.where(MeterRow.status == _status(status).value)
    if text and text.strip():
        q = q.where(MeterRow.meter_no.like(f"{text.strip()}%"))
    with app.uow(durable=False) as uow:
        return [StoreMeter(*r) for r in uow.session.execute(q)]


def history(app, op: Operator, meter_no: str) -> list[MeterEvent]:
    op.require(Perm.VIEW)
    with app.uow(durable=False) as uow:
        meter = get_meter_row(uow, meter_no)
        rows = uow.session.scalars(select(MeterEventRow).where(MeterEventRow.meter_id == meter.id)
                                   .order_by(MeterEventRow.at, MeterEventRow.id))
        return [MeterEvent(r.at, r.from_status, r.to_status, r.kind, r.operator, r.note)
                for r in rows]


def change_status(app, op: Operator, meter_no: str, status, note: str = "") -> MeterEvent:
    """Move a meter in the store (e.g. under test, faulty, scrapped, back in the store)."""
    from . import audit

    op.require(Perm.MANAGE_METERS)
    to = _status(status)
    note = (note or "").strip()
    with app.uow() as uow:
        meter = get_meter_row(uow, meter_no)
        before = MeterStatus(meter.status)
        if to == before:
            raise ValidationError(f"meter {meter.meter_no} is already {before.value}")
        if to not in TRANSITIONS[before]:
            if before == S.INSTALLED:
                raise BusinessRuleError(f"meter {meter.meter_no} is installed: replace the "
                                        "customer's meter or close the account to remove it")
            if to == S.INSTALLED:
                raise BusinessRuleError("a meter is installed at a customer (dbmis meter install "
                                        "or an application), not by a status change")
            allowed = ", ".join(sorted(s.value for s in TRANSITIONS[before])) or "none (final)"
            raise BusinessRuleError(f"meter {meter.meter_no} cannot go from {before.value} to "
                                    f"{to.value}; from {before.value}: {allowed}")
        set_meter_status(uow, meter, to, op.login, "status", note)
        uow.session.flush()
        audit.record(uow, op, "meter.status", meter.meter_no,
                     {"before": before.value, "after": to.value, "note": note},
                     station=app.config.station_code)
        uow.commit()
    return MeterEvent(datetime.now().astimezone(), before.value, to.value, "status", op.login, note)


# -- import -----------------------------------------------------------------------------------------

def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _read_rows(path: Path, data: bytes | None = None) -> list[list[str]]:
    """All rows as text (header first) from a .csv or .xlsx file."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(data) if data is not None else path, read_only=True,
                               data_only=True)
        except Exception as exc:  # openpyxl raises several kinds for a broken file
            raise ValidationError(f"{path.name} is not a readable XLSX workbook: {exc}") from None
        try:
            ws = wb.worksheets[0]
            return [[_cell(v) for v in row] for row in ws.iter_rows(values_only=True)]
        finally:
            wb.close()
    if suffix in (".csv", ".txt"):
        raw = data if data is not None else path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError(f"{path.name} is not UTF-8 text") from None
        first = text.splitlines()[0] if text else ""
        delimiter = ";" if first.count(";") > first.count(",") else ","
        return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text),
                                                               delimiter=delimiter)]
    raise ValidationError(f"import takes a .csv or .xlsx file, not {path.name}")


def check_import(uow, rows: list[list[str]]) -> tuple[list[tuple[int, str, str, str]], list[RowError], int]:
    """(good rows as (row number, meter_no, model, note), errors, data rows) for ``rows``."""
    errors: list[RowError] = []
    if not rows:
        return [], [RowError(1, "", "", "the file is empty")], 0
    header = [h.strip().lower() for h in rows[0]]
    where: dict[str, int] = {}
    for key, names in COLUMNS.items():
        for i, h in enumerate(header):
            if h in names:
                where[key] = i
                break
    for key in ("meter_no", "model"):
        if key not in where:
            errors.append(RowError(1, key, "", f"missing column {key!r} in the header row "
                                   f"(found: {', '.join(h for h in header if h) or 'nothing'})"))
    if errors:
        return [], errors, 0
    data = [(n, r) for n, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r)]
    if len(data) > MAX_ROWS:
        return [], [RowError(1, "", "", f"more than {MAX_ROWS} rows; split the file")], len(data)

    def col(r, key):
        i = where.get(key)
        return r[i].strip() if i is not None and i < len(r) else ""

    s = uow.session
    models = {c for c in s.scalars(select(MeterModelRow.code))}
    numbers = [col(r, "meter_no") for _, r in data]
    registered: set[str] = set()
    wanted = sorted({n for n in numbers if METER_RE.match(n)})
    for i in range(0, len(wanted), 500):
        registered |= set(s.scalars(select(MeterRow.meter_no)
                                    .where(MeterRow.meter_no.in_(wanted[i:i + 500]))))
    first_seen: dict[str, int] = {}
    good = []
    for n, r in data:
        meter_no, model = col(r, "meter_no"), col(r, "model")
        bad = False
        if not METER_RE.match(meter_no):
            errors.append(RowError(n, "meter_no", meter_no,
                                   "bad meter number format: 6 to 12 digits"))
            bad = True
        elif meter_no in first_seen:
            errors.append(RowError(n, "meter_no", meter_no,
                                   f"duplicate in the file (first on row {first_seen[meter_no]})"))
            bad = True
        elif meter_no in registered:
            errors.append(RowError(n, "meter_no", meter_no, "already registered"))
            bad = True
        else:
            first_seen[meter_no] = n
        if not model:
            errors.append(RowError(n, "model", model, "meter model missing"))
            bad = True
        elif model not in models:
            errors.append(RowError(n, "model", model, "unknown meter model"))
            bad = True
        if not bad:
            good.append((n, meter_no, model, col(r, "note")[:255]))
    return good, errors, len(data)


def import_meters(app, op: Operator, path: str | Path, dry_run: bool = False,
                  data: bytes | None = None) -> ImportReport:
    """Add the meters listed in a CSV or XLSX file (columns meter_no, model, optional note) to
    the store, all or nothing: any wrong row and nothing is written."""
    from . import audit

    op.require(Perm.MANAGE_METERS)
    path = Path(path)
    rows = _read_rows(path, data)
    with app.uow() as uow:
        good, errors, count = check_import(uow, rows)
        if errors or dry_run or not good:
            return ImportReport(path.name, count, tuple(errors), (), dry_run)
        s = uow.session
        models = {m.code: m for m in s.scalars(select(MeterModelRow))}
        meters = [MeterRow(meter_no=no, model=models[model], status=S.IN_STORE.value)
                  for _, no, model, _ in good]
        s.add_all(meters)
        s.flush()
        for (n, _, _, note), meter in zip(good, meters, strict=True):
            log_meter_event(uow, meter, None, op.login, "import",
                            f"{path.name} row {n}" + (f": {note}" if note else ""))
        added = tuple(m.meter_no for m in meters)
        audit.record(uow, op, "meter.import", path.name,
                     {"count": len(added), "after": {"status": S.IN_STORE.value},
                      "meters": list(added) if len(added) <= 1000 else
                      [added[0], "...", added[-1]]},
                     station=app.config.station_code)
        uow.commit()
    return ImportReport(path.name, count, (), added, False)
