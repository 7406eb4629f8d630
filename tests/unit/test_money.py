"""Money and energy arithmetic: exact input, explicit rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbmis_core.errors import ValidationError
from dbmis_core.money import energy_for, from_hundredths, money, round_money, to_hundredths

cents = st.decimals(min_value=-10**9, max_value=10**9, places=2)


@pytest.mark.parametrize("value,expected", [("12.5", "12.50"), (" 7 ", "7.00"), (3, "3.00"),
                                            (Decimal("0.10"), "0.10"), ("1E+2", "100.00")])
def test_money_accepts_exact_amounts(value, expected):
    result = money(value)
    assert result == Decimal(expected) and str(result) == expected


@pytest.mark.parametrize("value,why", [(12.5, "float"), ("1.005", "two decimals"),
                                       ("abc", "not a number"), ("NaN", "finite"),
                                       ("Infinity", "finite"), ("1e30", "too large"), ("", "number")])
def test_money_refuses_floats_extra_decimals_and_junk(value, why):
    with pytest.raises(ValidationError, match=why):
        money(value, "amount")


@settings(max_examples=200)
@given(cents)
def test_money_keeps_any_two_decimal_amount(d):
    assert money(str(d)) == d and money(str(d)).as_tuple().exponent == -2


@pytest.mark.parametrize("amount,price,energy", [("50.00", "0.5600", "89.28"), ("1.00", "0.3333", "3.00"),
                                                 ("0.01", "0.5600", "0.01"), ("0.00", "1", "0.00"),
                                                 ("99.99", "0.0001", "999900.00")])
def test_energy_for_rounds_down_to_hundredths(amount, price, energy):
    assert energy_for(Decimal(amount), Decimal(price)) == Decimal(energy)


@settings(max_examples=200)
@given(st.decimals(min_value=0, max_value=10**6, places=2),
       st.decimals(min_value=Decimal("0.0001"), max_value=100, places=4))
def test_energy_for_never_gives_more_than_was_paid_for(amount, price):
    energy = energy_for(amount, price)
    assert energy * price <= amount < (energy + Decimal("0.01")) * price


@pytest.mark.parametrize("price", ["0", "-0.56"])
def test_energy_for_needs_a_positive_price(price):
    with pytest.raises(ValidationError, match="positive"):
        energy_for(Decimal("10"), Decimal(price))


@pytest.mark.parametrize("value,expected", [("0.005", "0.01"), ("0.015", "0.02"), ("2.675", "2.68"),
                                            ("-0.005", "-0.01"), ("1.004", "1.00")])
def test_round_money_is_half_up(value, expected):
    assert round_money(Decimal(value)) == Decimal(expected)


@given(cents)
def test_hundredths_round_trip(d):
    assert from_hundredths(to_hundredths(d)) == d


def test_hundredths_refuse_finer_values():
    with pytest.raises(ValidationError):
        to_hundredths(Decimal("0.001"))
