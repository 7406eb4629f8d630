"""Registers the built-in reports, the ``report``/``lineloss``/``find`` commands and the Qt pages.

Records only: the queries load with the first report run, PyQt6 only when a page is built."""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CliCommand, QtPage, ReportSpec

SCOPE = ("level", "region", "month_from", "month_to", "station", "operator", "category")


def _data(name: str):
    def data(uow, **filters):
        from . import builtin

        return getattr(builtin, name)(uow, **filters)

    data.__name__ = name
    return data


def _columns(name: str):
    from . import builtin

    return getattr(builtin, name)


@hookimpl
def dbmis_reports():
    pkg = "dbmis_core"
    return [
        ReportSpec("daily-sales", "Daily sales journal (per operator and station)",
                   _data("daily_sales"), "report.html.j2", _columns("DAILY_COLUMNS"),
                   (*SCOPE, "day"), pkg),
        ReportSpec("monthly-sales", "Monthly sales by area", _data("monthly_sales"),
                   "report.html.j2", _columns("MONTHLY_COLUMNS"), SCOPE, pkg),
        ReportSpec("monthly-consumption", "Monthly consumption by area",
                   _data("monthly_consumption"), "report.html.j2",
                   _columns("CONSUMPTION_COLUMNS"), ("level", "region", "category"), pkg),
        ReportSpec("line-loss", "Line loss (master meter against billed consumption)",
                   _data("line_loss"), "report.html.j2", _columns("LOSS_COLUMNS"),
                   ("level", "region"), pkg),
        ReportSpec("indicators", "Assessment indicators", _data("indicators"),
                   "report.html.j2", _columns("INDICATOR_COLUMNS"),
                   ("region", "station", "operator", "category", "level"), pkg),
        ReportSpec("comparison", "Sales against last month and the same month last year",
                   _data("comparison"), "report.html.j2", _columns("COMPARISON_COLUMNS"), SCOPE,
                   pkg),
        ReportSpec("customer-statement", "Customer statement", _data("customer_statement"),
                   "statement.html.j2", _columns("STATEMENT_COLUMNS"), ("account_no",),
                   "dbmis_reports"),
        ReportSpec("card-operations", "Card operations (issues, reissues, reversals)",
                   _data("card_operations"), "report.html.j2", _columns("CARD_OP_COLUMNS"),
                   ("station", "operator"), pkg),
        ReportSpec("service-cards", "Service card log", _data("service_card_log"),
                   "report.html.j2", _columns("SERVICE_COLUMNS"), ("station", "operator"), pkg),
    ]


def _group(name: str):
    def factory():
        from . import cli

        return getattr(cli, f"{name}_command")

    return factory


def _page(cls_name: str):
    def factory(ctx):
        from . import qt_reports

        return getattr(qt_reports, cls_name)(ctx)

    return factory


@hookimpl
def dbmis_cli_commands():
    return [CliCommand(name="report", factory=_group("report")),
            CliCommand(name="lineloss", factory=_group("lineloss")),
            CliCommand(name="find", factory=_group("find"))]


@hookimpl
def dbmis_qt_pages():
    return [
        QtPage(name="reports", title="Reports", menu="Query and reports",
               factory=_page("ReportsPage"), permission="view_reports", order=10),
        QtPage(name="find", title="Find", menu="Query and reports",
               factory=_page("FindPage"), permission="view", order=5, help="reports"),
    ]
