"""Registers the sale page. PyQt6 is imported only when the page is built, so this plugin still
loads (and the headless host still runs) where PyQt6 is not installed."""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import QtPage


def _sale_page(ctx):
    from .qt_sale import SalePage

    return SalePage(ctx)


@hookimpl
def dbmis_qt_pages():
    return [QtPage(name="sale", title="Sell electricity", menu="Daily business", factory=_sale_page,
                   permission="vend", order=10)]
