"""Post-processing re-rankers that wrap any recommender and behave as one.

A re-ranker takes the top ``n_candidates`` items of its wrapped (base) model for each user
and rebuilds the top-``k`` list greedily (see :mod:`fairaudit.models._greedy`). It is a
:class:`~fairaudit.models.Recommender`: it is fitted, recommended from, audited, saved and
loaded like any model. Its folder is an ordinary model folder whose ``config.json`` nests
the base model's config under ``"base"`` and whose ``model.safetensors`` holds the base
model's tensors under the prefix ``base.``, so one checksum covers both and loading
executes no code. ``score`` returns the base model's relevance scores; the re-ranking acts
on ``recommend``, whose ``score`` column is the base model's score of each item.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, ClassVar, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from fairaudit.data import Dataset, Split, genre_matrix
from fairaudit.models._greedy import check_strength, greedy_kl_rerank, greedy_mmr_rerank, normalise_relevance
from fairaudit.models._base import FITTED_ATTRIBUTES, Progress, ProgressCallback, Recommender, register, restore_model

RerankKind = Literal["rerank_exposure", "rerank_calibrated", "rerank_mmr"]
EmbeddingSource = Literal["auto", "text", "genres"]
EMBEDDING_SOURCES = ("auto", "text", "genres")

_NO_BASE = "{0} needs a model to wrap: pass base=create_model('mf') (fitted on the same split, or unfitted)"
_NO_ITEM_COLUMN = "items table has no column '{0}' to re-rank by; item attribute columns are {1}"
_BAD_TARGETS = "targets for '{0}' must name its groups {1} with shares >= 0 summing to 1; got {2}"
_NO_GENRES = "items table has no 'genres' column ('A|B'); {0} needs item genres"
_BAD_SOURCE = "embedding must be one of {0}, got '{1}'"
_BAD_CANDIDATES = "n_candidates must be a positive integer, got {0}"
_BASE_PREFIX = "base."


def _row_normalise(matrix: torch.Tensor, order: Literal[1, 2]) -> torch.Tensor:
    norm = matrix.norm(p=order, dim=-1, keepdim=True)
    return torch.where(norm > 0, matrix / norm.clamp_min(1e-12), 0.0)


class Reranker(Recommender):
    """Base of the re-rankers: wraps ``base`` and reorders its top ``n_candidates``.

    Subclasses implement ``_prepare(dataset)`` (item-side tensors from the data),
    ``_rerank(users, relevance, items, k)`` (chosen candidate positions) and list their
    own tensors in ``_own_tensors``.
    """

    kind: ClassVar[str] = "rerank"
    _own_tensors: ClassVar[tuple[str, ...]] = ()

    @property
    def supports_cold_items(self) -> bool:  # type: ignore[override]
        """As the wrapped model: re-ranking only reorders its candidates."""
        return bool(self.base is not None and self.base.supports_cold_items)

    def evaluated_users(self) -> np.ndarray:
        """As the wrapped model (an imported list's users)."""
        return self.base.evaluated_users()

    @property
    def probeable(self) -> bool:  # type: ignore[override]
        """As the wrapped model: the re-ranking itself reads no user attribute."""
        return bool(self.base is None or self.base.probeable)

    def __init__(self, base: Recommender | None = None, strength: float = 0.5, n_candidates: int = 100):
        self.base = base
        self.strength = strength
        self.n_candidates = n_candidates

    # ---- configuration ------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters; the wrapped model appears as ``{"kind", "params"}``."""
        params = super().get_params()
        params["base"] = None if self.base is None else {"kind": self.base.kind, "params": self.base.get_params()}
        return params

    @classmethod
    def _from_config(cls, config: dict) -> "Reranker":
        return cls(**{**config["params"], "base": None})

    def _extra_config(self) -> dict[str, Any]:
        base = self.base
        return {"base": {"kind": base.kind, "params": base.get_params(), **base._extra_config()}}

    def fingerprint(self) -> str:
        """Kind plus a hash of the learned tensors (base included) and the re-ranking parameters."""
        self._check_fitted()
        digest = hashlib.sha256(super().fingerprint().encode())
        digest.update(json.dumps(self.get_params(), sort_keys=True, default=str).encode())
        return f"{self.kind}-{digest.hexdigest()[:16]}"

    # ---- fitting ------------------------------------------------------------------------
    def _fit(
        self,
        dataset: Dataset,
        split: Split,
        train_users: np.ndarray,
        train_items: np.ndarray,
        progress: ProgressCallback | None,
    ) -> None:
        if self.base is None:
            raise ValueError(_NO_BASE.format(type(self).__name__))
        check_strength(self.strength)
        if int(self.n_candidates) < 1:
            raise ValueError(_BAD_CANDIDATES.format(self.n_candidates))
        base = self.base
        fitted_here = (
            hasattr(base, "item_ids_")
            and base.data_fingerprint_ == self.data_fingerprint_
            and base.split_.get("fingerprint") == self.split_["fingerprint"]
        )
        start = time.perf_counter()
        if not fitted_here:
            base.fit(dataset, split, progress=progress)
        self._prepare(dataset)
        if fitted_here and progress is not None:
            # The base is reused as it is: report the one (non-iterative) step done here, as the
            # popularity model does, so progress displays and cancelling work as for any model.
            progress(Progress(1, 1, 0.0, time.perf_counter() - start))

    def _prepare(self, dataset: Dataset) -> None:
        raise NotImplementedError

    # ---- persistence --------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        state = {_BASE_PREFIX + name: t for name, t in self.base._state().items()}
        state.update({name: getattr(self, name) for name in self._own_tensors})
        return state

    def _load_state(self, tensors: dict[str, torch.Tensor], config: dict) -> None:
        base_state = {n.removeprefix(_BASE_PREFIX): t for n, t in tensors.items() if n.startswith(_BASE_PREFIX)}
        shared = {name: getattr(self, name) for name in FITTED_ATTRIBUTES}
        self.base = restore_model(config["base"], base_state, shared)
        for name in self._own_tensors:
            setattr(self, name, tensors[name])

    # ---- scoring ------------------------------------------------------------------------
    def _score_indices(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray | None,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        return self.base._score_indices(user_idx, item_idx, attribute_overrides)

    def recommend(
        self,
        user_ids: Sequence | None = None,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        batch_size: int = 1024,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """Re-ranked top-``k`` per user, ``user_id, rank, item_id, score`` (base model's scores).

        The candidates are the base model's top ``max(n_candidates, k)`` items (seen items
        excluded when ``exclude_seen``); users are processed in chunks of ``batch_size``.
        """
        self._check_fitted()
        users = np.arange(len(self.user_ids_)) if user_ids is None else self.user_positions(user_ids)
        k = int(min(k, len(self.item_ids_)))
        frames = [
            self._recommend_chunk(users[start : start + batch_size], k, exclude_seen, attribute_overrides)
            for start in range(0, len(users), batch_size)
        ]
        if not frames:
            return pd.DataFrame({"user_id": [], "rank": [], "item_id": [], "score": []})
        return pd.concat(frames, ignore_index=True)

    def _recommend_chunk(
        self, users: np.ndarray, k: int, exclude_seen: bool, attribute_overrides: Mapping[str, str] | None
    ) -> pd.DataFrame:
        n_cand = max(int(self.n_candidates), k)
        candidates = self.base.recommend(
            self.user_ids_[users],
            k=n_cand,
            exclude_seen=exclude_seen,
            batch_size=len(users),
            attribute_overrides=attribute_overrides,
        )
        rows = pd.Index(self.user_ids_[users]).get_indexer(candidates["user_id"])
        cols = candidates["rank"].to_numpy() - 1
        n_cand = min(n_cand, len(self.item_ids_))
        items = np.full((len(users), n_cand), -1, dtype=np.int64)
        scores = np.full((len(users), n_cand), -np.inf)
        items[rows, cols] = self._item_index.get_indexer(candidates["item_id"])
        scores[rows, cols] = candidates["score"].to_numpy(dtype=np.float64)
        items_t = torch.as_tensor(items)
        chosen = self._rerank(users, normalise_relevance(torch.as_tensor(scores)), items_t, k).numpy()
        valid = chosen >= 0
        picked = np.take_along_axis(items, np.where(valid, chosen, 0), axis=1)
        picked_scores = np.take_along_axis(scores, np.where(valid, chosen, 0), axis=1)
        ranks = np.broadcast_to(np.arange(1, chosen.shape[1] + 1), chosen.shape)
        return pd.DataFrame(
            {
                "user_id": np.broadcast_to(self.user_ids_[users][:, None], chosen.shape)[valid],
                "rank": ranks[valid],
                "item_id": self.item_ids_[picked[valid]],
                "score": picked_scores[valid],
            }
        )

    def _rerank(self, users: np.ndarray, relevance: torch.Tensor, items: torch.Tensor, k: int) -> torch.Tensor:
        raise NotImplementedError


def _gather_rows(matrix: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """``matrix[items]`` with rows of zeros where ``items`` is -1 (padding)."""
    out = matrix[items.clamp_min(0)]
    return torch.where((items >= 0)[..., None], out, 0.0)


def _dcg_weights(k: int) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(k, dtype=torch.float64) + 2.0)


@register
class ExposureReranker(Reranker):
    """Exposure-constrained re-ranking toward target shares of an item attribute.

    Each list is built greedily to trade relevance against the KL divergence between the
    target shares ``p`` of the groups of ``attribute`` (e.g. ``provider`` or
    ``popularity_tier``) and the list's DCG-position-weighted group shares ``q``
    (``w_r = 1/log2(r+1)``, the audit's DCG browsing model):
    ``argmax (1 - strength) rel(i) - strength KL(p || q~)`` (:func:`greedy_kl_rerank`).

    Parameters
    ----------
    base : Recommender
        Model to wrap (fitted on the same split, or unfitted: ``fit`` then fits it).
    strength : float
        ``lambda`` in ``[0, 1]``; 0 reproduces the base ranking exactly.
    attribute : str
        Item column defining the groups.
    targets : dict, optional
        Target share per group; default the catalogue share of each group.
    n_candidates : int
        Size of the base model's candidate pool per user.

    Examples
    --------
    >>> ExposureReranker(strength=0.3).get_params()["attribute"]
    'provider'
    """

    kind: ClassVar[str] = "rerank_exposure"
    _own_tensors: ClassVar[tuple[str, ...]] = ("item_groups_", "target_")

    def __init__(
        self,
        base: Recommender | None = None,
        strength: float = 0.5,
        attribute: str = "provider",
        targets: Mapping[str, float] | None = None,
        n_candidates: int = 100,
    ):
        super().__init__(base, strength, n_candidates)
        self.attribute = attribute
        self.targets = None if targets is None else dict(targets)

    def _prepare(self, dataset: Dataset) -> None:
        items = dataset.items
        if self.attribute not in items.columns:
            raise ValueError(_NO_ITEM_COLUMN.format(self.attribute, dataset.item_attributes))
        codes, groups = pd.factorize(items[self.attribute].astype(str), sort=True)
        if self.targets is None:
            target = np.bincount(codes, minlength=len(groups)) / len(codes)
        else:
            target = np.array([float(self.targets.get(g, -1.0)) for g in groups])
            if set(self.targets) != set(groups) or (target < 0).any() or not np.isclose(target.sum(), 1.0):
                raise ValueError(_BAD_TARGETS.format(self.attribute, list(groups), self.targets))
        self.groups_ = [str(g) for g in groups]
        self.item_groups_ = torch.as_tensor(codes, dtype=torch.int64)
        self.target_ = torch.as_tensor(target, dtype=torch.float64)

    def _extra_config(self) -> dict[str, Any]:
        return {**super()._extra_config(), "groups": self.groups_}

    def _load_state(self, tensors: dict[str, torch.Tensor], config: dict) -> None:
        super()._load_state(tensors, config)
        self.groups_ = list(config["groups"])

    def _rerank(self, users: np.ndarray, relevance: torch.Tensor, items: torch.Tensor, k: int) -> torch.Tensor:
        one_hot = torch.eye(len(self.groups_))[self.item_groups_]
        return greedy_kl_rerank(
            relevance,
            _gather_rows(one_hot, items),
            self.target_,
            strength=self.strength,
            k=k,
            weights=_dcg_weights(min(k, items.shape[1])),
        )


@register
class CalibratedReranker(Reranker):
    """Calibrated re-ranking toward each user's genre mix (Steck, RecSys 2018).

    The target ``p(g|u)`` is the mean genre distribution ``p(g|i) = 1/|genres(i)|`` over the
    user's training items; the list's ``q(g|u)`` is unweighted over positions, as in the
    audit's miscalibration metric. See :func:`greedy_kl_rerank`.

    Parameters
    ----------
    base : Recommender
        Model to wrap.
    strength : float
        ``lambda`` in ``[0, 1]``; 0 reproduces the base ranking exactly.
    n_candidates : int
        Size of the base model's candidate pool per user.

    Examples
    --------
    >>> CalibratedReranker(strength=0.5).kind
    'rerank_calibrated'
    """

    kind: ClassVar[str] = "rerank_calibrated"
    _own_tensors: ClassVar[tuple[str, ...]] = ("item_genres_",)

    def __init__(self, base: Recommender | None = None, strength: float = 0.5, n_candidates: int = 100):
        super().__init__(base, strength, n_candidates)

    def _prepare(self, dataset: Dataset) -> None:
        if "genres" not in dataset.items.columns:
            raise ValueError(_NO_GENRES.format(type(self).__name__))
        genres = genre_matrix(dataset.items, normalise=True)
        self.item_genres_ = torch.as_tensor(genres.to_numpy(dtype=np.float64, copy=True))

    def _rerank(self, users: np.ndarray, relevance: torch.Tensor, items: torch.Tensor, k: int) -> torch.Tensor:
        history = self.history_matrix(users).double() @ self.item_genres_
        target = _row_normalise(history, 1)
        return greedy_kl_rerank(
            relevance, _gather_rows(self.item_genres_, items), target, strength=self.strength, k=k
        )


@register
class MMRReranker(Reranker):
    """Diversity re-ranking by maximal marginal relevance over item vectors.

    Item vectors are the LLM text embeddings of the items
    (:func:`fairaudit.models.item_text_embeddings`) with ``embedding="text"``, multi-hot
    genre vectors with ``"genres"``; ``"auto"`` uses text embeddings when the encoder is
    available and genres otherwise (the choice is kept in ``embedding_source_``). Vectors are
    L2-normalised (cosine similarity). See :func:`greedy_mmr_rerank`.

    Parameters
    ----------
    base : Recommender
        Model to wrap.
    strength : float
        ``lambda`` in ``[0, 1]``; 0 reproduces the base ranking exactly.
    embedding : {"auto", "text", "genres"}
        Source of the item vectors.
    n_candidates : int
        Size of the base model's candidate pool per user.

    Examples
    --------
    >>> MMRReranker(strength=0.2, embedding="genres").get_params()["embedding"]
    'genres'
    """

    kind: ClassVar[str] = "rerank_mmr"
    _own_tensors: ClassVar[tuple[str, ...]] = ("item_vectors_",)

    def __init__(
        self,
        base: Recommender | None = None,
        strength: float = 0.5,
        embedding: EmbeddingSource = "auto",
        n_candidates: int = 100,
    ):
        super().__init__(base, strength, n_candidates)
        self.embedding = embedding

    def _prepare(self, dataset: Dataset) -> None:
        if self.embedding not in EMBEDDING_SOURCES:
            raise ValueError(_BAD_SOURCE.format(EMBEDDING_SOURCES, self.embedding))
        vectors = None
        if self.embedding in ("auto", "text"):
            vectors = _text_vectors(dataset, required=self.embedding == "text")
        self.embedding_source_ = "genres" if vectors is None else "text"
        if vectors is None:
            if "genres" not in dataset.items.columns:
                raise ValueError(_NO_GENRES.format(type(self).__name__))
            vectors = torch.as_tensor(genre_matrix(dataset.items).to_numpy(dtype=np.float64, copy=True))
        self.item_vectors_ = _row_normalise(vectors.double(), 2).float()

    def _extra_config(self) -> dict[str, Any]:
        return {**super()._extra_config(), "embedding_source": self.embedding_source_}

    def _load_state(self, tensors: dict[str, torch.Tensor], config: dict) -> None:
        super()._load_state(tensors, config)
        self.embedding_source_ = config["embedding_source"]

    def _rerank(self, users: np.ndarray, relevance: torch.Tensor, items: torch.Tensor, k: int) -> torch.Tensor:
        return greedy_mmr_rerank(
            relevance, _gather_rows(self.item_vectors_, items), strength=self.strength, k=k
        )


def _text_vectors(dataset: Dataset, *, required: bool) -> torch.Tensor | None:
    """LLM text embeddings of the catalogue, or ``None`` when unavailable and not ``required``."""
    try:
        from fairaudit.models import item_text_embeddings
    except ImportError:
        if required:
            raise
        return None
    return torch.as_tensor(np.asarray(item_text_embeddings(dataset)))
