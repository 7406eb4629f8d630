"""The login dialog: operator name and password, with one clear error line."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from .runner import error_message


class LoginDialog(QDialog):
    """Emits ``logged_in(operator)`` before closing, so the host can open the main window first."""

    logged_in = pyqtSignal(object)

    def __init__(self, app, parent=None) -> None:
        super().__init__(parent)
        self.app = app
        self.operator = None
        station = app.config.data["station"]
        self.setWindowTitle("DBMIS - operator login")
        self.setMinimumWidth(420)

        heading = QLabel(f"<b>DBMIS clerk workstation</b><br>Station {station['code']} "
                         f"({station['name']})")
        self.login_edit = QLineEdit(objectName="login", placeholderText="operator name")
        self.password_edit = QLineEdit(objectName="password", placeholderText="password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.error_label = QLabel(objectName="error", wordWrap=True)
        self.error_label.setStyleSheet("color: #b00020; font-weight: bold;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Log in")
        self.buttons.accepted.connect(self.try_login)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("&Operator:", self.login_edit)
        form.addRow("&Password:", self.password_edit)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

    def try_login(self) -> None:
        login = self.login_edit.text().strip()
        if not login:
            self.error_label.setText("enter your operator name")
            self.login_edit.setFocus()
            return
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            operator = self.app.login(login, self.password_edit.text())
        except Exception as exc:
            self.error_label.setText(error_message(exc))
            self.password_edit.clear()
            self.password_edit.setFocus()
            return
        finally:
            QApplication.restoreOverrideCursor()
        self.error_label.clear()
        self.operator = operator
        self.logged_in.emit(operator)
        self.accept()
