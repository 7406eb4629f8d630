"""Day closing on SQLite and PostgreSQL: summary, close, permissions, and closed days that the
database itself refuses to change (migration 0004)."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from dbmis_core.errors import (
    BusinessRuleError,
    CardError,
    ConfigError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from dbmis_core.services import auth, cards, dayclose, setup, vending
from dbmis_core.services.cash import record_cash
from dbmis_core.storage.models import CashEntryRow, CustomerRow, DayClosingRow, VendRow
from dbmis_core.testing.databases import ADMIN, ADMIN_PW, make_app
from dbmis_sim.sle4442 import Faults


def _issue(app, op, account):
    uid = app.reader.new_card()
    cards.issue_user_card(app, op, account)
    return uid


def _cash(app, op, kind, amount, account="100001"):
    with app.uow() as uow:
        cid = uow.session.scalar(select(CustomerRow.id).where(CustomerRow.account_no == account))
        row = record_cash(uow, op, app.config.station_code, kind, Decimal(amount), customer_id=cid)
        uow.commit()
        return row.id


def _operator(app, login, role):
    with app.uow() as uow:
        auth.create_operator(uow, login, login.title(), f"{login}-pass-1", role)
        uow.commit()
    return app.login(login, f"{login}-pass-1")


@pytest.fixture
def clerk(demo):
    return demo.login("clerk", "clerk-demo-1")


def _clerk_day(app, clerk, admin):
    """clerk: two sales (20 + 15), a card fee of 5, a refund of 2.50; admin: one sale of 10."""
    _issue(app, clerk, "100001")
    vending.vend(app, clerk, "100001", "20.00")
    _issue(app, clerk, "100002")
    vending.vend(app, clerk, "100002", "15.00")
    _cash(app, clerk, "reissue_fee", "5.00")
    _cash(app, clerk, "refund", "-2.50")
    _issue(app, admin, "100003")
    vending.vend(app, admin, "100003", "10.00")


def _closed_ids(app, model):
    with app.uow() as uow:
        return list(uow.session.scalars(select(model.closing_id).order_by(model.id)))


def test_summary_then_close_with_a_discrepancy(demo, admin, clerk):
    _clerk_day(demo, clerk, admin)
    till = dayclose.summary(demo, clerk)
    s = till.summary
    assert (s["sales"]["count"], s["sales"]["total"]) == (2, "35.00")
    assert s["cash"] == {"refund": {"count": 1, "total": "-2.50"},
                         "reissue_fee": {"count": 1, "total": "5.00"}}
    assert (s["cash_received"], s["cash_paid_out"]) == ("5.00", "-2.50")
    assert till.expected == Decimal("37.50") and s["expected"] == "37.50"
    assert (s["first_receipt"], s["last_receipt"]) == ("S01-00000001", "S01-00000004")

    row = dayclose.close(demo, clerk, "36.50", note="short one")
    assert (row.expected, row.counted, row.discrepancy) == (Decimal("37.50"), Decimal("36.50"),
                                                           Decimal("-1.00"))
    assert row.operator == row.closed_by == "clerk" and row.sales_count == 2
    assert row.summary["expected"] == "37.50" and row.note == "short one"
    assert row.business_day == datetime.now().astimezone().date()
    # the clerk's rows point at the closing, the admin's sale does not
    assert _closed_ids(demo, VendRow) == [row.id, row.id, None]
    assert _closed_ids(demo, CashEntryRow) == [row.id, row.id]
    with pytest.raises(BusinessRuleError, match="nothing to close"):
        dayclose.close(demo, clerk, "0")
    assert dayclose.summary(demo, admin).expected == Decimal("10.00")
    listed = dayclose.closings(demo, clerk, discrepancies_only=True)
    assert [(c.id, c.discrepancy) for c in listed] == [(row.id, Decimal("-1.00"))]
    balanced = dayclose.close(demo, admin, "10.00")
    assert balanced.discrepancy == 0
    assert [c.id for c in dayclose.closings(demo, admin)] == [balanced.id, row.id]
    assert [c.id for c in dayclose.closings(demo, admin, discrepancies_only=True)] == [row.id]


def test_a_sale_after_closing_goes_into_the_next_till(demo, admin, clerk):
    _clerk_day(demo, clerk, admin)
    first = dayclose.close(demo, clerk, "37.50")
    _issue(demo, clerk, "100004")
    vending.vend(demo, clerk, "100004", "12.00")
    second = dayclose.close(demo, clerk, "12.00")
    assert (second.sales_count, second.expected) == (1, Decimal("12.00"))
    assert _closed_ids(demo, VendRow) == [first.id, first.id, None, second.id]


def test_unfinished_sale_blocks_closing_and_nothing_changes(demo, admin, clerk):
    _clerk_day(demo, clerk, admin)
    uid = _issue(demo, clerk, "100004")
    demo.reader.inject(Faults(pull_after_bytes=10))
    with pytest.raises(CardError):
        vending.vend(demo, clerk, "100004", "12.00")
    with pytest.raises(BusinessRuleError, match=r"unfinished sales \(S01-00000006\).*reconcile"):
        dayclose.close(demo, clerk, "37.50")
    with demo.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(DayClosingRow)) == 0
    assert set(_closed_ids(demo, VendRow)) == {None}
    demo.reader.insert(uid)
    vending.reconcile_card_in_reader(demo, clerk)
    assert dayclose.close(demo, clerk, "37.50").discrepancy == 0


@pytest.mark.parametrize("counted,error", [("-1.00", ValidationError), ("1.005", ValidationError),
                                           ("abc", ValidationError)])
def test_bad_counted_cash_is_refused(demo, admin, clerk, counted, error):
    _clerk_day(demo, clerk, admin)
    with pytest.raises(error):
        dayclose.close(demo, clerk, counted)
    assert set(_closed_ids(demo, VendRow)) == {None}


def test_whose_till_may_be_closed(demo, admin, clerk):
    _clerk_day(demo, clerk, admin)
    with pytest.raises(PermissionDenied, match="close_any_day"):
        dayclose.close(demo, clerk, "10.00", operator="admin")
    with pytest.raises(PermissionDenied, match="close_any_day"):
        dayclose.summary(demo, clerk, operator="admin")
    auditor = _operator(demo, "audit", "auditor")
    with pytest.raises(PermissionDenied, match="close_day"):
        dayclose.close(demo, auditor, "0")
    supervisor = _operator(demo, "boss", "supervisor")
    with pytest.raises(NotFound, match="no operator ghost"):
        dayclose.close(demo, supervisor, "0", operator="ghost")
    row = dayclose.close(demo, supervisor, "40.00", operator="clerk", note="clerk went home")
    assert (row.operator, row.closed_by, row.discrepancy) == ("clerk", "boss", Decimal("2.50"))
    assert dayclose.open_operators(demo, supervisor) == ["admin"]


def test_closed_rows_cannot_change_in_the_database(demo, admin, clerk):
    _clerk_day(demo, clerk, admin)
    closing = dayclose.close(demo, clerk, "37.50")
    with demo.uow() as uow:
        closed_vend = uow.session.scalar(select(VendRow.id).where(VendRow.closing_id.is_not(None)))
        open_vend = uow.session.scalar(select(VendRow.id).where(VendRow.closing_id.is_(None)))
        closed_cash = uow.session.scalar(select(CashEntryRow.id))
    refused = [
        ("UPDATE vends SET amount = 1 WHERE id = :i", closed_vend, "can no longer change"),
        ("UPDATE vends SET closing_id = NULL WHERE id = :i", closed_vend, "can no longer change"),
        ("UPDATE cash_entries SET amount = 1 WHERE id = :i", closed_cash, "can no longer change"),
        ("DELETE FROM cash_entries WHERE id = :i", closed_cash, "can no longer change"),
        ("DELETE FROM vends WHERE id = :i", open_vend, "no sale is ever deleted"),
        ("DELETE FROM vends WHERE id = :i", closed_vend, "ever deleted|can no longer change"),
    ]
    for sql, row_id, message in refused:
        with pytest.raises(IntegrityError, match=message):
            with demo.engine.begin() as conn:
                conn.execute(text(sql), {"i": row_id})
    with demo.engine.begin() as conn:  # an open sale may still change (e.g. reconciliation)
        assert conn.execute(text("UPDATE vends SET note = 'checked' WHERE id = :i"),
                            {"i": open_vend}).rowcount == 1
    with demo.uow() as uow:  # through the ORM as well
        uow.session.get(VendRow, closed_vend).note = "rewritten"
        with pytest.raises(IntegrityError):
            uow.commit()
    with demo.uow() as uow:
        v = uow.session.get(VendRow, closed_vend)
        assert v.note == "" and v.amount == Decimal("20.00") and v.closing_id == closing.id
        with pytest.raises(BusinessRuleError, match=(
                rf"sale {v.receipt_no} was closed in day closing {closing.id} on "
                rf"{closing.business_day.isoformat()}; it can no longer change")):
            dayclose.ensure_not_closed(v)
        dayclose.ensure_not_closed(uow.session.get(VendRow, open_vend))  # open: no error
        c = uow.session.get(CashEntryRow, closed_cash)
        with pytest.raises(BusinessRuleError, match="cash entry S01-00000003 was closed"):
            dayclose.ensure_not_closed(c, uow)


def test_business_day_follows_the_configured_station_timezone(tmp_path, backend, home):
    app, drop = make_app(tmp_path, backend, station={"timezone": "Pacific/Kiritimati"})
    try:
        setup.init(app, ADMIN, ADMIN_PW)
        op = app.login(ADMIN, ADMIN_PW)
        setup.seed_demo(app, op)
        _issue(app, op, "100001")
        vending.vend(app, op, "100001", "20.00")
        row = dayclose.close(app, op, "20.00")
        assert row.business_day == datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
        app.config.data["station"]["timezone"] = "Mars/Olympus_Mons"
        with pytest.raises(ConfigError, match="Mars/Olympus_Mons"):
            dayclose.business_day(app)
    finally:
        app.close()
        drop()


def test_reversed_sale_and_its_refund_net_out_in_the_till(demo, admin, clerk):
    from dbmis_core.services import reversal

    _issue(demo, clerk, "100001")
    sale = vending.vend(demo, clerk, "100001", "20.00")
    done = reversal.reverse_sale(demo, clerk, sale.vend_id, "wrong amount typed", supervisor=admin)
    assert done is not None
    till = dayclose.summary(demo, clerk)
    assert till.summary["sales"] == {"count": 1, "total": "20.00", "reversed": 1, "energy": "35.71",
                                     "debt_recovered": "0.00"}
    assert till.summary["cash"] == {"refund": {"count": 1, "total": "-20.00"}}
    assert till.expected == Decimal("0.00")
    row = dayclose.close(demo, clerk, "0.00")
    assert row.discrepancy == 0 and row.sales_count == 1


def test_pending_reversal_blocks_closing(demo, admin, clerk):
    from dbmis_core.storage.models import ReversalRow

    _clerk_day(demo, clerk, admin)
    with demo.uow() as uow:
        v = uow.session.scalar(select(VendRow).where(VendRow.operator == "clerk"))
        uow.session.add(ReversalRow(vend_id=v.id, state="pending", refund=v.amount, reason="r",
                                    operator="admin", approved_by="admin", station="S01"))
        uow.commit()
    with pytest.raises(BusinessRuleError, match=r"reversal \d+ of sale S01-00000001.*reconcile"):
        dayclose.close(demo, clerk, "37.50")
    assert "reversal" in " ".join(dayclose.summary(demo, clerk).unfinished)


def test_pending_card_reissue_blocks_closing(demo, admin, clerk):
    from dbmis_core.storage.models import CardRow, ReissueRow

    _clerk_day(demo, clerk, admin)
    with demo.uow() as uow:
        card = uow.session.scalar(select(CardRow).order_by(CardRow.id))
        uow.session.add(ReissueRow(customer_id=card.customer_id, old_card_id=card.id,
                                   state="pending", fee=Decimal("5.00"), operator="clerk",
                                   station="S01"))
        uow.commit()
    with pytest.raises(BusinessRuleError, match=r"card reissue \d+"):
        dayclose.close(demo, clerk, "37.50")
    assert dayclose.close(demo, admin, "10.00").sales_count == 1  # the admin's till is not blocked
