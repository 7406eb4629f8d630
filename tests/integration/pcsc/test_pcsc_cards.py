"""Reference cards through pcscd: vends, PSC counter, locked cards, pulled cards, a dead service,
and a full sale through the DBMIS services with the pcsc driver configured."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pcsc_helpers import READER

from dbmis_core.cards import CardHeader, VendRecord
from dbmis_core.domain import CardType, CreditUnit, VendState
from dbmis_core.errors import CardLockedError, CardRemovedError, WrongPscError
from dbmis_core.keys import TRANSPORT_PSC, KeyStore
from dbmis_pcsc.reader import PcscReader
from dbmis_refcard.format import RefCardFormat
from dbmis_sim.sle4442 import SimCardConnection

HEADER = CardHeader(CardType.USER, 1, "123456", "100001")
FORMAT = RefCardFormat(KeyStore({1: b"k" * 32}, 1))
BIN = Path(sys.executable).parent


def _vend(seq: int, credit: str) -> VendRecord:
    return VendRecord(seq, Decimal(credit), CreditUnit.KWH, HEADER.meter_no, HEADER.account_no,
                      datetime(2024, 5, seq, 12, 0, tzinfo=UTC))


def _issued(slot, dialect, *vends):
    """A personalised card in the reader carrying ``vends``; returns (card path, reader)."""
    path = slot.new_card(dialect)
    reader = PcscReader(READER, dialect)
    with closing(reader.connect()) as conn:
        FORMAT.personalise(conn, HEADER)
        for rec in vends:
            FORMAT.write_vend(conn, rec)
    return path, reader


def _read(reader):
    with closing(reader.connect()) as conn:
        return FORMAT.read(conn)


def test_issue_write_vend_and_read_back(slot, dialect):
    path, reader = _issued(slot, dialect, _vend(1, "89.28"))
    image = _read(reader)
    assert (image.header, image.vend, image.tries_left) == (HEADER, _vend(1, "89.28"), 3)
    slot.remove()
    with SimCardConnection(path) as conn:  # the bytes the simulated driver sees agree
        assert FORMAT.read(conn).vend == _vend(1, "89.28")
        assert conn.protection_bits()[1:3] == b"\x00\x00"  # header bytes 8-23 burned


def test_wrong_psc_lowers_the_counter_on_the_card(slot, dialect):
    path, reader = _issued(slot, dialect)
    with closing(reader.connect()) as conn:
        with pytest.raises(WrongPscError, match="2 tries left") as exc:
            conn.present_psc(TRANSPORT_PSC)  # the issued card has its own PSC now
        assert exc.value.tries_left == 2 and conn.tries_left() == 2
    assert _read(reader).tries_left == 2
    slot.remove()
    with SimCardConnection(path) as conn:
        assert conn.tries_left() == 2


def test_a_locked_card_says_so_and_stays_readable(slot, dialect):
    _path, reader = _issued(slot, dialect, _vend(1, "10.00"))
    with closing(reader.connect()) as conn:
        for _ in range(2):
            with pytest.raises(WrongPscError):
                conn.present_psc(b"\x00\x00\x00")
        with pytest.raises(CardLockedError, match="locked"):
            conn.present_psc(b"\x00\x00\x00")
    with closing(reader.connect()) as conn:
        with pytest.raises(CardLockedError, match="the card is locked"):
            FORMAT.write_vend(conn, _vend(2, "20.00"))
    image = _read(reader)
    assert image.tries_left == 0 and image.vend == _vend(1, "10.00")


def test_card_pulled_mid_write_keeps_the_previous_vend(slot, dialect):
    path, reader = _issued(slot, dialect, _vend(1, "10.00"))
    slot.emulator.pull_after_bytes = 20  # slot B gets 20 of its 48 bytes
    with pytest.raises(CardRemovedError, match="removed"):
        with closing(reader.connect()) as conn:
            FORMAT.write_vend(conn, _vend(2, "20.00"))
    assert not reader.card_present()
    slot.insert(path, dialect)
    image = _read(reader)
    assert image.vend == _vend(1, "10.00")
    assert "CRC" in image.slots[1].problem
    with closing(reader.connect()) as conn:
        FORMAT.write_vend(conn, _vend(2, "20.00"))
    assert _read(reader).vend == _vend(2, "20.00")


SERVICE_DOWN = textwrap.dedent("""
    from dbmis_core.errors import ReaderError
    from dbmis_pcsc import hooks
    from dbmis_pcsc.reader import PcscReader

    reader = PcscReader("Virtual PCD 00 00")
    calls = [lambda: hooks.list_readers({}), lambda: hooks.open_reader({}), reader.card_present,
             reader.connect, lambda: reader.subscribe(print)]
    for call in calls:
        try:
            call()
            print("no error")
        except ReaderError as exc:
            print(f"ReaderError: {exc}")
""")


def _no_service_env(tmp_path) -> dict:
    return dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "no-pcscd.comm"))


def test_service_not_running_gives_reader_errors(tmp_path):
    p = subprocess.run([sys.executable, "-c", SERVICE_DOWN], env=_no_service_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.splitlines() == ["ReaderError: card reader service is not running"] * 5


def _home(tmp_path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dbmis.toml").write_text(
        f'[database]\nurl = "sqlite:///{home}/db.sqlite3"\n[card]\ndriver = "pcsc"\n'
        '[drivers.pcsc]\ndialect = "acs"\n')
    return home


def _dbmis(home, *args, env=None):
    env = dict(env or os.environ, DBMIS_HOME=str(home))
    env.pop("DBMIS_CONFIG", None)
    return subprocess.run([str(BIN / "dbmis"), *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_cli_lists_readers_or_says_the_service_is_down(pcscd, tmp_path):
    home = _home(tmp_path)
    p = _dbmis(home, "reader", "list")
    assert p.returncode == 0 and READER in p.stdout.splitlines(), p.stdout + p.stderr
    p = _dbmis(home, "reader", "list", env=_no_service_env(tmp_path))
    assert p.returncode != 0 and "card reader service is not running" in p.stderr
    assert "Traceback" not in p.stderr


def test_full_sale_through_the_services_and_pcscd(slot, tmp_path):
    from dbmis_core.app import Application
    from dbmis_core.config import Config
    from dbmis_core.services import cards, setup, vending

    slot.new_card("acs")
    app = Application(Config.from_dict({"database": {"url": f"sqlite:///{tmp_path}/db.sqlite3"},
                                        "card": {"driver": "pcsc"},
                                        "drivers": {"pcsc": {"dialect": "acs"}}}, home=tmp_path))
    try:
        setup.init(app, "admin", "admin-pass-1")
        op = app.login("admin", "admin-pass-1")
        setup.seed_demo(app, op)
        uid = cards.issue_user_card(app, op, "100001")
        result = vending.vend(app, op, "100001", "50.00")
        assert result.state == VendState.COMPLETED and result.sequence == 1
        assert app.reader.name == READER
        report = cards.read_card(app, op)
        assert report.registered and report.image.uid == uid
        assert report.image.vend.sequence == 1 and report.image.vend.credit == result.energy
        assert report.image.unloaded
    finally:
        app.close()


def test_sale_pulled_mid_write_through_pcscd_is_reconciled(slot, tmp_path):
    """The card leaves the reader during the sale's write: the sale stays pending, and when the card
    is back, reconciliation fails it (the torn slot holds nothing) and the next sale succeeds."""
    from dbmis_core.app import Application
    from dbmis_core.config import Config
    from dbmis_core.errors import CardError
    from dbmis_core.services import cards, setup, vending

    path = slot.new_card("acs")
    app = Application(Config.from_dict({"database": {"url": f"sqlite:///{tmp_path}/db.sqlite3"},
                                        "card": {"driver": "pcsc"},
                                        "sales": {"refuse_unloaded": False},
                                        "drivers": {"pcsc": {"dialect": "acs"}}}, home=tmp_path))
    try:
        setup.init(app, "admin", "admin-pass-1")
        op = app.login("admin", "admin-pass-1")
        setup.seed_demo(app, op)
        cards.issue_user_card(app, op, "100001")
        first = vending.vend(app, op, "100001", "20.00")
        slot.emulator.pull_after_bytes = 20
        with pytest.raises(CardError, match="pending"):
            vending.vend(app, op, "100001", "30.00")
        assert [s[3] for s in vending.unfinished(app, op)] == ["pending"]
        slot.insert(path, "acs")
        assert [state for _, state in vending.reconcile_card_in_reader(app, op)] == ["failed"]
        assert vending.unfinished(app, op) == []
        again = vending.vend(app, op, "100001", "30.00")
        assert (first.sequence, again.sequence, again.state) == (1, 2, VendState.COMPLETED)
        assert cards.read_card(app, op).image.vend.sequence == 2
    finally:
        app.close()
