"""The sales summary behind the monthly reports follows sales and reversals as they happen
(added on completion, taken out on reversal, open sales and reversals looked at again), on both
backends; figures worked out by hand from dbmis_core/testing/reports.py plus the changes here."""

from __future__ import annotations

from decimal import Decimal as D

from sqlalchemy import select

from dbmis_core.services import reports, salessummary
from dbmis_core.storage.models import (
    CardRow,
    CustomerRow,
    MeterRow,
    ReversalRow,
    SalesSummaryStateRow,
    VendRow,
)
from dbmis_core.testing.reports import seed, t


def march(app, admin):
    r = reports.run(app, admin, "monthly-sales", level="region", month_from="2025-03")
    return [(x["unit"], x["amount"], x["sales"], x["customers"]) for x in r.rows]


def direct(app):
    """The same figures straight from the sales (the report's direct query path)."""
    from dbmis_reports.builtin import _roll, sales_by_district

    f = reports.Filters.of({"level": "region", "month_from": "2025-03"})
    with app.uow() as uow:
        regions = reports.Regions(uow)
        start, end = f.bounds()
        rolled = _roll(regions, "region", sales_by_district(uow, f, regions, start, end))
    return sorted((u.code, v[2], v[0], v[1]) for (u, _m), v in rolled.items())


def sale(s, acct, seq, state, amount, at=None):
    c = s.scalar(select(CustomerRow).where(CustomerRow.account_no == acct))
    m = s.scalar(select(MeterRow).where(MeterRow.customer_id == c.id))
    k = s.scalar(select(CardRow).where(CardRow.customer_id == c.id))
    v = VendRow(customer_id=c.id, meter_id=m.id, card_id=k.id, sequence=seq, amount=D(amount),
                energy=D(amount) * 2, credit=D(amount) * 2, credit_unit=0, tariff="flat",
                unit_price=D("0.5"), price_lines=[], operator="clerk", station="S01",
                state=state, issued_at=t("2025-03-20 10:00"), created_at=t("2025-03-20 10:00"),
                completed_at=t(at) if at else None)
    s.add(v)
    s.flush()
    return v


def vend_by_receipt(s, receipt):
    return s.scalar(select(VendRow).where(VendRow.receipt_no == receipt))


def test_summary_follows_sales_and_reversals(app, admin):
    seed(app)
    assert march(app, admin) == [("RA", D("300.00"), 4, 3), ("RB", D("250.00"), 1, 1)]
    with app.uow() as uow:
        assert uow.session.get(SalesSummaryStateRow, 1).vend_watermark == 15
    with app.uow() as uow:
        s = uow.session
        sale(s, "900005", 101, "completed", "40.00", "2025-03-20 10:00")
        pending = sale(s, "900004", 102, "pending", "60.00")
        v10 = vend_by_receipt(s, "S01-00000006")      # 900003's 150.00 on 6 March
        assert v10.amount == D("150.00")
        v10.state = "reversed"
        s.add(ReversalRow(vend_id=v10.id, state="completed", refund=D("150.00"), operator="admin",
                          approved_by="admin", station="S01", completed_at=t("2025-03-21 10:00")))
        v12 = vend_by_receipt(s, "S02-00000004")      # 900004's 250.00 on 31 March
        assert v12.amount == D("250.00")
        rev = ReversalRow(vend_id=v12.id, state="pending", refund=D("250.00"), operator="admin",
                          approved_by="admin", station="S02")
        s.add(rev)
        uow.commit()
        pending_id, rev_id = pending.id, rev.id
    # 300 + 40 - 150 = 190 over v7, v8, v9 and the new sale; 900003 bought nothing else
    assert march(app, admin) == [("RA", D("190.00"), 4, 3), ("RB", D("250.00"), 1, 1)]
    assert march(app, admin) == direct(app)
    with app.uow() as uow:
        st = uow.session.get(SalesSummaryStateRow, 1)
        assert st.open_vends == [pending_id] and st.open_reversals == [rev_id]
    with app.uow() as uow:
        s = uow.session
        p = s.get(VendRow, pending_id)
        p.state, p.completed_at = "completed", t("2025-03-25 10:00")
        s.get(ReversalRow, rev_id).state = "completed"
        s.get(VendRow, s.get(ReversalRow, rev_id).vend_id).state = "reversed"
        sale(s, "900001", 103, "failed", "99.00")
        uow.commit()
    # RB: 250 + 60 - 250 = 60, one sale, still one customer
    assert march(app, admin) == [("RA", D("190.00"), 4, 3), ("RB", D("60.00"), 1, 1)]
    assert march(app, admin) == direct(app)
    again = salessummary.refresh(app)
    assert (again.built, again.added, again.removed) == (False, 0, 0)


def test_summary_is_built_once_then_only_updated(app, admin):
    seed(app)
    first = salessummary.refresh(app)
    assert first.built
    second = salessummary.refresh(app)
    assert not second.built and second.added == 0
    r = reports.run(app, admin, "monthly-sales", level="line", month_from="2025-02",
                    month_to="2025-03", category="residential")
    assert [(x["month"], x["unit"], x["amount"], x["customers"]) for x in r.rows] == [
        ("2025-02", "LA1", D("100.00"), 2), ("2025-03", "LA1", D("150.00"), 2)]
