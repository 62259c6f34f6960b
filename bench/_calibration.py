"""Calibration harness of FairAudit's statistics: false-positive rates on null data, CI coverage and
power on planted effects (shared by ``bench/bench_statistics.py`` and ``tests/test_statistics_calibration.py``).

Every simulation works on **per-user metric frames** (users x metrics, as ``user_metrics.parquet``
holds them) and calls the package's own statistics — :class:`fairaudit.metrics.SliceReport` for the
gap tests and CIs, :func:`fairaudit.compare.compare_models` for model comparisons and sweep
improvements — so what is measured is what an audit prints.

- **Null audits** shuffle the attribute labels among users (group sizes fixed), so no group differs
  from any other in distribution. One replicate contributes one Bernoulli trial per test kind, so the
  binomial (Clopper-Pearson) interval of the rate is honest (tests within one replicate are
  correlated and are not counted as separate trials):

  - ``vs rest``: a pre-specified group (the first testable group) vs the rest, first metric;
  - ``vs best``: *any* group of the attribute vs the best group, first metric (the strongest
    claim: under the complete null it is the worst group's row, the largest pairwise difference);
  - ``vs best (legacy one-tailed)``: the statistic used before issue 14, ``mean_g - max_h mean_h``
    with the two-sided formula, kept only to show that the harness catches an anti-conservative test;
  - ``... after BH``: any gap of the replicate's family (every group, metric and both references)
    with ``p_adjusted < alpha`` — under a complete null the FDR equals this family-wise rate;
  - ``CI excludes 0``: the bootstrap CI of the pre-specified vs-rest gap misses the true gap 0.
- **Model comparisons** use two models' paired per-user values; the null swaps A and B per user
  with probability 1/2 (so B - A is symmetric around 0 for every user) and shuffles the labels:
  ``comparison`` = the overall paired-bootstrap CI of B - A excludes 0; ``comparison gap`` = the CI
  of a pre-specified group's gap change excludes 0; ``sweep improvement`` = the sweep's claim that
  B narrows the gap of the tracked group (``fairaudit.sweep`` tracks the group furthest below the rest
  on the mean over the points), i.e. the CI of the directed gap change lies below 0; the legacy kind tracks the
  group with the largest reference gap ``|gap_A|``, as the sweep did before issue 14 (regression to the
  mean: B looks better than A by chance).
- **Planted effects** draw group members with replacement from a pool of per-user values and add a
  known shift ``delta`` to one group: coverage of the 95 % CI of the gap vs the rest (true gap =
  ``delta``) and of group means, power of the vs-rest test (unadjusted), and the power at
  ``delta = mdg`` (should be about 0.8 if ``mdg`` means what it says).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import beta

from fairaudit.audit import LOWER_IS_BETTER
from fairaudit.compare import compare_models
from fairaudit.metrics import MIN_GROUP_SIZE, SliceReport, benjamini_hochberg
from fairaudit.metrics._stats import _divide, _p_value


@dataclass(frozen=True)
class Rate:
    """``hits`` out of ``n`` Bernoulli trials, with a Clopper-Pearson interval."""

    kind: str
    hits: int
    n: int
    confidence: float = 0.95

    @property
    def rate(self) -> float:
        return self.hits / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return clopper_pearson(self.hits, self.n, self.confidence)

    def row(self) -> dict[str, object]:
        low, high = self.interval
        return {"kind": self.kind, "rate": self.rate, "ci_low": low, "ci_high": high, "hits": self.hits, "n": self.n}


def clopper_pearson(hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a rate.

    >>> [round(x, 4) for x in clopper_pearson(5, 100)]
    [0.0164, 0.1128]
    """
    tail = (1 - confidence) / 2
    low = 0.0 if hits == 0 else float(beta.ppf(tail, hits, n - hits + 1))
    high = 1.0 if hits == n else float(beta.ppf(1 - tail, hits + 1, n - hits))
    return low, high


def shuffled(labels: pd.Series, rng: np.random.Generator) -> pd.Series:
    """The same labels permuted among the same users (group sizes fixed): a null attribute."""
    return pd.Series(rng.permutation(labels.to_numpy()), index=labels.index, name=labels.name)


def legacy_best_p_values(report: SliceReport) -> np.ndarray:
    """Group x metric p-values of the pre-issue-14 "vs best" test: ``T = mean_g - max_h mean_h`` per
    permutation (always <= 0), compared two-sided with the observed gap — one tail of a direction
    chosen from the data, about twice the nominal rate with two groups. For the harness's negative
    control only."""
    testable = report._testable()
    sign = np.array([1.0 if report.higher_is_better.get(m, True) else -1.0 for m in report.metrics])
    null = _divide(report._null.sums, report._null.counts)
    score = np.where(testable[None] & ~np.isnan(null), null * sign, -np.inf)
    null_best = np.take_along_axis(null, score.argmax(axis=1)[:, None, :], axis=1)
    best = report.best_groups()
    observed = report.means - report.means[np.maximum(best, 0), np.arange(len(report.metrics))]
    return _p_value(observed, null - null_best)


def null_gap_rates(
    values: pd.DataFrame,
    labels: pd.Series,
    *,
    reps: int,
    rounds: int = 199,
    alpha: float = 0.05,
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    higher_is_better: Mapping[str, bool] | None = None,
    name: str = "",
    legacy: bool = False,
    make_report: Callable[..., SliceReport] = SliceReport,
) -> list[Rate]:
    """False-positive rates of the audit's gap tests on ``reps`` label-shuffled copies of ``labels``.

    Returns one :class:`Rate` per test kind (see the module docstring), named ``"<name>: <kind>"``.
    ``make_report`` builds the report from ``(values, labels, rounds=, seed=, key=, confidence=,
    min_group_size=, higher_is_better=)``: :class:`SliceReport` (the pandas engine) or another engine's.
    """
    rng = np.random.default_rng([seed, 14])
    hits = dict.fromkeys(["vs rest", "vs rest CI excludes 0", "vs best", "vs rest+best after BH"], 0)
    if legacy:
        hits["vs best (legacy one-tailed)"] = 0
    n = 0
    for rep in range(reps):
        report = make_report(
            values, shuffled(labels, rng), rounds=rounds, seed=seed * 100_003 + rep, key="null",
            confidence=1 - alpha, min_group_size=min_group_size, higher_is_better=higher_is_better,
        )  # fmt: skip
        rest, best = report.gaps("rest"), report.gaps("best")
        if rest.empty:
            continue
        n += 1
        first = rest[(rest["group"] == rest["group"].iloc[0]) & (rest["metric"] == report.metrics[0])].iloc[0]
        hits["vs rest"] += bool(first["p_value"] < alpha)
        hits["vs rest CI excludes 0"] += bool(first["ci_low"] > 0 or first["ci_high"] < 0)
        hits["vs best"] += bool((best.loc[best["metric"] == report.metrics[0], "p_value"] < alpha).any())
        family = np.concatenate([rest["p_value"].to_numpy(), best["p_value"].to_numpy()])
        hits["vs rest+best after BH"] += bool((benjamini_hochberg(family) < alpha).any())
        if legacy:
            old = legacy_best_p_values(report)[:, 0]
            rows = np.flatnonzero(report._testable()[:, 0] & (np.arange(len(old)) != report.best_groups()[0]))
            hits["vs best (legacy one-tailed)"] += bool((old[rows] < alpha).any())
    return [Rate(f"{name}: {kind}" if name else kind, count, n) for kind, count in hits.items()]


def null_comparison_rates(
    a: pd.DataFrame,
    b: pd.DataFrame,
    labels: pd.Series,
    *,
    reps: int,
    rounds: int = 199,
    alpha: float = 0.05,
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    name: str = "",
) -> list[Rate]:
    """False-positive rates of :func:`fairaudit.compare.compare_models` (and of the sweep's improvement
    claim) when model B is model A up to a per-user coin flip of which value is whose.

    ``a``, ``b``: per-user metric frames of two models on the same users (same index and columns).
    """
    rng = np.random.default_rng([seed, 15])
    metric = a.columns[0]
    kinds = ["comparison: overall", "comparison: group gap change", "sweep improvement (largest gap)",
             "sweep improvement (legacy: largest reference gap)"]
    hits, n = dict.fromkeys(kinds, 0), 0
    users = a.index.astype(str)
    for rep in range(reps):
        swap = rng.random(len(users))[:, None] < 0.5
        va, vb = np.where(swap, b.to_numpy(), a.to_numpy()), np.where(swap, a.to_numpy(), b.to_numpy())
        frame = pd.concat([
            pd.DataFrame(va, columns=a.columns).assign(model="A", user_id=users),
            pd.DataFrame(vb, columns=a.columns).assign(model="B", user_id=users),
        ], ignore_index=True)  # fmt: skip
        groups = shuffled(labels.reindex(a.index), rng)
        groups.index = users
        table = compare_models(frame, model_a="A", model_b="B", groups={"g": groups}, metrics=[metric],
                               rounds=rounds, seed=seed * 100_003 + rep, confidence=1 - alpha,
                               min_group_size=min_group_size)  # fmt: skip
        gap = table[table["quantity"] == "gap"]
        if gap.empty:
            continue
        n += 1
        overall = table[(table["attribute"] == "all") & (table["quantity"] == "value")].iloc[0]
        hits["comparison: overall"] += bool(overall["significant"])
        hits["comparison: group gap change"] += bool(gap.iloc[0]["significant"])
        directed = table[table["quantity"] == "directed_gap"].reset_index(drop=True)
        # fairaudit.sweep tracks the group furthest below the rest on the mean over the points (gap_A + gap_B)
        mean_gap = (gap["a"] + gap["b"]).to_numpy() * (-1.0 if metric in LOWER_IS_BETTER else 1.0)
        tracked = directed.iloc[int(np.argmin(mean_gap))]
        hits["sweep improvement (largest gap)"] += bool(tracked["ci_high"] < 0)
        legacy = directed.iloc[int(np.argmax(directed["a"].to_numpy()))]  # before issue 14: largest |gap_A|
        hits["sweep improvement (legacy: largest reference gap)"] += bool(legacy["ci_high"] < 0)
    return [Rate(f"{name}: {kind}" if name else kind, count, n) for kind, count in hits.items()]


def planted_draw(
    pool: np.ndarray, sizes: Sequence[int], delta: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.Series]:
    """Groups ``g0, g1, ...`` of the given sizes drawn with replacement from ``pool``; ``g0`` shifted by ``delta``.

    Every other group has the pool's distribution, so ``g0``'s true gap vs the rest (and vs any other
    group) is exactly ``delta`` and every group's true mean is known.
    """
    labels = np.repeat([f"g{i}" for i in range(len(sizes))], sizes)
    values = rng.choice(pool, size=labels.size)
    values[labels == "g0"] += delta
    index = pd.Index([f"u{i}" for i in range(labels.size)])
    return pd.DataFrame({"metric": values}, index=index), pd.Series(labels, index=index)


def planted_rates(
    pool: np.ndarray,
    sizes: Sequence[int],
    delta: float,
    *,
    reps: int,
    rounds: int = 199,
    alpha: float = 0.05,
    seed: int = 0,
    mdg_delta: bool = False,
    power: bool = True,
) -> dict[str, object]:
    """Coverage of the gap and group-mean CIs, power of the vs-rest test, mean ``mdg``, on planted data.

    With ``mdg_delta=True`` the planted shift is the ``mdg`` the audit reports for this design (measured
    on a pilot draw without a shift), so ``power`` estimates the power at the minimum detectable gap.
    With ``power=False`` no permutation test is run (coverage only, about half the time): the gap CI is
    then taken from the report's bootstrap replicates exactly as ``SliceReport.gaps("rest")`` forms it.
    """
    rng = np.random.default_rng([seed, 16, *sizes])
    pool = np.asarray(pool, dtype=float)
    if mdg_delta:  # the mdg an audit of this design reports, averaged over 10 pilot audits without a shift
        pilots = []
        for pilot in range(10):
            pilot_values, pilot_labels = planted_draw(pool, sizes, 0.0, rng)
            report = SliceReport(pilot_values, pilot_labels, rounds=rounds, seed=seed + pilot, confidence=1 - alpha,
                                 min_group_size=1)  # fmt: skip
            pilots.append(float(report.gaps("rest").query("group == 'g0'")["mdg"].iloc[0]))
        delta = float(np.mean(pilots))
    true_mean = pool.mean()
    covered = mean_covered = rejected = 0
    mdg = []
    for rep in range(reps):
        values, labels = planted_draw(pool, sizes, delta, rng)
        report = SliceReport(values, labels, rounds=rounds, seed=seed * 100_003 + rep, confidence=1 - alpha,
                             min_group_size=1)  # fmt: skip
        if power:
            row = report.gaps("rest").query("group == 'g0'").iloc[0]
            low, high = row["ci_low"], row["ci_high"]
            rejected += bool(row["p_value"] < alpha)
            mdg.append(row["mdg"])
        else:  # g0 vs the rest: group replicate minus the pooled replicate of the other groups
            reps_ = report._replicates
            g0 = list(report.group_names).index("g0")
            rest = np.delete(np.arange(len(report.group_names)), g0)
            diff = (_divide(reps_.sums[g0], reps_.counts[g0])
                    - _divide(reps_.sums[rest].sum(axis=0), reps_.counts[rest].sum(axis=0)))[:, 0]  # fmt: skip
            low, high = np.quantile(diff, [alpha / 2, 1 - alpha / 2])
        covered += bool(low <= delta <= high)
        g1 = report.by_group.query("group == 'g1'").iloc[0]
        mean_covered += bool(g1["ci_low"] <= true_mean <= g1["ci_high"])
    return {
        "sizes": tuple(int(s) for s in sizes), "delta": delta, "coverage": Rate("gap CI coverage", covered, reps),
        "mean_coverage": Rate("group mean CI coverage", mean_covered, reps), "power": Rate("power", rejected, reps),
        "mdg": float(np.mean(mdg)) if mdg else float("nan"),
    }


def rates_frame(rates: Sequence[Rate]) -> pd.DataFrame:
    """One row per rate: ``kind, rate, ci_low, ci_high, hits, n``."""
    return pd.DataFrame([r.row() for r in rates])
