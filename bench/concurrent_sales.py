"""Concurrent sales on PostgreSQL from 8 station processes, next to pgbench on the same server.

    python -m bench.concurrent_sales [--stations 8] [--seconds 20] [--customers-per-station 40]

(a) DBMIS: a throwaway database on the test server (``DBMIS_TEST_PG``, default
    postgres@127.0.0.1:5432); N station processes (``dbmis_core.testing.stations``), each with its
    own simulated reader and its own customers, sell for the same wall-clock window; every sale is
    the full durable state machine (read card, PENDING commit, card write and read-back, WRITTEN,
    COMPLETED). Throughput = completed sales / window.
(b) pgbench's built-in simple-update script (``pgbench -N``) with the same number of clients on a
    throwaway database of the same server, in the same run.

Budget: DBMIS sales/s >= 15% of pgbench's simple-update transactions/s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from dbmis_core.testing.databases import PG_ADMIN_URL, new_database
from dbmis_core.testing.stations import prepare, start_station, station_codes

BUDGET = 0.15


def cpu_seconds(pids) -> tuple[float, float]:
    """(CPU seconds of the processes ``pids``, of every local ``postgres`` process) so far, from
    /proc: user + system time. The server's figure is 0 when it runs elsewhere."""
    tick = os.sysconf("SC_CLK_TCK")
    mine, server = 0, 0
    wanted = {str(p) for p in pids}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        fields = rest.split()
        used = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        if stat.parent.name in wanted:
            mine += used
        elif head.split("(", 1)[1].startswith("postgres"):
            server += used
    return mine / tick, server / tick


def run_stations(url: str, root: Path, fleet, stations: int, per_station: int,
                 seconds: float) -> tuple[int, int, float, str]:
    """(completed sales, attempts, window seconds, CPU line) for ``stations`` processes selling
    at once. CPU is sampled inside the window (start-up and log-in stay out): per sale completed
    between the two samples, for the station processes and for the server."""
    start_at = time.time() + 8  # every process imported, connected and logged in before the start
    procs = [start_station(url, root, code, fleet[i * per_station:(i + 1) * per_station], seed=i,
                           start_at=start_at, seconds=seconds)
             for i, code in enumerate(station_codes(stations))]
    pids = [p.pid for p in procs]
    t1 = start_at + min(2.0, seconds / 4)
    t2 = start_at + seconds - min(1.0, seconds / 4)
    time.sleep(max(0.0, t1 - time.time()))
    c1 = cpu_seconds(pids)
    time.sleep(max(0.0, t2 - time.time()))
    c2 = cpu_seconds(pids)
    done = attempts = inside = 0
    for p in procs:
        try:
            recs = p.records(timeout=seconds + 120)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        for rec in recs:
            attempts += 1
            done += rec["ok"]
            inside += rec["ok"] and t1 <= rec["t"] <= t2
    per = lambda i: (c2[i] - c1[i]) / inside * 1000 if inside else float("nan")  # noqa: E731
    busy = (c2[0] - c1[0] + c2[1] - c1[1]) / (t2 - t1)
    cpu = (f"stations {per(0):.2f} ms, PostgreSQL server {per(1):.2f} ms ({inside} sales in "
           f"{t2 - t1:.0f} s; both together kept {busy:.2f} of {os.cpu_count()} CPUs busy)")
    return done, attempts, seconds, cpu


def pgbench_tps(clients: int, seconds: int, scale: int) -> float:
    """pgbench -N (simple update) transactions/s on a throwaway database of the test server."""
    u = make_url(PG_ADMIN_URL)
    name = f"dbmis_pgbench_{uuid.uuid4().hex[:8]}"
    conn = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    subprocess.run(["createdb", *conn, name], check=True)
    try:
        subprocess.run(["pgbench", *conn, "-i", "-q", "-s", str(scale), name], check=True,
                       capture_output=True)
        out = subprocess.run(["pgbench", *conn, "-N", "-c", str(clients), "-j", "2", "-T",
                              str(seconds), name], check=True, capture_output=True,
                             text=True).stdout
    finally:
        subprocess.run(["dropdb", *conn, "--force", name], check=False)
    m = re.search(r"tps = ([0-9.]+)", out)
    if not m:
        raise SystemExit(f"could not read pgbench's figure:\n{out}")
    return float(m.group(1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.concurrent_sales",
                                description=__doc__.split("\n")[0])
    p.add_argument("--stations", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--customers-per-station", type=int, default=40)
    a = p.parse_args(argv)
    if not shutil.which("pgbench"):
        raise SystemExit("pgbench is not installed (Debian: postgresql-contrib / postgresql-XX)")

    root = Path(tempfile.mkdtemp(prefix="dbmis-stations-"))
    url, drop = new_database("postgres", root)
    try:
        t0 = time.perf_counter()
        fleet = prepare(url, root, a.stations, a.stations * a.customers_per_station)
        print(f"prepared {len(fleet)} customers with cards for {a.stations} stations in "
              f"{time.perf_counter() - t0:.1f} s")
        done, attempts, window, cpu = run_stations(url, root, fleet, a.stations,
                                                   a.customers_per_station, a.seconds)
    finally:
        drop()
        shutil.rmtree(root, ignore_errors=True)
    rate = done / window
    tps = pgbench_tps(a.stations, int(a.seconds), scale=a.stations)
    ratio = rate / tps
    print(f"DBMIS sales:        {done} completed of {attempts} attempts in {window:.0f} s "
          f"= {rate:.1f} sales/s ({a.stations} station processes)")
    print(f"pgbench -N:         {tps:.1f} tps ({a.stations} clients, same server, same run)")
    print(f"CPU per sale:       {cpu}")
    print(f"ratio:              {ratio:.1%}  (budget >= {BUDGET:.0%}: "
          f"{'PASS' if ratio >= BUDGET else 'FAIL'})")
    return 0 if ratio >= BUDGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
