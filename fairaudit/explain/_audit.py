"""Add explanation tables to an audit folder: ``shap_drivers.csv``, ``gap_decomposition.csv``, ``probes.csv``.

Every table gets a leading ``model`` column, like the other audit tables; ``explanations.json``
records the settings. The folder is read and written as one :class:`fairaudit.audit.AuditResult`
(its ``shap_drivers``, ``gap_decomposition``, ``probes`` and ``explanations`` fields). The report
renders ``probes.csv`` and ``shap_drivers.csv`` when present.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, Mapping, Sequence

import pandas as pd

from fairaudit._choices import DEFAULT_PROBE_USERS
from fairaudit.audit import FILES, OPTIONAL_FILES, TABLES, AuditResult, audit_split, read_table
from fairaudit.data import Dataset, write_csv
from fairaudit.explain._features import DEFAULT_ATTRIBUTES, user_features
from fairaudit.explain._probe import NOT_PROBEABLE, probe_attribute
from fairaudit.explain._surrogate import SURROGATE_PARAMS, explain_gaps
from fairaudit.models import Recommender

#: Files written by :func:`add_explanations_to_audit` (key -> file; the files of the audit folder's optional fields).
EXPLANATION_FILES = {
    "drivers": OPTIONAL_FILES["shap_drivers"],
    "decomposition": OPTIONAL_FILES["gap_decomposition"],
    "probes": OPTIONAL_FILES["probes"],
    "settings": OPTIONAL_FILES["explanations"],
}

#: The audit table a probe writes, by protocol (``python -m fairaudit probe --protocol P --out DIR``).
PROBE_TABLES = {"counterfactual": "probes", "fairllm": "fairllm"}
ProbeProtocol = Literal["counterfactual", "fairllm"]

_NO_PROBE_TABLE = "Folder '{0}' holds no {1}; write it with `python -m fairaudit probe --protocol {2} --out {0}`"
_NO_USER_METRICS = "Audit folder '{0}' lacks user_metrics.parquet or audit.json; write the audit first"
_UNKNOWN_METRIC = "Metric '{0}' is not a column of user_metrics.parquet; expected one of {1}"


def explain_audit(
    audit: AuditResult,
    dataset: Dataset,
    models: Mapping[str, Recommender] | None = None,
    *,
    metrics: Sequence[str] = ("ndcg",),
    attributes: Sequence[str] | None = None,
    probe_users: int | None = DEFAULT_PROBE_USERS,
    seed: int | None = None,
    bootstrap_rounds: int | None = None,
) -> AuditResult:
    """Explain an audit's per-user metrics (SHAP surrogate) and, with ``models``, probe them.

    Parameters
    ----------
    audit : AuditResult
        The audit to explain (its ``user_metrics`` and typed ``config``).
    dataset : Dataset
        The audited data (user attributes, item genres, interactions).
    models : mapping, optional
        Display name -> fitted model, as audited; without it no probes are run and the audit's
        ``probes`` (e.g. from ``fairaudit probe``) stay as they are. Models that are not
        ``probeable`` are not probed; the settings name them under ``not_probed`` with the reason.
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
    AuditResult
        ``audit`` with ``shap_drivers``, ``gap_decomposition``, ``explanations`` (the settings)
        and, with ``models``, ``probes`` set.
    """
    config = audit.config
    seed = int(config.seed if seed is None else seed)
    rounds = int(config.bootstrap_rounds if bootstrap_rounds is None else bootstrap_rounds)
    k = int(config.k)
    if attributes is None:
        attributes = [a for a in DEFAULT_ATTRIBUTES if a in dataset.users.columns]
    per_user = audit.user_metrics
    for metric in metrics:
        if metric not in per_user.columns:
            available = [c for c in per_user.columns if c not in ("model", "user_id")]
            raise ValueError(_UNKNOWN_METRIC.format(metric, available))

    split = audit_split(dataset, config)  # features describe what the models saw: the audit's training part
    features = user_features(dataset, dataset.interactions if split is None else split.train, attributes=attributes)
    drivers, decompositions = [], []
    for model_name, rows in per_user.groupby("model", sort=False):
        values = rows.assign(user_id=rows["user_id"].astype(str)).set_index("user_id")
        for metric in metrics:
            result = explain_gaps(values[metric], features, attributes=attributes, seed=seed)
            drivers.append(result.drivers.assign(model=model_name))
            decompositions.append(result.decomposition.assign(model=model_name))
    tables = {"shap_drivers": _model_first(drivers), "gap_decomposition": _model_first(decompositions)}
    probes = [
        probe_attribute(model, dataset, attribute, users=probe_users, k=k, seed=seed, bootstrap_rounds=rounds)
        .assign(model=model_name)
        for model_name, model in (models or {}).items()
        if model.probeable
        for attribute in attributes
    ]
    # Models FairAudit cannot re-score with another attribute value are named, not probed.
    not_probed = {
        name: getattr(model, "not_probeable_reason", NOT_PROBEABLE).format(name)  # a kind may say why in its words
        for name, model in (models or {}).items() if not model.probeable
    }  # fmt: skip
    if probes:
        tables["probes"] = _model_first(probes)
    settings = {
        "metrics": list(metrics), "attributes": list(attributes), "seed": seed, "bootstrap_rounds": rounds, "k": k,
        "probe_users": probe_users,
        **({"not_probed": not_probed} if not_probed else {}),
        "surrogate": {"model": "GradientBoostingRegressor", **SURROGATE_PARAMS, "r2": "5-fold CV",
                      "shap": "TreeExplainer"},
    }  # fmt: skip
    return dataclasses.replace(audit, **tables, explanations=settings)


def add_explanations_to_audit(
    audit_dir: str | Path, dataset: Dataset, models: Mapping[str, Recommender] | None = None, **options
) -> dict[str, Path]:
    """:func:`explain_audit` on the audit folder ``audit_dir``, written back into it.

    ``options`` are those of :func:`explain_audit`. Returns table name -> written path (keys of
    :data:`EXPLANATION_FILES` that were written).
    """
    audit_dir = Path(audit_dir)
    if not all((audit_dir / FILES[name]).is_file() for name in ("user_metrics", "meta")):
        raise FileNotFoundError(_NO_USER_METRICS.format(audit_dir))
    explained = explain_audit(AuditResult.read(audit_dir), dataset, models, **options)
    explained.write(audit_dir, overwrite=True)  # this folder, re-written on purpose
    written = ["drivers", "decomposition", *(["probes"] if models else []), "settings"]
    return {key: audit_dir / EXPLANATION_FILES[key] for key in written}


def write_probe_table(table: pd.DataFrame, folder: str | Path, protocol: ProbeProtocol = "counterfactual") -> Path:
    """Write a probe table into ``folder`` as ``probe --out`` does: ``probes.csv`` (:func:`probe_attribute`)
    or ``fairllm.csv`` (:func:`fairaudit.explain.fairllm_probe`). Returns the file. Example in :func:`read_probe_table`.
    """
    return write_csv(table, Path(folder) / TABLES[PROBE_TABLES[protocol]].file)


def read_probe_table(folder: str | Path, protocol: ProbeProtocol = "counterfactual") -> pd.DataFrame:
    """The probe table of ``folder`` (written by :func:`write_probe_table` or ``probe --out``), with the audit
    schema's text columns as strings and the numbers exactly as written; a table without the schema's columns
    or with text where numbers belong raises :class:`~fairaudit.audit.AuditFolderError` naming the column.

    >>> import tempfile
    >>> table = pd.DataFrame({"attribute": "age", "original_value": ["01"], "counterfactual_value": "NA",
    ...                       "metric": "jaccard", "estimate": [0.1 + 0.2], "ci_low": 0.2, "ci_high": 0.4})
    >>> folder = write_probe_table(table, tempfile.mkdtemp()).parent
    >>> read_probe_table(folder).equals(table)
    True
    """
    schema = TABLES[PROBE_TABLES[protocol]]
    path = Path(folder) / schema.file
    if not path.is_file():
        raise FileNotFoundError(_NO_PROBE_TABLE.format(folder, schema.file, protocol))
    return read_table(Path(folder), schema, derive=False)


def _model_first(frames: list[pd.DataFrame]) -> pd.DataFrame:
    table = pd.concat(frames, ignore_index=True)
    return table[["model", *[c for c in table.columns if c != "model"]]]
