"""Debts: recorded, paid in cash, and recovered as a share of purchases; a failed sale gives back
what it paid towards them."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from dbmis_core.errors import BusinessRuleError, CardError, PermissionDenied, ValidationError
from dbmis_core.services import auth, cards, debts, vending
from dbmis_core.storage.models import CashEntryRow, DebtPaymentRow, DebtRow, VendRow
from dbmis_sim.meter import MeterSimulator
from dbmis_sim.sle4442 import Faults

METER1 = "000020240001"


def _issue(app, op, account="100001"):
    app.reader.new_card()
    return cards.issue_user_card(app, op, account)


def _load(app):
    path = app.config.home / "meters" / f"{METER1}.json"
    sim = MeterSimulator.load(path) if path.exists() else MeterSimulator.provision(
        path, METER1, app.keys.meter_key(METER1))
    with app.reader.connect() as conn:
        return sim.insert(conn, app.card_format)


def _payments(app):
    with app.uow() as uow:
        return [(p.debt_id, p.vend_id, p.amount) for p in
                uow.session.scalars(select(DebtPaymentRow).order_by(DebtPaymentRow.id))]


def test_no_debt_sale_is_unchanged(demo, admin):
    _issue(demo, admin)
    r = vending.vend(demo, admin, "100001", "50.00")
    assert (r.amount, r.energy, r.debt_recovered) == (Decimal("50.00"), Decimal("89.28"), 0)
    assert _payments(demo) == []


def test_share_of_purchase_pays_oldest_debt_first_never_more_than_owed(demo, admin):
    first = debts.add_debt(demo, admin, "100001", "meter replacement fee", "7.00")
    second = debts.add_debt(demo, admin, "100001", "inspection penalty", "20.00")
    _issue(demo, admin)
    r = vending.vend(demo, admin, "100001", "50.00")  # 20% = 10.00: 7.00 + 3.00
    assert r.debt_recovered == Decimal("10.00") and r.amount == Decimal("50.00")
    assert r.energy == vending.quote(demo, admin, "100001", "40.00").energy
    assert "Debt recovered" in r.receipt_text
    assert _payments(demo) == [(first.id, r.vend_id, Decimal("7.00")),
                               (second.id, r.vend_id, Decimal("3.00"))]
    with demo.uow() as uow:
        v = uow.session.get(VendRow, r.vend_id)
        assert v.debt_recovered == Decimal("10.00") and ["Debt recovered", "10.00"] in v.price_lines
    listed = {d.id: d for d in debts.list_debts(demo, admin, "100001")}
    assert listed[first.id].settled_at is not None and listed[first.id].owed == 0
    assert listed[second.id].owed == Decimal("17.00")
    _load(demo)
    r2 = vending.vend(demo, admin, "100001", "100.00")  # 20.00 due, only 17.00 owed
    assert r2.debt_recovered == Decimal("17.00")
    assert debts.list_debts(demo, admin, "100001", open_only=True) == []
    _load(demo)
    assert vending.vend(demo, admin, "100001", "10.00").debt_recovered == 0


def test_debt_share_override(demo, admin):
    debts.add_debt(demo, admin, "100001", "fee", "100.00", share="0.5")
    _issue(demo, admin)
    assert vending.check_sale(demo, admin, "100001", "30.00").debt_recovered == Decimal("15.00")
    assert vending.vend(demo, admin, "100001", "30.00").debt_recovered == Decimal("15.00")


def test_cash_payment(demo, admin):
    d = debts.add_debt(demo, admin, "100001", "fee", "30.00")
    with pytest.raises(ValidationError, match="owes 30.00"):
        debts.pay_debt(demo, admin, "100001", "30.01")
    p = debts.pay_debt(demo, admin, "100001", "12.50")
    assert p.parts == ((d.id, Decimal("12.50")),) and p.receipt_no.startswith("S01-")
    with demo.uow() as uow:
        e = uow.session.scalar(select(CashEntryRow))
        assert (e.kind, e.amount) == ("debt_payment", Decimal("12.50"))
    debts.pay_debt(demo, admin, "100001", "17.50")
    assert debts.list_debts(demo, admin, "100001")[0].settled_at is not None
    with pytest.raises(BusinessRuleError, match="owes nothing"):
        debts.pay_debt(demo, admin, "100001", "1.00")


def test_bad_debts_refused_and_clerk_may_not_record(demo, admin):
    for amount, share, msg in [("0", None, "positive"), ("1.001", None, "two decimals"),
                               ("5", "1", "below 1"), ("5", "-0.1", "at least 0")]:
        with pytest.raises(ValidationError, match=msg):
            debts.add_debt(demo, admin, "100001", "fee", amount, share=share)
    clerk = auth.Operator("clerk", "Clerk", "clerk")
    with pytest.raises(PermissionDenied):
        debts.add_debt(demo, clerk, "100001", "fee", "5.00")
    with demo.uow() as uow:
        assert uow.session.scalar(select(DebtRow)) is None


def test_failed_sale_gives_back_its_debt_payment(demo, admin):
    """Pulled card -> pending -> reconciled failed: the debt is owed again, no payment remains."""
    d = debts.add_debt(demo, admin, "100001", "fee", "50.00")
    uid = _issue(demo, admin)
    first = vending.vend(demo, admin, "100001", "20.00")
    assert first.debt_recovered == Decimal("4.00")
    _load(demo)
    demo.reader.inject(Faults(pull_after_bytes=10))
    with pytest.raises(CardError, match="pending"):
        vending.vend(demo, admin, "100001", "30.00")
    with demo.uow() as uow:  # the pending sale holds its debt payment, written with it
        assert uow.session.get(DebtRow, d.id).recovered == Decimal("10.00")
    demo.reader.insert(uid)
    assert [s for _, s in vending.reconcile_card_in_reader(demo, admin)] == ["failed"]
    with demo.uow() as uow:
        assert uow.session.get(DebtRow, d.id).recovered == Decimal("4.00")
    assert [p[1] for p in _payments(demo)] == [first.vend_id]


def test_read_back_failure_gives_back_debt_payment(demo, admin, monkeypatch):
    d = debts.add_debt(demo, admin, "100001", "fee", "50.00")
    _issue(demo, admin)
    fmt = demo.card_format
    real_read = type(fmt).read
    calls = {"n": 0}

    def read_without_vend(self, conn):  # the second read (read-back) does not show the record
        calls["n"] += 1
        image = real_read(self, conn)
        if calls["n"] == 2:
            import attrs
            return attrs.evolve(image, vend=None)
        return image

    monkeypatch.setattr(type(fmt), "read", read_without_vend)
    with pytest.raises(CardError, match="read-back failed"):
        vending.vend(demo, admin, "100001", "20.00")
    with demo.uow() as uow:
        assert uow.session.get(DebtRow, d.id).recovered == 0
        assert uow.session.scalar(select(VendRow)).state == "failed"
    assert _payments(demo) == []
