"""How well the consumption detector ranks thieves and faulty meters: synthetic monthly data with
injected theft and fault patterns, scored by precision@k, MAP@100 and AUC.

    .venv/bin/python -m bench.consumption_eval             # 20,000 customers x 24 months, seed 7
    .venv/bin/python -m bench.consumption_eval --customers 50000 --seed 3

Honest customers: category base use and seasonal profile (as bench.generate), a weather factor per
month shared by everyone and one per transformer district, holidays (one month at 25-80% of usual,
about one customer-month in 25), occasional two-month absences, yearly growth or decline
(N(2%, 6%)), month-length effect, log-normal noise whose size varies by customer, purchases that
do not match use month by month. Confounders among honest customers: 1.5% make a real lasting
change (new appliances, fewer people: use falls to 55-85%), 0.3% have a tamper count (utility
work, false alarm) and 0.5% leave their card out of the meter for 3-5 months.

Injected from a random onset month (so honest history comes first, research/consumption.md):
thefts (5%) - gradual decline to 10-60% over 4-10 months, sudden persistent drop to 10-80% (Jokar
h1), a fresh fraction 10-80% every month (h3), bypass (almost no use recorded while still buying),
tamper (counter rises, use falls to 30-80%); faults (1%) - register stuck (no use while buying) and
register going backwards. A positive is a theft or a fault: both need an inspector.

MAP@100: at each rank within the first 100 where a positive appears, the precision up to that rank,
averaged over those ranks. The figure reported is for seed 7; seeds 11 and 23 are printed too.
"""

from __future__ import annotations

import argparse
import calendar
import sys
import time

import numpy as np

from dbmis_core.services.analysis import BACKWARDS, Batch, run_checks, settings_of

CATEGORIES = (("residential", 0.86, (80, 450), 1, 40), ("commercial", 0.09, (400, 3000), 3, 60),
              ("industrial", 0.02, (2000, 6000), 3, 60), ("agricultural", 0.03, (150, 1500), 3, 60))
THEFTS = ("decline", "drop", "random", "bypass", "tamper")
FAULTS = ("stuck", "backwards")
HONEST = "honest"


def _season(category: str, month: np.ndarray) -> np.ndarray:
    x = 2 * np.pi * (month - 1) / 12
    if category == "agricultural":
        return 1 + 0.6 * np.cos(x - np.pi)
    if category == "industrial":
        return 1 + 0.05 * np.cos(x)
    return 1 + 0.2 * np.cos(x) + 0.1 * np.cos(2 * x)


def synthetic(n: int, months: int = 24, seed: int = 7, theft_share: float = 0.05,
              fault_share: float = 0.01, start: tuple[int, int] = (2024, 1),
              dtype=np.float64) -> tuple[Batch, np.ndarray]:
    """A batch of ``n`` customers x ``months`` and the pattern of each customer (``"honest"`` or a
    theft or fault name). Vectorised: a million customers take a few seconds."""
    rng = np.random.default_rng(seed)
    y0, m0 = start
    idx = np.arange(months)
    years = y0 + (m0 - 1 + idx) // 12
    mnums = (m0 - 1 + idx) % 12 + 1
    days = np.array([calendar.monthrange(int(y), int(mo))[1] for y, mo in zip(years, mnums)])

    shares = np.array([c[1] for c in CATEGORIES])
    cat_idx = rng.choice(len(CATEGORIES), size=n, p=shares / shares.sum())
    names = np.array([c[0] for c in CATEGORIES])
    category = names[cat_idx]
    lo = np.array([c[2][0] for c in CATEGORIES])[cat_idx]
    hi = np.array([c[2][1] for c in CATEGORIES])[cat_idx]
    base = rng.uniform(lo, hi)
    districts = max(1, n // 200)
    district = rng.integers(0, districts, size=n)

    season = np.stack([_season(c[0], mnums) for c in CATEGORIES])[cat_idx]      # (n, m)
    weather = rng.normal(1, 0.05, size=months)                                   # everyone
    local = rng.normal(1, 0.04, size=(districts, months))[district]              # per district
    growth = (1 + rng.normal(0.02, 0.06, size=n))[:, None] ** (idx / 12)
    noise = np.exp(rng.normal(0, 1, size=(n, months)) * rng.uniform(0.05, 0.2, size=n)[:, None])
    x = base[:, None] * season * weather * local * growth * noise * (days / 30.44)
    # holidays: one month away now and then, and a few two-month absences
    away = rng.random((n, months)) < 0.04
    x = np.where(away, x * rng.uniform(0.25, 0.8, size=(n, months)), x)
    two = rng.random(n) < 0.02
    start2 = rng.integers(0, months - 1, size=n)
    for k in (0, 1):
        col = start2 + k
        x[two, col[two]] *= rng.uniform(0.3, 0.6, size=two.sum())

    pattern = np.full(n, HONEST, dtype=object)
    r = rng.random(n)
    thief = r < theft_share
    faulty = (r >= theft_share) & (r < theft_share + fault_share)
    pattern[thief] = rng.choice(THEFTS, size=thief.sum())
    pattern[faulty] = rng.choice(FAULTS, size=faulty.sum())
    onset = rng.integers(8, months - 2, size=n)
    after = idx[None, :] >= onset[:, None]

    honest = pattern == HONEST
    real_change = honest & (rng.random(n) < 0.015)
    x = np.where(real_change[:, None] & after, x * rng.uniform(0.55, 0.85, size=n)[:, None], x)

    purchased = x * rng.uniform(0.7, 1.3, size=(n, months))
    purchased = np.where(rng.random((n, months)) < 0.1, 0.0, purchased)

    factor = np.ones((n, months))
    p = pattern
    alpha = rng.uniform(0.1, 0.6, size=n)
    ramp = rng.integers(4, 11, size=n)
    progress = np.clip((idx[None, :] - onset[:, None] + 1) / ramp[:, None], 0, 1)
    factor = np.where((p == "decline")[:, None], 1 - progress * (1 - alpha[:, None]), factor)
    factor = np.where((p == "drop")[:, None] & after,
                      rng.uniform(0.1, 0.8, size=n)[:, None], factor)
    factor = np.where((p == "random")[:, None] & after, rng.uniform(0.1, 0.8, size=(n, months)),
                      factor)
    factor = np.where((p == "bypass")[:, None] & after, rng.uniform(0, 0.01, size=(n, months)),
                      factor)
    factor = np.where((p == "tamper")[:, None] & after, rng.uniform(0.3, 0.8, size=n)[:, None],
                      factor)
    factor = np.where((p == "stuck")[:, None] & after, 0.0, factor)
    recorded = x * factor
    # a thief buys what the meter records, a little more to look normal; a bypass keeps buying
    thief_buy = np.isin(p, ("decline", "drop", "random", "tamper"))
    purchased = np.where(thief_buy[:, None] & after, purchased * factor * 1.1, purchased)
    purchased = np.where((p == "bypass")[:, None] & after, purchased * rng.uniform(0.2, 0.5),
                         purchased)
    purchased = np.where((p == "stuck")[:, None] & after, np.maximum(purchased, 0.5 * x), purchased)

    flags = np.zeros((n, months), dtype=np.int64)
    back = p == "backwards"
    flags[back, onset[back]] = BACKWARDS
    recorded[back, onset[back]] = -rng.uniform(5, 50, size=back.sum())

    tamper_counter = np.zeros((n, months))
    tam = (p == "tamper") | (honest & (rng.random(n) < 0.003))
    tamper_counter = np.where(tam[:, None] & after, 1.0, tamper_counter)

    returns = np.ones((n, months), dtype=np.int64)
    gone = honest & (rng.random(n) < 0.005)
    glen = rng.integers(3, 6, size=n)
    gap = gone[:, None] & (idx[None, :] >= onset[:, None] - glen[:, None]) & (
        idx[None, :] < onset[:, None])
    returns = np.where(gap, 0, returns)

    amps = np.array([c[4] for c in CATEGORIES])[cat_idx]
    phases = np.array([c[3] for c in CATEGORIES])[cat_idx]
    capacity = (amps * 230.0 * phases)[:, None] * (days * 24)[None, :] / 1000.0
    batch = Batch(customer_ids=np.arange(n), accounts=np.arange(n).astype(str), category=category,
                  district=district, years=years, month_numbers=mnums,
                  kwh=np.round(recorded, 2).astype(dtype), purchased=purchased.astype(dtype),
                  returns=returns, status_bits=np.zeros((n, months), dtype=np.int64),
                  tamper=tamper_counter.astype(dtype), illegal=np.zeros((n, months), dtype=dtype),
                  flags=flags, capacity_kwh=capacity.astype(dtype),
                  active=np.ones((n, months), dtype=bool))
    return batch, pattern


def precision_at(order_labels: np.ndarray, k: int) -> float:
    return float(order_labels[:k].mean()) if k else 0.0


def average_precision_at(order_labels: np.ndarray, k: int = 100) -> float:
    top = order_labels[:k]
    hits = np.flatnonzero(top)
    if not len(hits):
        return 0.0
    return float(np.mean(np.cumsum(top)[hits] / (hits + 1)))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    # average ranks of ties
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    pos = labels.astype(bool)
    n1, n0 = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def evaluate(n: int, seed: int, settings=None, checks=None) -> dict:
    from dbmis_consumption.checks import builtin_checks

    checks = checks or {c.name: c for c in builtin_checks()}
    settings = settings_of(settings)
    batch, pattern = synthetic(n, seed=seed)
    t0 = time.perf_counter()
    total, results = run_checks(batch, checks, settings)
    seconds = time.perf_counter() - t0
    labels = pattern != HONEST
    order = np.argsort(-total, kind="stable")
    ranked = labels[order]
    out = {"customers": n, "positives": int(labels.sum()), "seconds": seconds,
           "precision": {k: precision_at(ranked, k) for k in (10, 50, 100, 200, 500)},
           "map100": average_precision_at(ranked, 100), "auc": roc_auc(total, labels)}
    flagged = total > 0.5
    out["recall_by_pattern"] = {
        name: float(flagged[pattern == name].mean()) for name in THEFTS + FAULTS
        if (pattern == name).any()}
    out["honest_flagged"] = float(flagged[~labels].mean())
    change_only = np.isin(pattern, (HONEST, "decline", "drop", "random"))
    ranked_c = labels[change_only][np.argsort(-total[change_only], kind="stable")]
    out["map100_change_only"] = average_precision_at(ranked_c, 100)
    out["auc_change_only"] = roc_auc(total[change_only], labels[change_only])
    return out


def _print(r: dict, seed: int) -> None:
    p = r["precision"]
    print(f"seed {seed}: {r['customers']:,} customers, {r['positives']:,} positives; detector "
          f"{r['seconds']:.2f} s")
    print("  precision@k  " + "  ".join(f"@{k}={v:.3f}" for k, v in p.items()))
    print(f"  MAP@100 {r['map100']:.3f}   AUC {r['auc']:.3f}")
    print(f"  change patterns only (decline, drop, random vs honest): MAP@100 "
          f"{r['map100_change_only']:.3f}   AUC {r['auc_change_only']:.3f}")
    print("  flagged (score > 0.5) by pattern: " + ", ".join(
        f"{k} {v:.0%}" for k, v in r["recall_by_pattern"].items())
          + f"; honest {r['honest_flagged']:.2%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.consumption_eval",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--other-seeds", default="11,23")
    a = ap.parse_args(argv)
    first = evaluate(a.customers, a.seed)
    _print(first, a.seed)
    for s in (int(x) for x in a.other_seeds.split(",") if x):
        _print(evaluate(a.customers, s), s)
    ok = first["map100"] >= 0.9
    print(f"budget MAP@100 >= 0.9 on seed {a.seed}: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
