"""The cash desk page driven as a clerk would: reprint a receipt (COPY, no new number), save PDFs,
see the till, type the counted cash, see the discrepancy before confirming, close, see the list."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from decimal import Decimal
from pathlib import Path

import pytest
from PyQt6.QtCore import Qt
from sqlalchemy import select

from dbmis_core.services import auth, cards, dayclose, vending
from dbmis_core.services.cash import record_cash
from dbmis_core.storage.models import StationRow, VendRow
from dbmis_qt.window import MainWindow

WAIT_MS = 20_000


def _sell(app, op, account, amount):
    app.reader.new_card()
    cards.issue_user_card(app, op, account)
    return vending.vend(app, op, account, amount)


def _next_receipt(app):
    with app.uow() as uow:
        return uow.session.scalar(select(StationRow.next_receipt))


@pytest.fixture
def day(demo):
    """The clerk sold 20.00 and 15.00 and took a 5.00 card fee."""
    clerk = demo.login("clerk", "clerk-demo-1")
    first = _sell(demo, clerk, "100001", "20.00")
    _sell(demo, clerk, "100002", "15.00")
    with demo.uow() as uow:
        record_cash(uow, clerk, "S01", "reissue_fee", Decimal("5.00"))
        uow.commit()
    return demo, clerk, first


def open_page(qtbot, app, op):
    window = MainWindow(app, op)
    qtbot.addWidget(window)
    window.resize(1280, 860)
    window.show()
    action = window.page_actions["cash-desk"]
    assert action in window.module_menus["Daily business"].actions()
    action.trigger()
    page = window.stack.currentWidget()
    assert page.objectName() == "page-cash-desk"
    qtbot.waitUntil(lambda: page.expected_label.text() != "-", timeout=WAIT_MS)
    return window, page


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def test_clerk_reprints_and_closes_the_till(day, qtbot, tmp_path, artifacts_dir):
    app, clerk, first = day
    window, page = open_page(qtbot, app, clerk)
    assert page.expected_label.text() == "40.00"
    assert "reissue_fee" in page.summary_view.toPlainText()
    assert not page.operator_combo.isEnabled()  # a clerk closes only their own till
    assert not page.close_button.isEnabled()     # nothing counted yet

    # -- reprint: a COPY with the same number, and no number used ---------------------------------
    before = _next_receipt(app)
    qtbot.keyClicks(page.receipt_edit, first.receipt_no)
    click(qtbot, page.reprint_button)
    qtbot.waitUntil(lambda: "*** COPY ***" in page.receipt_view.toPlainText(), timeout=WAIT_MS)
    assert f"Receipt no : {first.receipt_no}" in page.receipt_view.toPlainText()
    assert _next_receipt(app) == before

    answers = iter([str(tmp_path / "receipt.pdf"), str(tmp_path / "invoice.pdf")])
    page.ask_file = lambda title, suggested: next(answers)
    click(qtbot, page.pdf_button)
    qtbot.waitUntil(lambda: "receipt.pdf" in page.info_label.text(), timeout=WAIT_MS)
    click(qtbot, page.invoice_button)
    qtbot.waitUntil(lambda: "invoice.pdf" in page.info_label.text(), timeout=WAIT_MS)
    assert (tmp_path / "receipt.pdf").read_bytes().startswith(b"%PDF")
    assert b"595.28" in (tmp_path / "invoice.pdf").read_bytes()
    assert _next_receipt(app) == before

    # -- close: the discrepancy shows before confirming; saying no closes nothing -------------------
    qtbot.keyClicks(page.counted_edit, "39.00")
    assert page.discrepancy_label.text() == "-1.00 (short)"
    assert page.close_button.isEnabled()
    qtbot.keyClicks(page.note_edit, "one coin short")
    shot = Path(artifacts_dir) / "qt-cashdesk-before-close.png"
    assert window.grab().save(str(shot)) and shot.stat().st_size > 10_000
    asked = []
    page.confirm = lambda text: asked.append(text) or False
    click(qtbot, page.close_button)
    assert "Discrepancy: -1.00 (short)" in asked[0] and "Expected cash: 40.00" in asked[0]
    assert dayclose.closings(app, clerk) == []
    page.confirm = lambda text: True
    click(qtbot, page.close_button)
    qtbot.waitUntil(lambda: page.last_closing is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: page.closings_table.rowCount() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: page.expected_label.text() == "0.00", timeout=WAIT_MS)
    row = page.last_closing
    assert (row.expected, row.counted, row.discrepancy, row.note) == (
        Decimal("40.00"), Decimal("39.00"), Decimal("-1.00"), "one coin short")
    assert page.closings_table.item(0, 6).text() == "-1.00"
    assert page.closings_table.item(0, 6).foreground().color().name() == "#b00020"
    assert "Day closing" in page.info_label.text() and page.error_label.text() == ""
    with app.uow() as uow:
        assert set(uow.session.scalars(select(VendRow.closing_id))) == {row.id}

    # a closed day's sale still reprints, as a copy of the same number
    click(qtbot, page.reprint_button)
    qtbot.waitUntil(lambda: page.receipt_view.toPlainText() != "" and page.error_label.text() == "",
                    timeout=WAIT_MS)
    qtbot.keyClicks(page.counted_edit, "0")
    assert not page.close_button.isEnabled()  # the till is empty now
    page.counted_edit.clear()
    path = Path(artifacts_dir) / "qt-cashdesk.png"
    assert window.grab().save(str(path)) and path.stat().st_size > 10_000


def test_unknown_receipt_is_shown_as_an_error(day, qtbot):
    app, clerk, _first = day
    _window, page = open_page(qtbot, app, clerk)
    qtbot.keyClicks(page.receipt_edit, "S01-00000099")
    click(qtbot, page.reprint_button)
    qtbot.waitUntil(lambda: page.error_label.text() != "", timeout=WAIT_MS)
    assert "no sale or cash entry has receipt number S01-00000099" in page.error_label.text()
    assert page.receipt_view.toPlainText() == ""


def test_supervisor_closes_the_clerks_till(day, qtbot):
    app, _clerk, _first = day
    with app.uow() as uow:
        auth.create_operator(uow, "boss", "Boss", "boss-pass-1", "supervisor")
        uow.commit()
    boss = app.login("boss", "boss-pass-1")
    _window, page = open_page(qtbot, app, boss)
    assert page.operator_combo.isEnabled() and page.expected_label.text() == "0.00"
    qtbot.waitUntil(lambda: page.operator_combo.findText("clerk") >= 0, timeout=WAIT_MS)
    page.operator_combo.setCurrentText("clerk")
    page.refresh()
    qtbot.waitUntil(lambda: page.expected_label.text() == "40.00", timeout=WAIT_MS)
    qtbot.keyClicks(page.counted_edit, "40.00")
    assert page.discrepancy_label.text() == "0.00 (balanced)"
    page.confirm = lambda text: "clerk" in text
    click(qtbot, page.close_button)
    qtbot.waitUntil(lambda: page.last_closing is not None, timeout=WAIT_MS)
    assert (page.last_closing.operator, page.last_closing.closed_by) == ("clerk", "boss")
