"""The tiered block tariff: exact figures, piecewise purchases across block boundaries, surcharge
lines, settings validation; and the tariff suite catching tariffs that break its properties."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from dbmis_core.domain import Quote
from dbmis_core.errors import ConfigError, ValidationError
from dbmis_core.testing.suites import TariffSuite
from dbmis_core.types import Tariff, TariffContext
from dbmis_tariffs.tiered import boundaries, dbmis_tariffs, quote_tiered, quote_tiered_annual, validate

TIERED, ANNUAL = dbmis_tariffs()
LEVIES = {"surcharges": [{"name": "Rural levy", "per_kwh": "0.0100"},
                         {"name": "VAT 5%", "percent": "5"}]}


def q(amount, category="residential", settings=None, cum="0"):
    return quote_tiered(D(amount), TariffContext(category, settings or {}, D(cum)))


def test_records():
    assert (TIERED.name, TIERED.period, ANNUAL.name, ANNUAL.period) == ("tiered", "month",
                                                                      "tiered-annual", "year")
    assert quote_tiered_annual(D("10.00"), TariffContext("residential")).tariff == "tiered-annual"


def test_purchase_across_a_boundary_is_priced_piecewise():
    r = q("100.00")  # 50 kWh at 0.30 = 15.00, then 85.00 / 0.56 = 151.785 -> 151.78
    assert r.energy == D("201.78")
    assert r.lines == (("50.00 kWh @ 0.3000", D("15.00")), ("151.78 kWh @ 0.5600", D("85.00")))
    assert r.unit_price == D("0.4956")  # 100.00 / 201.78, the average paid per kWh


def test_period_energy_moves_the_start_block():
    assert q("3.00", cum="40").energy == D("10.00")          # the last 10 kWh of block 1
    r = q("10.00", cum="40")                                  # 3.00 for 10 kWh, 7.00 / 0.56
    assert (r.energy, r.lines[0]) == (D("22.50"), ("10.00 kWh @ 0.3000", D("3.00")))
    assert q("8.00", cum="300").energy == D("10.00")         # beyond the last boundary: 0.80
    # the last 0.01 kWh of block 2 (0.0056) costs a whole cent, rounded up; 7.99 / 0.80 -> 9.98
    assert q("8.00", cum="299.99").energy == D("9.99")


def test_surcharges_are_separate_lines_that_add_up():
    r = q("16.25", settings=LEVIES)  # all-in 0.30 * 1.05 + 0.01 = 0.325; 50 kWh = 16.25 exactly
    assert r.energy == D("50.00")
    assert r.lines == (("50.00 kWh @ 0.3000", D("15.00")), ("Rural levy", D("0.50")),
                       ("VAT 5%", D("0.75")))
    r = q("16.24", settings=LEVIES)  # a cent less buys less than the block: 49.969 -> 49.96
    assert r.energy == D("49.96")
    assert r.lines[1:] == (("Rural levy", D("0.50")), ("VAT 5%", D("0.75")))
    assert r.lines[0] == ("49.96 kWh @ 0.3000", D("14.99"))  # takes the rounding remainder
    assert sum(v for _, v in r.lines) == D("16.24")


def test_surcharge_limited_to_categories():
    s = {"surcharges": [{"name": "Business levy", "percent": "10", "categories": ["commercial"]}]}
    assert q("8.50", "residential", s).lines == (("28.33 kWh @ 0.3000", D("8.50")),)
    r = q("9.35", "commercial", s)   # 0.85 * 1.10 = 0.935 per kWh
    assert r.energy == D("10.00") and r.lines[-1] == ("Business levy", D("0.85"))


def test_boundaries_are_what_buys_exactly_up_to_them():
    ctx = TariffContext("residential", LEVIES, D("20"))
    # 30 kWh at 0.325 = 9.75; then 250 kWh at 0.56 * 1.05 + 0.01 = 0.598 -> 149.50
    assert boundaries(ctx) == [(D("9.75"), D("30.00")), (D("159.25"), D("280.00"))]
    for amount, energy in boundaries(ctx):
        assert quote_tiered(amount, ctx).energy == energy
        assert quote_tiered(amount - D("0.01"), ctx).energy < energy


def test_money_too_small_for_a_hundredth_kwh_still_shows_on_the_receipt():
    r = q("0.01", "residential", {"blocks": {"residential": [{"price": "2"}]}})
    assert r.energy == D("0") and r.lines == (("Energy charge", D("0.01")),)


@pytest.mark.parametrize("settings,message", [
    ({"blocks": {"residential": []}}, "non-empty list"),
    ({"blocks": {"residential": [{"upto": "50", "price": "0.3"}]}}, "last block"),
    ({"blocks": {"residential": [{"price": "0.3"}, {"price": "0.5"}]}}, "needs 'upto'"),
    ({"blocks": {"residential": [{"upto": "50", "price": "0.3"}, {"upto": "40", "price": "0.4"},
                                 {"price": "1"}]}}, "must be above 50"),
    ({"blocks": {"residential": [{"upto": "50.001", "price": "0.3"}, {"price": "1"}]}},
     "more than 2 decimals"),
    ({"blocks": {"residential": [{"price": "0.00001"}]}}, "more than 4 decimals"),
    ({"blocks": {"residential": [{"price": "0"}]}}, "must be positive"),
    ({"blocks": {"residential": [{"price": 0.5}]}}, "not float"),
    ({"blocks": {"residential": [{"price": "1", "cost": "2"}]}}, "unknown keys"),
    ({"surcharges": [{"name": "X", "per_kwh": "1", "percent": "2"}]}, "exactly one"),
    ({"surcharges": [{"name": "", "per_kwh": "1"}]}, "needs a name"),
    ({"surcharges": [{"name": "VAT", "percent": "101"}]}, "at most 100"),
    ({"price": "1"}, "unknown keys"),
])
def test_bad_settings_are_refused_with_a_reason(settings, message):
    with pytest.raises(ValidationError, match=message):
        validate(settings)


def test_bad_stored_settings_at_sale_time_are_a_config_error():
    with pytest.raises(ConfigError, match="tiered tariff settings"):
        q("10.00", settings={"blocks": {"residential": [{"price": "-1"}]}})
    with pytest.raises(ConfigError, match="float"):
        q("10.00", settings={"blocks": {"residential": [{"price": 0.5}]}})
    with pytest.raises(ConfigError, match="no blocks for category 'market'"):
        q("10.00", "market")


# -- the suite fails tariffs that break its properties ---------------------------------------------
def _broken(quote, **kw):
    return Tariff(name="broken", title="Broken", quote=quote, samples=(TariffContext("x"),), **kw)


def _run(suite_cls, test_name):
    with pytest.raises(AssertionError):
        getattr(suite_cls(), test_name)()


def test_suite_catches_lines_that_do_not_add_up():
    class S(TariffSuite):
        tariff = _broken(lambda a, c: Quote("broken", a, a, D("1"), (("Energy", a - D("0.01")),)))
    _run(S, "test_lines_add_up_exactly_to_the_amount")


def test_suite_catches_energy_falling_when_paying_more():
    class S(TariffSuite):
        tariff = _broken(lambda a, c: Quote("broken", a, (D(100) - a % 100).quantize(D("0.01")),
                                            D("1"), (("Energy", a),)))
    _run(S, "test_energy_is_monotone_in_the_amount_paid")


def test_suite_catches_an_inexact_boundary():
    class S(TariffSuite):  # claims 10.00 buys 20 kWh, but only 19.99 kWh are given
        tariff = _broken(lambda a, c: Quote("broken", a, (a * 2 - D("0.01")).max(D(0)), D("0.5"),
                                            (("Energy", a),)),
                         boundaries=lambda c: [(D("10.00"), D("20.00"))])
    _run(S, "test_block_boundaries_are_exact_to_the_cent")
