"""The "Reissue card" and "Reverse sale" pages driven as a clerk would, offscreen, on both backends;
screenshots go to the artifacts folder (qt-reissue.png, qt-reversal.png)."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from pathlib import Path

import pytest
from PyQt6.QtCore import Qt
from sqlalchemy import select

from dbmis_core.services import cards, vending
from dbmis_core.storage.models import CardRow, CashEntryRow
from dbmis_qt.window import MainWindow

CLERK, CLERK_PW = "clerk", "clerk-demo-1"
WAIT_MS = 20_000


@pytest.fixture
def sold(demo):
    """100001 has a card holding one unloaded sale; returns (app, clerk, card uid, sale)."""
    clerk = demo.login(CLERK, CLERK_PW)
    demo.reader.new_card()
    uid = cards.issue_user_card(demo, clerk, "100001")
    return demo, clerk, uid, vending.vend(demo, clerk, "100001", "20.00")


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def open_page(qtbot, app, operator, name):
    window = MainWindow(app, operator)
    qtbot.addWidget(window)
    window.resize(1100, 720)
    window.show()
    window.page_actions[name].trigger()
    return window, window.stack.currentWidget()


def screenshot(widget, path: Path) -> None:
    assert widget.grab().save(str(path))
    assert path.stat().st_size > 10_000, f"{path} looks empty"


def _statuses(app):
    with app.uow() as uow:
        return {r.uid: r.status for r in uow.session.scalars(select(CardRow))}


def test_clerk_reissues_a_lost_card(sold, qtbot, artifacts_dir):
    app, clerk, old, sale = sold
    new = app.reader.new_card()
    window, page = open_page(qtbot, app, clerk, "reissue-card")
    assert page.fee_edit.text() == "0.00"
    qtbot.keyClicks(page.account_edit, "100001")
    page.fee_edit.setText("")
    qtbot.keyClicks(page.fee_edit, "2.50")
    qtbot.keyClicks(page.reason_edit, "lost on the bus")
    click(qtbot, page.reissue_button)
    qtbot.waitUntil(lambda: page.last_result is not None, timeout=WAIT_MS)
    r = page.last_result
    assert (r.old_uid, r.new_uid, r.sequence, r.credit) == (old, new, 1, sale.credit)
    text = page.result_text.toPlainText()
    assert f"Replacement card {new}" in text and "receipt S01-00000002" in text
    assert _statuses(app) == {old: "lost", new: "active"}
    screenshot(window, Path(artifacts_dir) / "qt-reissue.png")
    # the same card again: refused, shown, nothing changes
    page.last_result = None
    click(qtbot, page.reissue_button)
    qtbot.waitUntil(lambda: page.error_label.text() != "", timeout=WAIT_MS)
    assert "already registered" in page.error_label.text() and page.last_result is None
    assert _statuses(app) == {old: "lost", new: "active"}


def test_clerk_reverses_a_sale_with_supervisor_approval(sold, qtbot, artifacts_dir):
    app, clerk, uid, sale = sold
    window, page = open_page(qtbot, app, clerk, "reverse-sale")
    qtbot.keyClicks(page.account_edit, "100001")
    click(qtbot, page.load_button)
    qtbot.waitUntil(lambda: page.sales_list.count() == 1, timeout=WAIT_MS)
    assert not page.reverse_button.isEnabled()  # no reason yet
    qtbot.keyClicks(page.reason_edit, "customer paid for the wrong account")
    assert page.selected_vend() == sale.vend_id and page.reverse_button.isEnabled()
    # a wrong supervisor password: refused, nothing changes
    click(qtbot, page.reverse_button)
    qtbot.waitUntil(lambda: page.supervisor_dialog is not None
                    and page.supervisor_dialog.isVisible(), timeout=WAIT_MS)
    qtbot.keyClicks(page.supervisor_dialog.login_edit, "admin")
    qtbot.keyClicks(page.supervisor_dialog.password_edit, "wrong-password")
    click(qtbot, page.supervisor_dialog.ok_button)
    qtbot.waitUntil(lambda: page.error_label.text() != "", timeout=WAIT_MS)
    assert "password" in page.error_label.text() and page.last_result is None
    assert [v.state for v in vending.sales_of(app, clerk, "100001")] == ["completed"]
    # the right one
    click(qtbot, page.reverse_button)
    qtbot.waitUntil(lambda: page.supervisor_dialog.isVisible(), timeout=WAIT_MS)
    page.supervisor_dialog.login_edit.setText("admin")
    page.supervisor_dialog.password_edit.setText("admin-pass-1")
    click(qtbot, page.supervisor_dialog.ok_button)
    qtbot.waitUntil(lambda: page.last_result is not None, timeout=WAIT_MS)
    r = page.last_result
    assert (r.vend_id, r.approved_by, r.operator, r.state) == (sale.vend_id, "admin", "clerk",
                                                               "completed")
    qtbot.waitUntil(lambda: page.sales_list.count() == 1
                    and "reversed" in page.sales_list.item(0).text(), timeout=WAIT_MS)
    assert "Refund 20.00, receipt S01-00000002" in page.result_text.toPlainText()
    with app.uow() as uow:
        refunds = [c.amount for c in uow.session.scalars(
            select(CashEntryRow).where(CashEntryRow.kind == "refund"))]
    assert [str(a) for a in refunds] == ["-20.00"]
    screenshot(window, Path(artifacts_dir) / "qt-reversal.png")


def test_supervisor_reverses_without_a_dialog_and_a_loaded_sale_is_refused(sold, qtbot, admin):
    app, clerk, uid, sale = sold
    from dbmis_sim.meter import MeterSimulator

    sim = MeterSimulator.provision(app.config.home / "m.json", sale.meter_no,
                                   app.keys.meter_key(sale.meter_no))
    with app.reader.connect() as conn:
        sim.insert(conn, app.card_format)
    window, page = open_page(qtbot, app, admin, "reverse-sale")
    qtbot.keyClicks(page.account_edit, "100001")
    click(qtbot, page.load_button)
    qtbot.waitUntil(lambda: page.sales_list.count() == 1, timeout=WAIT_MS)
    qtbot.keyClicks(page.reason_edit, "too late")
    click(qtbot, page.reverse_button)
    qtbot.waitUntil(lambda: page.error_label.text() != "", timeout=WAIT_MS)
    assert page.supervisor_dialog is None
    assert "already been loaded" in page.error_label.text()
    assert [v.state for v in vending.sales_of(app, clerk, "100001")] == ["completed"]


def test_pulled_reissue_is_settled_from_the_page(sold, qtbot):
    from dbmis_sim.reader import SimReader, reader_folder
    from dbmis_sim.sle4442 import Faults

    app, clerk, old, sale = sold
    hand = SimReader(reader_folder(app.config.driver_settings("sim")))  # not the window's reader
    new = app.reader.new_card()
    window, page = open_page(qtbot, app, clerk, "reissue-card")
    qtbot.keyClicks(page.account_edit, "100001")
    hand.inject(Faults(pull_after_bytes=60))
    click(qtbot, page.reissue_button)
    qtbot.waitUntil(lambda: page.error_label.text() != "", timeout=WAIT_MS)
    assert "pending" in page.error_label.text()
    hand.insert(new)
    click(qtbot, page.reconcile_button)
    qtbot.waitUntil(lambda: "Reissue" in page.result_text.toPlainText(), timeout=WAIT_MS)
    assert ": failed" in page.result_text.toPlainText()
    page.error_label.setText("")
    click(qtbot, page.reissue_button)  # the same card, again
    qtbot.waitUntil(lambda: page.last_result is not None, timeout=WAIT_MS)
    assert page.last_result.new_uid == new and _statuses(app) == {old: "lost", new: "active"}
