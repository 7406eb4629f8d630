"""What the core knows about cards: byte-level reader protocols and decoded card records.

Drivers implement ``Reader``/``CardConnection`` (byte I/O only); card formats implement ``CardFormat``
(records <-> bytes); the core never knows which reader or which layout is in use.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Protocol, runtime_checkable

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


# -- service cards ---------------------------------------------------------------------------------
ANY_METER = "000000"  # header meter number of a batch service card: any meter of the utility
MAX_TEST_USES = 8


@attrs.frozen
class MeterParameters:
    """What a set card sets and a check card reports. Zero means "not used" for every limit;
    ``price`` (per kWh) matters only to money meters; a meter applies each ``version`` once."""

    alarm1: Decimal = Decimal("0")
    alarm2: Decimal = Decimal("0")
    hoarding_limit: Decimal = Decimal("0")
    overdraft_limit: Decimal = Decimal("0")
    power_limit_w: int = 0
    price: Decimal = Decimal("0")
    version: int = 0


@attrs.frozen
class SelfTestCommand:
    """Meter self-test: a tiny test credit, at most ``max_uses`` insertions in all."""

    card_type: ClassVar[CardType] = CardType.TEST
    credit: Decimal
    max_uses: int


@attrs.frozen
class CheckCommand:
    """The meter copies its data and parameters onto the card and changes nothing."""

    card_type: ClassVar[CardType] = CardType.CHECK


@attrs.frozen
class SetCommand:
    card_type: ClassVar[CardType] = CardType.SET
    params: MeterParameters


@attrs.frozen
class ClearCommand:
    """The meter writes its data onto the card, then forgets its customer (sequence, credit, card)."""

    card_type: ClassVar[CardType] = CardType.CLEAR


@attrs.frozen
class PresetCommand:
    """Credit for a new meter before its first purchase, repaid out of that purchase."""

    card_type: ClassVar[CardType] = CardType.PRESET
    credit: Decimal


@attrs.frozen
class ReadingCommand:
    """Collect readings of the meters along ``route`` (free text, ASCII, up to 32 characters)."""

    card_type: ClassVar[CardType] = CardType.METER_READING
    route: str = ""


@attrs.frozen
class ManagementCommand:
    """Suspend or resume supply without touching the meter's data."""

    card_type: ClassVar[CardType] = CardType.MANAGEMENT
    suspend: bool


ServiceCommand = (SelfTestCommand | CheckCommand | SetCommand | ClearCommand | PresetCommand
                  | ReadingCommand | ManagementCommand)
COMMANDS: dict[CardType, type] = {c.card_type: c for c in (
    SelfTestCommand, CheckCommand, SetCommand, ClearCommand, PresetCommand, ReadingCommand,
    ManagementCommand)}
SINGLE_METER_TYPES = frozenset({CardType.CHECK, CardType.CLEAR, CardType.MANAGEMENT})
SNAPSHOT_TYPES = SINGLE_METER_TYPES          # answered by one snapshot of the meter
READING_TYPES = frozenset({CardType.METER_READING})
MARK_TYPES = frozenset({CardType.TEST, CardType.SET, CardType.PRESET})  # answered by marks


@attrs.frozen
class MeterSnapshot:
    """Everything a meter tells a check, clear or management card."""

    returned: MeterReturn
    params: MeterParameters
    preset_owed: Decimal
    suspended: bool
    test_uses: int


@attrs.frozen
class ServiceMark:
    """One meter's entry on a test, set or preset card. ``code``: the test use number, the
    parameter version applied, or 0 for a preset."""

    meter_no: str
    code: int
    written_at: datetime


@attrs.frozen
class MeterReading:
    """One meter's compact entry on a meter-reading card."""

    meter_no: str
    last_sequence: int
    remaining: Decimal
    cumulative_purchased: Decimal
    cumulative_consumed: Decimal
    status: int
    tamper_count: int
    illegal_card_count: int
    written_at: datetime


@attrs.frozen
class EntryState:
    index: int
    entry: ServiceMark | MeterReading | None
    problem: str | None  # "empty", "torn or forged (MAC mismatch)", ...


@attrs.frozen
class ServiceCardImage:
    """A service card as read and checked: its command, and what meters answered on it."""

    uid: str
    header: CardHeader
    command: ServiceCommand | None
    issued_at: datetime | None
    command_problem: str | None
    snapshot: MeterSnapshot | None
    answer_problem: str | None
    entries: tuple[EntryState, ...]
    tries_left: int

    @property
    def batch(self) -> bool:
        return self.header.meter_no == ANY_METER

    @property
    def answers(self) -> tuple[ServiceMark | MeterReading, ...]:
        return tuple(e.entry for e in self.entries if e.entry is not None)


class CardFormat(Protocol):
    """Card layout; system side (issue, write vend, read) and meter side (load vend, write return).

    Service cards: the system writes them with ``write_service`` and reads any card with
    ``read_any``; a meter reads the header first (``read_header``), then either the user-card methods
    or ``meter_read_service`` and answers with ``meter_write_snapshot``/``meter_write_entry``.
    """

    name: str

    def read_uid(self, conn: CardConnection) -> str: ...
    def personalise(self, conn: CardConnection, header: CardHeader) -> str: ...
    def read(self, conn: CardConnection) -> CardImage: ...
    def write_vend(self, conn: CardConnection, record: VendRecord) -> None: ...
    def revoke_vend(self, conn: CardConnection, sequence: int) -> None:
        """Invalidate the newest record, which must carry ``sequence`` (a reversed, never loaded
        sale); the previous record (or none) becomes the newest. A pull half-way must leave the
        card holding either the record or the previous one, never anything else.

        A replacement card (reissue) is ``personalise`` with a ``CardType.REPLACEMENT`` header
        followed by ``write_vend`` of the customer's last record (same sequence)."""
        ...
    # meter side: only the meter key is known
    def meter_read(self, conn: CardConnection, meter_key: bytes, meter_no: str): ...
    def meter_write_return(self, conn: CardConnection, meter_key: bytes, ret: MeterReturn) -> None: ...
    # service cards
    def write_service(self, conn: CardConnection, header: CardHeader, command: ServiceCommand,
                      issued_at: datetime) -> str: ...
    def read_any(self, conn: CardConnection) -> CardImage | ServiceCardImage: ...
    def read_header(self, conn: CardConnection) -> CardHeader: ...
    def meter_read_service(self, conn: CardConnection, meter_key: bytes, service_key: bytes | None,
                           meter_no: str) -> ServiceCardImage: ...
    def meter_write_snapshot(self, conn: CardConnection, meter_key: bytes, service_key: bytes | None,
                             meter_no: str, snapshot: MeterSnapshot) -> None: ...
    def meter_write_entry(self, conn: CardConnection, meter_key: bytes, service_key: bytes | None,
                          meter_no: str, entry: ServiceMark | MeterReading) -> None: ...
