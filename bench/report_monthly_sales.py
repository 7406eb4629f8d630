"""Monthly sales by region through the report service against hand-written SQL, in one run.

    python -m bench.report_monthly_sales                          # 1,000,000 customers x 12 months
    python -m bench.report_monthly_sales --customers 100000       # a quicker run
    python -m bench.report_monthly_sales --db big.sqlite3         # reuse (or create) this file

The data comes from bench.generate (about 1.7 sales per customer and month, so the default size
gives well over 12 million sales). Timed, interleaved, ``--runs`` times each on the same file:

- the report: ``reports.run(app, op, "monthly-sales", level="region", ...)`` over every month,
  with the service's SQL (group by district and month) and its roll-up in Python;
- the hand-written SQL: one statement joining sales, customers and three region levels, grouped
  by region and month, giving the same figures (count, distinct customers, amount, energy, debt).

The report reads the incrementally kept sales summary (dbmis_core/services/salessummary.py); its
one-off build is timed and printed first, and every timed report run includes the summary's
refresh check. Both are checked to agree. Budget: the report's best time under 3 s and within
1.5x of the SQL's best time; prints PASS or FAIL and exits 1 on FAIL.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

HAND_SQL = """
SELECT r.code, substr(v.completed_at, 1, 7) AS m, count(*), count(DISTINCT v.customer_id),
       sum(v.amount), sum(v.energy), sum(v.debt_recovered)
FROM vends v
JOIN customers c ON c.id = v.customer_id
JOIN regions d ON d.id = c.district_id
JOIN regions l ON l.id = d.parent_id
JOIN regions r ON r.id = l.parent_id
WHERE v.state = 'completed' AND v.kind = 'sale'
  AND v.completed_at >= :a AND v.completed_at < :b
GROUP BY r.code, m
"""

# the same figures from the summary table, for information: the report's own overhead over it
SUMMARY_SQL = """
SELECT r.code, s.year, s.month, sum(s.sales), sum(s.customers), sum(s.amount)
FROM sales_summary s
JOIN regions d ON d.id = s.district_id
JOIN regions l ON l.id = d.parent_id
JOIN regions r ON r.id = l.parent_id
WHERE s.year * 12 + s.month - 1 BETWEEN :a AND :b
GROUP BY r.code, s.year, s.month
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report_monthly_sales",
                                description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--db", help="SQLite file to use; generated if it has no customers")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args(argv)

    from dbmis_core.app import Application
    from dbmis_core.config import Config
    from dbmis_core.services import reports
    from dbmis_core.services.auth import Operator
    from dbmis_core.storage.db import make_engine, upgrade

    folder = Path(tempfile.mkdtemp(prefix="dbmis-rms-"))
    path = Path(a.db) if a.db else folder / "big.sqlite3"
    url = f"sqlite:///{path}"
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
        n_cust = c.execute(text("SELECT count(*) FROM customers")).scalar()
        n_sales = c.execute(text("SELECT count(*) FROM vends")).scalar()
        first, last = c.execute(text("SELECT min(substr(completed_at, 1, 7)), "
                                     "max(substr(completed_at, 1, 7)) FROM vends")).one()
    engine.dispose()
    print(f"{n_cust:,} customers, {n_sales:,} sales, months {first}..{last} ({path})")

    app = Application(Config.from_dict({"database": {"url": url}}, home=folder))
    op = Operator("bench", "Bench", "administrator")
    from dbmis_core.services import salessummary

    built = salessummary.refresh(app)
    print(f"sales summary {'built' if built.built else 'brought up to date'} in "
          f"{built.seconds:.1f} s (once; later refreshes only read what changed)")
    start, end = reports.Filters.of({"month_from": first, "month_to": last}).bounds()
    hand_engine = make_engine(url)
    report_times, sql_times, summary_times = [], [], []
    result = hand = None
    for _ in range(a.runs):
        t0 = time.perf_counter()
        result = reports.run(app, op, "monthly-sales", level="region", month_from=first,
                             month_to=last)
        report_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with hand_engine.connect() as c:
            hand = c.execute(text(HAND_SQL), {"a": start.strftime("%Y-%m-%d %H:%M:%S"),
                                              "b": end.strftime("%Y-%m-%d %H:%M:%S")}).all()
        sql_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with hand_engine.connect() as c:
            c.execute(text(SUMMARY_SQL), {"a": start.year * 12 + start.month - 1,
                                          "b": end.year * 12 + end.month - 2}).all()
        summary_times.append(time.perf_counter() - t0)
        print(f"  report {report_times[-1]:.3f} s   hand SQL {sql_times[-1]:.3f} s   "
              f"hand SQL on the summary {summary_times[-1]:.3f} s", flush=True)
    got = {(r["unit"], r["month"]): (r["sales"], r["customers"], r["amount"]) for r in result.rows}
    want = {(code, m): (n, cu, Decimal(repr(amt)).quantize(Decimal("0.01")))
            for code, m, n, cu, amt, _e, _d in hand}
    same = got == want
    best_r, best_s = min(report_times), min(sql_times)
    ratio = best_r / best_s
    print(f"report best {best_r:.3f} s (median {statistics.median(report_times):.3f}), "
          f"hand SQL best {best_s:.3f} s (median {statistics.median(sql_times):.3f}), "
          f"ratio {ratio:.2f}; rows {len(result.rows)}; figures agree: {same}")
    print(f"hand SQL on the summary table best {min(summary_times):.3f} s (the report's overhead "
          f"over it: {best_r - min(summary_times):.3f} s)")
    ok = same and best_r < 3.0 and ratio <= 1.5
    print(f"budget (< 3 s and <= 1.5x hand SQL, same figures): {'PASS' if ok else 'FAIL'}")
    app.close()
    hand_engine.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
