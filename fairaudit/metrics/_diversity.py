"""Per-user diversity and novelty: intra-list diversity, genre coverage, novelty."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.metrics._common import list_mean, user_index, user_item_matrix


def intra_list_diversity(recs: pd.DataFrame, item_vectors: pd.DataFrame) -> pd.Series:
    """Intra-list diversity: ``ILD_u = 1 - mean_{i<j in L_u} cos(v_i, v_j)`` (Ziegler et al. 2005).

    ``item_vectors`` (indexed by ``item_id``) can be any item features: LLM text embeddings, the
    multi-hot genre matrix (:func:`fairaudit.data.genre_matrix`; cosine on multi-hot, not Jaccard), or binary
    item x train-user columns, which gives the co-occurrence similarity
    ``|U_i ∩ U_j| / sqrt(|U_i||U_j|)`` of Microsoft Recommenders' ``user_diversity``.
    Zero vectors have similarity 0 with everything. Lists with fewer than two items give NaN.

    Computed without forming pairs: with unit vectors ``x``,
    ``sum_{i<j} cos = (||sum_i x_i||^2 - sum_i ||x_i||^2) / 2``.

    >>> vectors = pd.DataFrame([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], index=["x", "y", "z"])
    >>> recs = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "rank": [1, 2, 1, 2], "item_id": ["x", "y", "x", "z"]})
    >>> intra_list_diversity(recs, vectors).round(4).tolist()
    [1.0, 0.2929]
    """
    catalogue = pd.Index(item_vectors.index.astype(str))
    vectors = item_vectors.to_numpy(dtype=float)
    # Scale each row by its largest |entry| first, so tiny (subnormal) vectors keep full precision.
    scale = np.abs(vectors).max(axis=1, keepdims=True) if vectors.size else np.zeros((len(vectors), 1))
    scaled = np.divide(vectors, scale, out=np.zeros_like(vectors), where=scale > 0)
    norms = np.linalg.norm(scaled, axis=1, keepdims=True)
    unit = np.divide(scaled, norms, out=np.zeros_like(vectors), where=norms > 0)
    users = user_index(recs)
    matrix = user_item_matrix(recs, users, catalogue)
    summed = matrix @ unit
    self_sim = matrix @ (norms.ravel() > 0).astype(float)
    length = np.asarray(matrix.sum(axis=1)).ravel()
    pairs = length * (length - 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_sim = ((summed**2).sum(axis=1) - self_sim) / 2 / pairs
    return pd.Series(np.where(pairs > 0, 1.0 - mean_sim, np.nan), index=users)


def genre_coverage(recs: pd.DataFrame, genres: pd.DataFrame) -> pd.Series:
    """Share of all catalogue genres present in a user's list: ``|U_{i in L_u} genres(i)| / n_genres``.

    ``genres`` is the multi-hot item x genre matrix (:func:`fairaudit.data.genre_matrix`).

    >>> genres = pd.DataFrame({"A": [1.0, 0.0], "B": [1.0, 0.0], "C": [0.0, 1.0], "D": [0.0, 0.0]}, index=["x", "y"])
    >>> genre_coverage(pd.DataFrame({"user_id": ["a"], "rank": [1], "item_id": ["x"]}), genres).tolist()
    [0.5]
    """
    users = user_index(recs)
    matrix = user_item_matrix(recs, users, pd.Index(genres.index.astype(str)))
    present = (matrix @ (genres.to_numpy(dtype=float) > 0)) > 0
    return pd.Series(present.sum(axis=1) / genres.shape[1], index=users)


def novelty(recs: pd.DataFrame, train: pd.DataFrame, catalogue: pd.Index) -> pd.Series:
    """Mean self-information of a user's list: ``(1/|L_u|) sum_{i in L_u} -log2(n_i / N)``.

    ``n_i`` is item ``i``'s training interaction count and ``N`` the number of training
    interactions (Castells et al. ECIR 2011; Microsoft Recommenders ``novelty``, whose global value
    equals the mean of this over users with equal list lengths). Items never seen in training
    use ``n_i = 1`` so the value stays finite (Recommenders drops them instead).

    >>> train = pd.DataFrame({"item_id": ["x", "x", "y", "z"]})
    >>> recs = pd.DataFrame({"user_id": ["a", "a"], "rank": [1, 2], "item_id": ["x", "y"]})
    >>> novelty(recs, train, pd.Index(["x", "y", "z"])).tolist()
    [1.5]
    """
    counts = train["item_id"].astype(str).value_counts().reindex(catalogue, fill_value=0)
    information = -np.log2(np.maximum(counts.to_numpy(dtype=float), 1.0) / max(len(train), 1))
    return list_mean(recs, pd.Series(information, index=catalogue))
