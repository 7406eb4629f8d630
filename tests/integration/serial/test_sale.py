"""A sale through the DBMIS services with the serial driver and the emulator running as a process."""

import subprocess
import sys
from contextlib import closing
from decimal import Decimal
from types import SimpleNamespace

import pytest
from serial_rig import socat_pair

from dbmis_core.app import Application
from dbmis_core.config import Config
from dbmis_core.domain import VendState
from dbmis_core.errors import ConfigError
from dbmis_core.services import cards, setup, vending
from dbmis_serial import hooks
from dbmis_serial.reader import list_ports, open_reader
from dbmis_sim.meter import MeterSimulator


@pytest.fixture
def encoder_process(tmp_path):
    """``python -m dbmis_serial.emulator`` on one pty; yields the other pty and the card file."""
    with socat_pair(tmp_path) as pair:
        card = tmp_path / "card.sle4442"
        proc = subprocess.Popen([sys.executable, "-m", "dbmis_serial.emulator", "--port", str(pair.encoder),
                                 "--card", str(card), "--blank"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert "serving" in proc.stdout.readline()
            yield pair.host, card
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err


def test_full_sale_over_the_serial_encoder(tmp_path, home, encoder_process):
    host_tty, card = encoder_process
    app = Application(Config.from_dict({"database": {"url": f"sqlite:///{tmp_path}/db.sqlite3"},
                                        "card": {"driver": "serial"},
                                        "drivers": {"serial": {"port": str(host_tty)}}}, home=tmp_path))
    try:
        setup.init(app, "admin", "admin-pass-1")
        op = app.login("admin", "admin-pass-1")
        setup.seed_demo(app, op)
        uid = cards.issue_user_card(app, op, "100001")
        assert uid == card.read_bytes()[:8].hex().upper()
        sale = vending.vend(app, op, "100001", "50.00")
        assert (sale.state, sale.sequence, sale.energy) == (VendState.COMPLETED, 1, Decimal("89.28"))
        assert cards.read_card(app, op).image.vend.sequence == 1
        meter = MeterSimulator.provision(tmp_path / "meter.json", sale.meter_no,
                                         app.keys.meter_key(sale.meter_no))
        with closing(app.reader.connect()) as conn:  # the meter side reads the same card
            assert meter.insert(conn, app.card_format).applied == Decimal("89.28")
        assert cards.read_card(app, op).image.returned.last_sequence == 1
    finally:
        app.close()


def test_registration_imports_no_pyserial():
    code = ("import sys, dbmis_serial.hooks as h; (spec,) = h.dbmis_card_drivers(); "
            "print(spec.name, spec.unavailable, 'serial' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["serial", "None", "False"]


def test_driver_without_pyserial_is_unavailable(monkeypatch):
    monkeypatch.setattr(hooks, "find_spec", lambda name: None)
    (spec,) = hooks.dbmis_card_drivers()
    assert spec.name == "serial" and "pyserial is not installed" in spec.unavailable


def test_settings_need_a_port(tmp_path):
    with pytest.raises(ConfigError, match="drivers.serial.port"):
        open_reader({"home": str(tmp_path)})


def test_enumerate_lists_device_names(monkeypatch):
    import serial.tools.list_ports

    found = [SimpleNamespace(device="/dev/ttyUSB1"), SimpleNamespace(device="/dev/ttyS0")]
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: found)
    assert list_ports({}) == ["/dev/ttyS0", "/dev/ttyUSB1"]
