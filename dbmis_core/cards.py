"""What the core knows about cards: byte-level reader protocols and decoded card records.

Drivers implement ``Reader``/``CardConnection`` (byte I/O only); card formats implement ``CardFormat``
(records <-> bytes); the core never knows which reader or which layout is in use.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

import attrs

from .domain import CardType, CreditUnit, MeterReturn


@runtime_checkable
class CardConnection(Protocol):
    """A connected memory card (SLE4442 model: 256 bytes, 3-byte PSC, protection bits on 0-31)."""

    def atr(self) -> bytes: ...
    def read(self, addr: int, length: int) -> bytes: ...
    def write(self, addr: int, data: bytes) -> None: ...
    def present_psc(self, psc: bytes) -> int: ...
    def tries_left(self) -> int: ...
    def protection_bits(self) -> bytes: ...
    def protect(self, addr: int, data: bytes) -> None: ...
    def change_psc(self, new_psc: bytes) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class Reader(Protocol):
    name: str

    def card_present(self) -> bool: ...
    def connect(self) -> CardConnection: ...
    def close(self) -> None: ...


@attrs.frozen
class CardHeader:
    card_type: CardType
    utility_code: int
    meter_no: str
    account_no: str
    key_version: int = 1


@attrs.frozen
class VendRecord:
    sequence: int
    credit: Decimal
    unit: CreditUnit
    meter_no: str
    account_no: str
    issued_at: datetime


@attrs.frozen
class SlotState:
    name: str
    record: VendRecord | None
    problem: str | None  # why the slot is not usable: "empty", "torn (CRC)", "MAC mismatch", ...


@attrs.frozen
class CardImage:
    """Everything read off a card, decoded and checked."""

    uid: str
    header: CardHeader
    slots: tuple[SlotState, ...]
    vend: VendRecord | None          # newest valid vend record
    returned: MeterReturn | None     # meter return data, if valid
    return_problem: str | None
    tries_left: int

    @property
    def unloaded(self) -> bool:
        """True while the newest vend on the card has not been loaded into the meter."""
        if self.vend is None:
            return False
        last = self.returned.last_sequence if self.returned else 0
        return self.vend.sequence > last


class CardFormat(Protocol):
    """Card layout; system side (issue, write vend, read) and meter side (load vend, write return)."""

    name: str

    def read_uid(self, conn: CardConnection) -> str: ...
    def personalise(self, conn: CardConnection, header: CardHeader) -> str: ...
    def read(self, conn: CardConnection) -> CardImage: ...
    def write_vend(self, conn: CardConnection, record: VendRecord) -> None: ...
    # meter side: only the meter key is known
    def meter_read(self, conn: CardConnection, meter_key: bytes, meter_no: str): ...
    def meter_write_return(self, conn: CardConnection, meter_key: bytes, ret: MeterReturn) -> None: ...
