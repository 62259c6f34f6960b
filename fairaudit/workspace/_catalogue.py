"""What the Model page offers, as data: presets, help text and data-checked choices for every
hyper-parameter, readable model names, and the leaderboard of trained models.

Nothing here trains: :func:`~fairaudit.workspace.start_training` does, in a worker process.
"""

from __future__ import annotations

import inspect
import re
import time
from typing import TYPE_CHECKING, Any, Literal, Mapping, get_args, get_origin, get_type_hints

import numpy as np
import pandas as pd

from fairaudit.data import Dataset, Split
from fairaudit.metrics import accuracy_metrics, seeded_rng
if TYPE_CHECKING:  # models (torch) load on first use: naming a saved model never builds one
    from fairaudit.models import Recommender

PresetName = Literal["quick", "standard", "thorough"]
PRESET_NAMES: tuple[str, ...] = get_args(PresetName)
#: Changes to a kind's defaults per preset; ``standard`` is the kind's own defaults. Keys a kind
#: does not have are ignored, so a preset never breaks when a model's parameters change.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "llm": {"quick": {"epochs": 20}, "standard": {}, "thorough": {"epochs": 300, "dim": 128, "patience": 20}},
    "mf": {"quick": {"iterations": 5}, "standard": {}, "thorough": {"iterations": 50, "factors": 64}},
    "itemknn": {"quick": {"n_neighbors": 50}, "standard": {}, "thorough": {"n_neighbors": 400}},
}
PRESET_HELP = {
    "quick": "Seconds on the sample: a first look (fewer epochs).",
    "standard": "The model's own defaults: the settings its benchmarks report.",
    "thorough": "More epochs and capacity, with early stopping on a validation share where the model has it.",
}
#: The kind a newcomer trains first.
DEFAULT_KIND = "llm"
#: Kinds whose quality every other model should beat (the leaderboard's reference).
BASELINE_KIND = "popularity"
#: Label of the packaged text encoder in the encoder choice (the parameter's value is then ``None``).
PACKAGED_ENCODER = "packaged all-MiniLM-L6-v2"

BELOW_BASELINE = (
    "{model} ranks worse than the popularity baseline on the holdout ({metric} {value:.3f} vs {baseline:.3f}, "
    "difference {difference:+.3f}, 95% CI {low:+.3f} to {high:+.3f}): train it longer (a thorough preset) "
    "before auditing it, or audit the baseline"
)
NO_CHOICES = "no {what} in this dataset; the parameter only matters when {when}"


def kind_defaults(kind: str) -> dict[str, Any]:
    """The hyper-parameters of ``kind`` with their defaults (``get_params`` of a fresh model).

    >>> kind_defaults("popularity")
    {'seed': 0}
    """
    from fairaudit.models import create_model

    return dict(create_model(kind).get_params())


def preset_params(kind: str, preset: str = "standard") -> dict[str, Any]:
    """Every hyper-parameter of ``kind`` under ``preset`` (defaults with the preset's changes).

    >>> preset_params("llm", "quick")["epochs"]
    20
    >>> preset_params("popularity", "thorough") == kind_defaults("popularity")
    True
    """
    defaults = kind_defaults(kind)
    changes = PRESETS.get(kind, {}).get(preset, {})
    return {**defaults, **{k: v for k, v in changes.items() if k in defaults}}


def settings_name(kind: str, params: Mapping[str, Any]) -> str:
    """``quick``/``standard``/``thorough`` when ``params`` are a preset, else the changed settings.

    >>> settings_name("llm", preset_params("llm", "quick"))
    'quick'
    >>> settings_name("llm", {**preset_params("llm"), "epochs": 7})
    'epochs=7'
    """
    params = {k: v for k, v in dict(params).items() if k in kind_defaults(kind)}
    for preset in ("standard", *PRESET_NAMES):
        expected = preset_params(kind, preset)
        if all(_same(params.get(k, v), v) for k, v in expected.items()):
            return preset
    defaults = kind_defaults(kind)
    changed = [f"{k}={params[k]}" for k in params if not _same(params[k], defaults.get(k))]
    text = ",".join(changed)
    return text if len(text) <= 40 else text[:39] + "…"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def model_name(kind: str, settings: str, data_name: str, trained_at: float | None) -> str:
    """A readable model name: kind and settings, data, and when it was trained (local time).

    >>> model_name("llm", "quick", "sample_data", None)
    'llm-quick · sample_data'
    >>> model_name("mf", "standard", "ml-100k.zip", 0.0).startswith("mf-standard · ml-100k.zip · ")
    True
    """
    parts = [f"{kind}-{settings}"]
    if data_name:
        parts.append(data_name)
    if trained_at is not None:
        parts.append(time.strftime("%d %b %H:%M", time.localtime(trained_at)))
    return " · ".join(parts)


def param_help(kind: str) -> dict[str, str]:
    """Help text of each hyper-parameter of ``kind``, from its class docstring's ``Parameters`` section.

    >>> "early stopping" in param_help("llm").get("patience", "").lower() or "patience" not in kind_defaults("llm")
    True
    """
    from fairaudit.models import create_model

    doc = inspect.cleandoc(type(create_model(kind)).__doc__ or "")
    match = re.search(r"^Parameters\n-+\n(.*?)(?:\n\n(?=\S)|\Z)", doc, flags=re.S | re.M)
    if not match:
        return {}
    found: dict[str, str] = {}
    names: list[str] = []
    for line in match.group(1).splitlines():
        if line and not line.startswith(" "):
            names = [n.strip() for n in line.split(":")[0].split(",") if n.strip()]
            for name in names:
                found[name] = ""
        elif line.strip() and names:
            for name in names:
                found[name] = f"{found[name]} {line.strip()}".strip()
    return {name: text.replace("``", "`") for name, text in found.items()}


def _attribute_columns(frame: pd.DataFrame, skip: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        c for c in frame.columns
        if c not in skip and not pd.api.types.is_numeric_dtype(frame[c]) and 1 < frame[c].nunique() <= 50
    )  # fmt: skip


def param_choices(kind: str, dataset: Dataset) -> dict[str, tuple]:
    """The values a select box may offer per hyper-parameter of ``kind``, checked against ``dataset``.

    ``Literal`` options; ``device`` from :func:`~fairaudit.models.available_devices`; attribute
    parameters only the columns ``dataset`` has (``exposure_attribute``: item group columns such as
    ``popularity_tier`` or ``provider``; ``fairness_attribute`` and ``profile_attributes``: user
    attribute columns). Parameters not listed take free input.

    >>> from fairaudit.data import load_sample
    >>> choices = param_choices("llm", load_sample())
    >>> "provider" in choices["exposure_attribute"], "zip" in choices["fairness_attribute"]
    (True, False)
    """
    from fairaudit.models import available_devices, create_model

    model = create_model(kind)
    defaults = model.get_params()
    hints = get_type_hints(type(model).__init__)
    users = _attribute_columns(dataset.users, ("user_id", "zip", "age"))
    items = _attribute_columns(dataset.items, ("item_id", "title", "genres", "description"))
    choices: dict[str, tuple] = {}
    for name in defaults:
        hint = hints.get(name)
        if get_origin(hint) is Literal:
            choices[name] = get_args(hint)
        elif name == "device":
            choices[name] = available_devices()
        elif name.endswith("exposure_attribute") or name == "item_attribute":
            choices[name] = items
        elif name.endswith("fairness_attribute") or name in ("profile_attributes", "user_attribute"):
            choices[name] = users
    return choices


def default_choice(value: Any, choices: tuple) -> Any:
    """``value`` when it is one of ``choices``; else the first choice (a default column the data lacks).

    >>> default_choice("provider", ("popularity_tier",)), default_choice("cpu", ("auto", "cpu"))
    ('popularity_tier', 'cpu')
    """
    if isinstance(value, (list, tuple)):
        return [v for v in value if v in choices]
    return value if value in choices or not choices else choices[0]


def _per_user(model: Recommender, split: Split, k: int) -> pd.DataFrame:
    users = split.test["user_id"].astype(str).unique()
    return accuracy_metrics(model.recommend(users, k=k), split.test, k=k)


def leaderboard(
    models: Mapping[str, Recommender],
    dataset: Dataset,
    split: Split,
    *,
    k: int = 10,
    info: Mapping[str, Mapping[str, Any]] | None = None,
    metric: str = "ndcg",
    rounds: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, list[str]]:
    """Holdout quality of every model against a popularity baseline fitted on the same split.

    Returns the table (one row per model, best ``metric`` first: ``model, kind, ndcg, recall,
    hit_rate, vs_baseline, vs_baseline_ci_low, vs_baseline_ci_high, epsilon`` (the differential-privacy
    epsilon the model spent, inf when trained without DP) plus any ``info`` columns
    such as ``fit_s``, ``data``, ``trained``) and one warning (:data:`BELOW_BASELINE`) per model whose
    ``metric`` is below the baseline's with the paired-bootstrap 95% interval of the per-user
    difference entirely below zero. The baseline row is ``popularity (reference)``.

    >>> from fairaudit.data import load_sample, make_split
    >>> data = load_sample(); split = make_split(data, "random", seed=0)
    >>> table, warnings = leaderboard({}, data, split, rounds=50)
    >>> list(table["model"]), warnings
    (['popularity (reference)'], [])
    """
    from fairaudit.models import create_model, epsilon_spent

    reference = create_model(BASELINE_KIND).fit(dataset, split)
    base = _per_user(reference, split, k).sort_index()
    rows, warnings = [], []
    entries = {"popularity (reference)": reference, **dict(models)}
    for label, model in entries.items():
        scores = base if model is reference else _per_user(model, split, k).reindex(base.index).fillna(0.0)
        diff = (scores[metric] - base[metric]).to_numpy()
        resamples = seeded_rng(seed, "leaderboard", label).integers(0, max(len(diff), 1), (rounds, len(diff)))
        means = diff[resamples].mean(axis=1) if len(diff) else np.zeros(1)
        low, high = np.quantile(means, [0.025, 0.975])
        row = {"model": label, "kind": getattr(model, "kind", "?"), "ndcg": scores["ndcg"].mean(),
               "recall": scores["recall"].mean(), "hit_rate": scores["hit_rate"].mean(),
               "vs_baseline": diff.mean(), "vs_baseline_ci_low": low, "vs_baseline_ci_high": high,
               "epsilon": epsilon_spent(model), **dict((info or {}).get(label, {}))}  # fmt: skip
        rows.append(row)
        if model is not reference and high < 0:
            warnings.append(BELOW_BASELINE.format(model=label, metric=f"{metric.upper()}@{k}",
                                                  value=scores[metric].mean(), baseline=base[metric].mean(),
                                                  difference=diff.mean(), low=low, high=high))  # fmt: skip
    table = pd.DataFrame(rows).sort_values(metric, ascending=False, kind="stable").reset_index(drop=True)
    return table, warnings
