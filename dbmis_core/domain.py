"""Domain objects: plain attrs classes without persistence code.

Identifiers people type are validated on the way in (``account_no``, ``meter_no``), so a bad value
is refused before it reaches storage or a card.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from decimal import Decimal

import attrs

from .errors import ValidationError

ACCOUNT_RE = re.compile(r"^\d{4,12}$")
METER_RE = re.compile(r"^\d{6,12}$")


def validate_account_no(value: str) -> str:
    v = (value or "").strip()
    if not ACCOUNT_RE.match(v):
        raise ValidationError(f"account number must be 4 to 12 digits, got {value!r}")
    return v


def validate_meter_no(value: str) -> str:
    v = (value or "").strip()
    if not METER_RE.match(v):
        raise ValidationError(f"meter factory number must be 6 to 12 digits, got {value!r}")
    return v


def _nonblank(what: str):
    def check(_inst, _attr, value):
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"{what} must not be empty")

    return check


class RegionLevel(enum.StrEnum):
    REGION = "region"
    LINE = "line"
    DISTRICT = "district"  # transformer district


LEVEL_PARENT = {RegionLevel.REGION: None, RegionLevel.LINE: RegionLevel.REGION,
                RegionLevel.DISTRICT: RegionLevel.LINE}


class CustomerCategory(enum.StrEnum):
    RESIDENTIAL = "residential"
    COMMERCIAL = "commercial"
    INDUSTRIAL = "industrial"
    AGRICULTURAL = "agricultural"


CATEGORY_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


class AddedCategory(str):
    """A customer category from the code table (services/codes.py), not one of the built-in
    ``CustomerCategory`` values; ``.value`` like an enum member, so callers treat both alike."""

    @property
    def value(self) -> str:
        return str(self)


def customer_category(value) -> CustomerCategory | AddedCategory:
    """A built-in category, or a well-formed added one (whether it exists is checked against the
    code table by the services)."""
    if isinstance(value, CustomerCategory):
        return value
    v = str(value or "").strip().lower()
    try:
        return CustomerCategory(v)
    except ValueError:
        pass
    if not CATEGORY_RE.match(v):
        raise ValidationError(f"customer category {value!r} must be 2 to 32 lower-case letters, "
                              "digits or _")
    return AddedCategory(v)


class MeterStatus(enum.StrEnum):
    IN_STORE = "in_store"
    INSTALLED = "installed"
    REMOVED = "removed"
    UNDER_TEST = "under_test"
    FAULTY = "faulty"
    SCRAPPED = "scrapped"


class CardType(enum.IntEnum):
    """Card type codes written in the card header."""

    USER = 1
    REPLACEMENT = 2
    TEST = 3
    CHECK = 4
    SET = 5
    CLEAR = 6
    PRESET = 7
    METER_READING = 8
    MANAGEMENT = 9

    @property
    def is_service(self) -> bool:
        """Service cards carry a command for meters, not a customer's vend."""
        return self not in (CardType.USER, CardType.REPLACEMENT)


class CardStatus(enum.StrEnum):
    ACTIVE = "active"
    LOST = "lost"
    REPLACED = "replaced"
    VOID = "void"


class CreditUnit(enum.IntEnum):
    """What a vend record carries: meters that count energy or money."""

    KWH = 0
    MONEY = 1


class VendState(enum.StrEnum):
    """Durable states of a sale (docs/decisions/0003-vend-state-machine.md)."""

    PENDING = "pending"      # sequence reserved and committed; card not yet known to hold it
    WRITTEN = "written"      # card write verified by read-back; receipt not yet issued
    COMPLETED = "completed"  # receipt issued; final
    FAILED = "failed"        # card never received the record; final, no credit given
    REVERSED = "reversed"    # completed, then taken back off the card unloaded; money refunded


@attrs.frozen
class Utility:
    code: str = attrs.field(validator=_nonblank("utility code"))
    name: str = attrs.field(validator=_nonblank("utility name"))


@attrs.frozen
class Station:
    code: str = attrs.field(validator=_nonblank("station code"))
    name: str = attrs.field(validator=_nonblank("station name"))


@attrs.frozen
class Region:
    code: str = attrs.field(validator=_nonblank("region code"))
    name: str = attrs.field(validator=_nonblank("region name"))
    level: RegionLevel = attrs.field(converter=RegionLevel)
    parent_code: str | None = None


@attrs.frozen
class MeterModel:
    code: str = attrs.field(validator=_nonblank("model code"))
    constant: int = attrs.field()  # impulses per kWh
    phases: int = attrs.field()
    rated_amps: Decimal = attrs.field(converter=Decimal)
    credit_unit: CreditUnit = attrs.field(default=CreditUnit.KWH, converter=CreditUnit)

    @constant.validator
    def _c(self, _a, v):
        if v <= 0:
            raise ValidationError("meter constant must be positive")

    @phases.validator
    def _p(self, _a, v):
        if v not in (1, 3):
            raise ValidationError("a meter has 1 or 3 phases")


@attrs.frozen
class Customer:
    account_no: str = attrs.field(converter=validate_account_no)
    name: str = attrs.field(validator=_nonblank("customer name"))
    address: str = ""
    phone: str = ""
    category: CustomerCategory | AddedCategory = attrs.field(default=CustomerCategory.RESIDENTIAL,
                                                             converter=customer_category)
    district_code: str | None = None
    id: int | None = None


@attrs.frozen
class Meter:
    meter_no: str = attrs.field(converter=validate_meter_no)
    model_code: str = attrs.field(validator=_nonblank("meter model"))
    status: MeterStatus = attrs.field(default=MeterStatus.IN_STORE, converter=MeterStatus)
    customer_account: str | None = None
    last_sequence: int = 0
    id: int | None = None


@attrs.frozen
class Card:
    uid: str
    card_type: CardType
    status: CardStatus
    meter_no: str | None
    account_no: str | None
    key_version: int = 1
    id: int | None = None


@attrs.frozen
class Quote:
    """What a tariff offers for an amount of money."""

    tariff: str
    amount: Decimal
    energy: Decimal
    unit_price: Decimal
    lines: tuple[tuple[str, Decimal], ...] = ()


@attrs.frozen
class Vend:
    id: int
    account_no: str
    meter_no: str
    card_uid: str
    sequence: int
    amount: Decimal
    energy: Decimal
    credit: Decimal
    credit_unit: CreditUnit
    tariff: str
    unit_price: Decimal
    operator: str
    station: str
    state: VendState
    created_at: datetime
    completed_at: datetime | None
    receipt_no: str | None


@attrs.frozen
class MeterReturn:
    """Data a meter wrote back onto the card (see research/cards.md)."""

    meter_no: str
    last_sequence: int
    remaining: Decimal
    cumulative_purchased: Decimal
    cumulative_consumed: Decimal
    status: int
    tamper_count: int
    illegal_card_count: int
    history_month: tuple[int, int]  # (year, month) of history[0], the most recent month
    history: tuple[Decimal, ...]
    written_at: datetime

    RELAY_OPEN = 0x01
    TAMPER = 0x02
    LOW_CREDIT = 0x04
    OVERDRAFT = 0x08
    ALARM2 = 0x10      # remaining at or below the second (lower) alarm level
    SUSPENDED = 0x20   # supply suspended by a management card
