"""Reversing a sale still unloaded on its card, on SQLite and PostgreSQL."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from dbmis_core.errors import (
    BusinessRuleError,
    CardError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from dbmis_core.services import auth, cards, reissue, reversal, vending
from dbmis_core.storage.models import CashEntryRow, MeterRow, ReversalRow, VendRow
from dbmis_sim.meter import MeterSimulator
from dbmis_sim.sle4442 import Faults

ACCOUNT, METER = "100001", "000020240001"


def _meter(app):
    return MeterSimulator.provision(app.config.home / "meters" / f"{METER}.json", METER,
                                    app.keys.meter_key(METER))


def _load(app, sim):
    with app.reader.connect() as conn:
        return sim.insert(conn, app.card_format)


def _state(app):
    """(vend states by sequence, meter last sequence, refunds, reversal states)."""
    with app.uow() as uow:
        s = uow.session
        vends = [(v.sequence, v.state) for v in s.scalars(select(VendRow).order_by(VendRow.id))]
        seq = s.scalar(select(MeterRow.last_sequence).where(MeterRow.meter_no == METER))
        refunds = [(c.amount, c.vend_id) for c in s.scalars(
            select(CashEntryRow).where(CashEntryRow.kind == "refund").order_by(CashEntryRow.id))]
        revs = [r.state for r in s.scalars(select(ReversalRow).order_by(ReversalRow.id))]
    return vends, seq, refunds, revs


@pytest.fixture
def people(demo):
    with demo.uow() as uow:
        auth.create_operator(uow, "boss", "Supervisor", "boss-pass-1", "supervisor")
        uow.commit()
    return demo.login("clerk", "clerk-demo-1"), demo.login("boss", "boss-pass-1")


@pytest.fixture
def card(demo, admin):
    demo.reader.new_card()
    return cards.issue_user_card(demo, admin, ACCOUNT)


def test_reversal_takes_the_credit_back_and_refunds(demo, admin, people, card):
    clerk, boss = people
    sim = _meter(demo)
    first = vending.vend(demo, clerk, ACCOUNT, "50.00")
    _load(demo, sim)
    second = vending.vend(demo, clerk, ACCOUNT, "20.00")
    r = reversal.reverse_sale(demo, clerk, second.vend_id, "wrong amount typed", supervisor=boss)
    assert (r.state, r.sequence, r.refund, r.approved_by, r.operator) == (
        "completed", 2, Decimal("20.00"), "boss", "clerk")
    assert r.refund_receipt_no == "S01-00000003"
    vends, seq, refunds, revs = _state(demo)
    assert vends == [(1, "completed"), (2, "reversed")] and seq == 1
    assert refunds == [(Decimal("-20.00"), second.vend_id)] and revs == ["completed"]
    image = cards.read_card(demo, admin).image
    assert image.vend.sequence == first.sequence  # the previous sale's record is the newest again
    # the meter gets nothing from the reversed sale
    assert _load(demo, sim).applied == 0 and sim.state.last_sequence == 1
    # the released sequence is sold again, and that sale reaches the meter
    again = vending.vend(demo, clerk, ACCOUNT, "10.00")
    assert again.sequence == 2
    assert _load(demo, sim).applied == again.credit
    assert Decimal(sim.state.cumulative_purchased) == first.credit + again.credit


def test_first_sale_reversed_leaves_an_empty_card(demo, admin, people, card):
    clerk, boss = people
    sale = vending.vend(demo, admin, ACCOUNT, "30.00")
    reversal.reverse_sale(demo, admin, sale.vend_id, "customer changed their mind")  # self-approved
    assert cards.read_card(demo, admin).image.vend is None
    vends, seq, refunds, _ = _state(demo)
    assert vends == [(1, "reversed")] and seq == 0 and refunds[0][0] == Decimal("-30.00")
    assert vending.vend(demo, clerk, ACCOUNT, "10.00").sequence == 1


def test_loaded_sale_cannot_be_reversed(demo, people, card):
    clerk, boss = people
    sim = _meter(demo)
    sale = vending.vend(demo, clerk, ACCOUNT, "50.00")
    _load(demo, sim)
    before = _state(demo)
    with pytest.raises(BusinessRuleError, match="already been loaded"):
        reversal.reverse_sale(demo, clerk, sale.vend_id, "too late", supervisor=boss)
    assert _state(demo) == before and before[0] == [(1, "completed")]


def test_only_the_latest_sale_and_only_once(demo, people, card):
    clerk, boss = people
    demo.config.data["sales"]["refuse_unloaded"] = False
    first = vending.vend(demo, clerk, ACCOUNT, "50.00")
    second = vending.vend(demo, clerk, ACCOUNT, "20.00")
    with pytest.raises(BusinessRuleError, match="not the latest sale"):
        reversal.reverse_sale(demo, clerk, first.vend_id, "x", supervisor=boss)
    reversal.reverse_sale(demo, clerk, second.vend_id, "x", supervisor=boss)
    with pytest.raises(BusinessRuleError, match="already reversed"):
        reversal.reverse_sale(demo, clerk, second.vend_id, "x", supervisor=boss)
    # now the first sale is the latest and still on the card, unloaded: it may go too
    reversal.reverse_sale(demo, clerk, first.vend_id, "x", supervisor=boss)
    vends, seq, refunds, _ = _state(demo)
    assert vends == [(1, "reversed"), (2, "reversed")] and seq == 0 and len(refunds) == 2


def test_approval_and_input_are_checked(demo, people, card):
    clerk, boss = people
    sale = vending.vend(demo, clerk, ACCOUNT, "50.00")
    with pytest.raises(PermissionDenied, match="supervisor must approve"):
        reversal.reverse_sale(demo, clerk, sale.vend_id, "x")
    with pytest.raises(PermissionDenied, match="may not approve"):
        reversal.reverse_sale(demo, clerk, sale.vend_id, "x", supervisor=clerk)
    with pytest.raises(ValidationError, match="reason"):
        reversal.reverse_sale(demo, clerk, sale.vend_id, "  ", supervisor=boss)
    with pytest.raises(NotFound):
        reversal.reverse_sale(demo, clerk, 999999, "x", supervisor=boss)
    assert _state(demo)[0] == [(1, "completed")] and _state(demo)[3] == []


def test_closed_day_cannot_be_reversed(demo, people, card):
    clerk, boss = people
    sale = vending.vend(demo, clerk, ACCOUNT, "50.00")
    from dbmis_core.services import dayclose

    dayclose.close(demo, clerk, "50.00")
    with pytest.raises(BusinessRuleError, match="closed"):
        reversal.reverse_sale(demo, clerk, sale.vend_id, "x", supervisor=boss)
    assert _state(demo)[0] == [(1, "completed")]


def test_another_card_cannot_prove_the_sale_unloaded(demo, admin, people, card):
    """After a reissue the replacement carries the sale, but the old card may have loaded it."""
    clerk, boss = people
    sale = vending.vend(demo, clerk, ACCOUNT, "50.00")
    demo.reader.new_card()
    reissue.reissue_card(demo, admin, ACCOUNT)
    with pytest.raises(BusinessRuleError, match="was written to card"):
        reversal.reverse_sale(demo, clerk, sale.vend_id, "x", supervisor=boss)
    demo.reader.insert(card)
    with pytest.raises(BusinessRuleError, match="lost|not the card|was written"):
        vending.vend(demo, clerk, ACCOUNT, "10.00")
    assert _state(demo)[0] == [(1, "completed")]


@pytest.mark.parametrize("cut", [0, 1, 47])
def test_pulled_card_during_revoke_is_settled_by_reconciliation(demo, admin, people, card, cut):
    clerk, boss = people
    sim = _meter(demo)
    sale = vending.vend(demo, clerk, ACCOUNT, "50.00")
    demo.reader.inject(Faults(pull_after_bytes=cut))
    with pytest.raises(CardError, match="pending"):
        reversal.reverse_sale(demo, clerk, sale.vend_id, "x", supervisor=boss)
    assert _state(demo)[3] == ["pending"] and _state(demo)[2] == []
    demo.reader.insert(card)
    settled = vending.reconcile_card_in_reader(demo, admin)
    vends, seq, refunds, revs = _state(demo)
    if cut == 0:  # nothing reached the card: the sale stands
        assert revs == ["failed"] and vends == [(1, "completed")] and seq == 1 and refunds == []
        assert settled == [(sale.vend_id, "completed")]
        assert _load(demo, sim).applied == sale.credit
    else:  # the slot is torn: the card lost the record, so the reversal completes
        assert revs == ["completed"] and vends == [(1, "reversed")] and seq == 0
        assert refunds == [(Decimal("-50.00"), sale.vend_id)]
        assert settled == [(sale.vend_id, "reversed")]
        assert _load(demo, sim).applied == 0
    vending.reconcile_card_in_reader(demo, admin)
    assert len(_state(demo)[2]) == (0 if cut == 0 else 1)  # refunded at most once


def test_card_torn_while_the_meter_wrote_back_cannot_prove_anything(demo, people, card):
    """The meter loaded the sale, then the card was pulled while it wrote its data back."""
    clerk, boss = people
    sim = _meter(demo)
    sale = vending.vend(demo, clerk, ACCOUNT, "50.00")
    demo.reader.inject(Faults(pull_after_bytes=10))
    with pytest.raises(CardError):
        _load(demo, sim)
    assert sim.state.last_sequence == 1 and not demo.reader.card_present()
    demo.reader.insert(card)
    with pytest.raises(BusinessRuleError, match="cannot show"):
        reversal.reverse_sale(demo, clerk, sale.vend_id, "x", supervisor=boss)
    assert _state(demo)[0] == [(1, "completed")] and _state(demo)[3] == []
