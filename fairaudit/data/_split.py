"""Deterministic train/test splits: per-user random holdout, temporal leave-last-n, item cold start.

Every split is vectorised (no loop over users) and independent of the row order of the
interactions table: rows are first put in canonical ``(user_id, item_id)`` order, then the
seeded random keys are drawn. ``train`` and ``test`` keep the dataset's columns and rows
in their original order. ``make_split(dataset, split.method, seed=split.seed, **split.params)``
reproduces any split exactly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import pandas as pd

from fairaudit._choices import SPLIT_METHODS, SplitMethod
from fairaudit.data._schema import Dataset, Split

UNKNOWN_METHOD = "unknown split method '{0}'; expected one of {1}"
NO_TIMESTAMP = "the temporal split needs a 'timestamp' column in the interactions; use method='random' instead"
BAD_FRACTION = "{0} must be in (0, 1); got {1}"
BAD_N = "n must be a positive integer; got {0}"


def _canonical(interactions: pd.DataFrame) -> np.ndarray:
    """Row positions of ``interactions`` in ``(user_id, item_id)`` order."""
    return np.lexsort((interactions["item_id"].to_numpy(str), interactions["user_id"].to_numpy(str)))


def _rank_within_user(users: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row (in original positions): its 0-based rank within its user along ``order``, and its user's size.

    ``order`` must list row positions grouped by user (users contiguous).
    """
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    rank_sorted = np.arange(len(order)) - np.repeat(starts, sizes)
    rank, size = np.empty(len(order), dtype=np.int64), np.empty(len(order), dtype=np.int64)
    rank[order], size[order] = rank_sorted, np.repeat(sizes, sizes)
    return rank, size


def _make(dataset: Dataset, test_mask: np.ndarray, method: str, seed: int, params: dict) -> Split:
    inter = dataset.interactions
    return Split(
        train=inter[~test_mask].reset_index(drop=True),
        test=inter[test_mask].reset_index(drop=True),
        method=method,
        seed=seed,
        params=params,
    )


def _check_fraction(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(BAD_FRACTION.format(name, value))


def random_holdout(dataset: Dataset, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Per-user random holdout.

    A user with ``n >= 2`` interactions gets ``clip(floor(test_fraction * n + 0.5), 1, n - 1)``
    test interactions (rounded half up, at least one so every such user can be evaluated,
    at most ``n - 1`` so every user keeps one in train). Users with one interaction stay in train.

    >>> ds = Dataset(pd.DataFrame({"user_id": list("aaaaabb"), "item_id": list("vwxyzvw")}),
    ...              pd.DataFrame({"user_id": ["a", "b"]}), pd.DataFrame({"item_id": list("vwxyz")}))
    >>> s = random_holdout(ds, 0.2, seed=1)
    >>> s.test["user_id"].tolist(), len(s.train)
    (['a', 'b'], 5)
    """
    _check_fraction("test_fraction", test_fraction)
    inter = dataset.interactions
    users = inter["user_id"].to_numpy(str)
    canonical = _canonical(inter)
    keys = np.empty(len(inter))
    keys[canonical] = np.random.default_rng(seed).random(len(inter))
    rank, size = _rank_within_user(users, np.lexsort((keys, users)))
    n_test = np.where(size >= 2, np.clip(np.floor(test_fraction * size + 0.5), 1, size - 1), 0)
    return _make(dataset, rank < n_test, "random", seed, {"test_fraction": float(test_fraction)})


def temporal_leave_last(dataset: Dataset, n: int = 1) -> Split:
    """Per-user leave-last-``n``: each user's latest ``n`` interactions form the test set.

    Order is by ``timestamp`` then ``item_id`` (so among equal timestamps the largest
    ``item_id`` counts as latest). Every user keeps at least one interaction in train.

    >>> ds = Dataset(pd.DataFrame({"user_id": list("aaab"), "item_id": list("xyzx"), "timestamp": [3, 1, 3, 5]}),
    ...              pd.DataFrame({"user_id": ["a", "b"]}), pd.DataFrame({"item_id": list("xyz")}))
    >>> temporal_leave_last(ds).test["item_id"].tolist()
    ['z']
    """
    if "timestamp" not in dataset.interactions:
        raise ValueError(NO_TIMESTAMP)
    if int(n) != n or n < 1:
        raise ValueError(BAD_N.format(n))
    inter = dataset.interactions
    users = inter["user_id"].to_numpy(str)
    order = np.lexsort((inter["item_id"].to_numpy(str), inter["timestamp"].to_numpy(), users))
    rank, size = _rank_within_user(users, order)
    test = rank >= np.maximum(size - int(n), 1)
    return _make(dataset, test, "temporal", 0, {"n": int(n)})


def item_cold_start(dataset: Dataset, cold_fraction: float = 0.1, seed: int = 0) -> Split:
    """Withhold a random share of items from training entirely.

    ``max(1, round(cold_fraction * m))`` of the ``m`` items that have interactions are drawn
    (seeded, from the sorted item ids). All their interactions form the test set, **restricted
    to warm users** (users with at least one train interaction), so the split evaluates how
    well known users are served with unseen items; ``Split.cold_items`` lists the withheld ids.

    >>> ds = Dataset(pd.DataFrame({"user_id": list("aabb"), "item_id": list("xyxz")}),
    ...              pd.DataFrame({"user_id": ["a", "b"]}), pd.DataFrame({"item_id": list("xyz")}))
    >>> s = item_cold_start(ds, 0.3, seed=0)
    >>> len(s.cold_items), set(s.train["item_id"]).isdisjoint(s.cold_items)
    (1, True)
    """
    _check_fraction("cold_fraction", cold_fraction)
    inter = dataset.interactions
    items = np.unique(inter["item_id"].to_numpy(str))
    n_cold = max(1, int(np.floor(cold_fraction * len(items) + 0.5)))
    cold = np.sort(np.random.default_rng(seed).choice(items, size=n_cold, replace=False))
    is_cold = inter["item_id"].isin(cold).to_numpy()
    warm_users = inter.loc[~is_cold, "user_id"].unique()
    test = is_cold & inter["user_id"].isin(warm_users).to_numpy()
    return Split(
        train=inter[~is_cold].reset_index(drop=True),
        test=inter[test].reset_index(drop=True),
        method="cold_items",
        seed=seed,
        params={"cold_fraction": float(cold_fraction)},
        cold_items=tuple(cold.tolist()),
    )


#: The split function of each method of :data:`SPLIT_METHODS`; its keyword parameters other than
#: ``seed`` are the method's ``params`` (what ``make_split`` and a configuration's ``split.params`` take).
SPLIT_FUNCTIONS: dict[str, Callable[..., Split]] = {
    "random": random_holdout,
    "temporal": temporal_leave_last,
    "cold_items": item_cold_start,
}


def make_split(dataset: Dataset, method: SplitMethod, *, seed: int = 0, **params) -> Split:
    """Split ``dataset`` by method name: ``"random"``, ``"temporal"`` or ``"cold_items"``.

    ``"test_file"`` (not offered as a choice) re-reads a held-out test file from ``path=``, checking
    its ``sha256=`` (:func:`fairaudit.data.load_test_split`), so recorded splits of imported lists re-create.

    ``seed`` is ignored by ``"temporal"`` (it is not random).

    >>> from fairaudit.data._schema import Dataset
    >>> ds = Dataset(pd.DataFrame({"user_id": list("aab"), "item_id": list("xyx")}),
    ...              pd.DataFrame({"user_id": ["a", "b"]}), pd.DataFrame({"item_id": list("xy")}))
    >>> s = make_split(ds, "random", seed=3)
    >>> make_split(ds, s.method, seed=s.seed, **s.params).describe() == s.describe()
    True
    """
    if method in SPLIT_FUNCTIONS:
        function = SPLIT_FUNCTIONS[method]
        seeded = {"seed": seed} if "seed" in inspect.signature(function).parameters else {}
        return function(dataset, **seeded, **params)
    if method == "test_file":  # held-out interactions from a file (imported recommendation lists)
        from fairaudit.data._imported import split_from_test_file

        return split_from_test_file(dataset, **params)
    raise ValueError(UNKNOWN_METHOD.format(method, SPLIT_METHODS))
