"""The flat tariff: the tariff suite plus exact figures and configuration errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dbmis_core.errors import ConfigError
from dbmis_core.testing.suites import TariffSuite
from dbmis_core.types import TariffContext
from dbmis_tariffs.flat import DEFAULT_PRICES, dbmis_tariffs, quote_flat

(FLAT,) = dbmis_tariffs()


class TestFlatTariff(TariffSuite):
    tariff = FLAT
    contexts = [TariffContext(c) for c in DEFAULT_PRICES] + [
        TariffContext("residential", {"residential": "0.6123"}),
        TariffContext("industrial", {"industrial": Decimal("1.0001"), "residential": "9"}),
        TariffContext("market", {"market": "0.0001"}),
    ]


def test_fifty_at_default_residential_price_rounds_down():
    q = quote_flat(Decimal("50.00"), TariffContext("residential"))
    assert (q.energy, q.unit_price, q.amount, q.tariff) == (Decimal("89.28"), Decimal("0.5600"),
                                                          Decimal("50.00"), "flat")
    assert q.lines == (("Energy charge", Decimal("50.00")),)


@pytest.mark.parametrize("category,settings,amount,energy", [
    ("residential", {"residential": "0.6000"}, "100.00", "166.66"),
    ("commercial", {"residential": "0.1000"}, "85.00", "100.00"),  # others keep their default
    ("market", {"market": "2"}, "3.99", "1.99"),
    ("residential", {"residential": "0.56000"}, "50.00", "89.28"),  # trailing zeros are fine
])
def test_configured_prices(category, settings, amount, energy):
    assert quote_flat(Decimal(amount), TariffContext(category, settings)).energy == Decimal(energy)


@pytest.mark.parametrize("price", ["abc", 0.56, "-0.56", "0", "0.56001", "NaN", "1e40x"])
def test_bad_configured_price_is_a_config_error(price):
    with pytest.raises(ConfigError, match="flat tariff price for residential"):
        quote_flat(Decimal("10.00"), TariffContext("residential", {"residential": price}))


def test_huge_configured_price_is_handled_without_a_decimal_error():
    assert quote_flat(Decimal("10.00"), TariffContext("residential", {"residential": "1e40"})).energy == 0


def test_unknown_category_without_a_price_is_a_config_error():
    with pytest.raises(ConfigError, match="no price for category 'market'"):
        quote_flat(Decimal("10.00"), TariffContext("market"))
