"""Test rigs for the serial driver: an encoder emulator on one end of a line, the driver on the other.

Two lines: a socat pty pair (real ttys, as a USB serial adapter looks to pyserial) and crossed
loop:// ports (pyserial only, in one process). These fixtures live here and not in a conftest.py
because tests elsewhere do ``from conftest import ...``, which a second conftest module would shadow;
test modules import the fixtures by name.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest

from dbmis_serial.emulator import CrossedLoops, Emulator, new_card_file
from dbmis_serial.reader import SerialReader

SOCAT = shutil.which("socat")


@attrs.define
class PtyPair:
    encoder: Path  # link to the pty the emulator opens
    host: Path     # link to the pty the driver opens
    proc: subprocess.Popen

    def unplug(self) -> None:
        """Kill socat like a pulled USB adapter: both ptys vanish, the links dangle."""
        self.proc.kill()
        self.proc.wait()


@contextmanager
def socat_pair(folder: Path):
    """``socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B``, killed on the way out."""
    if SOCAT is None:
        pytest.skip("socat is not installed")
    a, b = folder / "encoder-tty", folder / "host-tty"
    for link in (a, b):
        link.unlink(missing_ok=True)
    log = folder / f"socat-{uuid.uuid4().hex[:6]}.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([SOCAT, "-d", "-d", f"pty,raw,echo=0,link={a}",
                                 f"pty,raw,echo=0,link={b}"], stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 5
        while not (a.exists() and b.exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"socat made no pty pair: {log.read_text()}")
            time.sleep(0.01)
        yield PtyPair(a, b, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@attrs.define
class Rig:
    """An emulator serving one end; ``reader()`` puts a new blank card in and opens the driver."""

    emulator: Emulator
    port: object  # what SerialReader takes: the host pty link, or the host end of crossed loops
    folder: Path
    pair: PtyPair | None = None
    readers: list = attrs.Factory(list)

    @property
    def encoder(self):
        return self.emulator.encoder

    def blank_card(self, folder: Path | None = None) -> Path:
        path = (folder or self.folder) / f"{uuid.uuid4().hex[:12]}.card"
        new_card_file(path)
        self.encoder.insert(path)
        return path

    def reader(self, folder: Path | None = None, **settings) -> SerialReader:
        self.close_readers()  # a pty opens exclusively: one driver at a time
        self.blank_card(folder)
        reader = SerialReader(self.port, **{"timeout": 0.5, **settings})
        self.readers.append(reader)
        return reader

    def close_readers(self) -> None:
        while self.readers:
            self.readers.pop().close()

    def close(self) -> None:
        self.close_readers()
        self.emulator.stop()


@pytest.fixture
def pty_rig(tmp_path):
    with socat_pair(tmp_path) as pair:
        rig = Rig(Emulator(str(pair.encoder)).start(), str(pair.host), tmp_path, pair)
        try:
            yield rig
        finally:
            rig.close()


@pytest.fixture
def loop_rig(tmp_path):
    cable = CrossedLoops()
    rig = Rig(Emulator(cable.encoder).start(), cable.host, tmp_path)
    try:
        yield rig
    finally:
        rig.close()
        cable.close()


@pytest.fixture(params=["pty", "loop"])
def rig(request):
    return request.getfixturevalue(f"{request.param}_rig")
