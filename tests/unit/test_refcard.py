"""The reference SLE4442 card format: the card-format suite plus layout-specific checks."""

from __future__ import annotations

import struct
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbmis_core.cards import CardHeader, VendRecord
from dbmis_core.domain import CardType, CreditUnit
from dbmis_core.errors import (
    BlankCardError,
    CardError,
    CardFormatError,
    CardRemovedError,
    CardWriteProtectedError,
    WrongPscError,
)
from dbmis_core.keys import TRANSPORT_PSC, KeyStore, card_psc
from dbmis_core.testing.suites import CardFormatSuite
from dbmis_refcard.format import (
    HDR_AT,
    HDR_LEN,
    RET_AT,
    RET_LEN,
    SLOT_LEN,
    SLOTS,
    RefCardFormat,
    _HDR,
    bcd,
    crc16,
    pack_header,
    unbcd,
)
from dbmis_sim.reader import SimReader
from dbmis_sim.sle4442 import Faults

KEYS = KeyStore({1: b"k" * 32}, 1)
METER, ACCOUNT = "100200300", "5001"
HEADER = CardHeader(CardType.USER, 7, METER, ACCOUNT)
WHEN = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


class TestRefCardFormat(CardFormatSuite):
    keys = KEYS

    def make_format(self):
        return RefCardFormat(self.keys)

    def make_connection(self, tmp_path):
        reader = SimReader(tmp_path / "sim")
        reader.new_card()
        return reader.connect()


def vend(seq: int, credit: str = "100.00") -> VendRecord:
    return VendRecord(seq, Decimal(credit), CreditUnit.KWH, METER, ACCOUNT, WHEN)


@pytest.fixture
def fmt():
    return RefCardFormat(KEYS)


@pytest.fixture
def reader(tmp_path):
    r = SimReader(tmp_path / "sim")
    r.new_card()
    return r


@pytest.fixture
def issued(reader, fmt):
    """A reader holding a card personalised for METER."""
    with closing(reader.connect()) as conn:
        fmt.personalise(conn, HEADER)
    return reader


def card_psc_of(conn) -> bytes:
    return card_psc(KEYS.meter_key(METER), conn.read(0, 8))


def test_layout_fits_the_card():
    areas = sorted([(HDR_AT, HDR_LEN)] + [(at, SLOT_LEN) for _, at in SLOTS] + [(RET_AT, RET_LEN)])
    assert HDR_AT + HDR_LEN <= 32, "the header must lie in the protectable bytes"
    for (a, n), (b, _) in zip(areas, areas[1:]):
        assert a + n <= b, "card areas overlap"
    assert RET_AT + RET_LEN <= 256


def test_header_is_protected_after_personalise(issued):
    with closing(issued.connect()) as conn:
        assert conn.protection_bits() == b"\x00\x00\x00\x00"
        conn.present_psc(card_psc_of(conn))
        with pytest.raises(CardWriteProtectedError):
            conn.write(HDR_AT + 3, b"\x09")


def test_personalise_replaces_the_transport_psc(issued):
    with closing(issued.connect()) as conn:
        with pytest.raises(WrongPscError):
            conn.present_psc(TRANSPORT_PSC)
        assert card_psc_of(conn) != TRANSPORT_PSC
        assert conn.present_psc(card_psc_of(conn)) == 3


def test_personalise_refuses_an_issued_card(issued, fmt):
    other = CardHeader(CardType.USER, 7, "999888777", ACCOUNT)
    with closing(issued.connect()) as conn, pytest.raises(CardFormatError, match="already issued"):
        fmt.personalise(conn, other)


@pytest.mark.parametrize("cut", [0, 5, HDR_LEN + 10])
def test_personalise_resumes_after_a_pull(reader, fmt, cut):
    """A card pulled during issue can be issued again instead of being wasted."""
    uid = reader.inserted_uid()
    reader.inject(Faults(pull_after_bytes=cut))
    with closing(reader.connect()) as conn, pytest.raises(CardRemovedError):
        fmt.personalise(conn, HEADER)
    reader.insert(uid)
    with closing(reader.connect()) as conn:
        assert fmt.personalise(conn, HEADER) == uid
        image = fmt.read(conn)
    assert image.header == HEADER and image.returned is None and image.tries_left == 3


def test_personalise_is_idempotent(issued, fmt):
    with closing(issued.connect()) as conn:
        fmt.personalise(conn, HEADER)
        assert fmt.read(conn).tries_left == 3


def test_vend_slots_alternate(issued, fmt):
    with closing(issued.connect()) as conn:
        for seq in (1, 2, 3):
            fmt.write_vend(conn, vend(seq))
        image = fmt.read(conn)
    assert [s.record.sequence for s in image.slots] == [3, 2]
    assert image.vend == vend(3) and image.unloaded


@pytest.mark.parametrize("cut,newest", [(0, 1), (1, 1), (27, 1), (44, 1), (45, 1), (46, 2)])
def test_pull_while_writing_slot_b_keeps_slot_a(issued, fmt, cut, newest):
    """Until the CRC is complete slot B is not valid; the 2 pad bytes do not matter."""
    uid = issued.inserted_uid()
    with closing(issued.connect()) as conn:
        fmt.write_vend(conn, vend(1))
    issued.inject(Faults(pull_after_bytes=cut))
    with closing(issued.connect()) as conn, pytest.raises(CardRemovedError):
        fmt.write_vend(conn, vend(2))
    assert not issued.card_present()
    issued.insert(uid)
    with closing(issued.connect()) as conn:
        image = fmt.read(conn)
    assert image.vend == vend(newest)
    assert image.slots[0].record == vend(1)
    if newest == 1:
        assert image.slots[1].record is None
        assert image.slots[1].problem == ("empty" if cut == 0 else "torn or damaged (CRC mismatch)")


@pytest.mark.parametrize("cut,newest", [(0, 2), (1, 1), (30, 1), (47, 1)])
def test_pull_while_revoking_leaves_the_record_or_the_previous_one(issued, fmt, cut, newest):
    """The sim reader pulls the card ``cut`` bytes into the revoke of sequence 2: untouched, the
    card still holds 2; once one byte changed, slot B fails its CRC and slot A's 1 is newest."""
    uid = issued.inserted_uid()
    with closing(issued.connect()) as conn:
        fmt.write_vend(conn, vend(1))
        fmt.write_vend(conn, vend(2))
    issued.inject(Faults(pull_after_bytes=cut))
    with closing(issued.connect()) as conn, pytest.raises(CardRemovedError):
        fmt.revoke_vend(conn, 2)
    issued.insert(uid)
    with closing(issued.connect()) as conn:
        image = fmt.read(conn)
    assert image.vend == vend(newest) and image.slots[0].record == vend(1)


def test_revoked_slot_reads_empty_and_takes_the_next_sale(issued, fmt):
    with closing(issued.connect()) as conn:
        fmt.write_vend(conn, vend(1))
        fmt.revoke_vend(conn, 1)
        image = fmt.read(conn)
        assert image.vend is None and [s.problem for s in image.slots] == ["empty", "empty"]
        fmt.write_vend(conn, vend(1, "55.00"))
        assert fmt.read(conn).vend == vend(1, "55.00")


def _forge_credit(conn, at: int, hundredths: int) -> None:
    """Raise a slot's credit and recompute its CRC, as someone without the key would."""
    raw = bytearray(conn.read(at, SLOT_LEN))
    raw[5:9] = hundredths.to_bytes(4, "big")
    raw[44:46] = struct.pack(">H", crc16(bytes(raw[:44])))
    conn.present_psc(card_psc_of(conn))
    conn.write(at, bytes(raw))


def test_forged_record_is_rejected_by_mac(issued, fmt):
    with closing(issued.connect()) as conn:
        fmt.write_vend(conn, vend(1, "10.00"))
        fmt.write_vend(conn, vend(2, "10.00"))
        _forge_credit(conn, SLOTS[1][1], 10**8)
        image = fmt.read(conn)
    assert "MAC" in image.slots[1].problem and image.slots[1].record is None
    assert image.vend == vend(1, "10.00")


def test_blank_card_raises_blank_card_error_with_a_message(reader, fmt):
    with closing(reader.connect()) as conn, pytest.raises(BlankCardError, match="blank"):
        fmt.read(conn)


def test_return_area_is_cleared_at_issue(issued, fmt):
    with closing(issued.connect()) as conn:
        image = fmt.read(conn)
    assert image.returned is None and image.return_problem.startswith("empty")


def _bcd_fields():
    return st.one_of(st.text("0123456789", min_size=1, max_size=12).map(bcd),
                     st.binary(min_size=6, max_size=6))


@settings(max_examples=80, deadline=None)
@given(magic=st.sampled_from([b"DB", b"XY"]), version=st.sampled_from([1, 2]),
       fields=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
                        st.integers(0, 65535), _bcd_fields(), _bcd_fields()))
def test_well_framed_header_gives_card_errors_only(tmp_path_factory, magic, version, fields):
    """Fuzz past the CRC: a header with any field values is decoded or refused as a card error."""
    body = _HDR.pack(magic, version, *fields)
    reader = SimReader(tmp_path_factory.mktemp("sim"))
    reader.new_card()
    with closing(reader.connect()) as conn:
        conn.present_psc(TRANSPORT_PSC)
        conn.write(HDR_AT, body + struct.pack(">H", crc16(body)) + b"\x00\x00")
        try:
            image = RefCardFormat(KEYS).read(conn)
        except CardError:
            return
    assert (magic, version, image.header.key_version) == (b"DB", 1, 1)


def test_card_of_an_unknown_key_version_is_a_card_error(reader, fmt):
    with closing(reader.connect()) as conn:
        conn.present_psc(TRANSPORT_PSC)
        conn.write(HDR_AT, pack_header(CardHeader(CardType.USER, 7, METER, ACCOUNT, key_version=5)))
        with pytest.raises(CardFormatError, match="key version 5"):
            fmt.read(conn)


def test_bcd_keeps_leading_zeros_and_refuses_what_does_not_fit():
    assert bcd("000123") == bytes.fromhex("ffffff000123")
    assert unbcd(bcd("000123")) == "000123"
    assert unbcd(bcd("123456789012")) == "123456789012"
    for bad in ("1234567890123", "12a4", ""):
        with pytest.raises(CardFormatError):
            bcd(bad)
    for raw in (b"\xff" * 6, bytes.fromhex("ffffff0a1234")):
        with pytest.raises(CardFormatError):
            unbcd(raw)
