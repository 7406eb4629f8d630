"""The consumption rules on hand-made arrays: what they flag, what they must not flag, and an
outside rule registered on the plugin manager showing up in the ranking."""

import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dbmis_consumption.checks import builtin_checks, change_features
from dbmis_core.hookspecs import hookimpl
from dbmis_core.plugins import DbmisPluginManager
from dbmis_core.services.analysis import BACKWARDS, Batch, CheckResult, rank, settings_of
from dbmis_core.services.consumption import derive_months
from dbmis_core.types import ConsumptionCheck

# bench/ is a top-level folder, not an installed package: plain `pytest` leaves the root off
# sys.path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.consumption_eval import average_precision_at, evaluate, roc_auc, synthetic  # noqa: E402

SETTINGS = settings_of(None)
CHECKS = {c.name: c for c in builtin_checks()}


def batch_of(series: list[list[float]], **over) -> Batch:
    """Customers with the given monthly use over 24 months from 2024-01, all in one district."""
    kwh = np.array(series, dtype=float)
    n, m = kwh.shape
    idx = np.arange(m)
    fields = dict(
        customer_ids=np.arange(n), accounts=np.array([f"A{i}" for i in range(n)], dtype=object),
        category=np.array(["residential"] * n, dtype=object), district=np.zeros(n, dtype=int),
        years=2024 + idx // 12, month_numbers=idx % 12 + 1, kwh=kwh, purchased=kwh * 1.05,
        returns=np.ones((n, m), dtype=int), status_bits=np.zeros((n, m), dtype=int),
        tamper=np.zeros((n, m)), illegal=np.zeros((n, m)), flags=np.zeros((n, m), dtype=int),
        capacity_kwh=np.full((n, m), 6000.0), active=np.ones((n, m), dtype=bool))
    fields.update(over)
    return Batch(**fields)


def honest(rng, base=200.0, m=24):
    season = 1 + 0.2 * np.cos(2 * np.pi * np.arange(m) / 12)
    return list(base * season * rng.uniform(0.92, 1.08, size=m))


def neighbourhood(seed=1, n=12):
    rng = np.random.default_rng(seed)
    return [honest(rng, base=rng.uniform(120, 400)) for _ in range(n)]


def test_a_single_60_percent_dip_with_normal_months_around_is_not_flagged():
    rows = neighbourhood()
    for month in (5, 12, 20, 22, 23):   # anywhere, including the latest months
        dipped = [list(r) for r in rows]
        dipped[0][month] *= 0.4
        ranked = rank(batch_of(dipped), CHECKS, SETTINGS)
        assert "A0" not in [s.account_no for s in ranked], (month, ranked)


def test_a_persistent_drop_is_flagged_with_readable_reasons():
    rows = neighbourhood()
    rows[3] = [v * (0.35 if t >= 17 else 1.0) for t, v in enumerate(rows[3])]
    ranked = rank(batch_of(rows), CHECKS, SETTINGS)
    assert ranked[0].account_no == "A3"
    f = ranked[0].findings[0]
    assert f.check == "abnormal-drop" and f.month == "2025-06"
    assert "same months last year" in f.reason and "peers" in f.reason and "2025-06" in f.reason
    assert len(ranked) == 1


def test_a_two_month_absence_at_the_end_is_not_yet_persistent():
    rows = neighbourhood()
    rows[2] = [v * (0.3 if t >= 22 else 1.0) for t, v in enumerate(rows[2])]
    assert change_features(batch_of(rows), SETTINGS)["score"][2] == 0
    rows[2] = [v * (0.3 if t >= 20 else 1.0) for t, v in enumerate(rows[2])]
    assert change_features(batch_of(rows), SETTINGS)["score"][2] > 0.5


def test_a_drop_the_whole_district_shares_is_not_the_customers_fault():
    rows = [[v * (0.5 if t >= 17 else 1.0) for t, v in enumerate(r)] for r in neighbourhood()]
    assert rank(batch_of(rows), CHECKS, SETTINGS) == []


def test_rationality_findings_each_with_a_reason():
    rows = neighbourhood(n=8)
    n, m = 8, 24
    flags = np.zeros((n, m), dtype=int)
    flags[0, 10] = BACKWARDS
    kwh = np.array(rows)
    kwh[1, 15] = 9000.0                              # above what 40 A can pass
    kwh[2, 18:] = 0.0                                # nothing registers, still buying
    purchased = np.array(rows) * 1.05
    status = np.zeros((n, m), dtype=int)
    status[3, 7] = 0x08                              # overdraft
    tamper = np.zeros((n, m))
    tamper[4, 12:] = 2
    illegal = np.zeros((n, m))
    illegal[5, 9:] = 1
    returns = np.ones((n, m), dtype=int)
    returns[6, 4:9] = 0                              # card out of the meter for 5 months
    b = batch_of(rows, kwh=kwh, flags=flags, purchased=purchased, status_bits=status,
                 tamper=tamper, illegal=illegal, returns=returns,
                 notes={(0, 10): "register fell from 900 to 850 kWh"})
    got = {s.account_no: s for s in rank(b, CHECKS, SETTINGS)}
    expect = {"A0": ("register-backwards", "went backwards in 2024-11 (register fell"),
              "A1": ("over-capacity", "9000 kWh in 2025-04 is more than the meter"),
              "A2": ("zero-while-buying", "no use recorded in 2025-07"),
              "A3": ("overdraft", "overdraft"),
              "A4": ("tamper", "tampering in 2025-01 (counter 0 -> 2)"),
              "A5": ("illegal-cards", "forged cards in 2024-10"),
              "A6": ("missing-returns", "no meter data for 5 months (2024-05 to 2024-09)")}
    for account, (check, text) in expect.items():
        names = {f.check: f.reason for f in got[account].findings}
        assert check in names, (account, names)
        assert text in names[check], names[check]
    assert "A7" not in got


def test_an_outside_check_registered_on_the_plugin_manager_shows_in_the_ranking():
    class ShopRule:
        @staticmethod
        @hookimpl
        def dbmis_consumption_checks():
            def run(batch, settings):
                hit = batch.kwh[:, -1] > 1000
                return CheckResult(np.where(hit, 1.0, 0.0), np.where(hit, batch.months - 1, -1),
                                   lambda i: f"outside rule: {batch.kwh[i, -1]:.0f} kWh")
            return [ConsumptionCheck(name="outside-big", title="Big last month", run=run,
                                     weight=0.7)]

    pm = DbmisPluginManager()
    pm.load_entry_points()
    pm.register(ShopRule, "outside-rule")
    checks = pm.consumption_checks()
    assert "outside-big" in checks and "abnormal-drop" in checks
    rows = neighbourhood()
    rows[5][-1] = 1500.0
    ranked = rank(batch_of(rows), checks, SETTINGS)
    top = [s for s in ranked if s.account_no == "A5"][0]
    assert top.findings[0].check == "outside-big" and top.score == pytest.approx(0.7)
    assert top.reasons == ["outside rule: 1500 kWh"]


def test_a_check_with_wrong_shaped_scores_is_refused():
    bad = ConsumptionCheck(name="bad", title="Bad", run=lambda b, s: CheckResult(
        np.zeros(3), np.zeros(3), str))
    with pytest.raises(ValueError, match="bad"):
        rank(batch_of(neighbourhood()), {"bad": bad}, SETTINGS)


def _ret(day: str, cc: str, hist: list[str], status=0, tamper=0):
    t = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return SimpleNamespace(written_at=t, cumulative_consumed=Decimal(cc), history_year=t.year,
                           history_month=t.month, history=hist, status=status,
                           tamper_count=tamper, illegal_card_count=0)


def test_months_from_history_register_and_gaps():
    rets = [_ret("2025-01-20", "100", ["60", "40"]),
            _ret("2025-02-20", "190", ["55", "90"]),
            # the card stays away for two months; the meter's history still covers them
            _ret("2025-05-20", "400", ["70", "75", "80", "85"]),
            _ret("2025-06-10", "380", ["10", "75"])]
    months = derive_months(rets, {(2025 * 12 + 2): Decimal("50")})
    by = {(r["year"], r["month"]): r for r in months}
    assert by[(2024, 12)]["kwh"] == Decimal("40") and by[(2024, 12)]["quality"] == "complete"
    assert by[(2025, 1)]["kwh"] == Decimal("90") and by[(2025, 1)]["source"] == "history"
    assert by[(2025, 2)]["kwh"] == Decimal("85") and by[(2025, 2)]["quality"] == "complete"
    assert by[(2025, 3)]["kwh"] == Decimal("80") and by[(2025, 3)]["returns"] == 0
    assert by[(2025, 3)]["purchased"] == Decimal("50")
    assert by[(2025, 6)]["quality"] == "partial"
    assert by[(2025, 6)]["flags"] & BACKWARDS and "fell from 400 to 380" in by[(2025, 6)]["note"]
    # no history for a month: estimated from the register, spread by time
    rets2 = [_ret("2025-01-31", "100", []), _ret("2025-03-31", "300", [])]
    est = {(r["year"], r["month"]): r for r in derive_months(rets2, {})}
    assert est[(2025, 2)]["quality"] == "estimated"
    spread = sum(r["kwh"] for r in est.values())
    assert abs(spread - Decimal("200")) <= Decimal("0.02")
    assert est[(2025, 2)]["kwh"] == Decimal(f"{200 * 28 / 59:.2f}")


def test_metrics_and_the_synthetic_evaluation():
    labels = np.array([1, 1, 0, 1, 0])
    assert average_precision_at(labels, 100) == pytest.approx((1 + 1 + 3 / 4) / 3)
    assert roc_auc(np.array([3.0, 2.0, 1.0]), np.array([1, 0, 0])) == 1.0
    assert roc_auc(np.array([1.0, 2.0, 3.0]), np.array([1, 0, 0])) == 0.0
    batch, pattern = synthetic(2000, seed=3)
    assert batch.kwh.shape == (2000, 24) and (pattern != "honest").mean() == pytest.approx(
        0.06, abs=0.02)
    r = evaluate(4000, seed=3)
    assert r["map100"] >= 0.9 and r["auc"] > 0.9


def test_the_scale_benchmark_builds_compact_data_and_says_when_duckdb_is_missing(monkeypatch):
    from bench.consumption_scale import build, duckdb_ratios, numpy_ratios

    batch = build(1200, seed=2)
    assert batch.kwh.shape == (1200, 24) and batch.kwh.dtype == np.float32
    assert batch.flags.dtype == np.int8 and len(set(batch.customer_ids)) == 1200
    mom, yoy = numpy_ratios(batch.kwh)
    assert mom.shape == (1200, 23) and yoy.shape == (1200, 12)
    assert yoy[7, 3] == pytest.approx(batch.kwh[7, 15] / batch.kwh[7, 3])
    monkeypatch.setitem(sys.modules, "duckdb", None)
    assert "not installed" in duckdb_ratios(batch.kwh)
