"""Validation carved from the training interactions, its NDCG@K, and early stopping with patience.

Nothing here reads a split's test part: the validation interactions are a seeded, per-user share
of ``split.train`` (:func:`carve_validation`), so early stopping and ``train --tune``
(:mod:`fairaudit.models._tuning`) choose settings the test figures never influenced.

A model that validated records what it chose in ``validation_`` (saved as ``"validation"`` in
``config.json``)::

    {"metric": "ndcg@10", "curve": [{"step": 1, "value": 0.21}, ...], "best_step": 7,
     "chosen": {"epochs": 7}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairaudit.data import Split
from fairaudit.models._base import Recommender, _csr_from_pairs, _top_k

#: Share of each user's training interactions held out for validation by default.
VALIDATION_FRACTION = 0.1
#: Cut-off of the validation NDCG.
VALIDATION_K = 10
_BAD_FRACTION = "validation_fraction must be in (0, 0.5], got {0!r}"
_BAD_PATIENCE = "patience must be a whole number >= 1 or None (no early stopping), got {0!r}"


def validation_metric(k: int = VALIDATION_K) -> str:
    """Name of the validation metric, as recorded under ``"metric"``.

    >>> validation_metric(10)
    'ndcg@10'
    """
    return f"ndcg@{k}"


def check_validation_settings(patience: int | None, fraction: float) -> None:
    """Refuse a patience or validation fraction a model cannot use (``ValueError`` naming it).

    >>> check_validation_settings(5, 0.1)
    """
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise ValueError(_BAD_PATIENCE.format(patience))
    if not isinstance(fraction, (int, float)) or not 0 < fraction <= 0.5:
        raise ValueError(_BAD_FRACTION.format(fraction))


def validation_mask(users: np.ndarray, *, fraction: float = VALIDATION_FRACTION, seed: int = 0) -> np.ndarray:
    """Boolean mask over training rows: the seeded per-user validation share.

    Each user with at least two training interactions gives ``round(fraction * n)`` of them (at
    least one, never all) to validation, drawn at random with ``seed``; users with one keep it.

    >>> int(validation_mask(np.array([0, 0, 0, 0, 1]), fraction=0.25, seed=0).sum())
    1
    """
    users = np.asarray(users)
    n = len(users)
    if n == 0:
        return np.zeros(0, dtype=bool)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(n), users))  # rows grouped by user, shuffled within each
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
    counts = np.diff(np.r_[starts, n])
    take = np.where(counts >= 2, np.clip(np.rint(fraction * counts), 1, counts - 1), 0).astype(np.int64)
    rank = np.arange(n) - np.repeat(starts, counts)
    mask = np.zeros(n, dtype=bool)
    mask[order] = rank < np.repeat(take, counts)
    return mask


def validation_split(split: Split, *, fraction: float = VALIDATION_FRACTION, seed: int = 0) -> Split:
    """A :class:`Split` of ``split.train`` alone: ``train`` = the fit part, ``test`` = the validation part.

    ``split.test`` is never read. Items withheld from training (cold items) stay withheld.

    >>> tr = pd.DataFrame({"user_id": ["a"] * 4, "item_id": list("wxyz")})
    >>> val = validation_split(Split(tr, tr.iloc[:0], "random", 0), fraction=0.25)
    >>> len(val.train), len(val.test), val.method
    (3, 1, 'validation')
    """
    users = pd.factorize(split.train["user_id"].astype(str))[0]
    mask = validation_mask(users, fraction=fraction, seed=seed)
    train, test = split.train[~mask].reset_index(drop=True), split.train[mask].reset_index(drop=True)
    return Split(train, test, "validation", seed, {"fraction": fraction}, split.cold_items)


@dataclass
class Holdout:
    """Validation inside one ``fit``, in the model's positions.

    ``fit_users``/``fit_items`` are the training pairs left to learn from; ``users`` are the users
    with validation items and ``truth_indptr``/``truth_indices`` their validation items (CSR, rows
    in ``users`` order); ``seen_indptr``/``seen_indices`` the fit part per user (CSR over all users).
    """

    fit_users: np.ndarray
    fit_items: np.ndarray
    users: np.ndarray
    truth_indptr: np.ndarray
    truth_indices: np.ndarray
    seen_indptr: np.ndarray
    seen_indices: np.ndarray

    @classmethod
    def carve(cls, train_users: np.ndarray, train_items: np.ndarray, n_users: int, *,
              fraction: float = VALIDATION_FRACTION, seed: int = 0) -> "Holdout":  # fmt: skip
        """Hold out each user's seeded validation share (:func:`validation_mask`) of the training pairs."""
        mask = validation_mask(train_users, fraction=fraction, seed=seed)
        val_users, val_items = train_users[mask], train_items[mask]
        users = np.unique(val_users)
        rows = np.searchsorted(users, val_users)
        truth_indptr, truth_indices = _csr_from_pairs(rows, val_items, len(users))
        seen_indptr, seen_indices = _csr_from_pairs(train_users[~mask], train_items[~mask], n_users)
        return cls(train_users[~mask], train_items[~mask], users, truth_indptr, truth_indices, seen_indptr, seen_indices)

    def ndcg(self, model: Recommender, *, k: int = VALIDATION_K, batch_size: int = 1024) -> float:
        """Mean NDCG@k over the validation users of ``model``'s current scores, fit-part items excluded.

        ``model`` scores through its ``_score_indices`` with its ``seen_`` history; the caller
        points that history at the fit part (:meth:`fit_history`) while validating.
        """
        tops = []
        with torch.no_grad():
            for start in range(0, len(self.users), batch_size):
                chunk = self.users[start : start + batch_size]
                scores = model._mask_seen(model._score_indices(chunk, None).float(), chunk)
                tops.append(_top_k(scores, min(k, scores.shape[1]))[1].cpu().numpy())
        top = np.concatenate(tops) if tops else np.zeros((0, k), dtype=np.int64)
        return ndcg_at_k(top, self.truth_indptr, self.truth_indices, k)

    def fit_history(self, model: Recommender) -> "_SwappedHistory":
        """Context manager: ``model``'s ``seen_`` history is the fit part inside, the full training outside."""
        return _SwappedHistory(model, self.seen_indptr, self.seen_indices)


class _SwappedHistory:
    def __init__(self, model: Recommender, indptr: np.ndarray, indices: np.ndarray) -> None:
        self.model, self.swap = model, (indptr, indices)

    def __enter__(self) -> None:
        self.saved = (self.model.seen_indptr_, self.model.seen_indices_)
        self.model.seen_indptr_, self.model.seen_indices_ = self.swap

    def __exit__(self, *exc: object) -> None:
        self.model.seen_indptr_, self.model.seen_indices_ = self.saved


def ndcg_at_k(top: np.ndarray, truth_indptr: np.ndarray, truth_indices: np.ndarray, k: int) -> float:
    """Mean binary NDCG@k of ranked lists ``top`` (users x <=k item positions) against CSR truth rows.

    Same definition as :func:`fairaudit.metrics.ndcg` (gain 1 per relevant item, ``1/log2(rank+1)``,
    ideal = all relevant first); users without truth items are skipped.

    >>> round(float(ndcg_at_k(np.array([[2, 0], [1, 2]]), np.array([0, 1, 2]), np.array([0, 1]), 2)), 4)
    0.8155
    """
    n_truth = np.diff(truth_indptr)
    has = n_truth > 0
    if not has.any():
        return 0.0
    top = np.asarray(top)[:, :k]
    rows = np.repeat(np.arange(len(n_truth)), n_truth)
    n_cols = int(max(top.max(initial=0), truth_indices.max(initial=0))) + 1
    truth_keys = rows.astype(np.int64) * n_cols + truth_indices
    keys = np.arange(len(top))[:, None].astype(np.int64) * n_cols + top
    hits = np.isin(keys, truth_keys)
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    dcg = (hits * discounts).sum(1)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))[np.minimum(n_truth, k) - 1]
    return float((dcg[has] / ideal[has]).mean())


@dataclass
class EarlyStopping:
    """Validation curve with patience: ``update(step, value)`` after each evaluation, ``stop`` when it should end.

    >>> stopper = EarlyStopping(patience=2)
    >>> [stopper.update(s, v) for s, v in enumerate([0.1, 0.3, 0.2, 0.25], start=1)], stopper.stop
    ([True, True, False, False], True)
    >>> stopper.best_step
    2
    """

    patience: int | None
    metric: str = validation_metric()
    curve: list[dict[str, Any]] = field(default_factory=list)
    best_step: int = 0
    best_value: float = -np.inf
    #: Evaluations since the last improvement.
    stale: int = 0

    def update(self, step: int, value: float) -> bool:
        """Record ``value`` at ``step``; True when it is the best so far (ties keep the earlier step)."""
        self.curve.append({"step": int(step), "value": float(value)})
        if value > self.best_value + 1e-12:
            self.best_step, self.best_value, self.stale = int(step), float(value), 0
            return True
        self.stale += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience is not None and self.stale >= self.patience

    def record(self, chosen: dict[str, Any]) -> dict[str, Any]:
        """The JSON-ready ``validation`` record with the settings ``chosen``."""
        return {"metric": self.metric, "curve": list(self.curve), "best_step": self.best_step, "chosen": dict(chosen)}


def stopped_message(stopper: EarlyStopping) -> str:
    """Progress note when training ends early."""
    return (
        f"stopped early: validation {stopper.metric} {stopper.best_value:.4f} at epoch {stopper.best_step} "
        f"did not improve for {stopper.patience} epochs"
    )


