"""The "Audit log" page driven as an auditor would: filter by operator, kind, subject and dates,
read a record's details, verify the chains (intact, then after raw tampering); a clerk does not see
the page. Runs offscreen on both backends and leaves a screenshot in the artifacts folder."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from pathlib import Path

from PyQt6.QtCore import QDate, Qt
from sqlalchemy import text

from dbmis_core.services import customers
from dbmis_core.services.auth import create_operator
from dbmis_qt.window import MainWindow

WAIT_MS = 60_000


def test_audit_page(demo, admin, qtbot, artifacts_dir, backend):
    with demo.uow() as uow:
        create_operator(uow, "aud", "Ann Auditor", "audit-pass-1", "auditor")
        uow.commit()
    customers.change_customer(demo, admin, "100003", phone="0711 000 333")
    auditor = demo.login("aud", "audit-pass-1")
    window = MainWindow(demo, auditor)
    qtbot.addWidget(window)
    window.show()
    window.page_actions["audit"].trigger()
    page = window.stack.currentWidget()
    assert page.objectName() == "page-audit"
    qtbot.waitUntil(lambda: not page.busy and page.table.rowCount() > 0, timeout=WAIT_MS)
    everything = page.table.rowCount()

    page.kind_box.setCurrentText("customer.change")
    page.subject_edit.setText("100003")
    qtbot.mouseClick(page.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and page.table.rowCount() == 1, timeout=WAIT_MS)
    assert page.table.item(0, 3).text() == "admin" and page.table.item(0, 4).text() == "customer.change"
    page.table.selectRow(0)
    assert "0711 000 333" in page.details.toPlainText()

    page.kind_box.setCurrentText("")
    page.subject_edit.clear()
    page.operator_edit.setText("nobody")
    qtbot.mouseClick(page.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and page.table.rowCount() == 0, timeout=WAIT_MS)
    page.operator_edit.clear()
    page.use_dates.setChecked(True)
    page.from_date.setDate(QDate(2001, 1, 1))
    page.to_date.setDate(QDate(2001, 1, 31))
    qtbot.mouseClick(page.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and page.table.rowCount() == 0, timeout=WAIT_MS)
    page.from_date.setDate(QDate.currentDate().addDays(-1))
    page.to_date.setDate(QDate.currentDate().addDays(1))
    qtbot.mouseClick(page.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and page.table.rowCount() == everything, timeout=WAIT_MS)

    qtbot.mouseClick(page.verify_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and "intact" in page.status_label.text(),
                    timeout=WAIT_MS)
    assert "NOT" not in page.status_label.text()
    page.grab().save(str(Path(artifacts_dir) / "qt-audit.png"))

    with demo.engine.begin() as c:
        pg = c.dialect.name == "postgresql"
        c.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER" if pg
                          else "DROP TRIGGER trg_audit_log_no_delete")
        c.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    qtbot.mouseClick(page.verify_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.busy and "NOT intact" in page.status_label.text(),
                    timeout=WAIT_MS)
    assert "REMOVED" in page.status_label.text() and "record 2" in page.status_label.text()


def test_clerk_does_not_see_the_audit_page(demo, qtbot):
    window = MainWindow(demo, demo.login("clerk", "clerk-demo-1"))
    qtbot.addWidget(window)
    assert "audit" not in window.page_actions
