"""Hook specifications: the whole public plugin API.

Every hook returns a list of typed records (``dbmis_core.types``). Each is documented in
docs/hooks.md; a test fails if one is missing there or has no test.
"""

from __future__ import annotations

import pluggy

from .types import (
    CardFormatSpec,
    CliCommand,
    ConsumptionCheck,
    DriverSpec,
    QtPage,
    ReportSpec,
    Tariff,
)

PROJECT = "dbmis"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def dbmis_tariffs() -> list[Tariff]:
    """Register tariffs.

    Example::

        @hookimpl
        def dbmis_tariffs():
            return [Tariff(name="flat", title="Flat price", quote=quote_flat)]
    """


@hookspec
def dbmis_card_formats() -> list[CardFormatSpec]:
    """Register card formats (byte layouts of user and service cards).

    Example::

        @hookimpl
        def dbmis_card_formats():
            return [CardFormatSpec(name="dbmis-ref", title="Reference", factory=RefFormat)]
    """


@hookspec
def dbmis_card_drivers() -> list[DriverSpec]:
    """Register card reader or encoder drivers.

    Example::

        @hookimpl
        def dbmis_card_drivers():
            return [DriverSpec(name="sim", title="Simulated", open=open_reader,
                               enumerate=list_readers)]
    """


@hookspec
def dbmis_reports() -> list[ReportSpec]:
    """Register reports.

    Example::

        @hookimpl
        def dbmis_reports():
            return [ReportSpec(name="daily-sales", title="Daily sales", data=daily_rows)]
    """


@hookspec
def dbmis_qt_pages() -> list[QtPage]:
    """Contribute pages to the Qt clerk workstation (import PyQt6 inside ``factory`` only).

    Example::

        @hookimpl
        def dbmis_qt_pages():
            return [QtPage(name="sale", title="Sell electricity", menu="Daily business",
                           factory=lambda ctx: SalePage(ctx))]
    """


@hookspec
def dbmis_cli_commands() -> list[CliCommand]:
    """Contribute commands to the ``dbmis`` program.

    Example::

        @hookimpl
        def dbmis_cli_commands():
            return [CliCommand(name="hello", factory=lambda: hello_command)]
    """


@hookspec
def dbmis_consumption_checks() -> list[ConsumptionCheck]:
    """Register rules over monthly consumption (rationality checks and abnormal-change detectors);
    each customer's suspicion score is the weighted sum of the rules' scores.

    Example::

        @hookimpl
        def dbmis_consumption_checks():
            return [ConsumptionCheck(name="night-shop", title="Shop closed but using",
                                     run=check_night_shop, kind="change", weight=0.5)]
    """
