"""Most-popular baseline: every user gets the items with the most training interactions."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from fairaudit.data import Dataset, Split
from fairaudit.models._base import Progress, ProgressCallback, Recommender, register


@register
class PopularityRecommender(Recommender):
    """Scores each item by its number of training interactions (same list for everyone).

    Parameters
    ----------
    seed : int
        Unused (the model is deterministic); kept for a uniform interface.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"]}),
    ...                pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]}))
    >>> model = PopularityRecommender().fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> model.score(["b"]).tolist()
    [[1.0, 2.0, 0.0]]
    """

    kind = "popularity"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _fit(
        self,
        dataset: Dataset,
        split: Split,
        train_users: np.ndarray,
        train_items: np.ndarray,
        progress: ProgressCallback | None,
    ) -> None:
        counts = np.bincount(train_items, minlength=len(self.item_ids_))
        self.counts_ = torch.as_tensor(counts, dtype=torch.float32)
        if progress is not None:
            progress(Progress(1, 1, 0.0, 0.0))

    def _score_indices(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray | None,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        counts = self.counts_ if item_idx is None else self.counts_[torch.as_tensor(item_idx)]
        return counts.unsqueeze(0).expand(len(user_idx), -1)

    def _state(self) -> dict[str, torch.Tensor]:
        return {"counts": self.counts_}

    def _load_state(self, tensors: dict[str, torch.Tensor], config: dict) -> None:
        self.counts_ = tensors["counts"]
