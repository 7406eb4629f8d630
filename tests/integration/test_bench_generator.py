"""The synthetic data generator writes data the services could have written, on both backends."""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from dbmis_core.money import energy_for
from dbmis_core.storage.db import make_engine
from dbmis_core.storage.models import (
    CardRow,
    CustomerRow,
    MeterReturnRow,
    MeterRow,
    RegionRow,
    StationRow,
    VendRow,
)
from dbmis_core.testing.databases import new_database

# bench/ is a top-level folder, not an installed package; plain `pytest` leaves the root off sys.path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.generate import generate  # noqa: E402

END, LATER = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    url, drop = new_database(request.param, tmp_path)
    yield url
    drop()


def test_generated_history_is_consistent(url):
    res = generate(url, 50, 3, seed=7, end=END)
    generate(url, 5, 1, seed=8, end=LATER)  # a later run adds to the first
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _check(conn, res)
            # ids were assigned by the generator; the database's own numbering must continue after them
            conn.execute(insert(CustomerRow).values(account_no="4242", name="After",
                                                    category="residential"))
    finally:
        engine.dispose()


def _check(conn, res) -> None:
    def count(model) -> int:
        return conn.scalar(select(func.count()).select_from(model))

    assert res.rows["customers"] == res.rows["meters"] == res.rows["cards"] == 50
    assert count(CustomerRow) == count(MeterRow) == count(CardRow) == 55
    assert 150 <= res.rows["vends"] <= 450 and res.rows["meter_returns"] == 150
    assert count(MeterReturnRow) == 155
    district_levels = conn.scalars(select(RegionRow.level).join(
        CustomerRow, CustomerRow.district_id == RegionRow.id).distinct()).all()
    assert district_levels == ["district"]

    last_seq = dict(conn.execute(select(MeterRow.id, MeterRow.last_sequence)).all())
    vends = conn.execute(select(VendRow.__table__).order_by(VendRow.meter_id, VendRow.sequence)).all()
    seqs, credit_upto = defaultdict(list), defaultdict(dict)
    for v in vends:
        seqs[v.meter_id].append(v.sequence)
        credit_upto[v.meter_id][v.sequence] = credit_upto[v.meter_id].get(v.sequence - 1, 0) + v.credit
        assert v.state == "completed" and v.credit == v.energy == energy_for(v.amount, v.unit_price)
        assert v.issued_at.tzinfo is not None and v.issued_at < v.completed_at < LATER
    assert set(seqs) == set(last_seq)
    for meter_id, s in seqs.items():
        assert s == list(range(1, len(s) + 1)) and last_seq[meter_id] == len(s)

    receipts = [v.receipt_no for v in vends]
    assert len(set(receipts)) == len(receipts)
    by_station = defaultdict(list)
    for v in sorted(vends, key=lambda v: v.receipt_no):
        by_station[v.station].append((int(v.receipt_no.rsplit("-", 1)[1]), v.completed_at))
    next_receipt = dict(conn.execute(select(StationRow.code, StationRow.next_receipt)).all())
    for station, numbered in by_station.items():
        assert [n for n, _ in numbered] == list(range(1, len(numbered) + 1))
        assert [t for _, t in numbered] == sorted(t for _, t in numbered)  # numbered in time order
        assert next_receipt[station] == len(numbered) + 1

    returns = conn.execute(select(MeterReturnRow.__table__).order_by(MeterReturnRow.meter_id,
                                                                     MeterReturnRow.written_at)).all()
    previous = {}
    for r in returns:
        assert r.remaining >= 0 and r.remaining == r.cumulative_purchased - r.cumulative_consumed
        assert r.cumulative_purchased == credit_upto[r.meter_id][r.last_sequence]
        assert r.read_at >= r.written_at
        before = previous.get(r.meter_id)
        if before is not None:
            assert r.cumulative_consumed >= before.cumulative_consumed
            assert r.consumed_since_previous == r.cumulative_consumed - before.cumulative_consumed
            assert r.last_sequence > before.last_sequence
        previous[r.meter_id] = r
