"""The login dialog: operator name and password, with one clear error line. An operator who must
change the password (first login, or after an administrator's reset) gets the new-password fields
and cannot go further until the change succeeds."""

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
        self.new_password_edit = QLineEdit(objectName="new-password",
                                           placeholderText="new password")
        self.repeat_edit = QLineEdit(objectName="repeat-password",
                                     placeholderText="new password again")
        for edit in (self.new_password_edit, self.repeat_edit):
            edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.forced: tuple[str, str] | None = None  # (login, current password) while changing
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
        form.addRow("&New password:", self.new_password_edit)
        form.addRow("&Repeat:", self.repeat_edit)
        self.form = form
        self._show_change_fields(False)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

    def _show_change_fields(self, show: bool) -> None:
        for edit in (self.new_password_edit, self.repeat_edit):
            self.form.setRowVisible(edit, show)
        self.login_edit.setReadOnly(show)
        self.form.setRowVisible(self.password_edit, not show)
        self.ok_button.setText("Change password and log in" if show else "Log in")

    def _change_password(self) -> None:
        from dbmis_core.services import operators

        login, current = self.forced
        if self.new_password_edit.text() != self.repeat_edit.text():
            self.error_label.setText("the two new passwords differ")
            self.repeat_edit.clear()
            self.repeat_edit.setFocus()
            return
        try:
            operator = operators.change_password(self.app, login, current,
                                                 self.new_password_edit.text())
        except Exception as exc:
            self.error_label.setText(error_message(exc))
            self.new_password_edit.clear()
            self.repeat_edit.clear()
            self.new_password_edit.setFocus()
            return
        self.forced = None
        self._finish(operator)

    def _finish(self, operator) -> None:
        self.error_label.clear()
        self.operator = operator
        self.logged_in.emit(operator)
        self.accept()

    def try_login(self) -> None:
        if self.forced is not None:
            return self._change_password()
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
        if operator.must_change_password:
            self.forced = (operator.login, self.password_edit.text())
            self.password_edit.clear()
            self._show_change_fields(True)
            self.error_label.setText("You must choose a new password before you continue.")
            self.new_password_edit.setFocus()
            return
        self._finish(operator)
