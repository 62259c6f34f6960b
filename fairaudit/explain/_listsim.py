"""Similarity of two top-K lists, as in the FaiRLLM benchmark (Zhang et al., RecSys 2023).

Lists are integer matrices of item codes, one row per user, rank order left to right, with
``-1`` marking empty slots at the end of a row (a user who received fewer than K items).
Items within a row are distinct. Every function is vectorised over rows.

Conventions follow FaiRLLM's released code (``process.ipynb``: ``calc_metric_at_k``,
``calc_serp_ms``, ``calc_prag``), not the paper's prose, so the numbers are comparable with
published FaiRLLM results:

- ``x`` is the **counterfactual** (sensitive) list and ``y`` the **original** (neutral) list;
  SERP* and PRAG* are asymmetric in them.
- SERP* is *not* normalised: identical lists of length K give ``(K + 3) / (4 (K + 1))``
  (0.2955 at K=10, 0.2738 at K=20), not 1.
- PRAG* divides by the number of pairs ``K (K - 1) / 2`` (identical lists give 1). LangFair's
  ``PRAG`` divides by ``K (K + 1)`` instead (identical lists give 0.4524 at K=20).
"""

from __future__ import annotations

import numpy as np

#: Code of an empty slot in a top-K matrix.
EMPTY = -1

_SHAPE_MISMATCH = "Top-K matrices must have the same shape (users x K); got x {0} and y {1}"


def _match(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per slot of ``x``: is the item in ``y`` and at which position; plus the list lengths."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(_SHAPE_MISMATCH.format(x.shape, y.shape))
    valid_x, valid_y = x != EMPTY, y != EMPTY
    same = (x[:, :, None] == y[:, None, :]) & valid_x[:, :, None] & valid_y[:, None, :]
    in_y = same.any(axis=2)
    pos_y = np.where(in_y, same.argmax(axis=2), -1)
    return in_y, pos_y, valid_x.sum(axis=1), valid_y.sum(axis=1)


def jaccard_at_k(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Jaccard@K per row: ``|x ∩ y| / |x ∪ y|`` (FaiRLLM ``iou``; LangFair ``JaccardSimilarity``).

    Two empty lists are identical and score 1 (FaiRLLM would divide by zero).

    Parameters
    ----------
    x, y : ndarray of int, shape (n_users, K)
        Counterfactual and original top-K item codes; ``-1`` marks an empty slot.

    Returns
    -------
    ndarray of float, shape (n_users,)

    Examples
    --------
    >>> jaccard_at_k(np.array([[1, 2, 3], [1, 2, 3]]), np.array([[3, 2, 1], [4, 5, 1]])).round(4).tolist()
    [1.0, 0.2]
    """
    in_y, _, len_x, len_y = _match(x, y)
    inter = in_y.sum(axis=1)
    union = len_x + len_y - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def serp_at_k(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SERP*@K per row, exactly as FaiRLLM's ``calc_serp_ms`` (and LangFair ``SERP``).

    ``SERP* = sum_{i: x_i in y} (|x| - i + 1) / (2 |y| (|y| + 1))`` with ``i`` the 0-based rank in
    the counterfactual list ``x``. Not normalised: identical lists of length K give
    ``(K + 3) / (4 (K + 1))``; an empty ``y`` gives 0.

    Parameters
    ----------
    x, y : ndarray of int, shape (n_users, K)
        Counterfactual and original top-K item codes; ``-1`` marks an empty slot.

    Returns
    -------
    ndarray of float, shape (n_users,)

    Examples
    --------
    >>> serp_at_k(np.array([[1, 2], [9, 1]]), np.array([[1, 2], [1, 2]])).round(4).tolist()
    [0.4167, 0.1667]
    """
    in_y, _, len_x, len_y = _match(x, y)
    weight = len_x[:, None] - np.arange(in_y.shape[1])[None, :] + 1
    total = (weight * in_y).sum(axis=1)
    return np.where(len_y > 0, total * 0.5 / np.maximum((len_y + 1) * len_y, 1), 0.0)


def prag_at_k(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """PRAG*@K per row, exactly as FaiRLLM's ``calc_prag``.

    Over the pairs ``i < j`` of the counterfactual list ``x``, a pair is credited when ``x_i`` is in
    the original list ``y`` and either ``x_j`` is not, or ``x_i`` comes before ``x_j`` in ``y``; the
    credit count is divided by the number of pairs ``|x| (|x| - 1) / 2`` (identical lists give 1,
    a reversed list 0). A one-item ``x`` scores 1 if ``x == y`` else 0; an empty list scores 0.
    LangFair's ``PRAG`` divides by ``K (K + 1)`` instead, so its values are smaller.

    Parameters
    ----------
    x, y : ndarray of int, shape (n_users, K)
        Counterfactual and original top-K item codes; ``-1`` marks an empty slot.

    Returns
    -------
    ndarray of float, shape (n_users,)

    Examples
    --------
    >>> prag_at_k(np.array([[1, 2, 3], [3, 2, 1]]), np.array([[1, 2, 3], [1, 2, 3]])).tolist()
    [1.0, 0.0]
    """
    in_y, pos_y, len_x, len_y = _match(x, y)
    k = in_y.shape[1]
    valid = np.arange(k)[None, :] < len_x[:, None]
    upper = np.triu(np.ones((k, k), dtype=bool), 1)[None, :, :]
    credit = in_y[:, :, None] & (~in_y[:, None, :] | (pos_y[:, :, None] < pos_y[:, None, :]))
    credit &= upper & valid[:, :, None] & valid[:, None, :]
    pairs = len_x * (len_x - 1) / 2
    general = credit.sum(axis=(1, 2)) / np.maximum(pairs, 1)
    single = ((len_y == 1) & in_y[:, 0]).astype(float)
    out = np.where(len_x == 1, single, general)
    return np.where((len_x == 0) | (len_y == 0), 0.0, out)


def group_share(x: np.ndarray, item_group: np.ndarray, n_groups: int) -> np.ndarray:
    """Share of each row's filled slots that hold items of each group (uniform over ranks).

    Parameters
    ----------
    x : ndarray of int, shape (n_users, K)
        Top-K item codes; ``-1`` marks an empty slot (not counted).
    item_group : ndarray of int, shape (n_items,)
        Group code ``0 .. n_groups - 1`` of every catalogue item.
    n_groups : int
        Number of groups.

    Returns
    -------
    ndarray of float, shape (n_users, n_groups)
        Rows sum to 1 (0 for an empty list).

    Examples
    --------
    >>> group_share(np.array([[0, 1, 2, -1]]), np.array([0, 1, 1]), 2).round(4).tolist()
    [[0.3333, 0.6667]]
    """
    x = np.asarray(x)
    valid = x != EMPTY
    codes = np.where(valid, np.asarray(item_group)[np.where(valid, x, 0)], n_groups)
    flat = (np.arange(x.shape[0])[:, None] * (n_groups + 1) + codes).ravel()
    counts = np.bincount(flat, minlength=x.shape[0] * (n_groups + 1)).reshape(x.shape[0], n_groups + 1)
    return counts[:, :n_groups] / np.maximum(valid.sum(axis=1), 1)[:, None]
