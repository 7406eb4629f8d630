"""An encoder emulator: serves the DBMIS encoder protocol on a serial port with an SLE4442 card file.

The card file has the simulated driver's 264-byte layout (256 bytes memory, 4 bytes protection bits,
1 byte error counter, 3 bytes PSC), so a card moves freely between this encoder, the simulated reader
and the meter simulator. The SLE4442 rules are written out here again rather than imported, because
drivers must not import each other. ``Encoder`` is the device logic with no I/O; ``Emulator`` runs it
on a port in a thread; ``python -m dbmis_serial.emulator --port PATH --card FILE`` runs it in a
process, where the card is present while FILE exists (point it at the simulated reader's ``slot``).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

import attrs

from dbmis_core.keys import TRANSPORT_PSC

from .protocol import (
    ACK,
    LINE_ERRORS,
    NAK,
    REPLY,
    Ack,
    Cmd,
    Frame,
    FrameError,
    FrameParser,
    Nak,
    Status,
    encode,
)

MEMORY, PROTECTED_AREA, OFF_PROT, OFF_ERR, OFF_PSC = 256, 32, 256, 260, 261
ATR = bytes.fromhex("3B04A2131091")
UID_LEN = 8
POLL = 0.02    # seconds a read waits, so a stop request is seen quickly
QUIET = 0.2    # a frame still incomplete after this much silence is garbled: answer NAK
BUSY_WAIT = 0.5  # how long POWER_ON waits for a card file another reader holds


def new_card_file(path: Path, uid: bytes | None = None) -> str:
    """Manufacture a blank card: random serial in bytes 0-7 (factory-protected), the rest 0xFF."""
    uid = uid or secrets.token_bytes(UID_LEN)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as f:
        f.write(uid + b"\xff" * (MEMORY - UID_LEN) + b"\x00\xff\xff\xff" + b"\x07" + TRANSPORT_PSC)
    return uid.hex().upper()


@attrs.define
class Faults:
    """Faults for the next exchanges. ``drop_replies``/``corrupt_replies``/``nak_requests`` count down
    per reply or request; ``pull_after_bytes`` pulls the card once that many bytes of writes reached
    it; ``timeout`` makes the next card command time out; ``once`` clears those two after firing."""

    drop_replies: int = 0
    corrupt_replies: int = 0
    nak_requests: int = 0
    pull_after_bytes: int | None = None
    timeout: bool = False
    once: bool = True


@attrs.define
class Stats:
    executed: list = attrs.Factory(list)   # Cmd of every request carried out (not answered from cache)
    duplicates: int = 0                    # repeated requests answered from the reply cache
    naks_sent: int = 0
    naks_received: int = 0


class Refused(Exception):
    def __init__(self, status: Status, payload: bytes = b"") -> None:
        super().__init__(status.name)
        self.status, self.payload = status, payload


class _Session:
    """A powered card: the open file under an exclusive lock, like the simulated driver's connection."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR)
        deadline = time.monotonic() + BUSY_WAIT
        while True:  # bounded, unlike the simulated reader: a stuck encoder would stall its line
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise Refused(Status.CARD_TIMEOUT) from None
                time.sleep(0.01)
        self.ino = os.fstat(self.fd).st_ino
        self.unlocked = False
        self.removed = False

    def raw(self, off: int, n: int) -> bytes:
        return os.pread(self.fd, n, off)

    def put(self, off: int, data: bytes) -> None:
        os.pwrite(self.fd, bytes(data), off)

    def close(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


class Encoder:
    """The encoder's behaviour: bytes in, bytes out. Thread-safe, so tests may insert, remove and
    inject faults while a serving thread feeds it."""

    def __init__(self, card: str | os.PathLike | None = None) -> None:
        self.card = Path(card) if card else None
        self.faults = Faults()
        self.stats = Stats()
        self._parser = FrameParser()
        self._session: _Session | None = None
        self._last_request: bytes | None = None
        self._last_reply: bytes | None = None
        self._lock = threading.RLock()

    # -- the card slot ----------------------------------------------------------------------------
    def insert(self, card: str | os.PathLike) -> None:
        with self._lock:
            self.card = Path(card)

    def remove(self) -> None:
        with self._lock:
            self.card = None

    def present(self) -> bool:
        return self.card is not None and self.card.exists()

    # -- the line ---------------------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        with self._lock:
            return b"".join(self._on(ev) for ev in self._parser.feed(data))

    def quiet(self) -> bytes:
        """The host stopped sending; a half frame in the buffer will never complete."""
        with self._lock:
            return b"".join(self._on(ev) for ev in self._parser.expire())

    def _on(self, ev) -> bytes:
        if isinstance(ev, Nak):
            self.stats.naks_received += 1
            return self._send(self._last_reply) if self._last_reply else b""
        if isinstance(ev, Ack) or (isinstance(ev, Frame) and ev.is_reply):
            return b""  # nothing for us: a stray byte, or our own reply looped back
        if isinstance(ev, FrameError) or self._take("nak_requests"):
            self.stats.naks_sent += 1
            return bytes([NAK])
        raw = encode(ev.seq, ev.cmd, ev.data)
        if ev.seq != 0 and raw == self._last_request:
            self.stats.duplicates += 1  # our reply was lost: repeat it, do not execute again
        else:
            self._last_request = raw
            self._last_reply = encode(ev.seq, ev.cmd | REPLY, self._execute(ev.cmd, ev.data))
        return bytes([ACK]) + self._send(self._last_reply)

    def _take(self, name: str) -> bool:
        left = getattr(self.faults, name)
        if left > 0:
            setattr(self.faults, name, left - 1)
        return left > 0

    def _send(self, reply: bytes) -> bytes:
        if self._take("drop_replies"):
            return b""
        if self._take("corrupt_replies"):
            bad = bytearray(reply)
            bad[5] ^= 0x40  # the status byte: only the BCC can tell
            return bytes(bad)
        return reply

    # -- the card ---------------------------------------------------------------------------------
    def _execute(self, cmd: int, data: bytes) -> bytes:
        try:
            handler = self._handlers()[Cmd(cmd)]
        except ValueError:
            return bytes([Status.BAD_COMMAND])
        self.stats.executed.append(Cmd(cmd))
        try:
            return bytes([Status.OK]) + handler(data)
        except Refused as r:
            return bytes([r.status]) + r.payload
        except OSError:
            return bytes([Status.ENCODER_FAULT])

    def _handlers(self):
        return {Cmd.STATUS: self._status, Cmd.POWER_ON: self._power_on, Cmd.POWER_OFF: self._power_off,
                Cmd.READ: self._read, Cmd.WRITE: self._write, Cmd.READ_PROTECTION: self._read_prot,
                Cmd.WRITE_PROTECTION: self._write_prot, Cmd.PRESENT_PSC: self._present_psc,
                Cmd.READ_ERROR_COUNTER: self._tries, Cmd.CHANGE_PSC: self._change_psc}

    @staticmethod
    def _size(data: bytes, n: int, at_least: bool = False) -> None:
        wrong = len(data) < n if at_least else len(data) != n
        if wrong:
            raise Refused(Status.BAD_LENGTH)

    def _end_session(self) -> None:
        if self._session:
            self._session.close()
            self._session = None

    def _live(self) -> _Session:
        """The powered card, checked as every card command of the simulated driver checks it."""
        s = self._session
        if s is None:
            raise Refused(Status.NOT_POWERED)
        if not s.removed and not (self.present() and os.stat(self.card).st_ino == s.ino):
            s.removed = True
        if s.removed:
            s.close()
            raise Refused(Status.CARD_REMOVED)
        if self.faults.timeout:
            if self.faults.once:
                self.faults.timeout = False
            raise Refused(Status.CARD_TIMEOUT)
        return s

    def _status(self, data: bytes) -> bytes:
        self._size(data, 0)
        return bytes([self.present() | (self._session is not None) << 1])

    def _power_on(self, data: bytes) -> bytes:
        self._size(data, 0)
        self._end_session()
        if self.card is None:
            raise Refused(Status.NO_CARD)
        try:
            self._session = _Session(self.card)
        except FileNotFoundError:  # also a slot link left dangling
            raise Refused(Status.NO_CARD) from None
        return ATR

    def _power_off(self, data: bytes) -> bytes:
        self._size(data, 0)
        self._end_session()
        return b""

    @staticmethod
    def _span(data: bytes, limit: int) -> tuple[int, int]:
        addr, n = int.from_bytes(data[:2], "big"), len(data) - 2
        if addr + n > limit:
            raise Refused(Status.BAD_ADDRESS)
        return addr, n

    def _read(self, data: bytes) -> bytes:
        self._size(data, 4)
        s = self._live()
        addr, n = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:], "big")
        if addr + n > MEMORY:
            raise Refused(Status.BAD_ADDRESS)
        return s.raw(addr, n)

    @staticmethod
    def _need_psc(s: _Session) -> None:
        if not s.unlocked:
            raise Refused(Status.PSC_NOT_PRESENTED)

    def _write(self, data: bytes) -> bytes:
        self._size(data, 2, at_least=True)
        s = self._live()
        addr, _ = self._span(data, MEMORY)
        new = data[2:]
        self._need_psc(s)
        prot = s.raw(OFF_PROT, 4)
        for i, (old, b) in enumerate(zip(s.raw(addr, len(new)), new)):
            j = addr + i
            if old != b and j < PROTECTED_AREA and not (prot[j // 8] >> (j % 8)) & 1:
                raise Refused(Status.PROTECTED, j.to_bytes(2, "big"))
        limit = self.faults.pull_after_bytes
        if limit is not None and limit < len(new):
            s.put(addr, new[:limit])
            if self.faults.once:
                self.faults.pull_after_bytes = None
            s.removed = True
            self.card = None  # the customer has the card in their hand now
            raise Refused(Status.CARD_REMOVED)
        if limit is not None:
            self.faults.pull_after_bytes = limit - len(new)
        s.put(addr, new)
        return b""

    def _read_prot(self, data: bytes) -> bytes:
        self._size(data, 0)
        return self._live().raw(OFF_PROT, 4)

    def _write_prot(self, data: bytes) -> bytes:
        """Burn protection bits; like the chip, only where DATA matches memory."""
        self._size(data, 2, at_least=True)
        s = self._live()
        self._need_psc(s)
        addr, n = self._span(data, PROTECTED_AREA)
        prot = bytearray(s.raw(OFF_PROT, 4))
        for i, (mem, b) in enumerate(zip(s.raw(addr, n), data[2:])):
            if mem == b:
                j = addr + i
                prot[j // 8] &= ~(1 << (j % 8)) & 0xFF
        s.put(OFF_PROT, prot)
        return b""

    def _present_psc(self, data: bytes) -> bytes:
        self._size(data, 3)
        s = self._live()
        err = s.raw(OFF_ERR, 1)[0] & 0x07
        if err == 0:
            raise Refused(Status.LOCKED, b"\x00")
        if data == s.raw(OFF_PSC, 3):
            s.put(OFF_ERR, b"\x07")
            s.unlocked = True
            return b"\x03"
        err = (err << 1) & 0x07
        s.put(OFF_ERR, bytes([err]))
        s.unlocked = False
        left = bin(err).count("1")
        if left == 0:
            raise Refused(Status.LOCKED, b"\x01")
        raise Refused(Status.WRONG_PSC, bytes([left]))

    def _tries(self, data: bytes) -> bytes:
        self._size(data, 0)
        return bytes([bin(self._live().raw(OFF_ERR, 1)[0] & 0x07).count("1")])

    def _change_psc(self, data: bytes) -> bytes:
        s = self._live()
        self._need_psc(s)
        self._size(data, 3)
        s.put(OFF_PSC, data)
        return b""

    def close(self) -> None:
        with self._lock:
            self._end_session()


class Emulator:
    """Serves an ``Encoder`` on a port: a device path or pyserial URL it opens itself, or an already
    open serial-like object (see ``CrossedLoops``). ``start()`` runs it in a daemon thread."""

    def __init__(self, port, card: str | os.PathLike | None = None, baudrate: int = 9600) -> None:
        self.encoder = Encoder(card)
        if isinstance(port, str):
            import serial

            self.port = serial.serial_for_url(port, baudrate=baudrate, timeout=POLL)
            self._owns = True
        else:
            self.port, self._owns = port, False
        self.error: Exception | None = None  # why serving stopped, if the line failed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def serve(self) -> None:
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                data = self.port.read(self.port.in_waiting or 1)
                if data:
                    last = time.monotonic()
                    out = self.encoder.receive(data)
                elif time.monotonic() - last > QUIET:
                    out = self.encoder.quiet()
                else:
                    continue
                if out:
                    self.port.write(out)
        except LINE_ERRORS as exc:  # the line went away
            if not self._stop.is_set():
                self.error = exc
        finally:
            self.encoder.close()  # an encoder cut off from its host powers the card down

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self.serve, name="encoder-emulator", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.encoder.close()
        if self._owns:
            self.port.close()


class _LoopEnd:
    """One end of ``CrossedLoops``: reads its own loop, writes the other party's."""

    def __init__(self, name: str, rx, tx) -> None:
        self.name, self._rx, self._tx = name, rx, tx

    @property
    def in_waiting(self) -> int:
        return self._rx.in_waiting

    def read(self, size: int = 1) -> bytes:
        return self._rx.read(size)

    def write(self, data: bytes) -> int:
        return self._tx.write(data)

    def reset_input_buffer(self) -> None:
        self._rx.reset_input_buffer()


class CrossedLoops:
    """A null-modem cable made of two pyserial ``loop://`` ports, for a driver and an emulator in one
    process. One ``loop://`` echoes a port's writes back to that same port, and a second
    ``serial_for_url("loop://")`` is a separate loop, so one cannot join two parties. Here each
    direction is its own real loop:// port (pyserial's queue, read timeouts and buffer resets) and
    each end reads one and writes the other; ``host`` goes to ``SerialReader``, ``encoder`` to
    ``Emulator``. Nothing is faked but the crossing of the wires."""

    def __init__(self, timeout: float = POLL) -> None:
        import serial

        self._down = serial.serial_for_url("loop://", timeout=timeout)  # host -> encoder
        self._up = serial.serial_for_url("loop://", timeout=timeout)    # encoder -> host
        self.host = _LoopEnd("loop://host", self._up, self._down)
        self.encoder = _LoopEnd("loop://encoder", self._down, self._up)

    def close(self) -> None:
        self._down.close()
        self._up.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dbmis_serial.emulator", description=__doc__.splitlines()[0])
    p.add_argument("--port", required=True, help="serial device, pty link or pyserial URL to serve on")
    p.add_argument("--card", required=True, help="SLE4442 card file; the card is present while it exists")
    p.add_argument("--blank", action="store_true", help="manufacture a blank card at --card if missing")
    p.add_argument("--baudrate", type=int, default=9600)
    args = p.parse_args(argv)
    if args.blank and not os.path.lexists(args.card):
        new_card_file(Path(args.card))
    try:
        emu = Emulator(args.port, args.card, args.baudrate)
    except LINE_ERRORS as exc:
        print(f"cannot open {args.port}: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: emu.request_stop())
    print(f"encoder emulator serving on {args.port}", flush=True)
    try:
        emu.serve()
    except KeyboardInterrupt:
        pass
    emu.stop()
    if emu.error:
        print(f"line failed: {emu.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
