"""A small, fixed data set for the golden report tests (services, command line and Qt page).

Built as rows on an initialised database without demo data, so every figure in a report can be
worked out by hand from this file (tests/integration/test_reports.py writes those figures down).

Regions: RA (lines LA1: districts DA1, DA2; LA2: DA3), RB (line LB1: district DB1).
Customers (created 2024-01-01): 900001 Anna Okafor (residential, DA1), 900002 Ivan Petrov
(residential, DA2), 900003 Mill Road Trading (commercial, DA3), 900004 Kofi Works (industrial,
DB1), 900005 Maria Santos (residential, DA1, never buys).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from ..storage.models import (
    CardRow,
    CashEntryRow,
    CustomerRow,
    InspectionNoticeRow,
    MasterMeterReadingRow,
    MeterModelRow,
    MeterReturnRow,
    MeterRow,
    MonthlyConsumptionRow,
    RegionRow,
    ReissueRow,
    ReversalRow,
    ServiceCardRow,
    VendRow,
)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


CUSTOMERS = [  # account, name, address, phone, category, district
    ("900001", "Anna Okafor", "12 Elm Street", "555-0101", "residential", "DA1"),
    ("900002", "Ivan Petrov", "3 Quay Road", "555-0202", "residential", "DA2"),
    ("900003", "Mill Road Trading", "40 Mill Road", "555-0303", "commercial", "DA3"),
    ("900004", "Kofi Works", "1 Station Road", "555-0404", "industrial", "DB1"),
    ("900005", "Maria Santos", "7 Elm Street", "555-0505", "residential", "DA1"),
]

# account, completed_at, state, kind, amount, energy, debt, operator, station, receipt
VENDS = [
    ("900001", "2024-03-10 09:00", "completed", "sale", "50.00", "100.00", "0", "clerk", "S01"),
    ("900003", "2024-03-15 10:00", "completed", "sale", "200.00", "250.00", "0", "clerk", "S01"),
    ("900001", "2025-02-03 10:00", "completed", "sale", "60.00", "120.00", "0", "clerk", "S01"),
    ("900002", "2025-02-10 11:00", "completed", "sale", "40.00", "80.00", "0", "bob", "S02"),
    ("900004", "2025-02-20 12:00", "completed", "sale", "300.00", "400.00", "0", "bob", "S02"),
    ("900002", "2025-02-21 12:00", "failed", "sale", "99.00", "198.00", "0", "bob", "S02"),
    ("900001", "2025-03-05 08:30", "completed", "sale", "100.00", "180.00", "10.00", "clerk",
     "S01"),
    ("900001", "2025-03-05 14:00", "completed", "sale", "20.00", "40.00", "0", "clerk", "S01"),
    ("900002", "2025-03-05 09:00", "completed", "sale", "30.00", "60.00", "0", "bob", "S02"),
    ("900003", "2025-03-06 10:00", "completed", "sale", "150.00", "187.50", "0", "clerk", "S01"),
    ("900003", "2025-03-06 11:00", "reversed", "sale", "500.00", "625.00", "0", "clerk", "S01"),
    ("900004", "2025-03-31 23:59:59", "completed", "sale", "250.00", "333.33", "0", "bob", "S02"),
    ("900004", "2025-04-01 00:00:01", "completed", "sale", "70.00", "90.00", "0", "bob", "S02"),
    ("900002", "2025-03-07 10:00", "failed", "sale", "10.00", "20.00", "0", "bob", "S02"),
    ("900001", "2025-03-08 10:00", "completed", "makeup", "0.00", "15.00", "0", "clerk", "S01"),
]

# account, kind, amount, operator, station, time
CASH = [
    ("900002", "reissue_fee", "5.00", "bob", "S02", "2025-03-05 12:00"),
    ("900001", "debt_payment", "25.00", "clerk", "S01", "2025-03-05 15:00"),
    ("900003", "refund", "-500.00", "clerk", "S01", "2025-03-06 13:00"),
]

# account, year, month, kwh, flags
CONSUMPTION = [
    ("900001", 2025, 2, "110.00", 0), ("900002", 2025, 2, "70.00", 0),
    ("900003", 2025, 2, "200.00", 0), ("900004", 2025, 2, "380.00", 0),
    ("900001", 2025, 3, "150.00", 0), ("900002", 2025, 3, "65.00", 0),
    ("900003", 2025, 3, "180.00", 1), ("900004", 2025, 3, "300.00", 0),
    ("900005", 2025, 3, None, 0),
]

# region code, year, month, supplied
MASTER = [("LA1", 2025, 2, "200.00"), ("LA1", 2025, 3, "250.00"), ("LA2", 2025, 3, "190.00"),
          ("LB1", 2025, 3, "290.00"), ("DA1", 2025, 3, "160.00")]

# account, read_at
RETURNS = [("900001", "2025-02-04 10:00"), ("900002", "2025-02-11 10:00"),
           ("900003", "2025-02-16 10:00"), ("900001", "2025-03-05 08:30"),
           ("900004", "2025-03-31 23:00")]


def seed(app) -> dict:
    """Write the data set; returns {account: customer id}."""
    with app.uow() as uow:
        s = uow.session
        model = MeterModelRow(code="RPT-1P", constant=1600, phases=1, rated_amps=D("40"))
        s.add(model)
        regions = {}
        for code, name, level, parent in [
                ("RA", "Region A", "region", None), ("RB", "Region B", "region", None),
                ("LA1", "Line A1", "line", "RA"), ("LA2", "Line A2", "line", "RA"),
                ("LB1", "Line B1", "line", "RB"), ("DA1", "District A1", "district", "LA1"),
                ("DA2", "District A2", "district", "LA1"),
                ("DA3", "District A3", "district", "LA2"),
                ("DB1", "District B1", "district", "LB1")]:
            row = RegionRow(code=code, name=name, level=level,
                            parent_id=regions[parent].id if parent else None)
            s.add(row)
            s.flush()
            regions[code] = row
        cust, meters, cards = {}, {}, {}
        for n, (acct, name, addr, phone, cat, district) in enumerate(CUSTOMERS, 1):
            c = CustomerRow(account_no=acct, name=name, address=addr, phone=phone, category=cat,
                            district_id=regions[district].id, created_at=t("2024-01-01 00:00"))
            s.add(c)
            s.flush()
            m = MeterRow(meter_no=f"77000000000{n}", model_id=model.id, status="installed",
                         customer_id=c.id)
            s.add(m)
            s.flush()
            k = CardRow(uid=f"CAFE000{n}", card_type=1, status="active", meter_id=m.id,
                        customer_id=c.id, issued_by="clerk",
                        issued_at=t("2025-03-02 09:00") if acct == "900005"
                        else t("2024-01-01 00:00"))
            s.add(k)
            s.flush()
            cust[acct], meters[acct], cards[acct] = c, m, k
        receipts = {"S01": 0, "S02": 0}
        vends = []
        for seq, (acct, at, state, kind, amount, energy, debt, opr, st) in enumerate(VENDS, 1):
            receipts[st] += state != "failed"
            v = VendRow(customer_id=cust[acct].id, meter_id=meters[acct].id,
                        card_id=cards[acct].id, sequence=seq, amount=D(amount), energy=D(energy),
                        credit=D(energy), credit_unit=0, tariff="flat", unit_price=D("0.5"),
                        price_lines=[], operator=opr, station=st, state=state, kind=kind,
                        debt_recovered=D(debt), issued_at=t(at), created_at=t(at),
                        completed_at=t(at) if state in ("completed", "reversed") else None,
                        receipt_no=(f"{st}-{receipts[st]:08d}" if state != "failed" else None))
            s.add(v)
            vends.append(v)
        s.flush()
        for acct, kind, amount, opr, st, at in CASH:
            receipts[st] += 1
            s.add(CashEntryRow(kind=kind, amount=D(amount), customer_id=cust[acct].id,
                               operator=opr, station=st, receipt_no=f"{st}-{receipts[st]:08d}",
                               created_at=t(at),
                               vend_id=vends[10].id if kind == "refund" else None))
        s.add(ReversalRow(vend_id=vends[10].id, state="completed", refund=D("500.00"),
                          reason="wrong customer", operator="clerk", approved_by="admin",
                          station="S01", created_at=t("2025-03-06 12:55"),
                          completed_at=t("2025-03-06 13:00")))
        s.add(ReissueRow(customer_id=cust["900002"].id, old_card_id=cards["900002"].id,
                         new_uid="CAFE0002B", state="completed", fee=D("5.00"), reason="lost",
                         operator="bob", station="S02", created_at=t("2025-03-05 11:58"),
                         completed_at=t("2025-03-05 12:00")))
        s.add(CardRow(uid="CAFE0002B", card_type=1, status="active",
                      meter_id=meters["900002"].id, customer_id=cust["900002"].id,
                      issued_by="bob", issued_at=t("2025-03-05 12:00")))
        for acct, y, m, kwh, flags in CONSUMPTION:
            s.add(MonthlyConsumptionRow(customer_id=cust[acct].id, meter_id=meters[acct].id,
                                        year=y, month=m, kwh=None if kwh is None else D(kwh),
                                        purchased=D("0"), returns=1, source="history",
                                        quality="complete" if kwh else "missing", flags=flags))
        for code, y, m, supplied in MASTER:
            s.add(MasterMeterReadingRow(region_id=regions[code].id, year=y, month=m,
                                        supplied=D(supplied), entered_by="admin"))
        for n, (acct, at) in enumerate(RETURNS):
            s.add(MeterReturnRow(meter_id=meters[acct].id, customer_id=cust[acct].id,
                                 last_sequence=1, remaining=D("1"),
                                 cumulative_purchased=D("100"), cumulative_consumed=D("99"),
                                 consumed_since_previous=None, status=0, tamper_count=0,
                                 illegal_card_count=0, history_year=2025, history_month=3,
                                 history=[], written_at=t(at), read_at=t(at), read_by="clerk"))
        s.add(InspectionNoticeRow(customer_id=cust["900002"].id, meter_id=meters["900002"].id,
                                  reason="card of another meter", raised_by="bob", station="S02",
                                  raised_at=t("2025-03-10 10:00")))
        s.add(ServiceCardRow(uid="SVC00001", card_type=4, operator="tech", station="S01",
                             written_at=t("2025-03-12 10:00"),
                             targets=[meters["900001"].meter_no], parameters={}))
        s.add(ServiceCardRow(uid="SVC00002", card_type=4, operator="tech", station="S01",
                             written_at=t("2025-02-12 10:00"), targets="any", parameters={}))
        uow.commit()
        return {a: c.id for a, c in cust.items()}
