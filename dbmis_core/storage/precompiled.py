"""Core statements compiled once and run straight on the driver: the sale's hot path.

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

On PostgreSQL (psycopg) a statement goes one level further down, to libpq through psycopg's own
``pq`` wrapper and adapters: prepared once per connection under a name of its own, then executed
by name. psycopg's cursor is Python code that cost a sale's statement about as much client CPU as
the round trip itself. ``run_batch`` sends several statements, and their COMMIT if asked, in one
round trip (libpq's pipeline mode), and a transaction's BEGIN travels with its first statement: a
sale makes three round trips instead of ten (docs/decisions/0003-vend-state-machine.md).
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections import namedtuple

from sqlalchemy import literal_column
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError


_NAMES = itertools.count(1)
_PYFORMAT = re.compile(r"%\(([^)]+)\)s|%%")


def _dollar_params(sql: str) -> tuple[str, list[str]]:
    """psycopg's ``%(name)s`` SQL as libpq's ``$1`` SQL, and the names in ``$n`` order."""
    order: dict[str, int] = {}

    def number(m):
        if m.group(1) is None:
            return "%"
        return f"${order.setdefault(m.group(1), len(order) + 1)}"

    return _PYFORMAT.sub(number, sql), list(order)


class _Compiled:
    """One statement for one dialect."""

    def __init__(self, stmt, dialect, keys) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=keys)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("a precompiled statement cannot hold an IN list of parameters; "
                             "use constant_in()")
        self.sql = compiled.string
        self.libpq = dialect.driver == "psycopg"
        if self.libpq:  # run through libpq (_Libpq): positional $n, prepared under its own name
            from psycopg.adapt import PyFormat

            self.sql, names = _dollar_params(self.sql)
            self.name = f"dbmis_{next(_NAMES)}".encode()
            self.positional = True
            self.formats = [PyFormat.TEXT] * len(names)  # parameters go as text, typed by the
            # server from the statement (SQLAlchemy writes casts where it could not tell)
        else:
            self.positional = dialect.positional
            names = list(compiled.positiontup) if dialect.positional else [
                k for k in compiled.binds if not k.startswith("%(")]
        self.names = names
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
        self.results = None  # [(column index, result processor)]: set at the first execution,
        # from the driver's type codes (set_result_types)

    def make_result(self, rowcount: int, raw) -> "Result":
        rows = []
        if self.row is not None and raw:
            make, active = self.row._make, self.results
            for r in raw:
                if active:
                    r = list(r)
                    for i, p in active:
                        if r[i] is not None:
                            r[i] = p(r[i])
                rows.append(make(r))
        return Result(rowcount, rows)

    def parameters(self, params: dict):
        values = [v if v is not _GIVEN else params[n] if p is None else p(params[n])
                  for n, v, p in self.binds]
        return values if self.positional else dict(zip(self.names, values))

    def set_result_types(self, type_codes) -> None:
        """The columns' result processors for the driver's type codes: [(index, processor)] of
        the columns that have one (most have none: the driver's value is already right)."""
        procs = [t.dialect_impl(self.dialect).result_processor(self.dialect, code)
                 for (_, t), code in zip(self.columns, type_codes)]
        self.results = [(i, p) for i, p in enumerate(procs) if p is not None]


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
        return run_batch(conn, [(self, params)])[0]

    def execute_alone(self, engine: Engine, params: dict | None = None,
                      connection: Connection | None = None) -> int:
        """Run as a transaction of its own on a pooled connection of ``engine``, or on the
        caller's idle ``connection`` if given (the caller's engine may be another: the relaxed
        engine's durability is what counts); returns the row count. SQLite runs it in autocommit
        at the synchronous level ``engine``'s options ask for (storage.db.sqlite_synchronous);
        PostgreSQL in one round trip: alone in autocommit on ``engine``'s connection, or on the
        caller's as BEGIN, SET LOCAL synchronous_commit (off for a relaxed engine), the
        statement and COMMIT, pipelined."""
        dialect = engine.dialect
        sqlite = dialect.name == "sqlite"
        held = connection is not None  # idle, the caller's: no pool round trip
        pooled = connection.connection if held else engine.raw_connection()
        try:
            dbapi = pooled.driver_connection
            c = self._for(dialect)
            if c.libpq:
                durable = engine.get_execution_options().get("durable", True)
                return _Libpq.of(dbapi).run(
                    dialect, [(c, params or {})], begin=False, invalidate=pooled.invalidate,
                    alone=None if not held else "on" if durable else "off")[0].rowcount
            if sqlite:  # the engine's connections run in autocommit
                from .db import sqlite_synchronous  # db loads alembic; not at start-up

                sqlite_synchronous(pooled, engine.get_execution_options())
                return _run_cursor(dbapi, dialect, c, params or {}, pooled.invalidate).rowcount
            dbapi.autocommit = True
            try:
                return _run_cursor(dbapi, dialect, c, params or {}, pooled.invalidate).rowcount
            finally:
                if pooled.is_valid and not dbapi.closed:
                    dbapi.autocommit = False
        finally:
            if not held:
                pooled.close()


def run_batch(conn: Connection, steps, commit: bool = False) -> list[Result]:
    """Run ``steps`` ([(Precompiled, params)]) in order in ``conn``'s transaction (begun if it is
    not yet); one Result each. ``commit``: then commit the transaction. On PostgreSQL the
    statements, and the COMMIT, travel in one round trip. A failing statement raises its error
    (SQLAlchemy's class) carrying ``batch_results``, the Results of the statements before it;
    nothing after it takes effect, and nothing is committed."""
    if not conn.in_transaction():
        conn.begin()
    dialect = conn.dialect
    dbapi = conn.connection.driver_connection
    compiled = [(p._for(dialect), params or {}) for p, params in steps]
    if compiled[0][0].libpq:
        results = _Libpq.of(dbapi).run(dialect, compiled, begin=not dbapi.autocommit,
                                       invalidate=conn.invalidate, commit=commit)
    else:
        results = []
        for c, params in compiled:
            try:
                results.append(_run_cursor(dbapi, dialect, c, params, conn.invalidate))
            except DBAPIError as exc:
                exc.batch_results = results
                raise
    if commit:
        conn.commit()  # on PostgreSQL already done: SQLAlchemy's side of it only
    return results


def _sqlalchemy_error(exc, sql: str, args, dialect, dbapi, invalidate) -> DBAPIError:
    if dialect.is_disconnect(exc, dbapi, None):
        invalidate(exc)
    return DBAPIError.instance(sql, args, exc, dialect.loaded_dbapi.Error, dialect=dialect)


def _run_cursor(dbapi, dialect, c: _Compiled, params: dict, invalidate) -> Result:
    """Through the driver's cursor (SQLite; any DB-API driver)."""
    args = c.parameters(params)
    try:
        cur = dbapi.cursor()
        try:
            cur.execute(c.sql, args)
            raw = None
            if c.row is not None:
                raw = cur.fetchall()
                if c.results is None:
                    c.set_result_types([d[1] for d in cur.description])
            return c.make_result(cur.rowcount, raw)
        finally:
            cur.close()
    except dialect.loaded_dbapi.Error as exc:
        raise _sqlalchemy_error(exc, c.sql, args, dialect, dbapi, invalidate) from exc


class _Libpq:
    """One psycopg connection's statements run on libpq (psycopg.pq), with psycopg's adapters
    (psycopg.adapt.Transformer) for parameters and rows, so values convert exactly as through
    its cursor. Keeps which statements this connection has prepared."""

    _of: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def __init__(self, dbapi) -> None:
        from psycopg import pq
        from psycopg.adapt import Transformer

        self.dbapi = dbapi
        self.pq = pq
        self.tx = Transformer(dbapi)
        self.prepared: set[bytes] = set()
        # libpq's pipeline mode (libpq 14+); older ones get one round trip per statement
        self.pipeline = pq.version() >= 140000

    @classmethod
    def of(cls, dbapi) -> "_Libpq":
        self = cls._of.get(dbapi)
        if self is None:
            self = cls._of[dbapi] = cls(dbapi)
        return self

    def _begin_command(self) -> bytes:
        """The BEGIN psycopg itself would send (its transaction characteristics)."""
        d = self.dbapi
        parts = ["BEGIN"]
        if d.isolation_level is not None:
            parts.append("ISOLATION LEVEL " + d.isolation_level.name.replace("_", " "))
        if d.read_only is not None:
            parts.append("READ ONLY" if d.read_only else "READ WRITE")
        if d.deferrable is not None:
            parts.append("DEFERRABLE" if d.deferrable else "NOT DEFERRABLE")
        return " ".join(parts).encode()

    def run(self, dialect, compiled, begin: bool, invalidate, retry: bool = True,
            alone: str | None = None, commit: bool = False) -> list[Result]:
        """``compiled``: [(_Compiled, params)]. ``begin``: open a transaction first if none is.
        ``alone``: "on"/"off", run as a transaction of its own at that synchronous_commit.
        ``commit``: COMMIT after the statements (a failed one leaves the transaction to roll
        back)."""
        from psycopg import OperationalError, errors

        pq, pg = self.pq, self.dbapi.pgconn
        begin = begin and pg.transaction_status == pq.TransactionStatus.IDLE
        if alone is not None and pg.transaction_status != pq.TransactionStatus.IDLE:
            raise RuntimeError("a statement run alone needs an idle connection")
        work = []
        for c, params in compiled:
            args = c.parameters(params)
            work.append((c, args, self.tx.dump_sequence(args, c.formats)))
        try:
            if (not begin and alone is None and not commit and len(work) == 1
                    and work[0][0].name in self.prepared):
                c, args, values = work[0]
                replies = [(_EXECUTE, c, args, pg.exec_prepared(c.name, values))]
            else:
                replies = self._send(pg, work, begin, alone, commit)
        except OperationalError as exc:  # the connection broke under libpq
            raise _sqlalchemy_error(exc, work[0][0].sql, work[0][1], dialect, self.dbapi,
                                    invalidate) from exc
        try:
            return self._results(dialect, replies, invalidate)
        except DBAPIError as exc:
            if alone is not None and pg.transaction_status != pq.TransactionStatus.IDLE:
                pg.exec_(b"ROLLBACK")  # the pipeline stopped before its COMMIT
            if not isinstance(exc.orig, errors.InvalidSqlStatementName):
                raise
            # someone deallocated this connection's statements (DEALLOCATE ALL, DISCARD ALL):
            # prepare again. A transaction that held nothing but this batch is simply redone.
            self.prepared.clear()
            if not (retry and (begin or alone)):
                raise
            if alone is None:
                pg.exec_(b"ROLLBACK")
            return self.run(dialect, compiled, begin, invalidate, retry=False, alone=alone,
                            commit=commit)

    def _send(self, pg, work, begin: bool, alone: str | None = None,
              commit: bool = False) -> list:
        """BEGIN (if asked), a Parse for each statement this connection has not prepared, and
        the statements, in one pipeline and one round trip; [(kind, compiled, args, PGresult)]
        in the order sent. ``alone``: in a transaction of their own at that synchronous_commit."""
        from psycopg import OperationalError

        sent = []
        if begin or alone:
            sent.append((_COMMAND, None, None, self._begin_command()))
        if alone:
            sent.append((_COMMAND, None, None,
                         f"SET LOCAL synchronous_commit TO {alone}".encode()))
        parsing: set[bytes] = set()
        for c, args, values in work:
            if c.name not in self.prepared and c.name not in parsing:
                parsing.add(c.name)
                sent.append((_PREPARE, c, args, None))
            sent.append((_EXECUTE, c, args, values))
        if alone or commit:
            sent.append((_COMMAND, None, None, b"COMMIT"))
        if not self.pipeline:
            return [(kind, c, args, pg.exec_(data) if kind is _COMMAND
                     else pg.prepare(c.name, c.sql.encode()) if kind is _PREPARE
                     else pg.exec_prepared(c.name, data))
                    for kind, c, args, data in sent]
        pg.enter_pipeline_mode()
        try:
            for kind, c, _, data in sent:
                if kind is _COMMAND:
                    pg.send_query_params(data, None)
                elif kind is _PREPARE:
                    pg.send_prepare(c.name, c.sql.encode())
                else:
                    pg.send_query_prepared(c.name, data)
            pg.pipeline_sync()
            replies = []
            for kind, c, args, _ in sent:
                res = pg.get_result()
                if res is None:
                    raise OperationalError(pg.get_error_message() or "no reply from the server")
                while pg.get_result() is not None:  # one result per statement, then None
                    pass
                replies.append((kind, c, args, res))
            sync = pg.get_result()
            if sync is None or sync.status != self.pq.ExecStatus.PIPELINE_SYNC:
                raise OperationalError(pg.get_error_message() or "the pipeline lost its sync")
        finally:
            if pg.status == self.pq.ConnStatus.OK:
                pg.exit_pipeline_mode()
        return replies

    def _results(self, dialect, replies, invalidate) -> list[Result]:
        S = self.pq.ExecStatus
        results: list[Result] = []
        for kind, c, args, res in replies:
            status = res.status
            if status == S.COMMAND_OK and kind is not _EXECUTE:
                if kind is _PREPARE:
                    self.prepared.add(c.name)
                continue
            if kind is _EXECUTE and (status == S.TUPLES_OK or status == S.COMMAND_OK):
                raw = None
                if c.row is not None:
                    if c.results is None:
                        c.set_result_types([res.ftype(i) for i in range(res.nfields)])
                    self.tx.set_pgresult(res)
                    raw = self.tx.load_rows(0, res.ntuples, tuple)
                results.append(c.make_result(res.command_tuples or 0, raw))
                continue
            from psycopg import errors

            error = errors.error_from_result(res, encoding=self.dbapi.info.encoding)
            sql = c.sql if c is not None else "BEGIN/COMMIT"
            exc = _sqlalchemy_error(error, sql, args, dialect, self.dbapi, invalidate)
            exc.batch_results = results
            raise exc from error
        return results


_COMMAND, _PREPARE, _EXECUTE = "command", "prepare", "execute"  # BEGIN, SET LOCAL, COMMIT
