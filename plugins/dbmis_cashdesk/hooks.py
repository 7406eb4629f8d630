"""Registers the cash desk: the ``receipt`` and ``day`` commands and the "Cash desk" page. PyQt6 is
imported only when the page is built, so the headless host runs without it."""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CliCommand, QtPage


def _receipt_group():
    from .cli import receipt_group

    return receipt_group


def _day_group():
    from .cli import day_group

    return day_group


def _cash_desk_page(ctx):
    from .qt_cashdesk import CashDeskPage

    return CashDeskPage(ctx)


@hookimpl
def dbmis_cli_commands():
    return [CliCommand(name="receipt", factory=_receipt_group),
            CliCommand(name="day", factory=_day_group)]


@hookimpl
def dbmis_qt_pages():
    return [QtPage(name="cash-desk", title="Cash desk", menu="Daily business",
                   factory=_cash_desk_page, permission="close_day", order=40)]
