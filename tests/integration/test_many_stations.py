"""Eight sales stations, each its own process, selling at once against one PostgreSQL database,
partly to the same customers: no duplicate sequence, no duplicate receipt number, no lost sale."""

import time
from collections import Counter, defaultdict

from sqlalchemy import select

from dbmis_core.storage.models import StationRow, VendRow
from dbmis_core.testing.databases import new_database
from dbmis_core.testing.stations import prepare, start_station, station_app, station_codes

STATIONS, SALES = 8, 25


def test_eight_stations_sell_concurrently_on_postgres(tmp_path):
    url, drop = new_database("postgres", tmp_path)
    try:
        fleet = prepare(url, tmp_path, STATIONS, customers=24)
        shared = fleet[:4]  # every station also sells to these four customers
        start_at = time.time() + 6
        procs = [start_station(url, tmp_path, code, shared + fleet[4 + i * 2: 6 + i * 2], seed=i,
                               start_at=start_at, sales=SALES)
                 for i, code in enumerate(station_codes(STATIONS))]
        records = [rec for p in procs for rec in p.records(timeout=300)]
        assert len(records) == STATIONS * SALES

        app = station_app(url, tmp_path, "S01")
        with app.uow() as uow:
            vends = list(uow.session.scalars(select(VendRow)))
            stations = {s.code: s.next_receipt for s in uow.session.scalars(select(StationRow))}
            meter_last = {v.meter_id: v.meter.last_sequence for v in vends}
        app.close()

        ok = [r for r in records if r["ok"]]
        completed = [v for v in vends if v.state == "completed"]
        # no lost sale and no invented one: what the stations were told is what the database holds
        assert sorted(r["vend_id"] for r in ok) == sorted(v.id for v in completed)
        assert all(v.state in ("completed", "failed") for v in vends)
        # no duplicate sequence: each meter's live sales are 1..n, and the meter's counter is n
        by_meter = defaultdict(list)
        for v in completed:
            by_meter[v.meter_id].append(v.sequence)
        for meter_id, seqs in by_meter.items():
            assert sorted(seqs) == list(range(1, len(seqs) + 1))
            assert meter_last[meter_id] == len(seqs)
        # no duplicate receipt number; every station's numbers run 1..next-1 with none missing
        numbers = [v.receipt_no for v in vends if v.receipt_no]
        assert len(numbers) == len(set(numbers))
        per_station = defaultdict(list)
        for n in numbers:
            code, no = n.split("-")
            per_station[code].append(int(no))
        for code, nos in per_station.items():
            assert sorted(nos) == list(range(1, stations[code]))
        # the shared customers really were sold to by several stations, concurrently
        sellers = defaultdict(set)
        for r in ok:
            sellers[r["account"]].add(r["station"])
        assert sum(1 for a, _ in shared if len(sellers[a]) >= 2) >= 3
        refusals = Counter(r["kind"] for r in records if not r["ok"])
        assert set(refusals) <= {"BusinessRuleError"}, refusals
        assert len(ok) >= STATIONS * SALES // 2
    finally:
        drop()
