"""Per-user features for the surrogate of gap drivers: who the user is and how they behave.

Sensitive attributes enter one-hot (``gender=F``); behaviour enters as numbers computed from the
interactions the model learned from: activity, mainstream taste, taste breadth and tenure.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fairaudit.data import Dataset, genre_matrix

#: Separator between attribute and value in one-hot feature names (``gender=F``).
ONE_HOT_SEP = "="
#: Behavioural features, in output order (those that the data cannot support are left out).
BEHAVIOUR_FEATURES = ("n_interactions", "mean_popularity", "genre_entropy", "account_age_days")
#: Attributes used by default, when present in the users table.
DEFAULT_ATTRIBUTES = ("gender", "age_band", "region", "occupation")

_MISSING_ATTRIBUTES = "User attribute(s) {0} are not columns of the users table; expected some of {1}"


def feature_source(name: str) -> str:
    """The attribute a one-hot feature came from (behavioural features map to themselves).

    >>> feature_source("gender=F"), feature_source("n_interactions")
    ('gender', 'n_interactions')
    """
    return name.split(ONE_HOT_SEP, 1)[0]


def user_features(
    dataset: Dataset,
    interactions: pd.DataFrame | None = None,
    *,
    attributes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per user: one-hot sensitive attributes plus behavioural features.

    Behavioural features, from ``interactions`` (default: all of ``dataset.interactions``; pass the
    training split to describe what the model saw):

    - ``n_interactions``: number of interactions;
    - ``mean_popularity``: mean, over the user's items, of the share of users who interacted with
      the item (0 without history);
    - ``genre_entropy``: Shannon entropy (bits) of the user's genre distribution, each item spreading
      weight ``1/|genres(i)|`` over its genres (:func:`fairaudit.data.genre_matrix`; only when items
      have ``genres``);
    - ``account_age_days``: days from the user's first interaction to the last timestamp in the
      data (only when interactions have ``timestamp``; 0 without history).

    Parameters
    ----------
    dataset : Dataset
        Users (attributes) and items (genres).
    interactions : DataFrame, optional
        ``user_id, item_id[, timestamp]``.
    attributes : sequence of str, optional
        Attribute columns to one-hot; default those of :data:`DEFAULT_ATTRIBUTES` present.

    Returns
    -------
    DataFrame
        Indexed by ``user_id`` (order of ``dataset.users``), float columns.

    Examples
    --------
    >>> users = pd.DataFrame({"user_id": ["a", "b"], "gender": ["F", "M"]})
    >>> items = pd.DataFrame({"item_id": ["x", "y"], "title": ["X", "Y"], "genres": ["A", "A|B"]})
    >>> inter = pd.DataFrame({"user_id": ["a", "b", "b"], "item_id": ["x", "x", "y"]})
    >>> user_features(Dataset(inter, users, items)).round(3).to_dict("index")["b"]
    {'gender=F': 0.0, 'gender=M': 1.0, 'n_interactions': 2.0, 'mean_popularity': 0.75, 'genre_entropy': 0.811}
    """
    users = dataset.users.assign(user_id=dataset.users["user_id"].astype(str))
    if attributes is None:
        attributes = [a for a in DEFAULT_ATTRIBUTES if a in users.columns]
    missing = [a for a in attributes if a not in users.columns]
    if missing:
        raise ValueError(_MISSING_ATTRIBUTES.format(missing, dataset.user_attributes))
    index = pd.Index(users["user_id"], name="user_id")
    one_hot = pd.get_dummies(users[list(attributes)].astype(str), prefix_sep=ONE_HOT_SEP, dtype=float)
    one_hot.index = index

    inter = dataset.interactions if interactions is None else interactions
    item_index = pd.Index(dataset.items["item_id"].astype(str))
    rows = index.get_indexer(inter["user_id"].astype(str))
    cols = item_index.get_indexer(inter["item_id"].astype(str))
    keep = (rows >= 0) & (cols >= 0)
    rows, cols = rows[keep], cols[keep]
    history = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(index), len(item_index)))
    history.data[:] = 1.0
    counts = np.asarray(history.sum(axis=1)).ravel()
    item_share = np.asarray(history.sum(axis=0)).ravel() / max(len(index), 1)
    out = {"n_interactions": counts, "mean_popularity": (history @ item_share) / np.maximum(counts, 1)}

    if "genres" in dataset.items.columns:
        per_item = genre_matrix(dataset.items, normalise=True).to_numpy()
        mass = np.asarray(history @ per_item)
        p = mass / np.maximum(mass.sum(axis=1, keepdims=True), 1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["genre_entropy"] = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    if "timestamp" in inter.columns and keep.any():
        stamps = inter["timestamp"].to_numpy(dtype=np.int64)[keep]
        first = np.full(len(index), np.iinfo(np.int64).max)
        np.minimum.at(first, rows, stamps)
        out["account_age_days"] = np.where(counts > 0, (stamps.max() - first) / 86_400.0, 0.0)
    return pd.concat([one_hot, pd.DataFrame(out, index=index)], axis=1)
