"""``dbmis audit list|verify`` as a separate process on both databases: changes made through other
commands appear with their operator, the filters work, and verify exits 1 after raw tampering."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from dbmis_core.testing.databases import new_database

DBMIS = shutil.which("dbmis", path=os.path.dirname(sys.executable))


@pytest.fixture
def audit_cli(tmp_path, backend):
    url, drop = new_database(backend, tmp_path)
    env = dict(os.environ, DBMIS_HOME=str(tmp_path / "home"), DBMIS_DATABASE_URL=url,
               DBMIS_OPERATOR="admin", DBMIS_PASSWORD="admin-pass-1",
               DBMIS_ADMIN_PASSWORD="admin-pass-1")
    env.pop("DBMIS_CONFIG", None)

    def dbmis(*args, ok=True):
        p = subprocess.run([DBMIS, *args], env=env, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    dbmis("init", "--demo")
    dbmis.url = url
    yield dbmis
    drop()


def _sql(url, *statements):
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url)
    with engine.begin() as c:
        pg = c.dialect.name == "postgresql"
        c.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER" if pg
                          else "DROP TRIGGER IF EXISTS trg_audit_log_no_update")
        for s in statements:
            c.execute(text(s))
    engine.dispose()


def test_audit_list_filters_and_verify(audit_cli):
    run = audit_cli
    run("operator", "add", "ann", "--name", "Ann Clerk", "--role", "clerk",
        "--password", "temp-pass-11")
    run("account", "change", "100002", "--phone", "0700 111 222")
    listed = json.loads(run("audit", "list", "--json").stdout)
    kinds = {e["kind"] for e in listed}
    assert {"operator.created", "customer.change", "customer.add"} <= kinds
    mine = json.loads(run("audit", "list", "--kind", "customer.change", "--subject", "100002",
                          "--json").stdout)
    assert len(mine) == 1 and mine[0]["operator"] == "admin"
    assert mine[0]["details"]["after"]["phone"] == "0700 111 222"
    assert json.loads(run("audit", "list", "--operator", "nobody", "--json").stdout) == []
    assert json.loads(run("audit", "list", "--from", "2000-01-01", "--to", "2000-01-02",
                          "--json").stdout) == []
    text_out = run("audit", "list", "--kind", "operator").stdout
    assert "operator.created" in text_out and "operator ann" in text_out

    ok = run("audit", "verify")
    assert "audit log intact" in ok.stdout

    change = mine[0]["seq"]
    _sql(run.url, f"UPDATE audit_log SET operator = 'ann' WHERE seq = {change}")
    bad = run("audit", "verify", ok=False)
    assert bad.returncode == 1
    assert "ALTERED" in bad.stdout and f"record {change}" in bad.stdout
    report = json.loads(run("audit", "verify", "--json", ok=False).stdout)
    assert not report["ok"] and [(f["seq"], f["problem"]) for f in report["findings"]] == [
        (change, "altered")]


def test_audit_needs_the_permission(audit_cli):
    run = audit_cli
    denied = run("--operator", "clerk", "--password", "clerk-demo-1", "audit", "list", ok=False)
    assert denied.returncode == 1 and "view_audit" in denied.stderr
