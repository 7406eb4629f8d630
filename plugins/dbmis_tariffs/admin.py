"""Tariff administration: the ``dbmis tariff`` commands and the Qt "Tariffs" page (Settings menu).

Click and PyQt6 are imported only when a command or the page is built, so loading the plugin costs
nothing and the headless host runs where PyQt6 is missing.
"""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CliCommand, QtPage


def _tariff_cli():
    from .cli import tariff_group

    return tariff_group


def _tariffs_page(ctx):
    from .qt_tariffs import TariffsPage

    return TariffsPage(ctx)


@hookimpl
def dbmis_cli_commands():
    return [CliCommand(name="tariff", factory=_tariff_cli)]


@hookimpl
def dbmis_qt_pages():
    return [QtPage(name="tariffs", title="Tariffs", menu="Settings", factory=_tariffs_page,
                   permission="manage_tariffs", order=60)]
