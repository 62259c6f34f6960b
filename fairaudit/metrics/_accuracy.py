"""Per-user top-K accuracy: NDCG, Recall, Precision, HitRate and MRR with binary relevance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.metrics._common import REC_COLUMNS, check_columns


def accuracy_metrics(recs: pd.DataFrame, test: pd.DataFrame, *, k: int = 10) -> pd.DataFrame:
    """NDCG@K, Recall@K, Precision@K, HitRate@K and MRR@K for every user with test items.

    Relevance is binary: item ``i`` is relevant to user ``u`` iff ``(u, i)`` is in ``test``
    (``T_u``). With ``L_u`` the items at ranks ``r = 1..K`` of ``recs`` and ``h_r = 1[L_u(r) in T_u]``:

    - ``ndcg = DCG / IDCG``, ``DCG = sum_r h_r / log2(r + 1)``, ``IDCG = sum_{r=1}^{min(|T_u|, K)} 1/log2(r + 1)``
      (Järvelin & Kekäläinen 2002; ranx ``ndcg``);
    - ``recall = hits / |T_u|``; ``precision = hits / K`` (also when fewer than K items were
      recommended); ``hit_rate = 1[hits > 0]``;
    - ``mrr = 1 / r*`` with ``r*`` the rank of the first hit within K, 0 without a hit.

    Users with no test item are **excluded** (their accuracy is undefined); users with test
    items but no recommendation score 0. Rows of ``recs`` beyond rank K are ignored.

    Parameters
    ----------
    recs : DataFrame
        ``user_id, rank, item_id`` (rank starts at 1).
    test : DataFrame
        ``user_id, item_id`` held-out interactions.
    k : int
        List length K.

    Returns
    -------
    DataFrame
        Indexed by ``user_id`` (sorted), columns :data:`ACCURACY_METRICS`
        (``ndcg, recall, precision, hit_rate, mrr``; their registry entries share this function).

    Examples
    --------
    >>> recs = pd.DataFrame({"user_id": ["a", "a"], "rank": [1, 2], "item_id": ["x", "y"]})
    >>> test = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["y", "x"]})
    >>> accuracy_metrics(recs, test, k=2).round(4).to_dict("index")["a"]
    {'ndcg': 0.6309, 'recall': 1.0, 'precision': 0.5, 'hit_rate': 1.0, 'mrr': 0.5}
    """
    check_columns(recs, "recommendations", REC_COLUMNS)
    check_columns(test, "test", ("user_id", "item_id"))
    test = test[["user_id", "item_id"]].astype(str).drop_duplicates()
    n_relevant = test.groupby("user_id").size()
    users = pd.Index(np.sort(n_relevant.index.to_numpy()), name="user_id")
    n_relevant = n_relevant.reindex(users).to_numpy()

    top = recs[recs["rank"] <= k]
    rows = users.get_indexer(top["user_id"].astype(str))
    keep = rows >= 0
    top, rows = top[keep], rows[keep]
    rank = top["rank"].to_numpy(dtype=np.int64)
    pairs = pd.MultiIndex.from_arrays([top["user_id"].astype(str), top["item_id"].astype(str)])
    hit = pairs.isin(pd.MultiIndex.from_frame(test)).astype(float)

    n = len(users)
    discount = 1.0 / np.log2(np.arange(1, k + 1) + 1.0)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])
    dcg = np.bincount(rows, weights=hit * discount[rank - 1], minlength=n)
    hits = np.bincount(rows, weights=hit, minlength=n)
    first = np.full(n, np.inf)
    np.minimum.at(first, rows[hit > 0], rank[hit > 0])
    return pd.DataFrame(
        {
            "ndcg": dcg / ideal[np.minimum(n_relevant, k)],
            "recall": hits / n_relevant,
            "precision": hits / k,
            "hit_rate": (hits > 0).astype(float),
            "mrr": 1.0 / first,
        },
        index=users,
    )
