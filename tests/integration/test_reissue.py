"""Lost-card reissue on SQLite and PostgreSQL, with the simulated card and meter."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from dbmis_core.domain import CardType
from dbmis_core.errors import (
    BusinessRuleError,
    CardError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from dbmis_core.services import auth, cards, reissue, vending
from dbmis_core.storage.models import CardRow, CashEntryRow, ReissueRow, VendRow
from dbmis_sim.meter import MeterSimulator
from dbmis_sim.sle4442 import Faults

ACCOUNT, METER = "100001", "000020240001"


def _meter(app):
    return MeterSimulator.provision(app.config.home / "meters" / f"{METER}.json", METER,
                                    app.keys.meter_key(METER))


def _insert(app, sim, uid):
    app.reader.insert(uid)
    with app.reader.connect() as conn:
        return sim.insert(conn, app.card_format)


def _card(app, uid):
    with app.uow() as uow:
        row = uow.session.scalar(select(CardRow).where(CardRow.uid == uid))
        return (row.status, CardType(row.card_type)) if row else None


def _cash(app, kind):
    with app.uow() as uow:
        return list(uow.session.scalars(select(CashEntryRow).where(CashEntryRow.kind == kind)))


def _reissues(app):
    with app.uow() as uow:
        return list(uow.session.scalars(select(ReissueRow).order_by(ReissueRow.id)))


@pytest.fixture
def sold(demo, admin):
    """Customer 100001 with a card, one sale loaded into the meter and a second still on the card."""
    demo.reader.new_card()
    old = cards.issue_user_card(demo, admin, ACCOUNT)
    sim = _meter(demo)
    vending.vend(demo, admin, ACCOUNT, "50.00")
    assert _insert(demo, sim, old).applied == Decimal("89.28")
    second = vending.vend(demo, admin, ACCOUNT, "10.00")
    return demo, old, sim, second


def test_replacement_carries_the_last_sale_and_the_meter_moves_to_it(sold, admin):
    app, old, sim, second = sold
    new = app.reader.new_card()
    r = reissue.reissue_card(app, admin, ACCOUNT, reason="lost at the market")
    assert (r.state, r.old_uid, r.new_uid, r.sequence, r.credit) == ("completed", old, new, 2,
                                                                     second.credit)
    image = cards.read_card(app, admin).image
    with app.uow() as uow:
        v = uow.session.get(VendRow, second.vend_id)
        assert image.vend.issued_at == v.issued_at
    assert image.header.card_type == CardType.REPLACEMENT and image.vend.sequence == 2
    assert image.vend.credit == second.credit and image.unloaded
    assert _card(app, old) == ("lost", CardType.USER)
    assert _card(app, new) == ("active", CardType.REPLACEMENT)
    # the unloaded second sale reaches the meter through the replacement, exactly once
    assert _insert(app, sim, new).applied == second.credit
    assert _insert(app, sim, new).applied == 0
    assert sim.state.bound_uid == new and old in sim.state.retired_uids
    refused = _insert(app, sim, old)
    assert not refused.accepted and "replaced" in refused.message
    assert Decimal(sim.state.cumulative_purchased) == Decimal("89.28") + second.credit
    # sales go on with the replacement card
    app.reader.insert(new)
    assert vending.vend(app, admin, ACCOUNT, "10.00").sequence == 3


def test_old_card_is_refused_by_the_system(sold, admin):
    app, old, _sim, _second = sold
    app.reader.new_card()
    reissue.reissue_card(app, admin, ACCOUNT)
    app.reader.insert(old)
    with pytest.raises(BusinessRuleError, match="is lost"):
        vending.vend(app, admin, ACCOUNT, "10.00")


def test_a_false_lost_report_gains_nothing(demo, admin):
    demo.reader.new_card()
    old = cards.issue_user_card(demo, admin, ACCOUNT)
    sim = _meter(demo)
    sale = vending.vend(demo, admin, ACCOUNT, "50.00")
    assert _insert(demo, sim, old).applied == sale.credit  # the customer loaded it, then "lost" it
    new = demo.reader.new_card()
    reissue.reissue_card(demo, admin, ACCOUNT, reason="says it is lost")
    result = _insert(demo, sim, new)
    assert result.accepted and result.applied == 0 and "already loaded" in result.message
    assert not _insert(demo, sim, old).accepted  # the "lost" card is now useless too
    assert Decimal(sim.state.cumulative_purchased) == sale.credit
    assert sim.state.last_sequence == 1


def test_fee_defaults_to_the_setting_and_is_taken_once(demo, admin):
    demo.config.data["card"]["reissue_fee"] = "5.00"
    demo.reader.new_card()
    cards.issue_user_card(demo, admin, ACCOUNT)
    demo.reader.new_card()
    r = reissue.reissue_card(demo, admin, ACCOUNT)
    assert (r.sequence, r.fee) == (None, Decimal("5.00")) and r.fee_receipt_no == "S01-00000001"
    fees = _cash(demo, "reissue_fee")
    assert [(c.amount, c.receipt_no) for c in fees] == [(Decimal("5.00"), "S01-00000001")]
    demo.reader.new_card()
    r2 = reissue.reissue_card(demo, admin, ACCOUNT, fee="0")  # waived
    assert r2.old_uid == r.new_uid and r2.fee_receipt_no is None
    assert len(_cash(demo, "reissue_fee")) == 1


def test_refusals_change_nothing(sold, admin):
    app, old, _sim, _second = sold
    app.reader.insert(old)
    with pytest.raises(ValidationError, match="already registered"):
        reissue.reissue_card(app, admin, ACCOUNT)
    app.reader.new_card()
    with pytest.raises(ValidationError, match="negative"):
        reissue.reissue_card(app, admin, ACCOUNT, fee="-1")
    with pytest.raises(NotFound, match="no customer"):
        reissue.reissue_card(app, admin, "999999")
    with app.uow() as uow:
        auth.create_operator(uow, "tech", "Tech", "tech-pass-1", "technician")
        uow.commit()
    with pytest.raises(PermissionDenied):
        reissue.reissue_card(app, app.login("tech", "tech-pass-1"), ACCOUNT)
    assert _reissues(app) == [] and _card(app, old) == ("active", CardType.USER)


@pytest.mark.parametrize("cut", [0, 10, 40])
def test_pulled_replacement_is_settled_by_reconciliation(sold, admin, cut):
    app, old, sim, second = sold
    new = app.reader.new_card()
    app.reader.inject(Faults(pull_after_bytes=cut))
    with pytest.raises(CardError, match="pending"):
        reissue.reissue_card(app, admin, ACCOUNT)
    assert [r.state for r in _reissues(app)] == ["pending"]
    assert _card(app, old) == ("lost", CardType.USER) and _card(app, new) is None
    app.reader.insert(new)
    vending.reconcile_card_in_reader(app, admin)
    (row,) = _reissues(app)
    assert row.state in ("completed", "failed")
    if row.state == "failed":  # the same card can be used for the next attempt
        r = reissue.reissue_card(app, admin, ACCOUNT)
        assert r.state == "completed" and r.new_uid == new and r.old_uid == old
    assert _card(app, new) == ("active", CardType.REPLACEMENT)
    assert _insert(app, sim, new).applied == second.credit
    assert not _insert(app, sim, old).accepted


def test_rerunning_reissue_with_the_card_of_a_crashed_attempt_finishes_it(sold, admin):
    """Simulate a crash after the card was written: the row is pending, the card is complete."""
    app, old, _sim, second = sold
    new = app.reader.new_card()
    r = reissue.reissue_card(app, admin, ACCOUNT)
    with app.uow() as uow:  # turn the clock back to "pending, card written"
        row = uow.session.get(ReissueRow, r.reissue_id)
        row.state, row.completed_at = "pending", None
        uow.session.delete(uow.session.scalar(select(CardRow).where(CardRow.uid == new)))
        uow.commit()
    again = reissue.reissue_card(app, admin, ACCOUNT)
    assert (again.reissue_id, again.state, again.sequence) == (r.reissue_id, "completed", 2)
    assert _card(app, new) == ("active", CardType.REPLACEMENT)


def test_unfinished_sale_blocks_reissue(sold, admin):
    app, old, _sim, _second = sold
    with app.uow() as uow:
        v = uow.session.scalar(select(VendRow).order_by(VendRow.id.desc()))
        v.state = "pending"
        uow.commit()
    app.reader.new_card()
    with pytest.raises(BusinessRuleError, match="unfinished"):
        reissue.reissue_card(app, admin, ACCOUNT)
    assert _reissues(app) == [] and _card(app, old) == ("active", CardType.USER)
