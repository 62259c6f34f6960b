"""``train --tune``: a fixed, documented grid of hyper-parameters chosen on validation NDCG@10.

The budget is the grid: one fit per entry of :data:`TUNING_GRIDS` (popularity 1, item-kNN 12,
mf 12, llm 3). Every candidate is judged on the same seeded per-user validation share of
``split.train`` (:func:`fairaudit.models._validation.validation_mask`); ``split.test`` is never
read, so the chosen settings cannot depend on the test interactions. Iterative kinds (``mf``,
``llm``) also early-stop on that validation set (``patience``), so each candidate's number of
epochs is chosen too. The winner is returned fitted on the whole of ``split.train``, with its
choice in ``validation_`` (the curve of its epochs, or of the grid for the other kinds, and every
trial under ``"trials"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from fairaudit._choices import TUNING_PATIENCE
from fairaudit.data import Dataset, Split
from fairaudit.models._base import ProgressCallback, Recommender, create_model
from fairaudit.models._validation import (
    VALIDATION_FRACTION, VALIDATION_K, EarlyStopping, Holdout, validation_split,
)  # fmt: skip

#: The search space per kind, in the order tried (ties keep the earlier entry).
TUNING_GRIDS: dict[str, list[dict[str, Any]]] = {
    "popularity": [{}],
    "itemknn": [{"n_neighbors": n, "shrinkage": s} for n in (50, 100, 200, None) for s in (0.0, 10.0, 50.0)],
    "mf": [{"factors": f, "reg": r, "alpha": a} for f in (16, 32, 64) for r in (0.1, 1.0) for a in (1.0, 4.0)],
    # Weight averaging first: on the MovieLens 100K validation split it gained 0.008 NDCG@10 (docs/benchmarks.md).
    "llm": [{"weight_averaging": 0.98}, {"weight_averaging": 0.9}, {"weight_averaging": 0.98, "weight_decay": 1e-3}],
}
#: Most epochs (iterations) of an iterative candidate; early stopping usually ends it sooner.
TUNING_MAX_EPOCHS = {"mf": 50, "llm": 200}
_NO_GRID = "No tuning grid for model kind '{0}'; tunable kinds: {1}"

TrialCallback = Callable[[int, int, dict, float], None]


@dataclass
class TuningResult:
    """The tuned model (fitted on all of ``split.train``), the winning settings and every trial."""

    model: Recommender
    params: dict[str, Any]
    trials: list[dict[str, Any]]


def tunable_kinds() -> tuple[str, ...]:
    """Kinds with a tuning grid.

    >>> tunable_kinds()
    ('popularity', 'itemknn', 'mf', 'llm')
    """
    return tuple(TUNING_GRIDS)


def tune(
    kind: str,
    dataset: Dataset,
    split: Split,
    *,
    params: dict[str, Any] | None = None,
    grid: list[dict[str, Any]] | None = None,
    fraction: float = VALIDATION_FRACTION,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    on_trial: TrialCallback | None = None,
) -> TuningResult:
    """Fit ``kind`` with each setting of ``grid`` (default :data:`TUNING_GRIDS`) and keep the best on validation.

    ``params`` are fixed settings every candidate shares (e.g. device, seed). Only
    ``split.train`` is read. ``progress`` reaches each candidate's ``fit``; ``on_trial(i, n,
    settings, value)`` is called after each trial.

    >>> from fairaudit.data import load_sample, make_split
    >>> data = load_sample()
    >>> result = tune("popularity", data, make_split(data, "random", seed=0))
    >>> result.model.validation_["metric"], len(result.trials)
    ('ndcg@10', 1)
    """
    if grid is None and kind not in TUNING_GRIDS:
        raise ValueError(_NO_GRID.format(kind, tunable_kinds()))
    grid = TUNING_GRIDS[kind] if grid is None else grid
    fixed = dict(params or {})
    iterative = kind in TUNING_MAX_EPOCHS
    if iterative:
        epochs_name = "iterations" if kind == "mf" else "epochs"
        fixed.setdefault(epochs_name, TUNING_MAX_EPOCHS[kind])
        fixed.update(patience=fixed.get("patience") or TUNING_PATIENCE[kind], validation_fraction=fraction)
        fixed.setdefault("seed", seed)
    trials, best, best_model = [], None, None
    fit_part = None if iterative else validation_split(split, fraction=fraction, seed=seed)
    for number, setting in enumerate(grid, start=1):
        candidate = create_model(kind, **{**fixed, **setting})
        if iterative:
            # The model carves the same validation share itself and early-stops on it.
            candidate.fit(dataset, split, progress=progress)
            record = candidate.validation_
            value = max(point["value"] for point in record["curve"])
            chosen = {**setting, **record["chosen"]}
        else:
            candidate.fit(dataset, fit_part, progress=progress)
            value = _holdout_ndcg(candidate, split, fraction, seed)
            chosen = dict(setting)
        trials.append({"step": number, "params": chosen, "value": float(value)})
        if on_trial is not None:
            on_trial(number, len(grid), chosen, float(value))
        if best is None or value > best["value"] + 1e-12:
            best, best_model = trials[-1], candidate
    if iterative:
        model = best_model  # already refitted on all of split.train for its best number of epochs
        record = dict(model.validation_)
    else:
        model = create_model(kind, **{**fixed, **best["params"]}).fit(dataset, split, progress=progress)
        stopper = EarlyStopping(None)
        for trial in trials:
            stopper.update(trial["step"], trial["value"])
        record = stopper.record({})
    record["chosen"] = dict(best["params"])
    record["trials"] = trials
    model.validation_ = record
    return TuningResult(model, dict(best["params"]), trials)


def _holdout_ndcg(model: Recommender, split: Split, fraction: float, seed: int) -> float:
    """Validation NDCG@10 of ``model`` fitted on the fit part of ``split.train`` (the same carve as the models')."""
    users = model.user_positions(split.train["user_id"])
    items = model.item_positions(split.train["item_id"])
    holdout = Holdout.carve(np.asarray(users), np.asarray(items), len(model.user_ids_), fraction=fraction, seed=seed)
    return holdout.ndcg(model, k=VALIDATION_K)
