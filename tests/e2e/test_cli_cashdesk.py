"""The cash desk through the ``dbmis`` program on both databases: reprints, PDFs, the receipt
register with a void sale, day summary, closing and the list of closings."""

import json
from decimal import Decimal

import pytest

CLERK = ("--operator", "clerk", "--password", "clerk-demo-1")


@pytest.fixture
def run(cli):
    cli("init", "--demo")
    return cli


def js(run, *args):
    return json.loads(run("--json", *args).stdout)


def sell(run, account, amount, *login):
    run("sim", "new-card")
    run(*login, "card", "issue", account)
    return js(run, *login, "vend", account, amount)


def test_receipts_register_and_day_closing(run, tmp_path):
    first = sell(run, "100001", "20.00", *CLERK)
    assert first["receipt_no"] == "S01-00000001"
    # a sale whose card is pulled mid-write stays pending, then reconciles as failed (void)
    uid = js(run, "sim", "new-card")["uid"]
    run(*CLERK, "card", "issue", "100002")
    run("sim", "fault", "--pull-after-bytes", "10")
    pulled = run(*CLERK, "vend", "100002", "30.00", ok=False)
    assert pulled.returncode == 1 and "pending" in pulled.stderr
    refused = run(*CLERK, "day", "close", "--counted", "20.00", ok=False)
    assert refused.returncode == 1 and "reconcile" in refused.stderr
    run("sim", "insert", uid)
    assert js(run, *CLERK, "reconcile")[0]["state"] == "failed"
    third = sell(run, "100003", "15.00", *CLERK)
    assert third["receipt_no"] == "S01-00000003"

    # reprints: marked COPY, same number, and the counter does not move
    copy = run("receipt", "show", "S01-00000001", "--copy").stdout
    assert "*** COPY ***" in copy and "Receipt no : S01-00000001" in copy
    assert max(len(line) for line in copy.splitlines()) <= 42
    shown = js(run, "receipt", "show", "S01-00000003")
    assert shown["copy"] is False and "COPY" not in shown["text"] and "15.00" in shown["text"]
    void = run("receipt", "show", "S01-00000002", ok=False)
    assert void.returncode == 1 and "void" in void.stderr
    assert run("receipt", "show", "S01-00000077", ok=False).returncode == 1

    pdf, inv = tmp_path / "r.pdf", tmp_path / "inv.pdf"
    assert js(run, "receipt", "pdf", "S01-00000001", str(pdf), "--copy")["bytes"] > 500
    run("receipt", "invoice", "S01-00000003", str(inv))
    assert pdf.read_bytes().startswith(b"%PDF") and inv.read_bytes().startswith(b"%PDF")
    assert b"595.28" in inv.read_bytes()

    reg = js(run, "receipt", "register")
    assert reg["ok"] and reg["next_number"] == 4
    assert [(r["receipt_no"], r["what"]) for r in reg["lines"]] == [
        ("S01-00000001", "sale completed"), ("S01-00000002", "sale void (failed)"),
        ("S01-00000003", "sale completed")]
    assert "complete: 3 numbers" in run("receipt", "register", "--check").stdout

    # the clerk's till: two sales; closing it short records the discrepancy
    s = js(run, *CLERK, "day", "summary")
    assert (s["sales"]["count"], s["expected"], s["unfinished"]) == (2, "35.00", [])
    assert js(run, "day", "summary")["sales"]["count"] == 0  # the admin sold nothing
    denied = run(*CLERK, "day", "close", "--counted", "0", "--operator", "admin", ok=False)
    assert denied.returncode == 1 and "close_any_day" in denied.stderr
    closed = js(run, *CLERK, "day", "close", "--counted", "34.00", "--note", "one short")
    assert (closed["expected"], closed["counted"], closed["discrepancy"]) == ("35.00", "34.00",
                                                                              "-1.00")
    again = run(*CLERK, "day", "close", "--counted", "0", ok=False)
    assert "nothing to close" in again.stderr
    listed = js(run, "day", "list", "--discrepancies")
    assert [(d["id"], d["operator"], d["note"]) for d in listed] == [(closed["id"], "clerk",
                                                                       "one short")]
    assert "one short" in run("day", "list").stdout
    # a closed day's sale still reprints (with the same number) and the register still balances
    assert "S01-00000001" in run("receipt", "show", "S01-00000001", "--copy").stdout
    reg = js(run, "receipt", "register")
    assert reg["ok"] and [r["closing_id"] for r in reg["lines"]] == [closed["id"], None,
                                                                     closed["id"]]
    assert Decimal(closed["discrepancy"]) == Decimal(closed["counted"]) - Decimal(closed["expected"])


def test_a_supervisor_closes_the_clerks_till(run):
    sell(run, "100001", "20.00", *CLERK)
    closed = js(run, "day", "close", "--counted", "20.00", "--operator", "clerk")
    assert (closed["operator"], closed["closed_by"], closed["discrepancy"]) == ("clerk", "admin",
                                                                               "0.00")
    assert "expected" in run("day", "summary", "--operator", "clerk").stdout
