"""Customer changes: details, category, tariff, capacity; meter replacement with make-up credit
(checked against the meter simulator); closure with refund or transfer; the customer's record."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from dbmis_core.errors import BusinessRuleError, CardError, PermissionDenied, ValidationError
from dbmis_core.services import auth, cards, customers, debts, vending
from dbmis_core.storage.models import CardRow, CashEntryRow, CustomerRow, MeterRow, VendRow
from dbmis_sim.meter import MeterSimulator

OLD, NEW = "000020240001", "000020249001"


def _issue(app, op, account="100001"):
    app.reader.new_card()
    return cards.issue_user_card(app, op, account)


def _sim(app, meter_no):
    path = app.config.home / "meters" / f"{meter_no}.json"
    return MeterSimulator.load(path) if path.exists() else MeterSimulator.provision(
        path, meter_no, app.keys.meter_key(meter_no))


def _load(app, meter_no):
    sim = _sim(app, meter_no)
    with app.reader.connect() as conn:
        return sim, sim.insert(conn, app.card_format)


def _customer(app, account):
    with app.uow() as uow:
        c = uow.session.scalar(select(CustomerRow).where(CustomerRow.account_no == account))
        uow.session.expunge(c)
        return c


def test_change_details_category_tariff_capacity(demo, admin):
    done = customers.change_customer(demo, admin, "100001", name="Amina Diallo", phone="0700 1",
                                     category="commercial", tariff="flat", capacity_amps="25",
                                     capacity_mode="trip")
    assert [c.kind for c in done] == ["details", "category", "tariff", "capacity"]
    assert done[0].after == {"name": "Amina Diallo", "phone": "0700 1"}
    assert done[1].before == {"category": "residential"} and done[2].after == {"tariff": "flat"}
    c = _customer(demo, "100001")
    assert (c.name, c.category, c.tariff, c.capacity_amps, c.capacity_mode) == (
        "Amina Diallo", "commercial", "flat", Decimal("25.00"), "trip")
    back = customers.change_customer(demo, admin, "100001", tariff="default")
    assert back[0].before == {"tariff": "flat"} and _customer(demo, "100001").tariff is None
    assert [c.kind for c in customers.changes_of(demo, admin, "100001")] == [
        "details", "category", "tariff", "capacity", "tariff"]


@pytest.mark.parametrize("kw,msg", [({"tariff": "nosuch"}, "unknown tariff"),
                                    ({"category": "royal"}, "unknown category"),
                                    ({"capacity_amps": "-3"}, "capacity"),
                                    ({"capacity_mode": "explode"}, "capacity mode"),
                                    ({"name": " "}, "name must not be empty")])
def test_bad_change_writes_nothing(demo, admin, kw, msg):
    with pytest.raises(ValidationError, match=msg):
        customers.change_customer(demo, admin, "100001", phone="123", **kw)
    assert customers.changes_of(demo, admin, "100001") == []
    assert _customer(demo, "100001").phone != "123"


def test_empty_or_unchanged_change_refused(demo, admin):
    with pytest.raises(ValidationError, match="nothing to change"):
        customers.change_customer(demo, admin, "100001")
    phone = _customer(demo, "100001").phone
    with pytest.raises(ValidationError, match="nothing changed"):
        customers.change_customer(demo, admin, "100001", phone=phone)
    assert customers.changes_of(demo, admin, "100001") == []


def test_meter_replacement_moves_remaining_credit_exactly_once(demo, admin):
    old_uid = _issue(demo, admin)
    r1 = vending.vend(demo, admin, "100001", "50.00")  # 89.28 kWh
    old_sim, _ = _load(demo, OLD)
    old_sim.run(10, Decimal("3"))                       # 30 kWh used: 59.28 left
    _load(demo, OLD)
    cards.read_card(demo, admin)                        # return data stored
    demo.config.data["sales"]["refuse_unloaded"] = False
    r2 = vending.vend(demo, admin, "100001", "10.00")   # 17.85 kWh sold, never loaded
    assert r1.credit == Decimal("89.28") and r2.credit == Decimal("17.85")
    with pytest.raises(PermissionDenied):
        customers.replace_meter(demo, auth.Operator("clerk", "Clerk", "clerk"), "100001", NEW)
    new_uid = demo.reader.new_card()
    rep = customers.replace_meter(demo, admin, "100001", NEW, fee="15.00")
    expected = Decimal("59.28") + Decimal("17.85")
    assert rep.remaining.total == expected and rep.new_card_uid == new_uid
    assert (rep.makeup.sequence, rep.makeup.credit, rep.makeup.state) == (1, expected, "completed")
    new_sim, res = _load(demo, NEW)
    assert res.applied == expected and new_sim.remaining == expected
    _, again = _load(demo, NEW)
    assert again.applied == 0 and new_sim.state.last_sequence == 1  # credited once
    with demo.uow() as uow:
        s = uow.session
        assert s.scalar(select(CardRow.status).where(CardRow.uid == old_uid)) == "replaced"
        assert s.scalar(select(MeterRow.status).where(MeterRow.meter_no == OLD)) == "removed"
        new = s.scalar(select(MeterRow).where(MeterRow.meter_no == NEW))
        assert (new.status, new.customer.account_no, new.last_sequence) == ("installed", "100001", 1)
        mk = s.get(VendRow, rep.makeup.vend_id)
        assert (mk.kind, mk.amount, mk.credit) == ("makeup", 0, expected)
    assert debts.list_debts(demo, admin, "100001")[0].reason == "meter replacement fee"
    demo.reader.insert(new_uid)  # the customer buys again on the new card; the fee is recovered
    r3 = vending.vend(demo, admin, "100001", "20.00")
    assert (r3.meter_no, r3.sequence, r3.debt_recovered) == (NEW, 2, Decimal("4.00"))
    demo.reader.insert(old_uid)
    with pytest.raises(BusinessRuleError, match="does not belong|replaced"):
        vending.vend(demo, admin, "100001", "20.00")
    kinds = [e.kind for e in customers.customer_record(demo, admin, "100001")]
    for k in ("account", "card", "purchase", "return", "makeup", "change", "debt", "debt_payment"):
        assert k in kinds


def test_replacement_refused_for_meter_not_in_store_or_unfinished_sale(demo, admin):
    _issue(demo, admin)
    demo.reader.new_card()
    with pytest.raises(ValidationError, match="not in the store"):
        customers.replace_meter(demo, admin, "100001", "000020240002")
    assert customers.changes_of(demo, admin, "100001") == []


def test_closure_with_refund(demo, admin):
    _issue(demo, admin)
    vending.vend(demo, admin, "100001", "50.00")  # 89.28 kWh at 0.56 unit price
    price = vending.sales_of(demo, admin, "100001")[0].unit_price
    closure = customers.close_account(demo, admin, "100001", refund=True)
    assert closure.remaining.total == Decimal("89.28")
    expected = (Decimal("89.28") * price).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    assert closure.value == expected and closure.refund_receipt
    with demo.uow() as uow:
        e = uow.session.scalar(select(CashEntryRow))
        assert (e.kind, e.amount) == ("closure_refund", -expected)
        assert uow.session.scalar(select(MeterRow.status).where(MeterRow.meter_no == OLD)) == "removed"
        assert uow.session.scalar(select(CardRow.status)) == "closed"
    assert _customer(demo, "100001").status == "closed"
    with pytest.raises(BusinessRuleError, match="closed"):
        vending.vend(demo, admin, "100001", "10.00")
    with pytest.raises(BusinessRuleError, match="closed"):
        customers.change_customer(demo, admin, "100001", phone="1")
    with pytest.raises(BusinessRuleError, match="closed"):
        customers.close_account(demo, admin, "100001", refund=True)


def test_closure_with_transfer_to_another_customer(demo, admin):
    _issue(demo, admin, "100001")
    vending.vend(demo, admin, "100001", "50.00")
    _load(demo, OLD)
    cards.read_card(demo, admin)          # meter holds 89.28
    target_uid = _issue(demo, admin, "100002")
    with pytest.raises(ValidationError, match="either"):
        customers.close_account(demo, admin, "100001")
    closure = customers.close_account(demo, admin, "100001", transfer_to="100002")
    assert closure.makeup.credit == Decimal("89.28") and closure.makeup.state == "completed"
    assert closure.makeup.account_no == "100002"
    sim2, res = _load(demo, "000020240002")
    assert res.applied == Decimal("89.28")
    with demo.uow() as uow:
        entries = {(e.kind, e.amount) for e in uow.session.scalars(select(CashEntryRow))}
    assert entries == {("transfer_out", -closure.value), ("transfer_in", closure.value)}
    demo.reader.insert(target_uid)
    assert vending.vend(demo, admin, "100002", "10.00").sequence == 2


def test_failed_makeup_is_resent_once_and_loaded_once(demo, admin, monkeypatch):
    """The make-up write fails (card pulled): the sale machinery settles it failed at once; the
    credit is re-sent on request and the new meter credits it exactly once."""
    from dbmis_core.errors import CardRemovedError

    _issue(demo, admin)
    sold = vending.vend(demo, admin, "100001", "50.00")
    new_uid = demo.reader.new_card()
    fmt_type = type(demo.card_format)
    real_write = fmt_type.write_vend

    def pulled(self, conn, record):
        raise CardRemovedError("card pulled during the write")

    monkeypatch.setattr(fmt_type, "write_vend", pulled)
    with pytest.raises(CardError, match="pending until the card is presented"):
        customers.replace_meter(demo, admin, "100001", NEW)
    monkeypatch.setattr(fmt_type, "write_vend", real_write)
    with demo.uow() as uow:
        mk = uow.session.scalar(select(VendRow).where(VendRow.kind == "makeup"))
        assert (mk.state, mk.credit) == ("failed", sold.credit)
    demo.reader.insert(new_uid)
    again = customers.resend_makeup(demo, admin, "100001")
    assert (again.sequence, again.credit, again.state) == (1, sold.credit, "completed")
    with pytest.raises(BusinessRuleError, match="no failed make-up"):
        customers.resend_makeup(demo, admin, "100001")
    sim, res = _load(demo, NEW)
    assert res.applied == sold.credit
    assert _load(demo, NEW)[1].applied == 0
