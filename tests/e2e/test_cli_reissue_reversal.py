"""``dbmis card reissue`` and ``dbmis sale reverse`` as separate processes, on both databases."""

import json

import pytest

METER = "000020240001"
CLERK = ("--operator", "clerk", "--password", "clerk-demo-1")


def j(p):
    return json.loads(p.stdout)


@pytest.fixture
def supervisor_password(monkeypatch):
    """Set before ``cli`` copies the environment (fixtures are set up in argument order)."""
    monkeypatch.setenv("DBMIS_SUPERVISOR_PASSWORD", "admin-pass-1")


def _sold(cli):
    cli("init")
    cli("demo")
    old = j(cli("--json", "sim", "new-card"))["uid"]
    cli("card", "issue", "100001")
    sale = j(cli("--json", *CLERK, "vend", "100001", "20.00"))
    return old, sale


def test_card_reissue_through_the_command_line(cli):
    old, sale = _sold(cli)
    assert "reissue" in cli("card", "--help").stdout
    new = j(cli("--json", "sim", "new-card"))["uid"]
    r = j(cli("--json", *CLERK, "card", "reissue", "100001", "--fee", "3.00", "--reason", "lost"))
    assert (r["state"], r["old_uid"], r["new_uid"], r["sequence"], r["fee"]) == (
        "completed", old, new, 1, "3.00")
    assert r["fee_receipt_no"] == "S01-00000002"
    loaded = j(cli("--json", "sim", "meter-insert", METER))
    assert loaded["accepted"] and loaded["applied"] == sale["credit"]
    cli("sim", "insert", old)
    refused = cli("vend", "100001", "10.00", ok=False)
    assert refused.returncode == 1 and "is lost" in refused.stderr
    meter_says = j(cli("--json", "sim", "meter-insert", METER))
    assert not meter_says["accepted"] and "refused" in meter_says["message"]
    again = cli("card", "reissue", "100001", ok=False)  # the old card is not blank
    assert again.returncode == 1 and "already registered" in again.stderr


def test_sale_reverse_needs_a_supervisor(supervisor_password, cli):
    old, sale = _sold(cli)
    assert "reverse" in cli("sale", "--help").stdout
    vid = str(sale["vend_id"])
    denied = cli(*CLERK, "sale", "reverse", vid, "--reason", "typo", ok=False)
    assert denied.returncode == 1 and "supervisor must approve" in denied.stderr
    r = j(cli("--json", *CLERK, "sale", "reverse", vid, "--reason", "typo", "--supervisor", "admin"))
    assert (r["state"], r["sequence"], r["refund"], r["approved_by"], r["operator"]) == (
        "completed", 1, "20.00", "admin", "clerk")
    sales = j(cli("--json", "sales", "100001"))
    assert [(s["sequence"], s["state"]) for s in sales] == [(1, "reversed")]
    twice = cli(*CLERK, "sale", "reverse", vid, "--reason", "typo", "--supervisor", "admin", ok=False)
    assert twice.returncode == 1 and "already reversed" in twice.stderr
    nxt = j(cli("--json", *CLERK, "vend", "100001", "10.00"))
    assert nxt["sequence"] == 1  # the released sequence is sold again
    cli("sim", "meter-insert", METER)
    late = cli("sale", "reverse", str(nxt["vend_id"]), "--reason", "late", ok=False)
    assert late.returncode == 1 and "already been loaded" in late.stderr


def test_wrong_supervisor_password_is_refused(cli):
    old, sale = _sold(cli)
    p = cli(*CLERK, "sale", "reverse", str(sale["vend_id"]), "--reason", "x", "--supervisor",
            "admin", ok=False)
    assert p.returncode == 1 and "DBMIS_SUPERVISOR_PASSWORD" in p.stderr
    assert j(cli("--json", "sales", "100001"))[0]["state"] == "completed"


def test_pulled_reissue_is_settled_by_card_reconcile(cli):
    old, sale = _sold(cli)
    new = j(cli("--json", "sim", "new-card"))["uid"]
    cli("sim", "fault", "--pull-after-bytes", "60")  # the header lands, the record does not
    pulled = cli("card", "reissue", "100001", ok=False)
    assert pulled.returncode == 1 and "pending" in pulled.stderr
    cli("sim", "insert", new)
    settled = j(cli("--json", "card", "reconcile"))
    assert [r["state"] for r in settled["reissues"]] == ["failed"] and settled["sales"] == []
    assert cli("card", "reconcile").stdout.strip() == "nothing to settle"
    r = j(cli("--json", "card", "reissue", "100001"))  # the same card, again
    assert (r["state"], r["new_uid"], r["old_uid"], r["sequence"]) == ("completed", new, old, 1)
