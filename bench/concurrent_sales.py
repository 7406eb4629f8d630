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
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from dbmis_core.testing.databases import PG_ADMIN_URL, new_database
from dbmis_core.testing.stations import prepare, station_codes

BUDGET = 0.15


def server_cpu_seconds() -> float | None:
    """User + system CPU of every local ``postgres`` process so far (None if none is visible: the
    server runs elsewhere). Backends that exit in between are missed, so this is a lower bound."""
    tick = os.sysconf("SC_CLK_TCK")
    total, seen = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
        except (OSError, IndexError):
            continue
        if name.startswith("postgres"):
            rest = fields[1].split()
            total += int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15 of stat)
            seen = True
    return total / tick if seen else None


def run_stations(url: str, root: Path, fleet, stations: int, per_station: int,
                 seconds: float) -> tuple[int, int, float]:
    """(completed sales, attempts, window seconds) for ``stations`` processes selling at once."""
    start_at = time.time() + 8  # every process imported, connected and logged in before the start
    procs = []
    for i, code in enumerate(station_codes(stations)):
        own = fleet[i * per_station:(i + 1) * per_station]
        accounts = ",".join(f"{a}:{u}" for a, u in own)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dbmis_core.testing.stations", "--url", url, "--root", str(root),
             "--station", code, "--accounts", accounts, "--seconds", str(seconds), "--seed", str(i),
             "--start-at", str(start_at)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    done = attempts = 0
    for p in procs:
        out, err = p.communicate(timeout=seconds + 120)
        if p.returncode != 0:
            raise SystemExit(f"a station failed:\n{err}")
        for line in out.splitlines():
            rec = json.loads(line)
            attempts += 1
            done += rec["ok"]
    return done, attempts, seconds


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


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
        children0, server0 = _children_cpu(), server_cpu_seconds()
        done, attempts, window = run_stations(url, root, fleet, a.stations,
                                              a.customers_per_station, a.seconds)
        children, server1 = _children_cpu() - children0, server_cpu_seconds()
    finally:
        drop()
        shutil.rmtree(root, ignore_errors=True)
    rate = done / window
    tps = pgbench_tps(a.stations, int(a.seconds), scale=a.stations)
    ratio = rate / tps
    print(f"DBMIS sales:        {done} completed of {attempts} attempts in {window:.0f} s "
          f"= {rate:.1f} sales/s ({a.stations} station processes)")
    print(f"pgbench -N:         {tps:.1f} tps ({a.stations} clients, same server, same run)")
    if done:
        server = (f"PostgreSQL server {(server1 - server0) / done * 1000:.2f} ms"
                  if server0 is not None and server1 is not None else "server not visible")
        print(f"CPU per sale:       stations {children / done * 1000:.2f} ms (whole processes, "
              f"start-up included), {server}; {os.cpu_count()} CPUs")
    print(f"ratio:              {ratio:.1%}  (budget >= {BUDGET:.0%}: "
          f"{'PASS' if ratio >= BUDGET else 'FAIL'})")
    return 0 if ratio >= BUDGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
