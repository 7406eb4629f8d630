"""The simulated SLE4442 reader: the driver conformance suite plus its fault injection."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from contextlib import closing

import pytest

from dbmis_core.errors import CardRemovedError, CardTimeoutError, NoCardError, ValidationError
from dbmis_core.keys import TRANSPORT_PSC
from dbmis_core.testing.suites import DriverSuite
from dbmis_sim.reader import SimReader
from dbmis_sim.sle4442 import ATR, Faults


class TestSimDriver(DriverSuite):
    def make_reader(self, tmp_path):
        reader = SimReader(tmp_path / "sim")
        reader.new_card()
        return reader

    def remove_card(self, reader):
        reader.eject()


@pytest.fixture
def reader(tmp_path):
    r = SimReader(tmp_path / "sim")
    r.new_card()
    return r


def test_atr_is_the_sle4442_atr(reader):
    with closing(reader.connect()) as conn:
        assert conn.atr() == ATR == bytes.fromhex("3B04A2131091")


def test_blank_card_has_a_factory_protected_serial(reader):
    uid = reader.inserted_uid()
    with closing(reader.connect()) as conn:
        assert conn.read(0, 8).hex().upper() == uid
        assert conn.read(8, 248) == b"\xff" * 248
        assert conn.protection_bits() == b"\x00\xff\xff\xff"


def test_pull_during_write_leaves_a_partial_region_and_empties_the_slot(reader):
    uid = reader.inserted_uid()
    reader.inject(Faults(pull_after_bytes=5))
    conn = reader.connect()
    conn.present_psc(TRANSPORT_PSC)
    with pytest.raises(CardRemovedError):
        conn.write(40, bytes(range(10)))
    assert not reader.card_present()
    with pytest.raises(CardRemovedError):
        conn.read(40, 10)
    conn.close()
    reader.insert(uid)
    with closing(reader.connect()) as conn:
        assert conn.read(40, 10) == bytes(range(5)) + b"\xff" * 5


def test_pull_counts_bytes_across_writes(reader):
    uid = reader.inserted_uid()
    reader.inject(Faults(pull_after_bytes=5))
    with closing(reader.connect()) as conn:
        conn.present_psc(TRANSPORT_PSC)
        conn.write(40, b"\x01\x02\x03")
        with pytest.raises(CardRemovedError):
            conn.write(50, b"\x04\x05\x06")
    reader.insert(uid)
    with closing(reader.connect()) as conn:
        assert conn.read(40, 3) + conn.read(50, 3) == b"\x01\x02\x03\x04\x05\xff"


def test_timeout_fires_once(reader):
    reader.inject(Faults(timeout=True))
    with closing(reader.connect()) as conn:
        with pytest.raises(CardTimeoutError):
            conn.atr()
        assert conn.atr() == ATR


def test_injected_faults_reach_another_reader_on_the_same_folder_once(reader):
    reader.inject(Faults(timeout=True))
    other = SimReader(reader.folder)
    with closing(other.connect()) as conn, pytest.raises(CardTimeoutError):
        conn.read(0, 8)
    with closing(other.connect()) as conn:
        assert len(conn.read(0, 8)) == 8
    assert not (reader.folder / "faults.json").exists()


def test_lasting_faults_fire_on_every_connection(reader):
    reader.inject(Faults(timeout=True, once=False))
    for _ in range(2):
        with closing(SimReader(reader.folder).connect()) as conn, pytest.raises(CardTimeoutError):
            conn.atr()


def test_card_written_by_another_process_persists(reader):
    script = textwrap.dedent(f"""
        from dbmis_core.keys import TRANSPORT_PSC
        from dbmis_sim.reader import SimReader
        conn = SimReader({str(reader.folder)!r}).connect()
        conn.present_psc(TRANSPORT_PSC)
        conn.write(100, b"written elsewhere")
        conn.close()
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with closing(reader.connect()) as conn:
        assert conn.read(100, 17) == b"written elsewhere"


def test_eject_keeps_the_card_in_stock(reader):
    uid = reader.inserted_uid()
    reader.eject()
    with pytest.raises(NoCardError):
        reader.connect()
    assert reader.insert(uid) == uid and reader.inserted_uid() == uid


def test_new_cards_get_distinct_serials(reader):
    first = reader.inserted_uid()
    second = reader.new_card()
    assert first != second and reader.inserted_uid() == second


def test_inserting_an_unknown_card_is_refused(reader):
    with pytest.raises(ValidationError):
        reader.insert("0011223344556677")
