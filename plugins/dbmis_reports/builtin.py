"""The built-in reports: one data function per report over a read-only unit of work.

What counts (docs/decisions/0014-reports.md): a sale counts when it is ``completed`` and of kind
``sale`` (failed and reversed sales never count; make-up credit moved from a replaced meter is not
a sale), in the UTC month of ``completed_at``. Consumption is the derived ``monthly_consumption``
table (``dbmis consumption compute``); a customer belongs to the district on its record.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import attrs
from sqlalchemy import func, or_, select

from dbmis_core.errors import NotFound, ValidationError
from dbmis_core.services.reports import (
    ChartSpec,
    Filters,
    Regions,
    ReportData,
    day_expr,
    dec,
    from_index,
    month_expr,
    month_index,
    month_label,
    month_start,
    parse_month,
    ratio,
    shift,
)
from dbmis_core.storage.models import (
    CardRow,
    CashEntryRow,
    CustomerRow,
    InspectionNoticeRow,
    MasterMeterReadingRow,
    MeterReturnRow,
    MonthlyConsumptionRow,
    ReissueRow,
    ReversalRow,
    SalesSummaryRow,
    ServiceCardRow,
    VendRow,
)
from dbmis_core.types import ReportColumn as C

SCOPE = ("level", "region", "month_from", "month_to", "station", "operator", "category")


def _unit_cols(level_title: str = "Area") -> list[C]:
    return [C("unit", level_title), C("unit_name", "Name")]


def _sale_filter(f: Filters, regions: Regions, start, end) -> list:
    cond = [VendRow.state == "completed", VendRow.kind == "sale",
            VendRow.completed_at >= start, VendRow.completed_at < end]
    if f.station:
        cond.append(VendRow.station == f.station)
    if f.operator:
        cond.append(VendRow.operator == f.operator)
    return cond


def _customer_filter(f: Filters, regions: Regions) -> list:
    cond = []
    if f.category:
        cond.append(CustomerRow.category == f.category)
    ids = regions.under(f.region)
    if ids is not None:
        cond.append(CustomerRow.district_id.in_(ids))
    return cond


def sales_by_district(uow, f: Filters, regions: Regions, start=None, end=None):
    """{(district_id, 'YYYY-MM'): [sales, customers, amount, energy, debt]} for the scope.

    The one query that runs over every sale, grouped in the database; everything above the
    district is rolled up in Python over the (small) region tree."""
    if start is None and f.day is None and not f.station and not f.operator:
        return _summary_by_district(uow, f, regions)
    if start is None:
        start, end = f.bounds()
    month = month_expr(uow, VendRow.completed_at)
    q = (select(CustomerRow.district_id, month, func.count(),
                func.count(VendRow.customer_id.distinct()), func.sum(VendRow.amount),
                func.sum(VendRow.energy), func.sum(VendRow.debt_recovered))
         .select_from(VendRow).join(CustomerRow, CustomerRow.id == VendRow.customer_id)
         .where(*_sale_filter(f, regions, start, end), *_customer_filter(f, regions))
         .group_by(CustomerRow.district_id, month))
    return {(d, m): [n, c, dec(a), dec(e), dec(x)]
            for d, m, n, c, a, e, x in uow.session.execute(q)}


def _summary_by_district(uow, f: Filters, regions: Regions) -> dict:
    """The same figures from the sales summary (dbmis_core/services/salessummary.py)."""
    months = f.months()
    lo, hi = month_index(*parse_month(months[0])), month_index(*parse_month(months[-1]))
    t = SalesSummaryRow
    mi = t.year * 12 + t.month - 1
    cond = [mi >= lo, mi <= hi]
    if f.category:
        cond.append(t.category == f.category)
    scope = regions.under(f.region)
    if scope is not None:
        cond.append(t.district_id.in_(scope))
    q = (select(t.district_id, t.year, t.month, func.sum(t.sales), func.sum(t.customers),
                func.sum(t.amount), func.sum(t.energy), func.sum(t.debt_recovered))
         .where(*cond).group_by(t.district_id, t.year, t.month))
    out = {}
    for d, y, m, n, c, a, e, x in uow.session.execute(q):
        if n:
            out[(d or None, month_label(y, m))] = [int(n), int(c), dec(a), dec(e), dec(x)]
    return out


def _roll(regions: Regions, level: str, per_district: dict) -> dict:
    """Sum district figures up to ``level``: {(unit, month): [...]}."""
    out: dict = {}
    for (district, month), vals in per_district.items():
        unit = regions.ancestor(district, level)
        key = (unit, month)
        if key in out:
            out[key] = [a + b for a, b in zip(out[key], vals, strict=True)]
        else:
            out[key] = list(vals)
    return out


def _unit_row(unit) -> dict:
    return {"unit": unit.code, "unit_name": unit.name}


def _sorted(rows: list[dict], *keys) -> list[dict]:
    return sorted(rows, key=lambda r: tuple((r[k] is None, r[k]) for k in keys))


# -- daily sales journal ---------------------------------------------------------------------


def daily_sales(uow, **filters) -> ReportData:
    f = Filters.of(filters)
    regions = Regions(uow)
    start, end = f.bounds()
    day = day_expr(uow, VendRow.completed_at)
    q = (select(day, VendRow.station, VendRow.operator, func.count(), func.sum(VendRow.amount),
                func.sum(VendRow.energy), func.sum(VendRow.debt_recovered))
         .select_from(VendRow).join(CustomerRow, CustomerRow.id == VendRow.customer_id)
         .where(*_sale_filter(f, regions, start, end), *_customer_filter(f, regions))
         .group_by(day, VendRow.station, VendRow.operator))
    rows: dict = {}
    for d, st, opr, n, a, e, x in uow.session.execute(q):
        rows[(d, st, opr)] = {"day": _date(d), "station": st, "operator": opr, "sales": n,
                              "amount": dec(a), "energy": dec(e), "debt_recovered": dec(x),
                              "cash_other": dec(0)}
    cday = day_expr(uow, CashEntryRow.created_at)
    cond = [CashEntryRow.created_at >= start, CashEntryRow.created_at < end,
            CashEntryRow.kind != "refund"]
    if f.station:
        cond.append(CashEntryRow.station == f.station)
    if f.operator:
        cond.append(CashEntryRow.operator == f.operator)
    cq = (select(cday, CashEntryRow.station, CashEntryRow.operator, func.sum(CashEntryRow.amount))
          .where(*cond).group_by(cday, CashEntryRow.station, CashEntryRow.operator))
    if f.category or f.region:
        cq = cq.join(CustomerRow, CustomerRow.id == CashEntryRow.customer_id).where(
            *_customer_filter(f, regions))
    for d, st, opr, a in uow.session.execute(cq):
        row = rows.setdefault((d, st, opr), {
            "day": _date(d), "station": st, "operator": opr, "sales": 0, "amount": dec(0),
            "energy": dec(0), "debt_recovered": dec(0), "cash_other": dec(0)})
        row["cash_other"] = dec(a)
    out = _sorted(list(rows.values()), "day", "station", "operator")
    for r in out:
        r["total"] = r["amount"] + r["cash_other"]
    totals = {"day": None, "station": "Total", "operator": ""}
    for k in ("sales", "amount", "energy", "debt_recovered", "cash_other", "total"):
        totals[k] = sum((r[k] for r in out), 0 if k == "sales" else Decimal("0.00"))
    return ReportData(out, totals, notes=(
        "Completed sales only; failed and reversed sales are left out, and so are the refunds "
        "of reversed sales. Cash entries: card fees, debt payments, closure refunds, transfers.",))


def _date(text):
    from datetime import date

    return date.fromisoformat(text) if isinstance(text, str) else text


DAILY_COLUMNS = [C("day", "Day", "date"), C("station", "Station"), C("operator", "Operator"),
                 C("sales", "Sales", "int"), C("amount", "Sales amount", "money"),
                 C("energy", "Energy kWh", "energy"),
                 C("debt_recovered", "Debt recovered", "money"),
                 C("cash_other", "Other cash", "money"), C("total", "Total cash", "money")]


# -- monthly sales ---------------------------------------------------------------------------


def monthly_sales(uow, **filters) -> ReportData:
    f = Filters.of(filters)
    regions = Regions(uow)
    rolled = _roll(regions, f.level, sales_by_district(uow, f, regions))
    rows = []
    for (unit, month), (n, c, a, e, x) in rolled.items():
        rows.append({"month": month, **_unit_row(unit), "sales": n, "customers": c,
                     "amount": a, "energy": e, "debt_recovered": x,
                     "avg_price": ratio(a, e), "avg_purchase": ratio(a, n, "0.01")})
    rows = _sorted(rows, "month", "unit")
    totals = _sum_totals(rows, ("sales", "customers", "amount", "energy", "debt_recovered"))
    totals.update({"month": "Total", "avg_price": ratio(totals["amount"], totals["energy"]),
                   "avg_purchase": ratio(totals["amount"], totals["sales"], "0.01")})
    charts = [ChartSpec(f"Sales amount per {f.level}", "month", "amount",
                        "line" if len(f.months()) > 1 else "bar", group="unit")]
    return ReportData(rows, totals, charts)


def _sum_totals(rows, keys) -> dict:
    t = {}
    for k in keys:
        vals = [r[k] for r in rows if r.get(k) is not None]
        t[k] = sum(vals, Decimal("0.00") if vals and isinstance(vals[0], Decimal) else 0)
    return t


MONTHLY_COLUMNS = [C("month", "Month"), *_unit_cols(), C("sales", "Sales", "int"),
                   C("customers", "Customers", "int"), C("amount", "Amount", "money"),
                   C("energy", "Energy kWh", "energy"),
                   C("debt_recovered", "Debt recovered", "money"),
                   C("avg_price", "Avg price/kWh", "price"),
                   C("avg_purchase", "Avg purchase", "money")]


# -- monthly consumption ---------------------------------------------------------------------


def consumption_by_district(uow, f: Filters, regions: Regions, months: list[str]) -> dict:
    """{(district_id, 'YYYY-MM'): [customers, kwh]} from monthly_consumption (known months)."""
    first, last = parse_month(months[0]), parse_month(months[-1])
    mi = MonthlyConsumptionRow.year * 12 + MonthlyConsumptionRow.month - 1
    q = (select(CustomerRow.district_id, MonthlyConsumptionRow.year, MonthlyConsumptionRow.month,
                func.count(MonthlyConsumptionRow.customer_id.distinct()),
                func.sum(MonthlyConsumptionRow.kwh))
         .select_from(MonthlyConsumptionRow)
         .join(CustomerRow, CustomerRow.id == MonthlyConsumptionRow.customer_id)
         .where(MonthlyConsumptionRow.kwh.is_not(None),
                mi >= month_index(*first), mi <= month_index(*last),
                *_customer_filter(f, regions))
         .group_by(CustomerRow.district_id, MonthlyConsumptionRow.year,
                   MonthlyConsumptionRow.month))
    return {(d, month_label(y, m)): [c, dec(k)] for d, y, m, c, k in uow.session.execute(q)}


def monthly_consumption(uow, **filters) -> ReportData:
    f = Filters.of(filters)
    regions = Regions(uow)
    rolled = _roll(regions, f.level, consumption_by_district(uow, f, regions, f.months()))
    rows = [{"month": month, **_unit_row(unit), "customers": c, "kwh": k,
             "avg_kwh": ratio(k, c, "0.01")} for (unit, month), (c, k) in rolled.items()]
    rows = _sorted(rows, "month", "unit")
    totals = _sum_totals(rows, ("customers", "kwh"))
    totals.update({"month": "Total", "avg_kwh": ratio(totals["kwh"], totals["customers"], "0.01")})
    return ReportData(rows, totals, [ChartSpec(f"Consumption per {f.level}", "month", "kwh",
                                               "line" if len(f.months()) > 1 else "bar",
                                               group="unit")],
                      notes=("From the monthly consumption table; run `dbmis consumption compute` "
                             "after new meter returns.",))


CONSUMPTION_COLUMNS = [C("month", "Month"), *_unit_cols(), C("customers", "Customers", "int"),
                       C("kwh", "Consumption kWh", "energy"),
                       C("avg_kwh", "Avg kWh/customer", "energy")]


# -- line loss -------------------------------------------------------------------------------


def loss_rows(uow, f: Filters, regions: Regions, level: str) -> list[dict]:
    """One row per master meter reading of a ``level`` unit in the range and region."""
    if level not in ("line", "district"):
        raise ValidationError("line loss is kept per line or per transformer district")
    months = f.months()
    first, last = parse_month(months[0]), parse_month(months[-1])
    mi = MasterMeterReadingRow.year * 12 + MasterMeterReadingRow.month - 1
    q = select(MasterMeterReadingRow).where(mi >= month_index(*first), mi <= month_index(*last))
    scope = regions.under(f.region)
    readings = [r for r in uow.session.scalars(q)
                if regions.by_id[r.region_id].level == level
                and (scope is None or r.region_id in scope)]
    billed = _roll(regions, level, consumption_by_district(
        uow, Filters.of({"category": None, "month_from": months[0], "month_to": months[-1]}),
        regions, months)) if readings else {}
    high = Decimal(str(f.settings.get("line_loss_high", "0.10")))
    rows = []
    for r in readings:
        unit = regions.unit(r.region_id)
        month = month_label(r.year, r.month)
        kwh = billed.get((unit, month), [0, Decimal("0.00")])[1]
        loss = r.supplied - kwh
        rate = ratio(loss, r.supplied)
        flag = ("negative" if loss < 0 else "high" if rate is not None and rate > high else "")
        rows.append({"month": month, **_unit_row(unit), "supplied": r.supplied, "billed": kwh,
                     "loss": loss, "loss_rate": rate, "flag": flag})
    return _sorted(rows, "month", "unit")


def line_loss(uow, **filters) -> ReportData:
    f = Filters.of(filters)
    level = f.level if f.level != "region" else "line"
    rows = loss_rows(uow, f, Regions(uow), level)
    totals = _sum_totals(rows, ("supplied", "billed", "loss"))
    totals.update({"month": "Total", "loss_rate": ratio(totals["loss"], totals["supplied"]),
                   "flag": ""})
    high = Decimal(str(f.settings.get("line_loss_high", "0.10")))
    return ReportData(rows, totals, [ChartSpec(f"Loss rate per {level}", "month", "loss_rate",
                                               "bar", group="unit")],
                      notes=(f"Loss rate = (supplied - billed consumption) / supplied; flagged "
                             f"'high' above {high * 100}% ([reports] line_loss_high), "
                             "'negative' when customers used more than the master meter saw.",))


LOSS_COLUMNS = [C("month", "Month"), *_unit_cols("Line/district"),
                C("supplied", "Supplied kWh", "energy"), C("billed", "Billed kWh", "energy"),
                C("loss", "Loss kWh", "energy"), C("loss_rate", "Loss rate", "percent"),
                C("flag", "Flag")]


# -- assessment indicators -------------------------------------------------------------------


def indicators(uow, **filters) -> ReportData:
    f = Filters.of(filters)
    regions = Regions(uow)
    per_district = sales_by_district(uow, f, regions)
    sales: dict = defaultdict(lambda: [0, 0, Decimal("0.00"), Decimal("0.00"), Decimal("0.00")])
    for (_d, month), vals in per_district.items():
        sales[month] = [a + b for a, b in zip(sales[month], vals, strict=True)]
    loss = loss_rows(uow, attrs.evolve(f, category=None), regions, "line")
    supplied, billed = defaultdict(Decimal), defaultdict(Decimal)
    for r in loss:
        supplied[r["month"]] += r["supplied"]
        billed[r["month"]] += r["billed"]
    cust = _customer_filter(f, regions)
    rows = []
    for month in f.months():
        y, m = parse_month(month)
        start = month_start(y, m)
        end = _next(y, m)
        n, c, a, e, _x = sales[month]
        in_scope = uow.session.scalar(
            select(func.count()).select_from(CustomerRow).where(
                *cust, CustomerRow.created_at < end,
                or_(CustomerRow.closed_at.is_(None), CustomerRow.closed_at >= start)))
        with_returns = uow.session.scalar(
            select(func.count(MeterReturnRow.customer_id.distinct()))
            .join(CustomerRow, CustomerRow.id == MeterReturnRow.customer_id)
            .where(*cust, MeterReturnRow.read_at >= start, MeterReturnRow.read_at < end))
        noticed = set(uow.session.scalars(
            select(InspectionNoticeRow.customer_id)
            .join(CustomerRow, CustomerRow.id == InspectionNoticeRow.customer_id)
            .where(*cust, InspectionNoticeRow.raised_at >= start,
                   InspectionNoticeRow.raised_at < end)))
        flagged = set(uow.session.scalars(
            select(MonthlyConsumptionRow.customer_id)
            .join(CustomerRow, CustomerRow.id == MonthlyConsumptionRow.customer_id)
            .where(*cust, MonthlyConsumptionRow.year == y, MonthlyConsumptionRow.month == m,
                   MonthlyConsumptionRow.flags != 0)))
        sup = supplied.get(month)
        rows.append({"month": month, "energy": e, "revenue": a, "avg_price": ratio(a, e),
                     "sales": n, "customers": c, "avg_purchase": ratio(a, n, "0.01"),
                     "line_loss_rate": ratio(sup - billed[month], sup) if sup else None,
                     "customers_in_scope": in_scope, "with_returns": with_returns,
                     "returns_share": ratio(with_returns, in_scope),
                     "abnormal": len((noticed | flagged) - {None})})
    return ReportData(rows, None, [ChartSpec("Revenue per month", "month", "revenue", "bar"),
                                   ChartSpec("Energy sold per month", "month", "energy", "line")],
                      notes=("Average price = revenue / energy; average purchase = revenue / "
                             "sales; line loss rate over the lines with a master meter reading; "
                             "abnormal = customers with an inspection notice in the month or a "
                             "flagged consumption month.",))


def _next(y, m):
    return month_start(*from_index(month_index(y, m) + 1))


INDICATOR_COLUMNS = [C("month", "Month"), C("energy", "Energy sold kWh", "energy"),
                     C("revenue", "Revenue", "money"), C("avg_price", "Avg price/kWh", "price"),
                     C("sales", "Sales", "int"), C("customers", "Purchasing customers", "int"),
                     C("avg_purchase", "Avg purchase", "money"),
                     C("line_loss_rate", "Line loss rate", "percent"),
                     C("customers_in_scope", "Customers", "int"),
                     C("with_returns", "With returns", "int"),
                     C("returns_share", "Share with returns", "percent"),
                     C("abnormal", "Abnormal customers", "int")]


# -- comparison ------------------------------------------------------------------------------


def comparison(uow, **filters) -> ReportData:
    """The last month of the range against the month before and the same month a year earlier."""
    f = Filters.of(filters)
    regions = Regions(uow)
    month = f.month_to
    wanted = {"cur": month, "prev": shift(month, -1), "ly": shift(month, -12)}
    figures: dict = defaultdict(dict)
    for key, label in wanted.items():
        g = Filters.of({**{k: getattr(f, k) for k in ("level", "region", "station", "operator",
                                                        "category")},
                        "month_from": label, "month_to": label, "settings": f.settings})
        for (unit, _m), (_n, _c, a, e, _x) in _roll(
                regions, f.level, sales_by_district(uow, g, regions)).items():
            figures[unit][key] = (a, e)
    rows = []
    zero = (Decimal("0.00"), Decimal("0.00"))
    for unit, vals in figures.items():
        cur, prev, ly = vals.get("cur", zero), vals.get("prev", zero), vals.get("ly", zero)
        rows.append({**_unit_row(unit), "amount": cur[0], "amount_prev": prev[0],
                     "amount_mom": _change(cur[0], prev[0]), "amount_ly": ly[0],
                     "amount_yoy": _change(cur[0], ly[0]), "energy": cur[1],
                     "energy_prev": prev[1], "energy_mom": _change(cur[1], prev[1]),
                     "energy_ly": ly[1], "energy_yoy": _change(cur[1], ly[1])})
    rows = _sorted(rows, "unit")
    totals = _sum_totals(rows, ("amount", "amount_prev", "amount_ly", "energy", "energy_prev",
                                "energy_ly"))
    totals.update({"unit": "Total", "unit_name": "",
                   "amount_mom": _change(totals["amount"], totals["amount_prev"]),
                   "amount_yoy": _change(totals["amount"], totals["amount_ly"]),
                   "energy_mom": _change(totals["energy"], totals["energy_prev"]),
                   "energy_yoy": _change(totals["energy"], totals["energy_ly"])})
    return ReportData(rows, totals, [ChartSpec(f"Amount {month} vs previous month and last year",
                                               "unit", "amount", "bar")],
                      notes=(f"{month} against {wanted['prev']} and {wanted['ly']}; change = "
                             "(this - then) / then.",),
                      context={"months": wanted})


def _change(now, then):
    if not then:
        return None
    return ((now - then) / then).quantize(Decimal("0.0001"))


COMPARISON_COLUMNS = [*_unit_cols(), C("amount", "Amount", "money"),
                      C("amount_prev", "Previous month", "money"),
                      C("amount_mom", "Change vs previous", "percent"),
                      C("amount_ly", "Same month last year", "money"),
                      C("amount_yoy", "Change vs last year", "percent"),
                      C("energy", "Energy kWh", "energy"),
                      C("energy_prev", "Energy previous", "energy"),
                      C("energy_mom", "Energy change vs previous", "percent"),
                      C("energy_ly", "Energy last year", "energy"),
                      C("energy_yoy", "Energy change vs last year", "percent")]


# -- customer statement ----------------------------------------------------------------------


def customer_statement(uow, **filters) -> ReportData:
    f = Filters.of(filters)
    if not f.account_no:
        raise ValidationError("a customer statement needs the account number (account_no)")
    c = uow.session.scalar(select(CustomerRow).where(CustomerRow.account_no == f.account_no))
    if c is None:
        raise NotFound(f"no customer with account number {f.account_no}")
    start, end = f.bounds()
    rows = []
    for v in uow.session.scalars(select(VendRow).where(
            VendRow.customer_id == c.id, VendRow.state == "completed",
            VendRow.completed_at >= start, VendRow.completed_at < end)):
        rows.append({"at": v.completed_at, "what": "sale" if v.kind == "sale" else v.kind,
                     "receipt_no": v.receipt_no or "", "amount": v.amount, "energy": v.energy,
                     "debt_recovered": v.debt_recovered, "operator": v.operator,
                     "station": v.station})
    for e in uow.session.scalars(select(CashEntryRow).where(
            CashEntryRow.customer_id == c.id, CashEntryRow.kind != "refund",
            CashEntryRow.created_at >= start, CashEntryRow.created_at < end)):
        rows.append({"at": e.created_at, "what": e.kind, "receipt_no": e.receipt_no or "",
                     "amount": e.amount, "energy": None, "debt_recovered": None,
                     "operator": e.operator, "station": e.station})
    rows.sort(key=lambda r: (r["at"], r["receipt_no"]))
    totals = {"what": "Total", "amount": sum((r["amount"] for r in rows), Decimal("0.00")),
              "energy": sum((r["energy"] for r in rows if r["energy"] is not None),
                            Decimal("0.00")),
              "debt_recovered": sum((r["debt_recovered"] for r in rows
                                     if r["debt_recovered"] is not None), Decimal("0.00"))}
    district = c.district.code if c.district else ""
    return ReportData(rows, totals, context={"customer": {
        "account_no": c.account_no, "name": c.name, "address": c.address, "phone": c.phone,
        "category": c.category, "district": district, "status": c.status}})


STATEMENT_COLUMNS = [C("at", "Time (UTC)", "datetime"), C("what", "What"),
                     C("receipt_no", "Receipt"), C("amount", "Amount", "money"),
                     C("energy", "Energy kWh", "energy"),
                     C("debt_recovered", "Debt recovered", "money"), C("operator", "Operator"),
                     C("station", "Station")]


# -- card operations and the service-card log ----------------------------------------------


def card_operations(uow, **filters) -> ReportData:
    f = Filters.of(filters)
    start, end = f.bounds()
    s = uow.session
    rows = []

    def keep(opr, st):
        return (not f.operator or opr == f.operator) and (not f.station or st == f.station)

    reissued = set(s.scalars(select(ReissueRow.new_uid).where(ReissueRow.state == "completed",
                                                              ReissueRow.new_uid.is_not(None))))
    for card, acct in s.execute(select(CardRow, CustomerRow.account_no)
                                .outerjoin(CustomerRow, CustomerRow.id == CardRow.customer_id)
                                .where(CardRow.issued_at >= start, CardRow.issued_at < end)):
        if card.uid in reissued:  # shown as its reissue
            continue
        if not f.station and (not f.operator or card.issued_by == f.operator):
            rows.append({"at": card.issued_at, "operation": "issue", "account_no": acct or "",
                         "card_uid": card.uid, "operator": card.issued_by, "station": "",
                         "amount": None, "detail": f"card type {card.card_type}"})
    for r, acct, old in s.execute(select(ReissueRow, CustomerRow.account_no, CardRow.uid)
                                  .join(CustomerRow, CustomerRow.id == ReissueRow.customer_id)
                                  .join(CardRow, CardRow.id == ReissueRow.old_card_id)
                                  .where(ReissueRow.state == "completed",
                                         ReissueRow.completed_at >= start,
                                         ReissueRow.completed_at < end)):
        if keep(r.operator, r.station):
            rows.append({"at": r.completed_at, "operation": "reissue", "account_no": acct,
                         "card_uid": r.new_uid or "", "operator": r.operator,
                         "station": r.station, "amount": r.fee,
                         "detail": f"replaces {old}; {r.reason}".strip("; ")})
    for r, v, acct, uid in s.execute(
            select(ReversalRow, VendRow, CustomerRow.account_no, CardRow.uid)
            .join(VendRow, VendRow.id == ReversalRow.vend_id)
            .join(CustomerRow, CustomerRow.id == VendRow.customer_id)
            .join(CardRow, CardRow.id == VendRow.card_id)
            .where(ReversalRow.state == "completed", ReversalRow.completed_at >= start,
                   ReversalRow.completed_at < end)):
        if keep(r.operator, r.station):
            rows.append({"at": r.completed_at, "operation": "reversal", "account_no": acct,
                         "card_uid": uid, "operator": r.operator, "station": r.station,
                         "amount": -r.refund,
                         "detail": f"receipt {v.receipt_no}, approved by {r.approved_by}"})
    rows.sort(key=lambda r: (r["at"], r["operation"]))
    counts = defaultdict(int)
    for r in rows:
        counts[r["operation"]] += 1
    totals = {"operation": "Total", "detail": ", ".join(f"{k} {v}" for k, v in
                                                         sorted(counts.items())),
              "amount": sum((r["amount"] for r in rows if r["amount"] is not None),
                            Decimal("0.00"))}
    return ReportData(rows, totals, context={"counts": dict(counts)})


CARD_OP_COLUMNS = [C("at", "Time (UTC)", "datetime"), C("operation", "Operation"),
                   C("account_no", "Account"), C("card_uid", "Card"), C("operator", "Operator"),
                   C("station", "Station"), C("amount", "Fee/refund", "money"),
                   C("detail", "Detail")]


def service_card_log(uow, **filters) -> ReportData:
    from dbmis_core.domain import CardType

    f = Filters.of(filters)
    start, end = f.bounds()
    cond = [ServiceCardRow.written_at >= start, ServiceCardRow.written_at < end]
    if f.operator:
        cond.append(ServiceCardRow.operator == f.operator)
    if f.station:
        cond.append(ServiceCardRow.station == f.station)
    rows = []
    for r in uow.session.scalars(select(ServiceCardRow).where(*cond)
                                 .order_by(ServiceCardRow.written_at, ServiceCardRow.id)):
        try:
            kind = CardType(r.card_type).name.lower()
        except ValueError:
            kind = str(r.card_type)
        targets = r.targets if isinstance(r.targets, str) else ", ".join(map(str, r.targets))
        rows.append({"at": r.written_at, "card_type": kind, "card_uid": r.uid,
                     "operator": r.operator, "station": r.station, "targets": targets,
                     "imported": "yes" if r.imported_at else "no"})
    return ReportData(rows, {"card_type": "Total", "card_uid": f"{len(rows)} card(s)"})


SERVICE_COLUMNS = [C("at", "Time (UTC)", "datetime"), C("card_type", "Card type"),
                   C("card_uid", "Card"), C("operator", "Operator"), C("station", "Station"),
                   C("targets", "Meters"), C("imported", "Imported")]

