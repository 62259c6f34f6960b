"""Statistics of one simulation round, and their pooling over repeated simulation seeds.

One round of one seed gives every user a top-K list, the clicks on it and the true relevance of the
listed items. :func:`round_statistics` turns these into the long rows of ``rounds.csv`` (per-user metrics
per user group, group gaps against the rest, exposure shares per item group, exposure Gini and coverage)
with percentile-bootstrap CIs over users, and keeps the bootstrap replicates. The resamples depend only
on the bootstrap seed, the attribute and the group (:func:`fairaudit.metrics.seeded_rng`), so round ``t``
and round 0 of the same run use the same resampled users: changes are paired. :func:`pool_seeds` then
combines seeds by a two-stage bootstrap (seeds drawn with replacement, then one user resample of each
drawn seed), so the pooled CI carries both the users' and the simulation's randomness.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fairaudit.metrics import METRICS, bootstrap_counts, position_weights, seeded_rng

#: Per-user metrics of a round (a user's value; NaN where undefined, e.g. logged NDCG without a click).
ROUND_USER_METRICS = ("ndcg_true", "ndcg_logged", "logged_minus_true", "clicks", "avg_popularity", "homogenisation")
#: Per-user metrics whose group gap (group minus the rest of the users) is tracked as ``gap:<metric>``.
GAP_METRICS = ("ndcg_true", "ndcg_logged", "logged_minus_true", "avg_popularity")
#: Catalogue metrics of a round (rows ``attribute = group = "all"``): the registry's, from recommendation counts.
CATALOGUE_METRICS = METRICS.names(level="catalogue")
#: Columns of ``rounds.csv``; ``seed`` is the simulation seed, or ``"all"`` for the rows pooled over seeds.
ROUND_COLUMNS = (
    "model", "round", "seed", "attribute", "group", "metric", "value", "ci_low", "ci_high", "n_users", "flagged",
)  # fmt: skip
ALL = "all"


def share_metric(item_attribute: str, item_group: str) -> str:
    """Name of the exposure-share metric of one item group, as the probes name exposure changes.

    >>> share_metric("provider", "indie")
    'exposure_share:provider=indie'
    """
    return f"exposure_share:{item_attribute}={item_group}"


@dataclass(frozen=True)
class RoundLists:
    """The lists of one round as arrays: ``items`` (users x K catalogue positions, -1 = empty slot),
    ``clicked`` (users x K bools) and ``relevance`` (users x K true relevance of the listed items)."""

    items: np.ndarray
    clicked: np.ndarray
    relevance: np.ndarray


def user_metrics(
    lists: RoundLists, ideal_dcg: np.ndarray, popularity: np.ndarray, n_items: int
) -> pd.DataFrame:
    """Per-user metrics of one round (columns :data:`ROUND_USER_METRICS`), one row per list, no loop over users.

    - ``ndcg_true``: DCG of the list with the true relevance as gains over ``ideal_dcg`` (the best
      DCG any list of unseen items could reach);
    - ``ndcg_logged``: what an offline evaluation on the log sees: binary gains = this round's clicks,
      ideal = all clicks on top (NaN for a user without a click);
    - ``logged_minus_true``: the difference, i.e. how much better the loop looks in its own log;
    - ``clicks``: clicks this round; ``avg_popularity``: mean reference-period interaction count of
      the listed items (popularity drift); ``homogenisation``: mean Jaccard similarity of the user's
      list with every other user's list (Chaney et al. 2018; its mean over users is the mean over pairs).

    >>> lists = RoundLists(np.array([[0, 1], [1, 2]]), np.array([[True, False], [False, False]]),
    ...                    np.array([[1.0, 0.0], [0.5, 0.5]]))
    >>> m = user_metrics(lists, np.array([1.0, 1.0]), np.array([3.0, 1.0, 0.0]), 3)
    >>> m["ndcg_logged"].tolist(), m["homogenisation"].round(3).tolist(), m["avg_popularity"].tolist()
    ([1.0, nan], [0.333, 0.333], [2.0, 0.5])
    """
    items, clicked = lists.items, lists.clicked
    valid = items >= 0
    discount = position_weights(np.arange(1, items.shape[1] + 1), browsing="dcg")
    dcg = (np.where(valid, lists.relevance, 0.0) * discount).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ndcg_true = np.where(ideal_dcg > 0, dcg / ideal_dcg, np.nan)
        n_clicks = clicked.sum(axis=1)
        ideal_clicks = np.cumsum(discount)[np.maximum(n_clicks - 1, 0)]
        ndcg_logged = np.where(n_clicks > 0, (clicked * discount).sum(axis=1) / ideal_clicks, np.nan)
        avg_pop = np.where(valid, popularity[np.maximum(items, 0)], 0.0).sum(axis=1) / valid.sum(axis=1)
    return pd.DataFrame(
        {
            "ndcg_true": ndcg_true,
            "ndcg_logged": ndcg_logged,
            "logged_minus_true": ndcg_logged - ndcg_true,
            "clicks": n_clicks.astype(float),
            "avg_popularity": avg_pop,
            "homogenisation": _mean_jaccard(shown_matrix(items, n_items)),
        }
    )


def shown_matrix(items: np.ndarray, n_items: int, weights: np.ndarray | None = None) -> sp.csr_matrix:
    """Users x catalogue matrix of the lists: 1 (or the rank's ``weights``) per listed item."""
    rows, cols = np.nonzero(items >= 0)
    data = np.ones(rows.size) if weights is None else weights[cols]
    return sp.csr_matrix((data, (rows, items[rows, cols])), shape=(items.shape[0], n_items))


def _mean_jaccard(shown: sp.csr_matrix) -> np.ndarray:
    """Per user, the mean Jaccard similarity of its list with each other user's list."""
    n = shown.shape[0]
    overlap = (shown @ shown.T).tocoo()
    sizes = np.asarray(shown.sum(axis=1)).ravel()
    off = overlap.row != overlap.col
    rows, cols, common = overlap.row[off], overlap.col[off], overlap.data[off]
    jaccard = common / (sizes[rows] + sizes[cols] - common)
    return np.bincount(rows, weights=jaccard, minlength=n) / max(n - 1, 1)


@dataclass(frozen=True)
class RoundInputs:
    """Everything :func:`round_statistics` reads besides the per-user metrics."""

    user_groups: dict[str, np.ndarray]  # attribute -> group label per user (list order)
    item_membership: pd.DataFrame  # catalogue x item groups (rows sum to 1), catalogue order
    item_attribute: str
    bootstrap: int
    seed: int
    min_group_size: int


def round_statistics(
    metrics: pd.DataFrame, lists: RoundLists, inputs: RoundInputs
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows ``attribute, group, metric, value, ci_low, ci_high, n_users, flagged`` and their replicates.

    For every user group (and ``all``): the mean of each per-user metric, the DCG-weighted exposure
    share of each item group in the group's lists, and, against the rest of the users, ``gap:<metric>``
    (the difference of means; group and rest resampled independently). For ``all`` also the registry's
    catalogue metrics (exposure Gini, catalogue coverage) of the recommendation counts. CIs are
    percentile bootstrap intervals over users; the replicates (rows x rounds) feed :func:`pool_seeds`.
    Groups smaller than ``min_group_size`` are ``flagged``. The Gini and coverage replicates are
    bias-shifted (see ``resample``), so their intervals are centred on the estimate.
    """
    n_items = len(inputs.item_membership)
    discount = position_weights(np.arange(1, lists.items.shape[1] + 1), browsing="dcg")
    exposure = shown_matrix(lists.items, n_items, discount)
    by_item_group = np.asarray(exposure @ inputs.item_membership.to_numpy(dtype=float))
    total = by_item_group.sum(axis=1, keepdims=True)
    shown = shown_matrix(lists.items, n_items)
    raw = metrics.to_numpy(dtype=float)
    defined = ~np.isnan(raw)
    values = np.where(defined, raw, 0.0)
    share_names = [share_metric(inputs.item_attribute, g) for g in inputs.item_membership.columns]
    gap_cols = [list(metrics.columns).index(m) for m in GAP_METRICS]

    def resample(mask: np.ndarray, *key: str, catalogue: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Point estimates and replicates (stats x rounds) of one set of users."""
        rows = np.flatnonzero(mask)
        blocks = [values[rows], defined[rows].astype(float), by_item_group[rows], total[rows]]
        full = [b.sum(axis=0)[None, :] for b in blocks]
        reps = [np.empty((inputs.bootstrap, b.shape[1])) for b in blocks]
        counts_rep = np.empty((inputs.bootstrap, n_items)) if catalogue else None
        for part, counts in bootstrap_counts(len(rows), inputs.bootstrap, seeded_rng(inputs.seed, *key)):
            for out, block in zip(reps, blocks):
                out[part] = counts @ block
            if catalogue:
                counts_rep[part] = np.asarray((shown[rows].T @ counts.T).T)
        stats = [_stats(*full), _stats(*reps)]
        if catalogue:
            item_counts = [np.asarray(shown[rows].sum(axis=0)), counts_rep]
            stats = [np.hstack([s, *(np.reshape(m.compute(c), (-1, 1)) for m in METRICS.where(level="catalogue"))])
                     for s, c in zip(stats, item_counts)]  # fmt: skip
        value, reps = stats[0][0], stats[1].T
        if catalogue:
            # Resampling users with replacement repeats lists: Gini is biased up and coverage down in
            # the replicates, so their intervals are shifted by the bootstrap bias (mean replicate - value).
            tail = slice(-len(CATALOGUE_METRICS), None)
            reps[tail] -= np.nanmean(reps[tail], axis=1, keepdims=True) - value[tail, None]
        return value, reps

    def _stats(sums, counts, group_exposure, totals):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.hstack([np.where(counts > 0, sums / counts, np.nan), group_exposure / totals])

    frames, replicates = [], []
    everyone = np.ones(len(metrics), dtype=bool)
    value, reps = resample(everyone, ALL, ALL, catalogue=True)
    names = [*metrics.columns, *share_names, *CATALOGUE_METRICS]
    n_users = [*defined.sum(axis=0), *[len(metrics)] * (len(share_names) + len(CATALOGUE_METRICS))]
    frames.append(_rows(ALL, ALL, names, value, reps, n_users, inputs.min_group_size))
    replicates.append(reps)
    for attribute, labels in inputs.user_groups.items():
        for group in np.unique(labels):
            member = labels == group
            value, reps = resample(member, attribute, str(group))
            n_users = [*defined[member].sum(axis=0), *[int(member.sum())] * len(share_names)]
            frames.append(_rows(attribute, group, [*metrics.columns, *share_names], value, reps, n_users,
                                inputs.min_group_size))  # fmt: skip
            replicates.append(reps)
            rest_value, rest_reps = resample(~member, attribute, str(group), "rest")
            gap = value[gap_cols] - rest_value[gap_cols]
            gap_reps = reps[gap_cols] - rest_reps[gap_cols]
            frames.append(_rows(attribute, group, [f"gap:{m}" for m in GAP_METRICS], gap, gap_reps,
                                [n_users[c] for c in gap_cols], inputs.min_group_size))  # fmt: skip
            replicates.append(gap_reps)
    return pd.concat(frames, ignore_index=True), np.vstack(replicates)


def _rows(attribute, group, names, value, reps, n_users, min_group_size) -> pd.DataFrame:
    low, high = _interval(reps)
    n = np.asarray(n_users, dtype=int)
    return pd.DataFrame(
        {
            "attribute": attribute,
            "group": str(group),
            "metric": names,
            "value": value,
            "ci_low": low,
            "ci_high": high,
            "n_users": n,
            "flagged": n < min_group_size,
        }
    )


def _interval(reps: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the last axis; all-NaN rows give NaN quietly."""
    tail = (1 - confidence) / 2
    out = np.full((2, reps.shape[0]), np.nan)
    ok = ~np.isnan(reps).all(axis=1)
    if ok.any():
        with np.errstate(invalid="ignore"):
            out[:, ok] = np.nanquantile(reps[ok], [tail, 1 - tail], axis=1)
    return out[0], out[1]


def pool_seeds(
    values: np.ndarray, replicates: np.ndarray, *, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-stage bootstrap over simulation seeds: value, CI low and high per round and row.

    ``values`` has shape (seeds, rounds, rows) and ``replicates`` (seeds, rounds, rows, R). Replicate
    ``b`` draws the seeds with replacement (the same draw in every round, so changes stay paired) and
    averages their ``b``-th user resample. The value is the mean over seeds.

    >>> v = np.zeros((2, 1, 1)); r = np.stack([np.zeros((1, 1, 50)), np.ones((1, 1, 50))])
    >>> [x.round(2).tolist() for x in pool_seeds(v, r, seed=0)]
    [[[0.0]], [[0.0]], [[1.0]]]
    """
    pooled = _pooled_replicates(replicates, seed=seed)
    value = _nanmean(values, axis=0)
    low, high = _interval(pooled.reshape(-1, pooled.shape[-1]))
    return value, low.reshape(value.shape), high.reshape(value.shape)


def _pooled_replicates(replicates: np.ndarray, *, seed: int) -> np.ndarray:
    """(rounds, rows, R) replicates of the mean over seeds drawn with replacement."""
    n_seeds, n_boot = replicates.shape[0], replicates.shape[-1]
    draw = seeded_rng(seed, "seeds").integers(0, n_seeds, size=(n_boot, n_seeds))
    picked = replicates[draw, ..., np.arange(n_boot)[:, None]]  # (R, seeds, rounds, rows)
    return np.moveaxis(_nanmean(picked, axis=1), 0, -1)


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; all-NaN slices (no seed defines the value) stay NaN quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def pooled_changes(
    values: np.ndarray, replicates: np.ndarray, *, seed: int, reference_round: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Change of every row against ``reference_round`` pooled over seeds, with its paired two-stage CI.

    Returns ``change, ci_low, ci_high`` of shape (rounds, rows).

    >>> v = np.array([[[0.0], [1.0]]]); r = np.stack([np.stack([np.zeros((1, 20)), np.ones((1, 20))])])
    >>> [x.ravel().tolist() for x in pooled_changes(v, r, seed=0)]
    [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]
    """
    pooled = _pooled_replicates(replicates, seed=seed)
    diff = pooled - pooled[reference_round : reference_round + 1]
    change = _nanmean(values - values[:, reference_round : reference_round + 1], axis=0)
    low, high = _interval(diff.reshape(-1, diff.shape[-1]))
    return change, low.reshape(change.shape), high.reshape(change.shape)
