"""The headless main job: one prepaid loop on the demo data, through the real ``dbmis`` commands.

Runs as the demo clerk on the default (or configured) database with the simulated reader and meter.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import redirect_stdout
from io import StringIO

from .cli import main

ACCOUNTS = ["100001", "100002", "100003", "100004", "100005", "100006"]


def _run(*args: str, show: bool = True) -> tuple[int, str]:
    buf = StringIO()
    with redirect_stdout(buf):
        rc = main(list(args))
    out = buf.getvalue()
    if show:
        print(f"\n$ dbmis {' '.join(args)}")
        print(out.rstrip())
    return rc, out


def _data(*args: str):
    rc, out = _run("--json", *args, show=False)
    if rc:
        raise SystemExit(rc)
    return json.loads(out)


def walkthrough() -> int:
    os.environ.setdefault("DBMIS_OPERATOR", "clerk")
    os.environ.setdefault("DBMIS_PASSWORD", "clerk-demo-1")
    account = meter = uid = None
    for acct in ACCOUNTS:
        shown = _data("customer", "show", acct)
        active = [c["uid"] for c in shown["cards"] if c["status"] == "active"]
        if not active:
            account, meter = acct, shown["meter"]
            _run("sim", "new-card")
            _run("card", "issue", acct)
            break
        if account is None:
            account, meter, uid = acct, shown["meter"], active[0]
    else:
        _run("sim", "insert", uid)
    rc, _ = _run("vend", account, "50.00")
    if rc:
        print("(the customer inserts the card in the meter first)")
        _run("sim", "meter-insert", meter)
        _run("vend", account, "50.00")
    _run("sim", "meter-insert", meter)
    _run("sim", "meter-run", meter, "--days", "30", "--kwh-per-day", "2.5")
    _run("sim", "meter-insert", meter)
    _run("vend", account, "20.00")
    _run("customer", "show", account)
    return 0


if __name__ == "__main__":
    sys.exit(walkthrough())
