"""Registers the card tools page. PyQt6 is imported only when the page is built, so this plugin
still loads (and the headless host still runs) where PyQt6 is not installed."""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import QtPage


def _card_tools_page(ctx):
    from .qt_cardtools import CardToolsPage

    return CardToolsPage(ctx)


@hookimpl
def dbmis_qt_pages():
    return [QtPage(name="card-tools", title="Card tools", menu="Card reading and writing",
                   factory=_card_tools_page, permission="read_card", order=50)]
