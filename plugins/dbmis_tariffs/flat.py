"""Flat tariff: one price per kWh for each customer category.

Prices come from ``[tariffs.flat]`` in the configuration (category = "price"); the defaults below
apply to categories left out. Energy = amount / price rounded down to 0.01 kWh (dbmis_core.money).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from dbmis_core.domain import Quote
from dbmis_core.errors import ConfigError, ValidationError
from dbmis_core.hookspecs import hookimpl
from dbmis_core.money import PRICE_STEP, energy_for, to_decimal
from dbmis_core.types import Tariff, TariffContext

DEFAULT_PRICES = {
    "residential": Decimal("0.5600"),
    "commercial": Decimal("0.8500"),
    "industrial": Decimal("0.7200"),
    "agricultural": Decimal("0.4800"),
}


def price_for(ctx: TariffContext) -> Decimal:
    configured = ctx.settings.get(ctx.category)
    if configured is None:
        try:
            return DEFAULT_PRICES[ctx.category]
        except KeyError:
            raise ConfigError(f"flat tariff has no price for category {ctx.category!r}") from None
    try:
        price = to_decimal(configured, f"flat tariff price for {ctx.category}")
    except ValidationError as exc:  # it came from the configuration file, not from a clerk
        raise ConfigError(str(exc)) from None
    if price <= 0 or price.normalize().as_tuple().exponent < PRICE_STEP.as_tuple().exponent:
        raise ConfigError(f"flat tariff price for {ctx.category} must be positive with at most "
                          f"4 decimals, got {configured}")
    return price


def quote_flat(amount: Decimal, ctx: TariffContext) -> Quote:
    price = price_for(ctx)
    return Quote(tariff="flat", amount=amount, energy=energy_for(amount, price), unit_price=price,
                 lines=(("Energy charge", amount),))


def validate(settings) -> None:
    """Settings of a new flat tariff version: category = price, each positive with at most 4
    decimals; categories left out keep their default price."""
    if not isinstance(settings, Mapping):
        raise ValidationError("flat tariff settings must be a table of category = price")
    for category, price in settings.items():
        if not isinstance(category, str) or not category:
            raise ValidationError(f"flat tariff category {category!r} must be a name")
        d = to_decimal(price, f"flat tariff price for {category}")
        if d <= 0 or d.normalize().as_tuple().exponent < PRICE_STEP.as_tuple().exponent:
            raise ValidationError(f"flat tariff price for {category} must be positive with at most "
                                  f"4 decimals, got {price}")


SAMPLES = tuple(TariffContext(c) for c in DEFAULT_PRICES) + (
    TariffContext("residential", {"residential": "0.6123"}),
    TariffContext("industrial", {"industrial": "1.0001", "residential": "9"}),
    TariffContext("market", {"market": "0.0001"}),
    TariffContext("market", {"market": "250"}),
)


@hookimpl
def dbmis_tariffs():
    return [Tariff(name="flat", title="Flat price per kWh by category", quote=quote_flat,
                   validate=validate, samples=SAMPLES)]
