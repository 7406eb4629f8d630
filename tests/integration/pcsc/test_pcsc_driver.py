"""The PC/SC driver through a real pcscd: conformance suite in both dialects, listing, events."""

from __future__ import annotations

import time
from contextlib import closing

import pytest

from dbmis_core.errors import CardError, ConfigError, ReaderError
from dbmis_core.testing.suites import DriverSuite
from dbmis_pcsc import hooks
from dbmis_pcsc.reader import PcscReader, open_reader

from pcsc_helpers import DIALECTS, READER, Recorder


class TestPcscDriver(DriverSuite):
    """One class for both dialects: hypothesis refuses a test run from two different classes."""

    @pytest.fixture(autouse=True, params=DIALECTS)
    def _use_slot(self, request, slot):
        request.instance.slot, request.instance.dialect = slot, request.param

    def make_reader(self, tmp_path):
        self.slot.new_card(self.dialect)
        return open_reader({"reader": "Virtual PCD 00 00", "dialect": self.dialect, "timeout": 2})

    def remove_card(self, reader):
        self.slot.remove()


def test_lists_the_virtual_reader_through_the_registered_driver(pcscd):
    (spec,) = hooks.dbmis_card_drivers()
    assert spec.name == "pcsc" and spec.unavailable is None
    assert READER in spec.enumerate({})
    reader = spec.open({"reader": "PCD 00 00", "home": "/nonexistent"})
    assert reader.name == READER and reader.dialect.name == "acs"


def test_reader_choice_and_dialect_settings(pcscd):
    assert open_reader({}).name == READER  # the first reader by default
    assert open_reader({"dialect": "auto"}).dialect.name == "acs"  # unknown family: ACS
    assert PcscReader("HID Global OMNIKEY 3x21 Smart Card Reader 0", "auto").dialect.name == "omnikey"
    with pytest.raises(ReaderError, match="no card reader matches 'ACR39'.*Virtual PCD 00 00"):
        open_reader({"reader": "ACR39"})
    with pytest.raises(ConfigError, match="unknown PC/SC dialect 'gemalto'"):
        open_reader({"dialect": "gemalto"})


def test_acs_connect_selects_the_card_type_first(slot):
    emulator = slot.insert(slot.blank(), "acs")
    with closing(PcscReader(READER, "acs").connect()) as conn:
        conn.read(0, 8)
    assert list(emulator.seen)[:2] == [bytes.fromhex("FFA400000106"), bytes.fromhex("FFB0000008")]


def test_a_dialect_the_card_does_not_speak_gives_the_status_word(slot):
    slot.new_card("omnikey")
    with pytest.raises(CardError, match=r"SW 6D 00"):  # the ACS card-type selection is unknown there
        PcscReader(READER, "acs").connect()


def test_insert_and_remove_events_reach_the_subscriber(slot):
    path = slot.blank()
    reader = PcscReader(READER)
    events = Recorder()
    reader.subscribe(events)
    try:
        slot.insert(path)
        events.wait_for("inserted")
        slot.remove()
        events.wait_for("removed")
        slot.insert(path)
        events.wait_for("inserted", 2)
    finally:
        reader.unsubscribe()
    slot.remove()
    time.sleep(1.0)  # two pcscd polling rounds: an event would have arrived by now
    assert events.events == ["inserted", "removed", "inserted"]


def test_a_card_already_in_the_reader_is_reported_on_subscribe(slot):
    slot.new_card()
    reader = PcscReader(READER)
    events = Recorder()
    reader.subscribe(events)
    try:
        events.wait_for("inserted")
    finally:
        reader.close()
