"""Conformance suites that every driver, card format and tariff plugin runs in its own tests.

Subclass a suite in a ``Test...`` class and provide the factory methods it names; pytest then runs
the same checks on your plugin as on the built-ins (Tryton's generic module tests work this way)::

    from dbmis_core.testing.suites import TariffSuite

    class TestMyTariff(TariffSuite):
        tariff = my_tariff_record
        contexts = [TariffContext("residential")]

The suites need pytest and hypothesis; importing ``dbmis_core.testing`` alone does not.
"""

from __future__ import annotations

import uuid
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ..cards import (
    ANY_METER,
    COMMANDS,
    MAX_TEST_USES,
    SINGLE_METER_TYPES,
    SNAPSHOT_TYPES,
    CardHeader,
    CardImage,
    CheckCommand,
    ClearCommand,
    ManagementCommand,
    MeterParameters,
    MeterReading,
    MeterSnapshot,
    PresetCommand,
    ReadingCommand,
    SelfTestCommand,
    ServiceCardImage,
    ServiceMark,
    SetCommand,
    VendRecord,
)
from ..domain import CardType, CreditUnit, MeterReturn, Quote
from ..errors import (
    BlankCardError,
    CardError,
    CardLockedError,
    CardRemovedError,
    CardWriteProtectedError,
    NoCardError,
    WrongPscError,
)
from ..keys import TRANSPORT_PSC, KeyStore

__all__ = ["CardFormatSuite", "DriverSuite", "TariffSuite"]

MEMORY = 256
# Examples share the test's tmp_path, but each one works in its own fresh sub-folder.
_FILE_EXAMPLES = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _fresh(tmp_path):
    path = tmp_path / uuid.uuid4().hex[:12]
    path.mkdir()
    return path


def _protected(conn) -> set[int]:
    """Addresses whose protection bit is burned (bit i of byte i // 8 is 0)."""
    bits = conn.protection_bits()
    return {i for i in range(32) if not (bits[i // 8] >> (i % 8)) & 1}


def _overwrite(conn, psc: bytes, image: bytes) -> None:
    """Write ``image`` over every byte the card lets us change (protected bytes are kept)."""
    conn.present_psc(psc)
    locked = _protected(conn)
    i = 0
    while i < MEMORY:
        if i in locked:
            i += 1
            continue
        j = i
        while j < MEMORY and j not in locked:
            j += 1
        conn.write(i, bytes(image[i:j]))
        i = j


# -- driver suite ----------------------------------------------------------------------------------
class DriverSuite:
    """Byte-level behaviour every reader driver must show with an SLE4442-like card.

    Provide ``make_reader(self, tmp_path)``: a Reader with a blank card (transport PSC FF FF FF)
    inserted. Optionally provide ``remove_card(self, reader)``; without it the removal test skips.
    """

    remove_card = None

    def make_reader(self, tmp_path):
        raise NotImplementedError("a DriverSuite subclass must define make_reader(self, tmp_path)")

    @pytest.fixture
    def reader(self, tmp_path):
        reader = self.make_reader(tmp_path)
        yield reader
        reader.close()

    def test_reports_card_present(self, reader):
        assert reader.card_present()
        assert isinstance(reader.name, str) and reader.name

    def test_atr_is_bytes(self, reader):
        with closing(reader.connect()) as conn:
            atr = conn.atr()
        assert isinstance(atr, bytes) and atr

    def test_reads_whole_memory_and_in_pieces(self, reader):
        with closing(reader.connect()) as conn:
            whole = conn.read(0, MEMORY)
            assert isinstance(whole, bytes) and len(whole) == MEMORY
            assert conn.read(0, 100) + conn.read(100, 156) == whole

    def test_write_needs_psc(self, reader):
        with closing(reader.connect()) as conn:
            before = conn.read(64, 4)
            with pytest.raises(CardWriteProtectedError):
                conn.write(64, b"\x01\x02\x03\x04")
            assert conn.read(64, 4) == before

    @settings(max_examples=15, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_write_after_psc_reads_back(self, tmp_path, data):
        addr = data.draw(st.integers(32, MEMORY - 1), label="addr")
        payload = data.draw(st.binary(min_size=1, max_size=MEMORY - addr), label="payload")
        reader = self.make_reader(_fresh(tmp_path))
        with closing(reader.connect()) as conn:
            assert conn.present_psc(TRANSPORT_PSC) == 3
            conn.write(addr, payload)
        with closing(reader.connect()) as conn:
            assert conn.read(addr, len(payload)) == payload
        reader.close()

    def test_psc_is_needed_again_in_a_new_session(self, reader):
        with closing(reader.connect()) as conn:
            conn.present_psc(TRANSPORT_PSC)
            conn.write(40, b"\x11")
        with closing(reader.connect()) as conn, pytest.raises(CardWriteProtectedError):
            conn.write(40, b"\x22")

    def test_wrong_psc_lowers_tries_and_right_psc_restores_them(self, reader):
        with closing(reader.connect()) as conn:
            assert conn.tries_left() == 3
            with pytest.raises(WrongPscError) as exc:
                conn.present_psc(b"\x01\x02\x03")
            assert exc.value.tries_left == 2 and conn.tries_left() == 2
            with pytest.raises(CardWriteProtectedError):
                conn.write(40, b"\x00")
        with closing(reader.connect()) as conn:
            assert conn.tries_left() == 2  # the counter lives on the card
            assert conn.present_psc(TRANSPORT_PSC) == 3
            assert conn.tries_left() == 3

    def test_three_wrong_pscs_lock_the_card_for_good(self, reader):
        with closing(reader.connect()) as conn:
            for left in (2, 1):
                with pytest.raises(WrongPscError) as exc:
                    conn.present_psc(b"\x00\x00\x00")
                assert exc.value.tries_left == left
            with pytest.raises(CardLockedError):
                conn.present_psc(b"\x00\x00\x00")
            assert conn.tries_left() == 0
        with closing(reader.connect()) as conn:
            with pytest.raises(CardLockedError):
                conn.present_psc(TRANSPORT_PSC)
            with pytest.raises(CardWriteProtectedError):
                conn.write(40, b"\x00")

    def test_change_psc(self, reader):
        new = b"\x12\x34\x56"
        with closing(reader.connect()) as conn:
            conn.present_psc(TRANSPORT_PSC)
            conn.change_psc(new)
        with closing(reader.connect()) as conn:
            with pytest.raises(WrongPscError):
                conn.present_psc(TRANSPORT_PSC)
            assert conn.present_psc(new) == 3
            conn.write(40, b"\x42")
            assert conn.read(40, 1) == b"\x42"

    def test_protection_bits_are_write_once(self, reader):
        with closing(reader.connect()) as conn:
            conn.present_psc(TRANSPORT_PSC)
            conn.write(20, b"\x5a\x33")
            assert 20 not in _protected(conn)
            conn.protect(20, b"\x5a")
            assert 20 in _protected(conn) and 21 not in _protected(conn)
            with pytest.raises(CardWriteProtectedError):
                conn.write(20, b"\xa5")
            conn.write(21, b"\x44")  # the neighbour stays writable
        with closing(reader.connect()) as conn:
            conn.present_psc(TRANSPORT_PSC)
            assert 20 in _protected(conn)
            with pytest.raises(CardWriteProtectedError):
                conn.write(20, b"\xa5")
            assert conn.read(20, 2) == b"\x5a\x44"

    def test_protect_burns_only_where_data_matches(self, reader):
        """SLE4442 compares before it burns, so a wrong ``protect`` leaves the byte writable."""
        with closing(reader.connect()) as conn:
            conn.present_psc(TRANSPORT_PSC)
            conn.write(24, b"\x10")
            conn.protect(24, b"\x99")
            assert 24 not in _protected(conn)
            conn.write(24, b"\x20")
            assert conn.read(24, 1) == b"\x20"

    @pytest.mark.parametrize("addr,length", [(-1, 1), (250, 7), (256, 1), (0, 257)])
    def test_read_outside_memory_is_refused(self, reader, addr, length):
        with closing(reader.connect()) as conn, pytest.raises((ValueError, CardError)):
            conn.read(addr, length)

    @pytest.mark.parametrize("addr,length", [(-1, 1), (255, 2), (256, 1)])
    def test_write_outside_memory_is_refused(self, reader, addr, length):
        with closing(reader.connect()) as conn:
            conn.present_psc(TRANSPORT_PSC)
            before = conn.read(0, MEMORY)
            with pytest.raises((ValueError, CardError)):
                conn.write(addr, b"\x00" * length)
            assert conn.read(0, MEMORY) == before

    def test_connect_without_card_raises_no_card(self, reader):
        if self.remove_card is None:
            pytest.skip("this driver suite subclass cannot take the card out (no remove_card)")
        self.remove_card(reader)
        assert not reader.card_present()
        with pytest.raises(NoCardError):
            reader.connect()


# -- card format suite -----------------------------------------------------------------------------
_digits = lambda lo, hi: st.text("0123456789", min_size=lo, max_size=hi)  # noqa: E731
_times = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31),
                      timezones=st.just(UTC)).map(lambda t: t.replace(microsecond=0))


def _credits(top: Decimal):
    return st.decimals(min_value=0, max_value=top, places=2)


@st.composite
def _stories(draw, max_sequence: int, max_credit: Decimal, n: tuple[int, int]):
    """A header and the vend records a card for it receives, in increasing sequence."""
    header = CardHeader(CardType.USER, draw(st.integers(1, 9999)), draw(_digits(6, 12)),
                        draw(_digits(4, 12)))
    seqs = sorted(draw(st.sets(st.integers(1, max_sequence), min_size=n[0], max_size=n[1])))
    records = [VendRecord(s, draw(_credits(max_credit)), draw(st.sampled_from(CreditUnit)),
                          header.meter_no, header.account_no, draw(_times)) for s in seqs]
    return header, records


@st.composite
def _returns(draw, meter_no: str):
    hundred = lambda top: st.decimals(min_value=0, max_value=top, places=2)  # noqa: E731
    return MeterReturn(
        meter_no=meter_no, last_sequence=draw(st.integers(0, 2**31)),
        remaining=draw(st.decimals(min_value=-1000, max_value=1_000_000, places=2)),
        cumulative_purchased=draw(hundred(10_000_000)), cumulative_consumed=draw(hundred(10_000_000)),
        status=draw(st.integers(0, 15)), tamper_count=draw(st.integers(0, 255)),
        illegal_card_count=draw(st.integers(0, 255)),
        history_month=(draw(st.integers(2000, 2099)), draw(st.integers(1, 12))),
        history=tuple(draw(st.lists(hundred(99_999), min_size=12, max_size=12))),
        written_at=draw(_times))


_hundredths = lambda top: st.decimals(min_value=0, max_value=top, places=2)  # noqa: E731
_meter_nos = _digits(6, 12).filter(lambda m: m != ANY_METER)


def _parameters():
    return st.builds(MeterParameters, _hundredths(99_999), _hundredths(99_999),
                     _hundredths(999_999), _hundredths(99_999), st.integers(0, 10**6),
                     st.decimals(min_value=0, max_value=99, places=4), st.integers(0, 65535))


_COMMAND_STRATEGIES = {
    CardType.TEST: st.builds(SelfTestCommand, _hundredths(99), st.integers(1, MAX_TEST_USES)),
    CardType.CHECK: st.just(CheckCommand()),
    CardType.SET: st.builds(SetCommand, _parameters()),
    CardType.CLEAR: st.just(ClearCommand()),
    CardType.PRESET: st.builds(PresetCommand, _hundredths(9_999)),
    CardType.METER_READING: st.builds(ReadingCommand, st.text(
        st.characters(min_codepoint=32, max_codepoint=126), max_size=32)),
    CardType.MANAGEMENT: st.builds(ManagementCommand, st.booleans()),
}
assert set(_COMMAND_STRATEGIES) == set(COMMANDS), "a service card type has no strategy"


@st.composite
def _service_cards(draw, card_type: CardType | None = None):
    """(header, command, issued_at) of a service card; batch cards name any meter."""
    ctype = card_type or draw(st.sampled_from(sorted(COMMANDS)), label="card type")
    single = ctype in SINGLE_METER_TYPES or draw(st.booleans(), label="single meter")
    header = CardHeader(ctype, draw(st.integers(1, 9999)),
                        draw(_meter_nos) if single else ANY_METER, draw(_digits(4, 12)))
    return header, draw(_COMMAND_STRATEGIES[ctype]), draw(_times)


@st.composite
def _answers(draw, header: CardHeader):
    """What meters write back on a card of ``header``: one snapshot, or entries of 1-3 meters."""
    meters = ([header.meter_no] if header.meter_no != ANY_METER
              else draw(st.lists(_meter_nos, min_size=1, max_size=3, unique=True)))
    if header.card_type in SNAPSHOT_TYPES:
        return [MeterSnapshot(draw(_returns(meters[0])), draw(_parameters()),
                              draw(_hundredths(9_999)), draw(st.booleans()),
                              draw(st.integers(0, 65535)))]
    if header.card_type == CardType.METER_READING:
        return [MeterReading(m, draw(st.integers(0, 2**31)),
                             draw(st.decimals(min_value=-1000, max_value=1_000_000, places=2)),
                             draw(_hundredths(10_000_000)), draw(_hundredths(10_000_000)),
                             draw(st.integers(0, 63)), draw(st.integers(0, 255)),
                             draw(st.integers(0, 255)), draw(_times)) for m in meters]
    return [ServiceMark(m, draw(st.integers(0, 65535)), draw(_times)) for m in meters]


class _Spy:
    """Passes calls through to a connection and remembers the PSC the format uses."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self.psc = TRANSPORT_PSC

    def present_psc(self, psc: bytes) -> int:
        left = self._conn.present_psc(psc)
        self.psc = bytes(psc)
        return left

    def change_psc(self, new_psc: bytes) -> None:
        self._conn.change_psc(new_psc)
        self.psc = bytes(new_psc)

    def __getattr__(self, name):
        return getattr(self._conn, name)


class _Tearing(_Spy):
    """A card pulled out once ``budget`` bytes of writes have reached it."""

    def __init__(self, conn, budget: int) -> None:
        super().__init__(conn)
        self.budget = budget

    def write(self, addr: int, data: bytes) -> None:
        if self.budget < len(data):
            self._conn.write(addr, bytes(data[:self.budget]))
            self.budget = -1
            raise CardRemovedError("the card was removed during the write")
        self.budget -= len(data)
        self._conn.write(addr, data)

    def __getattr__(self, name):
        if self.budget < 0:
            raise CardRemovedError("the card was removed")
        return getattr(self._conn, name)


class CardFormatSuite:
    """Record round trips, torn writes, fuzzed bytes and moved records for a card format.

    Provide ``make_format(self)`` built with ``self.keys`` and ``make_connection(self, tmp_path)``
    giving a connection to a new blank card (transport PSC) that lives in ``tmp_path``.
    """

    keys = KeyStore({1: b"k" * 32}, 1)
    max_sequence = 2**32 - 1
    max_credit = Decimal(1_000_000)

    def make_format(self):
        raise NotImplementedError("a CardFormatSuite subclass must define make_format(self)")

    def make_connection(self, tmp_path):
        raise NotImplementedError("a CardFormatSuite subclass must define make_connection(self, tmp_path)")

    def _blank(self, tmp_path):
        return closing(self.make_connection(_fresh(tmp_path)))

    def _stories(self, lo: int = 1, hi: int = 3):
        return _stories(self.max_sequence, self.max_credit, (lo, hi))

    @staticmethod
    def _read_typed(fmt, conn, meter_key: bytes, meter_no: str):
        """Both sides of the format read the card; only card errors may come out."""
        image, seen = None, None
        try:
            image = fmt.read(conn)
        except CardError:
            pass
        try:
            seen = fmt.meter_read(conn, meter_key, meter_no)[2]
        except CardError:
            pass
        return image, seen

    def test_blank_card_reads_as_blank(self, tmp_path):
        with self._blank(tmp_path) as conn, pytest.raises(BlankCardError):
            self.make_format().read(conn)

    @settings(max_examples=30, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_vend_records_round_trip(self, tmp_path, data):
        header, records = data.draw(self._stories(1, 4))
        fmt = self.make_format()
        with self._blank(tmp_path) as conn:
            uid = fmt.personalise(conn, header)
            assert fmt.read_uid(conn) == uid
            image = fmt.read(conn)
            assert (image.uid, image.header, image.vend) == (uid, header, None)
            meter_key = self.keys.meter_key(header.meter_no)
            for rec in records:
                fmt.write_vend(conn, rec)
                assert fmt.read(conn).vend == rec
                assert fmt.meter_read(conn, meter_key, header.meter_no)[2] == rec

    @settings(max_examples=30, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_meter_return_round_trips(self, tmp_path, data):
        header, (rec,) = data.draw(self._stories(1, 1))
        ret = data.draw(_returns(header.meter_no))
        fmt = self.make_format()
        with self._blank(tmp_path) as conn:
            fmt.personalise(conn, header)
            fmt.write_vend(conn, rec)
            fmt.meter_write_return(conn, self.keys.meter_key(header.meter_no), ret)
            image = fmt.read(conn)
        assert (image.returned, image.vend) == (ret, rec)

    @settings(max_examples=40, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_torn_write_keeps_the_previous_record(self, tmp_path, data):
        header, records = data.draw(self._stories(2, 4))
        *done, last = records
        budget = data.draw(st.integers(0, 63), label="bytes before the pull")
        fmt = self.make_format()
        with self._blank(tmp_path) as conn:
            fmt.personalise(conn, header)
            for rec in done:
                fmt.write_vend(conn, rec)
            try:
                fmt.write_vend(_Tearing(conn, budget), last)
                torn = False
            except CardRemovedError:
                torn = True
            vend = fmt.read(conn).vend
        assert vend == last if not torn else vend in (done[-1], last)

    @settings(max_examples=60, **_FILE_EXAMPLES)
    @given(image=st.binary(min_size=MEMORY, max_size=MEMORY))
    def test_random_card_bytes_give_card_errors_only(self, tmp_path, image):
        fmt = self.make_format()
        with self._blank(tmp_path) as conn:
            _overwrite(conn, TRANSPORT_PSC, image)
            self._read_typed(fmt, conn, self.keys.meter_key("123456"), "123456")

    @settings(max_examples=60, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_flipped_bytes_give_card_errors_or_a_genuine_record(self, tmp_path, data):
        header, records = data.draw(self._stories(1, 2))
        ret = data.draw(_returns(header.meter_no))
        flips = data.draw(st.lists(st.tuples(st.integers(0, MEMORY - 1), st.integers(1, 255)),
                                   min_size=1, max_size=6), label="flips")
        fmt = self.make_format()
        meter_key = self.keys.meter_key(header.meter_no)
        with self._blank(tmp_path) as conn:
            spy = _Spy(conn)
            fmt.personalise(spy, header)
            for rec in records:
                fmt.write_vend(spy, rec)
            fmt.meter_write_return(spy, meter_key, ret)
            mem = bytearray(conn.read(0, MEMORY))
            for at, mask in flips:
                mem[at] ^= mask
            _overwrite(conn, spy.psc, mem)
            image, seen = self._read_typed(fmt, conn, meter_key, header.meter_no)
        if image is not None:
            assert image.vend is None or image.vend in records
            assert image.returned in (None, ret)
        assert seen is None or seen in records

    @settings(max_examples=20, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_record_copied_onto_another_card_is_rejected(self, tmp_path, data):
        header, records = data.draw(self._stories(1, 2))
        ret = data.draw(_returns(header.meter_no))
        fmt = self.make_format()
        meter_key = self.keys.meter_key(header.meter_no)
        with self._blank(tmp_path) as original:
            fmt.personalise(original, header)
            for rec in records:
                fmt.write_vend(original, rec)
            fmt.meter_write_return(original, meter_key, ret)
            copied = original.read(0, MEMORY)
        with self._blank(tmp_path) as conn:
            spy = _Spy(conn)
            fmt.personalise(spy, header)
            assert conn.read(0, 8) != copied[:8], "make_connection must give cards distinct UIDs"
            _overwrite(conn, spy.psc, copied)
            image, seen = self._read_typed(fmt, conn, meter_key, header.meter_no)
        if image is not None:
            assert image.vend is None and image.returned is None
        assert seen is None

    @settings(max_examples=20, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_record_for_another_meter_is_rejected(self, tmp_path, data):
        header, (rec,) = data.draw(self._stories(1, 1))
        other = data.draw(_digits(6, 12), label="other meter")
        assume(other != header.meter_no)
        fmt = self.make_format()
        other_key = self.keys.meter_key(other)
        with self._blank(tmp_path) as conn:
            fmt.personalise(conn, header)
            for wrong in (attrs.evolve(rec, meter_no=other),
                          attrs.evolve(rec, account_no=header.account_no[::-1] + "9")):
                with pytest.raises(CardError):
                    fmt.write_vend(conn, wrong)
            fmt.write_vend(conn, rec)
            assert self._read_typed(fmt, conn, other_key, other)[1] is None
            assert self._read_typed(fmt, conn, other_key, header.meter_no)[1] is None


    # -- reversal (revoke) and reissue (replacement cards) ---------------------------------------
    @settings(max_examples=30, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_revoke_leaves_the_previous_record_newest(self, tmp_path, data):
        header, records = data.draw(self._stories(1, 4))
        *done, last = records
        fmt = self.make_format()
        meter_key = self.keys.meter_key(header.meter_no)
        with self._blank(tmp_path) as conn:
            fmt.personalise(conn, header)
            for rec in records:
                fmt.write_vend(conn, rec)
            fmt.revoke_vend(conn, last.sequence)
            previous = done[-1] if done else None
            assert fmt.read(conn).vend == previous
            assert fmt.meter_read(conn, meter_key, header.meter_no)[2] == previous
            again = attrs.evolve(last, credit=last.credit + 1 if last.credit < self.max_credit
                                 else last.credit - 1)
            fmt.write_vend(conn, again)  # the released sequence is sold again
            assert fmt.read(conn).vend == again

    @settings(max_examples=20, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_revoke_refuses_a_sequence_that_is_not_the_newest(self, tmp_path, data):
        header, records = data.draw(self._stories(1, 3))
        fmt = self.make_format()
        with self._blank(tmp_path) as conn:
            fmt.personalise(conn, header)
            with pytest.raises(CardError):
                fmt.revoke_vend(conn, records[0].sequence)  # no record on the card yet
            for rec in records:
                fmt.write_vend(conn, rec)
            with pytest.raises(CardError):
                fmt.revoke_vend(conn, records[-1].sequence + 1)
            if len(records) > 1:
                with pytest.raises(CardError):
                    fmt.revoke_vend(conn, records[0].sequence)
            assert fmt.read(conn).vend == records[-1]

    @settings(max_examples=40, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_torn_revoke_keeps_the_record_or_the_previous_one(self, tmp_path, data):
        header, records = data.draw(self._stories(1, 3))
        *done, last = records
        budget = data.draw(st.integers(0, 63), label="bytes before the pull")
        fmt = self.make_format()
        with self._blank(tmp_path) as conn:
            fmt.personalise(conn, header)
            for rec in records:
                fmt.write_vend(conn, rec)
            try:
                fmt.revoke_vend(_Tearing(conn, budget), last.sequence)
                torn = False
            except CardRemovedError:
                torn = True
            vend = fmt.read(conn).vend
        previous = done[-1] if done else None
        assert vend == previous if not torn else vend in (previous, last)

    @settings(max_examples=20, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_replacement_card_carries_the_last_record(self, tmp_path, data):
        header, records = data.draw(self._stories(1, 2))
        last = records[-1]
        replacement = attrs.evolve(header, card_type=CardType.REPLACEMENT)
        fmt = self.make_format()
        meter_key = self.keys.meter_key(header.meter_no)
        with self._blank(tmp_path) as conn:
            fmt.personalise(conn, replacement)
            fmt.write_vend(conn, last)
            image = fmt.read(conn)
            uid, seen_header, seen, _ = fmt.meter_read(conn, meter_key, header.meter_no)
        assert (image.header, image.vend, image.unloaded) == (replacement, last, True)
        assert (uid, seen_header.card_type, seen) == (image.uid, CardType.REPLACEMENT, last)


    # -- service cards ---------------------------------------------------------------------------
    def _meter_keys(self, meter_no: str) -> tuple[bytes, bytes, str]:
        return self.keys.meter_key(meter_no), self.keys.service_key(), meter_no

    def _answer(self, fmt, conn, header: CardHeader, answer) -> None:
        keys = self._meter_keys(header.meter_no if header.meter_no != ANY_METER
                                else (answer.returned if isinstance(answer, MeterSnapshot)
                                      else answer).meter_no)
        if isinstance(answer, MeterSnapshot):
            fmt.meter_write_snapshot(conn, *keys, answer)
        else:
            fmt.meter_write_entry(conn, *keys, answer)

    @staticmethod
    def _service_typed(fmt, conn, keys) -> tuple[ServiceCardImage | None, ServiceCardImage | None]:
        """The system and a meter read a service card; only card errors may come out."""
        image, seen = None, None
        try:
            image = fmt.read_any(conn)
        except CardError:
            pass
        try:
            seen = fmt.meter_read_service(conn, *keys)
        except CardError:
            pass
        return image, seen

    @settings(max_examples=40, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_service_commands_round_trip(self, tmp_path, data):
        header, command, issued = data.draw(_service_cards())
        fmt = self.make_format()
        meter = header.meter_no if header.meter_no != ANY_METER else data.draw(_meter_nos)
        with self._blank(tmp_path) as conn:
            uid = fmt.write_service(conn, header, command, issued)
            image = fmt.read_any(conn)
            seen = fmt.meter_read_service(conn, *self._meter_keys(meter))
        assert isinstance(image, ServiceCardImage)
        assert (image.uid, image.header, image.command, image.issued_at) == (uid, header, command,
                                                                            issued)
        assert image.command_problem is None and image.answers == () and image.snapshot is None
        assert image.batch == (header.meter_no == ANY_METER)
        assert (seen.header, seen.command) == (header, command)

    @settings(max_examples=40, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_service_answers_round_trip(self, tmp_path, data):
        header, command, issued = data.draw(_service_cards())
        answers = data.draw(_answers(header))
        fmt = self.make_format()
        with self._blank(tmp_path) as conn:
            fmt.write_service(conn, header, command, issued)
            for answer in answers:
                self._answer(fmt, conn, header, answer)
            image = fmt.read_any(conn)
        assert image.command == command
        if header.card_type in SNAPSHOT_TYPES:
            assert (image.snapshot, image.answer_problem) == (answers[0], None)
        else:
            assert sorted(image.answers, key=repr) == sorted(answers, key=repr)

    @settings(max_examples=20, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_service_card_is_refused_by_a_meter_it_is_not_for(self, tmp_path, data):
        header, command, issued = data.draw(_service_cards())
        other = data.draw(_meter_nos, label="other meter")
        assume(other != header.meter_no)
        fmt = self.make_format()
        stranger = KeyStore({1: b"s" * 32}, 1)  # another utility's meters
        with self._blank(tmp_path) as conn:
            fmt.write_service(conn, header, command, issued)
            if header.meter_no != ANY_METER:
                with pytest.raises(CardError):
                    fmt.meter_read_service(conn, *self._meter_keys(other))
            else:
                with pytest.raises(CardError):
                    fmt.meter_read_service(conn, self.keys.meter_key(other), None, other)
            keys = (stranger.meter_key(other), stranger.service_key(), other)
            if header.meter_no != ANY_METER:
                keys = (stranger.meter_key(header.meter_no), stranger.service_key(),
                        header.meter_no)
            seen = self._service_typed(fmt, conn, keys)[1]
        assert seen is None or seen.command is None

    @settings(max_examples=20, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_service_card_copied_onto_another_card_is_rejected(self, tmp_path, data):
        header, command, issued = data.draw(_service_cards())
        answers = data.draw(_answers(header))
        fmt = self.make_format()
        with self._blank(tmp_path) as original:
            fmt.write_service(original, header, command, issued)
            for answer in answers:
                self._answer(fmt, original, header, answer)
            copied = original.read(0, MEMORY)
        meter = header.meter_no if header.meter_no != ANY_METER else data.draw(_meter_nos)
        with self._blank(tmp_path) as conn:
            spy = _Spy(conn)
            fmt.write_service(spy, header, command, issued)
            assert conn.read(0, 8) != copied[:8], "make_connection must give cards distinct UIDs"
            _overwrite(conn, spy.psc, copied)
            image, seen = self._service_typed(fmt, conn, self._meter_keys(meter))
        for view in (image, seen):
            if view is not None:
                assert view.command is None and view.snapshot is None and view.answers == ()

    @settings(max_examples=60, **_FILE_EXAMPLES)
    @given(data=st.data())
    def test_flipped_service_bytes_give_card_errors_or_genuine_content(self, tmp_path, data):
        header, command, issued = data.draw(_service_cards())
        answers = data.draw(_answers(header))
        flips = data.draw(st.lists(st.tuples(st.integers(0, MEMORY - 1), st.integers(1, 255)),
                                   min_size=1, max_size=6), label="flips")
        fmt = self.make_format()
        meter = header.meter_no if header.meter_no != ANY_METER else answers[0].meter_no \
            if not isinstance(answers[0], MeterSnapshot) else answers[0].returned.meter_no
        with self._blank(tmp_path) as conn:
            spy = _Spy(conn)
            fmt.write_service(spy, header, command, issued)
            for answer in answers:
                self._answer(fmt, spy, header, answer)
            mem = bytearray(conn.read(0, MEMORY))
            for at, mask in flips:
                mem[at] ^= mask
            _overwrite(conn, spy.psc, mem)
            image, seen = self._service_typed(fmt, conn, self._meter_keys(meter))
            try:
                user = fmt.read_any(conn)
            except CardError:
                user = None
        for view in (image, seen):
            if isinstance(view, ServiceCardImage):
                assert view.command in (None, command)
                assert view.snapshot is None or view.snapshot in answers
                assert all(a in answers for a in view.answers)
        assert user is None or isinstance(user, (CardImage, ServiceCardImage))

    @settings(max_examples=60, **_FILE_EXAMPLES)
    @given(image=st.binary(min_size=MEMORY, max_size=MEMORY))
    def test_random_bytes_read_as_any_card_give_card_errors_only(self, tmp_path, image):
        fmt = self.make_format()
        with self._blank(tmp_path) as conn:
            _overwrite(conn, TRANSPORT_PSC, image)
            self._service_typed(fmt, conn, self._meter_keys("123456"))
            try:
                fmt.read_header(conn)
            except CardError:
                pass


# -- tariff suite ----------------------------------------------------------------------------------
MAX_AMOUNT = Decimal(1_000_000)
CENT = Decimal("0.01")
_amounts = st.decimals(min_value=CENT, max_value=MAX_AMOUNT, places=2)
# One test module may run the suite on several tariffs (tests/unit/test_tariff_conformance.py); each
# subclass is its own tariff, so the same test method seen from several classes is intended.
_TARIFF_EXAMPLES = dict(deadline=None, suppress_health_check=[HealthCheck.differing_executors])


class TariffSuite:
    """Properties every tariff keeps. Provide ``tariff`` (a Tariff) and, optionally, ``contexts`` (a
    list of TariffContext covering the categories and settings the tariff handles); without them the
    suite uses the tariff's own ``samples``.

    Checked: energy is never negative and has two decimals; energy is monotone in the amount paid;
    the quote echoes the amount; the receipt lines add up exactly to it with no negative line; the
    samples pass the tariff's ``validate``; and, for a tariff that reports ``boundaries``, buying
    exactly up to a block boundary gives exactly the boundary's energy while a cent less gives less.
    """

    tariff = None
    contexts: list = []

    def _contexts(self) -> list:
        found = list(self.contexts) or list(getattr(self.tariff, "samples", ()))
        assert found, f"tariff {self.tariff.name} has no samples; give the suite some contexts"
        return found

    def _quote(self, amount: Decimal, ctx) -> Quote:
        q = self.tariff.quote(amount, ctx)
        assert isinstance(q, Quote) and q.tariff == self.tariff.name
        return q

    @settings(max_examples=150, **_TARIFF_EXAMPLES)
    @given(data=st.data())
    def test_energy_is_never_negative_and_has_two_decimals(self, data):
        ctx = data.draw(st.sampled_from(self._contexts()), label="context")
        amount = data.draw(_amounts, label="amount")
        q = self._quote(amount, ctx)
        assert q.energy.is_finite() and q.energy >= 0
        assert q.energy.as_tuple().exponent >= -2, f"energy {q.energy} has more than 2 decimals"

    @settings(max_examples=150, **_TARIFF_EXAMPLES)
    @given(data=st.data())
    def test_energy_is_monotone_in_the_amount_paid(self, data):
        ctx = data.draw(st.sampled_from(self._contexts()), label="context")
        low, high = sorted(data.draw(st.tuples(_amounts, _amounts), label="amounts"))
        assert self._quote(low, ctx).energy <= self._quote(high, ctx).energy

    @settings(max_examples=100, **_TARIFF_EXAMPLES)
    @given(data=st.data())
    def test_one_more_cent_never_buys_less(self, data):
        ctx = data.draw(st.sampled_from(self._contexts()), label="context")
        amount = data.draw(_amounts, label="amount")
        assert self._quote(amount, ctx).energy <= self._quote(amount + CENT, ctx).energy

    @settings(max_examples=100, **_TARIFF_EXAMPLES)
    @given(data=st.data())
    def test_quote_echoes_the_amount_paid(self, data):
        ctx = data.draw(st.sampled_from(self._contexts()), label="context")
        amount = data.draw(_amounts, label="amount")
        assert self._quote(amount, ctx).amount == amount

    @settings(max_examples=200, **_TARIFF_EXAMPLES)
    @given(data=st.data())
    def test_lines_add_up_exactly_to_the_amount(self, data):
        ctx = data.draw(st.sampled_from(self._contexts()), label="context")
        amount = data.draw(st.one_of(_amounts, st.decimals(min_value=CENT, max_value=Decimal(50),
                                                          places=2)), label="amount")
        q = self._quote(amount, ctx)
        assert q.lines, "a quote must say what the money pays for (receipt lines)"
        for name, value in q.lines:
            assert isinstance(name, str) and name
            assert isinstance(value, Decimal) and value >= 0, f"line {name!r} is {value}"
            assert value == value.quantize(CENT), f"line {name!r} is not to the cent: {value}"
        assert sum(v for _, v in q.lines) == amount, q.lines

    def test_samples_pass_the_tariffs_own_validation(self):
        if self.tariff.validate is None:
            pytest.skip(f"tariff {self.tariff.name} has no validate()")
        for ctx in self._contexts():
            self.tariff.validate(ctx.settings)

    def test_block_boundaries_are_exact_to_the_cent(self):
        if self.tariff.boundaries is None:
            pytest.skip(f"tariff {self.tariff.name} has no blocks (no boundaries())")
        checked = 0
        for ctx in self._contexts():
            for amount, energy in self.tariff.boundaries(ctx):
                assert amount == amount.quantize(CENT), f"boundary amount {amount} is not to the cent"
                if amount > MAX_AMOUNT:
                    continue
                assert self._quote(amount, ctx).energy == energy, (ctx, amount, energy)
                if amount > CENT:
                    assert self._quote(amount - CENT, ctx).energy < energy, (ctx, amount, energy)
                assert self._quote(amount + CENT, ctx).energy >= energy, (ctx, amount, energy)
                checked += 1
        assert checked, f"tariff {self.tariff.name} reported no boundary in any of its contexts"
