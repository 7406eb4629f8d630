"""Customer changes, meter replacement, closure, debts, inspection notices and the sale check through
the ``dbmis`` program, on both databases."""

import json
from decimal import Decimal


def j(p):
    return json.loads(p.stdout)


def test_changes_debts_replacement_record(cli):
    cli("init")
    cli("demo")
    changed = j(cli("--json", "account", "change", "100001", "--phone", "0800 55",
                    "--tariff", "flat", "--capacity", "20", "--capacity-mode", "trip"))
    assert [c["kind"] for c in changed] == ["details", "tariff", "capacity"]
    bad = cli("account", "change", "100001", "--tariff", "nosuch", ok=False)
    assert bad.returncode == 1 and "unknown tariff" in bad.stderr
    cli("account", "change", "100001", "--tariff", "default")
    debt = j(cli("--json", "debt", "add", "100001", "10.00", "meter replacement fee"))
    assert debt["owed"] == "10.00"
    paid = j(cli("--json", "debt", "pay", "100001", "4.00"))
    assert paid["parts"] == [{"debt_id": debt["id"], "amount": "4.00"}]
    cli("--json", "sim", "new-card")
    cli("card", "issue", "100001")
    check = j(cli("--json", "sale", "check", "100001", "20.00"))
    assert check["refusal"] is None and check["debt_recovered"] == "4.00"
    sold = j(cli("--json", "vend", "100001", "20.00"))
    assert sold["amount"] == "20.00"
    owed = j(cli("--json", "debt", "list", "100001"))
    assert owed[0]["owed"] == "2.00"
    cli("sim", "meter-insert", "000020240001")
    credit = Decimal(sold["credit"])
    new_uid = j(cli("--json", "sim", "new-card"))["uid"]
    rep = j(cli("--json", "account", "replace-meter", "100001", "000020249001"))
    assert rep["new_card_uid"] == new_uid and Decimal(rep["makeup"]["credit"]) == credit
    loaded = j(cli("--json", "sim", "meter-insert", "000020249001"))
    assert Decimal(loaded["applied"]) == credit
    again = j(cli("--json", "sim", "meter-insert", "000020249001"))
    assert Decimal(again["applied"]) == 0
    rec = j(cli("--json", "account", "record", "100001"))
    assert rec["customer"]["meter_no"] == "000020249001"
    kinds = [e["kind"] for e in rec["entries"]]
    for k in ("account", "change", "debt", "cash", "card", "purchase", "makeup", "debt_payment"):
        assert k in kinds, k
    text = cli("account", "record", "100001").stdout
    assert "make-up credit" in text and "000020249001" in text


def test_close_with_refund_and_inspection_notices(cli):
    cli("init")
    cli("demo")
    cli("sim", "new-card")
    cli("card", "issue", "100002")
    cli("vend", "100002", "30.00")
    refused = cli("--json", "sale", "check", "100002", "10.00", ok=False)
    assert refused.returncode == 1 and "not been loaded" in j(refused)["refusal"]
    assert j(cli("--json", "inspection", "list")) == []
    closed = j(cli("--json", "account", "close", "100002", "--refund"))
    assert Decimal(closed["value"]) > 0 and closed["refund_receipt"]
    no = cli("vend", "100002", "10.00", ok=False)
    assert no.returncode == 1 and "closed" in no.stderr
    none = cli("account", "close", "100003", ok=False)
    assert "either a refund or a transfer" in none.stderr
    cli("inspection", "close", "99", "nothing", ok=False)
