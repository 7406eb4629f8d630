"""Backups, archive and keys through the ``dbmis`` program on both databases."""

import json
import stat
from pathlib import Path

import pytest

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def run(cli):
    cli("init", "--demo")
    return cli


def js(run, *args):
    return json.loads(run("--json", *args).stdout)


def test_backup_list_verify_restore(run, tmp_path):
    first = js(run, "backup", "now")
    assert first["kind"] == "manual" and first["rows"] > 0
    listed = js(run, "backup", "list")
    assert [b["file"] for b in listed] == [first["file"]]
    v = js(run, "backup", "verify", first["file"])
    assert v["ok"] and v["counts"]["customers"] == 6

    run("sim", "new-card")
    run("card", "issue", "100001")  # a change after the backup
    p = run("backup", "restore", first["file"], ok=False)
    assert p.returncode != 0 and "--yes" in p.stderr
    r = js(run, "backup", "restore", first["file"], "--yes")
    assert r["restored"] == first["file"]
    assert r["safety_backup"].rsplit(".", 1)[1] in ("sqlite3", "dump")
    kinds = sorted(b["kind"] for b in js(run, "backup", "list"))
    assert kinds == ["manual", "safety"]
    # the card issued after the backup is gone: issuing again works
    run("sim", "new-card")
    run("card", "issue", "100001")

    # a damaged file fails verification with exit status 1
    home = tmp_path / "home" / "backups"
    f = home / first["file"]
    f.write_bytes(f.read_bytes()[:2000])
    bad = run("--json", "backup", "verify", first["file"], ok=False)
    assert bad.returncode == 1 and not json.loads(bad.stdout)["ok"]


def test_backup_auto_makes_one_daily_backup(run):
    made = js(run, "backup", "auto")
    # the default time is 02:00 local: due unless the test runs between midnight and 2 o'clock
    if made["made"] is not None:
        assert made["made"]["kind"] == "daily"
        assert js(run, "backup", "auto")["made"] is None
        assert [b["kind"] for b in js(run, "backup", "list")] == ["daily"]


def test_keys_rotate_status_export_and_permissions(run, tmp_path):
    st = js(run, "keys", "status")
    assert (st["current_version"], st["file_mode"], st["folder_mode"]) == (1, "0600", "0700")
    assert js(run, "keys", "rotate")["current_version"] == 2
    st2 = js(run, "keys", "status")
    assert st2["versions"] == [1, 2] and st2["fingerprint"] != st["fingerprint"]
    out = tmp_path / "escrow.key.enc"
    p = run("keys", "export-encrypted", str(out), ok=False)
    assert p.returncode != 0 and "passphrase" in p.stderr
    secret = tmp_path / "passphrase.txt"
    secret.write_text(PASSPHRASE + "\n")
    (tmp_path / "home" / "dbmis.toml").write_text(
        f'[backup]\npassphrase_file = "{secret}"\n')
    run("keys", "export-encrypted", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["format"] == "dbmis-key-encrypted-1"
    clerk = ("--operator", "clerk", "--password", "clerk-demo-1")
    for args in (("keys", "status"), ("backup", "now"), ("archive", "run")):
        p = run(*clerk, *args, ok=False)
        assert p.returncode != 0 and "may not" in p.stderr, args


def test_archive_commands(run, tmp_path):
    moved = js(run, "archive", "run", "--older-than-years", "3")
    assert not any(moved["moved"].values())  # a fresh database has no old closed days
    st = js(run, "archive", "status")
    assert st["archive"].endswith("archive.sqlite3") and st["rows"]["vends"] == 0
    assert Path(st["archive"].split("///", 1)[1]).exists()
    assert not any(js(run, "archive", "restore")["moved"].values())
    p = run("archive", "run", "--older-than-years", "0", ok=False)
    assert p.returncode != 0 and "at least 1 year" in p.stderr
