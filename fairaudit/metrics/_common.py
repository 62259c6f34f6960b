"""Shared encodings for the metric functions: recommendation lists as sparse user x item matrices.

Every metric takes tidy frames (``user_id, rank, item_id``) and turns them into integer codes once,
so the arithmetic is grouped numpy/scipy work with no Python loop over users or items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

_UNKNOWN_ITEMS = "Recommendations contain item id(s) {0} that are not in the catalogue (items table column 'item_id')"
_MISSING_COLUMNS = "Frame '{0}' lacks column(s) {1}; expected columns {2}"

#: Columns every recommendation frame carries (``score`` is optional for metrics).
REC_COLUMNS = ("user_id", "rank", "item_id")


def check_columns(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming the frame and the missing columns.

    >>> check_columns(pd.DataFrame(columns=["user_id"]), "recs", ("user_id",))
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(_MISSING_COLUMNS.format(name, missing, list(columns)))


def user_index(recs: pd.DataFrame) -> pd.Index:
    """Sorted distinct user ids of a recommendation frame (the row order of per-user results).

    >>> user_index(pd.DataFrame({"user_id": ["b", "a", "b"]})).tolist()
    ['a', 'b']
    """
    return pd.Index(np.sort(recs["user_id"].astype(str).unique()), name="user_id")


def item_codes(item_ids: pd.Series, catalogue: pd.Index) -> np.ndarray:
    """Positions of ``item_ids`` in ``catalogue``; unknown ids raise ``ValueError``.

    >>> item_codes(pd.Series(["y", "x"]), pd.Index(["x", "y"])).tolist()
    [1, 0]
    """
    codes = catalogue.get_indexer(item_ids.astype(str))
    if (codes < 0).any():
        raise ValueError(_UNKNOWN_ITEMS.format(pd.unique(item_ids[codes < 0])[:5].tolist()))
    return codes


def user_item_matrix(
    frame: pd.DataFrame,
    users: pd.Index,
    catalogue: pd.Index,
    weights: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Sparse ``len(users) x len(catalogue)`` matrix of ``frame``'s (user, item) pairs.

    Rows of ``frame`` whose user is not in ``users`` are dropped (e.g. users without test
    items); items must all be in ``catalogue``. Duplicate pairs add up.

    >>> m = user_item_matrix(pd.DataFrame({"user_id": ["a", "a", "z"], "item_id": ["y", "x", "x"]}),
    ...                      pd.Index(["a"]), pd.Index(["x", "y"]))
    >>> m.toarray().tolist()
    [[1.0, 1.0]]
    """
    rows = users.get_indexer(frame["user_id"].astype(str))
    keep = rows >= 0
    cols = item_codes(frame["item_id"][keep], catalogue)
    values = np.ones(int(keep.sum())) if weights is None else np.asarray(weights, dtype=float)[keep]
    return sp.csr_matrix((values, (rows[keep], cols)), shape=(len(users), len(catalogue)))


def list_mean(recs: pd.DataFrame, item_values: pd.Series) -> pd.Series:
    """Per-user mean of an item-level value over the user's list: (1/|L_u|) sum_{i in L_u} v_i.

    ``item_values`` is indexed by ``item_id`` and covers the catalogue. The result is indexed
    by ``user_id`` (sorted).

    >>> recs = pd.DataFrame({"user_id": ["a", "a", "b"], "rank": [1, 2, 1], "item_id": ["x", "y", "y"]})
    >>> list_mean(recs, pd.Series({"x": 1.0, "y": 3.0})).tolist()
    [2.0, 3.0]
    """
    users = user_index(recs)
    catalogue = pd.Index(item_values.index.astype(str))
    matrix = user_item_matrix(recs, users, catalogue)
    sums = matrix @ item_values.to_numpy(dtype=float)
    lengths = np.asarray(matrix.sum(axis=1)).ravel()
    return pd.Series(sums / lengths, index=users)
