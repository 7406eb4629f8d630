"""Entry point of the clerk workstation (``dbmis-qt`` or ``python -m dbmis_qt``)."""

from __future__ import annotations

import argparse
import sys

from PyQt6.QtWidgets import QApplication, QMessageBox

from dbmis_core.app import Application
from dbmis_core.config import Config
from dbmis_core.errors import DbmisError

from .login import LoginDialog
from .window import MainWindow


def launch(app: Application) -> LoginDialog:
    """Show the login dialog; a successful login opens the main window (``dialog.main_window``)."""
    dialog = LoginDialog(app)
    dialog.main_window = None

    def open_main(operator) -> None:
        dialog.main_window = MainWindow(app, operator)
        dialog.main_window.show()

    dialog.logged_in.connect(open_main)
    dialog.show()
    return dialog


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(prog="dbmis-qt", description="DBMIS clerk workstation")
    parser.add_argument("--config", help="configuration file (default: $DBMIS_CONFIG or "
                        "<data folder>/dbmis.toml)")
    args, qt_args = parser.parse_known_args(argv[1:])
    qapp = QApplication.instance() or QApplication([argv[0] if argv else "dbmis-qt", *qt_args])
    qapp.setApplicationName("DBMIS")
    try:
        app = Application(Config.load(args.config))
        _ = app.pm  # configuration mistakes (unknown card format, tariff, driver) show before login
    except DbmisError as exc:
        QMessageBox.critical(None, "DBMIS", f"DBMIS cannot start: {exc}")
        return 2
    dialog = launch(app)
    try:
        return qapp.exec()
    finally:
        if dialog.main_window is not None:
            dialog.main_window.close()
        app.close()
