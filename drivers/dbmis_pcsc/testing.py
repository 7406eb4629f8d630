"""Test the PC/SC driver without hardware: pcscd + the vpcd virtual reader + a card emulator.

``Pcscd`` runs pcscd in the foreground (no systemd needed) and stops it by PID. ``CardEmulator``
is a virtual card on vpcd's socket (research/cards.md): each message is a 2-byte big-endian length
and a payload; one byte is a control code, anything longer an APDU to answer. Closing the socket is
pulling the card out. The emulator only speaks APDUs: what the card does is delegated to
``open_card()``, any ``dbmis_core.cards.CardConnection`` (the simulated SLE4442 card file is the
reference), so the pcsc driver is checked against the same semantics as the simulated driver.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from dbmis_core.errors import (
    CardLockedError,
    CardRemovedError,
    CardWriteProtectedError,
    WrongPscError,
)

from . import dialects as d

VPCD_PORT = 35963
ATR = bytes.fromhex("3B04A2131091")
CONF_DIR = Path("/etc/reader.conf.d")
PCSCD_PID_FILE = Path("/run/pcscd/pcscd.pid")
OWN_PID_FILE = Path(tempfile.gettempdir()) / "dbmis-test-pcscd.pid"
INSTALL_HINT = "apt-get install pcscd vsmartcard-vpcd libpcsclite-dev"


def reader_name(slot: int = 0) -> str:
    return f"Virtual PCD 00 {slot:02d}"


class _Pulled(Exception):
    """The emulated card leaves the reader in the middle of a command."""


class CardEmulator:
    """A memory card in vpcd slot ``slot`` speaking the ``acs`` or ``omnikey`` dialect.

    ``pull_after_bytes``: pull the card once that many more bytes of main-memory writes reached it
    (the rest of the write that crosses the limit is lost, as with a real pull).
    """

    def __init__(self, open_card, dialect: str = "acs", slot: int = 0, atr: bytes = ATR) -> None:
        if dialect not in d.DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}")
        self.open_card, self.dialect, self.slot, self.atr = open_card, dialect, slot, atr
        self.pull_after_bytes: int | None = None
        self.seen: collections.deque[bytes] = collections.deque(maxlen=2000)
        self._card = None
        self._verified = self._selected = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # -- socket side -----------------------------------------------------------------------------
    def insert(self, wait: float = 5.0) -> "CardEmulator":
        """Connect to vpcd; with ``wait``, return once pcscd reports the card present."""
        sock = socket.create_connection(("127.0.0.1", VPCD_PORT + self.slot), timeout=5)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True,
                                        name=f"vpcd-card-{self.slot}")
        self._thread.start()
        if wait:
            wait_for_card(reader_name(self.slot), True, wait)
        return self

    def remove(self, wait: float = 5.0) -> None:
        """Pull the card; with ``wait``, return once pcscd reports the slot empty."""
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)
        if wait:
            wait_for_card(reader_name(self.slot), False, wait)

    @staticmethod
    def _recv(sock: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        # vpcd sends length and payload in two writes: ack at once or Nagle costs 40 ms an APDU
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return buf

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                head = self._recv(sock, 2)
                msg = head and self._recv(sock, struct.unpack(">H", head)[0])
                if msg is None:
                    break
                answer = self.respond(msg)
                if answer is None:
                    break
                if answer:
                    sock.sendall(struct.pack(">H", len(answer)) + answer)
        except OSError:
            pass
        finally:
            sock.close()
            self._end_session()

    # -- card side -------------------------------------------------------------------------------
    def _end_session(self) -> None:
        card, self._card = self._card, None
        self._verified = self._selected = False
        if card is not None:
            card.close()

    def _session(self):
        if self._card is None:
            self._card = self.open_card()
        return self._card

    def respond(self, msg: bytes) -> bytes | None:
        """Answer one vpcd message: b"" for no answer, None to pull the card. Never raises."""
        try:
            if len(msg) == 1:
                if msg[0] == 0x04:
                    return self.atr
                self._end_session()  # power off, power on and reset all end the PSC session
                return b""
            self.seen.append(bytes(msg))
            data, sw = self._apdu(bytes(msg))
            return data + bytes([sw >> 8, sw & 0xFF])
        except _Pulled:
            return None
        except CardRemovedError:
            return None
        except Exception:
            return bytes([d.FAILED >> 8, d.FAILED & 0xFF])

    def _apdu(self, apdu: bytes) -> tuple[bytes, int]:
        if apdu[0] != 0xFF:
            return b"", 0x6E00
        handler = self._acs if self.dialect == "acs" else self._omnikey
        try:
            return handler(apdu)
        except CardWriteProtectedError:
            return b"", d.PROTECTED if self._verified else d.NOT_PRESENTED
        except ValueError:
            return b"", d.WRONG_P1P2

    def _write(self, addr: int, data: bytes) -> None:
        card = self._session()
        limit = self.pull_after_bytes
        if limit is not None and limit < len(data):
            self.pull_after_bytes = None
            if limit:
                card.write(addr, data[:limit])
            raise _Pulled
        card.write(addr, data)
        if limit is not None:
            self.pull_after_bytes = limit - len(data)

    def _present(self, psc: bytes) -> int:
        """Present the PSC; returns tries left, 0 if the card is (now) locked."""
        card = self._session()
        was_locked = card.tries_left() == 0
        self._verified = False
        try:
            left = card.present_psc(psc)
        except WrongPscError as exc:
            return exc.tries_left
        except CardLockedError:
            return -1 if was_locked else 0
        self._verified = True
        return left

    def _acs(self, apdu: bytes) -> tuple[bytes, int]:
        ins, p2, body = apdu[1], apdu[3], apdu[5:]
        if ins == 0xA4:
            self._selected = body == b"\x06"
            return b"", d.OK if self._selected else d.NOT_SUPPORTED
        if not self._selected:
            return b"", d.NOT_SUPPORTED  # still in processor-card mode
        card = self._session()
        if len(apdu) > 5 and apdu[4] != len(body):
            return b"", 0x6700
        if ins == 0xB0:
            return card.read(p2, apdu[4] or 256), d.OK
        if ins == 0xB1:
            return bytes([d.tries_to_errcnt(card.tries_left()), 0, 0, 0]), d.OK
        if ins == 0xB2:
            return card.protection_bits(), d.OK
        if ins == 0xD0:
            self._write(p2, body)
            return b"", d.OK
        if ins == 0xD1:
            card.protect(p2, body)
            return b"", d.OK
        if ins == 0x20:
            return b"", 0x9000 | d.tries_to_errcnt(max(self._present(body), 0))
        if ins == 0xD2:
            card.change_psc(body)
            return b"", d.OK
        return b"", d.UNKNOWN_INS

    def _omnikey(self, apdu: bytes) -> tuple[bytes, int]:
        ins, p1, p2, body = apdu[1], apdu[2], apdu[3], apdu[5:]
        card = self._session()
        if len(apdu) > 5 and apdu[4] != len(body) and ins != 0xB0:
            return b"", 0x6700
        sfi = p1 & 0x80
        if ins == 0xB0 and sfi:
            return (card.protection_bits(), d.OK) if p1 == 0x81 else (b"", 0x6A82)
        if ins == 0xB0:
            return card.read(p1 << 8 | p2, apdu[4] or 256), d.OK
        if ins == 0xD6 and sfi:
            if p1 != 0x81:
                return b"", 0x6A82
            card.protect(p2, body)
            return b"", d.OK
        if ins == 0xD6:
            self._write(p1 << 8 | p2, body)
            return b"", d.OK
        if ins == 0x20 and len(apdu) == 4:
            left = card.tries_left()
            if self._verified:
                return b"", d.OK
            return b"", d.TRIES | left if left else d.BLOCKED
        if ins == 0x20:
            left = self._present(body)
            return b"", d.OK if self._verified else (d.BLOCKED if left < 0 else d.TRIES | left)
        if ins == 0x24 and p1 == 0x01:
            card.change_psc(body)
            return b"", d.OK
        return b"", d.UNKNOWN_INS


# -- pcscd -----------------------------------------------------------------------------------------
def wait_for_card(name: str, present: bool, timeout: float = 5.0) -> None:
    """Wait until pcscd reports a card in (or not in) reader ``name``."""
    from .reader import PcscReader

    reader = PcscReader(name)
    deadline = time.monotonic() + timeout
    while reader.card_present() != present:
        if time.monotonic() > deadline:
            raise TimeoutError(f"pcscd did not see the card {'arrive' if present else 'leave'} "
                               f"in {name} within {timeout} s")
        time.sleep(0.02)


def vpcd_configured() -> bool:
    return any("libifdvpcd" in p.read_text(errors="replace")
               for p in CONF_DIR.glob("*") if p.is_file())


def _listening(port: int) -> bool:
    """Whether something listens on TCP ``port`` (read from /proc: connecting would insert a card)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _pcscd_pid(path: Path) -> int | None:
    """The PID in ``path`` if that process is alive and is pcscd."""
    try:
        pid = int(path.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"pcscd" in cmdline else None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _stop_pid(pid: int, timeout: float = 5.0) -> None:
    """Stop a pcscd that is not our child (left over from an earlier run)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


class Pcscd:
    """pcscd in the foreground with the vpcd reader, stopped by PID.

    A pcscd left over from an earlier run of ours (pid in ``OWN_PID_FILE``) is stopped first; one
    somebody else started is reused and left running.
    """

    def __init__(self, log: Path | None = None, debug: bool = False) -> None:
        self.log, self.debug = log, debug
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def check_installed() -> str:
        exe = shutil.which("pcscd") or shutil.which("pcscd", path="/usr/sbin:/sbin")
        if exe is None:
            raise RuntimeError(f"pcscd is not installed ({INSTALL_HINT})")
        if not vpcd_configured():
            raise RuntimeError(f"the vpcd reader is not configured in {CONF_DIR} ({INSTALL_HINT})")
        return exe

    def start(self, timeout: float = 10.0) -> "Pcscd":
        exe = self.check_installed()
        stale = _pcscd_pid(OWN_PID_FILE)
        if stale is not None:
            _stop_pid(stale)
        OWN_PID_FILE.unlink(missing_ok=True)
        if _pcscd_pid(PCSCD_PID_FILE) is None:
            args = [exe, "--foreground"] + (["--debug", "--apdu"] if self.debug else [])
            out = open(self.log, "ab") if self.log else subprocess.DEVNULL
            try:
                self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
            finally:
                if self.log:
                    out.close()
            OWN_PID_FILE.write_text(str(self.proc.pid))
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        from .reader import list_readers

        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"pcscd exited with status {self.proc.returncode} (log: {self.log})")
            try:
                if reader_name(0) in list_readers() and _listening(VPCD_PORT):
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pcscd with vpcd was not ready on port {VPCD_PORT} within "
                                   f"{timeout} s (log: {self.log})")
            time.sleep(0.05)

    @property
    def owned(self) -> bool:
        return self.proc is not None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        OWN_PID_FILE.unlink(missing_ok=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
