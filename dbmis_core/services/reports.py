"""Running reports and exporting them (table, CSV, XLSX, HTML, PDF, chart PNG).

A report is a plugin record (``ReportSpec``): a data function over one read-only unit of work plus
typed columns. This module owns what every report shares: the filters (region level and code,
month range, station, operator, customer category, account, day), the region roll-up, the month
arithmetic, and the exports, so a report plugin only writes its query. Months are calendar months
in UTC, like every stored time (docs/decisions/0014-reports.md).
"""

from __future__ import annotations

import csv
import io
import weakref
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs
from sqlalchemy import func, select

from ..errors import NotFound, ValidationError
from ..storage.models import RegionRow
from ..types import ReportColumn, ReportSpec
from .auth import Operator, Perm

LEVELS = ("region", "line", "district")
FILTERS = ("level", "region", "month_from", "month_to", "station", "operator", "category",
           "account_no", "day")
NO_REGION = "(none)"
NUMERIC = ("int", "money", "energy", "price", "percent")
CENT = Decimal("0.01")


# -- filters and months --------------------------------------------------------------------------


def parse_month(text: str | None) -> tuple[int, int] | None:
    if text in (None, ""):
        return None
    try:
        y, m = str(text).split("-")
        y, m = int(y), int(m)
        if not (1 <= m <= 12 and 1900 < y < 3000):
            raise ValueError
    except ValueError:
        raise ValidationError(f"month {text!r} must be YYYY-MM") from None
    return y, m


def month_index(y: int, m: int) -> int:
    return y * 12 + m - 1


def from_index(i: int) -> tuple[int, int]:
    return i // 12, i % 12 + 1


def month_label(y: int, m: int) -> str:
    return f"{y:04d}-{m:02d}"


def month_start(y: int, m: int) -> datetime:
    return datetime(y, m, 1, tzinfo=UTC)


def shift(label: str, months: int) -> str:
    y, m = parse_month(label)
    return month_label(*from_index(month_index(y, m) + months))


@attrs.frozen
class Filters:
    """What a clerk can narrow a report by; unknown names are refused."""

    level: str = "district"
    region: str | None = None
    month_from: str | None = None
    month_to: str | None = None
    station: str | None = None
    operator: str | None = None
    category: str | None = None
    account_no: str | None = None
    day: date | None = None
    settings: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Filters:
        unknown = set(values) - set(FILTERS) - {"settings"}
        if unknown:
            raise ValidationError(f"unknown report filter(s) {', '.join(sorted(unknown))}; "
                                  f"filters: {', '.join(FILTERS)}")
        clean = {k: (v if v != "" else None) for k, v in values.items()}
        if clean.get("level") is None:
            clean.pop("level", None)
        f = cls(**clean)
        if f.level not in LEVELS:
            raise ValidationError(f"level must be one of {', '.join(LEVELS)}")
        if isinstance(f.day, str):
            try:
                f = attrs.evolve(f, day=date.fromisoformat(f.day))
            except ValueError:
                raise ValidationError(f"day {f.day!r} must be YYYY-MM-DD") from None
        if f.day is not None and not (f.month_from or f.month_to):
            label = month_label(f.day.year, f.day.month)
            f = attrs.evolve(f, month_from=label, month_to=label)
        first, last = parse_month(f.month_from), parse_month(f.month_to)
        if first is None and last is None:
            today = datetime.now(UTC)
            first = last = (today.year, today.month)
        first, last = first or last, last or first
        if month_index(*first) > month_index(*last):
            raise ValidationError(f"month range {month_label(*first)}..{month_label(*last)} "
                                  "runs backwards")
        if month_index(*last) - month_index(*first) > 120:
            raise ValidationError("a report covers at most ten years")
        return attrs.evolve(f, month_from=month_label(*first), month_to=month_label(*last))

    def months(self) -> list[str]:
        a, b = month_index(*parse_month(self.month_from)), month_index(*parse_month(self.month_to))
        return [month_label(*from_index(i)) for i in range(a, b + 1)]

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC of the month range, or of the day when one is given."""
        if self.day is not None:
            start = datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC)
            from datetime import timedelta
            return start, start + timedelta(days=1)
        a = parse_month(self.month_from)
        b = from_index(month_index(*parse_month(self.month_to)) + 1)
        return month_start(*a), month_start(*b)

    def public(self) -> dict:
        return {k: v for k, v in attrs.asdict(self).items() if k != "settings" and v is not None}


# -- the region hierarchy ------------------------------------------------------------------------


@attrs.frozen
class Unit:
    id: int | None
    code: str
    name: str
    level: str


class Regions:
    """The whole region tree in memory (it is small): roll districts up to any level."""

    def __init__(self, uow) -> None:
        rows = uow.session.execute(select(RegionRow.id, RegionRow.code, RegionRow.name,
                                          RegionRow.level, RegionRow.parent_id)).all()
        self.by_id = {r.id: r for r in rows}
        self.by_code = {r.code: r for r in rows}

    def ancestor(self, region_id: int | None, level: str) -> Unit:
        r = self.by_id.get(region_id)
        while r is not None and r.level != level:
            r = self.by_id.get(r.parent_id)
        if r is None:
            return Unit(None, NO_REGION, "no " + level, level)
        return Unit(r.id, r.code, r.name, r.level)

    def under(self, code: str | None) -> set[int] | None:
        """Ids of the region ``code`` and everything below it; None: no region filter."""
        if not code:
            return None
        top = self.by_code.get(code)
        if top is None:
            raise NotFound(f"no region, line or district with code {code!r}")
        found, frontier = {top.id}, [top.id]
        while frontier:
            kids = [r.id for r in self.by_id.values() if r.parent_id in frontier]
            found.update(kids)
            frontier = kids
        return found

    def unit(self, region_id: int) -> Unit:
        r = self.by_id[region_id]
        return Unit(r.id, r.code, r.name, r.level)


def month_expr(uow, column):
    """'YYYY-MM' of a UTC timestamp column, computed by the database."""
    if uow.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.substr(column, 1, 7)


def day_expr(uow, column):
    if uow.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def ratio(num: Decimal | int | None, den: Decimal | int | None, places: str = "0.0001"
          ) -> Decimal | None:
    if num is None or not den:
        return None
    return (Decimal(num) / Decimal(den)).quantize(Decimal(places))


def dec(value) -> Decimal:
    """A database sum as an exact two-place Decimal (SQLite hands back floats for NUMERIC sums)."""
    if value is None:
        return Decimal("0.00")
    if isinstance(value, float):
        value = Decimal(repr(value))
    return Decimal(value).quantize(CENT)


# -- results ---------------------------------------------------------------------------------


@attrs.frozen
class ChartSpec:
    """A chart of the rows: ``y`` over ``x``, one series per value of ``group`` (if given)."""

    title: str
    x: str
    y: str
    kind: str = attrs.field(default="line", validator=attrs.validators.in_(("line", "bar")))
    group: str | None = None


@attrs.frozen
class ReportData:
    """What a report's data function may return instead of a bare list of rows."""

    rows: list[dict]
    totals: dict | None = None
    charts: tuple[ChartSpec, ...] = attrs.field(default=(), converter=tuple)
    notes: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    context: dict = attrs.field(factory=dict)


@attrs.frozen
class ReportResult:
    name: str
    title: str
    columns: tuple[ReportColumn, ...]
    rows: list[dict]
    totals: dict | None
    charts: tuple[ChartSpec, ...]
    notes: tuple[str, ...]
    filters: dict
    generated_at: datetime
    generated_by: str
    context: dict = attrs.field(factory=dict)
    spec: ReportSpec | None = attrs.field(default=None, eq=False, repr=False)

    def column(self, name: str) -> ReportColumn:
        return next(c for c in self.columns if c.name == name)

    def values(self, name: str) -> list:
        return [r.get(name) for r in self.rows]


_READERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _ReadUnit:
    """A read-only unit of work. On SQLite the application's units begin IMMEDIATE (they take the
    write lock up front); a long report must not hold up the counters, so reports read through
    their own engine with a plain deferred BEGIN (WAL readers never block writers)."""

    def __init__(self, factory) -> None:
        self._factory = factory
        self.session = None

    def __enter__(self):
        self.session = self._factory()
        return self

    def __exit__(self, *exc) -> None:
        self.session.rollback()
        self.session.close()
        self.session = None


def read_uow(app):
    if app.engine.dialect.name != "sqlite":
        return app.uow()
    factory = _READERS.get(app)
    if factory is None:
        from sqlalchemy import create_engine
        from sqlalchemy.orm import sessionmaker

        engine = create_engine(app.config.database_url, connect_args={"timeout": 30})
        factory = _READERS[app] = sessionmaker(engine)
    return _ReadUnit(factory)


def list_reports(app, op: Operator) -> list[ReportSpec]:
    op.require(Perm.VIEW_REPORTS)
    return sorted(app.pm.reports().values(), key=lambda s: s.name)


def run(app, op: Operator, name: str, **filters) -> ReportResult:
    """Run report ``name`` with ``filters`` in one read-only unit of work."""
    op.require(Perm.VIEW_REPORTS)
    spec = app.pm.get_report(name)
    f = Filters.of({**filters, "settings": app.config.section("reports")})
    if spec.filters:
        given = {k for k, v in filters.items() if v not in (None, "")}
        ignored = given - set(spec.filters) - {"month_from", "month_to"}
        if ignored:
            raise ValidationError(f"report {name} does not filter by {', '.join(sorted(ignored))}; "
                                  f"it takes {', '.join(spec.filters)}")
    from . import salessummary

    salessummary.refresh(app)
    with read_uow(app) as uow:
        out = spec.data(uow, **attrs.asdict(f, recurse=False))
    data = out if isinstance(out, ReportData) else ReportData(rows=list(out))
    columns = spec.columns or tuple(ReportColumn(k, k) for k in (data.rows[0] if data.rows else {}))
    return ReportResult(spec.name, spec.title, tuple(columns), data.rows, data.totals, data.charts,
                        data.notes, f.public(), datetime.now(UTC), op.login, data.context, spec)


# -- exports ---------------------------------------------------------------------------------


def display(value, ctype: str) -> str:
    """How a cell reads on screen, in CSV and in HTML."""
    if value is None:
        return ""
    if ctype == "percent":
        return f"{(Decimal(value) * 100).quantize(Decimal('0.01'))}%"
    if ctype in ("money", "energy"):
        return f"{Decimal(value).quantize(CENT):,}"
    if ctype == "price":
        return f"{Decimal(value).quantize(Decimal('0.0001'))}"
    if ctype == "datetime" and isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def to_csv(result: ReportResult) -> str:
    """Plain values (no thousands separators) so spreadsheets read numbers as numbers."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([c.title for c in result.columns])
    for row in _with_totals(result):
        w.writerow([_csv_cell(row.get(c.name), c.type) for c in result.columns])
    return buf.getvalue()


def _csv_cell(value, ctype):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _with_totals(result: ReportResult) -> Iterable[dict]:
    yield from result.rows
    if result.totals:
        yield result.totals


XLSX_FORMATS = {"money": "#,##0.00", "energy": "#,##0.00", "price": "0.0000", "int": "0",
                "percent": "0.00%",
                "date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm"}


def to_xlsx(result: ReportResult) -> bytes:
    """A workbook with typed cells: numbers are numbers with a number format, dates are dates."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = result.name[:31]
    ws.append([result.title])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append(["; ".join(f"{k}={v}" for k, v in result.filters.items())])
    ws.append([c.title for c in result.columns])
    for cell in ws[3]:
        cell.font = Font(bold=True)
    for row in _with_totals(result):
        ws.append([_xlsx_cell(row.get(c.name), c.type) for c in result.columns])
        for cell, col in zip(ws[ws.max_row], result.columns, strict=True):
            if col.type in XLSX_FORMATS:
                cell.number_format = XLSX_FORMATS[col.type]
    if result.totals:
        for cell in ws[ws.max_row]:
            cell.font = Font(bold=True)
    for i, col in enumerate(result.columns, 1):
        ws.column_dimensions[ws.cell(3, i).column_letter].width = max(10, len(col.title) + 2)
    ws.freeze_panes = "A4"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _xlsx_cell(value, ctype):
    if value is None:
        return None
    if ctype in ("money", "energy", "price", "percent") and isinstance(value, Decimal):
        return value
    if ctype == "datetime" and isinstance(value, datetime):
        return value.replace(tzinfo=None)  # Excel has no zones; stored times are UTC
    if ctype == "date" and isinstance(value, datetime):
        return value.date()
    return value


def chart_png(result: ReportResult, chart: ChartSpec, dpi: int = 90) -> bytes:
    """A chart of the report's rows as PNG (matplotlib Agg, no GUI)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.2), dpi=dpi)
    FigureCanvasAgg(fig)
    draw_chart(fig, result, chart)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def draw_chart(fig, result: ReportResult, chart: ChartSpec) -> None:
    """Draw ``chart`` onto a matplotlib figure (the Qt page passes its own canvas' figure)."""
    fig.clear()
    ax = fig.add_subplot(111)
    series: dict[str, dict[str, float]] = {}
    xs: list[str] = []
    for row in result.rows:
        x = str(row.get(chart.x))
        if x not in xs:
            xs.append(x)
        key = str(row.get(chart.group)) if chart.group else result.column(chart.y).title
        v = row.get(chart.y)
        series.setdefault(key, {})[x] = float(v) if v is not None else float("nan")
    xs.sort()
    if chart.kind == "bar":
        width = 0.8 / max(1, len(series))
        for n, (name, vals) in enumerate(series.items()):
            ax.bar([i + n * width for i in range(len(xs))], [vals.get(x, 0.0) for x in xs],
                   width=width, label=name)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(xs))], xs, rotation=30,
                      fontsize=7)
    else:
        for name, vals in series.items():
            ax.plot(xs, [vals.get(x, float("nan")) for x in xs], marker="o", label=name)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    ax.set_title(chart.title, fontsize=10)
    ax.set_ylabel(result.column(chart.y).title, fontsize=8)
    ax.grid(alpha=0.3)
    if len(series) > 1 and len(series) <= 12:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()


def to_html(result: ReportResult, charts: bool = True) -> str:
    from .. import documents
    import base64

    images = []
    if charts:
        for ch in result.charts:
            if result.rows:
                png = chart_png(result, ch)
                images.append({"title": ch.title,
                               "src": "data:image/png;base64," + base64.b64encode(png).decode()})
    spec = result.spec
    template = (spec.template if spec and spec.template else "report.html.j2")
    package = (spec.package if spec and spec.package else "dbmis_core")
    cells = [[display(r.get(c.name), c.type) for c in result.columns] for r in result.rows]
    totals = ([display(result.totals.get(c.name), c.type) for c in result.columns]
              if result.totals else None)
    return documents.render(template, package=package, r=result, cells=cells, totals=totals,
                            images=images, numeric={c.name for c in result.columns
                                                    if c.type in NUMERIC})


def to_pdf(result: ReportResult) -> bytes:
    from .. import documents

    return documents.html_to_pdf(to_html(result), title=result.title)


def export(result: ReportResult, fmt: str) -> bytes:
    """Bytes of ``result`` as csv, xlsx, html or pdf."""
    if fmt == "csv":
        return to_csv(result).encode("utf-8")
    if fmt == "xlsx":
        return to_xlsx(result)
    if fmt == "html":
        return to_html(result).encode("utf-8")
    if fmt == "pdf":
        return to_pdf(result)
    raise ValidationError("export format must be csv, xlsx, html or pdf")


def table_text(result: ReportResult) -> str:
    """A fixed-width text table for the command line."""
    head = [c.title for c in result.columns]
    body = [[display(r.get(c.name), c.type) for c in result.columns] for r in _with_totals(result)]
    widths = [max([len(h)] + [len(row[i]) for row in body]) for i, h in enumerate(head)]
    right = [c.type in NUMERIC for c in result.columns]

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    out = [result.title, line(head), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in body[:len(result.rows)]]
    if result.totals:
        out += ["  ".join("=" * w for w in widths), line(body[-1])]
    out += list(result.notes)
    return "\n".join(out)
