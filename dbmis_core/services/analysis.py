"""Consumption analysis on whole arrays: the batch the rules see, running them, the ranked list.

A :class:`Batch` holds one row per customer and one column per calendar month as numpy arrays, so
each rule (``ConsumptionCheck``, registered by plugins) is a handful of array passes whether it
looks at six customers or a million (bench/consumption_scale.py). A customer's suspicion score is
the weighted sum of the rules' scores; reasons are formatted only for the customers shown.
The scoring is described in docs/decisions/0012-consumption-detector.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np

# MonthlyConsumptionRow.flags
BACKWARDS = 0x01        # the register went backwards in this month
PURCHASED_BACKWARDS = 0x02

# MeterReturn status bits the rules look at (dbmis_core.domain.MeterReturn)
OVERDRAFT_BIT = 0x08
TAMPER_BIT = 0x02


def month_label(year: int, month: int) -> str:
    return f"{int(year):04d}-{int(month):02d}"


@attrs.define(eq=False)
class Batch:
    """Customers x months, as the rules see them. ``kwh`` is NaN where the month's use is unknown
    (no data, or a month still in progress); counters are NaN where no return was read."""

    customer_ids: np.ndarray          # (n,) database ids (or synthetic numbers)
    accounts: np.ndarray              # (n,) account numbers (str)
    category: np.ndarray              # (n,) customer category (str)
    district: np.ndarray              # (n,) transformer district id, -1 unknown
    years: np.ndarray                 # (m,)
    month_numbers: np.ndarray         # (m,) 1..12
    kwh: np.ndarray                   # (n, m) float
    purchased: np.ndarray             # (n, m) float, kWh bought in the month
    returns: np.ndarray               # (n, m) int, returns read that month
    status_bits: np.ndarray           # (n, m) int, status bits of the month's returns OR-ed
    tamper: np.ndarray                # (n, m) float, tamper counter at the month's last return
    illegal: np.ndarray               # (n, m) float, illegal-card counter likewise
    flags: np.ndarray                 # (n, m) int, BACKWARDS ...
    capacity_kwh: np.ndarray          # (n, m) float, most the meter/contract can pass in the month
    active: np.ndarray                # (n, m) bool, month within the customer's supply
    notes: dict[tuple[int, int], str] = attrs.Factory(dict)  # (row, column) -> detail text

    @property
    def n(self) -> int:
        return len(self.customer_ids)

    @property
    def months(self) -> int:
        return len(self.years)

    def label(self, j: int) -> str:
        return month_label(self.years[j], self.month_numbers[j])

    def subset(self, rows: np.ndarray) -> "Batch":
        """The same months for some customers (rows: indices or a boolean mask)."""
        idx = np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows)
        where = {int(i): k for k, i in enumerate(idx)}
        notes = {(where[i], j): t for (i, j), t in self.notes.items() if i in where}
        per_row = {f.name: getattr(self, f.name)[idx] for f in attrs.fields(Batch)
                   if f.name not in ("years", "month_numbers", "notes")}
        return Batch(years=self.years, month_numbers=self.month_numbers, notes=notes, **per_row)


@attrs.frozen
class CheckResult:
    """What one rule found: ``score`` in [0, 1] per customer (0: nothing), ``month`` the column it
    shows in (-1: none), and ``reason(i)`` the readable finding for row ``i``."""

    score: np.ndarray
    month: np.ndarray
    reason: Callable[[int], str]


@attrs.frozen
class Finding:
    check: str
    title: str
    kind: str
    score: float
    month: str | None
    reason: str


@attrs.frozen
class Suspicion:
    """One customer's place in the ranked list."""

    customer_id: int
    account_no: str
    score: float
    period: str | None          # the month the strongest finding shows in
    findings: tuple[Finding, ...]

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.findings]


def settings_of(section: Mapping[str, Any] | None) -> dict[str, float]:
    """The ``[consumption]`` settings as numbers (TOML may give strings or numbers)."""
    from ..config import DEFAULTS

    merged = {**DEFAULTS["consumption"], **(section or {})}
    return {k: float(v) for k, v in merged.items()}


def run_checks(batch: Batch, checks: Mapping[str, Any], settings: Mapping[str, float]
               ) -> tuple[np.ndarray, dict[str, CheckResult]]:
    """Every rule on the batch; returns the total suspicion score per customer and each result."""
    total = np.zeros(batch.n)
    results: dict[str, CheckResult] = {}
    for name, check in checks.items():
        res = check.run(batch, settings)
        score = np.nan_to_num(np.asarray(res.score, dtype=float), nan=0.0)
        if score.shape != (batch.n,):
            raise ValueError(f"consumption check {name!r} returned {score.shape} scores for "
                             f"{batch.n} customers")
        res = attrs.evolve(res, score=np.clip(score, 0.0, 1.0))
        results[name] = res
        total += check.weight * res.score
    return total, results


def findings_of(batch: Batch, i: int, checks: Mapping[str, Any],
                results: Mapping[str, CheckResult]) -> tuple[Finding, ...]:
    out = []
    for name, res in results.items():
        s = float(res.score[i])
        if s <= 0:
            continue
        check = checks[name]
        j = int(res.month[i])
        out.append(Finding(name, check.title, check.kind, round(check.weight * s, 3),
                           batch.label(j) if j >= 0 else None, res.reason(i)))
    return tuple(sorted(out, key=lambda f: -f.score))


def rank(batch: Batch, checks: Mapping[str, Any], settings: Mapping[str, float],
         top: int | None = None, min_score: float = 0.0) -> list[Suspicion]:
    """Customers by suspicion, highest first; only customers with a score above ``min_score``."""
    total, results = run_checks(batch, checks, settings)
    order = np.argsort(-total, kind="stable")
    order = order[total[order] > min_score]
    if top is not None:
        order = order[:top]
    out = []
    for i in order:
        found = findings_of(batch, int(i), checks, results)
        out.append(Suspicion(int(batch.customer_ids[i]), str(batch.accounts[i]),
                             round(float(total[i]), 3), found[0].month if found else None, found))
    return out


def group_median(values: np.ndarray, groups: np.ndarray, min_count: int = 1) -> np.ndarray:
    """Median of each column within each group (NaN ignored), one row per group id 0..G-1; NaN
    where fewer than ``min_count`` values are known.

    Non-negative values below ``SPAN`` are sorted in one pass per column as ``group * SPAN +
    value`` (float64 keeps them exact to about 1e-8), which is several times faster than sorting
    by two keys; other values take ``np.lexsort``. Each group's median is then the middle of its
    run in the sorted column."""
    n, m = values.shape
    g = int(groups.max()) + 1 if n else 0
    out = np.full((g, m), np.nan)
    if not n:
        return out
    fast = bool(np.nanmin(values) >= 0 and np.nanmax(values) < _SPAN) if np.isfinite(
        values).any() else True
    for j in range(m):
        v = values[:, j]
        ok = ~np.isnan(v)
        gv = groups[ok]
        if fast:
            key = gv * _SPAN + v[ok].astype(np.float64)
            key.sort()
            gsorted = np.repeat(np.arange(g), np.bincount(gv, minlength=g))
            vv = key - gsorted * _SPAN
        else:
            vv = v[ok]
            order = np.lexsort((vv, gv))
            vv = vv[order]
        counts = np.bincount(gv, minlength=g)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        has = counts >= max(1, min_count)
        lo = starts[has] + (counts[has] - 1) // 2
        hi = starts[has] + counts[has] // 2
        out[has, j] = (vv[lo] + vv[hi]) / 2
    return out


_SPAN = 1.0e4
