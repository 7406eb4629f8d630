"""Tiered block tariff: the price per kWh rises in blocks of the energy a customer bought in a period.

Two tariffs share this code: ``tiered`` counts the calendar month, ``tiered-annual`` the calendar
year (the sale service hands over the customer's energy bought so far in the period). Settings come
from ``[tariffs.tiered]`` / ``[tariffs.tiered-annual]`` in the configuration or from a tariff
version (``dbmis tariff set``)::

    [tariffs.tiered.blocks]
    residential = [{upto = "50", price = "0.3000"}, {upto = "300", price = "0.5600"},
                   {price = "0.8000"}]

    [[tariffs.tiered.surcharges]]
    name = "Rural levy"
    per_kwh = "0.0100"

    [[tariffs.tiered.surcharges]]
    name = "VAT 5%"
    percent = "5"
    categories = ["commercial"]        # optional: only these categories pay it

``upto`` is the period's cumulative kWh where a block ends; the last block has none. Categories
left out keep :data:`DEFAULT_BLOCKS`.

Pricing (docs/user-guide/tariffs.md): a kWh in a block costs ``price * (1 + percents/100) +
per-kWh levies``. A purchase fills block after block: filling the rest of a block costs that energy
times the all-in price rounded up to the cent, and the money left buys energy in the next block,
rounded down to 0.01 kWh (docs/decisions/0002-rounding.md). So paying exactly the cost up to a
boundary gives exactly the boundary's energy. The receipt lines are one line per block used (energy
at its base price), then one per surcharge (per-kWh levies on the energy, percentages on the base
energy charge), each rounded half-up to the cent; whatever is left over (the parts of a cent the
rounding leaves, and money too small to buy 0.01 kWh) goes into the line of the last block used, so
the lines always add up exactly to the amount paid and taxes are shown as computed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from functools import lru_cache

import attrs

from dbmis_core.domain import Quote
from dbmis_core.errors import ConfigError, ValidationError
from dbmis_core.hookspecs import hookimpl
from dbmis_core.money import CENT, KWH_STEP, PRICE_STEP, round_money, to_decimal
from dbmis_core.types import Tariff, TariffContext

ZERO = Decimal("0")


def _blocks(*pairs) -> tuple:
    return tuple({"upto": u, "price": p} if u else {"price": p} for u, p in pairs)


DEFAULT_BLOCKS = {
    "residential": _blocks(("50", "0.3000"), ("300", "0.5600"), (None, "0.8000")),
    "commercial": _blocks(("500", "0.8500"), (None, "0.9500")),
    "industrial": _blocks((None, "0.7200")),
    "agricultural": _blocks(("1000", "0.4800"), (None, "0.6000")),
}
MAX_NAME = 28  # the receipt prints line names in 28 columns


@attrs.frozen
class Block:
    upto: Decimal | None  # cumulative period kWh where the block ends; None: open-ended
    price: Decimal


@attrs.frozen
class Surcharge:
    name: str
    per_kwh: Decimal = ZERO
    percent: Decimal = ZERO
    categories: frozenset[str] | None = None  # None: every category

    def applies_to(self, category: str) -> bool:
        return self.categories is None or category in self.categories


@attrs.frozen
class Plan:
    blocks: Mapping[str, tuple[Block, ...]]
    surcharges: tuple[Surcharge, ...]

    def blocks_for(self, category: str) -> tuple[Block, ...]:
        try:
            return self.blocks[category]
        except KeyError:
            raise ConfigError(f"tiered tariff has no blocks for category {category!r}") from None


# -- settings ------------------------------------------------------------------------------------
def _number(value, what: str, places: int, allow_zero: bool = False) -> Decimal:
    d = to_decimal(value, what)
    if d < 0 or (d == 0 and not allow_zero):
        raise ValidationError(f"{what} must be {'zero or more' if allow_zero else 'positive'}, "
                              f"got {value}")
    if d != 0 and d.normalize().as_tuple().exponent < -places:
        raise ValidationError(f"{what} has more than {places} decimals: {value}")
    return d


def _keys(item, allowed: set[str], what: str) -> None:
    if not isinstance(item, Mapping):
        raise ValidationError(f"{what} must be a table, got {item!r}")
    unknown = set(item) - allowed
    if unknown:
        raise ValidationError(f"{what} has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")


def _parse_blocks(category: str, items) -> tuple[Block, ...]:
    if not isinstance(items, (list, tuple)) or not items:
        raise ValidationError(f"blocks for {category} must be a non-empty list")
    blocks, last_upto = [], ZERO
    for i, item in enumerate(items, 1):
        what = f"block {i} of {category}"
        _keys(item, {"upto", "price"}, what)
        if "price" not in item:
            raise ValidationError(f"{what} has no price")
        price = _number(item["price"], f"price of {what}", 4)
        is_last = i == len(items)
        if is_last and item.get("upto") is not None:
            raise ValidationError(f"the last block of {category} must have no 'upto' (it takes all "
                                  "energy above the previous block)")
        if not is_last:
            if item.get("upto") is None:
                raise ValidationError(f"{what} needs 'upto' (only the last block is open-ended)")
            upto = _number(item["upto"], f"'upto' of {what}", 2)
            if upto <= last_upto:
                raise ValidationError(f"'upto' of {what} must be above {last_upto}, got {upto}")
            last_upto = upto
        else:
            upto = None
        blocks.append(Block(upto, price))
    return tuple(blocks)


def _parse_surcharge(i: int, item) -> Surcharge:
    what = f"surcharge {i}"
    _keys(item, {"name", "per_kwh", "percent", "categories"}, what)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise ValidationError(f"{what} needs a name of 1-{MAX_NAME} characters")
    if ("per_kwh" in item) == ("percent" in item):
        raise ValidationError(f"{what} ({name}) needs exactly one of 'per_kwh' or 'percent'")
    cats = item.get("categories")
    if cats is not None and (not isinstance(cats, (list, tuple))
                             or not all(isinstance(c, str) and c for c in cats)):
        raise ValidationError(f"categories of {what} ({name}) must be a list of category names")
    if "per_kwh" in item:
        return Surcharge(name.strip(), per_kwh=_number(item["per_kwh"], f"per_kwh of {name}", 4,
                                                       allow_zero=True),
                         categories=None if cats is None else frozenset(cats))
    percent = _number(item["percent"], f"percent of {name}", 2, allow_zero=True)
    if percent > 100:
        raise ValidationError(f"percent of {name} must be at most 100, got {percent}")
    return Surcharge(name.strip(), percent=percent,
                     categories=None if cats is None else frozenset(cats))


def parse(settings: Mapping) -> Plan:
    """The settings as a Plan; ValidationError says what is wrong."""
    if not isinstance(settings, Mapping):
        raise ValidationError("tiered tariff settings must be a table")
    _keys(settings, {"blocks", "surcharges"}, "tiered tariff settings")
    given = settings.get("blocks", {})
    if not isinstance(given, Mapping):
        raise ValidationError("'blocks' must be a table of category = [blocks]")
    blocks = {cat: _parse_blocks(cat, items) for cat, items in {**DEFAULT_BLOCKS, **given}.items()}
    surs = settings.get("surcharges", [])
    if not isinstance(surs, (list, tuple)):
        raise ValidationError("'surcharges' must be a list of tables")
    return Plan(blocks, tuple(_parse_surcharge(i, s) for i, s in enumerate(surs, 1)))


def validate(settings: Mapping) -> None:
    parse(settings)


@lru_cache(maxsize=64)
def _parse_cached(key: str) -> Plan:
    return parse(json.loads(key))


def plan_for(settings: Mapping) -> Plan:
    """Parsed settings, cached: a sale parses nothing when the settings did not change."""
    if any(isinstance(v, float) for v in _leaves(settings)):
        raise ConfigError("tiered tariff settings contain a float; write numbers as text")
    try:
        key = json.dumps(settings, sort_keys=True, default=str)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tiered tariff settings cannot be read: {exc}") from None
    try:
        return _parse_cached(key)
    except ValidationError as exc:  # they came from the configuration or a stored version
        raise ConfigError(f"tiered tariff settings: {exc}") from None


def _leaves(value):
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


# -- pricing -------------------------------------------------------------------------------------
def _rates(plan: Plan, category: str) -> tuple[list[Surcharge], Decimal, Decimal]:
    surs = [s for s in plan.surcharges if s.applies_to(category)]
    return surs, sum((s.percent for s in surs), ZERO) / 100, sum((s.per_kwh for s in surs), ZERO)


def _start(ctx: TariffContext) -> Decimal:
    return max(ZERO, to_decimal(ctx.cumulative_period_energy, "period energy")).quantize(
        KWH_STEP, rounding=ROUND_DOWN)


def _fill_cost(room: Decimal, allin: Decimal) -> Decimal:
    """Money that fills ``room`` kWh of a block, rounded *up* to the cent: a block is never filled
    for less than its energy costs (0002), and a cent less always buys less than the whole block."""
    return (room * allin).quantize(CENT, rounding=ROUND_UP)


def _walk(amount: Decimal, ctx: TariffContext):
    """Yield (block, energy taken, money spent, all-in price) for each block a purchase touches."""
    plan = plan_for(ctx.settings)
    _surs, pct, levy = _rates(plan, ctx.category)
    pos, left = _start(ctx), amount
    for block in plan.blocks_for(ctx.category):
        if block.upto is not None and pos >= block.upto:
            continue
        allin = block.price * (1 + pct) + levy
        if block.upto is not None:
            room = block.upto - pos
            cost = _fill_cost(room, allin)
            if left >= cost:
                yield block, room, cost, allin
                left -= cost
                pos = block.upto
                continue
        yield block, (left / allin).quantize(KWH_STEP, rounding=ROUND_DOWN), left, allin
        return


def _tiered_quote(name: str, amount: Decimal, ctx: TariffContext) -> Quote:
    plan = plan_for(ctx.settings)
    surs, _pct, _levy = _rates(plan, ctx.category)
    pieces = list(_walk(amount, ctx))
    used = [(b, e) for b, e, _m, _a in pieces if e > 0]
    energy = sum((e for _b, e in used), ZERO)
    base = sum((b.price * e for b, e in used), ZERO)
    lines = [(f"{e} kWh @ {b.price}", round_money(b.price * e)) for b, e in used]
    if not lines:
        lines = [("Energy charge", ZERO.quantize(CENT))]
    extra = [(s.name, round_money(energy * s.per_kwh if s.per_kwh else base * s.percent / 100))
             for s in surs]
    rest = amount - sum(v for _n, v in lines) - sum(v for _n, v in extra)
    lines[-1] = (lines[-1][0], lines[-1][1] + rest)
    _no_negative_line(lines, extra)
    if energy > 0:
        unit = (amount / energy).quantize(PRICE_STEP, rounding=ROUND_HALF_UP)
    else:
        unit = pieces[-1][3].quantize(PRICE_STEP, rounding=ROUND_HALF_UP) if pieces else ZERO
    return Quote(tariff=name, amount=amount, energy=energy, unit_price=unit,
                 lines=tuple(lines + extra))


def _no_negative_line(lines: list, extra: list) -> None:
    """Sub-cent purchases with several lines: if rounding every line up left the last block's line
    negative, the missing cents come off the other block lines (newest first), then the largest
    surcharges. The total stays the amount paid."""
    short = -lines[-1][1]
    if short <= 0:
        return
    lines[-1] = (lines[-1][0], ZERO.quantize(CENT))
    order = [(lines, i) for i in reversed(range(len(lines) - 1))]
    order += sorted(((extra, i) for i in range(len(extra))), key=lambda li: -li[0][li[1]][1])
    for target, i in order:
        name, value = target[i]
        take = min(value, short)
        target[i] = (name, value - take)
        short -= take
        if short == 0:
            return


def boundaries(ctx: TariffContext) -> list[tuple[Decimal, Decimal]]:
    """(amount, energy) of the purchases that end exactly on each block boundary above the
    customer's period energy."""
    plan = plan_for(ctx.settings)
    _surs, pct, levy = _rates(plan, ctx.category)
    pos = start = _start(ctx)
    paid, out = ZERO, []
    for block in plan.blocks_for(ctx.category):
        if block.upto is None or pos >= block.upto:
            continue
        paid += _fill_cost(block.upto - pos, block.price * (1 + pct) + levy)
        out.append((paid, block.upto - start))
        pos = block.upto
    return out


def quote_tiered(amount: Decimal, ctx: TariffContext) -> Quote:
    return _tiered_quote("tiered", amount, ctx)


def quote_tiered_annual(amount: Decimal, ctx: TariffContext) -> Quote:
    return _tiered_quote("tiered-annual", amount, ctx)


SAMPLE_SETTINGS = (
    {},
    {"blocks": {"residential": [{"upto": "10", "price": "0.3333"}, {"upto": "10.01",
                                                                   "price": "0.0001"},
                                {"upto": "2000", "price": "1.2345"}, {"price": "9.9999"}],
                "market": [{"upto": "0.01", "price": "7"}, {"price": "0.5"}]},
     "surcharges": [{"name": "Rural levy", "per_kwh": "0.0125"},
                    {"name": "VAT 7.5%", "percent": "7.5"},
                    {"name": "Street lights", "percent": "3", "categories": ["market"]}]},
    {"blocks": {"commercial": [{"upto": "100", "price": "0.0001"}, {"price": "25"}]},
     "surcharges": [{"name": "Levy", "per_kwh": "0.0001"}]},
)
SAMPLES = tuple(
    TariffContext(cat, s, Decimal(cum))
    for s in SAMPLE_SETTINGS
    for cat in ("residential", "commercial", "industrial", "agricultural")
    + (("market",) if "market" in s.get("blocks", {}) else ())
    for cum in ("0", "9.99", "10.00", "49.99", "50", "123.45", "1999.99", "100000"))


@hookimpl
def dbmis_tariffs():
    return [
        Tariff(name="tiered", title="Tiered blocks by energy bought this month",
               quote=quote_tiered, validate=validate, period="month", samples=SAMPLES,
               boundaries=boundaries),
        Tariff(name="tiered-annual", title="Tiered blocks by energy bought this year",
               quote=quote_tiered_annual, validate=validate, period="year", samples=SAMPLES,
               boundaries=boundaries),
    ]
