"""Tables (SQLAlchemy 2 typed mappings). Money and energy are NUMERIC, times are timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; times must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


Money = Numeric(14, 2, asdecimal=True)
Energy = Numeric(14, 2, asdecimal=True)
Price = Numeric(12, 4, asdecimal=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UtilityRow(Base):
    __tablename__ = "utilities"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    numeric_code: Mapped[int] = mapped_column(default=1)


class StationRow(Base):
    __tablename__ = "stations"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    next_receipt: Mapped[int] = mapped_column(default=1)


class RegionRow(Base):
    """Region hierarchy: region > line > transformer district."""

    __tablename__ = "regions"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    parent: Mapped["RegionRow | None"] = relationship(remote_side=[id])


class OperatorRow(Base):
    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(32), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class CustomerRow(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_no: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(120), index=True)
    address: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    category: Mapped[str] = mapped_column(String(32))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    district: Mapped[RegionRow | None] = relationship()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class MeterModelRow(Base):
    __tablename__ = "meter_models"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    constant: Mapped[int]
    phases: Mapped[int]
    rated_amps: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    credit_unit: Mapped[int] = mapped_column(default=0)


class MeterRow(Base):
    __tablename__ = "meters"
    id: Mapped[int] = mapped_column(primary_key=True)
    meter_no: Mapped[str] = mapped_column(String(12), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("meter_models.id"))
    model: Mapped[MeterModelRow] = relationship()
    status: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    customer: Mapped[CustomerRow | None] = relationship()
    last_sequence: Mapped[int] = mapped_column(default=0)
    parameter_version: Mapped[int | None]  # last set-card version the meter is known to hold


class CardRow(Base):
    __tablename__ = "cards"
    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    card_type: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"), index=True)
    meter: Mapped[MeterRow | None] = relationship()
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    customer: Mapped[CustomerRow | None] = relationship()
    key_version: Mapped[int] = mapped_column(default=1)
    issued_by: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class VendRow(Base):
    """A sale. Never deleted; its state moves pending -> written -> completed, or -> failed."""

    __tablename__ = "vends"
    __table_args__ = (Index("uq_vends_meter_sequence_live", "meter_id", "sequence", unique=True,
                            sqlite_where=text("state != 'failed'"),
                            postgresql_where=text("state != 'failed'")),
                      Index("ix_vends_state", "state"),
                      Index("ix_vends_customer_created", "customer_id", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    customer: Mapped[CustomerRow] = relationship()
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    meter: Mapped[MeterRow] = relationship()
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"))
    card: Mapped[CardRow] = relationship()
    sequence: Mapped[int]
    amount: Mapped[Decimal] = mapped_column(Money)
    energy: Mapped[Decimal] = mapped_column(Energy)
    credit: Mapped[Decimal] = mapped_column(Energy)
    credit_unit: Mapped[int]
    tariff: Mapped[str] = mapped_column(String(40))
    unit_price: Mapped[Decimal] = mapped_column(Price)
    price_lines: Mapped[list] = mapped_column(JSON, default=list)
    operator: Mapped[str] = mapped_column(String(32))
    station: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    written_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    receipt_no: Mapped[str | None] = mapped_column(String(32), unique=True)
    note: Mapped[str] = mapped_column(Text, default="")


class MeterReturnRow(Base):
    """Return data read off a card, and the consumption since the previous return."""

    __tablename__ = "meter_returns"
    __table_args__ = (UniqueConstraint("meter_id", "written_at", name="uq_meter_returns_meter_written"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    last_sequence: Mapped[int]
    remaining: Mapped[Decimal] = mapped_column(Energy)
    cumulative_purchased: Mapped[Decimal] = mapped_column(Energy)
    cumulative_consumed: Mapped[Decimal] = mapped_column(Energy)
    consumed_since_previous: Mapped[Decimal | None] = mapped_column(Energy)
    status: Mapped[int]
    tamper_count: Mapped[int]
    illegal_card_count: Mapped[int]
    history_year: Mapped[int]
    history_month: Mapped[int]
    history: Mapped[list] = mapped_column(JSON)
    written_at: Mapped[datetime] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    read_by: Mapped[str] = mapped_column(String(32))
    # the card it came back on: "user", or a service card ("check", "clear", "meter_reading")
    source: Mapped[str] = mapped_column(String(16), default="user", server_default="user")


class ServiceCardRow(Base):
    """The service-card log: every service card written, by whom, for which meters, with what."""

    __tablename__ = "service_cards"
    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    card_type: Mapped[int]
    operator: Mapped[str] = mapped_column(String(32))
    station: Mapped[str] = mapped_column(String(16))
    written_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    targets: Mapped[list | str] = mapped_column(JSON)  # meter numbers, or "any"
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    key_version: Mapped[int] = mapped_column(default=1)
    imported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    imported_by: Mapped[str | None] = mapped_column(String(32))


class MeterParameterSetRow(Base):
    """A numbered set of meter parameters; set cards carry the version, meters apply each once."""

    __tablename__ = "meter_parameter_sets"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    parameters: Mapped[dict] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
