"""Service cards in the reference format: layout, payload round trips, keys, full tables, forgeries.

The generic properties (round trips through a card, copied or flipped bytes) run in the card-format
suite (test_refcard.py); these checks are specific to the dbmis-ref layout.
"""

from __future__ import annotations

import struct
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbmis_core.cards import (
    ANY_METER,
    CardHeader,
    CardImage,
    CheckCommand,
    ClearCommand,
    ManagementCommand,
    MeterParameters,
    MeterReading,
    PresetCommand,
    ReadingCommand,
    SelfTestCommand,
    ServiceCardImage,
    ServiceMark,
    SetCommand,
    VendRecord,
)
from dbmis_core.domain import CardType, CreditUnit
from dbmis_core.errors import CardError, CardFormatError, CardRemovedError, ValidationError
from dbmis_core.keys import KeyStore, card_key, card_psc
from dbmis_core.testing.suites import _COMMAND_STRATEGIES
from dbmis_refcard.format import (
    ANS_AT,
    ANS_LEN,
    CMD_AT,
    CMD_LEN,
    HDR_AT,
    HDR_LEN,
    MARK_LEN,
    READING_LEN,
    SNAP_LEN,
    _CMD,
    RefCardFormat,
    _mac,
    crc16,
    pack_command,
    pack_header,
    unpack_command,
)
from dbmis_sim.reader import SimReader
from dbmis_sim.sle4442 import Faults

KEYS = KeyStore({1: b"k" * 32}, 1)
FMT = RefCardFormat(KEYS)
METER, OTHER = "100200300", "100200399"
WHEN = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
SET_V3 = SetCommand(MeterParameters(Decimal("20"), Decimal("5"), Decimal("500"), Decimal("10"), 4400,
                                    Decimal("0.5600"), 3))


def header(card_type: CardType, meter_no: str = ANY_METER) -> CardHeader:
    return CardHeader(card_type, 7, meter_no, "0000")


@pytest.fixture
def reader(tmp_path):
    r = SimReader(tmp_path / "sim")
    r.new_card()
    return r


def write(reader, hdr, command):
    with closing(reader.connect()) as conn:
        FMT.write_service(conn, hdr, command, WHEN)
        return FMT.read_any(conn)


def keys_of(meter_no: str):
    return KEYS.meter_key(meter_no), KEYS.service_key(), meter_no


def test_service_layout_fits_the_card():
    assert HDR_AT + HDR_LEN == CMD_AT and _CMD.size + 16 + 2 == CMD_LEN
    assert CMD_AT + CMD_LEN == ANS_AT and ANS_AT + ANS_LEN == 256
    assert SNAP_LEN <= ANS_LEN
    assert (ANS_LEN // MARK_LEN, ANS_LEN // READING_LEN) == (8, 4)


@pytest.mark.parametrize("card_type", sorted(_COMMAND_STRATEGIES))
def test_every_payload_round_trips_through_its_bytes(card_type):
    """Bytes alone, many examples per type (the suite covers whole cards)."""

    @settings(max_examples=60, deadline=None)
    @given(command=_COMMAND_STRATEGIES[card_type], issued=st.integers(0, 2**32 - 1))
    def check(command, issued):
        hdr = header(card_type, METER)
        when = datetime.fromtimestamp(issued, UTC)
        raw = pack_command(hdr, command, when, b"c" * 32)
        assert len(raw) == CMD_LEN
        assert unpack_command(raw, pack_header(hdr), card_type, b"c" * 32) == (command, when, None)
        assert unpack_command(raw, pack_header(hdr), card_type, b"d" * 32)[2].startswith("forged")

    check()


def test_batch_card_psc_and_mac_come_from_the_service_key(reader):
    image = write(reader, header(CardType.TEST), SelfTestCommand(Decimal("2.00"), 3))
    uid = bytes.fromhex(image.uid)
    with closing(reader.connect()) as conn:
        assert conn.present_psc(card_psc(KEYS.service_key(), uid)) == 3
    assert image.batch and image.command == SelfTestCommand(Decimal("2.00"), 3)


def test_single_meter_card_is_keyed_by_the_meter(reader):
    image = write(reader, header(CardType.CHECK, METER), CheckCommand())
    uid = bytes.fromhex(image.uid)
    with closing(reader.connect()) as conn:
        assert conn.present_psc(card_psc(KEYS.meter_key(METER), uid)) == 3
        assert not image.batch and image.answer_problem.startswith("empty")
        with pytest.raises(CardFormatError, match="not 100200399"):
            FMT.meter_read_service(conn, *keys_of(OTHER))


@pytest.mark.parametrize("hdr,command,match", [
    (header(CardType.CHECK), CheckCommand(), "must name one meter"),
    (header(CardType.MANAGEMENT), ManagementCommand(True), "must name one meter"),
    (header(CardType.SET), CheckCommand(), "cannot carry"),
    (header(CardType.USER, METER), CheckCommand(), "cannot carry"),
    (header(CardType.TEST), SelfTestCommand(Decimal(1), 9), "1 to 8 uses"),
    (header(CardType.METER_READING), ReadingCommand("Ring road ö"), "printable ASCII"),
    (header(CardType.METER_READING), ReadingCommand("R" * 33), "printable ASCII"),
    (header(CardType.PRESET), PresetCommand(Decimal("-1.00")), "does not fit"),
])
def test_impossible_service_cards_are_refused_before_writing(reader, hdr, command, match):
    with closing(reader.connect()) as conn:
        before = conn.read(0, 256)
        with pytest.raises(CardFormatError, match=match):
            FMT.write_service(conn, hdr, command, WHEN)
        assert conn.read(0, 256) == before


def test_a_price_finer_than_the_card_is_a_validation_error(reader):
    params = MeterParameters(price=Decimal("0.56001"), version=1)
    with closing(reader.connect()) as conn, pytest.raises(ValidationError, match="four decimals"):
        FMT.write_service(conn, header(CardType.SET), SetCommand(params), WHEN)


def test_interrupted_service_write_can_be_resumed(reader):
    uid = reader.inserted_uid()
    reader.inject(Faults(pull_after_bytes=HDR_LEN + 20))
    with closing(reader.connect()) as conn, pytest.raises(CardRemovedError):
        FMT.write_service(conn, header(CardType.SET), SET_V3, WHEN)
    reader.insert(uid)
    assert write(reader, header(CardType.SET), SET_V3).command == SET_V3


def test_marks_fill_eight_slots_and_a_meter_replaces_its_own(reader):
    write(reader, header(CardType.SET), SET_V3)
    meters = [f"{500000 + i}" for i in range(8)]
    with closing(reader.connect()) as conn:
        for m in meters:
            FMT.meter_write_entry(conn, *keys_of(m), ServiceMark(m, 3, WHEN))
        FMT.meter_write_entry(conn, *keys_of(meters[2]), ServiceMark(meters[2], 3, WHEN))
        with pytest.raises(CardFormatError, match="full"):
            FMT.meter_write_entry(conn, *keys_of("600000"), ServiceMark("600000", 3, WHEN))
        image = FMT.read_any(conn)
    assert [e.meter_no for e in image.answers] == meters


def test_readings_fill_four_slots_and_are_updated_in_place(reader):
    write(reader, header(CardType.METER_READING), ReadingCommand("R1-L1"))

    def reading(m, remaining):
        return MeterReading(m, 4, Decimal(remaining), Decimal(300), Decimal(250), 0, 0, 1, WHEN)

    with closing(reader.connect()) as conn:
        for i in range(4):
            FMT.meter_write_entry(conn, *keys_of(f"70000{i}"), reading(f"70000{i}", "1.00"))
        FMT.meter_write_entry(conn, *keys_of("700001"), reading("700001", "9.50"))
        with pytest.raises(CardFormatError, match="full"):
            FMT.meter_write_entry(conn, *keys_of("700009"), reading("700009", "1.00"))
        image = FMT.read_any(conn)
    assert [(r.meter_no, r.remaining) for r in image.answers] == [
        ("700000", 1), ("700001", Decimal("9.50")), ("700002", 1), ("700003", 1)]


def test_wrong_kind_of_answer_is_refused(reader):
    write(reader, header(CardType.CHECK, METER), CheckCommand())
    with closing(reader.connect()) as conn, pytest.raises(CardFormatError, match="no entries"):
        FMT.meter_write_entry(conn, *keys_of(METER), ServiceMark(METER, 0, WHEN))
    reader.new_card()
    write(reader, header(CardType.PRESET), PresetCommand(Decimal(5)))
    with closing(reader.connect()) as conn, pytest.raises(CardFormatError, match="no MeterReading"):
        FMT.meter_write_entry(conn, *keys_of(METER), MeterReading(
            METER, 0, Decimal(0), Decimal(0), Decimal(0), 0, 0, 0, WHEN))


def test_batch_card_needs_the_service_key_in_the_meter(reader):
    write(reader, header(CardType.PRESET), PresetCommand(Decimal(5)))
    with closing(reader.connect()) as conn, pytest.raises(CardFormatError, match="no service key"):
        FMT.meter_read_service(conn, KEYS.meter_key(METER), None, METER)


def _psc(conn, hdr) -> bytes:
    root = KEYS.service_key() if hdr.meter_no == ANY_METER else KEYS.meter_key(hdr.meter_no)
    return card_psc(root, conn.read(0, 8))


def test_forged_command_is_rejected_by_mac_and_torn_one_by_crc(reader):
    hdr = header(CardType.TEST)
    write(reader, hdr, SelfTestCommand(Decimal("1.00"), 2))
    with closing(reader.connect()) as conn:
        raw = bytearray(conn.read(CMD_AT, CMD_LEN))
        raw[8:12] = (10**6).to_bytes(4, "big")  # 10000.00 kWh of "test" credit
        conn.present_psc(_psc(conn, hdr))
        conn.write(CMD_AT, bytes(raw))
        assert FMT.read_any(conn).command_problem == "torn or damaged (CRC mismatch)"
        raw[62:64] = struct.pack(">H", crc16(bytes(raw[:62])))
        conn.write(CMD_AT, bytes(raw))
        image = FMT.read_any(conn)
        seen = FMT.meter_read_service(conn, *keys_of(METER))
    assert image.command is None and image.command_problem == "forged or moved (MAC mismatch)"
    assert seen.command is None


def test_forged_entry_is_not_counted(reader):
    hdr = header(CardType.TEST)
    write(reader, hdr, SelfTestCommand(Decimal("1.00"), 2))
    with closing(reader.connect()) as conn:
        FMT.meter_write_entry(conn, *keys_of(METER), ServiceMark(METER, 1, WHEN))
        raw = bytearray(conn.read(ANS_AT, MARK_LEN))
        raw[7] ^= 0x01  # use number 1 -> 0
        conn.present_psc(_psc(conn, hdr))
        conn.write(ANS_AT + MARK_LEN, bytes(raw))  # also moved into the next slot
        image = FMT.read_any(conn)
    assert image.answers == (ServiceMark(METER, 1, WHEN),)
    assert image.entries[1].problem.endswith("(MAC mismatch)")


def test_answer_of_another_meter_on_a_single_meter_card_is_not_shown(reader):
    """A meter can only MAC with its own key, so this takes the meter key of the card's meter."""
    write(reader, header(CardType.SET, METER), SET_V3)
    with closing(reader.connect()) as conn:
        FMT.meter_write_entry(conn, KEYS.meter_key(METER), None, METER, ServiceMark(OTHER, 3, WHEN))
        image = FMT.read_any(conn)
    assert image.answers == () and image.entries[0].problem == "written by another meter"


@settings(max_examples=80, deadline=None)
@given(body=st.binary(min_size=_CMD.size, max_size=_CMD.size),
       card_type=st.sampled_from(sorted(_COMMAND_STRATEGIES)))
def test_well_framed_commands_with_any_fields_give_card_errors_only(tmp_path_factory, body, card_type):
    """Fuzz past the MAC (the test knows the key): fields are decoded or reported, never crash."""
    hdr = header(card_type, METER)
    reader = SimReader(tmp_path_factory.mktemp("sim"))
    reader.new_card()
    write(reader, hdr, EXAMPLES[card_type])
    with closing(reader.connect()) as conn:
        key = card_key(KEYS.meter_key(METER), conn.read(0, 8))
        framed = body + _mac(key, b"command", pack_header(hdr) + body)
        conn.present_psc(_psc(conn, hdr))
        conn.write(CMD_AT, framed + struct.pack(">H", crc16(framed)))
        image = FMT.read_any(conn)
    assert isinstance(image, ServiceCardImage)
    assert (image.command is None) != (image.command_problem is None)


EXAMPLES = {CardType.TEST: SelfTestCommand(Decimal(1), 1), CardType.CHECK: CheckCommand(),
            CardType.SET: SET_V3, CardType.CLEAR: ClearCommand(), CardType.PRESET: PresetCommand(
                Decimal(5)), CardType.METER_READING: ReadingCommand("R1"),
            CardType.MANAGEMENT: ManagementCommand(False)}


def test_user_cards_read_the_same_through_read_any(reader):
    with closing(reader.connect()) as conn:
        FMT.personalise(conn, CardHeader(CardType.USER, 7, METER, "5001"))
        FMT.write_vend(conn, VendRecord(1, Decimal(10), CreditUnit.KWH, METER, "5001", WHEN))
        image = FMT.read_any(conn)
        assert isinstance(image, CardImage) and image == FMT.read(conn)


def test_no_vend_can_be_written_onto_a_service_card(reader):
    write(reader, header(CardType.CHECK, METER), CheckCommand())
    with closing(reader.connect()) as conn, pytest.raises(CardError, match="holds no vend"):
        FMT.write_vend(conn, VendRecord(1, Decimal(10), CreditUnit.KWH, METER, "0000", WHEN))
