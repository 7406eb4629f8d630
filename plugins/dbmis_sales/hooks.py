"""Registers the sale, card reissue and sale reversal pages and the ``card reissue``, ``card
reconcile`` and ``sale reverse`` commands. PyQt6 is imported only when a page is built, so this
plugin still loads (and the headless host still runs) where PyQt6 is not installed."""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CliCommand, QtPage


def _sale_page(ctx):
    from .qt_sale import SalePage

    return SalePage(ctx)


def _reissue_page(ctx):
    from .qt_reissue import ReissuePage

    return ReissuePage(ctx)


def _reversal_page(ctx):
    from .qt_reversal import ReversalPage

    return ReversalPage(ctx)


def _command(attr: str):
    def factory():
        from . import cli

        return getattr(cli, attr)

    return factory


@hookimpl
def dbmis_qt_pages():
    return [QtPage(name="sale", title="Sell electricity", menu="Daily business", factory=_sale_page,
                   permission="vend", order=10, help="selling"),
            QtPage(name="reissue-card", title="Reissue card", menu="Daily business",
                   factory=_reissue_page, permission="reissue_card", order=15,
                   help="reissue-and-reversal"),
            QtPage(name="reverse-sale", title="Reverse sale", menu="Daily business",
                   factory=_reversal_page, permission="vend", order=16,
                   help="reissue-and-reversal")]


@hookimpl
def dbmis_cli_commands():
    return [CliCommand(name="card-reissue", factory=_command("card_reissue")),
            CliCommand(name="card-reconcile", factory=_command("card_reconcile")),
            CliCommand(name="sale-reverse", factory=_command("sale_reverse"))]
