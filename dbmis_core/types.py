"""Typed records that registration hooks return.

A hook gives back records, never does work at load time; the plugin manager validates names, reports
duplicates with the plugin behind each, and hands hosts typed accessors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def _valid_name(_inst, _attr, value: str) -> None:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(f"plugin record name {value!r} must be lower-case letters, digits, - or _")


@attrs.frozen
class TariffContext:
    """What a tariff may look at when it prices a sale."""

    category: str
    settings: Mapping[str, Any] = attrs.field(factory=dict)
    cumulative_period_energy: Decimal = Decimal("0")


@attrs.frozen
class Tariff:
    """A way to turn money into energy.

    ``quote(amount, context)`` returns a :class:`dbmis_core.domain.Quote`; it must never return
    negative energy, must be monotone in ``amount`` and its ``lines`` must add up to the amount
    (checked by ``dbmis_core.testing.TariffSuite``).

    Optional parts, all with defaults so a tariff that only quotes still works:

    - ``validate(settings)`` raises ``ValidationError`` for settings the tariff cannot use; a new
      tariff version is stored only after it passes (docs/decisions/0006-tariff-versions.md);
    - ``period`` ("month" or "year"): the tariff prices by the energy the customer bought in the
      current period, handed over as ``TariffContext.cumulative_period_energy``; None: it does not;
    - ``samples``: representative contexts (categories, settings, period energy) the conformance
      suite runs the tariff on;
    - ``boundaries(context)``: purchases that end exactly on a block boundary, as
      ``(amount, energy)`` pairs, so the suite can check that they are exact to the cent.
    """

    name: str = attrs.field(validator=_valid_name)
    title: str
    quote: Callable[..., Any]
    validate: Callable[[Mapping[str, Any]], None] | None = None
    period: str | None = attrs.field(default=None,
                                     validator=attrs.validators.in_((None, "month", "year")))
    samples: tuple[TariffContext, ...] = attrs.field(default=(), converter=tuple)
    boundaries: Callable[[TariffContext], Any] | None = None


@attrs.frozen
class CardFormatSpec:
    """A card layout. ``factory(keys)`` returns an object implementing ``dbmis_core.cards.CardFormat``."""

    name: str = attrs.field(validator=_valid_name)
    title: str
    factory: Callable[..., Any]


@attrs.frozen
class DriverSpec:
    """A card reader or encoder driver.

    ``open(settings)`` returns a ``dbmis_core.cards.Reader``; ``enumerate(settings)`` lists the reader
    names it can see. A driver whose library is missing sets ``unavailable`` to the reason.
    """

    name: str = attrs.field(validator=_valid_name)
    title: str
    open: Callable[..., Any]
    enumerate: Callable[..., list[str]]
    unavailable: str | None = None


COLUMN_TYPES = ("text", "int", "money", "energy", "price", "percent", "date", "datetime")


@attrs.frozen
class ReportColumn:
    """A report column; ``type`` (one of COLUMN_TYPES) lets exports type cells and tables sort
    numbers as numbers."""

    name: str
    title: str
    type: str = attrs.field(default="text", validator=attrs.validators.in_(COLUMN_TYPES))


@attrs.frozen
class ReportSpec:
    """A report: ``data(uow, **filters)`` returns rows; ``template`` is a jinja2 template name.

    ``columns`` type the rows' keys; ``filters`` name the filters the report honours (see
    dbmis_core/services/reports.py); ``package`` is where ``template`` lives. ``data`` may return a
    list of row dicts or a ``dbmis_core.services.reports.ReportData`` with totals and charts.
    """

    name: str = attrs.field(validator=_valid_name)
    title: str
    data: Callable[..., Any]
    template: str | None = None
    columns: tuple[ReportColumn, ...] = attrs.field(default=(), converter=tuple)
    filters: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    package: str | None = None


# how every Qt page shows an error message (one look across plugins and the host)
ERROR_STYLE = "color: #b00020; font-weight: bold;"


@attrs.frozen
class QtPage:
    """A page in the Qt clerk workstation.

    ``factory(app_context)`` returns a QWidget; ``menu`` is the module menu it appears under;
    ``permission`` hides it from operators without that permission; ``help`` names the user-guide
    file (docs/user-guide/<help>.md) F1 opens on this page, by default the page name.
    """

    name: str = attrs.field(validator=_valid_name)
    title: str
    menu: str
    factory: Callable[..., Any]
    permission: str | None = None
    order: int = 100
    help: str | None = None


@attrs.frozen
class CliCommand:
    """A command for the ``dbmis`` program: ``factory()`` returns a ``click.Command``."""

    name: str = attrs.field(validator=_valid_name)
    factory: Callable[[], Any]


@attrs.frozen
class ConsumptionCheck:
    """A rule over customers' monthly consumption (docs/decisions/0012-consumption-detector.md).

    ``run(batch, settings)`` gets a ``dbmis_core.services.analysis.Batch`` (numpy arrays, one row
    per customer, one column per month) and the ``[consumption]`` settings, and returns a
    ``dbmis_core.services.analysis.CheckResult``: a score per customer in [0, 1], the month it
    shows in, and a ``reason(i)`` a clerk can read. Rules run on whole arrays, so one rule costs
    the same few numpy passes for six customers or a million. ``weight`` scales the score in the
    customer's suspicion score; ``kind`` is "rationality" (a fact that cannot be right) or
    "change" (an abnormal change in use).
    """

    name: str = attrs.field(validator=_valid_name)
    title: str
    run: Callable[..., Any]
    kind: str = attrs.field(default="rationality",
                            validator=attrs.validators.in_(("rationality", "change")))
    weight: float = 1.0
