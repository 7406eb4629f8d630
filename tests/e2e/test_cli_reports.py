"""``dbmis report``, ``dbmis lineloss`` and ``dbmis find`` as separate processes on both databases,
on the report data set (dbmis_core/testing/reports.py)."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from dbmis_core.app import Application
from dbmis_core.config import Config
from dbmis_core.testing.databases import new_database
from dbmis_core.testing.reports import seed

DBMIS = shutil.which("dbmis", path=os.path.dirname(sys.executable))


@pytest.fixture
def rcli(tmp_path, backend):
    url, drop = new_database(backend, tmp_path)
    env = dict(os.environ, DBMIS_HOME=str(tmp_path / "home"), DBMIS_DATABASE_URL=url,
               DBMIS_OPERATOR="admin", DBMIS_PASSWORD="admin-pass-1",
               DBMIS_ADMIN_PASSWORD="admin-pass-1")
    env.pop("DBMIS_CONFIG", None)

    def dbmis(*args, ok=True):
        p = subprocess.run([DBMIS, *args], env=env, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    dbmis("init")
    app = Application(Config.from_dict({"database": {"url": url}}, home=tmp_path / "home"))
    try:
        seed(app)
    finally:
        app.close()
    yield dbmis
    drop()


def j(p):
    return json.loads(p.stdout)


def test_report_list_and_run_as_table_and_json(rcli):
    assert j(rcli("--json", "report", "summary"))["built"] is True
    assert j(rcli("--json", "report", "summary"))["built"] is False
    names = [r["name"] for r in j(rcli("--json", "report", "list"))]
    assert {"daily-sales", "monthly-sales", "line-loss", "customer-statement"} <= set(names)
    out = rcli("report", "run", "monthly-sales", "--level", "region", "--from", "2025-03").stdout
    assert "Region A" in out and "300.00" in out and "550.00" in out
    data = j(rcli("--json", "report", "run", "monthly-sales", "--level", "line",
                  "--from", "2025-03"))
    assert [(r["unit"], r["amount"]) for r in data["rows"]] == [
        ("LA1", "150.00"), ("LA2", "150.00"), ("LB1", "250.00")]
    assert data["totals"]["amount"] == "550.00"
    day = j(rcli("--json", "report", "run", "daily-sales", "--day", "2025-03-05",
                 "--operator", "clerk"))
    assert [(r["station"], r["amount"], r["cash_other"]) for r in day["rows"]] == [
        ("S01", "120.00", "25.00")]
    bad = rcli("report", "run", "monthly-sales", "--from", "2025-3x", ok=False)
    assert bad.returncode != 0 and "YYYY-MM" in bad.stderr
    denied = rcli("report", "run", "nope", ok=False)
    assert denied.returncode != 0 and "unknown report 'nope'" in denied.stderr


def test_report_exports(rcli, tmp_path):
    from openpyxl import load_workbook

    x = tmp_path / "loss.xlsx"
    rcli("report", "run", "line-loss", "--level", "line", "--from", "2025-02", "--to", "2025-03",
         "--format", "xlsx", "--out", str(x))
    ws = load_workbook(x).active
    assert ws.cell(3, 4).value == "Supplied kWh"
    assert ws.cell(5, 4).value == 250 and ws.cell(5, 4).data_type == "n"
    assert ws.cell(5, 8).value == "high"
    text = rcli("report", "run", "customer-statement", "--account", "900001", "--from",
                "2025-03", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["Time (UTC)", "What"] and rows[-1][3] == "145.00"
    pdf = tmp_path / "ind.pdf"
    rcli("report", "run", "indicators", "--from", "2025-02", "--to", "2025-03", "--format",
         "pdf", "--out", str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF")
    html = tmp_path / "cmp.html"
    rcli("report", "run", "comparison", "--level", "region", "--from", "2025-03", "--format",
         "html", "--out", str(html))
    assert "Same month last year" in html.read_text() and "data:image/png" in html.read_text()


def test_lineloss_enter_import_and_the_report_sees_them(rcli, tmp_path):
    rcli("lineloss", "enter", "LA2", "2025-02", "220.00")
    f = tmp_path / "readings.csv"
    f.write_text("code,month,supplied,note\nLB1,2025-02,400.00,read by Ali\n"
                 "DA2,2025-03,70.00,\n")
    assert "2 reading(s) imported" in rcli("lineloss", "import", str(f)).stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("LA1,2025-04,100\nRA,2025-04,100\n")
    p = rcli("lineloss", "import", str(bad), ok=False)
    assert p.returncode != 0 and "line 2" in p.stderr and "region" in p.stderr
    listed = j(rcli("--json", "lineloss", "list", "--from", "2025-02", "--to", "2025-04"))
    assert ("LA1", "2025-04") not in {(r["code"], r["month"]) for r in listed}  # all or nothing
    loss = j(rcli("--json", "report", "run", "line-loss", "--level", "line", "--from",
                  "2025-02"))
    assert [(r["unit"], r["supplied"], r["billed"], r["loss_rate"], r["flag"])
            for r in loss["rows"]] == [
        ("LA1", "200.00", "180.00", "0.1000", ""),
        ("LA2", "220.00", "200.00", "0.0909", ""),
        ("LB1", "400.00", "380.00", "0.0500", "")]


def test_find_from_the_command_line(rcli):
    out = rcli("find", "okafor").stdout
    assert "900001 Anna Okafor" in out
    data = j(rcli("--json", "find", "770000000004", "--kind", "meter"))
    assert [m["account_no"] for m in data["meters"]] == ["900004"] and data["customers"] == []
    assert "nothing found" in rcli("find", "qqqqq").stdout
