"""The main window: module menus from the plugins' pages, a page stack and the status bar."""

from __future__ import annotations

import html
import importlib.metadata as md
import logging

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.services.auth import Perm

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
        self.setCentralWidget(self.stack)
        self._build_menus()
        self._build_status_bar()

    # -- menus ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
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

    def closeEvent(self, event) -> None:
        """Let a running sale finish: stopping mid-write would leave it pending on the card."""
        self.app.devices.unsubscribe(self.reader_event.emit)
        self.runner.wait()
        super().closeEvent(event)
