"""Clean-up into the archive database and back, on both backends: closed days only, references
kept whole, and a round trip that leaves every row, count and sum as it was."""

from __future__ import annotations

import hashlib
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from dbmis_core.errors import PermissionDenied, ValidationError
from dbmis_core.services import archive, backup, cards, dayclose, vending
from dbmis_core.testing.databases import new_database
from dbmis_core.storage.models import (
    CashEntryRow,
    DayClosingRow,
    MeterReturnRow,
    ServiceCardRow,
    VendRow,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.generate import generate  # noqa: E402

OLD_END = datetime(2018, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _close_old_days(app) -> list[int]:
    """Day closings for the generated (old) sales, one per operator, station and day, each with a
    card-fee cash entry; returns the closing ids."""
    with app.engine.begin() as c:
        rows = c.execute(select(VendRow.id, VendRow.operator, VendRow.station, VendRow.created_at,
                                VendRow.amount).where(VendRow.closing_id.is_(None),
                                                      VendRow.created_at < OLD_END)).all()
        days = defaultdict(list)
        for r in rows:
            days[(r.operator, r.station, r.created_at.date())].append(r)
        ids = []
        for (operator, station, day), vends in sorted(days.items()):
            total = sum((v.amount for v in vends), Decimal("0"))
            at = datetime(day.year, day.month, day.day, 20, tzinfo=UTC)
            cid = c.execute(insert(DayClosingRow).returning(DayClosingRow.id), [dict(
                operator=operator, station=station, business_day=day, sales_count=len(vends),
                expected=total + 5, counted=total + 5, discrepancy=Decimal("0"), summary={},
                note="", closed_by=operator, closed_at=at)]).scalar_one()
            c.execute(update(VendRow).where(VendRow.id.in_([v.id for v in vends]))
                      .values(closing_id=cid))
            c.execute(insert(CashEntryRow), [dict(
                kind="card_fee", amount=Decimal("5.00"), operator=operator, station=station,
                receipt_no=None, note="", created_at=at, closing_id=cid)])
            ids.append(cid)
        c.execute(insert(ServiceCardRow), [dict(uid="OLDSVC01", card_type=3, operator="tech",
                                                station="S01", written_at=OLD_END - timedelta(days=40),
                                                targets="any", parameters={}, key_version=1)])
    return ids


def _fingerprint(conn, tables) -> dict:
    """Per table: row count, sums of money columns, and a hash over every row in id order."""
    out = {}
    for model in tables:
        t = model.__table__
        rows = conn.execute(select(t).order_by(t.c.id)).all()
        digest = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
        sums = {c: conn.execute(select(func.sum(t.c[c]))).scalar()
                for c in ("amount", "energy", "expected", "remaining") if c in t.c}
        out[t.name] = (len(rows), sums, digest)
    return out


@pytest.fixture
def history(demo, admin):
    generate(demo.engine, 12, 2, seed=3, end=OLD_END)
    closings = _close_old_days(demo)
    demo.config.data["sales"]["refuse_unloaded"] = False
    demo.reader.new_card()
    cards.issue_user_card(demo, admin, "100001")
    recent = vending.vend(demo, admin, "100001", "30.00")
    dayclose.close(demo, admin, counted=recent.amount)
    return closings


@pytest.fixture
def archive_db(demo, tmp_path):
    """On PostgreSQL the archive is a second PostgreSQL database; on SQLite the default file."""
    if demo.engine.dialect.name != "postgresql":
        yield "archive.sqlite3"
        return
    url, drop = new_database("postgres", tmp_path)
    demo.config.data["backup"]["archive_url"] = url
    yield url.rsplit("/", 1)[1]
    drop()


def test_archive_round_trip_leaves_everything_as_it_was(demo, admin, history, archive_db):
    with demo.engine.connect() as c:
        before = _fingerprint(c, archive.MOVED)
        old_vends = c.scalar(select(func.count()).select_from(VendRow)
                             .where(VendRow.created_at < OLD_END))
        meters_with_returns = c.scalar(select(func.count(func.distinct(MeterReturnRow.meter_id))))
    assert old_vends > 20

    done = archive.run(demo, admin, older_than_years=5, now=NOW)
    assert done.moved["vends"] == old_vends
    assert done.moved["day_closings"] == len(history)
    assert done.moved["cash_entries"] == len(history)
    assert done.moved["service_cards"] == 1 and done.moved["meter_returns"] > 0
    with demo.engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(VendRow)) == 1  # the recent sale stays
        assert c.scalar(select(func.count()).select_from(DayClosingRow)) == 1
        # each meter keeps its newest return, which the next sale compares against
        assert c.scalar(select(func.count(func.distinct(MeterReturnRow.meter_id)))) == \
            meters_with_returns
    st = archive.status(demo, admin)
    assert st["rows"]["vends"] == old_vends and st["archive"].endswith(archive_db)
    assert backup.verify(demo, admin, backup.take(demo, admin).file).ok  # still consistent

    # the no-delete triggers are back in force after the move
    with pytest.raises(DBAPIError):
        with demo.engine.begin() as c:
            c.execute(delete(VendRow))

    back = archive.unarchive(demo, admin)
    assert back.moved == done.moved
    with demo.engine.connect() as c:
        assert _fingerprint(c, archive.MOVED) == before
    assert all(n == 0 for n in archive.status(demo, admin)["rows"].values())


def test_a_closing_referenced_by_a_later_row_stays(demo, admin, history):
    with demo.engine.begin() as c:
        first = c.execute(select(VendRow.id, VendRow.closing_id).where(VendRow.closing_id == history[0])
                          .limit(1)).one()
        c.execute(insert(CashEntryRow), [dict(kind="refund", amount=Decimal("-1.00"), vend_id=first.id,
                                              operator="clerk", station="S01", note="",
                                              created_at=NOW)])  # still open: not archived
        in_first = c.scalar(select(func.count()).select_from(VendRow)
                            .where(VendRow.closing_id == history[0]))
    done = archive.run(demo, admin, older_than_years=5, now=NOW)
    assert done.kept_closings == (history[0],)
    assert done.moved["day_closings"] == len(history) - 1
    with demo.engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(VendRow)
                        .where(VendRow.closing_id == history[0])) == in_first
    archive.unarchive(demo, admin)


def test_nothing_recent_and_nothing_open_moves(demo, admin, history):
    assert not any(archive.run(demo, admin, older_than_years=20, now=NOW).moved.values())
    generate(demo.engine, 5, 1, seed=9, end=OLD_END)  # old sales whose days were never closed
    open_old = select(func.count()).select_from(VendRow).where(VendRow.closing_id.is_(None),
                                                               VendRow.created_at < OLD_END)
    with demo.engine.connect() as c:
        n_open = c.scalar(open_old)
    assert n_open > 0
    done = archive.run(demo, admin, older_than_years=5, now=NOW)
    assert done.moved["day_closings"] == len(history)
    with demo.engine.connect() as c:
        assert c.scalar(open_old) == n_open
    with pytest.raises(ValidationError):
        archive.run(demo, admin, older_than_years=0)
    with pytest.raises(PermissionDenied):
        archive.run(demo, demo.login("clerk", "clerk-demo-1"), older_than_years=5)
