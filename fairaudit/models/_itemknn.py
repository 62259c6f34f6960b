"""Item-kNN baseline: cosine similarity between items' binary training user vectors."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import scipy.sparse as sp
import torch

from fairaudit.data import Dataset, Split
from fairaudit.models._base import Progress, ProgressCallback, Recommender, register

_BAD_NEIGHBOURS = "n_neighbors must be a positive integer or None (all items), got {0!r}"


def item_cosine(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, *, shrinkage: float = 0.0
) -> np.ndarray:
    """Dense item x item cosine of the binary user-item matrix, diagonal set to zero.

    ``sim[i, j] = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrinkage)``.

    >>> item_cosine(np.array([0, 0, 1]), np.array([0, 1, 1]), 2, 2).astype(float).round(3).tolist()
    [[0.0, 0.707], [0.707, 0.0]]
    """
    matrix = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
    matrix.data[:] = 1.0  # duplicates (if any) count once
    co = (matrix.T @ matrix).toarray().astype(np.float32)
    norms = np.sqrt(np.diag(co))
    sim = co / (np.outer(norms, norms) + shrinkage + 1e-12)
    np.fill_diagonal(sim, 0.0)
    return sim


@register
class ItemKNNRecommender(Recommender):
    """Item-based collaborative filtering: ``score(u, j) = sum_{i in history(u)} sim(i, j)``.

    Parameters
    ----------
    n_neighbors : int or None
        Keep only each target item's ``n_neighbors`` most similar items (None: all); the
        default 200 was the best of 50/100/200/all on MovieLens 100K (docs/benchmarks.md).
    shrinkage : float
        Added to the cosine denominator; damps similarities backed by few users.
    seed : int
        Unused (deterministic); kept for a uniform interface.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"]}),
    ...                pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]}))
    >>> model = ItemKNNRecommender(shrinkage=0.0).fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> model.score(["b"]).astype(float).round(3).tolist()
    [[0.707, 0.0, 0.0]]
    """

    kind = "itemknn"

    def __init__(self, n_neighbors: int | None = 200, shrinkage: float = 10.0, seed: int = 0) -> None:
        self.n_neighbors = n_neighbors
        self.shrinkage = shrinkage
        self.seed = seed

    def _fit(
        self,
        dataset: Dataset,
        split: Split,
        train_users: np.ndarray,
        train_items: np.ndarray,
        progress: ProgressCallback | None,
    ) -> None:
        if self.n_neighbors is not None and (not isinstance(self.n_neighbors, int) or self.n_neighbors < 1):
            raise ValueError(_BAD_NEIGHBOURS.format(self.n_neighbors))
        n_items = len(self.item_ids_)
        sim = torch.from_numpy(
            item_cosine(train_users, train_items, len(self.user_ids_), n_items, shrinkage=self.shrinkage)
        )
        if self.n_neighbors is not None and self.n_neighbors < n_items:
            # Column j holds the similarities of target j to its neighbours i; keep the top ones.
            top = torch.topk(sim, self.n_neighbors, dim=0)
            sim = torch.zeros_like(sim).scatter_(0, top.indices, top.values)
        self.similarity_ = sim
        if progress is not None:
            progress(Progress(1, 1, 0.0, 0.0))

    def _score_indices(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray | None,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        sim = self.similarity_ if item_idx is None else self.similarity_[:, torch.as_tensor(item_idx)]
        return self.history_matrix(user_idx) @ sim

    def score_with_history(
        self,
        user_idx: np.ndarray,
        history_weights: torch.Tensor,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        """Scores of all items (len(user_idx) x n_items) for arbitrary input histories.

        ``history_weights`` (dense or sparse, len(user_idx) x n_items) replaces the 0/1 training
        history, e.g. with items masked to 0 for SHAP history explanations
        (``fairaudit.explain.explain_score``); attributes are ignored.
        """
        self._check_fitted()
        weights = history_weights.to_dense() if history_weights.is_sparse else history_weights
        return weights.float() @ self.similarity_

    def _state(self) -> dict[str, torch.Tensor]:
        return {"similarity": self.similarity_}

    def _load_state(self, tensors: dict[str, torch.Tensor], config: dict) -> None:
        self.similarity_ = tensors["similarity"]
