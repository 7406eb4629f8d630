"""The "Backup and restore" page driven as an administrator would: back up, verify, restore after
typing RESTORE (a wrong word changes nothing), archive; a clerk does not see the page.

Runs offscreen on both backends and leaves a screenshot in the artifacts folder."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from pathlib import Path

from PyQt6.QtCore import Qt
from sqlalchemy import func, select

from dbmis_core.storage.models import CustomerRow
from dbmis_qt.window import MainWindow

WAIT_MS = 60_000


def _customers(app) -> int:
    with app.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(CustomerRow))


def test_backup_page(demo, admin, qtbot, artifacts_dir, backend, monkeypatch):
    window = MainWindow(demo, admin)
    qtbot.addWidget(window)
    window.show()
    window.page_actions["backup"].trigger()
    page = window.stack.currentWidget()
    assert page.objectName() == "page-backup"
    qtbot.waitUntil(lambda: not page.busy, timeout=WAIT_MS)
    assert page.table.rowCount() == 0

    qtbot.mouseClick(page.backup_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and page.table.rowCount() == 1, timeout=WAIT_MS)
    assert page.error_label.text() == ""
    page.table.selectRow(0)
    qtbot.mouseClick(page.verify_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and "OK" in page.result.toPlainText(), timeout=WAIT_MS)

    with demo.uow() as uow:
        uow.session.add(CustomerRow(account_no="999999", name="After Backup", category="residential"))
        uow.commit()
    monkeypatch.setattr(page, "confirm_restore", lambda name: "restore please")
    qtbot.mouseClick(page.restore_button, Qt.MouseButton.LeftButton)
    assert "not confirmed" in page.error_label.text() and _customers(demo) == 7

    monkeypatch.setattr(page, "confirm_restore", lambda name: "RESTORE")
    qtbot.mouseClick(page.restore_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and "restored" in page.result.toPlainText(),
                    timeout=WAIT_MS)
    assert _customers(demo) == 6
    qtbot.waitUntil(lambda: not page.busy and page.table.rowCount() == 2, timeout=WAIT_MS)
    kinds = sorted(page.table.item(i, 1).text() for i in range(2))
    assert kinds == ["manual", "safety"]

    page.years.setValue(3)
    qtbot.mouseClick(page.archive_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and "Archived" in page.result.toPlainText(),
                    timeout=WAIT_MS)
    assert "nothing" in page.result.toPlainText()
    page.table.selectRow(0)
    qtbot.mouseClick(page.verify_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and "OK" in page.result.toPlainText(), timeout=WAIT_MS)
    if backend == "sqlite":
        path = Path(artifacts_dir) / "qt-backup.png"
        window.resize(1100, 700)
        assert window.grab().save(str(path))

    clerk = demo.login("clerk", "clerk-demo-1")
    other = MainWindow(demo, clerk)
    qtbot.addWidget(other)
    assert "backup" not in other.page_actions
