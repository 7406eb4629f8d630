"""The meter simulator honours every service card (docs/decisions/0005-service-cards.md)."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from dbmis_core.cards import (
    ANY_METER,
    CardHeader,
    CheckCommand,
    ClearCommand,
    ManagementCommand,
    MeterParameters,
    PresetCommand,
    ReadingCommand,
    SelfTestCommand,
    ServiceMark,
    SetCommand,
    VendRecord,
)
from dbmis_core.domain import CardType, CreditUnit, MeterReturn
from dbmis_core.keys import KeyStore
from dbmis_refcard.format import RefCardFormat
from dbmis_sim.meter import MeterSimulator
from dbmis_sim.reader import SimReader
from dbmis_sim.sle4442 import Faults

KEYS = KeyStore({1: b"k" * 32}, 1)
FMT = RefCardFormat(KEYS)
ACCOUNT = "5001"
METERS = ("100200301", "100200302", "100200303")
WHEN = datetime(2024, 1, 30, 10, tzinfo=UTC)
NOON = datetime(2024, 1, 30, 12, tzinfo=UTC)


@pytest.fixture
def reader(tmp_path):
    return SimReader(tmp_path / "sim")


def provision(tmp_path, meter_no: str, service_key: bytes | None = KEYS.service_key()):
    return MeterSimulator.provision(tmp_path / f"{meter_no}.json", meter_no,
                                    KEYS.meter_key(meter_no), start=date(2024, 1, 30),
                                    service_key=service_key)


@pytest.fixture
def meters(tmp_path):
    return [provision(tmp_path, m) for m in METERS]


@pytest.fixture
def meter(meters):
    return meters[0]


def service_card(reader, command, meter_no: str = ANY_METER) -> str:
    uid = reader.new_card()
    with closing(reader.connect()) as conn:
        FMT.write_service(conn, CardHeader(command.card_type, 7, meter_no, "0000"), command, WHEN)
    return uid


def user_card(reader, meter_no: str, card_type=CardType.USER) -> str:
    uid = reader.new_card()
    with closing(reader.connect()) as conn:
        FMT.personalise(conn, CardHeader(card_type, 7, meter_no, ACCOUNT))
    return uid


def sell(reader, uid, seq: int, credit: str, meter_no: str) -> None:
    reader.insert(uid)
    with closing(reader.connect()) as conn:
        FMT.write_vend(conn, VendRecord(seq, Decimal(credit), CreditUnit.KWH, meter_no, ACCOUNT, WHEN))


def put_in(meter, reader, uid):
    reader.insert(uid)
    with closing(reader.connect()) as conn:
        return meter.insert(conn, FMT)


def read(reader, uid):
    reader.insert(uid)
    with closing(reader.connect()) as conn:
        return FMT.read_any(conn)


def buy(meter, reader, credit: str = "100.00") -> str:
    """A user card whose first purchase is loaded into ``meter``."""
    uid = user_card(reader, meter.state.meter_no)
    sell(reader, uid, 1, credit, meter.state.meter_no)
    assert put_in(meter, reader, uid).accepted
    return uid


def params(version: int, **over) -> MeterParameters:
    return MeterParameters(version=version, **{k: v if k == "power_limit_w" else Decimal(v)
                                               for k, v in over.items()})


# -- check ---------------------------------------------------------------------------------------
def test_check_card_copies_everything_and_changes_nothing(meter, reader):
    buy(meter, reader)
    meter.run(3, Decimal("2.5"))
    before = meter.path.read_bytes()
    uid = service_card(reader, CheckCommand(), meter.state.meter_no)
    result = put_in(meter, reader, uid)
    assert (result.accepted, result.return_written) == (True, True)
    assert meter.path.read_bytes() == before
    snap = read(reader, uid).snapshot
    assert snap == meter.snapshot()
    assert (snap.returned.remaining, snap.returned.cumulative_consumed) == (Decimal("92.50"),
                                                                           Decimal("7.50"))
    assert snap.params == MeterParameters() and not snap.suspended


def test_check_card_for_another_meter_is_refused_and_counted(meters, reader):
    uid = service_card(reader, CheckCommand(), METERS[1])
    result = put_in(meters[0], reader, uid)
    assert not result.accepted and "not 100200301" in result.message
    assert meters[0].state.illegal_card_count == 1
    assert read(reader, uid).snapshot is None


# -- set -----------------------------------------------------------------------------------------
def test_set_card_is_applied_once_by_each_meter_of_a_batch(meters, reader):
    p = params(4, alarm1="20", alarm2="5", hoarding_limit="150", overdraft_limit="10",
               power_limit_w=500, price="0")
    uid = service_card(reader, SetCommand(p))
    for m in meters:
        assert put_in(m, reader, uid).message == "parameter version 4 applied"
        assert m.parameters() == p and MeterSimulator.load(m.path).state.param_version == 4
    assert read(reader, uid).answers == tuple(ServiceMark(m, 4, NOON) for m in METERS)
    before = meters[1].path.read_bytes()
    again = put_in(meters[1], reader, uid)
    assert (again.accepted, again.return_written) == (True, False)
    assert again.message == "parameter version 4 already applied"
    assert meters[1].path.read_bytes() == before and len(read(reader, uid).answers) == 3


def test_an_older_parameter_version_is_not_applied(meter, reader):
    put_in(meter, reader, service_card(reader, SetCommand(params(5, alarm1="30"))))
    old = service_card(reader, SetCommand(params(4, alarm1="99")))
    result = put_in(meter, reader, old)
    assert not result.accepted and "older" in result.message
    assert meter.parameters().alarm1 == 30 and read(reader, old).answers == ()


def test_parameters_take_effect(meter, reader):
    put_in(meter, reader, service_card(reader, SetCommand(params(
        1, alarm1="30", alarm2="10", hoarding_limit="150", overdraft_limit="5", power_limit_w=1000))))
    card = buy(meter, reader)
    assert meter.run(1, Decimal(50)) == Decimal(24)  # 1000 W for 24 h
    meter.run(2, Decimal(24))
    assert meter.remaining == Decimal(28)
    status = meter.return_data().status
    assert status & MeterReturn.LOW_CREDIT and not status & MeterReturn.ALARM2
    sell(reader, card, 2, "130.00", meter.state.meter_no)  # 28 + 130 > 150: hoarding
    refused = put_in(meter, reader, card)
    assert not refused.accepted and "hoarding limit 150" in refused.message
    assert meter.state.last_sequence == 1 and refused.return_written
    assert meter.run(2, Decimal(24)) == Decimal(28 + 5)  # overdraft down to -5
    assert meter.remaining == -5 and meter.state.relay_open
    assert meter.return_data().status & (MeterReturn.OVERDRAFT | MeterReturn.ALARM2)
    assert put_in(meter, reader, card).applied == Decimal(130)  # now it fits


def test_a_power_limit_caps_a_day_in_whole_hundredths(meter, reader):
    put_in(meter, reader, service_card(reader, SetCommand(params(1, power_limit_w=333))))
    card = buy(meter, reader)
    assert meter.run(1, Decimal(50)) == Decimal("7.99")  # 333 W x 24 h = 7.992 kWh
    assert put_in(meter, reader, card).return_written
    assert read(reader, card).returned.cumulative_consumed == Decimal("7.99")


def test_a_priced_meter_deducts_money(meter, reader):
    put_in(meter, reader, service_card(reader, SetCommand(params(1, price="0.5000"))))
    buy(meter, reader, "10.00")
    assert meter.run(1, Decimal(8)) == Decimal(8)
    assert meter.remaining == Decimal("6.00")
    assert meter.run(3, Decimal(8)) == Decimal(12)  # 6.00 buys 12 kWh, then the relay opens
    assert meter.remaining == 0 and meter.state.relay_open


# -- clear ---------------------------------------------------------------------------------------
def test_clear_card_returns_the_data_from_before_the_reset(meter, reader):
    user = buy(meter, reader)
    meter.run(4, Decimal(5))
    before = meter.snapshot()
    uid = service_card(reader, ClearCommand(), meter.state.meter_no)
    assert put_in(meter, reader, uid).message.startswith("meter cleared")
    assert read(reader, uid).snapshot == before
    assert before.returned.last_sequence == 1 and before.returned.remaining == Decimal(80)
    st = MeterSimulator.load(meter.path).state
    assert (st.last_sequence, st.remaining, st.bound_uid, st.relay_open) == (0, "0.00", None, True)
    assert st.cumulative_consumed == "20.00"  # the energy register stays
    again = put_in(meter, reader, uid)
    assert not again.accepted and "already used" in again.message
    assert read(reader, uid).snapshot == before
    old = put_in(meter, reader, user)  # the old customer's card cannot re-load its purchase
    assert not old.accepted and meter.remaining == 0


# -- test ----------------------------------------------------------------------------------------
def test_test_card_gives_credit_a_limited_number_of_times(meters, reader):
    uid = service_card(reader, SelfTestCommand(Decimal("1.50"), 3))
    assert put_in(meters[0], reader, uid).applied == Decimal("1.50")
    assert put_in(meters[0], reader, uid).message == "test credit 1.50 loaded (use 2 of 3)"
    assert put_in(meters[1], reader, uid).accepted
    used_up = put_in(meters[2], reader, uid)
    assert not used_up.accepted and used_up.message == "test card used up (3 of 3 uses)"
    assert meters[0].remaining == 3 and meters[0].state.test_uses == 2
    assert not meters[0].state.relay_open and meters[2].remaining == 0
    image = read(reader, uid)
    assert [(m.meter_no, m.code) for m in image.answers] == [(METERS[0], 1), (METERS[0], 2),
                                                            (METERS[1], 3)]
    assert meters[0].state.cumulative_purchased == "0.00"


def test_test_card_pulled_during_the_answer_gives_nothing(meter, reader):
    uid = service_card(reader, SelfTestCommand(Decimal("1.50"), 1))
    reader.inject(Faults(pull_after_bytes=4))
    result = put_in(meter, reader, uid)
    assert not result.accepted and "removed" in result.message
    assert meter.remaining == 0 and MeterSimulator.load(meter.path).remaining == 0
    assert put_in(meter, reader, uid).accepted  # the torn entry does not count as a use


# -- replacement ---------------------------------------------------------------------------------
def test_replacement_card_rebinds_and_the_lost_card_is_refused(meter, reader):
    lost = buy(meter, reader)
    new = user_card(reader, meter.state.meter_no, CardType.REPLACEMENT)
    sell(reader, new, 1, "100.00", meter.state.meter_no)  # the last purchase again
    result = put_in(meter, reader, new)
    assert (result.accepted, result.applied) == (True, 0) and meter.state.bound_uid == new
    assert meter.remaining == 100
    refused = put_in(meter, reader, lost)
    assert not refused.accepted and meter.state.illegal_card_count == 1
    sell(reader, new, 2, "20.00", meter.state.meter_no)
    assert put_in(meter, reader, new).applied == Decimal(20)


# -- preset --------------------------------------------------------------------------------------
def test_preset_is_repaid_by_the_first_purchase(meters, reader):
    uid = service_card(reader, PresetCommand(Decimal("20.00")))
    first, second = meters[0], meters[1]
    buy(second, reader)  # already has a purchase: no preset
    assert put_in(first, reader, uid).applied == Decimal(20)
    refused = put_in(second, reader, uid)
    assert not refused.accepted and "already loaded a purchase" in refused.message
    assert not put_in(first, reader, uid).accepted  # only once
    assert [m.meter_no for m in read(reader, uid).answers] == [METERS[0]]
    assert not first.state.relay_open
    first.run(1, Decimal(5))
    card = user_card(reader, METERS[0])
    sell(reader, card, 1, "100.00", METERS[0])
    result = put_in(first, reader, card)
    assert result.applied == Decimal(80) and "preset 20.00 repaid" in result.message
    assert first.remaining == Decimal(95) and first.state.preset_owed == "0.00"
    assert first.state.cumulative_purchased == "100.00"


def test_a_preset_larger_than_the_first_purchase_is_repaid_over_two(meter, reader):
    put_in(meter, reader, service_card(reader, PresetCommand(Decimal("30.00"))))
    card = user_card(reader, meter.state.meter_no)
    sell(reader, card, 1, "20.00", meter.state.meter_no)
    assert put_in(meter, reader, card).applied == 0
    sell(reader, card, 2, "20.00", meter.state.meter_no)
    assert put_in(meter, reader, card).applied == Decimal(10)
    assert meter.remaining == Decimal(40) and meter.state.preset_owed == "0.00"


# -- meter reading -------------------------------------------------------------------------------
def test_meter_reading_card_collects_several_meters(meters, reader, tmp_path):
    for i, m in enumerate(meters):
        buy(m, reader, f"{50 * (i + 1)}.00")
        m.run(2, Decimal(i + 1))
    uid = service_card(reader, ReadingCommand("R1-L1-T1"))
    for m in meters:
        assert put_in(m, reader, uid).message == "reading written onto the card"
    meters[0].run(1, Decimal(1))
    put_in(meters[0], reader, uid)  # a second visit updates the meter's own entry
    readings = read(reader, uid).answers
    assert [(r.meter_no, r.remaining, r.cumulative_consumed) for r in readings] == [
        (METERS[0], Decimal(47), Decimal(3)), (METERS[1], Decimal(96), Decimal(4)),
        (METERS[2], Decimal(144), Decimal(6))]
    assert all(r.last_sequence == 1 and r.written_at.tzinfo for r in readings)
    extra = [provision(tmp_path, f"10020031{i}") for i in range(2)]
    assert put_in(extra[0], reader, uid).accepted
    full = put_in(extra[1], reader, uid)
    assert not full.accepted and "full" in full.message


# -- management ----------------------------------------------------------------------------------
def test_management_card_suspends_and_resumes_supply(meter, reader):
    buy(meter, reader)
    suspend = service_card(reader, ManagementCommand(True), meter.state.meter_no)
    assert put_in(meter, reader, suspend).message == "supply suspended"
    assert meter.state.relay_open and meter.run(5, Decimal(3)) == 0
    assert meter.remaining == 100 and meter.state.last_sequence == 1
    answer = read(reader, suspend).snapshot
    assert answer.suspended and answer.returned.status & MeterReturn.SUSPENDED
    assert answer.returned.status & MeterReturn.RELAY_OPEN
    resume = service_card(reader, ManagementCommand(False), meter.state.meter_no)
    assert put_in(meter, reader, resume).message == "supply resumed"
    assert not meter.state.relay_open and meter.run(2, Decimal(3)) == 6
    assert not read(reader, resume).snapshot.suspended


# -- refusals ------------------------------------------------------------------------------------
def test_batch_card_needs_a_meter_with_the_service_key(tmp_path, reader):
    old = provision(tmp_path, "100200309", service_key=None)
    result = put_in(old, reader, service_card(reader, SelfTestCommand(Decimal(1), 1)))
    assert not result.accepted and "no service key" in result.message and old.remaining == 0


def test_service_card_of_another_utility_is_refused_and_counted(meter, reader):
    foreign = RefCardFormat(KeyStore({1: b"f" * 32}, 1))
    uid = reader.new_card()
    with closing(reader.connect()) as conn:
        foreign.write_service(conn, CardHeader(CardType.PRESET, 7, ANY_METER, "0000"),
                              PresetCommand(Decimal(500)), WHEN)
    result = put_in(meter, reader, uid)
    assert not result.accepted and "MAC mismatch" in result.message
    assert meter.remaining == 0 and meter.state.illegal_card_count == 1
