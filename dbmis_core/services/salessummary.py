"""Completed sales summed per month, district and customer category, kept up to date
incrementally for the sales reports (docs/decisions/0014-reports.md).

Grouping millions of sales costs SQLite about 3 us a sale, so the monthly reports read this
summary instead. Its rows are derived: the first ``refresh`` builds them from every completed sale
(minutes on tens of millions; ``dbmis report summary`` does it at a quiet time), later ones only
look at what changed, which the sale state machine makes cheap to find:

- a sale is inserted pending; it becomes completed (added here) or failed, and a completed sale
  may become reversed (taken out again, found through its completed ``reversals`` row);
- so the state remembers the highest sale and reversal ids seen, and the ids that were still
  open (pending or written) then, and looks at those again next time.

A sale counts in the month of ``completed_at`` (UTC), under the customer's district and category
when it is added. Purchasing customers are counted exactly through ``sales_customer_month``.
Refreshing runs in one write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: REPEATABLE READ
with the state row locked), so two stations never add the same sale twice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import attrs
from sqlalchemy import func, or_, select, text

from ..storage.models import (
    CustomerRow,
    ReversalRow,
    SalesCustomerMonthRow,
    SalesSummaryRow,
    SalesSummaryStateRow,
    VendRow,
)

OPEN = ("pending", "written")
FINAL_REVERSAL = ("completed", "failed")
CHUNK = 900


@attrs.frozen
class Refresh:
    built: bool
    added: int
    removed: int
    seconds: float


def _ym(dialect: str, col: str) -> tuple[str, str]:
    if dialect == "postgresql":
        return (f"CAST(EXTRACT(YEAR FROM {col} AT TIME ZONE 'UTC') AS INTEGER)",
                f"CAST(EXTRACT(MONTH FROM {col} AT TIME ZONE 'UTC') AS INTEGER)")
    return f"CAST(substr({col}, 1, 4) AS INTEGER)", f"CAST(substr({col}, 6, 2) AS INTEGER)"


def refresh(app) -> Refresh:
    """Bring the summary up to date (build it the first time)."""
    t0 = datetime.now(UTC)
    with app.uow() as uow:
        s = uow.session
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        state = s.scalar(select(SalesSummaryStateRow).where(SalesSummaryStateRow.id == 1)
                         .with_for_update())
        if state is None:
            _build(uow)
            uow.commit()
            return Refresh(True, 0, 0, (datetime.now(UTC) - t0).total_seconds())
        added, removed = _update(uow, state)
        uow.commit()
    return Refresh(False, added, removed, (datetime.now(UTC) - t0).total_seconds())


def _build(uow) -> None:
    s = uow.session
    dialect = s.get_bind().dialect.name
    w = s.scalar(select(func.max(VendRow.id))) or 0
    r = s.scalar(select(func.max(ReversalRow.id))) or 0
    y, m = _ym(dialect, "v.completed_at")
    done = "v.state = 'completed' AND v.kind = 'sale' AND v.id <= :w"
    s.execute(text(f"INSERT INTO sales_customer_month (customer_id, year, month, sales) "
                   f"SELECT v.customer_id, {y}, {m}, count(*) FROM vends v WHERE {done} "
                   f"GROUP BY v.customer_id, {y}, {m}"), {"w": w})
    s.execute(text(
        f"INSERT INTO sales_summary (year, month, district_id, category, sales, customers, amount,"
        f" energy, debt_recovered) "
        f"SELECT {y}, {m}, coalesce(c.district_id, 0), c.category, count(*), "
        f"count(DISTINCT v.customer_id), sum(v.amount), sum(v.energy), sum(v.debt_recovered) "
        f"FROM vends v JOIN customers c ON c.id = v.customer_id WHERE {done} "
        f"GROUP BY {y}, {m}, coalesce(c.district_id, 0), c.category"), {"w": w})
    open_vends = list(s.scalars(select(VendRow.id).where(VendRow.state.in_(OPEN),
                                                         VendRow.id <= w)))
    open_rev = list(s.scalars(select(ReversalRow.id).where(
        ReversalRow.state.not_in(FINAL_REVERSAL), ReversalRow.id <= r)))
    s.add(SalesSummaryStateRow(id=1, vend_watermark=w, reversal_watermark=r,
                               open_vends=open_vends, open_reversals=open_rev))


def _update(uow, state: SalesSummaryStateRow) -> tuple[int, int]:
    s = uow.session
    w_old, r_old = state.vend_watermark, state.reversal_watermark
    open_old = set(state.open_vends or [])
    w = s.scalar(select(func.max(VendRow.id))) or 0
    r = s.scalar(select(func.max(ReversalRow.id))) or 0
    add, still_open = [], []
    candidates = list(s.execute(select(VendRow.id, VendRow.state, VendRow.kind).where(
        VendRow.id > w_old, VendRow.id <= w)))
    for chunk in _chunks(sorted(open_old)):
        candidates += s.execute(select(VendRow.id, VendRow.state, VendRow.kind)
                                .where(VendRow.id.in_(chunk))).all()
    for vid, st, kind in candidates:
        if st in OPEN:
            still_open.append(vid)
        elif st == "completed" and kind == "sale":
            add.append(vid)
    remove, rev_open = [], []
    open_rev = list(state.open_reversals or [])
    seen = (ReversalRow.id > r_old) & (ReversalRow.id <= r)
    if open_rev:
        seen = or_(seen, ReversalRow.id.in_(open_rev))
    for rid, vid, st in s.execute(select(ReversalRow.id, ReversalRow.vend_id, ReversalRow.state)
                                  .where(seen)):
        if st not in FINAL_REVERSAL:
            rev_open.append(rid)
        elif st == "completed" and vid <= w_old and vid not in open_old:
            remove.append(vid)
    _apply(uow, add, +1)
    _apply(uow, remove, -1)
    state.vend_watermark, state.reversal_watermark = w, r
    state.open_vends, state.open_reversals = sorted(still_open), sorted(rev_open)
    state.refreshed_at = datetime.now(UTC)
    return len(add), len(remove)


def _chunks(ids):
    ids = list(ids)
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def _apply(uow, vend_ids: list[int], sign: int) -> None:
    """Add (sign +1) or take out (-1) these sales, summed per cell and customer-month first."""
    if not vend_ids:
        return
    s = uow.session
    cells: dict = defaultdict(lambda: [0, 0, Decimal("0"), Decimal("0"), Decimal("0")])
    per_customer: dict = defaultdict(int)
    where: dict = {}
    for chunk in _chunks(vend_ids):
        for cid, at, amount, energy, debt, district, category in s.execute(
                select(VendRow.customer_id, VendRow.completed_at, VendRow.amount, VendRow.energy,
                       VendRow.debt_recovered, CustomerRow.district_id, CustomerRow.category)
                .join(CustomerRow, CustomerRow.id == VendRow.customer_id)
                .where(VendRow.id.in_(chunk), VendRow.kind == "sale")):
            at = at.astimezone(UTC)
            key = (at.year, at.month, district or 0, category)
            c = cells[key]
            c[0] += sign
            c[2] += sign * amount
            c[3] += sign * energy
            c[4] += sign * (debt or 0)
            per_customer[(cid, at.year, at.month)] += sign
            where[(cid, at.year, at.month)] = key
    keys = list(per_customer)
    existing = {}
    for chunk in _chunks(keys):
        for row in s.scalars(select(SalesCustomerMonthRow).where(
                SalesCustomerMonthRow.customer_id.in_({k[0] for k in chunk}))):
            existing[(row.customer_id, row.year, row.month)] = row
    for k, delta in per_customer.items():
        row = existing.get(k)
        before = row.sales if row else 0
        after = before + delta
        if row is None:
            s.add(SalesCustomerMonthRow(customer_id=k[0], year=k[1], month=k[2], sales=after))
        else:
            row.sales = after
        if before <= 0 < after:
            cells[where[k]][1] += 1
        elif after <= 0 < before:
            cells[where[k]][1] -= 1
    for (y, m, d, cat), (n, cust, amount, energy, debt) in cells.items():
        row = s.scalar(select(SalesSummaryRow).where(
            SalesSummaryRow.year == y, SalesSummaryRow.month == m,
            SalesSummaryRow.district_id == d, SalesSummaryRow.category == cat))
        if row is None:
            s.add(SalesSummaryRow(year=y, month=m, district_id=d, category=cat, sales=n,
                                  customers=cust, amount=amount, energy=energy,
                                  debt_recovered=debt))
        else:
            row.sales += n
            row.customers += cust
            row.amount += amount
            row.energy += energy
            row.debt_recovered += debt
    s.flush()
