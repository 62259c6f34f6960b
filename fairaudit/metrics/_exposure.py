"""Item-side exposure: browsing models, group exposure shares, Gini, coverage, popularity and long tail."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fairaudit.data import UNKNOWN, genre_matrix
from fairaudit.metrics._common import REC_COLUMNS, check_columns, item_codes, list_mean, user_item_matrix

Browsing = Literal["dcg", "rbp", "uniform"]
#: Browsing models: how much attention rank ``r`` receives.
BROWSING_MODELS: tuple[str, ...] = ("dcg", "rbp", "uniform")
#: Default RBP patience: the user moves from rank r to r+1 with probability 0.8.
RBP_GAMMA = 0.8
#: Pseudo item attribute: the genres in the items' ``genres`` column (multi-valued).
GENRE_ATTRIBUTE = "genre"
#: Popularity tier counted as the long tail (column ``popularity_tier`` of the items table).
TAIL_TIER = "tail"

_BAD_BROWSING = "Unknown browsing model '{0}'; expected one of {1}"
_BAD_GAMMA = "RBP patience gamma must be in (0, 1], got {0}"
_NO_ATTRIBUTE = "Items table has no column '{0}'; item groups need one of {1}"


def position_weights(rank: np.ndarray, *, browsing: Browsing = "dcg", gamma: float = RBP_GAMMA) -> np.ndarray:
    """Attention given to rank ``r`` (1-based) under a browsing model.

    - ``"dcg"``: ``1 / log2(r + 1)`` (the NDCG discount; Singh & Joachims 2018);
    - ``"rbp"``: ``gamma ** (r - 1)`` (rank-biased precision, Moffat & Zobel 2008; Diaz et al.
      2020). The ``(1 - gamma)`` normaliser is omitted: it cancels in every share;
    - ``"uniform"``: 1 for every slot of the top-K (plain recommendation counts).

    >>> position_weights(np.array([1, 2, 3]), browsing="rbp", gamma=0.5).tolist()
    [1.0, 0.5, 0.25]
    >>> position_weights(np.array([1, 3]), browsing="dcg").tolist()
    [1.0, 0.5]
    """
    rank = np.asarray(rank, dtype=float)
    if browsing == "dcg":
        return 1.0 / np.log2(rank + 1.0)
    if browsing == "rbp":
        if not 0.0 < gamma <= 1.0:
            raise ValueError(_BAD_GAMMA.format(gamma))
        return np.power(gamma, rank - 1.0)
    if browsing == "uniform":
        return np.ones_like(rank)
    raise ValueError(_BAD_BROWSING.format(browsing, BROWSING_MODELS))


def item_exposure(
    recs: pd.DataFrame, catalogue: pd.Index, *, browsing: Browsing = "uniform", gamma: float = RBP_GAMMA
) -> pd.Series:
    """Total exposure of every catalogue item: ``e_i = sum_u sum_r w(r) 1[L_u(r) = i]``.

    Items never recommended get 0, so the result has one entry per catalogue item.

    >>> recs = pd.DataFrame({"user_id": ["a", "a", "b"], "rank": [1, 2, 1], "item_id": ["x", "y", "x"]})
    >>> item_exposure(recs, pd.Index(["x", "y", "z"])).tolist()
    [2.0, 1.0, 0.0]
    """
    check_columns(recs, "recommendations", REC_COLUMNS)
    weights = position_weights(recs["rank"].to_numpy(), browsing=browsing, gamma=gamma)
    codes = item_codes(recs["item_id"], catalogue)
    return pd.Series(np.bincount(codes, weights=weights, minlength=len(catalogue)), index=catalogue)


def gini(values: np.ndarray) -> float | np.ndarray:
    """Gini coefficient ``G = sum_j (2j - n - 1) x_(j) / ((n - 1) sum_j x_j)``, x ascending.

    The standard normalisation (Castells et al., *Novelty and diversity*, RecSys Handbook):
    0 when every item gets the same exposure, 1 when a single item gets all of it. Items with
    zero exposure must be included. This is RecBole's ``GiniIndex`` times ``n / (n - 1)`` and
    one minus Elliot's "Gini". NaN for fewer than two items or zero total exposure. A 2-D
    input gives one coefficient per row.

    >>> counts = np.bincount([5, 7, 3, 4, 5, 2, 2, 3, 5, 1, 4, 6, 5, 3, 7], minlength=9)[1:]
    >>> round(gini(counts), 4)  # RecBole toy lists, n = 8 items
    0.3905
    >>> gini(np.array([[1, 1], [0, 2]])).tolist()
    [0.0, 1.0]
    """
    x = np.sort(np.asarray(values, dtype=float), axis=-1)
    n = x.shape[-1]
    total = x.sum(axis=-1)
    j = np.arange(1, n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = ((2 * j - n - 1) * x).sum(axis=-1) / ((n - 1) * total)
    g = np.where((total > 0) & (n >= 2), g, np.nan)
    return float(g) if g.ndim == 0 else g


def catalogue_coverage(recs: pd.DataFrame, n_items: int) -> float:
    """Share of the catalogue recommended to at least one user: ``|U_u L_u| / n_items``.

    Shani & Gunawardana 2011; RecBole ``ItemCoverage`` (which counts a padding item too).

    >>> catalogue_coverage(pd.DataFrame({"item_id": ["x", "y", "x"]}), 4)
    0.5
    """
    return float(recs["item_id"].nunique() / n_items)


def item_groups(items: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """Membership weights of items in the groups of ``attribute`` (rows sum to 1).

    A plain attribute gives a one-hot row. ``attribute="genre"`` reads the ``genres`` column:
    an item with ``m`` genres belongs to each with weight ``1/m`` (so its exposure is split
    equally across them and shares still sum to 1); items without genres belong to ``"unknown"``.

    >>> items = pd.DataFrame({"item_id": ["x", "y"], "genres": ["A|B", "B"]})
    >>> item_groups(items, "genre").to_dict("list")
    {'A': [0.5, 0.0], 'B': [0.5, 1.0]}
    """
    if attribute == GENRE_ATTRIBUTE:
        if "genres" not in items.columns:
            raise ValueError(_NO_ATTRIBUTE.format("genres", list(items.columns)))
        return genre_matrix(items, normalise=True)
    if attribute not in items.columns:
        raise ValueError(_NO_ATTRIBUTE.format(attribute, list(items.columns)))
    values = items[attribute].astype(str).fillna(UNKNOWN)
    onehot = pd.get_dummies(values, dtype=float)
    onehot.index = pd.Index(items["item_id"].astype(str), name="item_id")
    onehot.columns = onehot.columns.astype(str)
    return onehot


def exposure_shares(
    recs: pd.DataFrame,
    test: pd.DataFrame,
    groups: pd.DataFrame,
    *,
    user_groups: pd.Series | None = None,
    browsing: Browsing = "dcg",
    gamma: float = RBP_GAMMA,
) -> pd.DataFrame:
    """Exposure, catalogue and relevance share of each item group, within each user group.

    With ``M`` the item-group membership (:func:`item_groups`, rows sum to 1) and ``w(r)`` the
    browsing weights, for user group ``U`` and item group ``a``:

    - ``exposure_share = sum_{u in U} sum_r w(r) M[L_u(r), a] / sum_{u in U} sum_r w(r)``;
    - ``catalogue_share = sum_i M[i, a] / n_items`` (same for every user group);
    - ``relevance_share = sum_{(u, i) in test, u in U} M[i, a] / |test_U|`` — the share of the
      held-out relevance that belongs to ``a`` (the "deserved" exposure of Singh & Joachims 2018).

    Parameters
    ----------
    recs, test : DataFrame
        Top-K lists (``user_id, rank, item_id``) and held-out interactions (``user_id, item_id``).
    groups : DataFrame
        Item x group membership indexed by ``item_id`` (the catalogue).
    user_groups : Series, optional
        ``user_id -> group``; users absent from it are left out. ``None``: one group ``"all"``.

    Returns
    -------
    DataFrame
        ``user_group, item_group, exposure_share, catalogue_share, relevance_share``.

    Examples
    --------
    >>> items = pd.DataFrame({"item_id": ["x", "y"], "tier": ["head", "tail"]})
    >>> recs = pd.DataFrame({"user_id": ["a", "a"], "rank": [1, 2], "item_id": ["x", "y"]})
    >>> test = pd.DataFrame({"user_id": ["a"], "item_id": ["y"]})
    >>> out = exposure_shares(recs, test, item_groups(items, "tier"), browsing="rbp", gamma=0.5)
    >>> out[["item_group", "exposure_share", "relevance_share"]].round(3).values.tolist()
    [['head', 0.667, 0.0], ['tail', 0.333, 1.0]]
    """
    catalogue = pd.Index(groups.index.astype(str))
    if user_groups is None:
        user_groups = pd.Series("all", index=pd.Index(recs["user_id"].astype(str).unique()))
    users = pd.Index(user_groups.index.astype(str))
    labels, codes = np.unique(user_groups.astype(str).to_numpy(), return_inverse=True)
    weights = position_weights(recs["rank"].to_numpy(), browsing=browsing, gamma=gamma)
    shown = user_item_matrix(recs, users, catalogue, weights)
    relevant = user_item_matrix(test, users, catalogue)
    return group_shares(shown, relevant, codes, labels, groups)


def group_shares(
    shown: sp.csr_matrix, relevant: sp.csr_matrix, user_codes: np.ndarray, labels: np.ndarray, groups: pd.DataFrame
) -> pd.DataFrame:
    """Core of :func:`exposure_shares` on pre-built user x item matrices (built once per audit).

    ``shown`` holds browsing weights of recommended (user, item) pairs, ``relevant`` the test pairs;
    ``user_codes`` (one per matrix row) index ``labels``; ``groups`` is the item membership.

    >>> shown = sp.csr_matrix(np.array([[1.0, 0.5]]))
    >>> groups = pd.DataFrame({"a": [1.0, 0.0], "b": [0.0, 1.0]})
    >>> group_shares(shown, shown, np.array([0]), np.array(["all"]), groups)["exposure_share"].round(3).tolist()
    [0.667, 0.333]
    """
    n_user = len(labels)
    collapse = sp.csr_matrix(
        (np.ones(len(user_codes)), (user_codes, np.arange(len(user_codes)))), shape=(n_user, len(user_codes))
    )
    membership = groups.to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        exposure, relevance = (
            totals / totals.sum(axis=1, keepdims=True)
            for totals in (np.asarray((collapse @ m) @ membership) for m in (shown, relevant))
        )
    n_item = groups.shape[1]
    return pd.DataFrame(
        {
            "user_group": np.repeat(np.asarray(labels, dtype=object), n_item),
            "item_group": np.tile(groups.columns.to_numpy(dtype=object), n_user),
            "exposure_share": exposure.ravel(),
            "catalogue_share": np.tile(membership.sum(axis=0) / len(membership), n_user),
            "relevance_share": relevance.ravel(),
        }
    )


def avg_popularity(recs: pd.DataFrame, train: pd.DataFrame, catalogue: pd.Index) -> pd.Series:
    """Average recommendation popularity per user: mean training interaction count of ``L_u``.

    ARP of Yin et al. 2012 with φ(i) = train interaction count (RecBole ``AveragePopularity``;
    Elliot counts distinct users, the same for one row per (user, item)).

    >>> recs = pd.DataFrame({"user_id": ["a", "a"], "rank": [1, 2], "item_id": ["x", "y"]})
    >>> avg_popularity(recs, pd.DataFrame({"item_id": ["x", "x", "x"]}), pd.Index(["x", "y"])).tolist()
    [1.5]
    """
    counts = train["item_id"].astype(str).value_counts().reindex(catalogue, fill_value=0)
    return list_mean(recs, counts.astype(float))


def long_tail_share(recs: pd.DataFrame, tiers: pd.Series) -> pd.Series:
    """Share of each user's list in the long tail: ``|L_u ∩ tail| / |L_u|`` (APLT, Abdollahpouri 2017).

    ``tiers`` maps ``item_id -> popularity_tier``; the tail is tier ``"tail"`` — items outside the
    head and mid tiers covering the first 80% of interactions (``fairaudit.data`` popularity tiers;
    Elliot uses the same 80% short head, RecBole the bottom 10% of items).

    >>> recs = pd.DataFrame({"user_id": ["a", "a"], "rank": [1, 2], "item_id": ["x", "y"]})
    >>> long_tail_share(recs, pd.Series({"x": "head", "y": "tail"})).tolist()
    [0.5]
    """
    return list_mean(recs, (tiers.astype(str) == TAIL_TIER).astype(float))
