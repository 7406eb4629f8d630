"""Registers customer changes: the ``account``, ``debt``, ``inspection`` and ``sale`` commands and
the "Customer record" page. PyQt6 is imported only when the page is built."""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CliCommand, QtPage


def _group(name: str):
    def factory():
        from . import cli

        return getattr(cli, f"{name}_group")

    return factory


def _record_page(ctx):
    from .qt_record import CustomerRecordPage

    return CustomerRecordPage(ctx)


@hookimpl
def dbmis_cli_commands():
    return [CliCommand(name=n, factory=_group(n)) for n in ("account", "debt", "inspection", "sale")]


@hookimpl
def dbmis_qt_pages():
    return [QtPage(name="customer-record", title="Customer record", menu="Daily business",
                   factory=_record_page, permission="manage_customers", order=30)]
