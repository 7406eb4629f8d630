"""Engines, migrations and the unit of work.

SQLite runs in WAL mode with ``synchronous=FULL`` so a committed sale survives a crash or power loss;
PostgreSQL uses its defaults (fsync on). Each unit of work is one transaction.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import StorageError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, record):
            dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below take over
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.close()
            record.info["synchronous"] = "FULL"

        @event.listens_for(engine, "begin")
        def _begin(conn):
            pooled = conn.connection
            sqlite_synchronous(pooled, conn.get_execution_options())
            # take the write lock up front: no lost updates between read and write (on the driver
            # connection: one BEGIN per transaction, SQLAlchemy's statement machinery is not needed)
            try:
                pooled.driver_connection.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise DBAPIError.instance("BEGIN IMMEDIATE", (), exc, sqlite3.Error) from exc

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return _ping_when_idle(create_engine(url, connect_args=_driver_args(make_url(url))))


def _driver_args(url) -> dict:
    """psycopg prepares a statement after five runs by itself, and then sends DEALLOCATE ALL at
    every rollback, which would also drop the statements storage.precompiled prepares (the
    sale's). Those are the ones worth preparing; the rest is planned at each run, as without a
    pool. Other drivers get nothing (they would refuse the argument)."""
    return {"prepare_threshold": None} if url.get_driver_name() == "psycopg" else {}


def sqlite_synchronous(pooled, options) -> None:
    """Put a pooled SQLite connection at synchronous=FULL, or NORMAL for an engine with the
    execution option durable=False (make_relaxed_engine), before a transaction begins; the pragma
    cannot change inside one. Three microseconds on the driver, and only when it changes."""
    want = "FULL" if options.get("durable", True) else "NORMAL"
    if pooled.info.get("synchronous") != want:
        pooled.driver_connection.execute(f"PRAGMA synchronous={want}")
        pooled.info["synchronous"] = want


def make_relaxed_engine(engine: Engine) -> Engine:
    """An engine whose commits do not wait for the disk (decision 0003). SQLite: the same pool as
    ``engine``, switched to synchronous=NORMAL per transaction; one connection keeps its page
    cache warm, which two pools writing the same file each in turn would throw away on every
    transaction. PostgreSQL: a pool of its own whose connections set synchronous_commit=off
    once, so a relaxed transaction costs no extra statement; a lone relaxed statement on a
    durable connection the caller holds (Precompiled.execute_alone) sets it for its own
    transaction instead. Both carry the execution option durable=False."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(durable=False)
    return _ping_when_idle(create_engine(engine.url, connect_args={
        **_driver_args(engine.url), "options": "-c synchronous_commit=off"})
    ).execution_options(durable=False)


IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> Engine:
    """Check a pooled connection before use only if it sat idle for a while.

    A server restart or a dropped link shows up on idle connections; pinging on every checkout
    (pool_pre_ping) would add a round trip to each transaction of a busy counter."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy):
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since > IDLE_PING_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except Exception as exc:  # the pool retries with a new connection
                raise DisconnectionError(str(exc)) from exc

    return engine


def _alembic_config(connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine) -> None:
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
    except OperationalError as exc:
        raise StorageError(f"cannot reach the database: {exc.orig}") from None


def schema_status(engine: Engine) -> tuple[str | None, str]:
    """(current revision, head revision)."""
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise StorageError(f"cannot reach the database: {exc.orig}") from None
    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    return current, head


def check_schema(engine: Engine) -> None:
    current, head = schema_status(engine)
    if current is None:
        raise StorageError("the database is not initialised; run 'dbmis init'")
    if current != head:
        raise StorageError(f"the database schema is at {current}, this program needs {head}; "
                           "run 'dbmis init' to upgrade")


class UnitOfWork:
    """One transaction: ``with uow: ...; uow.commit()``. Leaving without commit rolls back.

    Whether its commit waits for the disk is the session factory's engine's (Application.uow:
    ``durable=False`` hands in the relaxed engine's, SQLite synchronous=NORMAL, PostgreSQL
    synchronous_commit=off): a killed process loses nothing, a power cut may lose the last such
    commits. Only for writes that reconciliation can redo (docs/decisions/0003).

    Code that runs Core statements only takes ``connection``; the ORM ``session`` is made on first
    use and joins that connection's transaction. A sale never needs the session: a session's
    begin and commit cost about 50 microseconds more than the connection's alone.
    """

    def __init__(self, session_factory: sessionmaker, connection: Connection | None = None) -> None:
        """``connection``: run on this (idle) connection, which the caller keeps; the sale holds
        one for both of its transactions instead of taking one from the pool for each."""
        self._factory = session_factory
        self._session: Session | None = None
        self._conn: Connection | None = connection
        self._owned = connection is None
        self.station: str | None = None  # the sales station (its audit chain); set by Application

    def __enter__(self) -> "UnitOfWork":
        return self

    @property
    def session(self) -> Session:
        if self._session is None:
            if self._conn is None:
                self._session = self._factory()
            else:  # joins the transaction begun on the connection; commit() ends both
                self._session = self._factory(bind=self._conn)
        return self._session

    @property
    def connection(self) -> Connection:
        """This transaction's connection (begun on first use)."""
        if self._session is not None:
            return self._session.connection()
        if self._conn is None:
            self._conn = self._factory.kw["bind"].connect()
        if not self._conn.in_transaction():
            self._conn.begin()
        return self._conn

    def __exit__(self, exc_type, exc, tb) -> None:
        # close() rolls back anything uncommitted and detaches objects without expiring them,
        # so results stay readable after the unit of work ends
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._conn is not None:
            if self._owned:
                self._conn.close()
            else:
                self._conn.rollback()  # nothing if committed
            self._conn = None

    def commit(self) -> None:
        try:
            if self._session is not None:
                self._session.commit()
            if self._conn is not None:
                self._conn.commit()
        except SQLAlchemyError:
            self.rollback()
            raise

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()
        if self._conn is not None:
            self._conn.rollback()


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
