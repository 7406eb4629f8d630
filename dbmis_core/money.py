"""Money and energy as Decimal with explicit rounding.

Rules (see docs/decisions/0002-rounding.md):
- money is kept to the cent (0.01); computed money rounds half-up;
- energy is kept to 0.01 kWh; energy bought for money rounds *down*, so a customer is never credited
  energy that was not paid for and the utility never charges for energy it did not deliver;
- prices are kept to 0.0001 per kWh.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import ValidationError

CENT = Decimal("0.01")
KWH_STEP = Decimal("0.01")
PRICE_STEP = Decimal("0.0001")


def to_decimal(value: object, what: str = "value") -> Decimal:
    """Parse a typed or configured number; floats are refused because they are not exact."""
    if isinstance(value, float):
        raise ValidationError(f"{what} must be given as text or Decimal, not float: {value!r}")
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{what} is not a number: {value!r}") from None
    if not result.is_finite():
        raise ValidationError(f"{what} is not a finite number: {value!r}")
    return result


def money(value: object, what: str = "amount") -> Decimal:
    """An amount of money; more than two decimals is a typing error, not something to round."""
    d = to_decimal(value, what)
    try:
        cents = d.quantize(CENT)
    except InvalidOperation:  # more digits than the decimal context holds
        raise ValidationError(f"{what} is too large: {value}") from None
    if d != cents:
        raise ValidationError(f"{what} has more than two decimals: {value}")
    return cents


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def energy_for(amount: Decimal, price: Decimal) -> Decimal:
    """kWh that ``amount`` buys at ``price`` per kWh, rounded down to 0.01 kWh."""
    if price <= 0:
        raise ValidationError(f"price per kWh must be positive, got {price}")
    return (amount / price).quantize(KWH_STEP, rounding=ROUND_DOWN)


def to_hundredths(value: Decimal) -> int:
    """Card encoding of money or energy: an integer count of hundredths."""
    q = value.quantize(CENT)
    if q != value:
        raise ValidationError(f"{value} cannot be stored in hundredths")
    return int(q * 100)


def from_hundredths(count: int) -> Decimal:
    return Decimal(count).scaleb(-2)  # exact: an integer count of hundredths, two places
