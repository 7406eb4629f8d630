"""Checks before a sale: the card against the database, amount limits, the hoarding limit, and the
inspection notices a serious mismatch raises even though the sale is refused."""

from decimal import Decimal

import pytest
from sqlalchemy import select, update

from dbmis_core.cards import CardHeader, VendRecord
from dbmis_core.domain import CardStatus, CardType, CreditUnit
from dbmis_core.errors import BusinessRuleError, ValidationError
from dbmis_core.keys import card_key, card_psc
from dbmis_core.services import cards, inspections, vending
from dbmis_core.storage.models import CardRow, CustomerRow, InspectionNoticeRow, MeterRow, VendRow
from dbmis_refcard.format import SLOTS, pack_vend
from dbmis_sim.meter import MeterSimulator

METER1 = "000020240001"


def _issue(app, op, account="100001"):
    app.reader.new_card()
    return cards.issue_user_card(app, op, account)


def _load(app, meter_no=METER1):
    sim = MeterSimulator.provision(app.config.home / "meters" / f"{meter_no}.json", meter_no,
                                   app.keys.meter_key(meter_no))
    with app.reader.connect() as conn:
        return sim, sim.insert(conn, app.card_format)


def _vends(app):
    with app.uow() as uow:
        return list(uow.session.scalars(select(VendRow).order_by(VendRow.id)))


def _notices(app):
    with app.uow() as uow:
        return list(uow.session.scalars(select(InspectionNoticeRow).order_by(InspectionNoticeRow.id)))


def test_clean_card_has_no_warnings_and_check_sells_nothing(demo, admin):
    _issue(demo, admin)
    chk = vending.check_sale(demo, admin, "100001", "50.00")
    assert (chk.refusal, chk.warnings, chk.inspection) == (None, (), False)
    assert chk.energy == Decimal("89.28") and chk.credit_unit == CreditUnit.KWH
    assert _vends(demo) == [] and _notices(demo) == []


@pytest.mark.parametrize("amount,msg", [("0.50", "smallest"), ("5000.01", "largest")])
def test_minimum_and_maximum_purchase(demo, admin, amount, msg):
    _issue(demo, admin)
    with pytest.raises(ValidationError, match=msg):
        vending.check_sale(demo, admin, "100001", amount)
    with pytest.raises(ValidationError, match=msg):
        vending.vend(demo, admin, "100001", amount)
    assert _vends(demo) == []


def test_card_of_another_meter_stops_sale_and_raises_notice(demo, admin):
    """A card whose (write-once) header names another meter than the customer's."""
    uid = demo.reader.new_card()
    with demo.reader.connect() as conn:
        uid = demo.card_format.personalise(conn, CardHeader(CardType.USER, 1, "000020240002",
                                                            "100001", demo.keys.current_version))
    with demo.uow() as uow:
        c = uow.session.scalar(select(CustomerRow).where(CustomerRow.account_no == "100001"))
        m = uow.session.scalar(select(MeterRow).where(MeterRow.meter_no == METER1))
        uow.session.add(CardRow(uid=uid, card_type=1, status="active", meter=m, customer=c,
                                key_version=1, issued_by="admin"))
        uow.commit()
    with pytest.raises(BusinessRuleError, match="names meter 000020240002.*inspection"):
        vending.vend(demo, admin, "100001", "20.00")
    assert _vends(demo) == []
    notes = _notices(demo)
    assert len(notes) == 1 and notes[0].card_uid == uid and "000020240002" in notes[0].reason
    chk = vending.check_sale(demo, admin, "100001", "20.00")  # same open notice: not raised twice
    assert chk.inspection and "000020240002" in chk.refusal
    assert len(_notices(demo)) == 1
    listed = inspections.list_notices(demo, admin, account_no="100001")
    assert [n.id for n in listed] == [notes[0].id] and listed[0].meter_no == METER1


def test_sequence_from_the_future_stops_sale_and_notice_survives(demo, admin):
    _issue(demo, admin)
    vending.vend(demo, admin, "100001", "20.00")
    _load(demo)
    with demo.uow() as uow:  # the database is behind the card: someone wrote a card elsewhere
        uow.session.execute(update(MeterRow).where(MeterRow.meter_no == METER1)
                            .values(last_sequence=0))
        uow.commit()
    with pytest.raises(BusinessRuleError, match="sequence 1 but the database is at 0.*inspection"):
        vending.vend(demo, admin, "100001", "20.00")
    assert len(_vends(demo)) == 1
    assert [n.status for n in _notices(demo)] == ["open"]
    nid = _notices(demo)[0].id
    inspections.close_notice(demo, admin, nid, "card written by a test station")
    assert inspections.list_notices(demo, admin) == []
    closed = inspections.list_notices(demo, admin, status="closed")
    assert "test station" in closed[0].reason
    with pytest.raises(BusinessRuleError, match="already closed"):
        inspections.close_notice(demo, admin, nid, "again")


def test_forged_slot_stops_sale(demo, admin):
    uid = _issue(demo, admin)
    vending.vend(demo, admin, "100001", "20.00")
    _load(demo)
    meter_key = demo.keys.meter_key(METER1)
    raw_uid = bytes.fromhex(uid)
    forged = pack_vend(VendRecord(2, Decimal("999.00"), CreditUnit.KWH, METER1, "100001",
                                  vending.now().replace(microsecond=0)),
                       card_key(b"\x01" * 32, raw_uid))
    with demo.reader.connect() as conn:
        conn.present_psc(card_psc(meter_key, raw_uid))
        conn.write(SLOTS[1][1], forged)
    with pytest.raises(BusinessRuleError, match="slot B.*MAC.*inspection"):
        vending.vend(demo, admin, "100001", "20.00")
    assert len(_vends(demo)) == 1
    assert "MAC" in _notices(demo)[0].reason


def test_old_return_data_warns_but_sells(demo, admin):
    _issue(demo, admin)
    vending.vend(demo, admin, "100001", "20.00")
    _load(demo)
    cards.read_card(demo, admin)  # stores the return data
    with demo.uow() as uow:  # a newer reading came in (e.g. from a check card)
        from dbmis_core.storage.models import MeterReturnRow

        r = uow.session.scalar(select(MeterReturnRow))
        uow.session.add(MeterReturnRow(
            meter_id=r.meter_id, customer_id=r.customer_id, last_sequence=1, remaining=r.remaining,
            cumulative_purchased=r.cumulative_purchased, cumulative_consumed=r.cumulative_consumed,
            consumed_since_previous=0, status=0, tamper_count=0, illegal_card_count=0,
            history_year=r.history_year, history_month=r.history_month, history=r.history,
            written_at=r.written_at.replace(year=r.written_at.year + 1), read_by="admin",
            source="check"))
        uow.commit()
    chk = vending.check_sale(demo, admin, "100001", "20.00")
    assert chk.refusal is None and any("older than the newest" in w for w in chk.warnings)
    r = vending.vend(demo, admin, "100001", "20.00")
    assert r.sequence == 2 and any("older" in w for w in r.warnings)
    assert _notices(demo) == []


def test_hoarding_limit_refuses_clearly_and_writes_nothing(demo, admin):
    demo.config.data["sales"]["hoarding_limit"] = "150"
    demo.config.data["sales"]["refuse_unloaded"] = False
    uid = _issue(demo, admin)
    vending.vend(demo, admin, "100001", "50.00")  # 89.28 kWh, not loaded yet
    with demo.reader.connect() as conn:
        before = conn.read(0, 256)
    chk = vending.check_sale(demo, admin, "100001", "50.00")
    assert "hoarding limit 150" in chk.refusal and not chk.inspection
    with pytest.raises(BusinessRuleError, match="hoarding limit 150.*89.28 more is not yet loaded"):
        vending.vend(demo, admin, "100001", "50.00")
    with demo.reader.connect() as conn:
        assert conn.read(0, 256) == before
    assert len(_vends(demo)) == 1
    _load(demo)  # loaded: the meter holds 89.28, still too much for another 89.28
    demo.reader.insert(uid)
    with pytest.raises(BusinessRuleError, match="the meter holds 89.28"):
        vending.vend(demo, admin, "100001", "50.00")
    assert vending.vend(demo, admin, "100001", "30.00").credit == Decimal("53.57")
    demo.config.data["sales"]["hoarding_limit"] = "0"  # 0 switches the limit off
    assert vending.check_sale(demo, admin, "100001", "50.00").refusal is None


def test_closed_account_refuses_sale_clearly(demo, admin):
    _issue(demo, admin)
    with demo.uow() as uow:
        c = uow.session.scalar(select(CustomerRow).where(CustomerRow.account_no == "100001"))
        c.status = "closed"
        uow.commit()
    with pytest.raises(BusinessRuleError, match="account 100001 is closed"):
        vending.vend(demo, admin, "100001", "20.00")
    assert _vends(demo) == []


def test_inactive_card_still_refused(demo, admin):
    uid = _issue(demo, admin)
    with demo.uow() as uow:
        uow.session.execute(update(CardRow).where(CardRow.uid == uid)
                            .values(status=CardStatus.LOST.value))
        uow.commit()
    with pytest.raises(BusinessRuleError, match="is lost"):
        vending.check_sale(demo, admin, "100001", "20.00")
