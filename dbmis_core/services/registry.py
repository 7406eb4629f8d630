"""Customers, meters, meter models and the region hierarchy."""

from __future__ import annotations


from sqlalchemy import or_, select

from ..domain import (
    LEVEL_PARENT,
    Customer,
    Meter,
    MeterModel,
    MeterStatus,
    Region,
    RegionLevel,
)
from ..errors import NotFound, ValidationError
from ..storage.models import CustomerRow, MeterEventRow, MeterModelRow, MeterRow, RegionRow
from .auth import Operator, Perm


def add_region(uow, op: Operator, region: Region) -> None:
    op.require(Perm.MANAGE_CUSTOMERS)
    s = uow.session
    if s.scalar(select(RegionRow).where(RegionRow.code == region.code)):
        raise ValidationError(f"region code {region.code} already exists")
    parent_id = None
    want_parent = LEVEL_PARENT[region.level]
    if want_parent is not None:
        parent = s.scalar(select(RegionRow).where(RegionRow.code == (region.parent_code or "")))
        if parent is None or parent.level != want_parent:
            raise ValidationError(f"a {region.level} needs a parent {want_parent}, "
                                  f"got {region.parent_code!r}")
        parent_id = parent.id
    elif region.parent_code:
        raise ValidationError("a region has no parent")
    s.add(RegionRow(code=region.code, name=region.name, level=region.level.value,
                    parent_id=parent_id))


def add_meter_model(uow, op: Operator, model: MeterModel) -> None:
    op.require(Perm.MANAGE_METERS)
    if uow.session.scalar(select(MeterModelRow).where(MeterModelRow.code == model.code)):
        raise ValidationError(f"meter model {model.code} already exists")
    uow.session.add(MeterModelRow(code=model.code, constant=model.constant, phases=model.phases,
                                  rated_amps=model.rated_amps, credit_unit=int(model.credit_unit)))


def add_customer(uow, op: Operator, customer: Customer) -> Customer:
    op.require(Perm.MANAGE_CUSTOMERS)
    s = uow.session
    if s.scalar(select(CustomerRow).where(CustomerRow.account_no == customer.account_no)):
        raise ValidationError(f"account number {customer.account_no} is already in use")
    district_id = None
    if customer.district_code:
        d = s.scalar(select(RegionRow).where(RegionRow.code == customer.district_code))
        if d is None or d.level != RegionLevel.DISTRICT:
            raise ValidationError(f"{customer.district_code!r} is not a transformer district")
        if not d.active:
            raise ValidationError(f"transformer district {d.code} is deactivated")
        district_id = d.id
    from .codes import check_category

    check_category(uow, customer.category)
    row = CustomerRow(account_no=customer.account_no, name=customer.name.strip(),
                      address=customer.address, phone=customer.phone,
                      category=customer.category.value, district_id=district_id)
    s.add(row)
    s.flush()
    from . import audit

    audit.record(uow, op, "customer.add", f"account {row.account_no}",
                 {"name": row.name, "address": row.address, "phone": row.phone,
                  "category": row.category, "district": customer.district_code})
    return customer_from_row(row)


def customer_from_row(row: CustomerRow) -> Customer:
    return Customer(account_no=row.account_no, name=row.name, address=row.address, phone=row.phone,
                    category=row.category,
                    district_code=row.district.code if row.district else None, id=row.id)


def get_customer_row(uow, account_no: str) -> CustomerRow:
    row = uow.session.scalar(select(CustomerRow).where(CustomerRow.account_no == account_no.strip()))
    if row is None:
        raise NotFound(f"no customer with account number {account_no}")
    return row


def find_customers(uow, op: Operator, text: str, limit: int = 50) -> list[Customer]:
    op.require(Perm.VIEW)
    t = (text or "").strip()
    if not t:
        return []
    like = f"%{t}%"
    rows = uow.session.scalars(
        select(CustomerRow).where(or_(CustomerRow.account_no.like(f"{t}%"),
                                      CustomerRow.name.ilike(like)))
        .order_by(CustomerRow.account_no).limit(limit))
    return [customer_from_row(r) for r in rows]


def add_meter(uow, op: Operator, meter: Meter) -> Meter:
    op.require(Perm.MANAGE_METERS)
    s = uow.session
    if s.scalar(select(MeterRow).where(MeterRow.meter_no == meter.meter_no)):
        raise ValidationError(f"meter {meter.meter_no} is already registered")
    model = s.scalar(select(MeterModelRow).where(MeterModelRow.code == meter.model_code))
    if model is None:
        raise ValidationError(f"unknown meter model {meter.model_code!r}")
    row = MeterRow(meter_no=meter.meter_no, model=model, status=MeterStatus.IN_STORE.value)
    s.add(row)
    s.flush()
    log_meter_event(uow, row, None, op.login, "add")
    return meter_from_row(row)


def log_meter_event(uow, meter: MeterRow, before: str | None, operator: str, kind: str,
                    note: str = "") -> None:
    """Keep a step of the meter's history (meter_events): it moved from ``before`` to its
    current status."""
    uow.session.add(MeterEventRow(meter_id=meter.id, from_status=before, to_status=meter.status,
                                  kind=kind, operator=operator, note=note))


def set_meter_status(uow, meter: MeterRow, status: MeterStatus, operator: str, kind: str,
                     note: str = "") -> None:
    """Move a meter to ``status`` and record the step in its history."""
    before = meter.status
    meter.status = MeterStatus(status).value
    log_meter_event(uow, meter, before, operator, kind, note)


def meter_from_row(row: MeterRow) -> Meter:
    return Meter(meter_no=row.meter_no, model_code=row.model.code, status=MeterStatus(row.status),
                 customer_account=row.customer.account_no if row.customer else None,
                 last_sequence=row.last_sequence, id=row.id)


def get_meter_row(uow, meter_no: str) -> MeterRow:
    row = uow.session.scalar(select(MeterRow).where(MeterRow.meter_no == meter_no.strip()))
    if row is None:
        raise NotFound(f"no meter with factory number {meter_no}")
    return row


def install_meter(uow, op: Operator, meter_no: str, account_no: str) -> Meter:
    """Assign a meter from the store to a customer (one installed meter per customer)."""
    op.require(Perm.MANAGE_METERS)
    meter = get_meter_row(uow, meter_no)
    customer = get_customer_row(uow, account_no)
    if meter.status != MeterStatus.IN_STORE:
        raise ValidationError(f"meter {meter_no} is {meter.status}, not in the store")
    if current_meter(uow, customer) is not None:
        raise ValidationError(f"customer {account_no} already has an installed meter")
    meter.customer = customer
    set_meter_status(uow, meter, MeterStatus.INSTALLED, op.login, "install",
                     f"customer {customer.account_no}")
    uow.session.flush()
    from . import audit

    audit.record(uow, op, "meter.install", f"meter {meter.meter_no}",
                 {"account": customer.account_no})
    return meter_from_row(meter)


def current_meter(uow, customer: CustomerRow) -> MeterRow | None:
    return uow.session.scalar(select(MeterRow).where(MeterRow.customer_id == customer.id,
                                                     MeterRow.status == MeterStatus.INSTALLED.value))
