"""``dbmis tariff``: list, history, set (TOML or JSON settings, effective dates) and quote, run as the
real program on each backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta


def test_tariff_versions_and_quotes_from_the_command_line(cli, tmp_path):
    assert cli("init", "--demo").returncode == 0
    listing = json.loads(cli("--json", "tariff", "list").stdout)
    by_name = {t["name"]: t for t in listing}
    assert set(by_name) >= {"flat", "tiered", "tiered-annual"}
    assert by_name["flat"]["default"] and by_name["flat"]["in_force_version"] is None
    assert by_name["tiered"]["period"] == "month"

    toml = tmp_path / "flat.toml"
    toml.write_text('residential = "0.5000"\ncommercial = 0.9\n')
    out = json.loads(cli("--json", "tariff", "set", "flat", "--from", "now", "--settings", str(toml),
                         "--note", "new prices").stdout)
    assert out["state"] == "in force" and out["settings"] == {"residential": "0.5000",
                                                              "commercial": "0.9"}
    future = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
    js = tmp_path / "flat.json"
    js.write_text(json.dumps({"residential": "0.2500"}))
    text = cli("tariff", "set", "flat", "--from", future, "--settings", str(js)).stdout
    assert f"from {future} 00:00:00 UTC (future)" in text

    hist = json.loads(cli("--json", "tariff", "history", "flat").stdout)
    assert [(v["state"], v["note"]) for v in hist] == [("in force", "new prices"), ("future", "")]
    human = cli("tariff", "history", "flat").stdout
    assert "in force" in human and "future" in human and "new prices" in human

    q = json.loads(cli("--json", "tariff", "quote", "100001", "50.00").stdout)
    assert (q["tariff"], q["version_id"], q["energy"]) == ("flat", hist[0]["id"], "100.00")
    assert q["lines"] == [{"name": "Energy charge", "amount": "50.00"}]
    human = cli("tariff", "quote", "100003", "45.00").stdout  # commercial at 0.9
    assert "45.00 buys 50.00 kWh" in human and "Energy charge" in human

    tiered = tmp_path / "tiered.toml"
    tiered.write_text('[blocks]\nresidential = [{upto = "50", price = "0.3"}, {price = "0.6"}]\n'
                      '[[surcharges]]\nname = "Levy"\nper_kwh = "0.01"\n')
    cli("tariff", "set", "tiered", "--from", "now", "--settings", str(tiered))
    assert json.loads(cli("--json", "tariff", "history", "tiered").stdout)[0]["settings"][
        "surcharges"] == [{"name": "Levy", "per_kwh": "0.01"}]


def test_refusals_change_nothing(cli, tmp_path):
    assert cli("init", "--demo").returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[blocks]\nresidential = [{upto = "50", price = "0.3"}]\n')
    p = cli("tariff", "set", "tiered", "--from", "now", "--settings", str(bad), ok=False)
    assert p.returncode != 0 and "last block of residential" in p.stderr
    good = tmp_path / "good.json"
    good.write_text('{"residential": "0.5"}')
    p = cli("tariff", "set", "flat", "--from", "2001-01-01", "--settings", str(good), ok=False)
    assert p.returncode != 0 and "cannot start in the past" in p.stderr
    p = cli("tariff", "set", "flat", "--from", "soon", "--settings", str(good), ok=False)
    assert p.returncode != 0 and "--from must be 'now' or a date" in p.stderr
    p = cli("--operator", "clerk", "--password", "clerk-demo-1", "tariff", "set", "flat", "--from",
            "now", "--settings", str(good), ok=False)
    assert p.returncode != 0 and "may not manage_tariffs" in p.stderr
    p = cli("tariff", "set", "nope", "--from", "now", "--settings", str(good), ok=False)
    assert p.returncode != 0 and "unknown tariff 'nope'" in p.stderr
    assert json.loads(cli("--json", "tariff", "history", "flat").stdout) == []
    assert json.loads(cli("--json", "tariff", "history", "tiered").stdout) == []
