"""Customer search by partial name or account number on a big database, median latency printed.

    python -m bench.customer_search                               # 1,000,000 customers
    python -m bench.customer_search --customers 100000 --months 1
    python -m bench.customer_search --db big.sqlite3              # reuse (or create) this file
    python -m bench.customer_search --pg --customers 100000 --months 1

Customers come from bench.generate (sales are not needed: ``--months 1`` by default). Then
``--queries`` searches through ``search.find(..., kind="customer")``, cycling over what a clerk
types: part of a surname ("okaf", "petro"), part of a first name plus surname ("aria san"), a
street ("mill ro"), the start of an account number (5-7 digits of a real one), a phone fragment.
Each query is timed on its own (a fresh unit of work each, as the Find page does). Budget: median
under 50 ms; prints PASS or FAIL and exits 1 on FAIL.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

TEXT_QUERIES = ("okaf", "petro", "aria san", "mill ro", "tanak", "grace m", "jing", "novak",
                "station road", "kofi", "larsen tr", "works")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.customer_search",
                                description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--months", type=int, default=1)
    p.add_argument("--db", help="SQLite file to use; generated if it has no customers")
    p.add_argument("--pg", action="store_true", help="a throwaway database on the test server")
    p.add_argument("--queries", type=int, default=200)
    a = p.parse_args(argv)

    from dbmis_core.app import Application
    from dbmis_core.config import Config
    from dbmis_core.services import search
    from dbmis_core.services.auth import Operator
    from dbmis_core.storage.db import make_engine, upgrade

    folder = Path(tempfile.mkdtemp(prefix="dbmis-cs-"))
    drop = None
    if a.pg:
        from dbmis_core.testing.databases import new_database

        url, drop = new_database("postgres", folder)
    else:
        url = f"sqlite:///{Path(a.db) if a.db else folder / 'big.sqlite3'}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        with engine.connect() as c:
            have = c.execute(text("SELECT count(*) FROM customers")).scalar()
        if not have:
            from bench.generate import generate

            t0 = time.perf_counter()
            res = generate(engine, a.customers, a.months, seed=1,
                           log=lambda msg: print(msg, file=sys.stderr, flush=True))
            print(f"generated {res.total:,} rows in {time.perf_counter() - t0:.1f} s")
        with engine.connect() as c:
            n = c.execute(text("SELECT count(*) FROM customers")).scalar()
            accounts = [r[0] for r in c.execute(text(
                "SELECT account_no FROM customers ORDER BY random() LIMIT 50"))]
            phones = [r[0] for r in c.execute(text(
                "SELECT phone FROM customers ORDER BY random() LIMIT 20"))]
        engine.dispose()
        print(f"{n:,} customers ({url.split('@')[-1]})")
        rng = random.Random(7)
        queries = []
        for i in range(a.queries):
            kind = i % 3
            if kind == 0:
                queries.append(rng.choice(TEXT_QUERIES))
            elif kind == 1:
                acct = rng.choice(accounts)
                queries.append(acct[:rng.randint(5, len(acct))])
            else:
                queries.append(rng.choice(phones)[-4:] if i % 2 else rng.choice(TEXT_QUERIES))
        app = Application(Config.from_dict({"database": {"url": url}}, home=folder))
        op = Operator("bench", "Bench", "administrator")
        search.find(app, op, "warm up", kind="customer")
        times, hits = {"text": [], "account": []}, 0
        for q in queries:
            t0 = time.perf_counter()
            found = search.find(app, op, q, kind="customer", limit=20)
            times["account" if q.isdigit() and len(q) >= 5 else "text"].append(
                time.perf_counter() - t0)
            hits += bool(found.customers)
        app.close()
        every = times["text"] + times["account"]
        med = statistics.median(every) * 1000
        for k, v in times.items():
            if v:
                print(f"  {k:8} {len(v):4} queries: median {statistics.median(v) * 1000:6.1f} ms,"
                      f" 95th {sorted(v)[int(len(v) * 0.95) - 1] * 1000:6.1f} ms")
        print(f"all {len(every)} queries: median {med:.1f} ms; {hits} found something")
        ok = med < 50 and hits > len(queries) // 2
        print(f"budget (median < 50 ms): {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        if drop:
            drop()


if __name__ == "__main__":
    sys.exit(main())
