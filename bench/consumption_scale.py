"""Full consumption analysis of N customers x 24 months in memory with numpy, next to DuckDB doing
the month-over-month and year-over-year part of it on the same data in the same run.

    .venv/bin/python -m bench.consumption_scale                    # 1,000,000 x 24
    .venv/bin/python -m bench.consumption_scale --customers 200000

The data is the synthetic evaluation's (bench/consumption_eval.py), generated in chunks of
100,000 customers straight into the batch arrays (float32 use, int8 bit fields), so generation does
not set the peak. "Full analysis" is every built-in rule (the seven rationality checks and the
persistent-drop detector with its peer profiles per district and category) plus the ranking of all
customers by score - what ``dbmis consumption rank`` does after loading the monthly table.

Printed: seconds and peak memory of the analysis (tracemalloc peak of numpy's allocations during
it, and the process's peak resident size from getrusage, which includes the data and Python
itself), then the same month-over-month and same-month-last-year ratios computed in numpy and in
DuckDB (a 24M-row long table scanned from the numpy arrays, LAG window functions, the results
fetched back as numpy arrays). **Budget: the full analysis of 1,000,000 x 24 under 60 s and
under 4 GB.** DuckDB is not a project dependency; without it that part says so and is skipped.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np

from bench.consumption_eval import synthetic
from dbmis_core.services.analysis import Batch, run_checks, settings_of

CHUNK = 100_000
MONTHS = 24


def build(n: int, seed: int = 1) -> Batch:
    """N customers, generated chunk by chunk into compact arrays."""
    kw = dict(kwh=np.float32, purchased=np.float32, tamper=np.float32, illegal=np.float32,
              capacity_kwh=np.float32, returns=np.int8, status_bits=np.int8, flags=np.int8,
              active=bool, customer_ids=np.int64, district=np.int64)
    parts: dict[str, list] = {k: [] for k in (*kw, "accounts", "category")}
    years = months = None
    done = 0
    while done < n:
        k = min(CHUNK, n - done)
        b, _ = synthetic(k, MONTHS, seed=seed + done, dtype=np.float32)
        b.customer_ids += done
        b.district += done // 200 + 1
        for name, dt in kw.items():
            parts[name].append(getattr(b, name).astype(dt, copy=False))
        parts["accounts"].append(b.customer_ids.astype(str).astype(object))
        parts["category"].append(b.category)
        years, months = b.years, b.month_numbers
        done += k
        del b
    arrays = {name: np.concatenate(v) for name, v in parts.items()}
    return Batch(years=years, month_numbers=months, **arrays)


def numpy_ratios(kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return kwh[:, 1:] / kwh[:, :-1], kwh[:, 12:] / kwh[:, :-12]


def duckdb_ratios(kwh: np.ndarray) -> tuple[float, int] | str:
    """Seconds and result rows for MoM and YoY in DuckDB, or why it could not run."""
    try:
        import duckdb
    except ImportError:
        return ("DuckDB is not installed (it is not a project dependency); "
                "`.venv/bin/pip install duckdb` to compare")
    n, m = kwh.shape
    long = {"c": np.repeat(np.arange(n, dtype=np.int32), m),
            "t": np.tile(np.arange(m, dtype=np.int16), n),
            "kwh": kwh.reshape(-1).astype(np.float64)}
    con = duckdb.connect()
    t0 = time.perf_counter()
    con.register("usage", long)
    out = con.execute("""
        SELECT c, t, kwh / LAG(kwh) OVER w AS mom, kwh / LAG(kwh, 12) OVER w AS yoy
        FROM usage WINDOW w AS (PARTITION BY c ORDER BY t)
    """).fetchnumpy()
    seconds = time.perf_counter() - t0
    con.close()
    return seconds, len(out["mom"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.consumption_scale",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    from dbmis_consumption.checks import builtin_checks

    t0 = time.perf_counter()
    batch = build(a.customers, a.seed)
    print(f"data: {a.customers:,} customers x {MONTHS} months generated in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    checks = {c.name: c for c in builtin_checks()}
    settings = settings_of(None)

    tracemalloc.start()
    t1 = time.perf_counter()
    total, results = run_checks(batch, checks, settings)
    order = np.argsort(-total, kind="stable")
    flagged = int((total > 0).sum())
    seconds = time.perf_counter() - t1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # KiB on Linux
    print(f"full analysis (8 rules + ranking): {seconds:.1f} s; numpy peak during it "
          f"{peak / 2**30:.2f} GiB; process peak RSS {rss:.2f} GiB; "
          f"{flagged:,} customers with a finding, top score {total[order[0]]:.2f}")

    t2 = time.perf_counter()
    mom, yoy = numpy_ratios(batch.kwh)
    np_seconds = time.perf_counter() - t2
    print(f"month over month + year over year, numpy: {np_seconds:.2f} s "
          f"({mom.size + yoy.size:,} ratios)")
    duck = duckdb_ratios(batch.kwh)
    if isinstance(duck, str):
        print(f"month over month + year over year, DuckDB: skipped - {duck}")
    else:
        print(f"month over month + year over year, DuckDB: {duck[0]:.2f} s ({duck[1]:,} rows, "
              "LAG window over a long table, fetched as numpy)")
    ok = seconds < 60 and rss < 4
    if a.customers >= 1_000_000:
        print(f"budget (1M x 24 under 60 s and 4 GB): {'PASS' if ok else 'FAIL'}")
    else:
        print(f"budget applies to 1,000,000 customers; at {a.customers:,}: "
              f"{'within' if ok else 'over'} the limits")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
