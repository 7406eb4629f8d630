"""Storage on a real SQLite file and on PostgreSQL: migrations, Decimal, aware times, constraints."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import bindparam, inspect, select, update
from sqlalchemy.exc import IntegrityError, StatementError

from dbmis_core.domain import Customer
from dbmis_core.errors import StorageError, ValidationError
from dbmis_core.services import registry
from dbmis_core.storage import db
from dbmis_core.storage.models import SEARCH_INDEX_OBJECTS, Base, MeterReturnRow, OperatorRow
from dbmis_core.storage.precompiled import Precompiled


def test_schema_is_at_head_and_matches_the_models(app):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    current, head = db.schema_status(app.engine)
    newest = max(f.name[:4] for f in (Path(db.__file__).parent / "migrations" / "versions").glob("0*.py"))
    assert current == head == newest
    tables = set(inspect(app.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with app.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, _type, _parent: name not in SEARCH_INDEX_OBJECTS})
        assert compare_metadata(ctx, Base.metadata) == []


def test_migrations_go_down_and_up_again(app):
    with app.engine.begin() as conn:
        command.downgrade(db._alembic_config(conn), "base")
    assert db.schema_status(app.engine)[0] is None
    with pytest.raises(StorageError, match="not initialised"):
        db.check_schema(app.engine)
    db.upgrade(app.engine)
    db.check_schema(app.engine)


def test_times_come_back_aware_in_utc_and_naive_is_refused(app):
    plus8 = timezone(timedelta(hours=8))
    with app.uow() as uow:
        row = uow.session.scalar(select(OperatorRow))
        row.created_at = datetime(2026, 1, 1, 8, 0, tzinfo=plus8)
        uow.commit()
    with app.uow() as uow:
        got = uow.session.scalar(select(OperatorRow)).created_at
    assert got.tzinfo is not None and got == datetime(2026, 1, 1, 0, 0, tzinfo=timezone.utc)
    with app.uow() as uow:
        uow.session.scalar(select(OperatorRow)).created_at = datetime(2026, 1, 1)
        with pytest.raises(StatementError, match="timezone-aware"):
            uow.commit()


def test_money_and_energy_stay_exact(demo, admin):
    with demo.uow() as uow:
        c = registry.get_customer_row(uow, "100001")
        m = registry.current_meter(uow, c)
        uow.session.add(MeterReturnRow(
            meter_id=m.id, customer_id=c.id, last_sequence=1, remaining=Decimal("0.01"),
            cumulative_purchased=Decimal("999999999999.99"), cumulative_consumed=Decimal("0.07"),
            consumed_since_previous=Decimal("123456789012.34"), status=0, tamper_count=0,
            illegal_card_count=0, history_year=2026, history_month=11, history=["1.10"],
            written_at=datetime(2026, 11, 1, tzinfo=timezone.utc), read_by="admin"))
        uow.commit()
    with demo.uow() as uow:
        r = uow.session.scalar(select(MeterReturnRow))
    assert r.cumulative_purchased == Decimal("999999999999.99")
    assert r.consumed_since_previous == Decimal("123456789012.34")
    assert isinstance(r.remaining, Decimal) and r.remaining == Decimal("0.01")


def test_duplicate_account_is_refused_and_changes_nothing(demo, admin):
    with demo.uow() as uow:
        with pytest.raises(ValidationError, match="already in use"):
            registry.add_customer(uow, admin, Customer("100001", "Someone Else"))
    with demo.uow() as uow:
        assert registry.get_customer_row(uow, "100001").name == "Li Wei"


def test_database_enforces_unique_accounts_too(demo):
    from dbmis_core.storage.models import CustomerRow

    with demo.uow() as uow:
        uow.session.add(CustomerRow(account_no="100001", name="dup", category="residential"))
        with pytest.raises(IntegrityError):
            uow.commit()


def test_unreachable_database_is_a_clear_error(tmp_path):
    engine = db.make_engine("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StorageError, match="cannot reach the database"):
        db.schema_status(engine)


def test_relaxed_units_of_work_skip_the_flush_and_durable_ones_do_not(app):
    """Durable transactions wait for the disk; relaxed ones (after a verified card write) do not."""
    from sqlalchemy import text

    def setting(durable):
        with app.uow(durable=durable) as uow:
            conn = uow.session.connection()
            if conn.dialect.name == "sqlite":
                return {0: "off", 1: "normal", 2: "full"}[conn.exec_driver_sql(
                    "PRAGMA synchronous").scalar()]
            return conn.execute(text("SHOW synchronous_commit")).scalar()

    assert setting(True) in ("full", "on")
    assert setting(False) in ("normal", "off")
    assert setting(True) in ("full", "on")  # the connection goes back to durable
    with app.relaxed_engine.connect() as conn:  # the sale's COMPLETED update
        got = (conn.exec_driver_sql("PRAGMA synchronous").scalar()
               if conn.dialect.name == "sqlite" else conn.execute(
                   text("SHOW synchronous_commit")).scalar())
    assert got in (1, "off")
    rename = Precompiled(update(OperatorRow).values(full_name=bindparam("name")))
    assert app.relaxed_execute(rename, {"name": "Autocommitted"}) == 1
    with app.uow() as uow:
        assert uow.session.scalar(select(OperatorRow)).full_name == "Autocommitted"
    with app.uow(durable=False) as uow:
        uow.session.scalar(select(OperatorRow)).full_name = "Relaxed"
        uow.commit()
    with app.uow() as uow:
        assert uow.session.scalar(select(OperatorRow)).full_name == "Relaxed"


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite has no server connection to lose
def test_a_connection_the_server_dropped_while_idle_is_replaced(app, monkeypatch):
    """Pooled connections are checked only after sitting idle; a dead one is replaced, not used."""
    import psycopg
    from sqlalchemy import text

    from dbmis_core.testing.databases import PG_ADMIN_URL

    with app.uow() as uow:
        pid = uow.session.execute(text("SELECT pg_backend_pid()")).scalar()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    with app.uow() as uow:
        assert uow.session.execute(text("SELECT pg_backend_pid()")).scalar() != pid


def test_the_sales_connection_is_kept_between_sales_and_renewed_after_idling(app, monkeypatch):
    """Application.held_connection: the same connection each time, handed out idle; one idle
    too long goes back to the pool (whose check-out pings); release_connections closes it."""
    with app.held_connection() as first:
        first.exec_driver_sql("SELECT 1")  # left in a transaction on purpose
    assert not first.in_transaction()
    with app.held_connection() as again:
        assert again is first
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    with app.held_connection() as renewed:
        assert renewed is not first and first.closed
    app.release_connections()
    assert renewed.closed


def test_only_psycopg_connections_get_psycopg_arguments():
    """prepare_threshold is psycopg's; another driver named in the URL would refuse it."""
    from sqlalchemy.engine import make_url

    assert db._driver_args(make_url("postgresql+psycopg://u@h/d")) == {"prepare_threshold": None}
    assert db._driver_args(make_url("postgresql+psycopg2://u@h/d")) == {}
    assert db._driver_args(make_url("sqlite:///x.sqlite3")) == {}
