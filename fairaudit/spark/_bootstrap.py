"""The Poisson bootstrap of the Spark engine: per-user weights from a seeded hash, group sums, null-imposed gap tests.

Every user ``u`` gets, in bootstrap round ``r``, the weight ``w(u, r) ~ Poisson(1)`` drawn from a
counter-based generator: ``splitmix64(h(u) + (r + 1) * 0x9E3779B97F4A7C15)`` turned into a uniform
and inverted through the Poisson(1) CDF, where ``h(u)`` is Spark's ``xxhash64`` of the seed and the
user id. The weight depends on nothing but the seed, the user id and the round, so every partition
of the data computes the same weights (results do not depend on partitioning), every model gets the
same resample of users (paired), and every group statistic is a sum that Spark can add up across
executors: a group's bootstrap mean in round ``r`` is ``sum_u w(u, r) x_u / sum_u w(u, r)``.

This module is pure numpy (it runs inside Spark's Python workers); :mod:`fairaudit.spark._engine`
wires it into Spark.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from fairaudit.metrics import SliceReport
from fairaudit.metrics._stats import CHUNK_ELEMENTS, _Replicates

#: Golden-ratio increment of splitmix64 (Steele, Lea & Flood 2014), one step per bootstrap round.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: P(X <= j) of X ~ Poisson(1), j = 0..19 (the remaining mass, ~1e-19, maps to 20).
_POISSON_CDF = np.cumsum([math.exp(-1.0) / math.factorial(j) for j in range(20)])
#: Separator of the (spec, group) keys of :func:`group_partial_sums`.
KEY_SEP = "\x1f"


def poisson_weights(user_hash: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Poisson(1) bootstrap weights of users (rows) in rounds ``start..stop-1`` (columns).

    ``user_hash`` is a signed or unsigned 64-bit hash per user (Spark's ``xxhash64(seed, user_id)``).
    The same hash and round always give the same weight, wherever it is computed.

    >>> w = poisson_weights(np.array([1, 2, 3], dtype=np.int64), 0, 4000)
    >>> w.shape, bool(np.array_equal(w[:, 10:20], poisson_weights(np.array([1, 2, 3]), 10, 20)))
    ((3, 4000), True)
    >>> round(float(w.mean()), 1), round(float(w.var()), 1)
    (1.0, 1.0)
    """
    with np.errstate(over="ignore"):
        z = np.asarray(user_hash).astype(np.int64).view(np.uint64)[:, None] + (
            np.arange(start + 1, stop + 1, dtype=np.uint64)[None, :] * _GOLDEN
        )
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    uniform = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.searchsorted(_POISSON_CDF, uniform, side="right").astype(np.float64)


def _round_chunks(rounds: int, n: int) -> Iterator[tuple[int, int]]:
    step = max(1, CHUNK_ELEMENTS // max(n, 1))
    for lo in range(0, rounds, step):
        yield lo, min(lo + step, rounds)


def group_partial_sums(
    batches: Iterator[pd.DataFrame],
    *,
    metrics: Sequence[str],
    specs: Mapping[str, Sequence[str]],
    rounds: int,
) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: per (spec, group) sums and counts of every metric, observed and in every round.

    Each batch holds per-user rows: ``model``, ``user_hash``, the metric columns (NaN = undefined) and
    the plain attribute columns. ``specs`` maps each attribute spec (``"all"`` included, with no
    parts) to its plain columns (an intersection's groups join the values with ``*``). Yields one row
    per key ``model, spec, group`` (joined by :data:`KEY_SEP`) with ``data`` = float64 bytes of shape
    ``(rounds + 1, 2 m)``: row 0 the observed sums then counts, row ``1 + r`` those of bootstrap round
    ``r``. The partition's batches are added up first, so a partition yields each key once.
    """
    totals: dict[str, np.ndarray] = {}
    m = len(metrics)
    for batch in batches:
        if batch.empty:
            continue
        raw = batch[list(metrics)].to_numpy(dtype=float)
        defined = ~np.isnan(raw)
        both = np.hstack([np.where(defined, raw, 0.0), defined.astype(float)])
        hashes = batch["user_hash"].to_numpy(dtype=np.int64)
        models = batch["model"].astype(str).to_numpy(dtype=object) + KEY_SEP
        rows = {}
        for spec, parts in specs.items():
            values = np.full(len(batch), "all", dtype=object)
            if parts:
                values = batch[parts[0]].astype(str).to_numpy(dtype=object)
                for part in parts[1:]:
                    values = values + "*" + batch[part].astype(str).to_numpy(dtype=object)
            names, codes = np.unique((models + (spec + KEY_SEP) + values).astype(str), return_inverse=True)
            for g, key in enumerate(names.tolist()):
                rows[key] = np.flatnonzero(codes == g)
                if key not in totals:
                    totals[key] = np.zeros((rounds + 1, 2 * m))
                totals[key][0] += both[rows[key]].sum(axis=0)
        for lo, hi in _round_chunks(rounds, len(batch)):
            weights = poisson_weights(hashes, lo, hi)
            for key, idx in rows.items():
                totals[key][1 + lo : 1 + hi] += weights[idx].T @ both[idx]
    yield pd.DataFrame({"key": np.array(list(totals), dtype=object), "data": [v.tobytes() for v in totals.values()]})


def item_partial_counts(batches: Iterator[pd.DataFrame], *, rounds: int) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: how often each item was recommended, observed and in every bootstrap round.

    Batches hold one row per recommendation (``user_hash``, ``item_code``: the item's catalogue position,
    offset by ``model index x catalogue size`` when several models share the pass). Yields ``item_code`` and
    ``data`` = float64 bytes of length ``rounds + 1`` (observed count, then round ``r``'s weighted
    count), summed over the partition's batches.
    """
    totals: dict[int, np.ndarray] = {}
    for batch in batches:
        if batch.empty:
            continue
        hashes, rows = np.unique(batch["user_hash"].to_numpy(dtype=np.int64), return_inverse=True)
        items, cols = np.unique(batch["item_code"].to_numpy(dtype=np.int64), return_inverse=True)
        import scipy.sparse as sp

        shown = sp.csr_matrix((np.ones(len(batch)), (cols, rows)), shape=(len(items), len(hashes)))
        block = np.empty((len(items), rounds + 1))
        block[:, 0] = np.asarray(shown.sum(axis=1)).ravel()
        for lo, hi in _round_chunks(rounds, len(hashes)):
            block[:, 1 + lo : 1 + hi] = shown @ poisson_weights(hashes, lo, hi)
        for item, counts in zip(items.tolist(), block):
            if item in totals:
                totals[item] += counts
            else:
                totals[item] = counts.copy()
    yield pd.DataFrame({"item_code": list(totals), "data": [v.tobytes() for v in totals.values()]})


class PoissonSliceReport(SliceReport):
    """A :class:`~fairaudit.metrics.SliceReport` built from group sums instead of per-user rows.

    Same tables (``by_group``, ``gaps("rest")``, ``gaps("best")``) and the same estimates, from
    aggregates alone, so the driver never holds a user:

    - ``sums``/``counts`` (groups x metrics): observed sums and numbers of users defining each metric;
    - ``replicate_sums``/``replicate_counts`` (groups x rounds x metrics): the Poisson bootstrap.

    CIs are percentile intervals of the Poisson bootstrap. The gap tests are **null-imposed
    bootstrap tests** instead of permutation tests: each group's values are shifted to mean zero
    (so every group has the same mean, the null), the shifted data are resampled with the same
    weights, and the statistic's resampled values form its null distribution; in sums, the shifted
    group sum in round ``r`` is ``S*_g - mean_g C*_g``. ``"rest"`` compares ``|mean_g - mean_rest|``
    with that null, ``"best"`` with the null of the range of the testable group means (the same
    max-T construction as the permutation test's), and ``mdg`` is read off the same null.

    Examples
    --------
    >>> sums, counts = np.array([[6.0], [12.0]]), np.array([[30.0], [30.0]])
    >>> rng = np.random.default_rng(0)
    >>> w = rng.poisson(1.0, size=(2, 200, 1)).astype(float) * 30
    >>> report = PoissonSliceReport(["F", "M"], ["ndcg"], sums, counts, w * (sums / counts)[:, None, :], w)
    >>> report.by_group[["group", "value", "n_users"]].round(6).values.tolist()
    [['F', 0.2, 30], ['M', 0.4, 30]]
    """

    def __init__(
        self,
        group_names: Sequence[str],
        metrics: Sequence[str],
        sums: np.ndarray,
        counts: np.ndarray,
        replicate_sums: np.ndarray,
        replicate_counts: np.ndarray,
        *,
        confidence: float = 0.95,
        min_group_size: int = 30,
        include_small_groups: bool = False,
        higher_is_better: Mapping[str, bool] | None = None,
    ) -> None:
        self.metrics = list(metrics)
        self.rounds, self.seed, self.key = replicate_sums.shape[1], None, ""
        self.confidence = confidence
        self.min_group_size, self.include_small_groups = min_group_size, include_small_groups
        self.higher_is_better = dict(higher_is_better or {})
        self.group_names = np.asarray(group_names, dtype=object)
        self._sums, self._counts = np.asarray(sums, dtype=float), np.asarray(counts, dtype=float)
        self._replicates = _Replicates(np.asarray(replicate_sums, float), np.asarray(replicate_counts, float))

    @functools.cached_property
    def _null(self) -> _Replicates:  # type: ignore[override]
        """Group sums and counts of the mean-shifted data in every round, shape (rounds, groups, metrics)."""
        means = np.nan_to_num(self.means)
        shifted = self._replicates.sums - means[:, None, :] * self._replicates.counts
        return _Replicates(shifted.transpose(1, 0, 2), self._replicates.counts.transpose(1, 0, 2))
