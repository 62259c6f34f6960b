"""Recommendation lists made by another system, audited like a model (kind ``imported``).

An :class:`ImportedRecommender` holds validated lists (``fairaudit.data.load_recommendations``)
and answers the model contract from them, so the audit engine, comparisons, reports and
re-rankers (which re-rank within the list) work unchanged:

- ``recommend(user_ids, k)``: each user's stored list cut at ``k``; shorter lists stay short
  (never padded), users without a list get no rows, and ``exclude_seen`` is ignored (the lists
  are audited as the other system served them; seen items were reported at import).
- ``score``: the imported scores of listed items, ``-inf`` for every unlisted item (float32, as
  every model's ``score``). A file without scores has ``score = -rank``.
- ``attribute_overrides`` (counterfactual probes, local SHAP of a score): unsupported, raises
  :class:`NotRescorable`; ``probeable`` is ``False`` so callers (``explain_audit``) skip probes first.

It is not offered for training (``fairaudit.service.trainable_kinds()`` leaves it out); it saves
and loads like any model (the lists are its tensors).
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from fairaudit.data import Dataset, Split
from fairaudit.models._base import Progress, ProgressCallback, Recommender, register

NOT_RESCORABLE = (
    "'{0}' is a list of recommendations imported from another system: it cannot be re-scored with edited "
    "user attributes, so counterfactual probes and local SHAP of a score do not apply to it (the audit, "
    "SHAP gap drivers, comparisons and re-rankers do)"
)
_NO_LISTS = "ImportedRecommender needs its lists: build it with ImportedRecommender.from_recommendations(frame, dataset, split)"
_UNKNOWN_IDS = "Unknown {0} id(s) {1} in the lists; validate them with fairaudit.data.load_recommendations first"
_NO_SYSTEM = "System '{0}' is not in the recommendations frame; it holds {1}"


class NotRescorable(ValueError):
    """Asked to re-score a model that only holds imported lists (probes, local SHAP)."""


@register
class ImportedRecommender(Recommender):
    """Another system's recommendation lists in the model contract (see the module docstring).

    Parameters
    ----------
    system : str
        The system's name (the file's ``model`` value, or its stem).
    source : str
        The file the lists came from.
    sha256 : str
        That file's SHA-256 (recorded in ``audit.json``).

    Examples
    --------
    >>> from fairaudit.data import make_split
    >>> data = Dataset(pd.DataFrame({"user_id": ["u", "u", "v", "v"], "item_id": ["a", "b", "a", "c"]}),
    ...                pd.DataFrame({"user_id": ["u", "v"]}), pd.DataFrame({"item_id": ["a", "b", "c"]}))
    >>> lists = pd.DataFrame({"model": "ext", "user_id": ["u", "u"], "rank": [1, 2], "item_id": ["c", "a"],
    ...                       "score": [0.9, 0.1]})
    >>> model = ImportedRecommender.from_recommendations(lists, data, make_split(data, "random", seed=0))
    >>> model.recommend(["u", "v"], k=1)[["user_id", "rank", "item_id"]].values.tolist()
    [['u', 1, 'c']]
    >>> model.score(["u"]).astype(float).round(2).tolist(), model.probeable
    ([[0.1, -inf, 0.9]], False)
    """

    kind: ClassVar[str] = "imported"
    #: Probes need lists re-scored with edited attributes; imported lists cannot be (``NotRescorable``).
    probeable: ClassVar[bool] = False
    #: Why (shown by ``explain_audit``'s ``not_probed`` note and by ``probe_attribute``); ``{0}`` is the name.
    not_probeable_reason: ClassVar[str] = NOT_RESCORABLE

    def __init__(self, system: str = "", source: str = "", sha256: str = "", seed: int = 0) -> None:
        self.system = system
        self.source = source
        self.sha256 = sha256
        self.seed = seed

    @classmethod
    def from_recommendations(
        cls,
        frame: pd.DataFrame,
        dataset: Dataset,
        split: Split,
        *,
        system: str | None = None,
        source: str = "",
        sha256: str = "",
    ) -> "ImportedRecommender":
        """The lists of ``system`` (default: the frame's only or first ``model``) over ``dataset``, judged on ``split``.

        ``frame`` is a validated recommendations frame (``model, user_id, rank, item_id, score``);
        ``split`` is the ground truth (its training part is the history, as for a trained model).
        """
        if "model" in frame:
            names = list(pd.unique(frame["model"]))
            system = names[0] if system is None and names else system
            if system not in names:
                raise ValueError(_NO_SYSTEM.format(system, names))
            frame = frame[frame["model"] == system]
        model = cls(system=str(system or ""), source=str(source), sha256=str(sha256))
        model._lists = frame
        try:
            model.fit(dataset, split)
        finally:
            del model._lists
        return model

    def _fit(
        self,
        dataset: Dataset,
        split: Split,
        train_users: np.ndarray,
        train_items: np.ndarray,
        progress: ProgressCallback | None,
    ) -> None:
        frame = getattr(self, "_lists", None)
        if frame is None:
            raise ValueError(_NO_LISTS)
        users = self._user_index.get_indexer(frame["user_id"].to_numpy(dtype=object))
        items = self._item_index.get_indexer(frame["item_id"].to_numpy(dtype=object))
        for name, pos, column in (("user", users, "user_id"), ("item", items, "item_id")):
            if (pos < 0).any():
                raise KeyError(_UNKNOWN_IDS.format(name, frame[column].to_numpy()[pos < 0][:5].tolist()))
        order = np.lexsort((frame["rank"].to_numpy(), users))
        counts = np.bincount(users, minlength=len(self.user_ids_))
        self.lists_indptr_ = np.r_[0, np.cumsum(counts)].astype(np.int64)
        self.lists_items_ = items[order].astype(np.int64)
        self.lists_scores_ = frame["score"].to_numpy(dtype=np.float64)[order]
        if progress is not None:  # nothing is trained: one step, as the popularity model reports
            progress(Progress(1, 1, 0.0, 0.0))

    # ---- the lists ------------------------------------------------------------------------
    def evaluated_users(self) -> np.ndarray:
        """The users with a list (an audit evaluates those of them with test items)."""
        self._check_fitted()
        return self.user_ids_[np.diff(self.lists_indptr_) > 0]

    def _refuse(self, attribute_overrides: Mapping[str, str] | None) -> None:
        if attribute_overrides:
            raise NotRescorable(NOT_RESCORABLE.format(self.system or self.kind))

    def _score_indices(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray | None,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        self._refuse(attribute_overrides)
        rows, positions = self._list_rows(np.asarray(user_idx, dtype=np.int64), None)
        out = np.full((len(user_idx), len(self.item_ids_)), -np.inf, dtype=np.float32)
        out[rows, self.lists_items_[positions]] = self.lists_scores_[positions]
        if item_idx is not None:
            out = out[:, np.asarray(item_idx, dtype=np.int64)]
        return torch.from_numpy(out)

    def _list_rows(self, users: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(row in ``users``, position in the stored arrays) of each user's first ``k`` items, in rank order."""
        starts = self.lists_indptr_[users]
        lengths = self.lists_indptr_[users + 1] - starts
        if k is not None:
            lengths = np.minimum(lengths, k)
        rows = np.repeat(np.arange(len(users)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, np.repeat(starts, lengths) + offsets

    def recommend(
        self,
        user_ids: Sequence | None = None,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        batch_size: int = 1024,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """The stored lists of ``user_ids`` (default: every user with a list) cut at ``k``: ``user_id, rank, item_id, score``.

        Shorter lists stay short and users without a list get no rows; ``exclude_seen`` and
        ``batch_size`` are ignored (the lists are audited as served); ``attribute_overrides``
        raises :class:`NotRescorable`.
        """
        self._check_fitted()
        self._refuse(attribute_overrides)
        users = np.flatnonzero(np.diff(self.lists_indptr_) > 0) if user_ids is None else self.user_positions(user_ids)
        rows, positions = self._list_rows(users, int(k))
        ranks = positions - self.lists_indptr_[users][rows] + 1
        return pd.DataFrame(
            {
                "user_id": self.user_ids_[users][rows],
                "rank": ranks.astype(np.int64),
                "item_id": self.item_ids_[self.lists_items_[positions]],
                "score": self.lists_scores_[positions],
            }
        )

    # ---- persistence ----------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        return {
            "lists_indptr": torch.as_tensor(self.lists_indptr_),
            "lists_items": torch.as_tensor(self.lists_items_),
            "lists_scores": torch.as_tensor(self.lists_scores_),
        }

    def _load_state(self, tensors: dict[str, torch.Tensor], config: dict) -> None:
        self.lists_indptr_ = tensors["lists_indptr"].numpy()
        self.lists_items_ = tensors["lists_items"].numpy()
        self.lists_scores_ = tensors["lists_scores"].numpy()

    def get_params(self) -> dict[str, Any]:
        return {"system": self.system, "source": self.source, "sha256": self.sha256, "seed": self.seed}
