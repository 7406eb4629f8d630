"""The built-in consumption rules: rationality checks and the abnormal-change detector.

Each rule takes a ``Batch`` (customers x months) and the ``[consumption]`` settings and returns a
``CheckResult``; everything is computed on whole arrays. The change detector and its score are
explained in docs/decisions/0012-consumption-detector.md.
"""

from __future__ import annotations

import numpy as np

from dbmis_core.services.analysis import (
    BACKWARDS,
    OVERDRAFT_BIT,
    TAMPER_BIT,
    Batch,
    CheckResult,
    group_median,
)
from dbmis_core.types import ConsumptionCheck

NONE = -1


def _first(mask: np.ndarray) -> np.ndarray:
    """Column of the first True per row, -1 where none."""
    has = mask.any(axis=1)
    return np.where(has, mask.argmax(axis=1), NONE)


def _months_text(batch: Batch, row_mask: np.ndarray, limit: int = 4) -> str:
    cols = np.flatnonzero(row_mask)
    shown = ", ".join(batch.label(j) for j in cols[:limit])
    return shown + (f" and {len(cols) - limit} more" if len(cols) > limit else "")


# -- rationality ----------------------------------------------------------------------------------


def register_backwards(batch: Batch, settings) -> CheckResult:
    hit = (batch.flags & BACKWARDS) != 0
    month = _first(hit)

    def reason(i: int) -> str:
        j = int(month[i])
        detail = batch.notes.get((i, j), "")
        return (f"the meter register went backwards in {_months_text(batch, hit[i])}"
                + (f" ({detail})" if detail else "") + ": a faulty or manipulated meter")

    return CheckResult(hit.any(axis=1).astype(float), month, reason)


def over_capacity(batch: Batch, settings) -> CheckResult:
    limit = batch.capacity_kwh * settings["capacity_use_share"]
    with np.errstate(invalid="ignore"):
        hit = batch.kwh > limit
    month = _first(hit)

    def reason(i: int) -> str:
        j = int(month[i])
        return (f"{batch.kwh[i, j]:.0f} kWh in {batch.label(j)} is more than the meter and "
                f"capacity allow ({limit[i, j]:.0f} kWh at full load all month): a wrong reading "
                "or a wrong meter record")

    return CheckResult(hit.any(axis=1).astype(float), month, reason)


def zero_while_buying(batch: Batch, settings) -> CheckResult:
    with np.errstate(invalid="ignore"):
        hit = batch.active & (batch.kwh <= settings["zero_kwh"]) & (batch.purchased > 0)
    count = hit.sum(axis=1)
    month = _first(hit)

    def reason(i: int) -> str:
        bought = batch.purchased[i][hit[i]].sum()
        return (f"no use recorded in {_months_text(batch, hit[i])} while {bought:.0f} kWh were "
                "bought: a stuck register or a bypassed meter")

    return CheckResult(np.minimum(1.0, count / max(1.0, settings["zero_months"])), month, reason)


def overdraft(batch: Batch, settings) -> CheckResult:
    hit = (batch.status_bits & OVERDRAFT_BIT) != 0
    month = _first(hit)

    def reason(i: int) -> str:
        return (f"the meter reported overdraft (supply on without credit) in "
                f"{_months_text(batch, hit[i])}: a relay fault")

    return CheckResult(hit.any(axis=1).astype(float), month, reason)


def _rises(counter: np.ndarray) -> np.ndarray:
    """Where a counter (NaN unknown) is higher than its last known value."""
    filled = counter.copy()
    n, m = filled.shape
    for j in range(1, m):
        gap = np.isnan(filled[:, j])
        filled[gap, j] = filled[gap, j - 1]
    prev = np.concatenate([filled[:, :1], filled[:, :-1]], axis=1)
    with np.errstate(invalid="ignore"):
        return filled > prev


def tamper(batch: Batch, settings) -> CheckResult:
    hit = _rises(batch.tamper) | ((batch.status_bits & TAMPER_BIT) != 0)
    month = _first(hit)

    def reason(i: int) -> str:
        known = batch.tamper[i][~np.isnan(batch.tamper[i])]
        span = f" (counter {known[0]:.0f} -> {known[-1]:.0f})" if len(known) else ""
        return f"the meter counted tampering in {_months_text(batch, hit[i])}{span}"

    return CheckResult(hit.any(axis=1).astype(float), month, reason)


def illegal_cards(batch: Batch, settings) -> CheckResult:
    hit = _rises(batch.illegal)
    month = _first(hit)

    def reason(i: int) -> str:
        return f"the meter refused foreign or forged cards in {_months_text(batch, hit[i])}"

    return CheckResult(hit.any(axis=1).astype(float), month, reason)


def missing_returns(batch: Batch, settings) -> CheckResult:
    gap = batch.active & (batch.returns == 0)
    run = np.zeros(batch.n, dtype=int)
    best = np.zeros(batch.n, dtype=int)
    end = np.full(batch.n, NONE)
    for j in range(batch.months):
        run = np.where(gap[:, j], run + 1, 0)
        longer = run > best
        best = np.where(longer, run, best)
        end = np.where(longer, j, end)
    need = max(1, int(settings["missing_months"]))
    hit = best >= need
    start = np.where(hit, end - best + 1, NONE)

    def reason(i: int) -> str:
        return (f"no meter data for {best[i]} months ({batch.label(start[i])} to "
                f"{batch.label(end[i])}): the card has not been in the meter")

    return CheckResult(hit.astype(float), start, reason)


# -- abnormal change ------------------------------------------------------------------------------


def _nanmedian(a: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN; rows without NaN take numpy's much faster plain median."""
    gaps = np.isnan(a).any(axis=1)
    out = np.median(a, axis=1).astype(np.float64)
    if gaps.any():
        with np.errstate(all="ignore"), _quiet():
            out[gaps] = np.nanmedian(a[gaps], axis=1)
    return out


def _row_fill(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN replaced by the row median (missing months then pull no split either way)."""
    with np.errstate(all="ignore"), _quiet():
        med = _nanmedian(y)
    med = np.where(np.isnan(med), 0.0, med)
    return np.where(np.isnan(y), med[:, None], y), med


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def peer_groups(batch: Batch, min_peers: int) -> np.ndarray:
    """Group per customer: its transformer district and category when that group has at least
    ``min_peers`` customers, else all customers of its category, else everyone in the batch."""
    cats, cat_idx = np.unique(batch.category.astype(str), return_inverse=True)
    dist = np.where(batch.district < 0, 0, batch.district + 1)
    _, key = np.unique(dist.astype(np.int64) * len(cats) + cat_idx, return_inverse=True)
    small = np.bincount(key)[key] < min_peers
    cat_small = np.bincount(cat_idx)[cat_idx] < min_peers
    top = key.max() + 1 if len(key) else 0
    groups = np.where(small, np.where(cat_small, top + len(cats), top + cat_idx), key)
    _, groups = np.unique(groups, return_inverse=True)
    return groups


def change_features(batch: Batch, settings) -> dict[str, np.ndarray]:
    """The abnormal-change evidence per customer, on seasonally adjusted log use.

    Use is divided by the customer's own median and by the median profile of the peer group
    (district and category), so seasons, holidays and weather shared by the district cancel out.
    A persistent drop is a split of the series into "before" and "after" (after at least
    ``persist_months`` long, before at least ``min_history_months``) where the after-median sits
    below the before-median; medians make one odd month (a holiday) move nothing. The drop counts
    only as far as the last ``persist_months`` months are low too (it is still going on)."""
    n, m = batch.n, batch.months
    persist = max(1, int(settings["persist_months"]))
    hist = max(2, int(settings["min_history_months"]))
    x = batch.kwh.astype(np.float64, copy=False)
    with np.errstate(all="ignore"), _quiet():
        own = _nanmedian(np.where(x > 0, x, np.nan).astype(np.float32))
    own = np.where(np.isnan(own) | (own <= 0), 1.0, own)
    floor = np.maximum(settings["zero_kwh"], 0.02 * own)[:, None]
    u = (np.maximum(x, floor) / own[:, None]).astype(np.float32)
    u[np.isnan(x)] = np.nan
    groups = peer_groups(batch, int(settings["min_peers"]))
    # a peer profile from fewer than three known values would mostly be the customer itself
    profile = group_median(u, groups, min(int(settings["min_peers"]), 3))
    log_prof = np.log(np.where(np.isnan(profile) | (profile <= 0), 1.0, profile)).astype(np.float32)
    y = np.log(u) - log_prof[groups]
    del u
    yf, _ = _row_fill(y)
    with np.errstate(all="ignore"), _quiet():
        noise = 1.4826 * _nanmedian(np.abs(np.diff(y, axis=1))) / np.sqrt(2)
    noise = np.where(np.isnan(noise), 0.1, np.maximum(noise, 0.05))

    best_z = np.full(n, -np.inf)
    best_s = np.full(n, NONE)
    best_before = np.zeros(n)
    # every one of the last ``persist`` months must be low: the highest of them counts
    tail = np.max(yf[:, m - persist:], axis=1) if m >= persist else np.zeros(n)
    for s in range(hist, m - persist + 1):
        before = np.median(yf[:, :s], axis=1)
        after = np.median(yf[:, s:], axis=1)
        drop = before - np.maximum(after, tail)
        z = drop / (noise * np.sqrt(1.0 / s + 1.0 / (m - s)))
        better = z > best_z
        best_z = np.where(better, z, best_z)
        best_s = np.where(better, s, best_s)
        best_before = np.where(better, before, best_before)
    found = best_s >= 0
    drop = np.where(found, best_before - tail, 0.0)
    drop = np.maximum(drop, 0.0)
    # the split with the clearest contrast can start before the fall (a longer "after" that is
    # still mostly low); the onset shown is the first month from there that is low
    low = (y < (best_before - drop / 2)[:, None]) & (np.arange(m)[None, :] >= best_s[:, None])
    best_s = np.where(found & low.any(axis=1), low.argmax(axis=1), best_s)
    low_months = low.sum(axis=1)
    share = np.exp(-drop)  # recent use as a share of what the customer's history expects
    # month over month at the onset, and same months last year for the last ``persist`` months
    s_ = np.clip(best_s, 1, m - 1)
    rows = np.arange(n)
    with np.errstate(all="ignore"):
        mom = x[rows, s_] / x[rows, s_ - 1]
        if m > 12:
            recent = x[:, m - persist:]
            last_year = x[:, m - persist - 12:m - 12]
            yoy = np.nansum(recent, axis=1) / np.nansum(last_year, axis=1)
            peer_yoy = np.nanmedian(profile[:, m - persist:], axis=1) / np.nanmedian(
                profile[:, m - persist - 12:m - 12], axis=1)
            peer_yoy = peer_yoy[groups]
        else:
            yoy = peer_yoy = np.full(n, np.nan)
    # a fall in the persistent level, expressed as how far below expectation recent use is, and
    # how clear that is against the customer's own month-to-month noise
    ratio = settings["drop_ratio"]
    magnitude = np.clip((1.0 - share) / max(1e-6, 1.0 - ratio), 0.0, 1.5)
    clarity = np.clip(np.where(np.isfinite(best_z), best_z, 0.0) / 8.0, 0.0, 1.5)
    confirm = np.where(np.isnan(yoy) | (yoy < 1.0 - 0.5 * (1.0 - share)), 1.0, 0.6)
    score = np.clip(magnitude * clarity * confirm, 0.0, 1.0)
    score = np.where(found & (share < 1.0 - 0.5 * (1.0 - ratio)), score, 0.0)
    return {"score": score, "onset": np.where(score > 0, best_s, NONE), "share": share,
            "z": best_z, "mom": mom, "yoy": yoy, "peer_yoy": peer_yoy, "profile": profile,
            "groups": groups, "noise": noise, "low_months": low_months}


def abnormal_drop(batch: Batch, settings) -> CheckResult:
    f = change_features(batch, settings)
    persist = int(settings["persist_months"])

    def pct(v: float) -> str:
        return "n/a" if not np.isfinite(v) else f"{(v - 1) * 100:+.0f}%"

    def peer_change(i: int, s: int) -> float:
        """Peers' profile after the onset against before it (only for customers shown)."""
        p = f["profile"][f["groups"][i]]
        with np.errstate(all="ignore"), _quiet():
            return float(np.nanmedian(p[s:]) / np.nanmedian(p[:s]))

    def reason(i: int) -> str:
        s = int(f["onset"][i])
        return (f"use fell to {f['share'][i] * 100:.0f}% of its expected level from "
                f"{batch.label(s)}, low in {f['low_months'][i]} of the {batch.months - s} months "
                f"since "
                f"(needs {persist}); month over month at the start {pct(f['mom'][i])}; "
                f"last {persist} months against the same months last year {pct(f['yoy'][i])} "
                f"(district peers {pct(f['peer_yoy'][i])}); peers over the same months "
                f"{pct(peer_change(i, s))}; {f['z'][i]:.1f} x the customer's usual variation")

    return CheckResult(f["score"], f["onset"], reason)


def builtin_checks() -> list[ConsumptionCheck]:
    return [
        ConsumptionCheck(name="register-backwards", title="Register going backwards",
                         run=register_backwards, weight=1.0),
        ConsumptionCheck(name="over-capacity", title="Use above meter capacity",
                         run=over_capacity, weight=0.8),
        ConsumptionCheck(name="zero-while-buying", title="No use while buying",
                         run=zero_while_buying, weight=1.0),
        ConsumptionCheck(name="overdraft", title="Returned overdraft", run=overdraft, weight=0.8),
        ConsumptionCheck(name="tamper", title="Tamper counter rising", run=tamper, weight=1.0),
        ConsumptionCheck(name="illegal-cards", title="Illegal-card counter rising",
                         run=illegal_cards, weight=0.6),
        ConsumptionCheck(name="missing-returns", title="Months without meter data",
                         run=missing_returns, weight=0.4),
        ConsumptionCheck(name="abnormal-drop", title="Persistent abnormal drop", kind="change",
                         run=abnormal_drop, weight=2.0),
    ]
