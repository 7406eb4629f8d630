"""Monthly consumption per customer from the meter returns, and the ranked list for inspection.

A meter return carries the cumulative register and the meter's own use for the last twelve
calendar months (``history[0]`` is the month it was written in, still running then). A month's use
is taken from the history of the first return written after the month ended ("complete"); a
month only seen while it ran is "partial" (shown, but left out of the change analysis); a month no
history covers gets the register difference between the returns around it, spread by time
("estimated"); otherwise it is "missing". A register lower than the previous return is flagged
in the month it was seen. ``compute`` replaces a customer's rows as a whole, so it can run again
at any time with the same result (docs/user-guide/consumption-analysis.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

import attrs
import numpy as np
from sqlalchemy import delete, insert, select

from ..errors import NotFound, ValidationError
from ..storage.models import (
    CustomerRow,
    MeterModelRow,
    MeterReturnRow,
    MeterRow,
    MonthlyConsumptionRow,
    RegionRow,
    VendRow,
)
from .analysis import BACKWARDS, Batch, Suspicion, findings_of, month_label, run_checks, settings_of
from .auth import Operator, Perm
from .registry import get_customer_row

CENT = Decimal("0.01")
COMPLETE, PARTIAL, ESTIMATED, MISSING = "complete", "partial", "estimated", "missing"


def _mi(year: int, month: int) -> int:
    return year * 12 + month - 1


def _ym(index: int) -> tuple[int, int]:
    return index // 12, index % 12 + 1


@attrs.frozen
class MonthRow:
    """One month of one customer as the clerk sees it."""

    account_no: str
    meter_no: str
    year: int
    month: int
    kwh: Decimal | None
    purchased: Decimal
    returns: int
    quality: str
    source: str
    flags: int
    note: str

    @property
    def label(self) -> str:
        return month_label(self.year, self.month)


@attrs.frozen
class ComputeResult:
    customers: int
    rows: int
    seconds: float


@attrs.frozen
class RankedCustomer:
    """A line of the ranked list: the suspicion and where the customer is."""

    customer_id: int
    account_no: str
    name: str
    district: str | None
    score: float
    period: str | None
    findings: tuple

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.findings]

    @classmethod
    def of(cls, sus: Suspicion, name: str, district: str | None) -> "RankedCustomer":
        return cls(sus.customer_id, sus.account_no, name, district, sus.score, sus.period,
                   sus.findings)


def derive_months(returns: list, purchases: dict[int, Decimal], until: int | None = None
                  ) -> list[dict]:
    """Months of one meter from its returns (ordered by ``written_at``) and the kWh bought per
    month index; pure, so the rules of the module docstring are tested without a database."""
    hist: dict[int, tuple[Decimal, bool, int]] = {}
    per_month: dict[int, list] = defaultdict(list)
    first_seen: int | None = None
    for order, r in enumerate(returns):
        wm = _mi(r.written_at.year, r.written_at.month)
        per_month[wm].append(r)
        h0 = _mi(r.history_year, r.history_month)
        for k, value in enumerate(r.history or ()):
            mm = h0 - k
            v = Decimal(str(value))
            complete = mm < wm
            if v > 0:
                first_seen = mm if first_seen is None else min(first_seen, mm)
            old = hist.get(mm)
            # a complete month beats a partial one; the first complete value stays; among
            # partial values the later return has seen more of the month
            if old is None or not old[1]:
                hist[mm] = (v, complete, order)
        first_seen = wm if first_seen is None else min(first_seen, wm)
    if first_seen is None:
        return []
    estimates: dict[int, float] = defaultdict(float)
    flags: dict[int, int] = defaultdict(int)
    notes: dict[int, str] = {}
    for a, b in zip(returns, returns[1:]):
        d = b.cumulative_consumed - a.cumulative_consumed
        bm = _mi(b.written_at.year, b.written_at.month)
        if d < 0:
            flags[bm] |= BACKWARDS
            notes[bm] = (f"register fell from {a.cumulative_consumed} to {b.cumulative_consumed} "
                         f"kWh between {a.written_at:%Y-%m-%d} and {b.written_at:%Y-%m-%d}")
            continue
        _spread(estimates, float(d), a.written_at, b.written_at)
    last = max([first_seen, *per_month, *[m for m in purchases if m >= first_seen]])
    if until is not None:
        last = max(last, until)
    out = []
    for mm in range(first_seen, last + 1):
        seen = per_month.get(mm, [])
        h = hist.get(mm)
        if h is not None and h[1]:
            kwh, source, quality = h[0], "history", COMPLETE
        elif h is not None:
            kwh, source, quality = h[0], "history", PARTIAL
        elif mm in estimates:
            kwh, source, quality = Decimal(f"{estimates[mm]:.2f}"), "register", ESTIMATED
        else:
            kwh, source, quality = None, "none", MISSING
        y, m = _ym(mm)
        status = 0
        for r in seen:
            status |= r.status
        out.append({"year": y, "month": m, "kwh": kwh, "purchased": purchases.get(mm, Decimal("0")),
                    "returns": len(seen), "status_bits": status,
                    "tamper_count": seen[-1].tamper_count if seen else None,
                    "illegal_card_count": seen[-1].illegal_card_count if seen else None,
                    "source": source, "quality": quality, "flags": flags.get(mm, 0),
                    "note": notes.get(mm, "")})
    return out


def _spread(into: dict[int, float], kwh: float, a: datetime, b: datetime) -> None:
    """Share ``kwh`` used between two times over the calendar months in between, by time."""
    total = (b - a).total_seconds()
    if total <= 0:
        return
    t = a
    while t < b:
        y, m = t.year, t.month
        nxt = datetime(y + (m == 12), 1 if m == 12 else m + 1, 1, tzinfo=UTC)
        end = min(nxt, b)
        into[_mi(y, m)] += kwh * (end - t).total_seconds() / total
        t = end


def compute(app, op: Operator, account_no: str | None = None) -> ComputeResult:
    """(Re)compute monthly consumption for one customer or all, replacing their rows."""
    op.require(Perm.ANALYSE)
    t0 = datetime.now(UTC)
    with app.uow() as uow:
        s = uow.session
        if account_no:
            ids = [get_customer_row(uow, account_no).id]
        else:
            ids = list(s.scalars(select(CustomerRow.id).order_by(CustomerRow.id)))
        rows = 0
        for chunk in _chunks(ids, 500):
            rows += _compute_chunk(uow, chunk)
        uow.commit()
    return ComputeResult(len(ids), rows, (datetime.now(UTC) - t0).total_seconds())


def _chunks(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _compute_chunk(uow, ids: list[int]) -> int:
    s = uow.session
    returns: dict[tuple[int, int], list] = defaultdict(list)
    for r in s.execute(select(MeterReturnRow).where(MeterReturnRow.customer_id.in_(ids))
                       .order_by(MeterReturnRow.meter_id, MeterReturnRow.written_at)).scalars():
        returns[(r.customer_id, r.meter_id)].append(r)
    bought: dict[tuple[int, int], dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for cid, mid, at, energy in s.execute(
            select(VendRow.customer_id, VendRow.meter_id, VendRow.issued_at, VendRow.energy)
            .where(VendRow.customer_id.in_(ids), VendRow.state == "completed",
                   VendRow.kind == "sale")):
        bought[(cid, mid)][_mi(at.year, at.month)] += energy
    s.execute(delete(MonthlyConsumptionRow).where(MonthlyConsumptionRow.customer_id.in_(ids)))
    now = datetime.now(UTC)
    new = []
    for key in sorted(set(returns) | set(bought)):
        cid, mid = key
        for row in derive_months(returns.get(key, []), bought.get(key, {})):
            new.append({"customer_id": cid, "meter_id": mid, "computed_at": now, **row})
    if new:
        s.execute(insert(MonthlyConsumptionRow), new)
    return len(new)


def monthly(app, op: Operator, account_no: str) -> list[MonthRow]:
    """The customer's months, oldest first (run ``compute`` first)."""
    op.require(Perm.VIEW)
    with app.uow() as uow:
        c = get_customer_row(uow, account_no)
        q = (select(MonthlyConsumptionRow, MeterRow.meter_no)
             .join(MeterRow, MeterRow.id == MonthlyConsumptionRow.meter_id)
             .where(MonthlyConsumptionRow.customer_id == c.id)
             .order_by(MonthlyConsumptionRow.year, MonthlyConsumptionRow.month, MeterRow.meter_no))
        return [MonthRow(c.account_no, meter_no, r.year, r.month, r.kwh, r.purchased, r.returns,
                         r.quality, r.source, r.flags, r.note)
                for r, meter_no in uow.session.execute(q)]


# -- the batch the rules see ---------------------------------------------------------------------


def districts_under(uow, region_code: str) -> set[int]:
    """Ids of the transformer districts in a region, line or district (by code)."""
    rows = uow.session.execute(select(RegionRow.id, RegionRow.code, RegionRow.parent_id,
                                      RegionRow.level)).all()
    root = next((r for r in rows if r.code == region_code), None)
    if root is None:
        raise NotFound(f"no region, line or district with code {region_code}; known: "
                       f"{', '.join(sorted(r.code for r in rows)) or 'none'}")
    children = defaultdict(list)
    for r in rows:
        children[r.parent_id].append(r)
    found, todo = set(), [root]
    while todo:
        r = todo.pop()
        if r.level == "district":
            found.add(r.id)
        todo.extend(children[r.id])
    return found


def load_batch(uow, settings, customer_ids: Iterable[int] | None = None,
               until: tuple[int, int] | None = None) -> Batch:
    """Customers x the last ``window_months`` months (ending at ``until`` or the newest month in
    the table); several meters of one customer in a month add up."""
    s = uow.session
    cq = (select(CustomerRow.id, CustomerRow.account_no, CustomerRow.category,
                 CustomerRow.district_id, CustomerRow.capacity_amps, CustomerRow.closed_at)
          .order_by(CustomerRow.id))
    if customer_ids is not None:
        cq = cq.where(CustomerRow.id.in_(list(customer_ids)))
    customers = s.execute(cq).all()
    ids = [c.id for c in customers]
    mq = select(MonthlyConsumptionRow).where(MonthlyConsumptionRow.customer_id.in_(ids))
    months = list(s.scalars(mq)) if ids else []
    window = max(1, int(settings["window_months"]))
    if until is not None:
        end = _mi(*until)
    elif any(r.kwh is not None and r.quality != PARTIAL for r in months):
        # the newest month whose use is known: a month still running would look like a drop
        end = max(_mi(r.year, r.month) for r in months
                  if r.kwh is not None and r.quality != PARTIAL)
    else:
        now = datetime.now(UTC)
        end = _mi(now.year, now.month)
    start = end - window + 1
    axis = [_ym(i) for i in range(start, end + 1)]
    n, m = len(ids), window
    row_of = {cid: i for i, cid in enumerate(ids)}
    kwh = np.full((n, m), np.nan)
    purchased = np.zeros((n, m))
    returns = np.zeros((n, m), dtype=np.int64)
    status = np.zeros((n, m), dtype=np.int64)
    tamper = np.full((n, m), np.nan)
    illegal = np.full((n, m), np.nan)
    flags = np.zeros((n, m), dtype=np.int64)
    first = np.full(n, m, dtype=np.int64)
    notes: dict[tuple[int, int], str] = {}
    for r in months:
        i, j = row_of[r.customer_id], _mi(r.year, r.month) - start
        if j < 0 or j >= m:
            if j < 0:
                first[i] = 0
            continue
        first[i] = min(first[i], j)
        if r.kwh is not None and r.quality != PARTIAL:
            kwh[i, j] = (0.0 if np.isnan(kwh[i, j]) else kwh[i, j]) + float(r.kwh)
        purchased[i, j] += float(r.purchased)
        returns[i, j] += r.returns
        status[i, j] |= r.status_bits
        flags[i, j] |= r.flags
        if r.tamper_count is not None:
            tamper[i, j] = np.nanmax([tamper[i, j], r.tamper_count])
        if r.illegal_card_count is not None:
            illegal[i, j] = np.nanmax([illegal[i, j], r.illegal_card_count])
        if r.note:
            notes[(i, j)] = r.note
    # most the meter (or the contract's capacity) can pass: amps x volts x phases x hours
    meters = s.execute(select(MeterRow.customer_id, MeterModelRow.rated_amps, MeterModelRow.phases)
                       .join(MeterModelRow, MeterModelRow.id == MeterRow.model_id)
                       .where(MeterRow.customer_id.in_(ids), MeterRow.status == "installed")).all()
    amps = np.full(n, np.nan)
    phases = np.ones(n)
    for cid, rated, ph in meters:
        amps[row_of[cid]], phases[row_of[cid]] = float(rated), ph
    for c in customers:
        if c.capacity_amps is not None:
            amps[row_of[c.id]] = min(float(c.capacity_amps), np.nan_to_num(amps[row_of[c.id]],
                                                                           nan=np.inf))
    import calendar

    hours = np.array([calendar.monthrange(y, mo)[1] * 24 for y, mo in axis], dtype=float)
    capacity = (amps * settings["voltage"] * phases)[:, None] * hours[None, :] / 1000.0
    last = np.full(n, m, dtype=np.int64)
    for c in customers:
        if c.closed_at is not None:
            last[row_of[c.id]] = _mi(c.closed_at.year, c.closed_at.month) - start + 1
    cols = np.arange(m)[None, :]
    active = (cols >= first[:, None]) & (cols < last[:, None])
    return Batch(
        customer_ids=np.array(ids, dtype=np.int64),
        accounts=np.array([c.account_no for c in customers], dtype=object),
        category=np.array([c.category for c in customers], dtype=object),
        district=np.array([c.district_id if c.district_id is not None else -1
                           for c in customers], dtype=np.int64),
        years=np.array([y for y, _ in axis]), month_numbers=np.array([mo for _, mo in axis]),
        kwh=kwh, purchased=purchased, returns=returns, status_bits=status, tamper=tamper,
        illegal=illegal, flags=flags, capacity_kwh=capacity, active=active, notes=notes)


def _settings(app) -> dict[str, float]:
    return settings_of(app.config.section("consumption"))


def _until(until: str | None) -> tuple[int, int] | None:
    if not until:
        return None
    try:
        y, m = (int(p) for p in until.split("-"))
        if not 1 <= m <= 12:
            raise ValueError
    except ValueError:
        raise ValidationError(f"month must look like 2025-03, got {until!r}") from None
    return y, m


def rank(app, op: Operator, region: str | None = None, top: int | None = 50,
         until: str | None = None) -> list[RankedCustomer]:
    """Customers by suspicion score, highest first, each with its findings and their reasons;
    ``region`` (a region, line or district code) keeps the customers under it. Everyone is
    analysed either way, so a customer is compared with the same peers whatever the filter."""
    op.require(Perm.ANALYSE)
    if top is not None and top < 1:
        raise ValidationError("top must be at least 1")
    settings = _settings(app)
    checks = app.pm.consumption_checks()
    with app.uow() as uow:
        s = uow.session
        keep = None
        if region:
            districts = districts_under(uow, region)
            keep = set(s.scalars(select(CustomerRow.id).where(
                CustomerRow.district_id.in_(districts))))
        batch = load_batch(uow, settings, None, _until(until))
        total, results = run_checks(batch, checks, settings)
        order = np.argsort(-total, kind="stable")
        order = order[total[order] > 0]
        if keep is not None:
            order = order[np.isin(batch.customer_ids[order], list(keep))]
        if top is not None:
            order = order[:top]
        shown = [int(batch.customer_ids[i]) for i in order]
        info = {r.id: (r.name, r.code) for r in s.execute(
            select(CustomerRow.id, CustomerRow.name, RegionRow.code)
            .outerjoin(RegionRow, RegionRow.id == CustomerRow.district_id)
            .where(CustomerRow.id.in_(shown)))}
    out = []
    for i in order:
        found = findings_of(batch, int(i), checks, results)
        cid = int(batch.customer_ids[i])
        sus = Suspicion(cid, str(batch.accounts[i]), round(float(total[i]), 3),
                        found[0].month if found else None, found)
        name, code = info.get(cid, ("", None))
        out.append(RankedCustomer.of(sus, name, code))
    return out


def analyse_customer(app, op: Operator, account_no: str, until: str | None = None
                     ) -> RankedCustomer:
    """One customer's findings, judged among all customers (as in the ranked list without a
    region), so the page and the list agree."""
    op.require(Perm.VIEW)
    settings = _settings(app)
    checks = app.pm.consumption_checks()
    with app.uow() as uow:
        c = get_customer_row(uow, account_no)
        batch = load_batch(uow, settings, None, _until(until))
        district = c.district.code if c.district else None
        name = c.name
    total, results = run_checks(batch, checks, settings)
    i = int(np.flatnonzero(batch.customer_ids == c.id)[0])
    found = findings_of(batch, i, checks, results)
    return RankedCustomer.of(Suspicion(c.id, c.account_no, round(float(total[i]), 3),
                                       found[0].month if found else None, found), name, district)
