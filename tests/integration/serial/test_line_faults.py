"""What goes wrong on a serial line and at the slot: garbled and lost frames, pulled cards, dead ports."""

from contextlib import closing

import pytest
from serial_rig import loop_rig, pty_rig, rig, socat_pair  # noqa: F401  (fixtures)

from dbmis_core.errors import (
    CardRemovedError,
    CardTimeoutError,
    NoCardError,
    ReaderError,
    WrongPscError,
)
from dbmis_core.keys import TRANSPORT_PSC
from dbmis_serial.emulator import Emulator
from dbmis_serial.protocol import Cmd
from dbmis_serial.reader import SerialReader, open_reader

RETRIES = 3


@pytest.mark.parametrize("corrupted", [1, RETRIES])
def test_garbled_replies_are_naked_and_resent(rig, corrupted):
    reader = rig.reader(retries=RETRIES)
    with closing(reader.connect()) as conn:
        conn.present_psc(TRANSPORT_PSC)
        rig.encoder.faults.corrupt_replies = corrupted
        conn.write(40, b"\x02\x03\x06\x15")  # frame bytes as data
        assert conn.read(40, 4) == b"\x02\x03\x06\x15"
    assert rig.encoder.stats.naks_received == corrupted
    assert rig.encoder.stats.executed.count(Cmd.WRITE) == 1


def test_more_garbled_replies_than_retries_is_a_reader_error(rig):
    reader = rig.reader(retries=RETRIES)
    with closing(reader.connect()) as conn:
        rig.encoder.faults.corrupt_replies = RETRIES + 1
        with pytest.raises(ReaderError, match="garbled") as exc:
            conn.read(0, 8)
        assert reader.port_name in str(exc.value)
        assert conn.read(0, 8)  # the next request gets through


def test_garbled_requests_are_sent_again(rig):
    reader = rig.reader(retries=RETRIES)
    with closing(reader.connect()) as conn:
        rig.encoder.faults.nak_requests = RETRIES
        assert len(conn.read(0, 256)) == 256
        rig.encoder.faults.nak_requests = RETRIES + 1
        with pytest.raises(ReaderError, match="refused our frames"):
            conn.read(0, 8)


def test_lost_reply_to_a_write_is_not_written_twice(rig):
    reader = rig.reader()
    with closing(reader.connect()) as conn:
        conn.present_psc(TRANSPORT_PSC)
        rig.encoder.faults.drop_replies = 1
        conn.write(60, b"once")
        assert conn.read(60, 4) == b"once"
    assert rig.encoder.stats.duplicates == 1
    assert rig.encoder.stats.executed.count(Cmd.WRITE) == 1


def test_lost_reply_to_a_wrong_psc_costs_one_try(rig):
    """A repeated PRESENT_PSC that ran twice would take two tries: the SEQ cache must answer it."""
    reader = rig.reader()
    with closing(reader.connect()) as conn:
        rig.encoder.faults.drop_replies = 1
        with pytest.raises(WrongPscError) as exc:
            conn.present_psc(b"\x01\x02\x03")
        assert exc.value.tries_left == 2 and conn.tries_left() == 2
    assert rig.encoder.stats.duplicates == 1


def test_an_encoder_that_stops_answering_times_out(rig):
    reader = rig.reader(timeout=0.2, retries=2)
    with closing(reader.connect()) as conn:
        rig.encoder.faults.drop_replies = 3
        with pytest.raises(CardTimeoutError, match="did not answer") as exc:
            conn.read(0, 8)
        assert reader.port_name in str(exc.value)


def test_card_timeout_from_the_encoder(rig):
    reader = rig.reader()
    with closing(reader.connect()) as conn:
        rig.encoder.faults.timeout = True
        with pytest.raises(CardTimeoutError):
            conn.read(0, 1)
        assert len(conn.read(0, 1)) == 1


def test_card_pulled_mid_write_keeps_the_bytes_written_before(rig):
    reader = rig.reader()
    card = rig.encoder.card
    with closing(reader.connect()) as conn:
        conn.present_psc(TRANSPORT_PSC)
        conn.write(40, b"\x01\x02\x03")
        rig.encoder.faults.pull_after_bytes = 5  # counts across writes, like the simulated card
        with pytest.raises(CardRemovedError):
            conn.write(50, bytes(range(10, 20)))
        assert not reader.card_present()
        with pytest.raises(CardRemovedError):
            conn.read(50, 10)
    with pytest.raises(NoCardError):
        reader.connect()
    rig.encoder.insert(card)
    with closing(reader.connect()) as conn:
        assert conn.read(40, 3) == b"\x01\x02\x03"
        assert conn.read(50, 10) == bytes(range(10, 15)) + b"\xff" * 5


def test_card_taken_out_between_commands(rig):
    reader = rig.reader()
    with closing(reader.connect()) as conn:
        rig.encoder.remove()
        with pytest.raises(CardRemovedError):
            conn.read(0, 8)


def test_a_new_connection_ends_the_old_one(rig):
    reader = rig.reader()
    old = reader.connect()
    with closing(reader.connect()) as conn:
        with pytest.raises(CardRemovedError):
            old.read(0, 8)
        assert len(conn.read(0, 8)) == 8


def test_unplugged_port_is_a_reader_error_and_a_replug_recovers(pty_rig, tmp_path):
    reader = pty_rig.reader()
    card = pty_rig.encoder.card
    conn = reader.connect()
    assert len(conn.read(0, 8)) == 8
    pty_rig.pair.unplug()
    with pytest.raises(ReaderError, match="unplugged") as exc:
        conn.read(0, 8)
    assert str(pty_rig.pair.host) in str(exc.value)
    with pytest.raises(ReaderError, match="cannot open the encoder port"):
        reader.card_present()
    conn.close()
    with socat_pair(tmp_path) as pair:
        emulator = Emulator(str(pair.encoder), card).start()
        try:
            assert reader.card_present()
            with closing(reader.connect()) as conn:
                assert len(conn.read(0, 8)) == 8
        finally:
            reader.close()
            emulator.stop()


@pytest.mark.parametrize("port", ["missing-tty", "/dev/null"])
def test_wrong_port_is_a_reader_error_naming_it(tmp_path, port):
    port = str(tmp_path / port) if "/" not in port else port
    with pytest.raises(ReaderError, match="cannot open the encoder port") as exc:
        open_reader({"port": port, "home": str(tmp_path)})
    assert port in str(exc.value)


def test_a_port_without_an_encoder_is_a_reader_error(tmp_path):
    with socat_pair(tmp_path) as pair:
        reader = SerialReader(str(pair.host), timeout=0.1, retries=1)
        try:
            with pytest.raises(ReaderError, match="no encoder answers") as exc:
                reader.card_present()
            assert str(pair.host) in str(exc.value)
        finally:
            reader.close()
