"""Temporary logout: a lock screen that replaces everything in the main window, and an idle
watcher that locks it after ``security.idle_lock_minutes`` without keyboard or mouse input."""

from __future__ import annotations

import html

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .runner import error_message

INPUT_EVENTS = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove,
                QEvent.Type.Wheel, QEvent.Type.TouchBegin}


class IdleWatcher(QObject):
    """Application-wide event filter: any input restarts the timer; ``idle`` fires once."""

    idle = pyqtSignal()

    def __init__(self, minutes: float, parent: QObject) -> None:
        super().__init__(parent)
        self.timer = QTimer(self, singleShot=True)
        self.timer.timeout.connect(self.idle.emit)
        self.enabled = minutes > 0
        self.timer.setInterval(max(1, int(minutes * 60_000)))

    def start(self) -> None:
        if self.enabled:
            from PyQt6.QtWidgets import QApplication

            QApplication.instance().installEventFilter(self)
            self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def remove(self) -> None:
        from PyQt6.QtWidgets import QApplication

        self.timer.stop()
        if QApplication.instance() is not None:
            QApplication.instance().removeEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() in INPUT_EVENTS and self.timer.isActive():
            self.timer.start()
        return False


class LockScreen(QWidget):
    """Shown instead of the pages and menus; ``unlock_requested(login, password)``."""

    unlock_requested = pyqtSignal(str, str)

    def __init__(self, operator, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("lock-screen")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet("#lock-screen { background: #26323f; } QLabel { color: white; }")
        self.heading = QLabel(objectName="lock-heading", wordWrap=True)
        self.heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.heading.setText(
            f"<h1>Workstation locked</h1><p>In use by {html.escape(operator.full_name)} "
            f"({html.escape(operator.login)}). Enter your password to continue, or a supervisor "
            "may unlock it.</p>")
        self.login_edit = QLineEdit(operator.login, objectName="lock-login")
        self.password_edit = QLineEdit(objectName="lock-password", placeholderText="password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.unlock_button = QPushButton("&Unlock", objectName="lock-unlock", default=True)
        self.error_label = QLabel(objectName="lock-error", wordWrap=True)
        self.error_label.setStyleSheet("color: #ffb4b4; font-weight: bold;")
        self.unlock_button.clicked.connect(self._submit)
        self.password_edit.returnPressed.connect(self._submit)
        self.login_edit.returnPressed.connect(self._submit)
        form = QFormLayout()
        form.addRow("&Operator:", self.login_edit)
        form.addRow("&Password:", self.password_edit)
        box = QWidget(maximumWidth=420)
        inner = QVBoxLayout(box)
        inner.addLayout(form)
        inner.addWidget(self.unlock_button)
        inner.addWidget(self.error_label)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.heading)
        layout.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        self.operator = operator

    def reset(self) -> None:
        self.login_edit.setText(self.operator.login)
        self.password_edit.clear()
        self.error_label.clear()
        self.password_edit.setFocus()

    def _submit(self) -> None:
        self.unlock_requested.emit(self.login_edit.text().strip(), self.password_edit.text())

    def refuse(self, exc: BaseException) -> None:
        self.error_label.setText(error_message(exc))
        self.password_edit.clear()
        self.password_edit.setFocus()
