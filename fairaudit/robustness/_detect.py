"""A simple shilling-profile detector: a data-quality check on uploads, scored on injected profiles.

Unsupervised and explainable (Chirita et al. 2005; Burke et al. 2006; Mobasher et al. 2007), from
three per-user features of the interactions:

- ``degsim``: mean cosine similarity of the user's (binary) profile to its ``neighbours`` most
  similar users. Fake profiles built from one template resemble each other more than real users do.
- ``rdma`` (rating deviation from mean agreement): ``mean_i |r_ui - mean_i| / n_i`` over the user's
  items (``n_i``: the item's number of ratings), high for profiles that rate rarely-rated items
  far from consensus — the targets. Zero for data without ratings.
- ``popularity``: mean popularity percentile of the user's items (bandwagon profiles lean popular,
  random filler leans unpopular);
- ``same_length``: share of users whose profile has exactly this user's length (attack tools
  write one filler size; real lengths spread out).

Each feature becomes a robust z-score (median and MAD over users), taken two-sided (``|z|``: a
profile unusual in either direction), ``score`` is their mean, and a user is ``flagged`` when
``score > threshold``. Precision and recall against known fake users
(:func:`detection_quality`) say how well that works on a given attack.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Neighbours in ``degsim``.
NEIGHBOURS = 10
#: Default flagging threshold on the combined robust z-score.
THRESHOLD = 2.0
FEATURES = ("degsim", "rdma", "popularity", "same_length")
DETECTION_COLUMNS = ("user_id", *FEATURES, "score", "flagged")
#: Users per block of the user x user similarity (memory: block x users floats).
_BLOCK = 1024


def _robust_z(values: np.ndarray) -> np.ndarray:
    median = np.median(values)
    mad = 1.4826 * np.median(np.abs(values - median))
    scale = mad if mad > 0 else (values.std() or 1.0)
    return (values - median) / scale


def shilling_scores(
    interactions: pd.DataFrame, *, neighbours: int = NEIGHBOURS, threshold: float = THRESHOLD
) -> pd.DataFrame:
    """Per-user detector features, combined score and flag (columns :data:`DETECTION_COLUMNS`, sorted by user).

    >>> inter = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c"], "item_id": ["x", "y", "x", "y", "z"],
    ...                       "rating": [5.0, 1.0, 5.0, 1.0, 3.0]})
    >>> out = shilling_scores(inter, neighbours=1)
    >>> out.set_index("user_id")["degsim"].round(3).tolist()
    [1.0, 1.0, 0.0]
    """
    users, user_codes = np.unique(interactions["user_id"].astype(str).to_numpy(), return_inverse=True)
    items, item_codes = np.unique(interactions["item_id"].astype(str).to_numpy(), return_inverse=True)
    n_users, n_items = len(users), len(items)
    binary = sp.csr_matrix((np.ones(len(user_codes)), (user_codes, item_codes)), shape=(n_users, n_items))
    binary.data[:] = 1.0
    lengths = np.asarray(binary.sum(1)).ravel()
    normed = sp.diags(1.0 / np.sqrt(np.maximum(lengths, 1.0))) @ binary
    top = max(1, min(neighbours, n_users - 1))
    degsim = np.zeros(n_users)
    for start in range(0, n_users, _BLOCK):
        block = (normed[start : start + _BLOCK] @ normed.T).toarray()
        block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf  # not oneself
        if n_users > 1:
            nearest = -np.partition(-block, top - 1, axis=1)[:, :top]
            degsim[start : start + len(block)] = nearest.mean(axis=1)
    counts = np.bincount(item_codes, minlength=n_items).astype(float)
    percentile = pd.Series(counts).rank(pct=True).to_numpy()
    popularity = np.bincount(user_codes, weights=percentile[item_codes], minlength=n_users) / np.maximum(lengths, 1)
    if "rating" in interactions.columns and interactions["rating"].notna().any():
        rating = interactions["rating"].astype(float).fillna(interactions["rating"].mean()).to_numpy()
        item_mean = np.bincount(item_codes, weights=rating, minlength=n_items) / np.maximum(counts, 1)
        deviation = np.abs(rating - item_mean[item_codes]) / np.maximum(counts[item_codes], 1)
        rdma = np.bincount(user_codes, weights=deviation, minlength=n_users) / np.maximum(lengths, 1)
    else:
        rdma = np.zeros(n_users)
    _, length_codes, length_counts = np.unique(lengths, return_inverse=True, return_counts=True)
    same_length = length_counts[length_codes] / n_users
    features = {"degsim": degsim, "rdma": rdma, "popularity": popularity, "same_length": same_length}
    score = np.mean([np.abs(_robust_z(v)) for v in features.values()], axis=0)
    return pd.DataFrame({"user_id": users, **features, "score": score, "flagged": score > threshold})


def detection_quality(scores: pd.DataFrame, fake_users: pd.Index) -> dict[str, float]:
    """Precision and recall of the detector's flags against the known ``fake_users``, and counts.

    >>> scores = pd.DataFrame({"user_id": ["a", "b", "c"], "flagged": [True, True, False]})
    >>> detection_quality(scores, pd.Index(["a", "c"]))
    {'precision': 0.5, 'recall': 0.5, 'flagged': 2, 'fake': 2}
    """
    fake = scores["user_id"].astype(str).isin(pd.Index(fake_users).astype(str)).to_numpy()
    flagged = scores["flagged"].to_numpy(dtype=bool)
    hits = int((fake & flagged).sum())
    return {
        "precision": float(hits / flagged.sum()) if flagged.any() else float("nan"),
        "recall": float(hits / fake.sum()) if fake.any() else float("nan"),
        "flagged": int(flagged.sum()),
        "fake": int(fake.sum()),
    }
