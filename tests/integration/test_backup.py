"""Backups on a real SQLite file and on PostgreSQL: take, verify, rotate, schedule, restore, and a
backup taken while sales go on."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dbmis_core.errors import BusinessRuleError, PermissionDenied, ValidationError
from dbmis_core.services import backup, cards, vending
from dbmis_core.services.auth import Operator, Perm
from dbmis_core.services.registry import get_customer_row
from dbmis_core.storage.models import CustomerRow, VendRow

PASSPHRASE = "correct horse battery staple"


def _live_counts(app) -> dict:
    with app.engine.connect() as conn:
        return backup._count_rows(conn)


def _customers(app) -> int:
    with app.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(CustomerRow))


def _sell(app, op, account="100001", amount="10.00"):
    return vending.vend(app, op, account, amount)


def test_backup_is_verified_against_its_manifest(demo, admin):
    info = backup.take(demo, admin)
    assert info.backend == ("postgresql" if demo.engine.dialect.name == "postgresql" else "sqlite")
    assert info.counts == _live_counts(demo) and info.counts["customers"] == 6
    assert info.schema_revision is not None
    path = backup.folder(demo) / info.file
    assert path.stat().st_mode & 0o077 == 0
    v = backup.verify(demo, admin, info.file)
    assert v.ok, v.problems
    assert v.counts == info.counts
    want = "PRAGMA integrity_check" if info.backend == "sqlite" else "restored into a scratch database"
    assert want in v.checks
    assert [b.file for b in backup.list_backups(demo, admin)] == [info.file]


def test_damaged_backup_fails_verification(demo, admin):
    info = backup.take(demo, admin)
    path = backup.folder(demo) / info.file
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    v = backup.verify(demo, admin, info.file)
    assert not v.ok
    assert any("checksum" in p for p in v.problems)
    assert len(v.problems) >= 2  # the copy itself is unreadable too, not only its checksum


def test_manifest_counts_catch_a_missing_row(demo, admin, tmp_path):
    """Counts are compared with the manifest even when the checksum is made to match."""
    info = backup.take(demo, admin)
    path = backup.folder(demo) / info.file
    manifest = path.with_name(path.name + ".json")
    d = json.loads(manifest.read_text())
    d["counts"]["customers"] = 7
    manifest.write_text(json.dumps(d))
    v = backup.verify(demo, admin, info.file)
    assert not v.ok
    assert v.problems == ("table customers: 6 rows in the copy, manifest says 7",)


def test_daily_schedule_and_rotation(demo, admin):
    demo.config.data["backup"].update(keep_daily=3, time="02:00")
    start = datetime(2020, 3, 1, 12, 0, tzinfo=UTC).astimezone()
    made = []
    for day in range(5):
        noon = start + timedelta(days=day)
        early = noon.replace(hour=1, minute=0)
        assert not backup.due(demo, early)
        assert backup.run_scheduled(demo, admin, early) is None
        first = backup.run_scheduled(demo, admin, noon)
        assert first is not None and first.kind == "daily"
        made.append(first.file)
        assert backup.run_scheduled(demo, admin, noon + timedelta(hours=3)) is None  # once a day
    manual = backup.take(demo, admin)
    left = [b.file for b in backup.list_backups(demo, admin)]
    assert left == [manual.file] + made[:1:-1]  # newest first: the manual one, then 3 daily
    files = {p.name for p in backup.folder(demo).iterdir()}
    assert made[0] not in files and made[0] + ".json" not in files


def test_restore_needs_confirmation_and_takes_a_safety_backup_first(demo, admin):
    before = backup.take(demo, admin)
    with demo.uow() as uow:
        get_customer_row(uow, "100006").name = "Changed After Backup"
        uow.session.add(CustomerRow(account_no="999999", name="Late Customer", category="residential"))
        uow.commit()
    assert _customers(demo) == 7
    with pytest.raises(BusinessRuleError, match="confirm"):
        backup.restore(demo, admin, before.file)
    assert _customers(demo) == 7
    r = backup.restore(demo, admin, before.file, confirm=True)
    assert r.restored == before.file
    assert _customers(demo) == 6
    with demo.uow() as uow:
        assert get_customer_row(uow, "100006").name != "Changed After Backup"
    safety = next(b for b in backup.list_backups(demo, admin) if b.file == r.safety_backup)
    assert safety.kind == "safety" and safety.counts["customers"] == 7
    # the safety backup undoes the restore
    backup.restore(demo, admin, safety.file, confirm=True)
    assert _customers(demo) == 7
    assert demo.login("admin", "admin-pass-1").role == "administrator"


def test_a_failing_backup_is_not_restored(demo, admin):
    info = backup.take(demo, admin)
    path = backup.folder(demo) / info.file
    path.write_bytes(path.read_bytes()[:1000])
    with demo.uow() as uow:
        uow.session.add(CustomerRow(account_no="999999", name="Kept", category="residential"))
        uow.commit()
    with pytest.raises(BusinessRuleError, match="failed verification"):
        backup.restore(demo, admin, info.file, confirm=True)
    assert _customers(demo) == 7
    assert [b.kind for b in backup.list_backups(demo, admin)] == ["manual"]  # no safety copy made


def test_permissions(demo, admin):
    clerk = demo.login("clerk", "clerk-demo-1")
    with pytest.raises(PermissionDenied):
        backup.take(demo, clerk)
    with pytest.raises(PermissionDenied):
        backup.list_backups(demo, clerk)
    supervisor = Operator("sup", "Supervisor", "supervisor")
    assert supervisor.can(Perm.BACKUP) and not supervisor.can(Perm.MANAGE_KEYS)
    assert backup.take(demo, supervisor).kind == "manual"
    with pytest.raises(ValidationError, match="kind"):
        backup.take(demo, admin, kind="weekly")


def test_backup_taken_while_sales_go_on_is_consistent(demo, admin, monkeypatch):
    """A seller thread keeps selling on two customers while backups are taken; every backup
    verifies (counts, sale references, receipt counters) and holds whole sales only."""
    demo.config.data["sales"]["refuse_unloaded"] = False
    for account in ("100001", "100002"):
        demo.reader.new_card()
        cards.issue_user_card(demo, admin, account)
    stop, sold, errors = threading.Event(), [], []

    def seller():
        try:
            while not stop.is_set():
                sold.append(_sell(demo, admin, "100002").receipt_no)
        except Exception as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=seller)
    t.start()
    try:
        taken, deadline = [], time.monotonic() + 90
        while (len(taken) < 3 or len(sold) < 6) and time.monotonic() < deadline:
            taken.append(backup.take(demo, admin))
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    assert len(sold) >= 5
    vends_seen = set()
    for info in taken:
        v = backup.verify(demo, admin, info.file)
        assert v.ok, v.problems
        assert any("missing card: 0" in c for c in v.checks)
        vends_seen.add(info.counts["vends"])
    assert len(vends_seen) >= 2  # the backups really were taken at different points of the run
    with demo.uow() as uow:
        total = uow.session.scalar(select(func.count()).select_from(VendRow))
    assert total == len(sold)
