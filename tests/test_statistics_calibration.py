"""Do the audit's statistics keep their promises? Small simulations (seconds); the full ones are
``bench/bench_statistics.py`` and the table in ``docs/benchmarks.md`` ("Statistics calibration").

Bars, computed from the Monte Carlo error of the number of replicates used here:

- FPR: a test kind passes when its observed rate is not significantly above alpha, i.e. the lower end
  of the 99 % Clopper-Pearson interval of ``hits / n`` is <= 0.05 (a calibrated test fails this with
  probability <= 0.5 %). With n = 300 it accepts observed rates up to about 0.085; a test with a true FPR
  of 0.10 fails it with probability ~0.8 at n = 300 and > 0.99 at n = 400 (the legacy "vs best" statistic
  below, at n = 400, does).
- Coverage: the 99 % Clopper-Pearson interval of the observed coverage must meet [0.93, 0.97]; with
  n = 800 that accepts observed coverage in about [0.91, 0.99], and it rejects 85 % intervals.

CIs use 999 bootstrap resamples, as an audit does by default (1000): percentile intervals from ~200
resamples are measurably too narrow (about 6 % non-coverage instead of 5 %), so a harness with fewer
rounds would measure the harness, not the audit. P-values are exact for any number of permutations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench._calibration import Rate, clopper_pearson, null_comparison_rates, null_gap_rates, planted_rates
from fairaudit.metrics import SliceReport

ALPHA = 0.05
MC_CONFIDENCE = 0.99


def _not_above_alpha(rate: Rate) -> bool:
    return clopper_pearson(rate.hits, rate.n, MC_CONFIDENCE)[0] <= ALPHA


def _meets(rate: Rate, low: float, high: float) -> bool:
    lo, hi = clopper_pearson(rate.hits, rate.n, MC_CONFIDENCE)
    return lo <= high and hi >= low


def _ndcg_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """Zero-inflated and skewed, like per-user NDCG@10: most users have no hit."""
    return np.where(rng.random(n) < 0.6, 0.0, rng.beta(2, 5, n))


@pytest.fixture(scope="module")
def users():
    rng = np.random.default_rng(2026)
    n = 400
    index = pd.Index([f"u{i}" for i in range(n)])
    values = pd.DataFrame({"ndcg": _ndcg_like(rng, n), "hit_rate": (rng.random(n) < 0.4).astype(float)}, index=index)
    gender = pd.Series(rng.choice(["F", "M"], n, p=[0.3, 0.7]), index=index)
    age = pd.Series(rng.choice(["young", "mid", "old"], n, p=[0.3, 0.6, 0.1]), index=index)
    return values, gender, gender + "*" + age  # the intersection has 6 groups, some below 30 users


@pytest.mark.slow
def test_every_gap_test_kind_holds_its_false_positive_rate(users):
    values, gender, intersection = users
    rates = [
        *null_gap_rates(values, gender, reps=300, rounds=999, seed=1, name="two groups"),
        *null_gap_rates(values, intersection, reps=300, rounds=999, seed=2, name="intersection"),
    ]
    assert all(r.n == 300 for r in rates)
    failing = [r.row() for r in rates if not _not_above_alpha(r)]
    assert not failing, failing


def test_the_harness_catches_the_old_one_tailed_vs_best_statistic(users):
    """The pre-issue-14 statistic (``mean_g - max_h mean_h``, always <= 0 under permutation) is ~2 alpha."""
    values, gender, _ = users
    rates = {r.kind: r for r in null_gap_rates(values, gender, reps=400, rounds=199, seed=3, legacy=True)}
    assert _not_above_alpha(rates["vs best"])
    assert not _not_above_alpha(rates["vs best (legacy one-tailed)"]), rates["vs best (legacy one-tailed)"].row()


@pytest.mark.slow
def test_model_comparisons_and_sweep_improvements_hold_their_false_positive_rate(users):
    """B is A up to a per-user coin flip; the second model is unrelated per user (the hardest case for
    the sweep: choosing the tracked group on A's gap alone then makes B look better by chance)."""
    values, _, _ = users
    rng = np.random.default_rng(9)
    other = pd.DataFrame({"ndcg": _ndcg_like(rng, len(values)), "hit_rate": values["hit_rate"]}, index=values.index)
    six = pd.Series(rng.choice(list("abcdef"), len(values)), index=values.index)  # ~67 users per group
    rates = {r.kind: r for r in null_comparison_rates(values, other, six, reps=300, rounds=999, seed=4)}
    assert all(r.n == 300 for r in rates.values())
    legacy = rates.pop("sweep improvement (legacy: largest reference gap)")
    failing = [r.row() for r in rates.values() if not _not_above_alpha(r)]
    assert not failing, failing
    assert not _not_above_alpha(legacy), legacy.row()


@pytest.mark.slow
def test_bootstrap_intervals_cover_planted_gaps():
    rng = np.random.default_rng(5)
    pool = _ndcg_like(rng, 20_000)
    result = planted_rates(pool, (200, 600), -0.04, reps=800, rounds=999, seed=6, power=False)
    assert _meets(result["coverage"], 0.93, 0.97), result["coverage"].row()
    assert _meets(result["mean_coverage"], 0.93, 0.97), result["mean_coverage"].row()
    # the same check rejects intervals that are too narrow (85 % intervals called 95 %)
    narrow = planted_rates(pool, (200, 600), -0.04, reps=300, rounds=999, seed=7, alpha=0.15, power=False)
    assert not _meets(narrow["coverage"], 0.93, 0.97), narrow["coverage"].row()


@pytest.mark.slow
def test_power_at_the_reported_minimum_detectable_gap_is_about_80_percent():
    """``mdg`` is a normal approximation; the power measured at it must lie in [0.7, 0.9]."""
    rng = np.random.default_rng(8)
    pool = _ndcg_like(rng, 20_000)
    result = planted_rates(pool, (80, 400), 0.0, reps=400, rounds=999, seed=9, mdg_delta=True)
    assert _meets(result["power"], 0.7, 0.9), (result["delta"], result["power"].row())
    smaller = planted_rates(pool, (80, 400), result["delta"] / 2, reps=200, rounds=199, seed=10)
    assert smaller["power"].rate < 0.5  # half the mdg is mostly missed: "too small to tell"


def test_two_group_attribute_rest_and_best_agree_on_null_data(users):
    values, gender, _ = users
    report = SliceReport(values, gender, rounds=199, seed=11)
    rest = report.gaps("rest").set_index(["group", "metric"])["p_value"]
    best = report.gaps("best").set_index(["group", "metric"])["p_value"]
    assert (best == rest.loc[best.index]).all()
