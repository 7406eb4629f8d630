"""Registers the Settings pages and the ``settings``, ``code``, ``meter-store`` and ``personnel``
commands. PyQt6 is imported only when a page is built, so the headless host runs without it."""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CliCommand, QtPage


def _page(cls_name: str):
    def factory(ctx):
        from . import qt_settings

        return getattr(qt_settings, cls_name)(ctx)

    return factory


def _command(attr: str):
    def factory():
        from . import cli

        return getattr(cli, attr)

    return factory


@hookimpl
def dbmis_qt_pages():
    return [QtPage(name="system-parameters", title="System parameters", menu="Settings",
                   factory=_page("ParametersPage"), permission="view", order=10, help="settings"),
            QtPage(name="code-tables", title="Code tables", menu="Settings",
                   factory=_page("CodeTablesPage"), permission="view", order=20, help="settings"),
            QtPage(name="meter-store", title="Meter store", menu="Settings",
                   factory=_page("MeterStorePage"), permission="view", order=30, help="settings"),
            QtPage(name="personnel", title="Personnel", menu="Settings",
                   factory=_page("PersonnelPage"), permission="view", order=40, help="settings")]


@hookimpl
def dbmis_cli_commands():
    return [CliCommand(name="settings", factory=_command("settings_group")),
            CliCommand(name="code", factory=_command("code_group")),
            CliCommand(name="meter-store", factory=_command("meter_store_group")),
            CliCommand(name="personnel", factory=_command("personnel_group"))]
