"""The driver conformance suite over a socat pty pair and over crossed loop:// ports."""

import pytest
from serial_rig import loop_rig, pty_rig  # noqa: F401  (fixtures)

from dbmis_core.testing.suites import DriverSuite


class TestSerialDriver(DriverSuite):
    """One class for both lines: hypothesis refuses one test run by two different classes."""

    @pytest.fixture(autouse=True, params=["pty", "loop"])
    def _line(self, request):
        self.rig = request.getfixturevalue(f"{request.param}_rig")

    def make_reader(self, tmp_path):
        return self.rig.reader(tmp_path)

    def remove_card(self, reader):
        self.rig.encoder.remove()
