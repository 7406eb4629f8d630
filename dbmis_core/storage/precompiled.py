"""Core statements compiled once and run straight on the driver's cursor: the sale's hot path.

SQLAlchemy's per-execution work (execution context, parameter and result set-up, events) costs
about 90 microseconds a statement; SQLite does a sale's indexed UPDATE and its commit in under 10.
A sale runs about ten statements, so on the counter's own machine that overhead was a third of a
sale (docs/decisions/0003-vend-state-machine.md has the figures). A ``Precompiled`` keeps what
SQLAlchemy would rebuild each time: the SQL text for the dialect, the parameter order, and the
bind and result processors of the column types, all taken from SQLAlchemy's own compiler and type
objects, so values go in and come out exactly as through ``Connection.execute`` (a test compares
the two for every hot statement on SQLite and PostgreSQL).

It runs inside the transaction of the SQLAlchemy ``Connection`` it is given (the unit of work's),
so commits, rollbacks and the pool stay SQLAlchemy's. Driver errors come out as SQLAlchemy's
exception classes. Not supported, and refused when the statement is built: IN lists (expanding
parameters) and INSERT columns whose default SQLAlchemy would have to compute.
"""

from __future__ import annotations

from collections import namedtuple

from sqlalchemy import literal_column
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError


class _Compiled:
    """One statement for one dialect."""

    def __init__(self, stmt, dialect, keys) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=keys)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("a precompiled statement cannot hold an IN list of parameters; "
                             "use constant_in()")
        self.sql = compiled.string
        self.positional = dialect.positional
        self.names = names = list(compiled.positiontup) if dialect.positional else [
            k for k in compiled.binds if not k.startswith("%(")]
        given = set(keys or ())
        self.binds = []  # (name, constant value or _GIVEN, bind processor or None)
        for name in names:
            bind = compiled.binds[name]
            if keys is not None and name not in given:
                raise ValueError(f"INSERT column {name!r} needs its value given (it has a "
                                 "default SQLAlchemy computes); list it in the keys")
            if keys is not None or bind.required or bind.callable is not None:
                value = _GIVEN
            else:
                value = bind.value
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if value is not _GIVEN and proc is not None:
                value, proc = proc(value), None
            self.binds.append((name, value, proc))
        self.columns = [(c.name, c.type) for c in stmt.exported_columns]
        self.row = namedtuple("Row", [n for n, _ in self.columns], rename=True) \
            if self.columns else None
        self.dialect = dialect
        self.results = None  # result processors: set at the first execution, from the driver's
        # type codes

    def parameters(self, params: dict):
        values = [v if v is not _GIVEN else params[n] if p is None else p(params[n])
                  for n, v, p in self.binds]
        return values if self.positional else dict(zip(self.names, values))

    def result_processors(self, description):
        return [t.dialect_impl(self.dialect).result_processor(self.dialect, d[1])
                for (_, t), d in zip(self.columns, description)]


_GIVEN = object()


def constant_in(column, values):
    """``column IN ('a', 'b')`` with the values written into the SQL (they are constants of the
    program, never input): the form of an IN list a precompiled statement can hold."""
    return column.in_([literal_column(f"'{v}'") for v in values])


class Result:
    """What a precompiled statement gave: the affected row count and the processed rows."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rowcount: int, rows: list) -> None:
        self.rowcount, self.rows = rowcount, rows

    def first(self):
        return self.rows[0] if self.rows else None

    def one(self):
        if len(self.rows) != 1:
            raise ValueError(f"expected one row, got {len(self.rows)}")
        return self.rows[0]

    def scalar_one(self):
        return self.one()[0]


class Precompiled:
    """A Core statement prepared for direct execution; ``keys`` names an INSERT's given columns."""

    def __init__(self, stmt, keys: list[str] | tuple[str, ...] | None = None) -> None:
        self.stmt = stmt
        self.keys = list(keys) if keys is not None else None
        self._by_dialect: dict[str, _Compiled] = {}

    def _for(self, dialect) -> _Compiled:
        c = self._by_dialect.get(dialect.name)
        if c is None:
            c = self._by_dialect[dialect.name] = _Compiled(self.stmt, dialect, self.keys)
        return c

    def execute(self, conn: Connection, params: dict | None = None) -> Result:
        """Run in ``conn``'s transaction (begun if it is not yet)."""
        if not conn.in_transaction():
            conn.begin()
        return self._run(conn.connection.driver_connection, conn.dialect, params or {},
                         conn.invalidate)

    def execute_alone(self, engine: Engine, params: dict | None = None,
                      connection: Connection | None = None) -> int:
        """Run as a transaction of its own on a pooled connection of ``engine`` (on SQLite the
        caller's idle ``connection`` of it, if given); returns the row count. Both run in
        autocommit: SQLite at the synchronous level the engine's options ask for
        (storage.db.sqlite_synchronous), PostgreSQL in one round trip."""
        sqlite = engine.dialect.name == "sqlite"
        held = connection is not None and sqlite  # idle, the caller's: no pool round trip
        pooled = connection.connection if held else engine.raw_connection()
        try:
            dbapi = pooled.driver_connection
            if sqlite:  # the engine's connections run in autocommit
                from .db import sqlite_synchronous  # db loads alembic; not at start-up

                sqlite_synchronous(pooled, engine.get_execution_options())
                return self._run(dbapi, engine.dialect, params or {}, pooled.invalidate).rowcount
            dbapi.autocommit = True
            try:
                return self._run(dbapi, engine.dialect, params or {}, pooled.invalidate).rowcount
            finally:
                if pooled.is_valid and not dbapi.closed:
                    dbapi.autocommit = False
        finally:
            if not held:
                pooled.close()

    def _run(self, dbapi, dialect, params: dict, invalidate) -> Result:
        c = self._for(dialect)
        args = c.parameters(params)
        try:
            cur = dbapi.cursor()
            try:
                cur.execute(c.sql, args)
                rows = []
                if c.row is not None:
                    raw = cur.fetchall()
                    if c.results is None:
                        c.results = c.result_processors(cur.description)
                    procs = c.results
                    make = c.row._make
                    rows = [make([v if p is None or v is None else p(v)
                                  for p, v in zip(procs, r)]) for r in raw]
                return Result(cur.rowcount, rows)
            finally:
                cur.close()
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi, None):
                invalidate(exc)
            raise DBAPIError.instance(c.sql, args, exc, dialect.loaded_dbapi.Error,
                                      dialect=dialect) from exc
