"""Group statistics: bootstrap confidence intervals, permutation-test gaps, Benjamini-Hochberg.

:class:`SliceReport` is the one object behind every group figure: per-user metric values plus a
user -> group labelling in, a tidy ``by_group`` table and ``gaps(reference=...)`` out.
Resampling is vectorised: count matrices (rounds x users) times the per-user metric matrix,
chunked so memory stays bounded by :data:`CHUNK_ELEMENTS` whatever the number of users.
"""

from __future__ import annotations

import functools
import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fairaudit._choices import DEFAULT_ROUNDS, MIN_GROUP_SIZE

Reference = Literal["rest", "best"]
REFERENCES: tuple[str, ...] = ("rest", "best")
#: Most entries of one resampling matrix held at a time (about 32 MB of float64).
CHUNK_ELEMENTS = 4_000_000

_BAD_REFERENCE = "Unknown gap reference '{0}'; expected one of {1}"
_NOT_ALIGNED = "Group labels must cover every user of the metric frame; {0} user(s) have no group"
_BAD_ROUNDS = "rounds must be a positive integer, got {0}"

GAP_COLUMNS = (
    "group", "reference", "reference_group", "metric", "difference", "ratio", "ci_low", "ci_high", "p_value", "mdg",
)  # fmt: skip
#: Power at which ``mdg`` (minimum detectable gap) is computed.
MDG_POWER = 0.8


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (step-up FDR control); NaNs stay NaN and are not counted.

    ``p_adj(i) = min_{j >= i} min(1, m p_(j) / j)`` over the ``m`` non-NaN p-values sorted ascending
    (Benjamini & Hochberg 1995; equals ``statsmodels.stats.multitest.multipletests(method="fdr_bh")``).

    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.2, np.nan])).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.2, nan]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if valid.size == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    scaled = p[order] * m / np.arange(1, m + 1)
    out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out


def seeded_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the strings ``keys`` (CRC32), not on call order.

    >>> int(seeded_rng(0, "gender").integers(100)) == int(seeded_rng(0, "gender").integers(100))
    True
    """
    return np.random.default_rng([int(seed), *(zlib.crc32(k.encode()) for k in keys)])


def _chunks(total: int, width: int) -> list[tuple[int, int]]:
    step = max(1, CHUNK_ELEMENTS // max(width, 1))
    return [(lo, min(lo + step, total)) for lo in range(0, total, step)]


def bootstrap_counts(n: int, rounds: int, rng: np.random.Generator) -> Iterator[tuple[slice, np.ndarray]]:
    """Bootstrap resamples of ``n`` rows as multinomial count matrices, in chunks of rounds.

    Yields ``(rounds_slice, counts)`` with ``counts[r, i]`` = times row ``i`` is drawn in round
    ``r`` (each row of ``counts`` sums to ``n``); chunks hold at most :data:`CHUNK_ELEMENTS` entries.

    >>> [c.sum(axis=1).tolist() for _, c in bootstrap_counts(4, 3, np.random.default_rng(0))]
    [[4.0, 4.0, 4.0]]
    """
    for lo, hi in _chunks(rounds, n):
        draws = rng.integers(0, n, size=(hi - lo, n))
        flat = (draws + n * np.arange(hi - lo)[:, None]).ravel()
        yield slice(lo, hi), np.bincount(flat, minlength=(hi - lo) * n).reshape(hi - lo, n).astype(float)


def bootstrap_sums(
    values: np.ndarray, defined: np.ndarray, rounds: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of defined values over ``rounds`` bootstrap resamples of the rows.

    With the count matrix ``W`` of :func:`bootstrap_counts`, sums are ``W @ values`` and counts
    ``W @ defined``. ``values`` must hold 0 where ``defined`` is False.

    >>> s, c = bootstrap_sums(np.ones((5, 1)), np.ones((5, 1)), 3, np.random.default_rng(0))
    >>> s.ravel().tolist(), c.ravel().tolist()
    ([5.0, 5.0, 5.0], [5.0, 5.0, 5.0])
    """
    n, m = values.shape
    both = np.hstack([values, defined.astype(float)])
    out = np.empty((rounds, 2 * m))
    for rows, counts in bootstrap_counts(n, rounds, rng):
        out[rows] = counts @ both
    return out[:, :m], out[:, m:]


def permutation_sums(
    values: np.ndarray, defined: np.ndarray, labels: np.ndarray, n_labels: int, rounds: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per-label sums and counts under ``rounds`` random permutations of ``labels``.

    Returns arrays of shape (rounds, n_labels, m). Each round shuffles the labels over the rows
    (group sizes fixed) and aggregates with one sparse (round*label x row) indicator product.

    >>> s, c = permutation_sums(np.ones((4, 1)), np.ones((4, 1)), np.array([0, 0, 1, 1]), 2, 2,
    ...                         np.random.default_rng(0))
    >>> s[:, :, 0].tolist()
    [[2.0, 2.0], [2.0, 2.0]]
    """
    n, m = values.shape
    both = np.hstack([values, defined.astype(float)])
    out = np.empty((rounds, n_labels, 2 * m))
    for lo, hi in _chunks(rounds, n):
        c = hi - lo
        if n_labels == 2:
            # Two groups: label 1 goes to the n1 rows with the smallest iid random keys (a uniform
            # random subset), found by partition; label 0 gets the remainder.
            n1 = int((labels == 1).sum())
            keys = rng.random((c, n))
            cut = np.partition(keys, n1 - 1, axis=1)[:, n1 - 1 : n1] if n1 else np.full((c, 1), -1.0)
            ones = (keys <= cut).astype(float) @ both
            out[lo:hi] = np.stack([both.sum(axis=0) - ones, ones], axis=1)
            continue
        shuffled = rng.permuted(np.broadcast_to(labels, (c, n)), axis=1)
        # Column i (a row of the data) has one entry per round: CSC built directly, no sorting.
        rows = (shuffled + n_labels * np.arange(c)[:, None]).T.ravel()
        indicator = sp.csc_matrix((np.ones(rows.size), rows, np.arange(0, c * n + 1, c)), shape=(c * n_labels, n))
        out[lo:hi] = (indicator @ both).reshape(c, n_labels, 2 * m)
    return out[..., :m], out[..., m:]


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _p_value(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Two-sided Monte-Carlo p-value ``(1 + #{|T*| >= |T|}) / (1 + R)`` (Phipson & Smyth 2010)."""
    extreme = np.abs(null) >= np.abs(observed) * (1 - 1e-12) - 1e-15
    p = (1.0 + extreme.sum(axis=0)) / (1.0 + null.shape[0])
    return np.where(np.isnan(observed), np.nan, p)


def _critical(null: np.ndarray, alpha: float) -> np.ndarray:
    """``1 - alpha`` quantile of ``|null|`` over the rounds axis (0); NaN where no round is defined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(np.abs(null), 1 - alpha, axis=0)


def _min_detectable(critical: np.ndarray, replicates: np.ndarray, axis: int) -> np.ndarray:
    """``critical + z_power * sd(replicates)``: the gap the test detects with probability :data:`MDG_POWER`."""
    from scipy.stats import norm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.nanstd(replicates, axis=axis, ddof=1)
    return critical + norm.ppf(MDG_POWER) * se


@dataclass
class _Replicates:
    sums: np.ndarray  # (groups, rounds, metrics)
    counts: np.ndarray


class SliceReport:
    """Per-group means with bootstrap CIs, and gaps with permutation p-values, for one user attribute.

    Parameters
    ----------
    user_metrics : DataFrame
        One row per user (index ``user_id``), one float column per metric; NaN = undefined
        for that user (left out of that metric's mean).
    groups : Series
        ``user_id -> group`` label for every user of ``user_metrics``.
    rounds : int
        Bootstrap resamples and permutations (default 1000).
    seed : int
        Resampling depends only on ``seed``, ``key`` and the group labels, so two models audited
        on the same users get identical resamples (paired comparisons) and reruns are exact.
    key : str
        Name mixed into the seed (the attribute name).
    confidence : float
        Level of the percentile bootstrap intervals.
    min_group_size : int
        Groups with fewer users defining a metric are ``flagged`` and skipped in gap tests
        (as group and as best-group candidate) unless ``include_small_groups``.
    higher_is_better : Mapping
        Metric -> direction used to pick the ``best`` reference group (default: higher).

    Examples
    --------
    >>> users = pd.Index([f"u{i}" for i in range(60)])
    >>> values = pd.DataFrame({"ndcg": np.r_[np.full(30, 0.2), np.full(30, 0.4)]}, index=users)
    >>> report = SliceReport(values, pd.Series(["F"] * 30 + ["M"] * 30, index=users), rounds=50)
    >>> report.by_group[["group", "value", "n_users"]].round(6).values.tolist()
    [['F', 0.2, 30], ['M', 0.4, 30]]
    >>> round(float(report.gaps("rest")["difference"].iloc[0]), 3)
    -0.2
    """

    def __init__(
        self,
        user_metrics: pd.DataFrame,
        groups: pd.Series,
        *,
        rounds: int = DEFAULT_ROUNDS,
        seed: int = 0,
        key: str = "",
        confidence: float = 0.95,
        min_group_size: int = MIN_GROUP_SIZE,
        include_small_groups: bool = False,
        higher_is_better: Mapping[str, bool] | None = None,
    ) -> None:
        if int(rounds) != rounds or rounds < 1:
            raise ValueError(_BAD_ROUNDS.format(rounds))
        labels = groups.reindex(user_metrics.index)
        if labels.isna().any():
            raise ValueError(_NOT_ALIGNED.format(int(labels.isna().sum())))
        self.metrics = list(user_metrics.columns)
        self.rounds, self.seed, self.key = int(rounds), seed, key
        self.confidence = confidence
        self.min_group_size, self.include_small_groups = min_group_size, include_small_groups
        self.higher_is_better = dict(higher_is_better or {})
        raw = user_metrics.to_numpy(dtype=float)
        self._defined = ~np.isnan(raw)
        self._values = np.where(self._defined, raw, 0.0)
        self.group_names, self._codes = _factorize(labels.astype(str))
        n = len(self._codes)
        members = sp.csr_matrix((np.ones(n), (self._codes, np.arange(n))), shape=(len(self.group_names), n))
        self._sums = members @ self._values
        self._counts = members @ self._defined.astype(float)
        self._replicates = self._bootstrap()

    # ---- estimates -------------------------------------------------------------------------
    @property
    def means(self) -> np.ndarray:
        """Group x metric means over users with a defined value."""
        return _divide(self._sums, self._counts)

    @property
    def small(self) -> np.ndarray:
        """Group x metric mask of too-small groups (fewer than ``min_group_size`` users)."""
        return self._counts < self.min_group_size

    def _bootstrap(self) -> _Replicates:
        shape = (len(self.group_names), self.rounds, len(self.metrics))
        sums, counts = np.empty(shape), np.empty(shape)
        for g, name in enumerate(self.group_names):
            rows = self._codes == g
            rng = seeded_rng(self.seed, self.key, "bootstrap", name)
            sums[g], counts[g] = bootstrap_sums(self._values[rows], self._defined[rows], self.rounds, rng)
        return _Replicates(sums, counts)

    @property
    def by_group(self) -> pd.DataFrame:
        """Tidy ``group, metric, value, ci_low, ci_high, n_users, flagged`` (one row per group x metric)."""
        low, high = _quiet_quantiles(_divide(self._replicates.sums, self._replicates.counts), self.confidence)
        n_groups, n_metrics = len(self.group_names), len(self.metrics)
        return pd.DataFrame(
            {
                "group": np.repeat(self.group_names, n_metrics),
                "metric": np.tile(self.metrics, n_groups),
                "value": self.means.ravel(),
                "ci_low": low.ravel(),
                "ci_high": high.ravel(),
                "n_users": self._counts.ravel().astype(int),
                "flagged": self.small.ravel(),
            }
        )

    # ---- gaps ------------------------------------------------------------------------------
    def _testable(self) -> np.ndarray:
        return ~self.small if not self.include_small_groups else self._counts > 0

    def best_groups(self) -> np.ndarray:
        """Index of the best testable group per metric (-1 where no group qualifies)."""
        sign = np.array([1.0 if self.higher_is_better.get(m, True) else -1.0 for m in self.metrics])
        score = np.where(self._testable() & ~np.isnan(self.means), self.means * sign, -np.inf)
        best = np.argmax(score, axis=0)
        return np.where(np.isfinite(score.max(axis=0)), best, -1)

    def gaps(self, reference: Reference = "rest") -> pd.DataFrame:
        """Gap of each testable group against ``"rest"`` (all other users) or ``"best"`` (best group).

        ``difference = mean(group) - mean(reference)``, ``ratio = mean(group) / mean(reference)``;
        ``ci_low/ci_high``: percentile bootstrap interval of the difference (group and reference
        resampled within their own groups). ``p_value``: permutation test, group labels shuffled
        over all users of the attribute (group sizes fixed), Monte-Carlo p-value
        ``(1 + #{T* >= T}) / (1 + R)`` (Phipson & Smyth 2010):

        - ``"rest"``: ``T = |mean_g - mean_rest|`` against its own permutation distribution.
        - ``"best"``: ``T = |mean_g - mean_best|`` against the permutation distribution of the
          **range** of the testable group means, ``max_{a,b} |mean*_a - mean*_b|`` (a max-T /
          Tukey-HSD-type statistic). The best group is chosen on the data, so the difference to it
          is a maximum over pairs; the range is the same maximum under the null, so
          ``P(p <= alpha) <= alpha`` for every row and, under the complete null, for the worst
          group's row (the largest pairwise difference) too. Testing against a fixed,
          data-selected best group, or ``mean_g - max_h mean_h`` with one tail, is
          anti-conservative (about ``2 alpha`` with two groups). With two testable groups the
          range is ``|mean*_1 - mean*_0|``, exactly the vs-rest statistic on the same
          permutations, so both references give identical p-values.

        ``mdg``: minimum detectable gap at 80 % power for this test at level ``1 - confidence``
        (unadjusted): ``c + z_0.8 se``, ``c`` = the ``1 - alpha`` quantile of the test's own
        permutation null, ``se`` = bootstrap standard deviation of the difference (normal
        approximation of the statistic under the alternative). The best group itself gets no
        ``best`` row. Columns :data:`GAP_COLUMNS`.
        """
        if reference not in REFERENCES:
            raise ValueError(_BAD_REFERENCE.format(reference, REFERENCES))
        if len(self.group_names) < 2 or not self._testable().any():
            return _empty_gaps()
        return self._rest_gaps() if reference == "rest" else self._best_gaps()

    @functools.cached_property
    def _null(self) -> _Replicates:
        """Group sums and counts under label permutation, shape (rounds, groups, metrics)."""
        rng = seeded_rng(self.seed, self.key, "permutation")
        return _Replicates(
            *permutation_sums(self._values, self._defined, self._codes, len(self.group_names), self.rounds, rng)
        )

    def _rest_gaps(self) -> pd.DataFrame:
        g_idx, m_idx = np.nonzero(self._testable())
        rest = _divide(self._sums.sum(axis=0) - self._sums, self._counts.sum(axis=0) - self._counts)
        reps = self._replicates
        rep_rest = _divide(reps.sums.sum(axis=0) - reps.sums, reps.counts.sum(axis=0) - reps.counts)
        rep_diff = _divide(reps.sums, reps.counts) - rep_rest
        low, high = _quiet_quantiles(rep_diff, self.confidence)
        null = self._null
        null_rest = _divide(null.sums.sum(axis=1, keepdims=True) - null.sums,
                            null.counts.sum(axis=1, keepdims=True) - null.counts)  # fmt: skip
        null_diff = _divide(null.sums, null.counts) - null_rest  # (rounds, groups, metrics)
        p = _p_value(self.means - rest, null_diff)
        mdg = _min_detectable(_critical(null_diff, 1 - self.confidence), rep_diff, axis=1)
        refs = np.full(g_idx.size, "rest", dtype=object)
        return self._gap_frame(
            "rest", g_idx, m_idx, refs, self.means - rest, _divide(self.means, rest), low, high, p, mdg
        )

    def _best_gaps(self) -> pd.DataFrame:
        best = self.best_groups()
        testable = self._testable()
        g_idx, m_idx = np.nonzero(testable & (np.arange(len(self.group_names))[:, None] != best[None, :]) & (best >= 0))
        b_idx = best[m_idx]
        means = self.means
        diff = np.full(means.shape, np.nan)
        diff[g_idx, m_idx] = means[g_idx, m_idx] - means[b_idx, m_idx]
        ratio = np.full(means.shape, np.nan)
        ratio[g_idx, m_idx] = _divide(means[g_idx, m_idx], means[b_idx, m_idx])
        reps = _divide(self._replicates.sums, self._replicates.counts)
        low, high, mdg = (np.full(means.shape, np.nan) for _ in range(3))
        rep_diff = reps[g_idx, :, m_idx] - reps[b_idx, :, m_idx]  # (rows, rounds)
        low[g_idx, m_idx], high[g_idx, m_idx] = _quiet_quantiles(rep_diff, self.confidence, axis=1)
        null_range = self._null_range()  # (rounds, metrics)
        p = _p_value(diff, null_range[:, None, :])
        mdg[g_idx, m_idx] = _min_detectable(_critical(null_range, 1 - self.confidence)[m_idx], rep_diff, axis=1)
        refs = np.full(means.shape, "", dtype=object)
        refs[g_idx, m_idx] = self.group_names[b_idx]
        return self._gap_frame("best", g_idx, m_idx, refs[g_idx, m_idx], diff, ratio, low, high, p, mdg)

    def _null_range(self) -> np.ndarray:
        """Largest pairwise difference of testable group means in every permutation, (rounds, metrics).

        Groups are those testable on the observed data (the same set the best group is chosen
        from); a group whose mean is undefined in a permutation is left out of that round.
        """
        null = _divide(self._null.sums, self._null.counts)
        usable = self._testable()[None] & ~np.isnan(null)
        with np.errstate(invalid="ignore"):
            top = np.where(usable, null, -np.inf).max(axis=1)
            bottom = np.where(usable, null, np.inf).min(axis=1)
            spread = top - bottom
        return np.where(usable.sum(axis=1) >= 2, spread, np.nan)

    def _gap_frame(self, reference, g_idx, m_idx, ref_groups, diff, ratio, low, high, p, mdg) -> pd.DataFrame:
        pick = (g_idx, m_idx)
        return pd.DataFrame(
            {
                "group": self.group_names[g_idx],
                "reference": reference,
                "reference_group": ref_groups,
                "metric": np.asarray(self.metrics, dtype=object)[m_idx],
                "difference": diff[pick],
                "ratio": ratio[pick],
                "ci_low": low[pick],
                "ci_high": high[pick],
                "p_value": p[pick],
                "mdg": mdg[pick],
            }
        )


def _factorize(labels: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    names = np.sort(labels.unique()).astype(object)
    return names, pd.Index(names).get_indexer(labels)


def _quiet_quantiles(replicates: np.ndarray, confidence: float, axis: int = -2) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the rounds axis; all-NaN slices give NaN without a warning."""
    tail = (1 - confidence) / 2
    quantile = np.nanquantile if np.isnan(replicates).any() else np.quantile  # nanquantile is slow
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = quantile(replicates, [tail, 1 - tail], axis=axis)
    return low, high


def _empty_gaps() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("group", "reference", "reference_group", "metric") else float)
                         for c in GAP_COLUMNS})  # fmt: skip
