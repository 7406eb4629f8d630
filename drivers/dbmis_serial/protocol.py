"""Frames of the DBMIS encoder protocol (docs/encoder-protocol.md), shared by driver and emulator.

    STX | SEQ | CMD | LEN (2, big-endian) | DATA | BCC | ETX        BCC = XOR of SEQ..DATA

Framing is by length, not by byte stuffing: DATA is raw card memory in which 0x02/0x03 are common,
and a length field keeps every frame at a size known from its header. ``FrameParser`` resynchronises
after noise by dropping a bad frame's STX and scanning on, so bytes lost or garbled on the line cost
one retry, never a hang or an exception.
"""

from __future__ import annotations

import enum
from functools import reduce

import attrs

# What a serial port raises when the line fails: pyserial's SerialException is an OSError, but
# tcflush/tcsetattr on a tty that vanished raise termios.error.
try:
    from termios import error as _termios_error
except ImportError:  # not a POSIX system
    LINE_ERRORS: tuple = (OSError,)
else:
    LINE_ERRORS = (OSError, _termios_error)

STX, ETX, ACK, NAK = 0x02, 0x03, 0x06, 0x15
REPLY = 0x80      # a reply carries the request's CMD with this bit set
MAX_DATA = 512    # a longer LEN cannot be ours: treat it as noise instead of waiting for it
HEADER = 5        # STX SEQ CMD LEN LEN


class Cmd(enum.IntEnum):
    STATUS = 0x10
    POWER_ON = 0x11
    POWER_OFF = 0x12
    READ = 0x20
    WRITE = 0x21
    READ_PROTECTION = 0x22
    WRITE_PROTECTION = 0x23
    PRESENT_PSC = 0x30
    READ_ERROR_COUNTER = 0x31
    CHANGE_PSC = 0x32


class Status(enum.IntEnum):
    OK = 0x00
    NO_CARD = 0x01
    CARD_REMOVED = 0x02
    PSC_NOT_PRESENTED = 0x03
    WRONG_PSC = 0x04        # DATA: tries left
    LOCKED = 0x05           # DATA: 1 if this PRESENT_PSC locked the card, 0 if it was locked
    PROTECTED = 0x06        # DATA: address of the protected byte (2 bytes)
    BAD_ADDRESS = 0x07
    BAD_COMMAND = 0x08
    BAD_LENGTH = 0x09
    NOT_POWERED = 0x0A
    CARD_TIMEOUT = 0x0B
    ENCODER_FAULT = 0x0C


def bcc(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


@attrs.frozen
class Frame:
    seq: int
    cmd: int
    data: bytes = b""

    @property
    def is_reply(self) -> bool:
        return bool(self.cmd & REPLY)


class Ack:
    """A single ACK byte outside a frame: the encoder received the request intact."""


class Nak:
    """A single NAK byte outside a frame: the last frame arrived garbled; send it again."""


class FrameError(Exception):
    """A frame that cannot be trusted. The parser yields these as values; ``decode`` raises them."""


class BadLength(FrameError):
    pass


class BadEtx(FrameError):
    pass


class BadBcc(FrameError):
    pass


class Truncated(FrameError):
    pass


def encode(seq: int, cmd: int, data: bytes = b"") -> bytes:
    if not 0 <= seq <= 0xFF or not 0 <= cmd <= 0xFF:
        raise ValueError("SEQ and CMD are single bytes")
    if len(data) > MAX_DATA:
        raise ValueError(f"frame data is limited to {MAX_DATA} bytes")
    body = bytes([seq, cmd]) + len(data).to_bytes(2, "big") + bytes(data)
    return bytes([STX]) + body + bytes([bcc(body), ETX])


def decode(raw: bytes) -> Frame:
    """Decode exactly one frame or raise the ``FrameError`` that says what is wrong with it."""
    raw = bytes(raw)
    if not raw or raw[0] != STX:
        raise FrameError("a frame starts with STX")
    if len(raw) < HEADER:
        raise Truncated("frame shorter than its header")
    n = int.from_bytes(raw[3:5], "big")
    if n > MAX_DATA:
        raise BadLength(f"frame length {n} exceeds {MAX_DATA}")
    if len(raw) < HEADER + n + 2:
        raise Truncated(f"frame announces {n} data bytes but holds {len(raw) - HEADER - 2}")
    if len(raw) > HEADER + n + 2 or raw[-1] != ETX:
        raise BadEtx("frame does not end with ETX where its length says")
    if bcc(raw[1:-2]) != raw[-2]:
        raise BadBcc("frame BCC does not match")
    return Frame(raw[1], raw[2], raw[HEADER:-2])


class FrameParser:
    """Incremental parser: ``feed`` bytes as they arrive, get Frame / Ack / Nak / FrameError values."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list:
        self._buf += data
        return list(self._drain())

    def expire(self) -> list:
        """The line went quiet: a half-received frame will never complete, so report and drop it."""
        if self._buf[:1] == bytes([STX]):
            del self._buf[0]
            return [Truncated("frame incomplete when the line went quiet"), *self._drain()]
        return []

    def reset(self) -> None:
        self._buf.clear()

    def _drain(self):
        buf = self._buf
        while buf:
            head = buf[0]
            if head != STX:
                del buf[0]
                if head == ACK:
                    yield Ack()
                elif head == NAK:
                    yield Nak()
                continue  # any other byte between frames is line noise
            if len(buf) < HEADER:
                return
            n = int.from_bytes(buf[3:5], "big")
            if n > MAX_DATA:
                del buf[0]
                yield BadLength(f"frame length {n} exceeds {MAX_DATA}")
                continue
            end = HEADER + n + 2
            if len(buf) < end:
                return
            raw = bytes(buf[:end])
            try:
                frame = decode(raw)
            except BadBcc as exc:
                del buf[:end]  # delimited correctly, only its contents are damaged
                yield exc
                continue
            except FrameError as exc:
                del buf[0]  # this STX was noise or the LEN was hit; look for the next STX
                yield exc
                continue
            del buf[:end]
            yield frame
