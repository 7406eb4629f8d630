"""The main window: module menus from the plugins' pages, a page stack and the status bar."""

from __future__ import annotations

import html
import importlib.metadata as md
import logging

from decimal import Decimal, InvalidOperation

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction, QColor, QKeySequence, QPainter, QPixmap
from PyQt6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.services import operators
from dbmis_core.services.auth import Perm

from .calculator import CalculatorDialog
from .help import HelpWindow, guide_for_page
from .lock import IdleWatcher, LockScreen
from .runner import BackgroundRunner, PageContext, error_message

log = logging.getLogger(__name__)


def permitted(operator, page) -> bool:
    """Pages declare a permission by name; an unknown name hides the page rather than crash."""
    if page.permission is None:
        return True
    try:
        return operator.can(Perm(page.permission))
    except ValueError:
        log.warning("page %s asks for unknown permission %r; hidden", page.name, page.permission)
        return False


def is_money_field(widget) -> bool:
    """Pages mark money inputs with the Qt property ``money`` or an object name ending in
    "amount" (the sale page's amount field is named "amount")."""
    if not isinstance(widget, QLineEdit) or widget.isReadOnly():
        return False
    return bool(widget.property("money")) or widget.objectName().lower().endswith("amount")


class BackgroundFrame(QWidget):
    """Holds the pages and paints the operator's background image behind them, veiled so text
    on the pages stays readable."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("background")
        self.pixmap: QPixmap | None = None

    def set_image(self, data: bytes | None) -> bool:
        pixmap = QPixmap()
        if data is None or not pixmap.loadFromData(data):
            self.pixmap = None
        else:
            self.pixmap = pixmap
        self.update()
        return self.pixmap is not None

    def paintEvent(self, event) -> None:
        if self.pixmap is None:
            return super().paintEvent(event)
        painter = QPainter(self)
        scaled = self.pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                                    Qt.TransformationMode.SmoothTransformation)
        painter.drawPixmap((self.width() - scaled.width()) // 2,
                           (self.height() - scaled.height()) // 2, scaled)
        painter.fillRect(self.rect(), QColor(255, 255, 255, 110))
        painter.end()


class MainWindow(QMainWindow):
    reader_event = pyqtSignal(object)  # DeviceEvent, emitted on the device worker thread

    def __init__(self, app, operator) -> None:
        super().__init__()
        self.app, self.operator = app, operator
        self.runner = BackgroundRunner(app.devices, self)
        self.ctx = PageContext(app, operator, self.runner,
                               lambda text: self.statusBar().showMessage(text, 8000))
        self.pages = {p.name: p for p in app.pm.qt_pages() if permitted(operator, p)}
        self.page_widgets: dict[str, QWidget] = {}
        self.page_actions: dict[str, QAction] = {}
        self.module_menus: dict[str, object] = {}

        self.setWindowTitle("DBMIS clerk workstation")
        self.resize(1120, 780)
        self.stack = QStackedWidget(objectName="pages")
        self.stack.addWidget(self._home_page())
        self.background = BackgroundFrame()
        QVBoxLayout(self.background).addWidget(self.stack)
        self.lock_screen = LockScreen(operator)
        self.lock_screen.unlock_requested.connect(self.try_unlock)
        self.shell = QStackedWidget(objectName="shell")
        self.shell.addWidget(self.background)
        self.shell.addWidget(self.lock_screen)
        self.setCentralWidget(self.shell)
        self.locked = False
        self.unlocked_by = None  # who unlocked the last lock (the operator or a supervisor)
        self.calculator: CalculatorDialog | None = None
        self.help_window: HelpWindow | None = None
        self._money_field: QLineEdit | None = None
        self._build_menus()
        self._build_status_bar()
        QApplication.instance().focusChanged.connect(self._focus_changed)
        from dbmis_core.services import settings

        minutes = float(settings.value(app, "security.idle_lock_minutes"))
        self.idle = IdleWatcher(minutes, self)
        self.idle.idle.connect(self.lock)
        self.idle.start()
        self.load_background()

    # -- menus ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.lock_action = file_menu.addAction("&Lock workstation")
        self.lock_action.setObjectName("lock")
        self.lock_action.setShortcut(QKeySequence("Ctrl+L"))
        self.lock_action.triggered.connect(self.lock)
        self.calculator_action = file_menu.addAction("&Calculator")
        self.calculator_action.setObjectName("calculator")
        self.calculator_action.setShortcut(QKeySequence("Ctrl+K"))
        self.calculator_action.triggered.connect(self.show_calculator)
        file_menu.addAction("&Background image...").triggered.connect(self.choose_background)
        file_menu.addAction("&Remove background image").triggered.connect(self.remove_background)
        file_menu.addSeparator()
        exit_action = file_menu.addAction("E&xit")
        exit_action.setShortcut(QKeySequence.StandardKey.Quit)
        exit_action.triggered.connect(self.close)
        for page in self.pages.values():
            menu = self.module_menus.get(page.menu)
            if menu is None:
                menu = self.module_menus[page.menu] = bar.addMenu(page.menu)
            action = menu.addAction(page.title)
            action.setObjectName(f"page-{page.name}")
            action.triggered.connect(lambda _checked=False, name=page.name: self.open_page(name))
            self.page_actions[page.name] = action
        help_menu = bar.addMenu("&Help")
        self.help_action = help_menu.addAction("&User guide for this screen")
        self.help_action.setObjectName("help")
        self.help_action.setShortcut(QKeySequence.StandardKey.HelpContents)  # F1
        self.help_action.triggered.connect(self.show_help)
        help_menu.addAction("&About DBMIS").triggered.connect(self.show_about)

    def open_page(self, name: str) -> QWidget | None:
        """Build a page on first use (so a broken page cannot stop start-up) and show it."""
        page = self.pages[name]
        widget = self.page_widgets.get(name)
        if widget is None:
            try:
                widget = page.factory(self.ctx)
            except Exception as exc:
                QMessageBox.critical(self, "DBMIS", f"The page {page.title!r} cannot be opened: "
                                     f"{error_message(exc)}")
                return None
            widget.setObjectName(f"page-{name}")
            self.page_widgets[name] = widget
            self.stack.addWidget(widget)
        self.stack.setCurrentWidget(widget)
        self.setWindowTitle(f"DBMIS clerk workstation - {page.title}")
        return widget

    def _home_page(self) -> QWidget:
        w = QWidget(objectName="home")
        lines = [f"<h2>Welcome, {html.escape(self.operator.full_name)}</h2>"]
        if self.pages:
            lines.append("<p>Choose a task from the menus:</p><ul>")
            lines += [f"<li>{html.escape(p.menu)} &gt; {html.escape(p.title)}</li>"
                      for p in self.pages.values()]
            lines.append("</ul>")
        else:
            lines.append("<p>No page is available to your role "
                         f"({html.escape(self.operator.role)}).</p>")
        missing = self._unavailable_plugins()
        if missing:
            lines.append("<p>Plugins not loaded:</p><ul>")
            lines += [f"<li>{html.escape(n)}: {html.escape(r)}</li>" for n, r in missing]
            lines.append("</ul>")
        label = QLabel("".join(lines), wordWrap=True)
        label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(w)
        layout.addWidget(label)
        return w

    def _unavailable_plugins(self) -> list[tuple[str, str]]:
        return [(i.name, i.reason or i.status) for i in self.app.pm.infos.values()
                if i.status != "loaded"]

    def show_about(self) -> None:
        try:
            version = md.version("dbmis")
        except md.PackageNotFoundError:
            version = "development"
        plugins = "".join(f"<li>{html.escape(i.name)} ({html.escape(i.distribution)}): "
                          f"{html.escape(i.reason or i.status)}</li>"
                          for i in self.app.pm.infos.values())
        QMessageBox.about(self, "About DBMIS",
                          f"<b>DBMIS {version}</b><p>Prepaid electricity meter information "
                          f"management system, clerk workstation.</p><p>Plugins:</p><ul>{plugins}</ul>"
                          "<p>Licensed under the GPL, version 3 or later.</p>")

    # -- status bar ----------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        station = self.app.config.data["station"]
        self.operator_label = QLabel(f"Operator: {self.operator.full_name} ({self.operator.login}, "
                                     f"{self.operator.role})",
                                     objectName="status-operator")
        self.station_label = QLabel(f"Station: {station['code']} {station['name']}",
                                    objectName="status-station")
        self.reader_label = QLabel("Reader: ...", objectName="status-reader")
        self.busy_bar = QProgressBar(objectName="status-busy", maximumWidth=120, textVisible=False)
        self.busy_bar.setRange(0, 0)
        self.busy_bar.hide()
        self.runner.busy_changed.connect(self.busy_bar.setVisible)
        sb = self.statusBar()
        for widget in (self.busy_bar, self.operator_label, self.station_label, self.reader_label):
            sb.addPermanentWidget(widget)
        self.reader_event.connect(self.show_reader_state)
        self.app.devices.subscribe(self.reader_event.emit)

    def show_reader_state(self, event) -> None:
        """Reader state from the device manager: no reader, no card, card present, busy, error."""
        text = f"Reader: {event.state.value}"
        if event.detail:
            text += f" ({event.detail})"
        self.reader_label.setText(text)
        if event.kind in ("inserted", "removed"):
            self.statusBar().showMessage(f"Card {event.kind}", 4000)

    # -- temporary logout ----------------------------------------------------------------------
    def lock(self) -> None:
        """Hide everything (pages, menus, status bar, tool windows) behind the lock screen."""
        if self.locked:
            return
        self.locked = True
        self.idle.stop()
        for window in (self.calculator, self.help_window):
            if window is not None:
                window.hide()
        self._disabled_actions = [a for a in self._menu_actions() if a.isEnabled()]
        for action in self._disabled_actions:  # no shortcut (Ctrl+K, F1...) works behind the lock
            action.setEnabled(False)
        self.menuBar().setEnabled(False)
        self.menuBar().hide()
        self.statusBar().hide()
        self._title = self.windowTitle()
        self.setWindowTitle("DBMIS clerk workstation - locked")
        self.shell.setCurrentWidget(self.lock_screen)
        self.lock_screen.reset()

    def _menu_actions(self) -> list[QAction]:
        found, todo = [], list(self.menuBar().actions())
        while todo:
            action = todo.pop()
            found.append(action)
            if action.menu() is not None:
                todo += action.menu().actions()
        return found

    def try_unlock(self, login: str, password: str) -> bool:
        """The same operator's password, or a supervisor's login (recorded by the service)."""
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.unlocked_by = operators.unlock_session(self.app, self.operator, login, password)
        except Exception as exc:
            self.lock_screen.refuse(exc)
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self.locked = False
        self.shell.setCurrentWidget(self.background)
        self.menuBar().show()
        self.menuBar().setEnabled(True)
        for action in self._disabled_actions:
            action.setEnabled(True)
        self.statusBar().show()
        self.setWindowTitle(self._title)
        self.lock_screen.password_edit.clear()
        if self.unlocked_by.login != self.operator.login:
            self.statusBar().showMessage(f"Unlocked by supervisor {self.unlocked_by.login}", 8000)
        self.idle.start()
        return True

    # -- preferences -----------------------------------------------------------------------------
    def load_background(self) -> None:
        found = operators.background(self.app, self.operator)
        self.background.set_image(found[1] if found else None)

    def set_background_file(self, path: str) -> None:
        """What the file dialog calls with the chosen file (tests call it directly)."""
        try:
            name = operators.set_background(self.app, self.operator, path)
        except Exception as exc:
            QMessageBox.warning(self, "DBMIS", f"Background not changed: {error_message(exc)}")
            return
        self.load_background()
        self.statusBar().showMessage(f"Background image: {name}", 5000)

    def choose_background(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Background image", "",
                                              "Images (*.png *.jpg *.jpeg *.gif *.bmp)")
        if path:
            self.set_background_file(path)

    def remove_background(self) -> None:
        operators.clear_background(self.app, self.operator)
        self.load_background()

    def show_calculator(self) -> CalculatorDialog:
        if self.calculator is None:
            self.calculator = CalculatorDialog(self)
            self.calculator.use_requested.connect(self.use_in_money_field)
        self.calculator.show()
        self.calculator.raise_()
        self.calculator.activateWindow()
        return self.calculator

    def _focus_changed(self, _old, new) -> None:
        if is_money_field(new) and self.stack.isAncestorOf(new):
            self._money_field = new

    def current_money_field(self) -> QLineEdit | None:
        """The last focused money field if it is on the current page, else the page's first."""
        page = self.stack.currentWidget()
        field = self._money_field
        try:
            if field is not None and page.isAncestorOf(field) and field.isVisible():
                return field
        except RuntimeError:  # the widget was deleted
            self._money_field = None
        return next((w for w in page.findChildren(QLineEdit) if is_money_field(w)), None)

    def use_in_money_field(self, text: str) -> bool:
        """Put a calculator result into the current page's money field (cents only)."""
        message = self.calculator.message if self.calculator is not None else None
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = None
        field = self.current_money_field()
        problem = None
        if value is None or value < 0:
            problem = f"{text} is not an amount"
        elif value != value.quantize(Decimal("0.01")):
            problem = f"{text} has more than two decimals; round it first"
        elif field is None:
            problem = "this screen has no amount field"
        if problem:
            if message is not None:
                message.setText(problem)
            return False
        field.setText(format(value.quantize(Decimal("0.01")), "f"))
        field.setFocus()
        if message is not None:
            message.setText(f"{field.text()} put into the amount field")
        return True

    # -- online help -----------------------------------------------------------------------------
    def current_page(self):
        name = self.stack.currentWidget().objectName().removeprefix("page-")
        return self.pages.get(name)

    def show_help(self) -> HelpWindow:
        """F1: the user guide page for the current screen."""
        if self.help_window is None:
            self.help_window = HelpWindow(self)
        self.help_window.open_guide(guide_for_page(self.current_page()))
        self.help_window.show()
        self.help_window.raise_()
        return self.help_window

    def closeEvent(self, event) -> None:
        """Let a running sale finish: stopping mid-write would leave it pending on the card."""
        self.idle.remove()
        try:
            QApplication.instance().focusChanged.disconnect(self._focus_changed)
        except TypeError:
            pass
        self.app.devices.unsubscribe(self.reader_event.emit)
        self.runner.wait()
        super().closeEvent(event)
