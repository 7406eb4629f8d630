"""Registers the built-in consumption rules, the ``consumption`` and ``workorder`` commands and the
"User management" pages. numpy loads with the rules; PyQt6 only when a page is built."""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CliCommand, QtPage


@hookimpl
def dbmis_consumption_checks():
    from .checks import builtin_checks

    return builtin_checks()


def _group(name: str):
    def factory():
        from . import cli

        return getattr(cli, f"{name}_group")

    return factory


def _page(cls_name: str):
    def factory(ctx):
        from . import qt_consumption

        return getattr(qt_consumption, cls_name)(ctx)

    return factory


@hookimpl
def dbmis_cli_commands():
    return [CliCommand(name="consumption", factory=_group("consumption")),
            CliCommand(name="workorder", factory=_group("workorder"))]


@hookimpl
def dbmis_qt_pages():
    return [
        QtPage(name="consumption", title="Consumption per customer", menu="User management",
               factory=_page("ConsumptionPage"), permission="view", order=10,
               help="consumption-analysis"),
        QtPage(name="suspicion-ranking", title="Abnormal change ranking", menu="User management",
               factory=_page("RankingPage"), permission="analyse", order=20,
               help="consumption-analysis"),
        QtPage(name="work-orders", title="Inspection work orders", menu="User management",
               factory=_page("WorkOrdersPage"), permission="view", order=30,
               help="consumption-analysis"),
    ]
