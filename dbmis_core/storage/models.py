"""Tables (SQLAlchemy 2 typed mappings). Money and energy are NUMERIC, times are timezone-aware."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
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
    # the station's audit chain (services/audit.py): records so far and the newest record's hash
    audit_seq: Mapped[int] = mapped_column(default=0, server_default="0")
    audit_head: Mapped[str] = mapped_column(String(64), default="", server_default="")


class RegionRow(Base):
    """Region hierarchy: region > line > transformer district."""

    __tablename__ = "regions"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    parent: Mapped["RegionRow | None"] = relationship(remote_side=[id])
    # deactivated entries stay for history; new customers cannot be put in them (services/codes.py)
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))


class OperatorRow(Base):
    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(32), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    # lockout is counted here, not per process, so it holds across stations (services/auth.py)
    failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # hashes of the newest passwords (current first) that a new password may not repeat
    password_history: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")


class OperatorPreferenceRow(Base):
    """One per-operator preference (e.g. the background image), kept in the database so it
    follows the operator to any station."""

    __tablename__ = "operator_preferences"
    __table_args__ = (UniqueConstraint("operator_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    name: Mapped[str] = mapped_column(String(40))
    text_value: Mapped[str] = mapped_column(String(255), default="")
    blob_value: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class OperatorEventRow(Base):
    """Security events of operators (failed logins, lockouts, unlocks, password and role changes)."""

    __tablename__ = "operator_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    login: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    by_login: Mapped[str | None] = mapped_column(String(32))
    station: Mapped[str] = mapped_column(String(16), default="")
    detail: Mapped[str] = mapped_column(String(255), default="")


class AuditRow(Base):
    """Audit log, append only (triggers refuse UPDATE and DELETE) and hash chained per station:
    ``hash`` = sha256(``prev_hash`` || canonical JSON of the other fields); services/audit.py."""

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("station", "seq", name="uq_audit_log_station_seq"),
                      Index("ix_audit_log_at", "at"),
                      Index("ix_audit_log_operator_at", "operator", "at"),
                      Index("ix_audit_log_kind_at", "kind", "at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    station: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int]
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    operator: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(120), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


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
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    tariff: Mapped[str | None] = mapped_column(String(40))  # None: the configured default tariff
    capacity_amps: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    capacity_mode: Mapped[str | None] = mapped_column(String(16))  # e.g. "none", "trip", "alarm"
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class MeterModelRow(Base):
    __tablename__ = "meter_models"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    constant: Mapped[int]
    phases: Mapped[int]
    rated_amps: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    credit_unit: Mapped[int] = mapped_column(default=0)
    # a manufacturers.code (a code, not a key, so the column was added without rebuilding the table)
    manufacturer_code: Mapped[str | None] = mapped_column(String(32))


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
    # card key version the meter was keyed with: set when its first card is issued, then every card
    # of the meter uses it, so a key rotation never strands an installed meter
    key_version: Mapped[int | None]


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
    """A sale. Never deleted; its state moves pending -> completed (through written when its
    receipt could not be made), or -> failed; a
    completed sale still unloaded on its card may become reversed (its sequence is released)."""

    __tablename__ = "vends"
    # every index here is paid for by every sale: state look-ups use the report index below
    __table_args__ = (Index("uq_vends_meter_sequence_live", "meter_id", "sequence", unique=True,
                            sqlite_where=text("state NOT IN ('failed', 'reversed')"),
                            postgresql_where=text("state NOT IN ('failed', 'reversed')")),
                      Index("ix_vends_customer_created", "customer_id", "created_at"),
                      # covers the sales reports: a month's completed sales read from the index
                      # alone (equality on state and kind first, then the time range)
                      Index("ix_vends_completed_report", "state", "kind", "completed_at",
                            "customer_id", "amount", "energy", "debt_recovered"))
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
    # "sale", or "makeup" (credit moved from a replaced meter; nothing paid)
    kind: Mapped[str] = mapped_column(String(16), default="sale", server_default="sale")
    debt_recovered: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"), server_default="0")
    closing_id: Mapped[int | None] = mapped_column(ForeignKey("day_closings.id"), index=True)


class MeterReturnRow(Base):
    """Return data read off a card, and the consumption since the previous return."""

    __tablename__ = "meter_returns"
    __table_args__ = (UniqueConstraint("meter_id", "written_at", name="uq_meter_returns_meter_written"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))  # indexed by the unique key
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


# -- daily business (issue 4) -------------------------------------------------------------------


class DayClosingRow(Base):
    """An operator's closed till: expected against counted cash. Sales and cash entries it covers
    point at it and can no longer change."""

    __tablename__ = "day_closings"
    id: Mapped[int] = mapped_column(primary_key=True)
    operator: Mapped[str] = mapped_column(String(32), index=True)
    station: Mapped[str] = mapped_column(String(16))
    business_day: Mapped[date] = mapped_column(Date, index=True)
    sales_count: Mapped[int] = mapped_column(default=0)
    expected: Mapped[Decimal] = mapped_column(Money)
    counted: Mapped[Decimal] = mapped_column(Money)
    discrepancy: Mapped[Decimal] = mapped_column(Money)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)  # totals per kind of money movement
    note: Mapped[str] = mapped_column(Text, default="")
    closed_by: Mapped[str] = mapped_column(String(32))
    closed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class CashEntryRow(Base):
    """Money taken or paid out that is not a sale: card fees, refunds, debt payments.

    ``amount`` is signed: positive is money received, negative money paid out."""

    __tablename__ = "cash_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    amount: Mapped[Decimal] = mapped_column(Money)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    vend_id: Mapped[int | None] = mapped_column(ForeignKey("vends.id"))
    operator: Mapped[str] = mapped_column(String(32))
    station: Mapped[str] = mapped_column(String(16))
    receipt_no: Mapped[str | None] = mapped_column(String(32), unique=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    closing_id: Mapped[int | None] = mapped_column(ForeignKey("day_closings.id"), index=True)


class ApplicationRow(Base):
    """A new-service application (business expansion) and where it stands."""

    __tablename__ = "applications"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    applicant_name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    category: Mapped[str] = mapped_column(String(32))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    requested_amps: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    model_code: Mapped[str | None] = mapped_column(String(32))
    capacity_mode: Mapped[str | None] = mapped_column(String(16))
    tariff: Mapped[str | None] = mapped_column(String(40))
    batch: Mapped[str | None] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    station: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class ApplicationStepRow(Base):
    """One step of an application: who moved it to which state, when, and why."""

    __tablename__ = "application_steps"
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    operator: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    notes: Mapped[str] = mapped_column(Text, default="")


class TariffVersionRow(Base):
    """Settings of a tariff from a date on; a sale uses the newest version in force when it is made."""

    __tablename__ = "tariff_versions"
    __table_args__ = (UniqueConstraint("tariff", "effective_from",
                                       name="uq_tariff_versions_tariff_effective"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tariff: Mapped[str] = mapped_column(String(40))
    effective_from: Mapped[datetime] = mapped_column(UtcDateTime)
    settings: Mapped[dict] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class ReversalRow(Base):
    """Reversal of a sale whose credit is still unloaded on the card; durable like a vend:
    pending -> completed (card restored, refund paid) or failed."""

    __tablename__ = "reversals"
    __table_args__ = (Index("uq_reversals_vend_live", "vend_id", unique=True,
                            sqlite_where=text("state != 'failed'"),
                            postgresql_where=text("state != 'failed'")),)
    id: Mapped[int] = mapped_column(primary_key=True)
    vend_id: Mapped[int] = mapped_column(ForeignKey("vends.id"))
    vend: Mapped[VendRow] = relationship()
    state: Mapped[str] = mapped_column(String(16), index=True)
    refund: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(Text, default="")
    operator: Mapped[str] = mapped_column(String(32))
    approved_by: Mapped[str] = mapped_column(String(32))
    station: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(Text, default="")


class ReissueRow(Base):
    """Replacement of a lost or damaged card; durable: pending -> completed or failed."""

    __tablename__ = "reissues"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    old_card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"))
    new_uid: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    fee: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    reason: Mapped[str] = mapped_column(Text, default="")
    operator: Mapped[str] = mapped_column(String(32))
    station: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(Text, default="")


class DebtRow(Base):
    """Money a customer owes (e.g. a meter replacement fee), recovered as a share of purchases."""

    __tablename__ = "debts"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(120))
    amount: Mapped[Decimal] = mapped_column(Money)
    recovered: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    share: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))  # None: the configured share
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DebtPaymentRow(Base):
    """Part of a debt paid off by a sale (or paid in cash, then ``vend_id`` is None)."""

    __tablename__ = "debt_payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    debt_id: Mapped[int] = mapped_column(ForeignKey("debts.id"), index=True)
    vend_id: Mapped[int | None] = mapped_column(ForeignKey("vends.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class CustomerChangeRow(Base):
    """A change to a customer (details, category, tariff, capacity, meter, closure): before/after."""

    __tablename__ = "customer_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    before: Mapped[dict] = mapped_column(JSON, default=dict)
    after: Mapped[dict] = mapped_column(JSON, default=dict)
    operator: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    note: Mapped[str] = mapped_column(Text, default="")


class InspectionNoticeRow(Base):
    """Something seen at the counter that needs an inspector: a card of another meter, a sequence
    from the future, a failed MAC."""

    __tablename__ = "inspection_notices"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    card_uid: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    raised_by: Mapped[str] = mapped_column(String(32))
    station: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


# -- user management (issue 6) ------------------------------------------------------------------


class MonthlyConsumptionRow(Base):
    """One customer's use in one calendar month on one meter, derived from the meter returns.

    Derived data: ``consumption.compute`` replaces a customer's rows as a whole, so running it
    again gives the same table. ``quality`` says how far to trust ``kwh`` (complete, partial,
    estimated, missing); ``flags`` carries findings seen while deriving it (register backwards)."""

    __tablename__ = "monthly_consumption"
    __table_args__ = (UniqueConstraint("customer_id", "meter_id", "year", "month",
                                       name="uq_monthly_consumption_customer_meter_month"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    year: Mapped[int]
    month: Mapped[int]
    kwh: Mapped[Decimal | None] = mapped_column(Energy)
    purchased: Mapped[Decimal] = mapped_column(Energy, default=Decimal("0"))
    returns: Mapped[int] = mapped_column(default=0)
    status_bits: Mapped[int] = mapped_column(default=0)
    tamper_count: Mapped[int | None]
    illegal_card_count: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(16))
    quality: Mapped[str] = mapped_column(String(16))
    flags: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class WorkOrderRow(Base):
    """An inspection work order: why it was raised (a ranking score with its reasons, or a counter
    notice), who inspects, and the outcome, which stays as a label for measuring the detector."""

    __tablename__ = "work_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    origin: Mapped[str] = mapped_column(String(16))  # "ranking", "notice", "manual"
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_notices.id"))
    period_year: Mapped[int | None]
    period_month: Mapped[int | None]
    score: Mapped[Decimal | None] = mapped_column(Numeric(8, 3))
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open, assigned, done
    assigned_to: Mapped[str | None] = mapped_column(String(32))
    assigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # theft, fault, no_problem
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    closed_by: Mapped[str | None] = mapped_column(String(32))
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# -- reports (issue 7) --------------------------------------------------------------------------


class MasterMeterReadingRow(Base):
    """Energy supplied into a line or transformer district in a month, read off its master meter
    (entered or imported); line loss compares it with the customers' billed consumption."""

    __tablename__ = "master_meter_readings"
    __table_args__ = (UniqueConstraint("region_id", "year", "month",
                                       name="uq_master_meter_readings_region_month"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    year: Mapped[int]
    month: Mapped[int]
    supplied: Mapped[Decimal] = mapped_column(Energy)
    source: Mapped[str] = mapped_column(String(16), default="entered")  # "entered", "import"
    entered_by: Mapped[str] = mapped_column(String(32))
    entered_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    note: Mapped[str] = mapped_column(Text, default="")


class SalesSummaryRow(Base):
    """Completed sales per month, district and customer category (derived, for the reports).

    Kept up to date incrementally by dbmis_core/services/salessummary.py from the sales and
    reversals that appeared since the last refresh; ``district_id`` 0 = customer without one."""

    __tablename__ = "sales_summary"
    __table_args__ = (UniqueConstraint("year", "month", "district_id", "category",
                                       name="uq_sales_summary_cell"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int]
    month: Mapped[int]
    district_id: Mapped[int]
    category: Mapped[str] = mapped_column(String(32))
    sales: Mapped[int] = mapped_column(default=0)
    customers: Mapped[int] = mapped_column(default=0)
    amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    energy: Mapped[Decimal] = mapped_column(Energy, default=Decimal("0"))
    debt_recovered: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))


class SalesCustomerMonthRow(Base):
    """How many completed sales a customer has in a month (derived): counts purchasing customers
    in ``sales_summary`` exactly as sales come and go."""

    __tablename__ = "sales_customer_month"
    customer_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    month: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    sales: Mapped[int] = mapped_column(default=0)


class SalesSummaryStateRow(Base):
    """Where the sales summary stands: sales and reversals up to these ids are in it, except
    those still open (pending or written) then, which are looked at again next time."""

    __tablename__ = "sales_summary_state"
    id: Mapped[int] = mapped_column(primary_key=True)
    vend_watermark: Mapped[int] = mapped_column(default=0)
    reversal_watermark: Mapped[int] = mapped_column(default=0)
    open_vends: Mapped[list] = mapped_column(JSON, default=list)
    open_reversals: Mapped[list] = mapped_column(JSON, default=list)
    refreshed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


# -- settings and maintenance data (issue 5) ----------------------------------------------------


class SettingRow(Base):
    """A system parameter set in the database; ``value`` None means "back to the default" (the
    TOML configuration, then the built-in default). See dbmis_core/services/settings.py."""

    __tablename__ = "settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(48), unique=True)
    value: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class SettingsVersionRow(Base):
    """One row counting settings changes: a process re-reads its cached settings when it moves."""

    __tablename__ = "settings_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)


class CustomerCategoryRow(Base):
    """A customer category added beyond the built-in ones (domain.CustomerCategory)."""

    __tablename__ = "customer_categories"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(default=True)


class ManufacturerRow(Base):
    __tablename__ = "manufacturers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(60), default="")
    active: Mapped[bool] = mapped_column(default=True)


class PaymentMethodRow(Base):
    __tablename__ = "payment_methods"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(default=True)


class MeterEventRow(Base):
    """A meter's status change: the meter store's history (added, installed, removed, tested...)."""

    __tablename__ = "meter_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24))  # add, import, install, replace, status, ...
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    operator: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")


class PersonnelRow(Base):
    """A member of staff (an inspector, a fitter), who may or may not log in as an operator."""

    __tablename__ = "personnel"
    id: Mapped[int] = mapped_column(primary_key=True)
    employee_no: Mapped[str] = mapped_column(String(24), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(80), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    operator_login: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


# Made by migration 0008 in SQL that SQLAlchemy tables cannot describe: the SQLite FTS5 trigram
# table behind customer search (with its shadow tables) and the PostgreSQL pg_trgm GIN indexes.
# Schema comparisons (tests/integration/test_storage.py) skip exactly these names.
SEARCH_INDEX_OBJECTS = frozenset({
    "customers_fts", "customers_fts_data", "customers_fts_idx", "customers_fts_docsize",
    "customers_fts_config",
    "ix_customers_name_trgm", "ix_customers_address_trgm", "ix_customers_phone_trgm",
})
