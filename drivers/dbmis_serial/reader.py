"""The serial encoder driver: ``Reader``/``CardConnection`` over pyserial and the encoder protocol.

pyserial is imported only when a port is opened or listed, so registering the driver costs nothing
and a machine without pyserial still starts (the driver is then reported unavailable).
"""

from __future__ import annotations

import errno
import threading
import time

from dbmis_core.errors import (
    CardError,
    CardLockedError,
    CardRemovedError,
    CardTimeoutError,
    CardWriteProtectedError,
    ConfigError,
    NoCardError,
    ReaderError,
    WrongPscError,
)

from .protocol import (
    LINE_ERRORS,
    MAX_DATA,
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

POLL = 0.02  # a read returns at least this often, so deadlines are kept to within 20 ms


class SerialReader:
    """An encoder on a serial line. ``port`` is a device path or pyserial URL (opened here, reopened
    after the line fails) or an already open serial-like object (used as is, never closed here).

    Each request gets a SEQ; a request is repeated with the same SEQ when the line garbles or loses
    something, and the encoder answers a repeat from its reply cache, so a retried WRITE or
    PRESENT_PSC is applied once. SEQ 0 starts every newly opened line and is never taken as a repeat.
    """

    def __init__(self, port, baudrate: int = 9600, timeout: float = 1.0, retries: int = 3) -> None:
        self.baudrate, self.timeout, self.retries = baudrate, timeout, retries
        self._owns = isinstance(port, str)
        self.port_name = port if self._owns else getattr(port, "name", repr(port))
        self.name = f"DBMIS encoder on {self.port_name}"
        self._lock = threading.RLock()
        self._session: SerialConnection | None = None
        self._port = None
        if self._owns:
            self._open()
        else:
            self._port, self._seq, self._heard = port, 0, False

    # -- the line ---------------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            import serial
        except ImportError:
            raise ReaderError("pyserial is not installed; the serial encoder driver needs it") from None
        try:
            self._port = serial.serial_for_url(self.port_name, baudrate=self.baudrate, timeout=POLL,
                                               write_timeout=self.timeout, exclusive=True)
        except (*LINE_ERRORS, ValueError) as exc:
            raise ReaderError(f"cannot open the encoder port {self.port_name}: {exc}") from None
        for line in ("dtr", "rts"):  # some encoders take their power or enable from these lines
            self._modem_line(line, True)
        self._seq, self._heard = 0, False

    def _modem_line(self, line: str, value: bool) -> None:
        """Set a modem line where there is one: a pty or a bare USB bridge answers ENOTTY/EINVAL."""
        try:
            setattr(self._port, line, value)
        except OSError as exc:
            if exc.errno not in (errno.ENOTTY, errno.EINVAL):
                self._port.close()
                self._port = None
                raise ReaderError(f"the encoder port {self.port_name} refused "
                                  f"{line.upper()}: {exc}") from None

    def _line(self):
        if self._port is None:
            if not self._owns:
                raise ReaderError(f"the encoder line {self.port_name} is closed")
            self._open()
        return self._port

    def _lost_line(self, exc: Exception) -> ReaderError:
        if self._owns and self._port is not None:
            try:
                self._port.close()
            except LINE_ERRORS:
                pass
            self._port = None  # the next request opens the port again, e.g. after a replug
        self._session = None
        return ReaderError(f"the encoder on {self.port_name} is gone ({exc}); is it unplugged?")

    def _transact(self, cmd: Cmd, data: bytes = b"") -> tuple[int, bytes]:
        """One request and its reply: (status, payload). Line trouble becomes a ReaderError."""
        with self._lock:
            port = self._line()
            seq = self._seq
            self._seq = seq % 255 + 1
            try:
                return self._exchange(port, seq, cmd, encode(seq, cmd, data))
            except LINE_ERRORS as exc:
                raise self._lost_line(exc) from None

    def _exchange(self, port, seq: int, cmd: Cmd, request: bytes) -> tuple[int, bytes]:
        parser, failures = FrameParser(), []
        port.reset_input_buffer()  # late replies to a request we gave up on
        port.write(request)
        deadline = time.monotonic() + self.timeout
        while True:
            chunk = port.read(port.in_waiting or 1)
            if chunk:
                events = parser.feed(chunk)
            elif time.monotonic() >= deadline:
                events = parser.expire() or [None]  # None: silence
            else:
                continue
            for ev in events:
                if isinstance(ev, Frame) and ev.seq == seq and ev.cmd == cmd | REPLY and ev.data:
                    self._heard = True
                    return ev.data[0], ev.data[1:]
            if any(isinstance(ev, (Ack, Frame)) for ev in events):
                self._heard = True
                deadline = time.monotonic() + self.timeout
            trouble = [ev for ev in events if ev is None or isinstance(ev, (Nak, FrameError))]
            if not trouble:
                continue
            failures.append(trouble[0])
            if len(failures) > self.retries:
                raise self._gave_up(cmd, failures)
            # a garbled reply is NAKed and resent from the encoder's cache; a NAKed or lost request
            # goes again with the same SEQ, which the encoder answers from its cache if it had it
            port.write(bytes([NAK]) if isinstance(trouble[0], FrameError) else request)
            deadline = time.monotonic() + self.timeout

    def _gave_up(self, cmd: Cmd, failures: list):
        tries = len(failures)
        if all(f is None for f in failures):
            if not self._heard:
                return ReaderError(f"no encoder answers on {self.port_name} ({tries} tries of "
                                   f"{self.timeout:g} s); check the port name, cable and power")
            return CardTimeoutError(f"the encoder on {self.port_name} did not answer {cmd.name} "
                                    f"within {self.timeout:g} s ({tries} tries)")
        last = next(f for f in reversed(failures) if f is not None)
        what = "refused our frames as garbled" if isinstance(last, Nak) else f"sent garbled frames ({last})"
        return ReaderError(f"the encoder on {self.port_name} {what}, {tries} tries for {cmd.name}; "
                           "check the cable and the baud rate")

    # -- commands ---------------------------------------------------------------------------------
    def _call(self, cmd: Cmd, data: bytes = b"") -> bytes:
        status, payload = self._transact(cmd, data)
        if status == Status.OK:
            return payload
        raise self._refusal(cmd, data, status, payload)

    def _refusal(self, cmd: Cmd, data: bytes, status: int, payload: bytes) -> Exception:
        """The error the simulated driver raises in the same situation, with the same message."""
        addr = int.from_bytes(data[:2], "big")
        if status == Status.NO_CARD:
            return NoCardError(f"no card in the encoder on {self.port_name}; insert a card")
        if status == Status.CARD_REMOVED:
            return CardRemovedError("the card was removed from the reader"
                                    if cmd != Cmd.WRITE else "the card was removed during the write")
        if status == Status.NOT_POWERED:
            return CardRemovedError("the card was reset or removed; connect to it again")
        if status == Status.CARD_TIMEOUT:
            return CardTimeoutError("the card did not answer in time")
        if status == Status.PSC_NOT_PRESENTED:
            return CardWriteProtectedError("write refused: the PSC has not been presented")
        if status == Status.PROTECTED and len(payload) == 2:
            return CardWriteProtectedError(f"byte {int.from_bytes(payload, 'big')} is write-protected")
        if status == Status.WRONG_PSC and len(payload) == 1:
            return WrongPscError(f"wrong PSC; {payload[0]} tries left", payload[0])
        if status == Status.LOCKED:
            return CardLockedError("wrong PSC; the card is now locked" if payload == b"\x01" else
                                   "the card is locked: its PSC was presented wrongly three times")
        if status == Status.BAD_ADDRESS:
            n = int.from_bytes(data[2:4], "big") if cmd == Cmd.READ else len(data) - 2
            where = "protection exists only for bytes 0-31" if cmd == Cmd.WRITE_PROTECTION else \
                f"{cmd.name.lower()} outside card memory: {addr}+{n}"
            return ValueError(where)
        if status == Status.BAD_LENGTH and cmd in (Cmd.PRESENT_PSC, Cmd.CHANGE_PSC):
            return ValueError("a PSC is 3 bytes")
        name = Status(status).name if status in Status._value2member_map_ else f"0x{status:02X}"
        return ReaderError(f"the encoder on {self.port_name} failed {cmd.name}: status {name}")

    def card_present(self) -> bool:
        return bool(self._call(Cmd.STATUS)[0] & 1)

    def connect(self) -> SerialConnection:
        with self._lock:
            self._session = None  # POWER_ON resets the card: an older connection is over
            atr = self._call(Cmd.POWER_ON)
            self._session = SerialConnection(self, atr)
            return self._session

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
            if self._owns and self._port is not None:
                self._port.close()
                self._port = None


class SerialConnection:
    """A powered card in the encoder. Dead once the card was pulled, the connection closed or a newer
    connection made, as with the simulated driver."""

    def __init__(self, reader: SerialReader, atr: bytes) -> None:
        self._reader, self._atr = reader, atr
        self._removed = False

    def _call(self, cmd: Cmd, data: bytes = b"") -> bytes:
        if self._removed or self._reader._session is not self:
            raise CardRemovedError("the card was removed from the reader")
        try:
            return self._reader._call(cmd, data)
        except CardRemovedError:
            self._removed = True
            raise

    @staticmethod
    def _where(addr: int, n: int, what: str) -> bytes:
        """Refuse what the protocol cannot even carry; the encoder checks the rest in the chip's order."""
        if addr < 0 or n < 0 or addr > 0xFFFF or n > MAX_DATA - 2:
            raise ValueError(f"{what} outside card memory: {addr}+{n}")
        return addr.to_bytes(2, "big")

    def atr(self) -> bytes:
        if self._removed or self._reader._session is not self:
            raise CardRemovedError("the card was removed from the reader")
        return self._atr

    def read(self, addr: int, length: int) -> bytes:
        data = self._call(Cmd.READ, self._where(addr, length, "read") + length.to_bytes(2, "big"))
        if len(data) != length:
            raise ReaderError(f"the encoder on {self._reader.port_name} returned {len(data)} bytes "
                              f"for a read of {length}")
        return data

    def write(self, addr: int, data: bytes) -> None:
        self._call(Cmd.WRITE, self._where(addr, len(data), "write") + bytes(data))

    def present_psc(self, psc: bytes) -> int:
        return self._call(Cmd.PRESENT_PSC, bytes(psc))[0]

    def tries_left(self) -> int:
        return self._call(Cmd.READ_ERROR_COUNTER)[0]

    def protection_bits(self) -> bytes:
        return self._call(Cmd.READ_PROTECTION)

    def protect(self, addr: int, data: bytes) -> None:
        self._call(Cmd.WRITE_PROTECTION, self._where(addr, len(data), "protect") + bytes(data))

    def change_psc(self, new_psc: bytes) -> None:
        self._call(Cmd.CHANGE_PSC, bytes(new_psc))

    def close(self) -> None:
        """Power the card down; a line that is already gone has nothing left to power down."""
        reader = self._reader
        with reader._lock:
            if reader._session is self:
                reader._session = None
                try:
                    reader._call(Cmd.POWER_OFF)
                except CardError:
                    pass
            self._removed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_reader(settings: dict) -> SerialReader:
    port = settings.get("port")
    if not port:
        raise ConfigError("the serial encoder driver needs a port: set drivers.serial.port "
                          "(a device such as /dev/ttyUSB0 or a pyserial URL)")
    return SerialReader(str(port), baudrate=int(settings.get("baudrate", 9600)),
                        timeout=float(settings.get("timeout", 1.0)), retries=int(settings.get("retries", 3)))


def list_ports(settings: dict) -> list[str]:
    try:
        from serial.tools.list_ports import comports
    except ImportError:
        return []
    return sorted(p.device for p in comports())
