"""Feedback-loop simulation: recommend, simulate clicks, append them to the training data, retrain.

Design (docs/dynamics.md):

- **Ground truth.** A preference model fitted on *all* logged interactions (default: implicit MF with
  32 factors, richer than the simulated MF's default 16) scores every (user, item); each user's scores divided by that user's largest
  score and clipped to ``[0, 1]`` are the true relevance (the click probability of an examined item).
  It is fixed for the whole run: users' tastes do not change, only what they are shown does.
- **Choice model.** ``"position"``: the position-based click model, rank ``r`` is examined with
  probability ``1 / log2(r + 1)`` (the DCG discount the audit's exposure uses) and clicked with the
  item's true relevance; ``"cascade"``: the user scans from the top and clicks the first attractive
  item, then stops (Craswell et al. 2008). In both, a user skips the round without any click with
  probability ``no_click``. ``popularity_bias`` (``beta``, default 0) adds herding: the click probability
  is multiplied by ``(count_i / max count) ** beta`` of the current training counts, so users follow
  the crowd (a bias source of the choice model; 0 = none).
- **Consumption.** ``"repeat"`` (default): lists leave out the items of the original log only, so an item
  a user clicked can be shown and clicked again (feeds, music, video; a repeated click adds no new
  training pair). ``"once"``: a clicked item never comes back to that user; every user then drains
  their favourites and lists drift towards the catalogue's remainder, which spreads exposure over
  rounds whatever the model does (docs/dynamics.md shows both).
- **Rounds.** Round 0 is the model trained on the log. Each round every user gets a top-K list (the
  mitigation re-ranker applied when set), clicks are drawn, the new clicked pairs are appended to the
  training interactions (only the last ``window`` batches, the log being the first, when ``window`` is
  set: retraining on recent data) and the model is retrained: from scratch, or by dynamic fine-tuning
  (``warm_start`` from the previous round's weights for ``finetune_epochs``).
- **Statistics** per round (``fairaudit.dynamics._rounds``): per-user-group metrics, gaps and exposure
  shares with bootstrap CIs over users, pooled over ``seeds`` repeated simulations by a two-stage
  bootstrap; ``drift.csv`` holds every quantity's change against round 0 with its paired CI.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch

from fairaudit._choices import CHOICE_MODELS, CONSUMPTIONS, RETRAIN_MODES, ChoiceModel, Consumption, RetrainMode
from fairaudit.data import Dataset, Split, csv_bytes, replacing_folder
from fairaudit.dynamics._rounds import (
    ROUND_COLUMNS,
    RoundInputs,
    RoundLists,
    pool_seeds,
    pooled_changes,
    round_statistics,
    user_metrics,
)
from fairaudit.metrics import item_groups, position_weights, seeded_rng
from fairaudit.models import RERANK_KINDS, ExternalRecommender, Recommender, Reranker, create_model, model_kinds

#: Hyper-parameters that set a model's training length; fine-tuning sets the first one a kind has.
EPOCH_PARAMETERS = ("epochs", "iterations")
DRIFT_COLUMNS = (
    "model", "round", "attribute", "group", "metric", "value", "reference_value", "change", "ci_low", "ci_high",
    "significant",
)  # fmt: skip
LIST_COLUMNS = ("seed", "round", "user_id", "rank", "item_id", "score", "clicked")
TIMING_COLUMNS = ("seed", "round", "fit_s", "recommend_s", "clicks", "n_train")
SIMULATION_FILE = "simulation.json"
#: Ground-truth MF settings: richer than MF's defaults (16 factors), so a simulated MF is not the truth itself.
TRUTH_PARAMS: dict[str, Any] = {"factors": 32}
FILES = {"rounds": "rounds.csv", "drift": "drift.csv", "lists": "recommendations.parquet", "timings": "timings.csv"}

_BAD_OPTION = "{0} must be one of {1}; got {2!r}"
_BAD_RANGE = "{0} must be {1}; got {2!r}"
_NO_WARM_START = (
    "retrain='finetune' needs models whose fit() accepts warm_start=previous_model; this FairAudit's {0} does not. "
    "Use retrain='scratch'"
)
_RERANKER_TEMPLATE = (
    "The simulated model is a re-ranker ({0}); pass its base model and set mitigation='{0}' instead, so the base is "
    "retrained each round and re-ranked"
)
_NOT_SIMULATION = "'{0}' is not a simulation folder: it has no {1} (write one with python -m fairaudit simulate)"
_UNKNOWN_SETTING = "{0!r} is not a simulation setting; settings are {1}"
_NO_USER_ATTRIBUTE = "users table has no column '{0}' to group users by; user attributes are {1}"


@dataclass(frozen=True)
class SimulationSettings:
    """Settings of a feedback-loop simulation (all recorded in ``simulation.json``).

    Parameters
    ----------
    rounds : int
        Retraining rounds after round 0 (round 0 = the model trained on the log).
    k : int
        List length.
    choice : {"position", "cascade"}
        Click model (see the module docstring).
    no_click : float
        Probability that a user skips a round without clicking, in ``[0, 1)``.
    retrain : {"scratch", "finetune"}
        Retrain from scratch each round, or warm-start from the previous round's weights.
    finetune_epochs : int
        Epochs (``epochs``/``iterations``) of each fine-tuning round.
    consumption : {"repeat", "once"}
        Whether clicked items can be shown again (see the module docstring).
    popularity_bias : float
        Herding exponent of the choice model (0 = clicks depend on true relevance and position only).
    window : int, optional
        Retrain on the last ``window`` batches of interactions only (the log is batch 0); ``None`` = all.
    mitigation : str, optional
        Re-ranker kind (``RERANK_KINDS``) applied to the lists of every round.
    strength : float
        The re-ranker's ``lambda``.
    mitigation_params : dict
        Further re-ranker parameters (e.g. ``{"attribute": "provider"}``).
    attributes : tuple of str
        User attributes whose groups are tracked.
    item_attribute : str
        Item attribute whose exposure shares are tracked (``"genre"`` for genres).
    seeds : int
        Repeated simulations (seeds ``seed .. seed + seeds - 1``): the second level of the CIs.
    seed : int
        First simulation seed; also seeds the bootstrap.
    bootstrap : int
        Bootstrap resamples of the CIs.
    min_group_size : int
        Groups with fewer users are flagged.
    truth_kind, truth_params
        Kind and parameters of the ground-truth preference model (default MF with :data:`TRUTH_PARAMS`).
    save_rounds : tuple of int
        Rounds whose model (of the first seed) is saved under ``models/round_NN`` of the output folder.

    Examples
    --------
    >>> SimulationSettings(rounds=3).check().rounds
    3
    """

    rounds: int = 10
    k: int = 10
    choice: ChoiceModel = "position"
    no_click: float = 0.3
    retrain: RetrainMode = "scratch"
    finetune_epochs: int = 2
    mitigation: str | None = None
    strength: float = 0.5
    mitigation_params: dict[str, Any] = field(default_factory=dict)
    attributes: tuple[str, ...] = ("gender",)
    item_attribute: str = "provider"
    seeds: int = 3
    seed: int = 0
    bootstrap: int = 200
    min_group_size: int = 30
    consumption: Consumption = "repeat"
    popularity_bias: float = 0.0
    window: int | None = None
    truth_kind: str = "mf"
    truth_params: dict[str, Any] = field(default_factory=lambda: dict(TRUTH_PARAMS))
    save_rounds: tuple[int, ...] = ()

    def check(self) -> "SimulationSettings":
        """``self`` when every setting is usable, else ``ValueError`` naming the setting."""
        for name, value, options in (
            ("choice", self.choice, CHOICE_MODELS),
            ("retrain", self.retrain, RETRAIN_MODES),
            ("consumption", self.consumption, CONSUMPTIONS),
            ("mitigation", self.mitigation, (None, *RERANK_KINDS)),
        ):
            if value not in options:
                raise ValueError(_BAD_OPTION.format(name, options, value))
        for name, value in (("rounds", self.rounds), ("k", self.k), ("seeds", self.seeds),
                            ("bootstrap", self.bootstrap), ("finetune_epochs", self.finetune_epochs)):  # fmt: skip
            if int(value) != value or value < 1:
                raise ValueError(_BAD_RANGE.format(name, "a positive integer", value))
        if not 0.0 <= self.no_click < 1.0:
            raise ValueError(_BAD_RANGE.format("no_click", "in [0, 1)", self.no_click))
        if self.popularity_bias < 0:
            raise ValueError(_BAD_RANGE.format("popularity_bias", ">= 0", self.popularity_bias))
        if self.window is not None and (int(self.window) != self.window or self.window < 1):
            raise ValueError(_BAD_RANGE.format("window", "a positive integer or None", self.window))
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(_BAD_RANGE.format("strength", "in [0, 1]", self.strength))
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists), as recorded in ``simulation.json``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SimulationSettings":
        """Inverse of :meth:`to_dict`; ``ValueError`` naming a key that is no setting.

        >>> SimulationSettings.from_dict(SimulationSettings(attributes=("age_band",)).to_dict()).attributes
        ('age_band',)
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(_UNKNOWN_SETTING.format(unknown[0], sorted(names)))
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass
class SimulationResult:
    """Tables of a simulation: ``rounds`` (rounds.csv), ``drift``, ``lists`` and ``timings``."""

    rounds: pd.DataFrame
    drift: pd.DataFrame
    lists: pd.DataFrame
    timings: pd.DataFrame
    settings: SimulationSettings
    meta: dict[str, Any]

    def pooled(self) -> pd.DataFrame:
        """The rows of ``rounds`` pooled over seeds (``seed == "all"``)."""
        return self.rounds[self.rounds["seed"] == "all"].reset_index(drop=True)


def true_relevance(dataset: Dataset, *, kind: str = "mf", params: dict[str, Any] | None = None) -> np.ndarray:
    """Ground-truth relevance (users x items, dataset order) from a model fitted on all interactions.

    Each user's scores are divided by the user's largest score and clipped to ``[0, 1]``; a user
    whose scores are all <= 0 (no interactions) gets zeros and never clicks.

    >>> from fairaudit.data import generate_sample
    >>> data, _ = generate_sample(seed=1, n_users=40, n_items=30, n_interactions=400)
    >>> rel = true_relevance(data, params={"iterations": 3})
    >>> rel.shape, bool(rel.max() <= 1.0)
    ((40, 30), True)
    """
    interactions = dataset.interactions[["user_id", "item_id"]]
    everything = Split(interactions, interactions.iloc[:0], "all", 0)
    model = create_model(kind, **(params or {})).fit(dataset, everything)
    scores = model.score(model.user_ids_).astype(np.float64)
    top = scores.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(np.where(top > 0, scores / np.where(top > 0, top, 1.0), 0.0), 0.0, 1.0)


def simulate_clicks(
    relevance: np.ndarray, *, choice: ChoiceModel = "position", no_click: float = 0.0, rng: np.random.Generator
) -> np.ndarray:
    """Clicks (users x K bools) on lists whose items have true ``relevance`` (0 for empty slots).

    >>> rng = np.random.default_rng(0)
    >>> simulate_clicks(np.array([[1.0, 1.0, 0.0]]), choice="cascade", rng=rng).tolist()
    [[True, False, False]]
    """
    n, k = relevance.shape
    engaged = rng.random(n) >= no_click
    draws = rng.random((n, k))
    if choice == "position":
        clicked = draws < position_weights(np.arange(1, k + 1), browsing="dcg") * relevance
    else:
        attractive = draws < relevance
        first = np.argmax(attractive, axis=1)
        clicked = np.zeros_like(attractive)
        clicked[np.arange(n), first] = attractive[np.arange(n), first]
    return clicked & engaged[:, None]


def simulate(
    dataset: Dataset,
    model: Recommender,
    settings: SimulationSettings = SimulationSettings(),
    *,
    relevance: np.ndarray | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Run ``settings.seeds`` feedback-loop simulations of ``model`` and pool their round statistics.

    ``model`` is a template: each round trains a new model of its kind with its parameters (``seed``
    set to the simulation seed); a model that is not a registered kind (an
    :class:`~fairaudit.models.ExternalRecommender`) is copied and re-fitted, which records the new
    interactions only. ``relevance`` overrides the ground truth (default :func:`true_relevance`).
    With ``out``, the folder gets ``rounds.csv``, ``drift.csv``, ``recommendations.parquet``,
    ``timings.csv``, ``simulation.json`` and ``models/round_NN`` of ``settings.save_rounds``.
    ``progress`` gets one line per finished round of each seed: ``(rounds + 1) * seeds`` lines in all.
    """
    settings.check()
    if isinstance(model, Reranker):
        raise ValueError(_RERANKER_TEMPLATE.format(model.kind))
    for attribute in settings.attributes:
        if attribute not in dataset.users.columns:
            raise ValueError(_NO_USER_ATTRIBUTE.format(attribute, dataset.user_attributes))
    membership = item_groups(dataset.items, settings.item_attribute)
    if relevance is None:
        relevance = true_relevance(dataset, kind=settings.truth_kind, params=settings.truth_params)
    say = progress or (lambda line: None)
    context = (
        replacing_folder(out, overwrite=overwrite, is_ours=_is_simulation_folder, kind="simulation folder")
        if out is not None
        else contextlib.nullcontext(None)
    )
    with context as folder:
        runs = [
            _run_seed(dataset, model, settings, relevance, membership, seed=settings.seed + i,
                      save_to=folder if i == 0 else None, say=say)  # fmt: skip
            for i in range(settings.seeds)
        ]
        result = _assemble(runs, settings, model, dataset)
        if folder is not None:
            _write(result, Path(folder))
    return result


@dataclass
class _SeedRun:
    rows: pd.DataFrame  # layout of every round's rows (attribute, group, metric, n_users, flagged)
    values: np.ndarray  # (rounds, rows)
    low: np.ndarray
    high: np.ndarray
    replicates: np.ndarray  # (rounds, rows, R)
    lists: pd.DataFrame
    timings: pd.DataFrame


def fresh_model(template: Recommender, *, seed: int | None = None, overrides: dict[str, Any] | None = None) -> Recommender:
    """A new unfitted model of ``template``'s kind and settings (``seed`` and ``overrides`` replacing its own).

    A model that is not a registered kind (an :class:`~fairaudit.models.ExternalRecommender`: code) is
    copied; fitting the copy only records the new data. Overrides the kind does not take are ignored.

    >>> fresh_model(create_model("mf", factors=4), seed=3, overrides={"iterations": 2, "epochs": 2}).get_params()["iterations"]
    2
    """
    if isinstance(template, ExternalRecommender) or template.kind not in model_kinds():
        return copy.copy(template)
    params = template.get_params()
    if seed is not None and "seed" in params:
        params["seed"] = seed
    return create_model(template.kind, **{**params, **{k: v for k, v in (overrides or {}).items() if k in params}})


def _fit(model: Recommender, dataset: Dataset, split: Split, previous: Recommender | None) -> Recommender:
    if previous is None:
        return model.fit(dataset, split)
    if "warm_start" not in inspect.signature(type(model).fit).parameters:
        raise ValueError(_NO_WARM_START.format(type(model).__name__))
    return model.fit(dataset, split, warm_start=previous)


def _run_seed(dataset, template, settings, relevance, membership, *, seed, save_to, say) -> _SeedRun:
    user_ids = dataset.users["user_id"].astype(str).to_numpy(dtype=object)
    item_ids = pd.Index(dataset.items["item_id"].astype(str))
    user_index = pd.Index(user_ids)
    batches = [dataset.interactions[["user_id", "item_id"]].astype(str).reset_index(drop=True)]
    train = batches[0]
    popularity = np.bincount(item_ids.get_indexer(train["item_id"]), minlength=len(item_ids)).astype(float)
    inputs = RoundInputs(
        user_groups={a: dataset.users[a].astype(str).to_numpy() for a in settings.attributes},
        item_membership=membership.reindex(item_ids).fillna(0.0),
        item_attribute=settings.item_attribute,
        bootstrap=settings.bootstrap,
        seed=settings.seed,
        min_group_size=settings.min_group_size,
    )
    finetune = {name: settings.finetune_epochs for name in EPOCH_PARAMETERS}
    discount = position_weights(np.arange(1, settings.k + 1), browsing="dcg")
    model, rows, stats, lists, timings = None, None, [], [], []
    for round_ in range(settings.rounds + 1):
        split = Split(train, train.iloc[:0], "simulation", seed, {"round": round_})
        start = time.perf_counter()
        warm = model if settings.retrain == "finetune" and model is not None else None
        model = _fit(fresh_model(template, seed=seed, overrides=finetune if warm is not None else None), dataset, split, warm)
        served = model
        if settings.mitigation is not None:
            served = create_model(settings.mitigation, base=model, strength=settings.strength,
                                  **settings.mitigation_params).fit(dataset, split)  # fmt: skip
        excluded = batches[0] if settings.consumption == "repeat" else train
        if settings.consumption == "repeat":
            _exclude_only(served, excluded, user_index, item_ids)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        recs = served.recommend(user_ids, k=settings.k)
        recommend_s = time.perf_counter() - start
        if save_to is not None and round_ in settings.save_rounds:
            served.save(Path(save_to) / "models" / f"round_{round_:02d}")
        user_pos = user_index.get_indexer(recs["user_id"])
        items = np.full((len(user_ids), settings.k), -1, dtype=np.int64)
        items[user_pos, recs["rank"].to_numpy() - 1] = item_ids.get_indexer(recs["item_id"])
        listed = np.where(items >= 0, relevance[np.arange(len(user_ids))[:, None], np.maximum(items, 0)], 0.0)
        if settings.popularity_bias:
            counts = np.bincount(item_ids.get_indexer(train["item_id"]), minlength=len(item_ids)).astype(float)
            herd = (counts / max(counts.max(), 1.0)) ** settings.popularity_bias
            attraction = np.where(items >= 0, listed * herd[np.maximum(items, 0)], 0.0)
        else:
            attraction = listed
        clicked = simulate_clicks(attraction, choice=settings.choice, no_click=settings.no_click,
                                  rng=seeded_rng(seed, "clicks", str(round_)))  # fmt: skip
        ideal = _ideal_dcg(relevance, excluded, user_index, item_ids, discount)
        round_lists = RoundLists(items, clicked, listed)
        metrics = user_metrics(round_lists, ideal, popularity, len(item_ids))
        frame, reps = round_statistics(metrics, round_lists, inputs)
        rows = frame if rows is None else rows
        stats.append((frame["value"].to_numpy(), frame["ci_low"].to_numpy(), frame["ci_high"].to_numpy(), reps))
        recs = recs.assign(seed=seed, round=round_, clicked=clicked[user_pos, recs["rank"].to_numpy() - 1])
        lists.append(recs[list(LIST_COLUMNS)])
        n_clicks = int(clicked.sum())
        timings.append((seed, round_, fit_s, recommend_s, n_clicks, len(train)))
        say(f"seed {seed} round {round_}: fit {fit_s:.2f}s, recommend {recommend_s:.2f}s, {n_clicks} clicks")
        if round_ < settings.rounds:
            u, r = np.nonzero(clicked)
            new = pd.DataFrame({"user_id": user_ids[u], "item_id": item_ids.to_numpy()[items[u, r]]})
            batches.append(new)
            kept = batches if settings.window is None else batches[-settings.window :]
            train = pd.concat(kept, ignore_index=True).drop_duplicates(ignore_index=True)
    values, low, high, reps = (np.stack(x) for x in zip(*stats))
    return _SeedRun(rows, values, low, high, reps, pd.concat(lists, ignore_index=True),
                    pd.DataFrame(timings, columns=list(TIMING_COLUMNS)))  # fmt: skip


def _exclude_only(model: Recommender, pairs: pd.DataFrame, user_index: pd.Index, item_ids: pd.Index) -> None:
    """Make ``recommend(exclude_seen=True)`` exclude only ``pairs`` (the log), so clicked items can be shown again."""
    users, items = user_index.get_indexer(pairs["user_id"]), item_ids.get_indexer(pairs["item_id"])
    order = np.lexsort((items, users))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=len(user_index)))])
    for target in (model, getattr(model, "base", None)):
        if target is not None:
            target.seen_indptr_, target.seen_indices_ = indptr, items[order].astype(np.int64)


def _ideal_dcg(relevance, excluded, user_index, item_ids, discount) -> np.ndarray:
    """Best DCG@K a list without the ``excluded`` pairs could reach under the true relevance."""
    masked = torch.as_tensor(relevance, dtype=torch.float64).clone()
    masked[torch.as_tensor(user_index.get_indexer(excluded["user_id"])),
           torch.as_tensor(item_ids.get_indexer(excluded["item_id"]))] = 0.0  # fmt: skip
    k = min(len(discount), masked.shape[1])
    top = torch.topk(masked, k, dim=1).values.numpy()
    return top @ discount[:k]


def _assemble(runs: list[_SeedRun], settings: SimulationSettings, template: Recommender, dataset: Dataset):
    name = template.kind if settings.mitigation is None else f"{settings.mitigation}({template.kind})@{settings.strength:g}"
    layout = runs[0].rows[["attribute", "group", "metric", "n_users", "flagged"]]
    n_rounds = settings.rounds + 1
    frames = []
    for run in runs:
        for round_ in range(n_rounds):
            frames.append(_round_frame(name, round_, str(run.timings["seed"].iloc[0]), layout,
                                       run.values[round_], run.low[round_], run.high[round_]))  # fmt: skip
    values = np.stack([run.values for run in runs])
    replicates = np.stack([run.replicates for run in runs])
    pooled, low, high = pool_seeds(values, replicates, seed=settings.seed)
    for round_ in range(n_rounds):
        frames.append(_round_frame(name, round_, "all", layout, pooled[round_], low[round_], high[round_]))
    rounds = pd.concat(frames, ignore_index=True)[list(ROUND_COLUMNS)]
    change, c_low, c_high = pooled_changes(values, replicates, seed=settings.seed)
    drift = pd.concat(
        [
            layout[["attribute", "group", "metric"]].assign(
                model=name, round=round_, value=pooled[round_], reference_value=pooled[0], change=change[round_],
                ci_low=c_low[round_], ci_high=c_high[round_],
                significant=(c_low[round_] > 0) | (c_high[round_] < 0),
            )
            for round_ in range(1, n_rounds)
        ],
        ignore_index=True,
    )[list(DRIFT_COLUMNS)]  # fmt: skip
    meta = {
        "settings": asdict(settings),
        "model": {"name": name, "kind": template.kind, "params": _json_params(template)},
        "data": {"name": dataset.name, "fingerprint": dataset.fingerprint(), **dataset.summary()},
    }
    return SimulationResult(
        rounds=rounds,
        drift=drift,
        lists=pd.concat([run.lists for run in runs], ignore_index=True),
        timings=pd.concat([run.timings for run in runs], ignore_index=True),
        settings=settings,
        meta=meta,
    )


def _round_frame(name, round_, seed, layout, value, low, high) -> pd.DataFrame:
    return layout.assign(model=name, round=round_, seed=seed, value=value, ci_low=low, ci_high=high)


def _json_params(model: Recommender) -> dict[str, Any]:
    return json.loads(json.dumps(model.get_params(), default=str))


def read_simulation(directory: str | Path) -> SimulationResult:
    """The tables and settings of a simulation folder written by :func:`simulate` (``out=``)."""
    from fairaudit.data import read_csv

    directory = Path(directory)
    if not _is_simulation_folder(directory):
        raise FileNotFoundError(_NOT_SIMULATION.format(directory, SIMULATION_FILE))
    meta = json.loads((directory / SIMULATION_FILE).read_text(encoding="utf-8"))
    text = {"model": str, "seed": str, "attribute": str, "group": str, "metric": str}
    return SimulationResult(
        rounds=read_csv(directory / FILES["rounds"], dtype=text),
        drift=read_csv(directory / FILES["drift"], dtype=text),
        lists=pd.read_parquet(directory / FILES["lists"]),
        timings=read_csv(directory / FILES["timings"]),
        settings=SimulationSettings.from_dict(meta["settings"]),
        meta=meta,
    )


def _is_simulation_folder(directory: Path) -> bool:
    return (Path(directory) / SIMULATION_FILE).is_file()


def _write(result: SimulationResult, folder: Path) -> None:
    (folder / FILES["rounds"]).write_bytes(csv_bytes(result.rounds))
    (folder / FILES["drift"]).write_bytes(csv_bytes(result.drift))
    (folder / FILES["timings"]).write_bytes(csv_bytes(result.timings))
    result.lists.to_parquet(folder / FILES["lists"], index=False)
    (folder / SIMULATION_FILE).write_text(json.dumps(result.meta, indent=1, default=str))
