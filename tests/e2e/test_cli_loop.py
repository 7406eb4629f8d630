"""The whole prepaid loop through the ``dbmis`` program, as separate processes, on both databases.

init -> register -> issue card -> vend -> meter runs 30 days -> vend again (reads the return and
records the consumption).
"""

import json
from decimal import Decimal

import pytest


@pytest.fixture
def run(cli):
    return cli


def j(p):
    return json.loads(p.stdout)


def test_prepaid_loop(run):
    run("init")
    run("customer", "add", "200001", "--name", "Ana Lima", "--address", "3 River Rd")
    run("meter", "add", "000077770001", "--model", "DDSY-1P", ok=False)  # no model yet: error
    run("demo")  # brings meter models and regions
    run("meter", "add", "000077770001", "--model", "DDSY-1P")
    run("meter", "install", "000077770001", "200001")
    uid = j(run("--json", "sim", "new-card"))["uid"]
    assert j(run("--json", "card", "issue", "200001"))["uid"] == uid
    first = j(run("--json", "vend", "200001", "56.00"))
    assert (first["sequence"], first["energy"], first["state"]) == (1, "100.00", "completed")
    refused = run("vend", "200001", "10.00", ok=False)
    assert refused.returncode == 1 and "not been loaded" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    loaded = j(run("--json", "sim", "meter-insert", "000077770001"))
    assert loaded["applied"] == "100.00"
    ran = j(run("--json", "sim", "meter-run", "000077770001", "--days", "30", "--kwh-per-day",
                "2.5"))
    assert Decimal(ran["consumed"]) == Decimal("75")
    run("sim", "meter-insert", "000077770001")
    card = j(run("--json", "card", "read"))
    assert card["return"]["cumulative_consumed"] == "75.00"
    assert card["loaded_into_meter"] is True
    second = j(run("--json", "vend", "200001", "28.00"))
    assert second["sequence"] == 2 and Decimal(second["consumption_recorded"]) == Decimal("75.00")
    shown = j(run("--json", "customer", "show", "200001"))
    assert [s["sequence"] for s in shown["sales"]] == [1, 2]
    assert shown["returns"][-1]["cumulative_consumed"] == "75.00"
    assert Decimal(shown["returns"][-1]["remaining"]) == Decimal("25.00")


def test_errors_are_one_line_and_change_nothing(run):
    run("init")
    run("demo")
    bad = run("customer", "add", "12ab", "--name", "X", ok=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error: account number")
    assert "Traceback" not in bad.stderr
    denied = run("--password", "wrong-password", "customer", "find", "1000", ok=False)
    assert denied.returncode == 1 and "wrong operator name or password" in denied.stderr
    assert j(run("--json", "customer", "find", "12ab")) == []
    found = j(run("--json", "customer", "find", "Santos"))
    assert [c["account_no"] for c in found] == ["100002"]


def test_commands_need_an_initialised_database(run):
    p = run("customer", "find", "1", ok=False)
    assert p.returncode == 1 and "dbmis init" in p.stderr
