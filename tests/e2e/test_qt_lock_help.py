"""The Qt host's operator features with real windows (offscreen): forced password change at login,
lock on command and when idle, unlock by the operator or a supervisor, per-operator background,
calculator, and F1 help that shows the docs' own text. Screenshots go to the artifacts folder."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from pathlib import Path

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QGuiApplication, QImage
from PyQt6.QtWidgets import QApplication, QFileDialog, QLabel, QLineEdit, QTextEdit, QWidget

from dbmis_core.services import operators
from dbmis_core.services.auth import create_operator
from dbmis_qt.app import launch
from dbmis_qt.help import guide_folder
from dbmis_qt.window import MainWindow

CTRL = Qt.KeyboardModifier.ControlModifier
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide"


@pytest.fixture
def staff(demo):
    with demo.uow() as uow:
        create_operator(uow, "sue", "Sue Supervisor", "super-pass-1", "supervisor")
        create_operator(uow, "bob", "Bob Clerk", "bobs-pass-1", "clerk")
        uow.commit()
    return demo


def open_window(qtbot, app, login, password):
    window = MainWindow(app, app.login(login, password))
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    return window


def visible_texts(window) -> list[str]:
    """Every text a person could read in the window right now."""
    texts = [window.windowTitle()]
    for w in window.findChildren(QWidget):
        if not w.isVisible():
            continue
        if isinstance(w, (QLabel, QLineEdit)):
            texts.append(w.text())
        elif isinstance(w, QTextEdit):
            texts.append(w.toPlainText())
    return texts


def save(widget, path: Path) -> None:
    assert widget.grab().save(str(path))
    assert path.stat().st_size > 5_000, f"{path} looks empty"


def test_forced_change_at_qt_login(staff, admin, qtbot):
    operators.add_operator(staff, admin, "newbie", "New Bie", "clerk", "first-pass-1")
    dialog = launch(staff)
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.login_edit, "newbie")
    qtbot.keyClicks(dialog.password_edit, "first-pass-1")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.main_window is None and dialog.new_password_edit.isVisible()
    assert "must choose a new password" in dialog.error_label.text()
    for new, repeat, error in (("second-pass-2", "other-pass-3", "the two new passwords differ"),
                               ("short1", "short1", "a password needs at least 10 characters")):
        qtbot.keyClicks(dialog.new_password_edit, new)
        qtbot.keyClicks(dialog.repeat_edit, repeat)
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
        assert dialog.error_label.text() == error and dialog.main_window is None
        dialog.new_password_edit.clear()
        dialog.repeat_edit.clear()
    qtbot.keyClicks(dialog.new_password_edit, "second-pass-2")
    qtbot.keyClicks(dialog.repeat_edit, "second-pass-2")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.main_window is not None
    qtbot.addWidget(dialog.main_window)
    assert not dialog.main_window.operator.must_change_password
    assert staff.login("newbie", "second-pass-2").login == "newbie"


def test_lock_on_command_hides_everything_and_unlocks(staff, qtbot, artifacts_dir):
    window = open_window(qtbot, staff, "clerk", "clerk-demo-1")
    window.page_actions["sale"].trigger()
    page = window.stack.currentWidget()
    qtbot.keyClicks(page.amount_edit, "12.34")
    assert any("12.34" in t for t in visible_texts(window))

    qtbot.keyClick(window, Qt.Key.Key_L, CTRL)
    qtbot.waitUntil(lambda: window.locked, timeout=5000)
    assert window.lock_screen.isVisible()
    assert not window.stack.isVisible() and not window.menuBar().isVisible()
    assert not window.statusBar().isVisible()
    assert not any(a.isEnabled() for a in window.page_actions.values())
    texts = visible_texts(window)
    assert not any("12.34" in t or "Sell electricity" in t or "Li Wei" in t for t in texts), texts
    assert "Workstation locked" in window.lock_screen.heading.text()
    # shortcuts do nothing behind the lock
    qtbot.keyClick(window, Qt.Key.Key_K, CTRL)
    assert window.calculator is None or not window.calculator.isVisible()
    save(window, Path(artifacts_dir) / "qt-lock.png")

    lock = window.lock_screen
    qtbot.keyClicks(lock.password_edit, "wrong-pass-1")
    qtbot.mouseClick(lock.unlock_button, Qt.MouseButton.LeftButton)
    assert lock.error_label.text() == "wrong operator name or password" and window.locked
    lock.login_edit.setText("bob")
    qtbot.keyClicks(lock.password_edit, "bobs-pass-1")
    qtbot.mouseClick(lock.unlock_button, Qt.MouseButton.LeftButton)
    assert "only clerk or a supervisor" in lock.error_label.text() and window.locked
    lock.login_edit.setText("clerk")
    qtbot.keyClicks(lock.password_edit, "clerk-demo-1")
    qtbot.keyClick(lock.password_edit, Qt.Key.Key_Return)
    assert not window.locked and window.stack.isVisible() and window.menuBar().isVisible()
    assert page.amount_edit.text() == "12.34" and window.page_actions["sale"].isEnabled()
    assert window.unlocked_by.login == "clerk"

    # a supervisor may unlock; it is recorded against the clerk's session
    window.lock_action.trigger()
    lock.login_edit.setText("sue")
    qtbot.keyClicks(lock.password_edit, "super-pass-1")
    qtbot.mouseClick(lock.unlock_button, Qt.MouseButton.LeftButton)
    assert not window.locked and window.operator.login == "clerk"
    assert window.unlocked_by.login == "sue"
    assert "Unlocked by supervisor sue" in window.statusBar().currentMessage()
    sue = staff.login("sue", "super-pass-1")
    [ev] = [e for e in operators.events(staff, sue, "clerk") if e["kind"] == "session_unlocked"]
    assert ev["by"] == "sue"


def test_idle_time_locks_and_input_postpones_it(staff, qtbot):
    staff.config.data["security"]["idle_lock_minutes"] = 0.01  # 600 ms
    window = open_window(qtbot, staff, "clerk", "clerk-demo-1")
    assert not window.locked
    qtbot.waitUntil(lambda: window.locked, timeout=5000)
    assert not window.stack.isVisible()
    qtbot.keyClicks(window.lock_screen.password_edit, "clerk-demo-1")
    qtbot.mouseClick(window.lock_screen.unlock_button, Qt.MouseButton.LeftButton)
    assert not window.locked
    for _ in range(6):  # keep typing: 1.2 s of activity, no lock
        qtbot.wait(200)
        qtbot.keyClick(window.stack.currentWidget(), Qt.Key.Key_Shift)
        assert not window.locked
    qtbot.waitUntil(lambda: window.locked, timeout=5000)

    staff.config.data["security"]["idle_lock_minutes"] = 0  # off
    calm = open_window(qtbot, staff, "clerk", "clerk-demo-1")
    qtbot.wait(800)
    assert not calm.locked


def image(path: Path, color: str) -> Path:
    img = QImage(64, 48, QImage.Format.Format_RGB32)
    img.fill(QColor(color))
    assert img.save(str(path))
    return path


def dominant(window) -> str:
    c = window.background.grab().toImage().pixelColor(5, window.background.height() - 5)
    return max((("red", c.red()), ("green", c.green()), ("blue", c.blue())), key=lambda x: x[1])[0] \
        if max(c.red(), c.green(), c.blue()) - min(c.red(), c.green(), c.blue()) > 40 else "grey"


def test_background_image_per_operator(staff, qtbot, tmp_path, monkeypatch, artifacts_dir):
    red, blue = image(tmp_path / "red.png", "#c00000"), image(tmp_path / "blue.png", "#0000c0")
    clerk = open_window(qtbot, staff, "clerk", "clerk-demo-1")
    assert clerk.background.pixmap is None and dominant(clerk) == "grey"
    # the menu's file dialog, answered with the red image
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(red), "Images"))
    clerk.choose_background()
    assert dominant(clerk) == "red"
    sue = open_window(qtbot, staff, "sue", "super-pass-1")
    assert sue.background.pixmap is None
    sue.set_background_file(str(blue))
    assert dominant(sue) == "blue"
    red.unlink()  # kept in the database, not as a path
    clerk_again = open_window(qtbot, staff, "clerk", "clerk-demo-1")
    sue_again = open_window(qtbot, staff, "sue", "super-pass-1")
    assert dominant(clerk_again) == "red" and dominant(sue_again) == "blue"
    save(clerk_again, Path(artifacts_dir) / "qt-background.png")
    clerk_again.remove_background()
    assert clerk_again.background.pixmap is None
    assert dominant(open_window(qtbot, staff, "sue", "super-pass-1")) == "blue"


def test_calculator_keyboard_memory_copy_and_amount_field(staff, qtbot, artifacts_dir):
    window = open_window(qtbot, staff, "clerk", "clerk-demo-1")
    window.page_actions["sale"].trigger()
    page = window.stack.currentWidget()
    page.amount_edit.setFocus()
    calc = window.show_calculator()
    qtbot.waitExposed(calc)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is calc, timeout=5000)
    qtbot.keyClicks(calc, "12.5*4")
    qtbot.keyClick(calc, Qt.Key.Key_Return)
    assert calc.display.text() == "50"
    qtbot.keyClick(calc, Qt.Key.Key_P, CTRL)  # M+
    assert calc.engine.memory == 50 and calc.memory_label.text() == "M = 50"
    qtbot.keyClick(calc, Qt.Key.Key_Escape)
    qtbot.keyClicks(calc, "7+3=")
    assert calc.display.text() == "10"
    qtbot.keyClick(calc, Qt.Key.Key_M, CTRL)  # M-
    qtbot.keyClick(calc, Qt.Key.Key_R, CTRL)  # MR
    assert calc.display.text() == "40"
    qtbot.keyClicks(calc, "/3=")
    assert calc.display.text() == "13.3333333333"
    qtbot.keyClick(calc, Qt.Key.Key_C, CTRL)
    assert QGuiApplication.clipboard().text() == "13.3333333333"
    assert not window.use_in_money_field(calc.result_text())  # refused: not whole cents
    assert "more than two decimals" in calc.message.text() and page.amount_edit.text() == ""
    qtbot.keyClicks(calc, "2+1")
    qtbot.keyClick(calc, Qt.Key.Key_Backspace)
    qtbot.keyClicks(calc, "0.5*2=")
    assert calc.display.text() == "5"  # (2 + 0.5) * 2
    qtbot.keyClicks(calc, "/0=")
    assert calc.display.text() == "Error"
    qtbot.keyClicks(calc, "20.5+4.75=")
    save(calc, Path(artifacts_dir) / "qt-calculator.png")
    qtbot.mouseClick(calc.use_button, Qt.MouseButton.LeftButton)
    assert page.amount_edit.text() == "25.25"
    qtbot.keyClick(calc, Qt.Key.Key_E, CTRL)  # MC
    assert calc.engine.memory == 0 and calc.memory_label.text() == ""


def test_f1_opens_the_guide_for_the_screen_with_the_docs_text(staff, qtbot, artifacts_dir):
    assert guide_folder() == GUIDE
    window = open_window(qtbot, staff, "clerk", "clerk-demo-1")
    qtbot.keyClick(window, Qt.Key.Key_F1)
    assert window.help_window is not None and window.help_window.current_name == "index"
    window.page_actions["sale"].trigger()
    qtbot.keyClick(window.stack.currentWidget(), Qt.Key.Key_F1)
    help_window = window.help_window
    assert help_window.isVisible() and help_window.current_name == "selling"
    assert help_window.current_text == (GUIDE / "selling.md").read_text(encoding="utf-8")
    assert "Selling: checks, limits and debts" in help_window.browser.toPlainText()
    save(help_window, Path(artifacts_dir) / "qt-help.png")
    shown = set()
    for path in sorted(GUIDE.glob("*.md")):
        assert help_window.open_guide(path.stem) == path.stem
        assert help_window.current_text == path.read_text(encoding="utf-8")
        heading = next(line[2:] for line in help_window.current_text.splitlines()
                       if line.startswith("# "))
        assert heading in help_window.browser.toPlainText()
        shown.add(path.stem)
    listed = {help_window.contents.item(i).data(256) for i in range(help_window.contents.count())}
    assert listed == shown and {"index", "login-and-security", "operators", "selling"} <= shown
    # a link between guides stays inside the help window
    from PyQt6.QtCore import QUrl

    help_window.open_guide("index")
    help_window.browser.anchorClicked.emit(QUrl("operators.md"))
    assert help_window.current_name == "operators"
    assert help_window.open_guide("no-such-page") == "index"
    assert "There is no guide page" in help_window.browser.toPlainText()
