"""``dbmis settings``, ``dbmis code``, ``dbmis meter-store`` and ``dbmis personnel`` through the real
program, on both databases."""

import csv
import json

from openpyxl import Workbook


def j(p):
    return json.loads(p.stdout)


def test_settings_and_the_sale_limit(cli):
    cli("init")
    cli("demo")
    listed = {v["name"]: v for v in j(cli("--json", "settings", "list"))}
    assert listed["sales.max_amount"]["value"] == "5000.00"
    assert listed["sales.max_amount"]["source"] == "config"
    got = j(cli("--json", "settings", "set", "sales.max_amount", "300"))
    assert (got["value"], got["source"], got["updated_by"]) == ("300.00", "database", "admin")
    assert "sales.max_amount = 300.00 (database" in cli("settings", "get", "sales.max_amount").stdout
    refused = cli("quote", "100001", "400", ok=False)
    assert refused.returncode == 1 and "largest purchase is 300.00" in refused.stderr
    bad = cli("settings", "set", "sales.debt_share", "2", ok=False)
    assert bad.returncode == 1 and "from 0 to 1" in bad.stderr
    assert j(cli("--json", "settings", "set", "sales.max_amount", "--reset"))["source"] == "config"
    cli("quote", "100001", "400")
    unknown = cli("settings", "get", "nope", ok=False)
    assert unknown.returncode == 1 and "unknown setting" in unknown.stderr


def test_code_tables(cli):
    cli("init")
    cli("demo")
    cli("code", "add", "category", "street_lights", "Street lighting")
    cats = [e["code"] for e in j(cli("--json", "code", "list", "category"))]
    assert cats[-1] == "street_lights" and "residential" in cats
    cli("customer", "add", "200001", "--name", "Town lights", "--category", "street_lights")
    cli("code", "add", "region", "R3", "East region")
    cli("code", "add", "line", "R3-L1", "Line East-1", "--parent", "R3")
    wrong = cli("code", "add", "district", "R3-T1", "TD", "--parent", "R3", ok=False)
    assert wrong.returncode == 1 and "parent must be a line" in wrong.stderr
    moved = j(cli("--json", "code", "change", "district", "R1-L1-T2", "--parent", "R3-L1"))
    assert moved["parent"] == "R3-L1"
    busy = cli("code", "deactivate", "line", "R3-L1", ok=False)
    assert "still has 1 active" in busy.stderr
    cli("code", "add", "manufacturer", "HX", "Holley", "--country", "CN")
    model = j(cli("--json", "code", "add", "model", "DDSY-2P", "--constant", "1000", "--phases",
                  "1", "--rated-amps", "60", "--manufacturer", "HX"))
    assert model["manufacturer"] == "HX" and model["constant"] == 1000
    cli("code", "add", "payment", "cash", "Cash")
    cli("code", "deactivate", "payment", "cash")
    assert j(cli("--json", "code", "list", "payment"))[0]["active"] is False
    assert "cash" in cli("code", "list", "payment").stdout


def test_meter_store_import_status_history(cli, tmp_path):
    cli("init")
    cli("demo")
    rows = [["meter_no", "model"]] + [[f"{40000001 + i:012d}", "DDSY-1P"] for i in range(50)]
    rows[20][0] = "4000X"
    bad_csv = tmp_path / "batch.csv"
    with open(bad_csv, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    out = cli("meter-store", "import", str(bad_csv), ok=False)
    assert out.returncode == 1
    assert "row 21, meter_no: bad meter number format" in out.stdout
    assert "nothing imported" in out.stdout
    assert j(cli("--json", "meter-store", "list", "--meter", "0000400000"))  == []
    wb = Workbook()
    rows[20][0] = f"{40000020:012d}"
    for r in rows:
        wb.active.append(r)
    good = tmp_path / "batch.xlsx"
    wb.save(good)
    dry = j(cli("--json", "meter-store", "import", str(good), "--dry-run"))
    assert dry["ok"] and dry["added"] == 0 and dry["rows"] == 50
    done = j(cli("--json", "meter", "store", "import", str(good)))   # the GROUP-SUB spelling
    assert done["added"] == 50
    assert len(j(cli("--json", "meter-store", "list", "--status", "in_store"))) == 53
    cli("meter-store", "status", "000040000001", "under_test", "--note", "bench")
    refused = cli("meter-store", "status", "000020240001", "faulty", ok=False)
    assert "is installed" in refused.stderr
    hist = j(cli("--json", "meter-store", "history", "000040000001"))
    assert [(h["from"], h["to"], h["kind"]) for h in hist] == [
        (None, "in_store", "import"), ("in_store", "under_test", "status")]


def test_personnel(cli):
    cli("init")
    cli("personnel", "add", "E-001", "Ivan Petrov", "--title", "Inspector", "--phone", "555 0199")
    cli("personnel", "add", "E-002", "Anna Admin", "--login", "admin")
    dup = cli("personnel", "add", "E-003", "Again", "--login", "admin", ok=False)
    assert "already linked to E-002" in dup.stderr
    changed = j(cli("--json", "personnel", "change", "E-001", "--inactive"))
    assert changed["active"] is False
    people = j(cli("--json", "personnel", "list", "--active"))
    assert [p["employee_no"] for p in people] == ["E-002"]
