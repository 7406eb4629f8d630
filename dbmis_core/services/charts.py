"""Consumption charts: a customer's monthly trend against the same months last year, and monthly
totals per transformer district or line.

Figures are plain ``matplotlib.figure.Figure`` objects (no pyplot, no global backend): the core
renders them to PNG or SVG bytes for reports with Agg, and the Qt page puts the same figure on a
``FigureCanvasQTAgg`` with the navigation toolbar for hover and zoom.
"""

from __future__ import annotations

import io
from collections import defaultdict

import attrs
from sqlalchemy import func, select

from ..errors import ValidationError
from ..storage.models import CustomerRow, MonthlyConsumptionRow, RegionRow
from .auth import Operator, Perm
from .consumption import PARTIAL, districts_under, monthly

FORMATS = ("png", "svg")


@attrs.frozen
class Trend:
    account_no: str
    labels: tuple[str, ...]            # the last 12 months with data, oldest first
    this_year: tuple[float | None, ...]
    last_year: tuple[float | None, ...]
    purchased: tuple[float, ...]
    partial: tuple[bool, ...]


@attrs.frozen
class AreaTotals:
    level: str
    labels: tuple[str, ...]
    totals: dict[str, tuple[float, ...]]   # area code -> kWh per month


def customer_trend(app, op: Operator, account_no: str, months: int = 12) -> Trend:
    rows = monthly(app, op, account_no)
    by = defaultdict(float)
    known = {}
    bought = defaultdict(float)
    partial = {}
    for r in rows:
        key = (r.year, r.month)
        if r.kwh is not None:
            by[key] += float(r.kwh)
            known[key] = True
        bought[key] += float(r.purchased)
        partial[key] = partial.get(key, False) or r.quality == PARTIAL
    keys = sorted({(r.year, r.month) for r in rows})[-months:]

    def val(k):
        return by[k] if k in known else None

    return Trend(account_no, tuple(f"{y:04d}-{m:02d}" for y, m in keys),
                 tuple(val(k) for k in keys), tuple(val((k[0] - 1, k[1])) for k in keys),
                 tuple(bought[k] for k in keys), tuple(partial.get(k, False) for k in keys))


def area_totals(app, op: Operator, level: str = "district", region: str | None = None
                ) -> AreaTotals:
    """Monthly kWh per district or per line (complete and estimated months)."""
    op.require(Perm.VIEW)
    if level not in ("district", "line"):
        raise ValidationError("level must be district or line")
    with app.uow() as uow:
        s = uow.session
        regions = {r.id: r for r in s.scalars(select(RegionRow))}
        q = (select(CustomerRow.district_id, MonthlyConsumptionRow.year,
                    MonthlyConsumptionRow.month, func.sum(MonthlyConsumptionRow.kwh))
             .join(CustomerRow, CustomerRow.id == MonthlyConsumptionRow.customer_id)
             .where(MonthlyConsumptionRow.kwh.is_not(None),
                    MonthlyConsumptionRow.quality != PARTIAL, CustomerRow.district_id.is_not(None))
             .group_by(CustomerRow.district_id, MonthlyConsumptionRow.year,
                       MonthlyConsumptionRow.month))
        if region:
            q = q.where(CustomerRow.district_id.in_(districts_under(uow, region)))
        data = s.execute(q).all()
    sums: dict[str, dict[tuple[int, int], float]] = defaultdict(lambda: defaultdict(float))
    for did, y, m, kwh in data:
        area = regions[did]
        if level == "line" and area.parent_id in regions:
            area = regions[area.parent_id]
        sums[area.code][(y, m)] += float(kwh)
    keys = sorted({k for v in sums.values() for k in v})
    return AreaTotals(level, tuple(f"{y:04d}-{m:02d}" for y, m in keys),
                      {code: tuple(v.get(k, 0.0) for k in keys)
                       for code, v in sorted(sums.items())})


def trend_figure(trend: Trend, figure=None):
    """Bars for this year's months, a line for the same months last year, dots for purchases."""
    from matplotlib.figure import Figure

    fig = figure or Figure(figsize=(8, 4), dpi=100)
    fig.clear()
    ax = fig.add_subplot(111)
    x = list(range(len(trend.labels)))
    now = [v if v is not None else 0.0 for v in trend.this_year]
    colours = ["#9ecae1" if p else "#3182bd" for p in trend.partial]
    ax.bar(x, now, color=colours, label="kWh used (light: month still running)")
    ly = [(i, v) for i, v in enumerate(trend.last_year) if v is not None]
    if ly:
        ax.plot([i for i, _ in ly], [v for _, v in ly], "o-", color="#e6550d",
                label="same month last year")
    ax.plot(x, trend.purchased, "s", color="#31a354", markersize=4, label="kWh bought")
    ax.set_xticks(x, trend.labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("kWh")
    ax.set_title(f"Monthly consumption of {trend.account_no}")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def area_figure(totals: AreaTotals, figure=None):
    from matplotlib.figure import Figure

    fig = figure or Figure(figsize=(8, 4), dpi=100)
    fig.clear()
    ax = fig.add_subplot(111)
    x = list(range(len(totals.labels)))
    for code, values in totals.totals.items():
        ax.plot(x, values, marker=".", label=code)
    ax.set_xticks(x, totals.labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("kWh")
    ax.set_title(f"Monthly consumption per {totals.level}")
    if totals.totals:
        ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def to_bytes(fig, fmt: str = "png") -> bytes:
    """PNG or SVG bytes of a figure (Agg for PNG; no GUI toolkit involved)."""
    if fmt not in FORMATS:
        raise ValidationError(f"chart format must be one of {', '.join(FORMATS)}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()


def customer_chart(app, op: Operator, account_no: str, fmt: str = "png") -> bytes:
    return to_bytes(trend_figure(customer_trend(app, op, account_no)), fmt)


def area_chart(app, op: Operator, level: str = "district", region: str | None = None,
               fmt: str = "png") -> bytes:
    return to_bytes(area_figure(area_totals(app, op, level, region)), fmt)
