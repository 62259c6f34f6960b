"""Paired comparison of two models audited on the same users: differences and gap changes with CIs.

For every per-user metric, overall and per group, the difference ``B - A`` of the two models'
means; for every gap (group vs rest), ``gap_B - gap_A`` and the change of its size
``|gap_A| - |gap_B|`` (measured on A's side of zero). Confidence intervals come from a **paired** percentile bootstrap: each round
draws users with replacement (as multinomial count rows, :func:`fairaudit.metrics.bootstrap_sums`)
and uses the same draw for both models, within each group and within its rest, as the audit does.
A user enters a metric only where both models define it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from fairaudit.audit import (
    ALL, LOWER_IS_BETTER, TABLES, AuditConfig, AuditResult, attribute_groups, audit_split, plain_attributes,
    train_derived_users,
)
from fairaudit.metrics import MIN_GROUP_SIZE, bootstrap_sums, metric_label
from fairaudit.metrics._stats import seeded_rng

#: Columns of :func:`compare_models`' table (``comparison.csv`` in an audit folder).
COLUMNS = TABLES["comparison"].columns
#: Columns of :func:`verdicts` (``verdicts.csv`` in an audit folder).
VERDICT_COLUMNS = TABLES["verdicts"].columns

_DIFFERENT_DATA = ("Cannot compare {0} and {1}: they were audited on different data or splits ({2}); "
                   "audit both models on the same dataset and split, or put them in one audit.")
_UNKNOWN_MODEL = "Model '{0}' is not in {1}; available models: {2}"
_ONE_MODEL = "Audit folder {0} holds only model(s) {1}; give a second audit folder or audit several models together."
_NO_COMMON_USERS = "Models '{0}' and '{1}' share no evaluated user; a paired comparison needs the same users."
_OTHER_DATASET = ("Dataset {0} has fingerprint {1} but audit {2} was made on data {3}; pass the dataset the audit "
                  "used (same files and column mapping).")
_NO_GROUPS = ("Per-group comparison skipped for {0}: user attribute column(s) {1} are not in user_metrics.parquet "
              "(audit written before they were stored); pass the dataset (--data) to compare groups.")


@dataclass
class Comparison:
    """Result of :func:`compare_models` / :func:`compare_audits`: tidy table, verdicts and notes."""

    table: pd.DataFrame
    verdicts: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)


def _interval(replicates: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - confidence) / 2
    with np.errstate(invalid="ignore"):
        valid = ~np.isnan(replicates).all(axis=0)
        low = np.full(replicates.shape[1], np.nan)
        high = low.copy()
        if valid.any():
            low[valid], high[valid] = np.nanquantile(replicates[:, valid], [tail, 1 - tail], axis=0)
    return low, high


def audit_groups(user_metrics: pd.DataFrame, specs: Sequence[str]) -> dict[str, pd.Series]:
    """Attribute spec -> ``user_id -> group`` from the attribute columns of ``user_metrics.parquet``.

    Specs whose plain columns are not all stored (audit folders written before the audit kept
    them) are left out; intersections are derived with :func:`fairaudit.audit.attribute_groups`.

    >>> um = pd.DataFrame({"model": ["A", "B"], "user_id": ["u1", "u1"], "ndcg": [0.1, 0.2],
    ...                    "gender": ["F", "F"], "age_band": ["18-24", "18-24"]})
    >>> {spec: labels.to_dict() for spec, labels in audit_groups(um, ["gender*age_band", "region"]).items()}
    {'gender*age_band': {'u1': 'F*18-24'}}
    """
    stored = [c for c in plain_attributes(specs) if c in user_metrics.columns]
    users = user_metrics.groupby("user_id", sort=False)[stored].first().reset_index()  # first non-missing
    return {spec: attribute_groups(users, spec) for spec in specs
            if all(part in stored for part in plain_attributes([spec]))}


def _audited_specs(audit: AuditResult) -> list[str]:
    """The audit's attribute specs: recorded in ``audit.json``, else the attributes of ``group_metrics.csv``."""
    return list(audit.config.attributes or audit.attributes)


def _compare_frame(frame: pd.DataFrame, baseline: str, candidates: Sequence[str], groups: dict[str, pd.Series],
                   config: AuditConfig, *, rounds: int | None = None, seed: int | None = None) -> Comparison:
    """:func:`compare_models` of ``baseline`` against each candidate with the audit's settings, and the verdicts."""
    tables = [compare_models(frame, model_a=baseline, model_b=candidate, groups=groups,
                             rounds=int(rounds or config.bootstrap_rounds),
                             seed=int(seed if seed is not None else config.seed),
                             min_group_size=int(config.min_group_size))
              for candidate in candidates]
    table = pd.concat(tables, ignore_index=True)
    return Comparison(table=table, verdicts=verdicts(table, k=int(config.k)))


def add_comparison(result: AuditResult, *, baseline: str | None = None) -> AuditResult:
    """``result`` with its model comparison: the ``comparison`` and ``verdicts`` tables of the audit folder.

    Every other model is compared with ``baseline`` (default: the first model) by
    :func:`compare_models`, per group of every audited attribute (:func:`audit_groups`), with the
    audit's own bootstrap rounds, seed, minimum group size and K. Returns a copy (``result`` is
    unchanged); a one-model audit is returned as it is.

    >>> from fairaudit.audit import AuditConfig
    >>> um = pd.DataFrame({"model": ["A"] * 3 + ["B"] * 3, "user_id": ["u1", "u2", "u3"] * 2,
    ...                    "ndcg": [0.1, 0.2, 0.3, 0.2, 0.2, 0.5]})
    >>> gm = pd.DataFrame({"model": ["A", "B"], "attribute": "all", "group": "all", "metric": "ndcg"})
    >>> audit = AuditResult(None, um, gm, None, None, {"config": AuditConfig(bootstrap_rounds=50).to_dict()})
    >>> add_comparison(audit).comparison[["model_a", "model_b", "difference"]].round(3).values.tolist()
    [['A', 'B', 0.1]]
    """
    models = list(dict.fromkeys(result.user_metrics["model"].astype(str)))
    if len(models) < 2:
        return result
    baseline = baseline if baseline is not None else models[0]
    if baseline not in models:
        raise ValueError(_UNKNOWN_MODEL.format(baseline, "the audit", models))
    groups = audit_groups(result.user_metrics, _audited_specs(result))
    done = _compare_frame(result.user_metrics, baseline, [m for m in models if m != baseline], groups, result.config)
    return dataclasses.replace(result, comparison=done.table, verdicts=done.verdicts)


def compare_models(
    user_metrics: pd.DataFrame,
    *,
    model_a: str,
    model_b: str,
    groups: dict[str, pd.Series] | None = None,
    metrics: Sequence[str] | None = None,
    rounds: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    min_group_size: int = MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Paired-bootstrap differences ``B - A`` overall, per group, and of gaps vs the rest.

    Parameters
    ----------
    user_metrics : DataFrame
        ``model, user_id`` + one float column per metric (``user_metrics.parquet``; its text
        attribute columns are not metrics and are ignored).
    model_a, model_b : str
        Baseline A and candidate B.
    groups : dict, optional
        Attribute spec -> Series ``user_id -> group`` (e.g. from :func:`fairaudit.audit.attribute_groups`).
    metrics : sequence of str, optional
        Metric columns to compare (default: every numeric column but ``model, user_id``).
    rounds, seed, confidence, min_group_size
        Bootstrap rounds, seed, CI level; groups with fewer paired users get value rows but no gap rows.

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS`. ``quantity`` is ``value`` (a, b = group means), ``gap``
        (a, b = group mean - rest mean) or ``directed_gap`` (both gaps multiplied by the sign of A's
        gap, so ``a = |gap_A|`` and ``b`` is B's gap on the same side; ``b < a`` means B narrows it).
        ``difference = b - a``. The directed gap is linear in the resampled means, so its percentile
        CI behaves well near zero, unlike the CI of ``|gap_B|``.

    Examples
    --------
    >>> um = pd.DataFrame({"model": ["A"] * 3 + ["B"] * 3, "user_id": ["u1", "u2", "u3"] * 2,
    ...                    "ndcg": [0.1, 0.2, 0.3, 0.2, 0.2, 0.5]})
    >>> out = compare_models(um, model_a="A", model_b="B", rounds=50)
    >>> out[["quantity", "a", "b", "difference"]].round(3).values.tolist()
    [['value', 0.2, 0.3, 0.1]]
    """
    for name in (model_a, model_b):
        if name not in set(user_metrics["model"]):
            raise ValueError(_UNKNOWN_MODEL.format(name, "user_metrics", sorted(set(user_metrics["model"]))))
    metrics = list(metrics) if metrics is not None else [
        c for c in user_metrics.columns
        if c not in ("model", "user_id") and pd.api.types.is_numeric_dtype(user_metrics[c])
    ]
    a = user_metrics[user_metrics["model"] == model_a].set_index("user_id")[metrics]
    b = user_metrics[user_metrics["model"] == model_b].set_index("user_id")[metrics]
    users = a.index.intersection(b.index).sort_values()
    if users.empty:
        raise ValueError(_NO_COMMON_USERS.format(model_a, model_b))
    a_values, b_values = a.loc[users].to_numpy(float), b.loc[users].to_numpy(float)
    defined = ~np.isnan(a_values) & ~np.isnan(b_values)
    values = np.hstack([np.where(defined, a_values, 0.0), np.where(defined, b_values, 0.0)])
    both = np.hstack([defined, defined])
    m = len(metrics)
    slices = {ALL: pd.Series(ALL, index=users)}
    slices.update({spec: labels.reindex(users).fillna("unknown").astype(str) for spec, labels in (groups or {}).items()})

    def resample(rows: np.ndarray, *keys: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Paired bootstrap sums of A and B and counts (rounds x metrics) over the users in ``rows``."""
        sums, counts = bootstrap_sums(values[rows], both[rows], rounds, seeded_rng(seed, "compare", *keys))
        return sums[:, :m], sums[:, m:], counts[:, :m]

    frames = []
    for spec, labels in slices.items():
        codes = labels.to_numpy()
        for group in sorted(set(codes)):
            rows = codes == group
            count = defined[rows].sum(axis=0)
            point_a = _means(values[rows][:, :m].sum(0), count)
            point_b = _means(values[rows][:, m:].sum(0), count)
            sum_a, sum_b, n = resample(rows, spec, group)
            rep_a, rep_b = _means(sum_a, n), _means(sum_b, n)
            frames.append(_rows(spec, group, "value", metrics, count, point_a, point_b, rep_a, rep_b, confidence))
            if spec == ALL or rows.all() or count.min() < min_group_size:
                continue
            rest = ~rows
            rest_count = defined[rest].sum(axis=0)
            rest_a = _means(values[rest][:, :m].sum(0), rest_count)
            rest_b = _means(values[rest][:, m:].sum(0), rest_count)
            rsum_a, rsum_b, rn = resample(rest, spec, group, "rest")
            gap_a, gap_b = rep_a - _means(rsum_a, rn), rep_b - _means(rsum_b, rn)
            frames.append(_rows(spec, group, "gap", metrics, count, point_a - rest_a, point_b - rest_b,
                                gap_a, gap_b, confidence))
            side = np.sign(point_a - rest_a)
            frames.append(_rows(spec, group, "directed_gap", metrics, count, side * (point_a - rest_a),
                                side * (point_b - rest_b), side * gap_a, side * gap_b, confidence))
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "model_b", model_b)
    table.insert(0, "model_a", model_a)
    return table[list(COLUMNS)]


def _rows(spec, group, quantity, metrics, count, point_a, point_b, rep_a, rep_b, confidence) -> pd.DataFrame:
    low, high = _interval(rep_b - rep_a, confidence)
    return pd.DataFrame({
        "attribute": spec, "group": group, "quantity": quantity, "metric": metrics, "n_users": count.astype(int),
        "a": point_a, "b": point_b, "difference": point_b - point_a, "ci_low": low, "ci_high": high,
        "significant": (low > 0) | (high < 0),
    })


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def verdicts(table: pd.DataFrame, *, k: int = 10) -> pd.DataFrame:
    """One plain-sentence verdict per attribute x metric: the gap change next to the overall cost.

    The gap is the attribute's group with the largest ``|gap|`` under model A. ``gap_reduction =
    |gap_A| - directed gap_B`` (positive: B narrows it; larger than ``|gap_A|``: B reverses it); ``cost`` is the loss of the overall metric
    (``A - B``, or ``B - A`` for lower-is-better metrics; negative: B is better).

    >>> t = pd.DataFrame({"model_a": "A", "model_b": "B", "attribute": ["all", "g"], "group": ["all", "F"],
    ...     "quantity": ["value", "directed_gap"], "metric": "ndcg", "n_users": 50, "a": [.3, .05], "b": [.29, .01],
    ...     "difference": [-.01, -.04], "ci_low": [-.02, -.06], "ci_high": [-.005, -.02], "significant": True})
    >>> print(verdicts(t)["verdict"].iloc[0])
    B improves the g NDCG@10 gap (largest for F) by 0.040 [0.020, 0.060] at a cost of 0.010 [0.005, 0.020] NDCG@10.
    """
    overall = table[(table["quantity"] == "value") & (table["attribute"] == ALL)].set_index(["model_b", "metric"])
    directed = table[table["quantity"] == "directed_gap"]
    if directed.empty:
        return pd.DataFrame(columns=list(VERDICT_COLUMNS))
    largest = directed.loc[directed.groupby(["model_b", "attribute", "metric"], sort=False)["a"].idxmax()]
    records = []
    for row in largest.itertuples(index=False):
        label = metric_label(row.metric, k)
        sign = -1.0 if row.metric in LOWER_IS_BETTER else 1.0
        reduction, red_low, red_high = -row.difference, -row.ci_high, -row.ci_low
        base = overall.loc[(row.model_b, row.metric)] if (row.model_b, row.metric) in overall.index else None
        cost, cost_low, cost_high = ((-sign * base["difference"], *sorted((-sign * base["ci_low"], -sign * base["ci_high"])))
                                     if base is not None else (np.nan, np.nan, np.nan))
        gap_words = f"the {row.attribute} {label} gap (largest for {row.group})"
        if red_low > 0:
            first = f"{row.model_b} improves {gap_words} by {_fmt(reduction)} [{_fmt(red_low)}, {_fmt(red_high)}]"
        elif red_high < 0:
            first = f"{row.model_b} widens {gap_words} by {_fmt(-reduction)} [{_fmt(-red_high)}, {_fmt(-red_low)}]"
        else:
            first = (f"{row.model_b} does not change {gap_words} significantly "
                     f"({_fmt(reduction)} [{_fmt(red_low)}, {_fmt(red_high)}])")
        if np.isnan(cost):
            second = ""
        elif cost_low > 0:
            second = f" at a cost of {_fmt(cost)} [{_fmt(cost_low)}, {_fmt(cost_high)}] {label}"
        elif cost_high < 0:
            second = f" and also improves {label} by {_fmt(-cost)} [{_fmt(-cost_high)}, {_fmt(-cost_low)}]"
        else:
            second = f" with no significant change in {label} ({_fmt(-cost)} [{_fmt(-cost_high)}, {_fmt(-cost_low)}])"
        records.append((row.model_a, row.model_b, row.attribute, row.group, row.metric, row.a, row.b, reduction,
                        red_low, red_high, cost, cost_low, cost_high, first + second + "."))
    return pd.DataFrame(records, columns=list(VERDICT_COLUMNS))


def _provenance(audit: AuditResult) -> tuple[object, object]:
    return audit.data.get("fingerprint"), (audit.meta.get("config") or {}).get("split")


def load_users(data_path: str | Path, audit_dir: str | Path) -> pd.DataFrame:
    """The users table of the dataset at ``data_path``, refused unless it is the data ``audit_dir`` audited.

    Interaction-derived attributes (``activity``) are recomputed from the audit's training split, as the
    audit grouped users (:func:`fairaudit.audit.train_derived_users`).
    """
    from fairaudit.data import load_dataset

    audit = AuditResult.read(audit_dir)
    dataset = load_dataset(data_path, mapping=(audit.config.data or {}).get("mapping"))
    expected = _provenance(audit)[0]
    if dataset.fingerprint() != expected:
        raise ValueError(_OTHER_DATASET.format(data_path, dataset.fingerprint(), audit_dir, expected))
    split = audit_split(dataset, audit.config)
    return dataset.users if split is None else train_derived_users(dataset, split)[0]


def compare_audits(
    audit_a: str | Path,
    audit_b: str | Path | None = None,
    *,
    model_a: str | None = None,
    model_b: str | None = None,
    users: pd.DataFrame | None = None,
    rounds: int | None = None,
    seed: int | None = None,
) -> Comparison:
    """Compare models of one audit folder (baseline vs every other model) or of two folders.

    Two folders must share the data fingerprint and the split in ``audit.json``; otherwise this
    refuses (``_DIFFERENT_DATA``). Per-group rows use the users' attributes from ``users`` (the
    dataset's users table) when given, else the attribute columns of ``user_metrics.parquet``
    (:func:`audit_groups`); specs they do not cover get only overall rows and a note. ``rounds``,
    ``seed``, ``min_group_size`` and ``k`` come from the audit's configuration (``rounds`` and
    ``seed`` can be overridden). Folders are read with :meth:`fairaudit.audit.AuditResult.read`.
    """
    folder_a = Path(audit_a)
    first = AuditResult.read(folder_a)
    metrics_a = first.user_metrics
    if audit_b is None:
        names = list(dict.fromkeys(metrics_a["model"]))
        frame, baseline = metrics_a, model_a or names[0]
        candidates = [model_b] if model_b else [n for n in names if n != baseline]
        if not candidates:
            raise ValueError(_ONE_MODEL.format(folder_a, names))
    else:
        folder_b = Path(audit_b)
        second = AuditResult.read(folder_b)
        if _provenance(first) != _provenance(second):
            detail = f"data {_provenance(first)[0]} vs {_provenance(second)[0]}"
            if _provenance(first)[0] == _provenance(second)[0]:
                detail = "same data, different splits"
            raise ValueError(_DIFFERENT_DATA.format(folder_a, folder_b, detail))
        metrics_b = second.user_metrics
        baseline = model_a or str(metrics_a["model"].iloc[0])
        candidate = model_b or str(metrics_b["model"].iloc[0])
        for name, frame_, folder in ((baseline, metrics_a, folder_a), (candidate, metrics_b, folder_b)):
            if name not in set(frame_["model"]):
                raise ValueError(_UNKNOWN_MODEL.format(name, folder, sorted(set(frame_["model"]))))
        if candidate == baseline:
            candidate = f"{candidate} ({folder_b.name})"
            metrics_b = metrics_b.replace({"model": {model_b or str(metrics_b["model"].iloc[0]): candidate}})
        frame = pd.concat([metrics_a[metrics_a["model"] == baseline], metrics_b[metrics_b["model"] == candidate]])
        candidates = [candidate]
    specs = _audited_specs(first)
    notes = []
    if users is not None:
        groups = {spec: attribute_groups(users, spec) for spec in specs}
    else:
        groups = audit_groups(frame, specs)
        missing = [spec for spec in specs if spec not in groups]
        if missing:
            columns = [c for c in plain_attributes(missing) if c not in frame.columns]
            notes.append(_NO_GROUPS.format(", ".join(missing), ", ".join(columns)))
    result = _compare_frame(frame, baseline, candidates, groups, first.config, rounds=rounds, seed=seed)
    result.notes.extend(notes)
    return result
