"""Add explanation tables to an audit folder: ``shap_drivers.csv``, ``gap_decomposition.csv``, ``probes.csv``.

Every table gets a leading ``model`` column, like the other audit tables; ``explanations.json``
records the settings. The report renders ``probes.csv`` and ``shap_drivers.csv`` when present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from fairaudit.data import Dataset, make_split
from fairaudit.explain._features import DEFAULT_ATTRIBUTES, user_features
from fairaudit.explain._probe import probe_attribute
from fairaudit.explain._surrogate import SURROGATE_PARAMS, explain_gaps
from fairaudit.models import Recommender

#: Files written by :func:`add_explanations_to_audit`.
EXPLANATION_FILES = {
    "drivers": "shap_drivers.csv",
    "decomposition": "gap_decomposition.csv",
    "probes": "probes.csv",
    "settings": "explanations.json",
}
#: Users probed per model and attribute by default (a seeded sample).
DEFAULT_PROBE_USERS = 1000

_NO_USER_METRICS = "Audit folder '{0}' lacks user_metrics.parquet or audit.json; write the audit first"
_UNKNOWN_METRIC = "Metric '{0}' is not a column of user_metrics.parquet; expected one of {1}"


def _training_interactions(dataset: Dataset, meta: dict) -> pd.DataFrame:
    """The training part of the audit's split (features describe what the models saw)."""
    split = (meta.get("config") or {}).get("split")
    if not split:
        return dataset.interactions
    return make_split(dataset, split["method"], seed=split["seed"], **split.get("params", {})).train


def add_explanations_to_audit(
    audit_dir: str | Path,
    dataset: Dataset,
    models: Mapping[str, Recommender] | None = None,
    *,
    metrics: Sequence[str] = ("ndcg",),
    attributes: Sequence[str] | None = None,
    probe_users: int | None = DEFAULT_PROBE_USERS,
    seed: int | None = None,
    bootstrap_rounds: int | None = None,
) -> dict[str, Path]:
    """Explain an audit's per-user metrics (SHAP surrogate) and, with ``models``, probe them.

    Parameters
    ----------
    audit_dir : str or Path
        Folder written by ``fairaudit.audit.write_audit`` (reads ``user_metrics.parquet`` and ``audit.json``).
    dataset : Dataset
        The audited data (user attributes, item genres, interactions).
    models : mapping, optional
        Display name -> fitted model, as audited; without it no probes are run.
    metrics : sequence of str
        Per-user metrics to explain.
    attributes : sequence of str, optional
        Sensitive attributes: one-hot surrogate features, decomposed gaps and probed attributes.
        Default: those of :data:`~fairaudit.explain._features.DEFAULT_ATTRIBUTES` in the users table.
    probe_users : int or None
        Users probed per model and attribute (seeded sample; None = all).
    seed, bootstrap_rounds : int, optional
        Default: the audit's own ``seed`` and ``bootstrap_rounds``.

    Returns
    -------
    dict
        Table name -> written path (keys of :data:`EXPLANATION_FILES` that were written).
    """
    audit_dir = Path(audit_dir)
    metrics_path, meta_path = audit_dir / "user_metrics.parquet", audit_dir / "audit.json"
    if not (metrics_path.is_file() and meta_path.is_file()):
        raise FileNotFoundError(_NO_USER_METRICS.format(audit_dir))
    meta = json.loads(meta_path.read_text())
    config = meta.get("config") or {}
    seed = int(config.get("seed", 0) if seed is None else seed)
    rounds = int(config.get("bootstrap_rounds", 1000) if bootstrap_rounds is None else bootstrap_rounds)
    k = int(config.get("k", 10))
    if attributes is None:
        attributes = [a for a in DEFAULT_ATTRIBUTES if a in dataset.users.columns]
    per_user = pd.read_parquet(metrics_path)
    for metric in metrics:
        if metric not in per_user.columns:
            available = [c for c in per_user.columns if c not in ("model", "user_id")]
            raise ValueError(_UNKNOWN_METRIC.format(metric, available))

    features = user_features(dataset, _training_interactions(dataset, meta), attributes=attributes)
    drivers, decompositions = [], []
    for model_name, rows in per_user.groupby("model", sort=False):
        values = rows.assign(user_id=rows["user_id"].astype(str)).set_index("user_id")
        for metric in metrics:
            result = explain_gaps(values[metric], features, attributes=attributes, seed=seed)
            drivers.append(result.drivers.assign(model=model_name))
            decompositions.append(result.decomposition.assign(model=model_name))
    written = {
        "drivers": _write(drivers, audit_dir / EXPLANATION_FILES["drivers"]),
        "decomposition": _write(decompositions, audit_dir / EXPLANATION_FILES["decomposition"]),
    }

    probes = [
        probe_attribute(model, dataset, attribute, users=probe_users, k=k, seed=seed, bootstrap_rounds=rounds)
        .assign(model=model_name)
        for model_name, model in (models or {}).items()
        for attribute in attributes
    ]
    if probes:
        written["probes"] = _write(probes, audit_dir / EXPLANATION_FILES["probes"])
    settings = {
        "metrics": list(metrics), "attributes": list(attributes), "seed": seed, "bootstrap_rounds": rounds, "k": k,
        "probe_users": probe_users,
        "surrogate": {"model": "GradientBoostingRegressor", **SURROGATE_PARAMS, "r2": "5-fold CV",
                      "shap": "TreeExplainer"},
    }  # fmt: skip
    written["settings"] = audit_dir / EXPLANATION_FILES["settings"]
    written["settings"].write_text(json.dumps(settings, indent=1))
    return written


def _write(frames: list[pd.DataFrame], path: Path) -> Path:
    table = pd.concat(frames, ignore_index=True)
    table[["model", *[c for c in table.columns if c != "model"]]].to_csv(path, index=False)
    return path
