"""Every service card through the ``dbmis`` program as separate processes, on both databases:
written (and logged), carried to simulated meters, read back with ``card show``, imported."""

import json
from decimal import Decimal

import pytest


M1, M2, M3 = "000020240001", "000020240002", "000020240003"
SPARE = "000020249001"  # in the store: never sold to


@pytest.fixture
def run(cli):
    cli("init", "--demo")
    return cli


def js(run, *args):
    return json.loads(run("--json", *args).stdout)


def buy(run, account: str, meter: str, amount: str = "28.00", days: int = 10) -> str:
    uid = js(run, "sim", "new-card")["uid"]
    run("card", "issue", account)
    run("vend", account, amount)
    assert js(run, "sim", "meter-insert", meter)["accepted"]
    run("sim", "meter-run", meter, "--days", str(days), "--kwh-per-day", "2")
    return uid


def write(run, command: str, *args) -> dict:
    run("sim", "new-card")
    return js(run, "card", command, *args)


def insert(run, meter: str) -> dict:
    return js(run, "sim", "meter-insert", meter)


def test_every_service_card_through_the_command_line(run):
    buy(run, "100001", M1)
    buy(run, "100002", M2, days=5)

    # set: a batch card, applied once by each meter, versions imported
    s = write(run, "write-set", "--alarm1", "15", "--hoarding-limit", "400", "--power-limit", "3000")
    assert s["targets"] == "any" and s["parameters"]["version"] == 1
    assert insert(run, M1)["message"] == "parameter version 1 applied"
    assert insert(run, M2)["accepted"] and "already applied" in insert(run, M2)["message"]
    shown = js(run, "card", "show")
    assert shown["kind"] == "service" and shown["meters_answered"] == [M1, M2]
    assert shown["command"]["params"]["hoarding_limit"] == "400.00"
    assert js(run, "card", "import")["parameter_versions"] == [
        {"meter_no": M1, "version": 1}, {"meter_no": M2, "version": 1}]
    assert js(run, "sim", "meter-show", M1)["parameters"]["hoarding_limit"] == "400.00"

    # check: copies everything, changes nothing, imported once
    write(run, "write-check", "--meter", M1)
    before = js(run, "sim", "meter-show", M1)
    assert insert(run, M1)["accepted"] and js(run, "sim", "meter-show", M1) == before
    answer = js(run, "card", "show")["answer"]
    assert answer["returned"]["cumulative_consumed"] == "20.00"
    assert answer["params"]["version"] == 1 and answer["suspended"] is False
    imported = js(run, "card", "import")
    assert [i["account_no"] for i in imported["imported"]] == ["100001"]
    assert js(run, "card", "import")["imported"] == []

    # test: limited uses
    write(run, "write-test", "--credit", "1.50", "--uses", "1")
    assert insert(run, SPARE)["applied"] == "1.50"
    used_up = insert(run, M3)
    assert not used_up["accepted"] and "used up" in used_up["message"]

    # preset: only a meter that never loaded anything, repaid by the first purchase
    write(run, "write-preset", "--credit", "10.00")
    assert insert(run, M3)["applied"] == "10.00"
    assert not insert(run, M1)["accepted"]
    assert js(run, "sim", "meter-show", M3)["preset_owed"] == "10.00"
    buy(run, "100003", M3, amount="85.00", days=0)  # 85.00 at 0.85 = 100 kWh, 10 of it repays
    assert js(run, "sim", "meter-show", M3)["remaining"] == "100.00"

    # meter reading: a route, imported for several customers
    route = write(run, "write-reading", "--route", "R1-L1")
    for meter in (M1, M2, M3):
        assert insert(run, meter)["accepted"]
    shown = js(run, "card", "show")
    assert [a["meter_no"] for a in shown["answers"]] == [M1, M2, M3]
    assert sorted(i["account_no"] for i in js(run, "card", "import")["imported"]) == [
        "100002", "100003"]  # M1's reading carries the same meter time as its check data

    # management: suspend, nothing is consumed, resume
    write(run, "write-management", "--meter", M2, "--suspend")
    assert insert(run, M2)["message"] == "supply suspended"
    assert Decimal(js(run, "sim", "meter-run", M2, "--days", "3")["consumed"]) == 0
    assert js(run, "card", "show")["answer"]["returned"]["status_flags"] == [
        "relay_open", "suspended"]
    write(run, "write-management", "--meter", M2, "--resume")
    assert insert(run, M2)["message"] == "supply resumed"
    assert Decimal(js(run, "sim", "meter-run", M2, "--days", "1")["consumed"]) == 3

    # clear: the data before the reset comes back and is imported
    write(run, "write-clear", "--meter", M1)
    assert insert(run, M1)["message"].startswith("meter cleared")
    assert js(run, "sim", "meter-show", M1)["last_sequence"] == 0
    answer = js(run, "card", "show")["answer"]["returned"]
    assert answer["last_sequence"] == 1 and answer["remaining"] == "30.00"
    assert js(run, "card", "import")["notes"][0].startswith(f"meter {M1} now counts")

    # the log lists every card, newest first
    log = js(run, "card", "log")
    assert [e["card_type"] for e in log] == ["clear", "management", "management", "meter_reading",
                                             "preset", "test", "check", "set"]
    assert all(e["operator"] == "admin" and e["station"] == "S01" for e in log)
    assert log[3]["uid"] == route["uid"] and log[3]["parameters"] == {"route": "R1-L1"}
    assert log[6]["targets"] == [M1] and log[7]["targets"] == "any"
    assert log[3]["imported_at"] is not None


def test_refusals_are_one_line_and_write_nothing(run):
    run("sim", "new-card")
    denied = run("-u", "clerk", "--password", "clerk-demo-1", "card", "write-test", ok=False)
    assert denied.returncode == 1 and "may not write_service_cards" in denied.stderr
    missing = run("card", "write-check", ok=False)
    assert missing.returncode == 2 and "--meter" in missing.stderr
    bad = run("card", "write-management", "--meter", M1, ok=False)
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "error: a management card needs action 'suspend' or 'resume'")
    assert run("card", "log").stdout == "no service cards written\n"
    assert js(run, "card", "show")["kind"] == "blank"
    assert "nothing" not in run("card", "show").stdout and "kind: blank" in run("card", "show").stdout
    nothing = run("card", "import", ok=False)
    assert nothing.returncode == 1 and "blank" in nothing.stderr
