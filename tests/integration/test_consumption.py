"""Monthly consumption, the ranked list, charts and inspection work orders through the services, on
SQLite and PostgreSQL, with two years of returns for the demo customers
(dbmis_core/testing/consumption.py tells the story)."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from dbmis_core.errors import BusinessRuleError, NotFound, PermissionDenied, ValidationError
from dbmis_core.services import charts, consumption, inspections, workorders
from dbmis_core.services.auth import Operator, create_operator
from dbmis_core.storage.models import MonthlyConsumptionRow
from dbmis_core.testing.consumption import seed_history


@pytest.fixture
def story(demo, admin):
    truth = seed_history(demo, admin)
    consumption.compute(demo, admin)
    return truth


def _counts(app):
    with app.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(MonthlyConsumptionRow))


def test_monthly_consumption_matches_the_meter_and_recomputes_the_same(demo, admin, story):
    rows = consumption.monthly(demo, admin, "100001")
    complete = [r for r in rows if r.quality == "complete"]
    assert len(complete) == 24
    assert [float(r.kwh) for r in complete] == pytest.approx(story["100001"], abs=0.01)
    assert rows[-1].quality == "partial" and rows[-1].label == "2026-10"
    assert all(r.purchased > 0 for r in complete) and all(r.returns == 1 for r in complete)
    before = [(r.label, r.kwh, r.quality, r.flags) for r in rows]
    n = _counts(demo)
    again = consumption.compute(demo, admin)
    assert again.customers == 6 and _counts(demo) == n == again.rows
    assert [(r.label, r.kwh, r.quality, r.flags) for r in
            consumption.monthly(demo, admin, "100001")] == before
    one = consumption.compute(demo, admin, "100004")
    assert one.customers == 1 and _counts(demo) == n
    flagged = [r for r in consumption.monthly(demo, admin, "100004") if r.flags]
    assert [r.label for r in flagged] == ["2026-02"] and "register fell" in flagged[0].note


def test_the_ranked_list_finds_each_planted_case_and_not_the_holiday(demo, admin, story):
    ranked = consumption.rank(demo, admin, top=None)
    by = {r.account_no: r for r in ranked}
    assert set(by) == {"100003", "100004", "100005", "100006"}
    assert [f.check for f in by["100006"].findings] == ["abnormal-drop", "zero-while-buying"]
    assert by["100003"].findings[0].check == "abnormal-drop"
    assert by["100003"].period == "2026-04" and by["100003"].district == "R1-L1-T2"
    assert by["100004"].findings[0].check == "register-backwards"
    assert by["100005"].findings[0].check == "tamper"
    assert ranked[0].account_no == "100006" and ranked[0].score == 3.0
    assert all(r.reasons and all(isinstance(t, str) and t for t in r.reasons) for r in ranked)
    holiday = consumption.analyse_customer(demo, admin, "100002")
    assert holiday.score == 0 and holiday.findings == ()
    assert [r.account_no for r in consumption.rank(demo, admin, top=2)] == ["100006", "100003"]


@pytest.mark.parametrize("region,expect", [("R1", {"100003", "100004"}),
                                           ("R1-L1", {"100003", "100004"}),
                                           ("R1-L1-T2", {"100003", "100004"}),
                                           ("R1-L1-T1", set()),
                                           ("R2", {"100005", "100006"})])
def test_the_ranked_list_filters_by_region_at_any_level(demo, admin, story, region, expect):
    assert {r.account_no for r in consumption.rank(demo, admin, region=region)} == expect


def test_bad_region_month_and_permissions(demo, admin, story):
    with pytest.raises(NotFound, match="NOPE"):
        consumption.rank(demo, admin, region="NOPE")
    with pytest.raises(ValidationError, match="2025-03"):
        consumption.rank(demo, admin, until="March")
    clerk = Operator("clerk", "Demo Clerk", "clerk")
    with pytest.raises(PermissionDenied):
        consumption.rank(demo, clerk)
    with pytest.raises(PermissionDenied):
        consumption.compute(demo, clerk)
    assert consumption.monthly(demo, clerk, "100001")  # viewing is allowed
    with pytest.raises(PermissionDenied):
        workorders.create(demo, clerk, "100001")


def test_an_earlier_month_can_be_analysed(demo, admin, story):
    # at 2026-03 the shop had not dropped yet; the register fault of 2026-02 was already there
    ranked = consumption.rank(demo, admin, until="2026-03")
    assert "100003" not in {r.account_no for r in ranked}
    assert "100004" in {r.account_no for r in ranked}


def test_charts_as_png_and_svg(demo, admin, story):
    trend = charts.customer_trend(demo, admin, "100003")
    assert len(trend.labels) == 12 and trend.labels[-1] == "2026-10"
    assert trend.labels[0] == "2025-11"  # the story starts 2024-10: last year is its month 1
    assert trend.last_year[0] == pytest.approx(story["100003"][1], abs=0.01)
    png = charts.customer_chart(demo, admin, "100003", "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    svg = charts.customer_chart(demo, admin, "100003", "svg")
    assert b"<svg" in svg[:500]
    districts = charts.area_totals(demo, admin, "district")
    assert set(districts.totals) == {"R1-L1-T1", "R1-L1-T2", "R2-L1-T1"}
    lines = charts.area_totals(demo, admin, "line")
    assert set(lines.totals) == {"R1-L1", "R2-L1"}
    i = lines.labels.index("2025-05")
    assert lines.totals["R1-L1"][i] == pytest.approx(
        sum(districts.totals[d][i] for d in ("R1-L1-T1", "R1-L1-T2")))
    assert charts.area_chart(demo, admin, "line", fmt="png")[:4] == b"\x89PNG"
    with pytest.raises(ValidationError):
        charts.customer_chart(demo, admin, "100003", "gif")


def test_work_orders_from_the_ranking_and_from_a_notice_become_labels(demo, admin, story):
    with demo.uow() as uow:
        create_operator(uow, "insp", "Ina Inspector", "inspect-pass-1", "technician")
        uow.commit()
    tech = Operator("insp", "Ina Inspector", "technician")
    top = consumption.rank(demo, admin, top=1)[0]
    wo = workorders.create_from_ranking(demo, admin, top)
    assert (wo.account_no, wo.origin, wo.status, wo.period) == ("100006", "ranking", "open",
                                                                top.period)
    assert wo.score == Decimal("3.000") and wo.reasons == tuple(top.reasons)
    assert workorders.create_from_ranking(demo, admin, top).id == wo.id  # one open per customer
    with pytest.raises(ValidationError, match="nobody"):
        workorders.assign(demo, admin, wo.id, "nobody")
    wo = workorders.assign(demo, admin, wo.id, "insp")
    assert wo.status == "assigned" and wo.assigned_to == "insp"
    assert [o.id for o in workorders.list_orders(demo, tech, assigned_to="insp")] == [wo.id]
    with pytest.raises(ValidationError, match="theft"):
        workorders.record_outcome(demo, tech, wo.id, "maybe")
    done = workorders.record_outcome(demo, tech, wo.id, "theft", "bypass cable found")
    assert (done.status, done.outcome, done.closed_by) == ("done", "theft", "insp")
    with pytest.raises(BusinessRuleError, match="already"):
        workorders.record_outcome(demo, tech, wo.id, "fault")

    notice_id = inspections.raise_notice(demo, admin, "card of another meter", "100002")
    wo2 = workorders.create_from_notice(demo, admin, notice_id)
    assert wo2.origin == "notice" and wo2.notice_id == notice_id and wo2.account_no == "100002"
    workorders.record_outcome(demo, admin, wo2.id, "no problem", "card swapped by neighbours")
    with pytest.raises(NotFound):
        workorders.create_from_notice(demo, admin, 99999)

    labels = workorders.labels(demo, admin)
    assert [(lb.account_no, lb.outcome, lb.origin) for lb in labels] == [
        ("100006", "theft", "ranking"), ("100002", "no_problem", "notice")]
    assert labels[0].score == Decimal("3.000") and labels[0].period == top.period
    csv_text = workorders.labels_csv(demo, admin).splitlines()
    assert csv_text[0].startswith("account_no,period,score,outcome")
    assert csv_text[1].startswith(f"100006,{top.period},3.000,theft,ranking")
    assert workorders.list_orders(demo, admin, status="open") == []


def test_months_after_closure_are_not_judged(demo, admin, story):
    from datetime import UTC, datetime

    from dbmis_core.services.analysis import settings_of
    from dbmis_core.storage.models import CustomerRow

    with demo.uow() as uow:
        c = uow.session.scalar(select(CustomerRow).where(CustomerRow.account_no == "100001"))
        c.closed_at = datetime(2026, 3, 15, tzinfo=UTC)
        cid = c.id
        uow.commit()
    with demo.uow() as uow:
        batch = consumption.load_batch(uow, settings_of(None))
    i = list(batch.customer_ids).index(cid)
    assert batch.label(batch.months - 1) == "2026-09"
    assert [batch.label(j) for j in range(batch.months) if batch.active[i, j]][-1] == "2026-03"
    assert batch.active[list(batch.customer_ids).index(cid + 1)].all()
