"""Clean-up: move old history into an archive database, and back again.

What moves (``older_than_years``, default ``backup.archive_after_years``):
- closed days only: day closings whose business day is older than the cut-off, with the sales and
  cash entries they cover, and the reversals and debt payments of those sales;
- meter returns read before the cut-off, except each meter's newest (sales compare against it);
- service-card log entries written before the cut-off.

A closing stays when anything that stays points into it (a later refund naming one of its sales),
so the main database never holds a reference to an archived row. Customers, meters, cards and
debts are master data and never move; the archive tables therefore carry no foreign keys.

The archive is a separate database (``backup.archive_url``; default a SQLite file next to the main
one) with the same columns. Rows are copied into it and committed first, then deleted from the main
database in one transaction; if that fails the copies are removed again, so a row is never lost and
never left in both. ``unarchive`` reverses it. Deleting sales is otherwise forbidden by database
triggers (migration 0004); only this transaction lifts them, and puts them back before it commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

import attrs
from sqlalchemy import Column, MetaData, Table, delete, func, insert, select, text
from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigError, ValidationError
from ..storage.models import (
    CashEntryRow,
    DayClosingRow,
    DebtPaymentRow,
    MeterReturnRow,
    ReversalRow,
    ServiceCardRow,
    VendRow,
)
from . import audit
from .auth import Operator, Perm

# parents first: the order rows go back into the main database (and the reverse of deletion)
MOVED = (DayClosingRow, VendRow, CashEntryRow, ReversalRow, DebtPaymentRow, MeterReturnRow,
         ServiceCardRow)
CHUNK = 2000


@attrs.frozen
class ArchiveResult:
    direction: str                 # "archived" or "restored"
    cutoff: date | None
    moved: dict                    # table -> rows moved
    kept_closings: tuple[int, ...]  # old closings kept because newer rows point into them


def archive_url(app) -> str:
    url = app.config.section("backup").get("archive_url")
    return url or f"sqlite:///{app.config.home / 'archive.sqlite3'}"


def _years(app, older_than_years) -> int:
    raw = older_than_years if older_than_years is not None else \
        app.config.section("backup").get("archive_after_years", 5)
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise ValidationError(f"years {raw!r} is not a whole number") from None
    if n < 1:
        raise ValidationError("only data older than at least 1 year can be archived")
    return n


def _archive_metadata() -> MetaData:
    """The moved tables with the same columns, keys and types, but no foreign keys or indexes."""
    md = MetaData()
    for model in MOVED:
        t = model.__table__
        Table(t.name, md, *(Column(c.name, c.type, primary_key=c.primary_key,
                                   nullable=c.nullable) for c in t.columns))
    return md


def _archive_engine(app) -> tuple[Engine, MetaData]:
    from ..storage.db import make_engine

    url = archive_url(app)
    if url == app.config.database_url:
        raise ConfigError("backup.archive_url must name another database than the main one")
    engine = make_engine(url)
    md = _archive_metadata()
    md.create_all(engine)
    return engine, md


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def _ids(conn: Connection, stmt) -> set[int]:
    return set(conn.execute(stmt).scalars())


def _plan(conn: Connection, cutoff: date, cutoff_at: datetime) -> tuple[dict, tuple[int, ...]]:
    """Ids to move per table, and old closings kept because staying rows point into them."""
    closings = _ids(conn, select(DayClosingRow.id).where(DayClosingRow.business_day < cutoff))
    kept: set[int] = set()
    while True:
        vends = _ids(conn, select(VendRow.id).where(VendRow.closing_id.in_(closings))) \
            if closings else set()
        cash = _ids(conn, select(CashEntryRow.id).where(CashEntryRow.closing_id.in_(closings))) \
            if closings else set()
        # a staying cash entry naming a moving sale keeps that sale's closing
        blockers = set()
        for chunk in _chunks(sorted(vends)):
            blockers |= _ids(conn, select(VendRow.closing_id).join(
                CashEntryRow, CashEntryRow.vend_id == VendRow.id).where(
                VendRow.id.in_(chunk),
                (CashEntryRow.closing_id.is_(None)) | CashEntryRow.closing_id.not_in(closings)))
        if not blockers:
            break
        closings -= blockers
        kept |= blockers
    plan = {DayClosingRow: closings, VendRow: vends, CashEntryRow: cash, ReversalRow: set(),
            DebtPaymentRow: set()}
    for chunk in _chunks(sorted(vends)):
        plan[ReversalRow] |= _ids(conn, select(ReversalRow.id).where(ReversalRow.vend_id.in_(chunk)))
        plan[DebtPaymentRow] |= _ids(conn, select(DebtPaymentRow.id)
                                     .where(DebtPaymentRow.vend_id.in_(chunk)))
    newest = (select(func.max(MeterReturnRow.written_at).label("w"), MeterReturnRow.meter_id)
              .group_by(MeterReturnRow.meter_id).subquery())
    plan[MeterReturnRow] = _ids(conn, select(MeterReturnRow.id).join(
        newest, newest.c.meter_id == MeterReturnRow.meter_id).where(
        MeterReturnRow.read_at < cutoff_at, MeterReturnRow.written_at < newest.c.w))
    plan[ServiceCardRow] = _ids(conn, select(ServiceCardRow.id)
                                .where(ServiceCardRow.written_at < cutoff_at))
    return plan, tuple(sorted(kept))


def _copy(src: Connection, dst: Connection, src_table: Table, dst_table: Table,
          ids: list[int]) -> None:
    for chunk in _chunks(ids):
        rows = [dict(r) for r in src.execute(select(src_table).where(src_table.c.id.in_(chunk)))
                .mappings()]
        dst.execute(delete(dst_table).where(dst_table.c.id.in_(chunk)))
        if rows:
            dst.execute(insert(dst_table), rows)


def _delete(conn: Connection, table: Table, ids: list[int]) -> None:
    for chunk in _chunks(ids):
        conn.execute(delete(table).where(table.c.id.in_(chunk)))


class _TriggersLifted:
    """Inside one main-database transaction: lift the no-delete triggers, put them back after."""

    TABLES = ("vends", "cash_entries")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.saved: list[tuple[str, str]] = []

    def __enter__(self) -> "_TriggersLifted":
        c = self.conn
        if c.dialect.name == "postgresql":
            rows = c.execute(text(
                "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relname IN ('vends', 'cash_entries') "
                "AND t.tgname LIKE '%delete%'")).all()
            for name, table in rows:
                c.execute(text(f'ALTER TABLE "{table}" DISABLE TRIGGER "{name}"'))
                self.saved.append((name, table))
        else:
            rows = c.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name IN ('vends', 'cash_entries') AND name LIKE '%delete%'")).all()
            for name, sql in rows:
                c.execute(text(f'DROP TRIGGER "{name}"'))
                self.saved.append((name, sql))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            return  # the transaction rolls back, triggers included
        c = self.conn
        for name, what in self.saved:
            if c.dialect.name == "postgresql":
                c.execute(text(f'ALTER TABLE "{what}" ENABLE TRIGGER "{name}"'))
            else:
                c.exec_driver_sql(what)


def run(app, op: Operator, older_than_years: int | None = None,
        now: datetime | None = None) -> ArchiveResult:
    """Move closed history older than ``older_than_years`` into the archive database."""
    op.require(Perm.BACKUP)
    years = _years(app, older_than_years)
    now = now or datetime.now(UTC)
    try:
        cutoff = now.date().replace(year=now.year - years)
    except ValueError:  # 29 February
        cutoff = now.date().replace(year=now.year - years, day=28)
    cutoff_at = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
    arch, amd = _archive_engine(app)
    try:
        with app.engine.connect() as main:
            plan, kept = _plan(main, cutoff, cutoff_at)
            main.rollback()
        moved = {m.__tablename__: len(ids) for m, ids in plan.items()}
        if not any(moved.values()):
            return ArchiveResult("archived", cutoff, moved, kept)
        with app.engine.connect() as main, arch.begin() as dst:
            for model in MOVED:
                _copy(main, dst, model.__table__, amd.tables[model.__tablename__],
                      sorted(plan[model]))
            main.rollback()
        try:
            with app.engine.begin() as main, _TriggersLifted(main):
                for model in reversed(MOVED):
                    _delete(main, model.__table__, sorted(plan[model]))
                audit.record(main, op, "archive", f"before {cutoff.isoformat()}",
                             {"moved": moved, "kept": list(kept)},
                             station=app.config.station_code)
        except BaseException:
            with arch.begin() as dst:
                for model in reversed(MOVED):
                    _delete(dst, amd.tables[model.__tablename__], sorted(plan[model]))
            raise
        return ArchiveResult("archived", cutoff, moved, kept)
    finally:
        arch.dispose()


def unarchive(app, op: Operator) -> ArchiveResult:
    """Move everything in the archive back into the main database."""
    op.require(Perm.BACKUP)
    arch, amd = _archive_engine(app)
    try:
        with arch.connect() as src:
            plan = {m: sorted(_ids(src, select(amd.tables[m.__tablename__].c.id))) for m in MOVED}
            src.rollback()
        moved = {m.__tablename__: len(ids) for m, ids in plan.items()}
        if not any(moved.values()):
            return ArchiveResult("restored", None, moved, ())
        with arch.connect() as src, app.engine.begin() as main:
            for model in MOVED:
                table = model.__table__
                present: set[int] = set()
                for chunk in _chunks(plan[model]):  # a row in both (an interrupted move) stays
                    present |= _ids(main, select(table.c.id).where(table.c.id.in_(chunk)))
                todo = [i for i in plan[model] if i not in present]
                for chunk in _chunks(todo):
                    rows = [dict(r) for r in src.execute(
                        select(amd.tables[model.__tablename__])
                        .where(amd.tables[model.__tablename__].c.id.in_(chunk))).mappings()]
                    main.execute(insert(table), rows)
            audit.record(main, op, "archive.restore", "archive", {"moved": moved},
                         station=app.config.station_code)
            src.rollback()
        with arch.begin() as dst:
            for model in reversed(MOVED):
                _delete(dst, amd.tables[model.__tablename__], plan[model])
        return ArchiveResult("restored", None, moved, ())
    finally:
        arch.dispose()


def status(app, op: Operator) -> dict:
    """Rows per table in the archive database, and where it is."""
    op.require(Perm.BACKUP)
    arch, amd = _archive_engine(app)
    try:
        with arch.connect() as c:
            counts = {name: c.execute(select(func.count()).select_from(t)).scalar_one()
                      for name, t in amd.tables.items()}
    finally:
        arch.dispose()
    return {"archive": archive_url(app), "rows": counts}
