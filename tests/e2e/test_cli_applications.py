"""``dbmis application ...`` as separate processes on both databases: one application all the way to
an opened account whose card is issued on a blank card the simulated reader holds, refusals, the
printable form and an all-or-nothing CSV batch."""

import json
import re

import pytest


def j(p):
    return json.loads(p.stdout)


def _without_stamp(form):
    return "\n".join(line for line in form.rstrip("\n").splitlines()
                     if not line.startswith("Printed "))


@pytest.fixture
def run(cli):
    cli("init")
    cli("demo")
    return cli


def test_one_application_to_an_opened_account_with_a_card(run, tmp_path):
    a = j(run("--json", "application", "new", "Rosa Park", "--address", "5 Elm Street",
              "--phone", "555-0199", "--amps", "32", "--model", "DDSY-1P", "--capacity-mode",
              "trip", "--tariff", "flat", "--district", "R1-L1-T1", "--notes", "at the counter"))
    number = a["number"]
    assert a["state"] == "received" and number.startswith("S01-") and number.endswith("-00001")
    early = run("application", "advance", number, "install", ok=False)
    assert early.returncode == 1
    assert early.stderr.strip() == (f"error: application {number} is received: cannot install "
                                    "(needs meter_assigned); its next step is survey")
    assert j(run("--json", "application", "show", number))["steps"].__len__() == 1
    run("application", "advance", number, "survey", "--notes", "pole 20 m away")
    run("application", "advance", number, "approve")
    got = j(run("--json", "application", "advance", number, "assign-meter", "--meter",
                "000020249002"))
    assert got["meter_no"] == "000020249002" and got["state"] == "meter_assigned"
    run("application", "advance", number, "install", "--notes", "seal 0042")
    no_card = run("application", "advance", number, "open", ok=False)
    assert no_card.returncode == 1 and no_card.stderr.startswith("error: ")
    assert "Traceback" not in no_card.stderr
    blank = j(run("--json", "sim", "new-card"))["uid"]
    opened = j(run("--json", "application", "advance", number, "open"))
    assert (opened["state"], opened["account_no"], opened["card_uid"]) == ("opened", "100007",
                                                                           blank)
    card = j(run("--json", "card", "read"))
    assert (card["uid"], card["account_no"], card["meter_no"], card["registered"]) == (
        blank, "100007", "000020249002", True)
    customer = j(run("--json", "customer", "show", "100007"))
    assert "Rosa Park" in json.dumps(customer)
    done = run("application", "advance", number, "complete")
    assert done.stdout.strip() == f"application {number} is completed"
    shown = j(run("--json", "application", "show", number))
    assert [s["state"] for s in shown["steps"]] == ["received", "surveyed", "approved",
                                                    "meter_assigned", "installed", "opened",
                                                    "completed"]
    assert shown["steps"][1]["notes"] == "pole 20 m away"
    text = run("application", "show", number).stdout
    assert "seal 0042" in text and f"card {blank}" in text
    form = run("application", "form", number).stdout
    assert "Rosa Park" in form and "5 Elm Street" in form and "000020249002" in form
    assert all(state in form for state in ("surveyed", "meter_assigned", "completed"))
    as_json = j(run("--json", "application", "form", number))
    # the two prints may straddle a minute, so the "Printed ... by" stamp is compared by shape
    assert _without_stamp(as_json["text"]) == _without_stamp(form)
    assert re.search(r"^Printed \d{4}-\d\d-\d\d \d\d:\d\d UTC by admin$", form, re.M)
    pdf = tmp_path / "form.pdf"
    written = j(run("--json", "application", "form", number, "--pdf", str(pdf)))
    assert written["bytes"] == pdf.stat().st_size and pdf.read_bytes().startswith(b"%PDF-")
    listed = j(run("--json", "application", "list", "--state", "completed"))
    assert [x["number"] for x in listed] == [number]
    assert j(run("--json", "application", "list", "--state", "received")) == []
    assert [x["number"] for x in j(run("--json", "application", "list", "--search", "rosa"))] == [
        number]


def test_reject_cancel_and_refusals(run):
    n1 = j(run("--json", "application", "new", "Far Away"))["number"]
    n2 = j(run("--json", "application", "new", "Changed Mind"))["number"]
    assert run("application", "reject", n1, "--reason", "no line within 2 km").stdout.strip() == (
        f"application {n1} rejected")
    again = run("application", "cancel", n1, "--reason", "x", ok=False)
    assert again.returncode == 1 and "is rejected and cannot be cancelled" in again.stderr
    run("application", "cancel", n2, "--reason", "moved away")
    assert [x["number"] for x in j(run("--json", "application", "list", "--state",
                                       "cancelled"))] == [n2]
    wrong = run("application", "advance", n2, "survey", "--meter", "000020249001", ok=False)
    assert "--meter belongs to the assign-meter step" in wrong.stderr
    by_clerk = j(run("--json", "--operator", "clerk", "--password", "clerk-demo-1",
                     "application", "new", "Zed", "--model", "DDSY-1P"))
    assert by_clerk["created_by"] == "clerk" and by_clerk["steps"][0]["operator"] == "clerk"


def test_batch_csv_is_all_or_nothing(run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,address,category,requested_amps\n"
                   "Ana Lima,1 Elm Street,residential,20\n"
                   ",2 Elm Street,residential,\n"
                   "Bo Chen,3 Elm Street,palace,\n"
                   "Cy Dee,4 Elm Street,residential,lots\n")
    p = run("application", "batch", str(bad), "--model", "DDSY-1P", "--capacity-mode", "alarm",
            "--tariff", "flat", "--district", "R1-L1-T2", ok=False)
    assert p.returncode == 1 and p.stderr.startswith("error: 3 of 4 applicants are wrong")
    for who in ("applicant 2 (no name)", "applicant 3 (Bo Chen)", "applicant 4 (Cy Dee)"):
        assert who in p.stderr
    assert j(run("--json", "application", "list")) == []
    good = tmp_path / "good.csv"
    good.write_text("name,address,phone\nAna Lima,1 Elm Street,555-1\nBo Chen,3 Elm Street,\n")
    made = j(run("--json", "application", "batch", str(good), "--model", "DDSY-1P",
                 "--capacity-mode", "alarm", "--tariff", "flat", "--district", "R1-L1-T2",
                 "--batch", "ELM-2026", "--to", "meter_assigned"))
    assert [(m["applicant_name"], m["state"], m["meter_no"]) for m in made] == [
        ("Ana Lima", "meter_assigned", "000020249001"), ("Bo Chen", "meter_assigned",
                                                         "000020249002")]
    assert {(m["model_code"], m["capacity_mode"], m["tariff"], m["district_code"], m["batch"])
            for m in made} == {("DDSY-1P", "alarm", "flat", "R1-L1-T2", "ELM-2026")}
    assert len(j(run("--json", "application", "list", "--batch", "ELM-2026"))) == 2
