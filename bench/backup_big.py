"""Backup of a big database: time and size printed, restore verified in the same run.

    python -m bench.backup_big                                   # 1,000,000 customers x 12 months
    python -m bench.backup_big --customers 20000 --months 12     # a quick run
    python -m bench.backup_big --pg --customers 20000 --months 12

The data comes from bench.generate (about 1.7 sales per customer and month, so the default gives
roughly 12 million or more sales). Then, through the backup service: a backup is taken (SQLite
online backup API / pg_dump -Fc under an exported snapshot) and timed; the backup is verified
(integrity check, or pg_restore --list plus a restore into a scratch database; row counts against
the manifest; sale references; receipt counters) and timed; and finally the backup is restored over
the database (after the service's safety backup) and the restored row counts are compared with the
manifest. Exits 1 if verification or the restore check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from bench.generate import generate


def _pg_database() -> tuple[str, callable]:
    from dbmis_core.testing.databases import PG_ADMIN_URL, _pg_exec

    name = f"dbmis_bb_{uuid.uuid4().hex[:10]}"
    _pg_exec(f'CREATE DATABASE "{name}"')
    return (f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}",
            lambda: _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.backup_big", description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--pg", action="store_true", help="a throwaway database on the test PostgreSQL")
    p.add_argument("--folder", help="work folder, kept (default: a temporary one, removed "
                   "afterwards); a database already generated there is reused")
    a = p.parse_args(argv)

    from dbmis_core.app import Application
    from dbmis_core.config import Config
    from dbmis_core.services import backup, setup
    from dbmis_core.services.auth import Operator

    tmp = None if a.folder else tempfile.TemporaryDirectory(prefix="dbmis-bb-")
    home = Path(a.folder or tmp.name)
    home.mkdir(parents=True, exist_ok=True)
    url, drop = _pg_database() if a.pg else (f"sqlite:///{home / 'big.sqlite3'}", lambda: None)
    app = Application(Config.from_dict({"database": {"url": url}}, home=home))
    try:
        setup.init(app, "admin", "admin-pass-1")
        op = Operator("bench", "Benchmark", "administrator")
        with app.engine.connect() as conn:
            have = backup._count_rows(conn)
        if have.get("customers"):  # a --folder kept from an earlier run: measure its data again
            print(f"reusing {have['customers']:,} customers, {have['vends']:,} sales, "
                  f"{have['meter_returns']:,} meter returns in {url}")
        else:
            t0 = time.perf_counter()
            res = generate(url, a.customers, a.months, seed=1,
                           log=lambda m: print(m, file=sys.stderr, flush=True))
            print(f"generated {res.rows['customers']:,} customers, {res.rows['vends']:,} sales, "
                  f"{res.rows['meter_returns']:,} meter returns in {time.perf_counter() - t0:.1f} s")

        t1 = time.perf_counter()
        info = backup.take(app, op)
        took = time.perf_counter() - t1
        print(f"backup  : {took:8.1f} s  {info.size / 1e6:10.1f} MB  {info.file}")

        t2 = time.perf_counter()
        v = backup.verify(app, op, info.file)
        print(f"verify  : {time.perf_counter() - t2:8.1f} s  {'OK' if v.ok else 'FAILED'}")
        for problem in v.problems:
            print(f"  PROBLEM: {problem}")

        t3 = time.perf_counter()
        r = backup.restore(app, op, info.file, confirm=True)
        with app.engine.connect() as conn:
            after = backup._count_rows(conn)
            newest = conn.execute(text("SELECT kind FROM audit_log ORDER BY id DESC LIMIT 1")
                                  ).scalar()
        # the restored database records the restore in its audit log: one row more than backed up
        expected = {**info.counts, "audit_log": info.counts.get("audit_log", 0) + 1}
        same = after == expected and newest == "backup.restore"
        print(f"restore : {time.perf_counter() - t3:8.1f} s  (incl. verification and safety backup "
              f"{r.safety_backup}); row counts {'match' if same else 'DIFFER from'} the manifest "
              "(plus the restore's own audit record)")
        for name in sorted(set(after) | set(expected)):
            if after.get(name) != expected.get(name):
                print(f"  {name}: {after.get(name)} rows, expected {expected.get(name)}")
        return 0 if v.ok and same else 1
    finally:
        app.close()
        drop()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
