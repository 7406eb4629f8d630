"""The meter simulator consumes cards the way a prepaid meter does (research/cards.md)."""

from __future__ import annotations

import struct
from contextlib import closing
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from dbmis_core.cards import CardHeader, VendRecord
from dbmis_core.domain import CardType, CreditUnit, MeterReturn
from dbmis_core.keys import TRANSPORT_PSC, KeyStore, card_psc
from dbmis_refcard.format import HDR_AT, SLOT_LEN, SLOTS, RefCardFormat, crc16, pack_header
from dbmis_sim.meter import MeterSimulator
from dbmis_sim.reader import SimReader

KEYS = KeyStore({1: b"k" * 32}, 1)
METER, OTHER_METER, ACCOUNT = "100200300", "100200399", "5001"
FMT = RefCardFormat(KEYS)


@pytest.fixture
def reader(tmp_path):
    return SimReader(tmp_path / "sim")


@pytest.fixture
def meter(tmp_path):
    return MeterSimulator.provision(tmp_path / "meter.json", METER, KEYS.meter_key(METER),
                                    start=date(2024, 1, 30))


def issue(reader, meter_no=METER, card_type=CardType.USER) -> str:
    uid = reader.new_card()
    with closing(reader.connect()) as conn:
        FMT.personalise(conn, CardHeader(card_type, 7, meter_no, ACCOUNT))
    return uid


def sell(reader, uid, seq, credit="100.00", meter_no=METER) -> None:
    reader.insert(uid)
    with closing(reader.connect()) as conn:
        FMT.write_vend(conn, VendRecord(seq, Decimal(credit), CreditUnit.KWH, meter_no, ACCOUNT,
                                        datetime(2024, 1, 30, 10, tzinfo=UTC)))


def put_in(meter, reader, uid):
    reader.insert(uid)
    with closing(reader.connect()) as conn:
        return meter.insert(conn, FMT)


def read_card(reader, uid):
    reader.insert(uid)
    with closing(reader.connect()) as conn:
        return FMT.read(conn)


@pytest.fixture
def card(reader, meter):
    """A user card whose first sale (100 kWh, sequence 1) is loaded into the meter."""
    uid = issue(reader)
    sell(reader, uid, 1)
    assert put_in(meter, reader, uid).applied == Decimal("100.00")
    return uid


def test_next_sequence_is_credited_and_survives_a_reload(reader, meter):
    uid = issue(reader)
    sell(reader, uid, 1, "42.50")
    result = put_in(meter, reader, uid)
    assert (result.accepted, result.applied, result.return_written) == (True, Decimal("42.50"), True)
    again = MeterSimulator.load(meter.path)
    assert again.state.last_sequence == 1 and again.remaining == Decimal("42.50")
    assert again.state.bound_uid == uid and not again.state.relay_open


def test_same_sequence_credits_nothing(meter, reader, card):
    result = put_in(meter, reader, card)
    assert (result.accepted, result.applied) == (True, 0) and "already loaded" in result.message
    assert meter.remaining == Decimal("100.00") and meter.state.last_sequence == 1


def test_lower_sequence_credits_nothing(meter, reader):
    meter.state.last_sequence = 5
    uid = issue(reader)
    sell(reader, uid, 3)
    result = put_in(meter, reader, uid)
    assert result.applied == 0 and meter.state.last_sequence == 5 and meter.remaining == 0


@pytest.mark.parametrize("gap", [2, 5])
def test_sequence_gap_is_refused_but_return_is_written(meter, reader, card, gap):
    sell(reader, card, 1 + gap)
    result = put_in(meter, reader, card)
    assert (result.accepted, result.applied, result.return_written) == (False, 0, True)
    assert meter.state.last_sequence == 1
    image = read_card(reader, card)
    assert image.returned.last_sequence == 1 and image.unloaded


def test_card_of_another_meter_is_refused_and_counted(meter, reader):
    uid = issue(reader, OTHER_METER)
    sell(reader, uid, 1, meter_no=OTHER_METER)
    result = put_in(meter, reader, uid)
    assert (result.accepted, result.applied, result.return_written) == (False, 0, False)
    assert meter.state.illegal_card_count == 1 and meter.remaining == 0
    assert read_card(reader, uid).returned is None


def test_card_not_bound_to_the_meter_is_refused(meter, reader, card):
    second = issue(reader)
    sell(reader, second, 2)
    result = put_in(meter, reader, second)
    assert (result.accepted, result.applied) == (False, 0) and "bound" in result.message
    assert meter.state.bound_uid == card and meter.state.illegal_card_count == 1
    assert meter.state.last_sequence == 1


def test_replacement_card_rebinds_the_meter(meter, reader, card):
    new = issue(reader, card_type=CardType.REPLACEMENT)
    sell(reader, new, 1)  # a reissued card carries the last vend again
    result = put_in(meter, reader, new)
    assert result.accepted and result.applied == 0 and meter.state.bound_uid == new
    assert not put_in(meter, reader, card).accepted  # the old card is now useless


def test_replacement_header_without_a_genuine_record_does_not_rebind(meter, reader, card):
    """Anyone can write a header on a blank card; only a MACed record proves the system issued it."""
    fake = reader.new_card()
    with closing(reader.connect()) as conn:
        conn.present_psc(TRANSPORT_PSC)
        conn.write(HDR_AT, pack_header(CardHeader(CardType.REPLACEMENT, 7, METER, ACCOUNT)))
        result = meter.insert(conn, FMT)
    assert not result.accepted and not result.return_written
    assert meter.state.bound_uid == card and meter.state.illegal_card_count == 1


def test_forged_record_is_ignored_and_counted(meter, reader, card):
    sell(reader, card, 2, "10.00")
    reader.insert(card)
    with closing(reader.connect()) as conn:
        at = SLOTS[1][1]
        raw = bytearray(conn.read(at, SLOT_LEN))
        raw[5:9] = (10**7).to_bytes(4, "big")  # 100000.00 kWh instead of 10.00
        raw[44:46] = struct.pack(">H", crc16(bytes(raw[:44])))
        conn.present_psc(card_psc(KEYS.meter_key(METER), conn.read(0, 8)))
        conn.write(at, bytes(raw))
        result = meter.insert(conn, FMT)
    assert result.applied == 0 and "forged" in result.message
    assert meter.remaining == Decimal("100.00") and meter.state.illegal_card_count == 1


def test_consumption_reduces_credit_and_stops_at_zero(meter, card):
    assert meter.run(2, Decimal("30")) == Decimal("60")
    assert meter.remaining == Decimal("40") and not meter.state.relay_open
    assert meter.run(5, Decimal("30")) == Decimal("40")
    assert meter.remaining == 0 and meter.state.relay_open
    assert Decimal(meter.state.cumulative_consumed) == Decimal("100.00")
    assert meter.return_data().status & MeterReturn.RELAY_OPEN
    assert MeterSimulator.load(meter.path).remaining == 0


def test_low_credit_flag_at_a_tenth_of_the_last_purchase(meter, card):
    meter.run(1, Decimal("89.99"))
    assert not meter.return_data().status & MeterReturn.LOW_CREDIT
    meter.run(1, Decimal("0.01"))
    assert meter.return_data().status & MeterReturn.LOW_CREDIT


def test_monthly_history_rolls_over_at_month_change(meter, card):
    days = []
    meter.run(3, Decimal(0), profile=lambda d: days.append(d) or Decimal(d.day))
    assert days == [date(2024, 1, 31), date(2024, 2, 1), date(2024, 2, 2)]
    ret = meter.return_data()
    assert ret.history_month == (2024, 2)
    assert ret.history[:3] == (Decimal(3), Decimal(31), Decimal(0))
    meter.run(31, Decimal("0.10"))  # into March
    assert meter.return_data().history_month == (2024, 3)
    assert meter.return_data().history[:3] == (Decimal("0.40"), Decimal("5.70"), Decimal(31))


def test_return_data_on_the_card_reads_back_with_the_right_figures(meter, reader, card):
    meter.run(4, Decimal("2.5"))
    put_in(meter, reader, card)
    image = read_card(reader, card)
    assert image.return_problem is None and image.returned == meter.return_data()
    ret = image.returned
    assert (ret.meter_no, ret.last_sequence, ret.remaining) == (METER, 1, Decimal("90.00"))
    assert (ret.cumulative_purchased, ret.cumulative_consumed) == (Decimal(100), Decimal(10))
    assert ret.history[:2] == (Decimal("7.50"), Decimal("2.50")) and not image.unloaded


def test_consumption_finer_than_the_card_resolution_still_writes_a_return(meter, reader, card):
    assert meter.run(3, Decimal("0.333")) == Decimal("0.99")
    assert put_in(meter, reader, card).return_written
    assert read_card(reader, card).returned == meter.return_data()


def test_forged_user_header_does_not_bind_a_new_meter(tmp_path):
    """A blank card with a hand-written USER header (no valid record, wrong PSC) binds nothing."""
    from dbmis_core.cards import CardHeader
    from dbmis_core.domain import CardType
    from dbmis_core.keys import KeyStore
    from dbmis_refcard.format import RefCardFormat
    from dbmis_sim.meter import MeterSimulator
    from dbmis_sim.reader import SimReader

    real_keys, forger_keys = KeyStore({1: b"k" * 32}, 1), KeyStore({1: b"f" * 32}, 1)
    reader = SimReader(tmp_path / "r")
    reader.new_card()
    with reader.connect() as conn:
        RefCardFormat(forger_keys).personalise(conn, CardHeader(CardType.USER, 1, "123456", "1001"))
    sim = MeterSimulator.provision(tmp_path / "m.json", "123456", real_keys.meter_key("123456"))
    with reader.connect() as conn:
        res = sim.insert(conn, RefCardFormat(real_keys))
    assert not res.accepted and "PSC rejected" in res.message
    assert sim.state.bound_uid is None and sim.state.illegal_card_count == 1
