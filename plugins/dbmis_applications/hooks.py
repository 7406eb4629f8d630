"""Registers the applications plugin: the "New service" page and the ``dbmis application`` commands.

PyQt6 and click modules load only when the page or command is built, so the plugin stays cheap to
load and the headless host runs where PyQt6 is missing.
"""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CliCommand, QtPage


def _page(ctx):
    from .qt_applications import ApplicationsPage

    return ApplicationsPage(ctx)


def _commands():
    from .cli import application_group

    return application_group


@hookimpl
def dbmis_qt_pages():
    return [QtPage(name="applications", title="New service", menu="Daily business",
                   factory=_page, permission="manage_applications", order=30)]


@hookimpl
def dbmis_cli_commands():
    return [CliCommand(name="application", factory=_commands)]
