"""Throwaway databases for tests: a SQLite file or a fresh PostgreSQL database.

PostgreSQL defaults to the server at 127.0.0.1:5432 (trust auth); set DBMIS_TEST_PG to another
``postgresql://`` URL of a role that may create databases.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

PG_ADMIN_URL = os.environ.get("DBMIS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_exec(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def new_database(backend: str, folder: Path) -> tuple[str, callable]:
    """Return (url, drop) for a new empty database of ``backend`` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'dbmis.sqlite3'}", lambda: None
    if backend == "postgres":
        name = f"dbmis_t_{uuid.uuid4().hex[:12]}"
        _pg_exec(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0]

        def drop() -> None:
            _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return f"{base}/{name}", drop
    raise ValueError(f"unknown backend {backend}")


ADMIN, ADMIN_PW = "admin", "admin-pass-1"


def make_app(folder: Path, backend: str = "sqlite", **sections):
    """An Application on a new database of ``backend`` with data under ``folder``; returns
    (app, drop). ``sections`` override configuration tables, e.g. sales={"refuse_unloaded": False}."""
    from ..app import Application
    from ..config import Config

    url, drop = new_database(backend, folder)
    cfg: dict = {"database": {"url": url}}
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return Application(Config.from_dict(cfg, home=folder)), drop
