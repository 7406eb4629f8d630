"""Initialising a database and seeding the demo utility."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from ..domain import Customer, CustomerCategory, Meter, MeterModel, Region, RegionLevel
from ..errors import ValidationError
from ..keys import KeyStore
from ..storage.db import upgrade
from ..storage.models import OperatorRow, StationRow, UtilityRow
from .auth import Operator, Perm, create_operator
from .registry import add_customer, add_meter, add_meter_model, add_region, install_meter


def init(app, admin_login: str | None = None, admin_password: str | None = None,
         utility_code: str = "DEMO", utility_name: str = "Demo Power Supply Department") -> list[str]:
    """Create or upgrade the schema, the card key file, this station and the first administrator.

    Safe to run again: existing data, keys and operators are kept.
    """
    done = []
    upgrade(app.engine)
    done.append("schema at the latest migration")
    if app.config.master_secret_file.exists():
        KeyStore.load(app.config.master_secret_file)
        done.append(f"card key file kept: {app.config.master_secret_file}")
    else:
        KeyStore.create(app.config.master_secret_file)
        done.append(f"card key file created: {app.config.master_secret_file}")
    st = app.config.data["station"]
    with app.uow() as uow:
        s = uow.session
        if s.scalar(select(UtilityRow)) is None:
            s.add(UtilityRow(code=utility_code, name=utility_name, numeric_code=1))
        if s.scalar(select(StationRow).where(StationRow.code == st["code"])) is None:
            s.add(StationRow(code=st["code"], name=st["name"], next_receipt=1))
            done.append(f"station {st['code']} registered")
        has_admin = s.scalar(select(func.count()).select_from(OperatorRow)
                             .where(OperatorRow.role == "administrator"))
        if not has_admin:
            if not admin_login or not admin_password:
                raise ValidationError("the first administrator needs a login and a password")
            create_operator(uow, admin_login, "Administrator", admin_password, "administrator")
            done.append(f"administrator {admin_login} created")
        uow.commit()
    return done


DEMO_REGIONS = [
    ("R1", "North region", RegionLevel.REGION, None),
    ("R1-L1", "Line 10kV North-1", RegionLevel.LINE, "R1"),
    ("R1-L1-T1", "Transformer district Elm Street", RegionLevel.DISTRICT, "R1-L1"),
    ("R1-L1-T2", "Transformer district Oak Lane", RegionLevel.DISTRICT, "R1-L1"),
    ("R2", "South region", RegionLevel.REGION, None),
    ("R2-L1", "Line 10kV South-1", RegionLevel.LINE, "R2"),
    ("R2-L1-T1", "Transformer district Harbour", RegionLevel.DISTRICT, "R2-L1"),
]

DEMO_CUSTOMERS = [
    ("100001", "Li Wei", "12 Elm Street", "555-0101", "residential", "R1-L1-T1"),
    ("100002", "Maria Santos", "14 Elm Street", "555-0102", "residential", "R1-L1-T1"),
    ("100003", "Green Grocer Ltd", "2 Oak Lane", "555-0103", "commercial", "R1-L1-T2"),
    ("100004", "Ahmed Khan", "9 Oak Lane", "555-0104", "residential", "R1-L1-T2"),
    ("100005", "Harbour Pumps", "1 Quay Road", "555-0105", "agricultural", "R2-L1-T1"),
    ("100006", "Chen Jing", "7 Quay Road", "555-0106", "residential", "R2-L1-T1"),
]


def seed_demo(app, op: Operator, clerk_password: str = "clerk-demo-1") -> list[str]:
    """A demo utility: regions, models, customers with installed meters, a clerk operator."""
    op.require(Perm.MANAGE_CUSTOMERS)  # both up front: a clerk is refused before any lookup
    op.require(Perm.MANAGE_METERS)
    done = []
    with app.uow() as uow:
        for code, name, level, parent in DEMO_REGIONS:
            add_region(uow, op, Region(code, name, level, parent))
        add_meter_model(uow, op, MeterModel("DDSY-1P", 1600, 1, Decimal("40")))
        add_meter_model(uow, op, MeterModel("DTSY-3P", 400, 3, Decimal("60")))
        for i, (acct, name, addr, phone, cat, district) in enumerate(DEMO_CUSTOMERS):
            add_customer(uow, op, Customer(acct, name, addr, phone, CustomerCategory(cat), district))
            model = "DTSY-3P" if cat != "residential" else "DDSY-1P"
            meter_no = f"{20240001 + i:012d}"
            add_meter(uow, op, Meter(meter_no, model))
            install_meter(uow, op, meter_no, acct)
        for extra in range(3):
            add_meter(uow, op, Meter(f"{20249001 + extra:012d}", "DDSY-1P"))
        if uow.session.scalar(select(OperatorRow).where(OperatorRow.login == "clerk")) is None:
            create_operator(uow, "clerk", "Demo Clerk", clerk_password, "clerk")
            done.append("operator clerk created")
        uow.commit()
    done.append(f"{len(DEMO_REGIONS)} regions, 2 meter models, {len(DEMO_CUSTOMERS)} customers with "
                "installed meters, 3 meters in store")
    return done
