"""Synthetic utility data: regions, customers, meters, cards, completed vends and monthly meter returns.

    python -m bench.generate --url sqlite:///big.sqlite3 --customers 100000 --months 12 --seed 1

Rows go in through SQLAlchemy Core executemany of dicts in chunks, one transaction per month, because
ORM objects cost several times more per row. Ids are assigned here, after the current maximum, so
child rows need no read-back; PostgreSQL sequences are moved past them at the end. History is
generated month by month over all customers, so vend ids and receipt numbers per station follow time
order as at a real counter; the rows are then inserted in meter order, so the meter- and
customer-keyed indexes are updated in one sweep instead of at random pages (about 40% less time per
month at 100k customers on SQLite). The data is what the services would have written: per meter
sequences 1..k, credit = energy bought at the category's flat price, cumulative purchased/consumed
that never leave negative credit, and station receipt counters that continue after the generated
receipts.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from calendar import monthrange
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
from sqlalchemy import event, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine

from dbmis_core.domain import CardStatus, CardType, CreditUnit, MeterReturn, MeterStatus, VendState
from dbmis_core.money import CENT, energy_for
from dbmis_core.storage.db import make_engine, upgrade
from dbmis_core.storage.models import (
    CardRow,
    CustomerRow,
    MeterModelRow,
    MeterReturnRow,
    MeterRow,
    RegionRow,
    StationRow,
    UtilityRow,
    VendRow,
)
from dbmis_tariffs.flat import DEFAULT_PRICES

# category, share of customers, monthly kWh range, purchase step (money), weights of 1/2/3 vends a month
CATEGORIES = (
    ("residential", 0.86, (80, 450), 5, (0.50, 0.35, 0.15)),
    ("commercial", 0.09, (400, 3000), 10, (0.20, 0.40, 0.40)),
    ("industrial", 0.02, (2000, 6000), 50, (0.0, 0.40, 0.60)),
    ("agricultural", 0.03, (150, 1500), 10, (0.30, 0.40, 0.30)),
)
MODELS = {"DDSY-1P": (1600, 1, Decimal("40")), "DTSY-3P": (400, 3, Decimal("60"))}
STATIONS = (("S01", "Main counter"), ("S02", "North counter"), ("S03", "South counter"))
REGIONS, LINES_PER_REGION, CUSTOMERS_PER_DISTRICT, MIN_DISTRICTS = 3, 4, 200, 6
ACCOUNT_BASE, METER_BASE, CARD_BASE = 80_000_000, 900_000_000_000, 0xB000_0000_0000_0000
MAX_AMOUNT = 5000
SQLITE_CACHE_KIB = 64 * 1024
# enum lookups hoisted out of the per-row loops
KWH, USER_CARD, COMPLETED_STATE = int(CreditUnit.KWH), int(CardType.USER), VendState.COMPLETED.value
INSTALLED, ACTIVE = MeterStatus.INSTALLED.value, CardStatus.ACTIVE.value
# a sale takes a few seconds at the counter: pending row, card write, read-back, receipt
CREATED, WRITTEN, COMPLETED = timedelta(milliseconds=40), timedelta(seconds=2), timedelta(seconds=2.3)
FIRST = ("Li", "Maria", "Ahmed", "Chen", "Anna", "Jose", "Fatima", "Ivan", "Grace", "Kofi", "Mei",
         "Pedro", "Aisha", "Tom", "Nadia", "Ravi", "Olga", "Samuel", "Yuki", "Leila")
LAST = ("Wei", "Santos", "Khan", "Jing", "Novak", "Garcia", "Okafor", "Petrov", "Mensah", "Tanaka",
        "Silva", "Haddad", "Kumar", "Brown", "Nguyen", "Rossi", "Adeyemi", "Larsen", "Ortiz", "Wang")
STREETS = ("Elm Street", "Oak Lane", "Quay Road", "Mill Road", "Station Road", "Church Street",
           "River Walk", "Market Square", "Hill View", "Orchard Way")
BUSINESS = {"commercial": "Trading Ltd", "industrial": "Works", "agricultural": "Farm"}


@attrs.frozen
class Result:
    rows: dict[str, int]
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0


class _Meter:
    """One customer's meter while its history is generated."""

    __slots__ = ("cid", "mid", "kid", "category", "price", "base", "step", "station", "counts",
                 "seq", "purchased", "consumed", "remaining", "last_credit", "history", "pending")

    def __init__(self, cid, mid, kid, category, price, base, step, station, counts) -> None:
        self.cid, self.mid, self.kid, self.category = cid, mid, kid, category
        self.price, self.base, self.step, self.station, self.counts = price, base, step, station, counts
        self.seq = 0
        self.purchased = self.consumed = self.remaining = self.last_credit = Decimal("0.00")
        self.history = ["0.00"] * 12
        self.pending = None


def _batched(rows: Iterable[dict], n: int) -> Iterator[list[dict]]:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(conn: Connection, table, rows: Iterable[dict], chunk: int) -> int:
    """executemany in chunks: a chunk's parameters are built in memory, a month's rows are not."""
    n, stmt = 0, insert(table)
    for batch in _batched(rows, chunk):
        conn.execute(stmt, batch)
        n += len(batch)
    return n


def _month_starts(end: datetime, months: int) -> list[datetime]:
    y, m = end.year, end.month
    starts = []
    for _ in range(months):
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        starts.append(datetime(y, m, 1, tzinfo=UTC))
    return starts[::-1]


def _season(category: str, month: int) -> float:
    """Demand factor: irrigation peaks in July; homes and shops peak in winter, again in summer."""
    x = 2 * math.pi * (month - 1) / 12
    if category == "agricultural":
        return 1 + 0.6 * math.cos(x - math.pi)
    if category == "industrial":
        return 1 + 0.05 * math.cos(x)
    return 1 + 0.2 * math.cos(x) + 0.1 * math.cos(2 * x)


def _split(total: float, k: int, step: int, rng: random.Random) -> list[Decimal]:
    """``total`` money in ``k`` purchases, each a round multiple of ``step`` within the sales limits."""
    weights = [rng.random() + 0.3 for _ in range(k)]
    s = sum(weights)
    return [Decimal(min(MAX_AMOUNT, max(step, round(total * w / s / step) * step))).quantize(CENT)
            for w in weights]


def _get_or_create(conn: Connection, model, key: str, values: dict) -> int:
    table = model.__table__
    found = conn.scalar(select(table.c.id).where(table.c[key] == values[key]))
    if found is not None:
        return found
    return conn.execute(insert(table).values(**values).returning(table.c.id)).scalar_one()


def _reference(conn: Connection, customers: int) -> tuple[dict, dict, list[tuple[int, int]]]:
    """Utility, stations, meter models and the region tree; kept if already there."""
    if conn.scalar(select(func.count()).select_from(UtilityRow)) == 0:
        conn.execute(insert(UtilityRow).values(code="BENCH", name="Synthetic Power Supply",
                                               numeric_code=1))
    stations = {}
    for code, name in STATIONS:
        _get_or_create(conn, StationRow, "code", {"code": code, "name": name, "next_receipt": 1})
        stations[code] = conn.scalar(select(StationRow.next_receipt).where(StationRow.code == code))
    models = {code: _get_or_create(conn, MeterModelRow, "code",
                                   {"code": code, "constant": c, "phases": p, "rated_amps": a,
                                    "credit_unit": int(CreditUnit.KWH)})
              for code, (c, p, a) in MODELS.items()}
    lines = []
    for r in range(1, REGIONS + 1):
        rid = _get_or_create(conn, RegionRow, "code", {"code": f"BR{r}", "name": f"Region {r}",
                                                       "level": "region", "parent_id": None})
        for ln in range(1, LINES_PER_REGION + 1):
            lines.append((r - 1, f"BR{r}-L{ln}", _get_or_create(
                conn, RegionRow, "code", {"code": f"BR{r}-L{ln}", "name": f"Line 10kV {r}-{ln}",
                                          "level": "line", "parent_id": rid})))
    districts = []
    for t in range(max(MIN_DISTRICTS, math.ceil(customers / CUSTOMERS_PER_DISTRICT))):
        region, line_code, line_id = lines[t % len(lines)]
        code = f"{line_code}-T{t // len(lines) + 1:03d}"
        districts.append((region, _get_or_create(
            conn, RegionRow, "code", {"code": code, "name": f"Transformer district {code}",
                                      "level": "district", "parent_id": line_id})))
    return stations, models, districts


def _big_cache(dbapi_conn, _record) -> None:
    """Fewer page re-reads and spills within a month's transaction (the default cache is 2 MB)."""
    dbapi_conn.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")


def _next_id(conn: Connection, model) -> int:
    return (conn.scalar(select(func.max(model.__table__.c.id))) or 0) + 1


def generate(url_or_engine: str | Engine, customers: int, months: int, seed: int = 0, *,
             end: datetime | None = None, chunk: int = 5000,
             log: Callable[[str], None] | None = None) -> Result:
    """Add ``customers`` customers with ``months`` months of sales history ending before ``end``
    (default: the start of the current month, UTC). Returns the rows written per table."""
    if customers < 1 or months < 1:
        raise ValueError("customers and months must be at least 1")
    log = log or (lambda _msg: None)
    engine = url_or_engine
    if isinstance(url_or_engine, str):
        engine = make_engine(url_or_engine)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _big_cache)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    upgrade(engine)
    with engine.begin() as conn:
        stations, models, districts = _reference(conn, customers)
        cbase, mbase, kbase, vbase = (_next_id(conn, m)
                                      for m in (CustomerRow, MeterRow, CardRow, VendRow))
    end = end or datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = _month_starts(end, months)
    codes = list(stations)
    rows = dict.fromkeys(("customers", "meters", "cards", "vends", "meter_returns"), 0)

    meters: list[_Meter] = []
    with engine.begin() as conn:
        for batch in _batched(_people(rng, customers, months, starts[0], districts, models,
                                      len(codes), (cbase, mbase, kbase)), chunk):
            for table, i in ((CustomerRow, 1), (MeterRow, 2), (CardRow, 3)):
                conn.execute(insert(table.__table__), [b[i] for b in batch])
            meters.extend(b[0] for b in batch)
    rows["customers"] = rows["meters"] = rows["cards"] = len(meters)
    log(f"{customers} customers, meters and cards in {time.perf_counter() - t0:.1f} s")

    for mi, start in enumerate(starts):
        t1 = time.perf_counter()
        vends, returns = _month(meters, mi, start, rng)
        vends = _number(vends, codes, stations, vbase)
        vbase += len(vends)
        with engine.begin() as conn:
            rows["vends"] += _insert(conn, VendRow.__table__, map(_vend_row, vends), chunk)
            rows["meter_returns"] += _insert(conn, MeterReturnRow.__table__,
                                             (_return_row(*r) for r in returns), chunk)
        log(f"{start:%Y-%m}: {len(vends)} vends, {len(returns)} returns in "
            f"{time.perf_counter() - t1:.1f} s")
    last = (_return_row(m, m.pending, min(m.pending[-1] + timedelta(days=3), end)) for m in meters)
    with engine.begin() as conn:
        rows["meter_returns"] += _insert(conn, MeterReturnRow.__table__, last, chunk)
        for code, n in stations.items():
            conn.execute(update(StationRow).where(StationRow.code == code).values(next_receipt=n))
        if engine.dialect.name == "postgresql":
            for table in ("customers", "meters", "cards", "vends"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
    if isinstance(url_or_engine, str):
        engine.dispose()
    return Result(rows, time.perf_counter() - t0)


def _people(rng: random.Random, customers: int, months: int, before: datetime, districts, models,
            n_stations: int, bases: tuple[int, int, int]) -> Iterator[tuple[_Meter, dict, dict, dict]]:
    """Customers with their installed meter and active user card. Each customer's number of
    purchases per month is drawn now, so the meter row carries its final last_sequence."""
    names, shares = [c[0] for c in CATEGORIES], [c[1] for c in CATEGORIES]
    by_name = {c[0]: c for c in CATEGORIES}
    for i in range(customers):
        category = rng.choices(names, shares)[0]
        _, _, (lo, hi), step, weights = by_name[category]
        region, district_id = districts[rng.randrange(len(districts))]
        station = region % n_stations if rng.random() < 0.8 else rng.randrange(n_stations)
        counts = bytes(rng.choices((1, 2, 3), weights, k=months))
        m = _Meter(bases[0] + i, bases[1] + i, bases[2] + i, category, DEFAULT_PRICES[category],
                   rng.uniform(lo, hi), step, station, counts)
        created = before - timedelta(days=rng.randint(20, 1500), seconds=rng.randrange(86400))
        first, last = rng.choice(FIRST), rng.choice(LAST)
        yield m, {
            "id": m.cid, "account_no": str(ACCOUNT_BASE + m.cid),
            "name": f"{first} {last}" if category == "residential" else f"{last} {BUSINESS[category]}",
            "address": f"{rng.randint(1, 250)} {rng.choice(STREETS)}",
            "phone": f"555-{rng.randrange(10000):04d}", "category": category,
            "district_id": district_id, "created_at": created}, {
            "id": m.mid, "meter_no": str(METER_BASE + m.mid),
            "model_id": models["DDSY-1P" if category == "residential" else "DTSY-3P"],
            "status": INSTALLED, "customer_id": m.cid, "last_sequence": sum(counts)}, {
            "id": m.kid, "uid": f"{CARD_BASE + m.kid:016X}", "card_type": USER_CARD, "status": ACTIVE,
            "meter_id": m.mid, "customer_id": m.cid, "key_version": 1, "issued_by": "clerk",
            "issued_at": created + timedelta(days=rng.randint(0, 10))}


def _month(meters: list[_Meter], mi: int, start: datetime, rng: random.Random):
    """One month for every meter: its purchases, and the return data loaded after the last one.

    The previous month's return is emitted now, read when the card comes back for this month's first
    purchase (that is when a station sees it)."""
    days_in_month = monthrange(start.year, start.month)[1]
    month_end = start + timedelta(days=days_in_month) - timedelta(minutes=1)
    vends, returns = [], []
    for m in meters:
        k = m.counts[mi]
        demand = m.base * _season(m.category, start.month) * min(1.5, max(0.6, rng.gauss(1, 0.12)))
        want_kwh = max(demand * rng.uniform(0.95, 1.35) - float(m.remaining), demand * 0.2)
        bought = Decimal("0.00")
        issued = first_issued = None
        days = set()
        while len(days) < k:
            days.add(rng.randrange(days_in_month))
        for day, amount in zip(sorted(days),
                               _split(want_kwh * float(m.price), k, m.step, rng)):
            issued = start + timedelta(days=day, seconds=rng.randrange(8 * 3600, 18 * 3600))
            energy = energy_for(amount, m.price)
            m.seq += 1
            bought += energy
            m.last_credit = energy
            vends.append((issued, m.station, m, m.seq, amount, energy))
            first_issued = first_issued or issued
        if m.pending is not None:
            returns.append((m, m.pending, first_issued))
        written = min(issued + timedelta(minutes=rng.randint(30, 30 * 60)), month_end)
        available = m.remaining + bought
        used = min(Decimal(f"{demand:.2f}"), available)
        m.purchased += bought
        m.consumed += used
        m.remaining = available - used
        m.history = [str(used)] + m.history[:11]
        status = MeterReturn.RELAY_OPEN if m.remaining <= 0 else 0
        if m.remaining <= m.last_credit / 10:
            status |= MeterReturn.LOW_CREDIT
        m.pending = (m.seq, m.remaining, m.purchased, m.consumed, used, status, written.year,
                     written.month, m.history, written.replace(microsecond=0))
    return vends, returns


def _return_row(m: _Meter, p: tuple, read_at: datetime) -> dict:
    seq, remaining, purchased, consumed, used, status, year, month, history, written = p
    return {"meter_id": m.mid, "customer_id": m.cid, "last_sequence": seq, "remaining": remaining,
            "cumulative_purchased": purchased, "cumulative_consumed": consumed,
            "consumed_since_previous": used, "status": status, "tamper_count": 0,
            "illegal_card_count": 0, "history_year": year, "history_month": month,
            "history": history, "written_at": written, "read_at": read_at, "read_by": "clerk"}


def _number(vends: list[tuple], codes: list[str], stations: dict[str, int],
            first_id: int) -> list[tuple]:
    """Ids and receipt numbers in time order (gap-free per station), then the rows in meter order:
    the meter- and customer-keyed indexes then grow in key order instead of at random places."""
    vends.sort(key=lambda v: v[0])
    numbered = []
    for vid, (issued, st, m, seq, amount, energy) in enumerate(vends, first_id):
        code = codes[st]
        n = stations[code]
        stations[code] = n + 1
        numbered.append((m.mid, seq, vid, f"{code}-{n:08d}", code, issued, m, amount, energy))
    numbered.sort(key=lambda v: (v[0], v[1]))
    return numbered


def _vend_row(v: tuple) -> dict:
    _, seq, vid, receipt, code, issued, m, amount, energy = v
    return {"id": vid, "customer_id": m.cid, "meter_id": m.mid, "card_id": m.kid, "sequence": seq,
            "amount": amount, "energy": energy, "credit": energy, "credit_unit": KWH,
            "tariff": "flat", "unit_price": m.price, "price_lines": [["Energy charge", str(amount)]],
            "operator": "clerk", "station": code, "state": COMPLETED_STATE, "issued_at": issued,
            "created_at": issued + CREATED, "written_at": issued + WRITTEN,
            "completed_at": issued + COMPLETED, "receipt_no": receipt, "note": ""}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="database URL (sqlite:///file or postgresql://...)")
    p.add_argument("--customers", type=int, required=True)
    p.add_argument("--months", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=5000, help="rows per executemany call")
    a = p.parse_args(argv)
    res = generate(a.url, a.customers, a.months, a.seed, chunk=a.chunk,
                   log=lambda msg: print(msg, file=sys.stderr, flush=True))
    for table, n in res.rows.items():
        print(f"{table:>14}: {n:>10,} rows")
    print(f"{'total':>14}: {res.total:>10,} rows in {res.seconds:.1f} s "
          f"= {res.rows_per_second:,.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
