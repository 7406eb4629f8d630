"""Issue and read back a user card through pcscd + vpcd + the card emulator (budget: median < 300 ms).

    python -m bench.pcsc_issue_read [--runs N] [--dialect acs|omnikey]

Each run puts a new blank card (a simulated SLE4442 card file behind ``CardEmulator``) into the
virtual reader, then times what a clerk waits for: connect, personalise (reference card format),
write_vend, read, disconnect. Putting the card in is the clerk's hand and is not timed. pcscd is
started in the foreground here and stopped afterwards (one already running is reused).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from dbmis_core.cards import CardHeader, VendRecord
from dbmis_core.domain import CardType, CreditUnit
from dbmis_core.keys import KeyStore
from dbmis_pcsc.reader import PcscReader
from dbmis_pcsc.testing import CardEmulator, Pcscd, reader_name
from dbmis_refcard.format import RefCardFormat
from dbmis_sim.sle4442 import SimCardConnection, new_card_file

BUDGET_S = 0.300
HEADER = CardHeader(CardType.USER, 1, "123456", "100001")
RECORD = VendRecord(1, Decimal("89.28"), CreditUnit.KWH, "123456", "100001",
                    datetime(2024, 5, 1, tzinfo=UTC))


def issue_and_read(reader: PcscReader, fmt: RefCardFormat) -> float:
    t0 = time.perf_counter()
    with closing(reader.connect()) as conn:
        fmt.personalise(conn, HEADER)
        fmt.write_vend(conn, RECORD)
        image = fmt.read(conn)
    elapsed = time.perf_counter() - t0
    if image.vend != RECORD:
        raise SystemExit(f"read back {image.vend}, wrote {RECORD}")
    return elapsed


def measure(runs: int, dialect: str, folder: Path) -> list[float]:
    fmt = RefCardFormat(KeyStore({1: b"k" * 32}, 1))
    reader = PcscReader(reader_name(0), dialect)
    times = []
    for i in range(runs):
        path = folder / f"card{i}.card"
        new_card_file(path)
        emulator = CardEmulator(lambda p=path: SimCardConnection(p), dialect).insert()
        try:
            times.append(issue_and_read(reader, fmt))
        finally:
            emulator.remove()
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--dialect", choices=["acs", "omnikey"], default="acs")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, Pcscd(log=Path(tmp) / "pcscd.log"):
        times = measure(args.runs, args.dialect, Path(tmp))
    median = statistics.median(times)
    p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else times[0]
    ok = median < BUDGET_S
    print(f"issue + read back a user card through pcscd ({args.dialect}, {len(times)} runs): "
          f"median {median * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, "
          f"min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
    print(f"budget: median under {BUDGET_S * 1000:.0f} ms: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
