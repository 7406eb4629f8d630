"""An SLE4442 memory card kept in a file, with fault injection.

File layout (264 bytes): 256 bytes main memory, 4 bytes protection bits (bit i of byte i//8 set =
byte i still writable), 1 byte error counter (0b111 = three tries left), 3 bytes PSC. Because a card
is a file, the reader and the meter simulator can hand the same card back and forth, and a killed
process leaves exactly the bytes it had written. Writes are not fsynced: they survive a killed process
through the page cache, which is what the crash tests need; power loss is not simulated.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path

import attrs

from dbmis_core.errors import (
    CardLockedError,
    CardRemovedError,
    CardTimeoutError,
    CardWriteProtectedError,
    NoCardError,
    WrongPscError,
)
from dbmis_core.keys import TRANSPORT_PSC

MEMORY = 256
PROTECTED_AREA = 32
FILE_SIZE = MEMORY + 4 + 1 + 3
OFF_PROT, OFF_ERR, OFF_PSC = 256, 260, 261
ATR = bytes.fromhex("3B04A2131091")
UID_LEN = 8


@attrs.define
class Faults:
    """Faults to inject. ``pull_after_bytes``: the card is pulled after that many bytes of the next
    write reach it. ``timeout``: the next operation times out. ``once``: clear after firing."""

    pull_after_bytes: int | None = None
    timeout: bool = False
    once: bool = True


def new_card_file(path: Path, uid: bytes | None = None) -> str:
    """Manufacture a blank card: random chip serial in bytes 0-7 (factory-protected), rest 0xFF."""
    uid = uid or secrets.token_bytes(UID_LEN)
    mem = bytearray(b"\xff" * MEMORY)
    mem[0:UID_LEN] = uid
    prot = bytearray(b"\xff" * 4)
    prot[0] = 0x00  # bytes 0-7 burned at the factory
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(bytes(mem) + bytes(prot) + b"\x07" + TRANSPORT_PSC)
    return uid.hex().upper()


class SimCardConnection:
    """A session with one card file; holds an exclusive lock like a PC/SC exclusive connect."""

    def __init__(self, path: str | os.PathLike, faults: Faults | None = None, on_pull=None) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise NoCardError("no card in the reader") from None
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._faults = faults or Faults()
        self._on_pull = on_pull
        self._unlocked = False
        self._pulled = False

    def _raw(self, off: int, n: int) -> bytes:
        return os.pread(self._fd, n, off)

    def _check(self) -> None:
        if self._pulled or self._fd < 0:
            raise CardRemovedError("the card was removed from the reader")
        if self._faults.timeout:
            if self._faults.once:
                self._faults.timeout = False
            raise CardTimeoutError("the card did not answer in time")

    def atr(self) -> bytes:
        self._check()
        return ATR

    def read(self, addr: int, length: int) -> bytes:
        self._check()
        if addr < 0 or length < 0 or addr + length > MEMORY:
            raise ValueError(f"read outside card memory: {addr}+{length}")
        return self._raw(addr, length)

    def tries_left(self) -> int:
        self._check()
        return bin(self._raw(OFF_ERR, 1)[0] & 0x07).count("1")

    def present_psc(self, psc: bytes) -> int:
        self._check()
        held = self._raw(OFF_ERR, 1)[0]
        err = held & 0x07
        if err == 0:
            raise CardLockedError("the card is locked: its PSC was presented wrongly three times")
        if bytes(psc) == self._raw(OFF_PSC, 3):
            if held != 0x07:  # the counter is reset; a write of the byte it holds changes nothing
                os.pwrite(self._fd, b"\x07", OFF_ERR)
            self._unlocked = True
            return 3
        err = (err << 1) & 0x07  # one attempt used up
        os.pwrite(self._fd, bytes([err]), OFF_ERR)
        self._unlocked = False
        left = bin(err).count("1")
        if left == 0:
            raise CardLockedError("wrong PSC; the card is now locked")
        raise WrongPscError(f"wrong PSC; {left} tries left", left)

    def protection_bits(self) -> bytes:
        self._check()
        return self._raw(OFF_PROT, 4)

    def _is_protected(self, i: int) -> bool:
        return i < PROTECTED_AREA and not (self._raw(OFF_PROT, 4)[i // 8] >> (i % 8)) & 1

    def _need_psc(self) -> None:
        if not self._unlocked:
            raise CardWriteProtectedError("write refused: the PSC has not been presented")

    def write(self, addr: int, data: bytes) -> None:
        self._check()
        if addr < 0 or addr + len(data) > MEMORY:
            raise ValueError(f"write outside card memory: {addr}+{len(data)}")
        self._need_psc()
        current = self._raw(addr, len(data))
        for i, (old, new) in enumerate(zip(current, data)):
            if old != new and self._is_protected(addr + i):
                raise CardWriteProtectedError(f"byte {addr + i} is write-protected")
        limit = self._faults.pull_after_bytes
        if limit is not None and limit < len(data):
            os.pwrite(self._fd, bytes(data[:limit]), addr)
            if self._faults.once:
                self._faults.pull_after_bytes = None
            self._pull()
            raise CardRemovedError("the card was removed during the write")
        if limit is not None:
            self._faults.pull_after_bytes = limit - len(data)
        os.pwrite(self._fd, bytes(data), addr)

    def protect(self, addr: int, data: bytes) -> None:
        """Burn protection bits; like the real chip, only where ``data`` matches memory."""
        self._check()
        self._need_psc()
        if addr < 0 or addr + len(data) > PROTECTED_AREA:
            raise ValueError("protection exists only for bytes 0-31")
        prot = bytearray(self._raw(OFF_PROT, 4))
        mem = self._raw(addr, len(data))
        for i, b in enumerate(data):
            if mem[i] == b:
                j = addr + i
                prot[j // 8] &= ~(1 << (j % 8)) & 0xFF
        os.pwrite(self._fd, bytes(prot), OFF_PROT)

    def change_psc(self, new_psc: bytes) -> None:
        self._check()
        self._need_psc()
        if len(new_psc) != 3:
            raise ValueError("a PSC is 3 bytes")
        os.pwrite(self._fd, bytes(new_psc), OFF_PSC)

    def _pull(self) -> None:
        self._pulled = True
        if self._on_pull:
            self._on_pull()

    def close(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
