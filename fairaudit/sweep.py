"""The accuracy-fairness trade-off: run one mitigation over a grid of strengths and audit each point.

Every number comes from the audit engine (:func:`fairaudit.audit.run_audit`) and the paired
comparison (:func:`fairaudit.compare.compare_models`); this module only builds the models,
times them, and lays the figures out one row per strength. The lowest strength is the
reference point (include 0 to compare against the unmitigated model): every other point's
accuracy cost and target improvement are paired-bootstrap differences over the same users.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairaudit.audit import (
    ALL, LOWER_IS_BETTER, AuditConfig, AuditResult, attribute_groups, run_audit, train_derived_users,
)
from fairaudit.compare import compare_models
from fairaudit.data import UNKNOWN, Dataset, Split, check_folder_target, write_csv
from fairaudit.metrics import GapGoal, SliceReport, accuracy_metrics, exposure_shares, item_groups
from fairaudit._choices import DEFAULT_EPSILONS, MITIGATIONS, PRIVACY_MITIGATIONS, RERANK_KINDS
from fairaudit._choices import TRAINING_MITIGATIONS as TRAINING_MITIGATIONS  # re-exported: the in-training terms
from fairaudit.models import Recommender, attacked_model, attribute_recovery, create_model, epsilon_spent, refuse_dp_kind

Mitigation = Literal[
    "rerank_exposure", "rerank_calibrated", "rerank_mmr", "difference", "exposure", "adversarial", "apr", "privacy"
]
#: Per-user column for APR: the accuracy metric of the list under a PGD attack of ``ATTACK_EPSILON``.
ATTACKED_ACCURACY = "attacked_accuracy"
#: Relative epsilon of the PGD attack every APR point is measured under (and APR's default training epsilon).
ATTACK_EPSILON = 0.3
APR_EPSILON = 0.5
DEFAULT_STRENGTHS = (0.0, 0.25, 0.5, 1.0)
#: Per-user column added to the audit's user metrics: DCG exposure share of the watched item group
#: minus its catalogue share.
EXPOSURE_GAP = "exposure_gap"
#: Per-user column for the adversarial term: 1 when a held-out classifier recovers the user's
#: attribute from their vector.
RECOVERED = "attribute_recovered"
#: The sweep table written into ``out``.
SWEEP_FILE = "sweep.csv"
#: Default model per family: re-rankers wrap a fast personalised baseline; training terms need the LLM.
DEFAULT_MODEL_KIND = {"rerank": "itemknn", "training": "llm"}
#: LLM settings an in-training mitigation's default template starts from (``model_params`` override
#: them): sqrt pooling writes history length into the user vectors, which the adversary cannot fully remove.
DEFAULT_LLM_PARAMS: dict[str, dict[str, Any]] = {"adversarial": {"pooling": "mean"}}
#: What each mitigation acts on: (metric column, goal).
TARGETS: dict[str, tuple[str, GapGoal]] = {
    "rerank_exposure": (EXPOSURE_GAP, "zero"),
    "exposure": (EXPOSURE_GAP, "zero"),
    "rerank_calibrated": ("miscalibration", "low"),
    "rerank_mmr": ("ild_genre", "high"),
    "difference": ("gap", "zero"),
    "adversarial": (RECOVERED, "low"),
    "apr": (ATTACKED_ACCURACY, "high"),
    "privacy": ("gap", "zero"),
}
SWEEP_COLUMNS = (
    "mitigation", "strength", "model", "epsilon", "accuracy_metric", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
    "accuracy_cost", "accuracy_cost_ci_low", "accuracy_cost_ci_high",
    "gap_attribute", "gap_group", "gap", "gap_ci_low", "gap_ci_high",
    "exposure_attribute", "exposure_group", "exposure_gap", "exposure_gap_ci_low", "exposure_gap_ci_high",
    "target_metric", "target_goal", "target", "target_ci_low", "target_ci_high",
    "target_improvement", "target_improvement_ci_low", "target_improvement_ci_high",
    "fit_s", "audit_s", "time_s", "model_dir",
)  # fmt: skip

_BAD_MITIGATION = "mitigation must be one of {0}, got '{1}'"
_NO_STRENGTHS = "strengths must list at least one value, e.g. 0,0.25,0.5,1"
_NOT_MITIGABLE = (
    "Model kind '{0}' has no fairness training options (fairness, fairness_weight); "
    "in-training mitigation '{1}' needs the LLM recommender (kind 'llm')"
)
_NO_GAP = (
    "No gap for attribute '{0}' and metric '{1}' at the reference point (groups too small?); pick another attribute"
)
_TEMPLATE_FOR_RERANK = (
    "template_params re-train the model of in-training mitigations; '{0}' re-ranks a fitted model, pass rerank_params"
)
_NO_VECTORS = (
    "Model kind '{0}' exposes no user_vectors(user_ids); the adversarial sweep measures attribute recovery from them"
)


def point_name(mitigation: str, strength: float) -> str:
    """Display name (and folder name) of one sweep point.

    >>> point_name("rerank_exposure", 0.25)
    'rerank_exposure@0.25'
    """
    return f"{mitigation}@{strength:g}"


def build_point(
    mitigation: Mitigation,
    strength: float,
    model: Recommender,
    *,
    attribute: str,
    item_attribute: str,
    rerank_params: Mapping[str, Any] | None = None,
) -> Recommender:
    """The (unfitted) model of one sweep point.

    Re-rankers wrap ``model`` (fitted once and shared by all points) with ``rerank_params``
    (e.g. ``{"n_candidates": 50, "embedding": "genres"}``); in-training mitigations re-create
    ``model``'s kind and parameters with ``fairness=mitigation, fairness_weight=strength``; ``privacy``
    re-creates it with ``dp_epsilon=strength`` (inf: the non-private twin) and no early stopping.

    >>> from fairaudit.models import create_model
    >>> build_point("rerank_mmr", 0.5, create_model("popularity"), attribute="gender", item_attribute="provider").kind
    'rerank_mmr'
    """
    if mitigation in RERANK_KINDS:
        extra = {"attribute": item_attribute} if mitigation == "rerank_exposure" else {}
        return create_model(mitigation, base=model, strength=strength, **{**extra, **dict(rerank_params or {})})
    params = model.get_params()
    if mitigation in PRIVACY_MITIGATIONS:
        if "dp_epsilon" not in params:
            raise refuse_dp_kind(model.kind)
        params.update(dp_epsilon=None if np.isinf(strength) else strength, patience=None)
        return create_model(model.kind, **params)
    if mitigation == "apr":
        if "adv_weight" not in params:
            raise ValueError(_NOT_MITIGABLE.format(model.kind, mitigation))
        params.update(adv_weight=strength, adv_epsilon=params["adv_epsilon"] or APR_EPSILON)
        return create_model(model.kind, **params)
    if "fairness" not in params:
        raise ValueError(_NOT_MITIGABLE.format(model.kind, mitigation))
    params.update(
        fairness=mitigation, fairness_weight=strength, fairness_attribute=attribute, exposure_attribute=item_attribute
    )
    return create_model(model.kind, **params)


def _per_user_exposure_gap(recs: pd.DataFrame, test: pd.DataFrame, membership: pd.DataFrame, group: str) -> pd.Series:
    """Per user: DCG exposure share of item group ``group`` in their list minus its catalogue share."""
    users = pd.Index(recs["user_id"].astype(str).unique())
    shares = exposure_shares(recs, test, membership, user_groups=pd.Series(users, index=users), browsing="dcg")
    shares = shares[shares["item_group"] == group].set_index("user_group")
    return (shares["exposure_share"] - shares["catalogue_share"]).rename(EXPOSURE_GAP)


def _per_user_recovery(model: Recommender, user_ids: pd.Series, groups: pd.Series, seed: int) -> pd.Series:
    """:func:`attribute_recovery` from the model's user vectors (users of an ``unknown`` group: NaN)."""
    if not hasattr(model, "user_vectors"):
        raise ValueError(_NO_VECTORS.format(model.kind))
    labels = groups.reindex(user_ids.astype(str)).astype(str)
    known = (labels != UNKNOWN).to_numpy()
    out = pd.Series(np.nan, index=pd.Index(user_ids.astype(str), name="user_id"), name=RECOVERED)
    vectors = model.user_vectors(user_ids[known].tolist())
    out[known] = attribute_recovery(vectors, labels[known].to_numpy(), seed=seed)
    return out


def _per_user_attacked(
    model: Recommender, dataset: Dataset, split: Split, user_ids: pd.Series, metric: str, k: int
) -> pd.Series:
    """Per user: ``metric`` of the top-``k`` list under a PGD attack of :data:`ATTACK_EPSILON` on the model's vectors."""
    attacked = attacked_model(model, perturbation="pgd", epsilon=ATTACK_EPSILON, k=k).fit(dataset, split)
    recs = attacked.recommend(user_ids.astype(str).tolist(), k=k)
    per_user = accuracy_metrics(recs, split.test[split.test["user_id"].astype(str).isin(user_ids.astype(str))], k=k)
    return per_user[metric].rename(ATTACKED_ACCURACY)


def _tracked_groups(
    reference: AuditResult | Sequence[AuditResult], attribute: str, metric: str, group: str | None,
    item_group: str | None,
) -> tuple[str, str]:
    """The most disadvantaged user group and the most under-exposed item group, unless given.

    The user group is the one furthest below the rest on ``metric`` (the lowest gap vs the rest; the
    highest for a lower-is-better metric). Given every point's audit, both are chosen on the **mean over
    the points** (gap, exposure deficit), not on the reference point alone: choosing the group whose
    reference gap is most extreme picks the reference's noise too, so every other point would look like
    an improvement by regression to the mean (measured before issue 14: 10 % false "improvements" at
    alpha = 0.05 on MovieLens 100K, 20 % with six groups). The mean over points does not change when two
    points swap users' values, so with no real change the improvement CI keeps its level.

    >>> gaps = pd.DataFrame({"attribute": "g", "reference": "rest", "metric": "ndcg", "group": ["M", "F"],
    ...                      "difference": [0.05, -0.05]})
    >>> exposure = pd.DataFrame({"user_attribute": "all", "item_group": ["a", "b"], "exposure_share": [0.9, 0.1],
    ...                          "catalogue_share": [0.7, 0.3]})
    >>> _tracked_groups(AuditResult(None, None, None, gaps, exposure), "g", "ndcg", None, None)
    ('F', 'b')
    """
    audits = [reference] if isinstance(reference, AuditResult) else list(reference)
    if group is None:
        frames = [
            a.gaps[(a.gaps["attribute"] == attribute) & (a.gaps["reference"] == "rest") & (a.gaps["metric"] == metric)]
            for a in audits
        ]  # fmt: skip
        gaps = pd.concat(frames).groupby("group", sort=True)["difference"].mean().reset_index()
        if gaps.empty:
            raise ValueError(_NO_GAP.format(attribute, metric))
        below = gaps["difference"].to_numpy() * (-1.0 if metric in LOWER_IS_BETTER else 1.0)  # < 0: worse off
        order = np.lexsort((gaps["group"].to_numpy(dtype=str), np.round(below, 12)))
        group = str(gaps["group"].iloc[order[0]])
    if item_group is None:
        exposure = pd.concat([a.item_exposure[a.item_exposure["user_attribute"] == ALL] for a in audits])
        deficit = (exposure["exposure_share"] - exposure["catalogue_share"]).groupby(exposure["item_group"]).mean()
        item_group = str(deficit.idxmin())
    return group, item_group


def _value_row(table: pd.DataFrame, metric: str) -> pd.Series:
    rows = table[(table["attribute"] == ALL) & (table["group"] == ALL) & (table["metric"] == metric)]
    return rows.iloc[0]


def run_sweep(
    dataset: Dataset,
    split: Split,
    *,
    mitigation: Mitigation,
    strengths: Sequence[float] | None = None,
    model: Recommender | None = None,
    model_kind: str | None = None,
    model_params: Mapping[str, Any] | None = None,
    rerank_params: Mapping[str, Any] | None = None,
    template_params: Mapping[str, Any] | None = None,
    k: int = 10,
    attribute: str = "gender",
    metric: str = "ndcg",
    item_attribute: str = "provider",
    group: str | None = None,
    item_group: str | None = None,
    rounds: int = 200,
    seed: int = 0,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Audit one mitigation at several strengths: accuracy, gaps and their changes, with CIs and timings.

    Parameters
    ----------
    dataset, split : Dataset, Split
        Data and split; every point is trained (or wrapped) and audited on them.
    mitigation : str
        One of :data:`MITIGATIONS`: a re-ranker kind (strength in [0, 1]) or an in-training
        fairness term of the LLM recommender (strength = its weight lambda >= 0), ``apr``, or
        ``privacy``: DP-SGD training of the LLM (strength = the target epsilon; the table's ``epsilon``
        column holds the epsilon each point spent, inf for a point trained without DP).
    strengths : sequence of float, optional
        Grid (default :data:`DEFAULT_STRENGTHS`; for ``privacy`` the target epsilons
        :data:`~fairaudit._choices.DEFAULT_EPSILONS`, inf = trained without DP); the lowest value (for
        ``privacy`` the largest epsilon) is the reference point of the paired comparisons.
    model : Recommender, optional
        For re-rankers the model to wrap (fitted once if needed); for in-training terms a
        template whose kind and parameters are re-used. Default: ``create_model(model_kind,
        **model_params)`` with ``model_kind`` from :data:`DEFAULT_MODEL_KIND` (an LLM template
        starts from :data:`DEFAULT_LLM_PARAMS`: mean pooling for ``adversarial``).
    rerank_params : mapping, optional
        Extra parameters of the re-ranker (e.g. ``n_candidates``, ``targets``, ``embedding``).
    template_params : mapping, optional
        In-training mitigations: parameters replacing the template's for every point,
        e.g. ``{"pooling": "mean"}`` to sweep the adversarial term over a sqrt-pooled model's settings.
    k, attribute, metric : int, str, str
        List length, user attribute of the gap and accuracy metric (``ndcg``, ``recall``...).
    item_attribute : str
        Item attribute whose exposure gap is reported (e.g. ``provider``, ``popularity_tier``).
    group, item_group : str, optional
        The user group whose gap vs the rest is tracked, and the item group whose exposure share is
        tracked; default: the group furthest below the rest and the most under-exposed item group,
        both on the mean over the sweep's points (see ``_tracked_groups``).
    rounds, seed : int
        Bootstrap rounds and seed of the audit and the paired comparisons.
    out : path, optional
        When given, each point's model is saved to ``out/models/<mitigation>@<strength>/`` (so any
        point can be loaded and audited as a candidate; ``model_dir`` holds that folder relative to
        ``out``) and the returned table to ``out/sweep.csv`` (:func:`fairaudit.data.write_csv`).
        ``out`` must be absent, empty or (with ``overwrite``) an earlier sweep folder; this is checked
        before any work, and a folder holding anything else is never written to.
    overwrite : bool
        Replace an existing sweep in ``out`` (its ``sweep.csv`` and point models).
    progress : callable, optional
        Receives a status line per step.

    Returns
    -------
    DataFrame
        One row per strength, columns :data:`SWEEP_COLUMNS`. ``accuracy_cost`` is the reference's
        accuracy minus this point's (positive = accuracy lost); ``target_improvement`` is the
        reduction of ``|gap|`` (goal ``zero``), of the target (``low``) or its increase (``high``);
        both carry paired-bootstrap CIs over users, and are 0 at the reference point.
    """
    if mitigation not in MITIGATIONS:
        raise ValueError(_BAD_MITIGATION.format(MITIGATIONS, mitigation))
    # The reference is the weakest point: the lowest strength, or for privacy the largest epsilon (inf: no DP).
    if strengths is None:
        strengths = DEFAULT_EPSILONS if mitigation in PRIVACY_MITIGATIONS else DEFAULT_STRENGTHS
    strengths = sorted((float(s) for s in strengths), reverse=mitigation in PRIVACY_MITIGATIONS)
    if not strengths:
        raise ValueError(_NO_STRENGTHS)
    say = progress or (lambda _message: None)
    if out is not None:
        check_folder_target(out, overwrite=overwrite, is_ours=is_sweep_folder, kind="sweep folder")
    family = "rerank" if mitigation in RERANK_KINDS else "training"
    if template_params and family == "rerank":
        raise ValueError(_TEMPLATE_FOR_RERANK.format(mitigation))
    if model is None:
        kind = model_kind or DEFAULT_MODEL_KIND[family]
        defaults = DEFAULT_LLM_PARAMS.get(mitigation, {}) if kind == "llm" else {}
        model = create_model(kind, **{**defaults, **dict(model_params or {})})
    if template_params:
        model = create_model(model.kind, **{**model.get_params(), **dict(template_params)})
    if family == "rerank" and not hasattr(model, "item_ids_"):
        say(f"fitting the base model ({model.kind})")
        model.fit(dataset, split)
    membership = item_groups(dataset.items, item_attribute)
    target_metric, goal = TARGETS[mitigation]
    points = [
        build_point(
            mitigation, s, model, attribute=attribute, item_attribute=item_attribute, rerank_params=rerank_params
        )
        for s in strengths
    ]
    text_mmr = mitigation == "rerank_mmr" and points[0].embedding != "genres"
    if text_mmr:
        target_metric = "ild_embedding"  # diversity in the space MMR works in; falls back below
    config = AuditConfig(
        k=k, attributes=(attribute,), item_attributes=(item_attribute,), bootstrap_rounds=rounds, seed=seed,
        browsing=("dcg",), embedding_diversity=text_mmr,
    )  # fmt: skip

    audits: list[AuditResult] = []
    timings, dirs = [], []
    for strength, point in zip(strengths, points):
        name = point_name(mitigation, strength)
        say(f"{name}: fitting")
        start = time.perf_counter()
        point.fit(dataset, split)
        fit_s = time.perf_counter() - start
        if text_mmr and point.embedding_source_ != "text":
            target_metric = "ild_genre"
        say(f"{name}: auditing")
        start = time.perf_counter()
        audits.append(run_audit(dataset, split, {name: point}, config))
        timings.append((fit_s, time.perf_counter() - start))
        if out is not None:
            point.save(Path(out) / "models" / name, overwrite=overwrite)
        dirs.append(f"models/{name}" if out is not None else "")

    group, item_group = _tracked_groups(audits, attribute, metric, group, item_group)
    labels = {attribute: attribute_groups(train_derived_users(dataset, split)[0], attribute)}  # as the audits group
    frames = []
    for audit, point in zip(audits, points):
        frame = audit.user_metrics.join(
            _per_user_exposure_gap(audit.recommendations, split.test, membership, item_group), on="user_id"
        )
        if target_metric == RECOVERED:
            frame = frame.join(_per_user_recovery(point, frame["user_id"], labels[attribute], seed), on="user_id")
        if target_metric == ATTACKED_ACCURACY:
            frame = frame.join(_per_user_attacked(point, dataset, split, frame["user_id"], metric, k), on="user_id")
        frames.append(frame)
    user_metrics = pd.concat(frames, ignore_index=True)
    compared = [metric, EXPOSURE_GAP] + ([target_metric] if target_metric not in ("gap", EXPOSURE_GAP) else [])
    rows = []
    for strength, point, audit, (fit_s, audit_s), model_dir in zip(strengths, points, audits, timings, dirs):
        name = point_name(mitigation, strength)
        per_user = user_metrics[user_metrics["model"] == name].set_index("user_id")
        overall = SliceReport(
            per_user[compared], pd.Series(ALL, index=per_user.index), rounds=rounds, seed=seed, key=ALL,
            confidence=1 - config.alpha,
        ).by_group.set_index("metric")  # fmt: skip
        acc = _value_row(audit.group_metrics, metric)
        gap = audit.gaps[
            (audit.gaps["attribute"] == attribute) & (audit.gaps["reference"] == "rest")
            & (audit.gaps["metric"] == metric) & (audit.gaps["group"] == group)
        ]  # fmt: skip
        gap_values = gap[["difference", "ci_low", "ci_high"]].iloc[0] if len(gap) else pd.Series([np.nan] * 3)
        table = compare_models(
            user_metrics, model_a=point_name(mitigation, strengths[0]), model_b=name, groups=labels,
            metrics=compared, rounds=rounds, seed=seed, confidence=1 - config.alpha,
        )  # fmt: skip
        cost = _change(table, ALL, ALL, "value", metric, goal="low")
        if target_metric == "gap":
            target = tuple(gap_values)
            improvement = _change(table, attribute, group, "directed_gap", metric, goal="low")
        else:
            target = tuple(overall.loc[target_metric, ["value", "ci_low", "ci_high"]])
            improvement = _change(table, ALL, ALL, "value", target_metric, goal=goal)
        rows.append(
            (
                mitigation, strength, name, epsilon_spent(point), metric, acc["value"], acc["ci_low"],
                acc["ci_high"], *cost,
                attribute, group, *gap_values,
                item_attribute, item_group, *overall.loc[EXPOSURE_GAP, ["value", "ci_low", "ci_high"]],
                target_metric, goal, *target, *improvement,
                fit_s, audit_s, fit_s + audit_s, model_dir,
            )
        )  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))
    if out is not None:
        write_csv(frame, Path(out) / SWEEP_FILE)
    return frame


def is_sweep_folder(directory: str | Path) -> bool:
    """Whether ``directory`` holds a sweep of :func:`run_sweep`: its ``sweep.csv``, the CLI's ``sweep.json``,
    or the ``models/`` of an interrupted one.

    >>> import tempfile
    >>> is_sweep_folder(tempfile.mkdtemp())
    False
    """
    directory = Path(directory)
    return (directory / SWEEP_FILE).is_file() or (directory / "sweep.json").is_file() or (directory / "models").is_dir()


def _change(
    table: pd.DataFrame, attribute: str, group: str, quantity: str, metric: str, *, goal: GapGoal
) -> tuple[float, float, float]:
    """Change from A to B toward ``goal`` (point, CI low, CI high) from a :func:`compare_models` table.

    With ``d = b - a`` (and its paired-bootstrap CI): ``goal="low"`` gives the decrease ``-d``,
    ``"high"`` the increase ``d``, ``"zero"`` the reduction of ``|a|``, ``-sign(a) d``.
    """
    row = table[
        (table["attribute"] == attribute) & (table["group"] == group) & (table["quantity"] == quantity)
        & (table["metric"] == metric)
    ].iloc[0]  # fmt: skip
    sign = {"high": -1.0, "low": 1.0, "zero": float(np.sign(row["a"])) or 1.0}[goal]
    low, high = sorted((-sign * row["ci_high"], -sign * row["ci_low"]))
    return -sign * row["difference"] + 0.0, low + 0.0, high + 0.0  # + 0.0 turns -0.0 into 0.0
