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
    negative energy and must be monotone in ``amount`` (checked by ``dbmis_core.testing.TariffSuite``).
    """

    name: str = attrs.field(validator=_valid_name)
    title: str
    quote: Callable[..., Any]


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


@attrs.frozen
class ReportSpec:
    """A report: ``data(uow, **filters)`` returns rows; ``template`` is a jinja2 template name."""

    name: str = attrs.field(validator=_valid_name)
    title: str
    data: Callable[..., Any]
    template: str | None = None


@attrs.frozen
class QtPage:
    """A page in the Qt clerk workstation.

    ``factory(app_context)`` returns a QWidget; ``menu`` is the module menu it appears under;
    ``permission`` hides it from operators without that permission.
    """

    name: str = attrs.field(validator=_valid_name)
    title: str
    menu: str
    factory: Callable[..., Any]
    permission: str | None = None
    order: int = 100


@attrs.frozen
class CliCommand:
    """A command for the ``dbmis`` program: ``factory()`` returns a ``click.Command``."""

    name: str = attrs.field(validator=_valid_name)
    factory: Callable[[], Any]
