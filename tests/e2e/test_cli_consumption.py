"""``dbmis consumption ...`` and ``dbmis workorder ...`` as separate processes on both databases, on
the demo customers' two-year story (dbmis_core/testing/consumption.py)."""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from dbmis_core.app import Application
from dbmis_core.config import Config
from dbmis_core.testing.consumption import seed_history
from dbmis_core.testing.databases import ADMIN, ADMIN_PW, new_database

DBMIS = shutil.which("dbmis", path=os.path.dirname(sys.executable))


@pytest.fixture
def story_cli(tmp_path, backend):
    url, drop = new_database(backend, tmp_path)
    env = dict(os.environ, DBMIS_HOME=str(tmp_path / "home"), DBMIS_DATABASE_URL=url,
               DBMIS_OPERATOR="admin", DBMIS_PASSWORD="admin-pass-1",
               DBMIS_ADMIN_PASSWORD="admin-pass-1")
    env.pop("DBMIS_CONFIG", None)

    def dbmis(*args, ok=True, as_user=None):
        e = dict(env)
        if as_user:
            e["DBMIS_OPERATOR"], e["DBMIS_PASSWORD"] = as_user
        p = subprocess.run([DBMIS, *args], env=e, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    dbmis("init")
    dbmis("demo")
    app = Application(Config.from_dict({"database": {"url": url}}, home=tmp_path / "home"))
    try:
        seed_history(app, app.login(ADMIN, ADMIN_PW))
    finally:
        app.close()
    yield dbmis
    drop()


def j(p):
    return json.loads(p.stdout)


def test_compute_show_chart_and_rank(story_cli, tmp_path):
    cli = story_cli
    first = j(cli("--json", "consumption", "compute"))
    assert first["customers"] == 6 and first["rows"] == 150
    assert j(cli("--json", "consumption", "compute"))["rows"] == 150
    shown = j(cli("--json", "consumption", "show", "100004"))
    assert len(shown["months"]) == 25 and shown["months"][-1]["quality"] == "partial"
    assert shown["findings"][0]["check"] == "register-backwards"
    text = cli("consumption", "show", "100002").stdout
    assert "no findings" in text and "2025-12" in text
    png, svg = tmp_path / "c.png", tmp_path / "c.svg"
    cli("consumption", "chart", "100003", "--png", str(png), "--svg", str(svg))
    assert png.read_bytes()[:4] == b"\x89PNG" and b"<svg" in svg.read_bytes()[:500]
    lines = tmp_path / "lines.png"
    cli("consumption", "chart", "--per", "line", "--png", str(lines))
    assert lines.stat().st_size > 5000
    bad = cli("consumption", "chart", "100003", ok=False)
    assert bad.returncode == 2 and "--png" in bad.stderr
    ranked = j(cli("--json", "consumption", "rank"))
    assert [r["account_no"] for r in ranked][:2] == ["100006", "100003"]
    assert {r["account_no"] for r in ranked} == {"100003", "100004", "100005", "100006"}
    assert all(f["reason"] for r in ranked for f in r["findings"])
    south = j(cli("--json", "consumption", "rank", "--region", "R2", "--top", "1"))
    assert [r["account_no"] for r in south] == ["100006"]
    human = cli("consumption", "rank", "--region", "R1-L1-T2").stdout
    assert "100003" in human and "use fell to" in human and "100006" not in human
    nope = cli("consumption", "rank", "--region", "XX", ok=False)
    assert nope.returncode == 1 and "no region" in nope.stderr


def test_work_orders_from_rank_and_notice_to_labels(story_cli, tmp_path):
    cli = story_cli
    cli("consumption", "compute")
    made = j(cli("--json", "workorder", "create", "--from-rank", "--top", "2"))
    assert [m["account_no"] for m in made] == ["100006", "100003"]
    assert made[0]["origin"] == "ranking" and made[0]["reasons"]
    first = made[0]["id"]
    assigned = j(cli("--json", "workorder", "assign", str(first), "admin"))
    assert assigned["status"] == "assigned" and assigned["assigned_to"] == "admin"
    done = j(cli("--json", "workorder", "outcome", str(first), "theft", "--notes", "bypass"))
    assert done["outcome"] == "theft" and done["status"] == "done"
    again = cli("workorder", "outcome", str(first), "fault", ok=False)
    assert again.returncode == 1 and "already" in again.stderr
    manual = j(cli("--json", "workorder", "create", "100001", "--reason", "neighbour called"))
    assert manual[0]["origin"] == "manual" and manual[0]["reasons"] == ["neighbour called"]
    cli("workorder", "outcome", str(manual[0]["id"]), "no-problem")
    listed = j(cli("--json", "workorder", "list", "--status", "open"))
    assert [o["account_no"] for o in listed] == ["100003"]
    out = tmp_path / "labels.csv"
    labels = j(cli("--json", "workorder", "labels", "--csv", str(out)))
    assert [(lb["account_no"], lb["outcome"]) for lb in labels] == [
        ("100006", "theft"), ("100001", "no_problem")]
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["score"] == "3.000" and rows[0]["outcome"] == "theft"
    denied = cli("consumption", "rank", ok=False, as_user=("clerk", "clerk-demo-1"))
    assert denied.returncode != 0 and "may not analyse" in denied.stderr
