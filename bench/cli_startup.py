"""How fast ``dbmis --help`` answers (budget: under 0.5 s), measured as whole processes.

Plugins load lazily: help lists core commands from a table and plugin commands by name, without
importing SQLAlchemy, card drivers or Qt. Run: ``python -m bench.cli_startup [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BUDGET_S = 0.5


def measure(runs: int) -> list[float]:
    exe = shutil.which("dbmis", path=os.path.dirname(sys.executable)) or "dbmis"
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, DBMIS_HOME=home)
        env.pop("DBMIS_CONFIG", None)
        subprocess.run([exe, "--help"], env=env, capture_output=True, check=True)  # warm the caches
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([exe, "--help"], env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args(argv)
    times = measure(args.runs)
    med = statistics.median(times)
    print(f"dbmis --help: median {med * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms over {args.runs} runs")
    ok = med < BUDGET_S
    print(f"Budget: median under {BUDGET_S * 1000:.0f} ms: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
