"""Sales stations as separate processes selling against one database.

The load behind tests/integration/test_many_stations.py and bench/concurrent_sales.py. A utility's
stations share the database, the card key file and (here) one stock of simulated cards; each station
has its own reader slot, station code and receipt numbering. Two stations may hold the same card at
the same moment (a copied card, or a test that wants them to race): the database's conditional
sequence claim lets exactly one of them sell.

    python -m dbmis_core.testing.stations --url URL --root DIR --station S02 \
        --accounts 400000:UID,400001:UID --sales 50 --seed 2 [--start-at EPOCH]

prints one JSON object per sale attempt on standard output.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from .databases import ADMIN, ADMIN_PW

AMOUNT = "20.00"


def station_config(url: str, root: Path, code: str) -> dict:
    """Configuration of station ``code``: shared database and key file, own reader folder."""
    return {"database": {"url": url},
            "station": {"code": code, "name": f"Counter {code}"},
            "keys": {"master_secret_file": str(root / "keys" / "master.key")},
            "drivers": {"sim": {"folder": str(root / code / "sim")}},
            # counters sell back to back without the customer visiting the meter in between
            "sales": {"refuse_unloaded": False}}


def station_app(url: str, root: Path, code: str):
    from ..app import Application
    from ..config import Config

    folder = root / code / "sim"
    folder.mkdir(parents=True, exist_ok=True)
    stock = folder / "cards"
    if not stock.exists():
        (root / "cards").mkdir(parents=True, exist_ok=True)
        stock.symlink_to(root / "cards", target_is_directory=True)
    return Application(Config.from_dict(station_config(url, root, code), home=root / code))


def station_codes(n: int) -> list[str]:
    return [f"S{i + 1:02d}" for i in range(n)]


def prepare(url: str, root: Path, stations: int, customers: int) -> list[tuple[str, str]]:
    """Register ``stations`` stations and ``customers`` customers with meters and issued cards;
    returns [(account, card uid)]."""
    from ..domain import Customer, Meter
    from ..services import cards, registry, setup

    codes = station_codes(stations)
    first = station_app(url, root, codes[0])
    setup.init(first, ADMIN, ADMIN_PW)
    op = first.login(ADMIN, ADMIN_PW)
    setup.seed_demo(first, op)
    for code in codes[1:]:
        other = station_app(url, root, code)
        setup.init(other)
        other.close()
    accounts = []
    with first.uow() as uow:
        for i in range(customers):
            acct, meter_no = f"{400000 + i}", f"{40000000 + i:012d}"
            registry.add_customer(uow, op, Customer(acct, f"Station customer {i}", f"{i} Grid Road",
                                                    district_code="R1-L1-T1"))
            registry.add_meter(uow, op, Meter(meter_no, "DDSY-1P"))
            registry.install_meter(uow, op, meter_no, acct)
            accounts.append(acct)
        uow.commit()
    fleet = []
    for acct in accounts:
        first.reader.new_card()
        fleet.append((acct, cards.issue_user_card(first, op, acct)))
    first.reader.eject()
    first.close()
    return fleet


def run_station(url: str, root: Path, code: str, fleet: list[tuple[str, str]], sales: int,
                seed: int, seconds: float | None = None, start_at: float | None = None,
                out=sys.stdout) -> int:
    """Sell ``sales`` times (or for ``seconds``) to customers drawn from ``fleet``; one JSON line per
    attempt. Returns the number of completed sales."""
    from ..errors import DbmisError
    from ..services import vending

    app = station_app(url, root, code)
    op = app.login(ADMIN, ADMIN_PW)
    rng = random.Random(seed)
    if start_at and start_at > time.time():  # ready: wait for the others so all stations overlap
        time.sleep(start_at - time.time())
    done = attempts = 0
    stop = time.monotonic() + seconds if seconds else None
    while (attempts < sales) if stop is None else (time.monotonic() < stop):
        acct, uid = rng.choice(fleet)
        attempts += 1
        app.reader.insert(uid)
        try:
            r = vending.vend(app, op, acct, AMOUNT)
        except DbmisError as exc:
            rec = {"ok": False, "station": code, "account": acct, "kind": type(exc).__name__,
                   "error": str(exc)}
        else:
            done += 1
            rec = {"ok": True, "station": code, "account": acct, "vend_id": r.vend_id,
                   "sequence": r.sequence, "receipt_no": r.receipt_no, "amount": str(r.amount),
                   "state": r.state.value}
        rec["t"] = time.time()
        out.write(json.dumps(rec) + "\n")
    out.flush()
    app.close()
    return done


class StationProcess:
    """A station started with start_station; its lines go to a file, not a pipe: a pipe read only
    at the end fills up (64 KiB, a few hundred sales) and stops the station until it is read."""

    def __init__(self, code: str, proc: subprocess.Popen, out: Path, err: Path) -> None:
        self.code, self.proc, self.out, self.err = code, proc, out, err

    @property
    def pid(self) -> int:
        return self.proc.pid

    def records(self, timeout: float) -> list[dict]:
        """Wait for the station to end; one dict per sale attempt. A failed station raises
        RuntimeError with its standard error."""
        if self.proc.wait(timeout=timeout) != 0:
            raise RuntimeError(f"station {self.code} failed:\n{self.err.read_text()}")
        return [json.loads(line) for line in self.out.read_text().splitlines()]


def start_station(url: str, root: Path, code: str, fleet: list[tuple[str, str]], seed: int,
                  start_at: float, sales: int | None = None,
                  seconds: float | None = None) -> StationProcess:
    """Start station ``code`` as its own process selling to ``fleet`` ([(account, card uid)])
    ``sales`` times or for ``seconds``, from ``start_at`` (time.time())."""
    out, err = root / f"{code}.jsonl", root / f"{code}.err"
    args = [sys.executable, "-m", "dbmis_core.testing.stations", "--url", url, "--root", str(root),
            "--station", code, "--accounts", ",".join(f"{a}:{u}" for a, u in fleet),
            "--seed", str(seed), "--start-at", str(start_at)]
    args += ["--seconds", str(seconds)] if seconds is not None else ["--sales", str(sales or 20)]
    with open(out, "w") as fo, open(err, "w") as fe:
        return StationProcess(code, subprocess.Popen(args, stdout=fo, stderr=fe), out, err)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dbmis_core.testing.stations")
    p.add_argument("--url", required=True)
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--station", required=True)
    p.add_argument("--accounts", required=True, help="ACCOUNT:UID,ACCOUNT:UID,...")
    p.add_argument("--sales", type=int, default=20)
    p.add_argument("--seconds", type=float, help="sell for this long instead of --sales times")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start-at", type=float, help="wait until this time.time() so stations overlap")
    a = p.parse_args(argv)
    fleet = [tuple(pair.split(":", 1)) for pair in a.accounts.split(",") if pair]
    run_station(a.url, a.root, a.station, fleet, a.sales, a.seed, a.seconds, a.start_at)
    return 0


def totals(records: list[dict]) -> tuple[int, Decimal]:
    ok = [r for r in records if r["ok"]]
    return len(ok), sum((Decimal(r["amount"]) for r in ok), Decimal("0"))


if __name__ == "__main__":
    raise SystemExit(main())
