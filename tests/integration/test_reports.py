"""Golden tests: every built-in report on the fixed data set of dbmis_core/testing/reports.py,
against figures worked out by hand from that file (written here literally), on both backends.

Hand sums, March 2025 (failed, reversed and make-up sales never count):
sales 900001 100.00 + 20.00, 900002 30.00, 900003 150.00, 900004 250.00 (23:59:59 on the 31st)
= 550.00 over 5 sales; energy 180 + 40 + 60 + 187.50 + 333.33 = 800.83.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal as D

import pytest

from dbmis_core.errors import NotFound, PermissionDenied, ValidationError
from dbmis_core.services import reports
from dbmis_core.services.auth import Operator
from dbmis_core.testing.reports import seed


@pytest.fixture
def data(app, admin):
    seed(app)
    return app


def run(app, admin, name, **f):
    return reports.run(app, admin, name, **f)


def pick(result, *cols):
    return [tuple(r[c] for c in cols) for r in result.rows]


def test_every_builtin_report_is_registered_with_typed_columns(app):
    names = set(app.pm.reports())
    assert {"daily-sales", "monthly-sales", "monthly-consumption", "line-loss", "indicators",
            "comparison", "customer-statement", "card-operations", "service-cards"} <= names
    for spec in app.pm.reports().values():
        assert spec.columns and spec.template


def test_daily_sales_journal_per_operator_and_station(data, admin):
    r = run(data, admin, "daily-sales", month_from="2025-03")
    assert pick(r, "day", "station", "operator", "sales", "amount", "energy", "debt_recovered",
                "cash_other", "total") == [
        (date(2025, 3, 5), "S01", "clerk", 2, D("120.00"), D("220.00"), D("10.00"), D("25.00"),
         D("145.00")),
        (date(2025, 3, 5), "S02", "bob", 1, D("30.00"), D("60.00"), D("0.00"), D("5.00"),
         D("35.00")),
        (date(2025, 3, 6), "S01", "clerk", 1, D("150.00"), D("187.50"), D("0.00"), D("0.00"),
         D("150.00")),
        (date(2025, 3, 31), "S02", "bob", 1, D("250.00"), D("333.33"), D("0.00"), D("0.00"),
         D("250.00")),
    ]
    assert (r.totals["sales"], r.totals["amount"], r.totals["energy"], r.totals["total"]) == (
        5, D("550.00"), D("800.83"), D("580.00"))
    one = run(data, admin, "daily-sales", day="2025-03-05", station="S02")
    assert pick(one, "operator", "amount", "cash_other") == [("bob", D("30.00"), D("5.00"))]
    by_op = run(data, admin, "daily-sales", month_from="2025-03", operator="clerk")
    assert by_op.totals["amount"] == D("270.00")


def test_monthly_sales_by_region_line_and_district(data, admin):
    r = run(data, admin, "monthly-sales", level="region", month_from="2025-02",
            month_to="2025-03")
    assert pick(r, "month", "unit", "sales", "customers", "amount", "energy", "debt_recovered",
                "avg_price", "avg_purchase") == [
        ("2025-02", "RA", 2, 2, D("100.00"), D("200.00"), D("0.00"), D("0.5000"), D("50.00")),
        ("2025-02", "RB", 1, 1, D("300.00"), D("400.00"), D("0.00"), D("0.7500"), D("300.00")),
        ("2025-03", "RA", 4, 3, D("300.00"), D("467.50"), D("10.00"), D("0.6417"), D("75.00")),
        ("2025-03", "RB", 1, 1, D("250.00"), D("333.33"), D("0.00"), D("0.7500"), D("250.00")),
    ]
    assert (r.totals["sales"], r.totals["amount"], r.totals["energy"]) == (8, D("950.00"),
                                                                          D("1400.83"))
    lines = run(data, admin, "monthly-sales", level="line", month_from="2025-03")
    assert pick(lines, "unit", "amount", "energy", "sales") == [
        ("LA1", D("150.00"), D("280.00"), 3), ("LA2", D("150.00"), D("187.50"), 1),
        ("LB1", D("250.00"), D("333.33"), 1)]
    districts = run(data, admin, "monthly-sales", level="district", region="LA1",
                    month_from="2025-03")
    assert pick(districts, "unit", "amount") == [("DA1", D("120.00")), ("DA2", D("30.00"))]
    shops = run(data, admin, "monthly-sales", level="region", category="commercial",
                month_from="2025-03")
    assert pick(shops, "unit", "amount") == [("RA", D("150.00"))]
    s02 = run(data, admin, "monthly-sales", level="region", station="S02", month_from="2025-03")
    assert pick(s02, "unit", "amount") == [("RA", D("30.00")), ("RB", D("250.00"))]
    april = run(data, admin, "monthly-sales", level="region", month_from="2025-04")
    assert pick(april, "unit", "amount") == [("RB", D("70.00"))]
    assert r.charts and r.charts[0].y == "amount"


def test_monthly_consumption_by_line(data, admin):
    r = run(data, admin, "monthly-consumption", level="line", month_from="2025-03")
    assert pick(r, "unit", "customers", "kwh", "avg_kwh") == [
        ("LA1", 2, D("215.00"), D("107.50")), ("LA2", 1, D("180.00"), D("180.00")),
        ("LB1", 1, D("300.00"), D("300.00"))]
    assert r.totals["kwh"] == D("695.00")
    feb = run(data, admin, "monthly-consumption", level="region", month_from="2025-02")
    assert pick(feb, "unit", "kwh") == [("RA", D("380.00")), ("RB", D("380.00"))]


def test_line_loss_rates_and_flags(data, admin):
    r = run(data, admin, "line-loss", level="line", month_from="2025-02", month_to="2025-03")
    assert pick(r, "month", "unit", "supplied", "billed", "loss", "loss_rate", "flag") == [
        ("2025-02", "LA1", D("200.00"), D("180.00"), D("20.00"), D("0.1000"), ""),
        ("2025-03", "LA1", D("250.00"), D("215.00"), D("35.00"), D("0.1400"), "high"),
        ("2025-03", "LA2", D("190.00"), D("180.00"), D("10.00"), D("0.0526"), ""),
        ("2025-03", "LB1", D("290.00"), D("300.00"), D("-10.00"), D("-0.0345"), "negative"),
    ]
    assert (r.totals["supplied"], r.totals["billed"], r.totals["loss"],
            r.totals["loss_rate"]) == (D("930.00"), D("875.00"), D("55.00"), D("0.0591"))
    d = run(data, admin, "line-loss", level="district", month_from="2025-03")
    assert pick(d, "unit", "supplied", "billed", "loss_rate") == [
        ("DA1", D("160.00"), D("150.00"), D("0.0625"))]


def test_line_loss_threshold_is_configurable(data, admin):
    data.config.data["reports"]["line_loss_high"] = "0.15"
    r = run(data, admin, "line-loss", level="line", month_from="2025-03")
    assert [row["flag"] for row in r.rows] == ["", "", "negative"]


def test_assessment_indicators(data, admin):
    r = run(data, admin, "indicators", month_from="2025-02", month_to="2025-03")
    assert pick(r, "month", "energy", "revenue", "avg_price", "sales", "customers",
                "avg_purchase", "line_loss_rate", "customers_in_scope", "with_returns",
                "returns_share", "abnormal") == [
        ("2025-02", D("600.00"), D("400.00"), D("0.6667"), 3, 3, D("133.33"), D("0.1000"), 5, 3,
         D("0.6000"), 0),
        ("2025-03", D("800.83"), D("550.00"), D("0.6868"), 5, 4, D("110.00"), D("0.0479"), 5, 2,
         D("0.4000"), 2),
    ]
    res = run(data, admin, "indicators", month_from="2025-03", category="residential")
    # residential: 900001 120.00, 900002 30.00; 3 customers, returns only 900001; 900002 noticed
    assert pick(res, "revenue", "customers", "customers_in_scope", "with_returns",
                "abnormal") == [(D("150.00"), 2, 3, 1, 1)]


def test_comparison_with_last_month_and_last_year(data, admin):
    r = run(data, admin, "comparison", level="region", month_from="2025-03")
    assert pick(r, "unit", "amount", "amount_prev", "amount_mom", "amount_ly", "amount_yoy",
                "energy", "energy_prev", "energy_mom", "energy_ly", "energy_yoy") == [
        ("RA", D("300.00"), D("100.00"), D("2.0000"), D("250.00"), D("0.2000"), D("467.50"),
         D("200.00"), D("1.3375"), D("350.00"), D("0.3357")),
        ("RB", D("250.00"), D("300.00"), D("-0.1667"), D("0.00"), None, D("333.33"),
         D("400.00"), D("-0.1667"), D("0.00"), None),
    ]
    assert (r.totals["amount_mom"], r.totals["amount_yoy"], r.totals["energy_yoy"]) == (
        D("0.3750"), D("1.2000"), D("1.2881"))


def test_customer_statement(data, admin):
    r = run(data, admin, "customer-statement", account_no="900001", month_from="2025-03")
    assert pick(r, "what", "amount", "energy", "debt_recovered") == [
        ("sale", D("100.00"), D("180.00"), D("10.00")),
        ("sale", D("20.00"), D("40.00"), D("0.00")),
        ("debt_payment", D("25.00"), None, None),
        ("makeup", D("0.00"), D("15.00"), D("0.00")),
    ]
    assert (r.totals["amount"], r.totals["energy"]) == (D("145.00"), D("235.00"))
    assert r.context["customer"]["name"] == "Anna Okafor"
    html = reports.to_html(r)
    assert "Anna Okafor" in html and "145.00" in html
    with pytest.raises(ValidationError, match="account number"):
        run(data, admin, "customer-statement", month_from="2025-03")
    with pytest.raises(NotFound):
        run(data, admin, "customer-statement", account_no="999999", month_from="2025-03")


def test_card_operations_and_service_card_log(data, admin):
    r = run(data, admin, "card-operations", month_from="2025-03")
    assert pick(r, "operation", "account_no", "card_uid", "amount") == [
        ("issue", "900005", "CAFE0005", None),
        ("reissue", "900002", "CAFE0002B", D("5.00")),
        ("reversal", "900003", "CAFE0003", D("-500.00")),
    ]
    assert r.totals["amount"] == D("-495.00")
    only_bob = run(data, admin, "card-operations", month_from="2025-03", operator="bob")
    assert [row["operation"] for row in only_bob.rows] == ["reissue"]
    log = run(data, admin, "service-cards", month_from="2025-02", month_to="2025-03")
    assert pick(log, "card_type", "card_uid", "targets") == [
        ("check", "SVC00002", "any"), ("check", "SVC00001", "770000000001")]


def test_filters_are_checked(data, admin):
    with pytest.raises(ValidationError, match="YYYY-MM"):
        run(data, admin, "monthly-sales", month_from="2025-13")
    with pytest.raises(ValidationError, match="backwards"):
        run(data, admin, "monthly-sales", month_from="2025-03", month_to="2025-01")
    with pytest.raises(ValidationError, match="level"):
        run(data, admin, "monthly-sales", level="street", month_from="2025-03")
    with pytest.raises(NotFound, match="ZZ"):
        run(data, admin, "monthly-sales", region="ZZ", month_from="2025-03")
    with pytest.raises(ValidationError, match="unknown report filter"):
        run(data, admin, "monthly-sales", colour="red")
    with pytest.raises(ValidationError, match="does not filter by station"):
        run(data, admin, "line-loss", station="S01", month_from="2025-03")


def test_technicians_may_not_run_reports(data):
    tech = Operator("tech", "Tech", "technician")
    with pytest.raises(PermissionDenied, match="view_reports"):
        reports.run(data, tech, "monthly-sales", month_from="2025-03")
    auditor = Operator("aud", "Aud", "auditor")
    assert reports.run(data, auditor, "monthly-sales", month_from="2025-03").totals["amount"] \
        == D("550.00")


def test_exports_keep_types(data, admin):
    from openpyxl import load_workbook

    r = run(data, admin, "daily-sales", month_from="2025-03")
    wb = load_workbook(io.BytesIO(reports.to_xlsx(r)))
    ws = wb.active
    header = [c.value for c in ws[3]]
    assert header[:4] == ["Day", "Station", "Operator", "Sales"]
    first = ws[4]
    assert first[0].is_date and first[0].value == datetime(2025, 3, 5)
    assert first[3].data_type == "n" and first[3].value == 2
    assert first[4].data_type == "n" and first[4].value == 120
    assert first[4].number_format == "#,##0.00"
    total = ws[ws.max_row]
    assert total[4].value == 550 and total[5].value == pytest.approx(800.83)
    pct = run(data, admin, "line-loss", level="line", month_from="2025-03")
    ws2 = load_workbook(io.BytesIO(reports.to_xlsx(pct))).active
    assert ws2.cell(4, 7).number_format == "0.00%" and ws2.cell(4, 7).value == pytest.approx(0.14)
    rows = list(csv.reader(io.StringIO(reports.to_csv(r))))
    assert rows[0][0] == "Day" and rows[1][:5] == ["2025-03-05", "S01", "clerk", "2", "120.00"]
    assert rows[-1][4] == "550.00"
    html = reports.to_html(run(data, admin, "monthly-sales", level="region",
                               month_from="2025-02", month_to="2025-03"))
    assert "<table" in html and "950.00" in html and "data:image/png;base64," in html
    pdf = reports.to_pdf(r)
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_chart_png_is_an_image(data, admin):
    r = run(data, admin, "monthly-sales", level="line", month_from="2025-02", month_to="2025-03")
    png = reports.chart_png(r, r.charts[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
