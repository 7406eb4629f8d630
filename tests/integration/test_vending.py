"""The vend service on a real SQLite file and on PostgreSQL, with the simulated card."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from dbmis_core.domain import VendState
from dbmis_core.errors import (
    BusinessRuleError,
    CardError,
    NoCardError,
    PermissionDenied,
    ValidationError,
)
from dbmis_core.services import auth, cards, vending
from dbmis_core.testing.databases import ADMIN, ADMIN_PW, make_app
from dbmis_core.storage.models import VendRow
from dbmis_sim.meter import MeterSimulator
from dbmis_sim.sle4442 import Faults


def _issue(app, op, account="100001"):
    app.reader.new_card()
    return cards.issue_user_card(app, op, account)


def _meter(app, meter_no):
    return MeterSimulator.provision(app.config.home / "meters" / f"{meter_no}.json", meter_no,
                                    app.keys.meter_key(meter_no))


def _load(app, sim):
    with app.reader.connect() as conn:
        return sim.insert(conn, app.card_format)


def _vends(app):
    with app.uow() as uow:
        return list(uow.session.scalars(select(VendRow).order_by(VendRow.id)))


def test_sale_writes_card_and_completes(demo, admin):
    _issue(demo, admin)
    r = vending.vend(demo, admin, "100001", "50.00")
    assert (r.sequence, r.energy, r.state) == (1, Decimal("89.28"), VendState.COMPLETED)
    assert r.receipt_no == "S01-00000001" and "89.28 kWh" in r.receipt_text
    image = cards.read_card(demo, admin).image
    assert image.vend.sequence == 1 and image.vend.credit == Decimal("89.28")
    assert image.unloaded


def test_next_sale_refused_until_loaded_then_records_consumption(demo, admin):
    _issue(demo, admin)
    r1 = vending.vend(demo, admin, "100001", "50.00")
    with pytest.raises(BusinessRuleError, match="not been loaded"):
        vending.vend(demo, admin, "100001", "10.00")
    assert len(_vends(demo)) == 1
    sim = _meter(demo, r1.meter_no)
    assert _load(demo, sim).applied == Decimal("89.28")
    sim.run(30, Decimal("2"))
    _load(demo, sim)
    r2 = vending.vend(demo, admin, "100001", "10.00")
    assert r2.sequence == 2 and r2.consumption_recorded == Decimal("60.00")
    assert r2.receipt_no == "S01-00000002"


def test_refusal_can_be_switched_off(tmp_path, backend, home):
    from dbmis_core.services import setup

    app, drop = make_app(tmp_path, backend, sales={"refuse_unloaded": False})
    try:
        setup.init(app, ADMIN, ADMIN_PW)
        op = app.login(ADMIN, ADMIN_PW)
        setup.seed_demo(app, op)
        _issue(app, op)
        vending.vend(app, op, "100001", "10.00")
        assert vending.vend(app, op, "100001", "10.00").sequence == 2
    finally:
        app.close()
        drop()


@pytest.mark.parametrize("amount,msg", [("0.001", "two decimals"), ("abc", "not a number"),
                                        ("0.50", "smallest"), ("99999", "largest"),
                                        ("-5", "smallest")])
def test_bad_amount_changes_nothing(demo, admin, amount, msg):
    _issue(demo, admin)
    with pytest.raises(ValidationError, match=msg):
        vending.vend(demo, admin, "100001", amount)
    assert _vends(demo) == []


def test_card_of_another_customer_refused(demo, admin):
    _issue(demo, admin, "100001")
    with pytest.raises(BusinessRuleError, match="does not belong"):
        vending.vend(demo, admin, "100002", "10.00")
    assert _vends(demo) == []


def test_no_card_is_a_clear_error(demo, admin):
    _issue(demo, admin)
    demo.reader.eject()
    with pytest.raises(NoCardError):
        vending.vend(demo, admin, "100001", "10.00")


def test_auditor_may_not_sell(demo, admin):
    with demo.uow() as uow:
        auth.create_operator(uow, "audit", "Auditor", "audit-pass-1", "auditor")
        uow.commit()
    auditor = demo.login("audit", "audit-pass-1")
    _issue(demo, admin)
    with pytest.raises(PermissionDenied):
        vending.vend(demo, auditor, "100001", "10.00")


@pytest.mark.parametrize("pull_after", [0, 10, 45])
def test_card_pulled_mid_write_is_reconciled(demo, admin, pull_after):
    """Pulled during the write: the sale stays pending, then settles from what the card holds."""
    uid = _issue(demo, admin)
    first = vending.vend(demo, admin, "100001", "20.00")
    sim = _meter(demo, first.meter_no)
    _load(demo, sim)
    demo.reader.inject(Faults(pull_after_bytes=pull_after))
    with pytest.raises(CardError, match="pending"):
        vending.vend(demo, admin, "100001", "30.00")
    assert [v.state for v in _vends(demo)] == ["completed", "pending"]
    demo.reader.insert(uid)
    done = vending.reconcile_card_in_reader(demo, admin)
    # the torn slot fails its CRC, so the card still holds sequence 1 in the other slot
    assert [s for _, s in done] == ["failed"]
    assert _load(demo, sim).applied == 0  # the meter gets nothing from the torn record
    again = vending.vend(demo, admin, "100001", "30.00")
    assert again.sequence == 2
    assert _load(demo, sim).applied == again.credit
    states = [(v.sequence, v.state) for v in _vends(demo)]
    assert states == [(1, "completed"), (2, "failed"), (2, "completed")]


def test_pending_sale_whose_record_reached_the_card_completes(demo, admin):
    """Crash after the card write but before the final commit: reconciliation completes it once."""
    uid = _issue(demo, admin)
    r = vending.vend(demo, admin, "100001", "20.00")
    with demo.uow() as uow:  # roll the database back to the durable PENDING state
        row = uow.session.get(VendRow, r.vend_id)
        row.state, row.receipt_no, row.completed_at = VendState.PENDING.value, None, None
        uow.commit()
    demo.reader.insert(uid)
    assert vending.reconcile_card_in_reader(demo, admin) == [(r.vend_id, "completed")]
    assert vending.reconcile_card_in_reader(demo, admin) == []
    with demo.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(VendRow)
                                  .where(VendRow.state == "completed")) == 1


def test_receipt_numbers_have_no_gaps(demo, admin):
    for acct in ("100001", "100002", "100003"):
        _issue(demo, admin, acct)
        vending.vend(demo, admin, acct, "15.00")
    assert [v.receipt_no for v in _vends(demo)] == [f"S01-{i:08d}" for i in (1, 2, 3)]


def test_an_auditor_reading_a_card_stores_no_meter_data(demo, admin, tmp_path):
    """Reading is allowed to the read-only auditor; storing the card's meter data is not."""
    from dbmis_core.services.auth import create_operator
    from dbmis_core.storage.models import MeterReturnRow
    from dbmis_sim.meter import MeterSimulator

    demo.reader.new_card()
    cards.issue_user_card(demo, admin, "100001")
    vending.vend(demo, admin, "100001", "10.00")
    sim = MeterSimulator.provision(tmp_path / "m.json", "000020240001",
                                   demo.keys.meter_key("000020240001"))
    with demo.reader.connect() as conn:
        sim.insert(conn, demo.card_format)
    with demo.uow() as uow:
        create_operator(uow, "ann", "Ann Auditor", "auditor-pw-1", "auditor")
        uow.commit()
    auditor = demo.login("ann", "auditor-pw-1")
    assert cards.read_card(demo, auditor).image.returned is not None
    with demo.uow() as uow:
        assert uow.session.query(MeterReturnRow).count() == 0
    cards.read_card(demo, admin)
    with demo.uow() as uow:
        assert uow.session.query(MeterReturnRow).count() == 1


def test_a_receipt_that_cannot_be_made_leaves_the_sale_written_then_settled(demo, admin,
                                                                              monkeypatch):
    """The card holds the credit but the receipt fails (a broken template): the sale stays
    WRITTEN, never pending or completed without a receipt; reconciliation completes it."""
    from dbmis_core.services import receipts

    _issue(demo, admin)

    def broken(*_a, **_k):
        raise RuntimeError("template error")

    monkeypatch.setattr(receipts, "render_receipt_text", broken)
    with pytest.raises(RuntimeError, match="template error"):
        vending.vend(demo, admin, "100001", "50.00")
    (row,) = _vends(demo)
    assert row.state == VendState.WRITTEN.value and row.written_at is not None
    assert row.completed_at is None
    monkeypatch.undo()
    settled = vending.reconcile_card_in_reader(demo, admin)
    assert settled == [(row.id, VendState.COMPLETED.value)]
    (row,) = _vends(demo)
    assert row.state == VendState.COMPLETED.value and row.receipt_no == "S01-00000001"
