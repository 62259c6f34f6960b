"""The audit engine: top-K lists for every evaluated user, every metric per user group, gaps, exposure.

``run_audit(dataset, split, models, config)`` returns an :class:`AuditResult` holding the tidy
tables of the audit-folder contract (``docs/architecture.md``); ``write_audit`` / ``read_audit``
move it to and from disk. All randomness comes from ``config.seed``, so the same config, data and
models reproduce every number exactly.

Evaluated users are the users with at least one test interaction (accuracy is undefined for the
others); every per-user metric is computed on their top-K lists. ``user_metrics`` also carries each
user's plain attribute columns (:func:`plain_attributes`), so per-group paired comparisons
(``fairaudit.compare``) need nothing but the audit folder.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fairaudit.data import Dataset, Split, activity_level, genre_matrix, popularity_tier
from fairaudit.metrics import (
    CALIBRATION_ALPHA,
    GENRE_ATTRIBUTE,
    METRICS,
    MetricInputs,
    MetricRegistry,
    SliceReport,
    benjamini_hochberg,
    bootstrap_counts,
    group_shares,
    item_groups,
    metric_label,
    position_weights,
    seeded_rng,
)
from fairaudit.metrics._common import user_item_matrix
from fairaudit.audit._config import ALL, FDR_FAMILIES, AuditConfig
from fairaudit.audit._folder import AuditResult, read_audit, write_audit  # noqa: F401 (doctest)
from fairaudit.audit._groups import attribute_groups, default_attributes, plain_attributes
from fairaudit.audit._tables import TABLES
if TYPE_CHECKING:  # torch is imported with the first model: reading an audit does not need it
    from fairaudit.models import Recommender

#: Per-user metrics, in ``user_metrics.parquet`` column order (the registry's ``level="user"`` entries).
USER_METRICS = METRICS.names(level="user")
#: Catalogue-level metrics (``attribute="all"`` rows of ``group_metrics.csv``).
GLOBAL_METRICS = METRICS.names(level="catalogue")
#: Metrics where a lower value is better (picks the ``best`` reference group).
LOWER_IS_BETTER = frozenset(METRICS.names(higher_is_better=False))

_NO_MODELS = "run_audit needs at least one model"
_BAD_FDR_FAMILY = "Unknown fdr_family '{0}'; expected one of {1}"
_NO_TEST_USERS = "The split's test set has no user known to model '{0}'; nothing to evaluate"
_ATTRIBUTE_CLASH = (
    "User attribute '{0}' has the name of a user_metrics.parquet column ({1}); rename the users table column"
)


# ---- per-user metrics -----------------------------------------------------------------------
@dataclass(frozen=True)
class _ItemContext:
    catalogue: pd.Index
    tiers: pd.Series
    genres: pd.DataFrame | None
    genre_weights: pd.DataFrame | None
    vectors: pd.DataFrame | None
    groupings: dict[str, pd.DataFrame]


def _item_context(dataset: Dataset, split: Split, config: AuditConfig, vectors: pd.DataFrame | None) -> _ItemContext:
    items = dataset.items.copy()
    items["item_id"] = items["item_id"].astype(str)
    # Derived from the training interactions only (the loader's tiers count test interactions too).
    items["popularity_tier"] = popularity_tier(split.train, items["item_id"]).to_numpy()
    has_genres = "genres" in items.columns
    names = config.item_attributes
    if names is None:
        extra = [c for c in dataset.item_attributes if c != "popularity_tier" and items[c].nunique() <= config.max_groups]
        names = ("popularity_tier", *((GENRE_ATTRIBUTE,) if has_genres else ()), *extra)
    return _ItemContext(
        catalogue=pd.Index(items["item_id"]),
        tiers=pd.Series(items["popularity_tier"].astype(str).to_numpy(), index=items["item_id"]),
        genres=genre_matrix(items) if has_genres else None,
        genre_weights=genre_matrix(items, normalise=True) if has_genres else None,
        vectors=vectors,
        groupings={name: item_groups(items, name) for name in names},
    )


def user_metrics_frame(
    recs: pd.DataFrame,
    split: Split,
    context: _ItemContext,
    *,
    k: int,
    calibration_alpha: float = CALIBRATION_ALPHA,
    registry: MetricRegistry = METRICS,
) -> pd.DataFrame:
    """Every per-user metric of ``registry`` that applies, for the users with test items.

    Iterates the registry's ``level="user"`` entries in order (the columns of :data:`USER_METRICS`
    for the default registry), leaving out those whose inputs are missing (no genres, no item
    vectors). Entries sharing one compute function (the five accuracy metrics) share one call.
    """
    inputs = MetricInputs(
        recs=recs, train=split.train, test=split.test, k=k, catalogue=context.catalogue, tiers=context.tiers,
        genres=context.genres, genre_weights=context.genre_weights, item_vectors=context.vectors,
        calibration_alpha=calibration_alpha,
    )  # fmt: skip
    users = pd.Index(np.sort(split.test["user_id"].astype(str).unique()), name="user_id")
    computed: dict[Callable[..., Any], pd.Series | pd.DataFrame] = {}
    columns = {}
    for metric in registry.where(level="user"):
        if not metric.applies(inputs):
            continue
        if metric.compute not in computed:
            computed[metric.compute] = metric.compute(inputs)
        values = computed[metric.compute]
        columns[metric.name] = (values[metric.name] if isinstance(values, pd.DataFrame) else values).reindex(users)
    return pd.DataFrame(columns, index=users)


def _global_metrics(
    recs: pd.DataFrame, users: pd.Index, context: _ItemContext, config: AuditConfig, *, registry: MetricRegistry = METRICS
) -> pd.DataFrame:
    """The registry's catalogue-level metrics (Gini of item exposure, catalogue coverage) from recommendation counts.

    Each is a function of how often every catalogue item was recommended (zeros included). Those
    with ``ci`` get a user-bootstrap CI (the same resamples as the ``all`` row of the per-user
    metrics). Coverage gets none: it is a union over users, so resampling users biases it
    downwards and its percentile interval can exclude the estimate.
    """
    rows = users.get_indexer(recs["user_id"].astype(str))
    cols = context.catalogue.get_indexer(recs["item_id"].astype(str))
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(users), len(context.catalogue)))
    observed = np.asarray(counts.sum(axis=0)).ravel()
    metrics = registry.where(level="catalogue")
    replicates = {m.name: np.empty(config.bootstrap_rounds) for m in metrics if m.ci}
    if replicates:
        rng = seeded_rng(config.seed, ALL, "bootstrap", ALL)
        for chunk, weights in bootstrap_counts(len(users), config.bootstrap_rounds, rng):
            resampled = (counts.T @ weights.T).T
            for m in metrics:
                if m.ci:
                    replicates[m.name][chunk] = m.compute(resampled)
    tail = config.alpha / 2
    return pd.DataFrame(
        {
            "attribute": ALL, "group": ALL, "metric": [m.name for m in metrics],
            "value": [m.compute(observed) for m in metrics],
            "ci_low": [np.quantile(replicates[m.name], tail) if m.ci else np.nan for m in metrics],
            "ci_high": [np.quantile(replicates[m.name], 1 - tail) if m.ci else np.nan for m in metrics],
            "n_users": len(users), "flagged": len(users) < config.min_group_size,
        }
    )  # fmt: skip


def _exposure_table(
    recs: pd.DataFrame,
    test: pd.DataFrame,
    users: pd.Index,
    user_groupings: Mapping[str, pd.Series | None],
    context: _ItemContext,
    config: AuditConfig,
) -> pd.DataFrame:
    """``item_exposure.csv`` rows of one model: every user grouping x item grouping x browsing model."""
    relevant = user_item_matrix(test, users, context.catalogue)
    shown = {
        browsing: user_item_matrix(
            recs, users, context.catalogue, position_weights(recs["rank"].to_numpy(), browsing=browsing,
                                                             gamma=config.rbp_gamma),
        )
        for browsing in config.browsing
    }  # fmt: skip
    frames = []
    for spec, labels in user_groupings.items():
        values = np.full(len(users), ALL, dtype=object) if labels is None else labels.reindex(users).to_numpy()
        names, codes = np.unique(values.astype(str), return_inverse=True)
        for item_attr, membership in context.groupings.items():
            for browsing, matrix in shown.items():
                frames.append(
                    group_shares(matrix, relevant, codes, names, membership).assign(
                        user_attribute=spec, item_attribute=item_attr, browsing=browsing
                    )
                )
    return pd.concat(frames, ignore_index=True)


# ---- gaps in words --------------------------------------------------------------------------
def describe_gap(row: Mapping[str, Any], k: int, alpha: float = 0.05) -> str:
    """Plain-words sentence for one gap row.

    A gap that is not significant and has a minimum detectable gap (``mdg``, 80 % power) says how
    large a gap the groups' sizes could have shown: "not significant" then reads as "too small to
    tell" rather than "no gap".

    >>> describe_gap({"group": "F", "reference": "rest", "reference_group": "rest", "metric": "ndcg",
    ...               "difference": -0.031, "ci_low": -0.045, "ci_high": -0.017, "p_adjusted": 0.001}, 10)
    'F users get lower NDCG@10 than the rest (-0.031 [-0.045, -0.017]); significant after correction'
    >>> print(describe_gap({"group": "F", "reference": "rest", "reference_group": "rest", "metric": "ndcg",
    ...       "difference": -0.01, "ci_low": -0.05, "ci_high": 0.03, "p_adjusted": 0.6, "mdg": 0.052}, 10)
    ...       .split("; ", 1)[1])
    not significant after correction; too small to tell: only gaps of about 0.052 or more are detectable (80% power) at this group size
    """
    label = metric_label(row["metric"], k)
    than = "the rest" if row["reference"] == "rest" else f"the best group ({row['reference_group']})"
    diff = row["difference"]
    word = "higher" if diff > 0 else "lower" if diff < 0 else "the same"
    significant = row["p_adjusted"] < alpha
    verdict = "significant" if significant else "not significant"
    sentence = (
        f"{row['group']} users get {word} {label} than {than} "
        f"({diff:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]); {verdict} after correction"
    )
    mdg = row.get("mdg", np.nan)
    if not significant and np.isfinite(mdg) and not abs(diff) >= mdg:
        sentence += f"; too small to tell: only gaps of about {mdg:.3f} or more are detectable (80% power) at this group size"
    return sentence


# ---- the audit ------------------------------------------------------------------------------
def _resolve_vectors(dataset: Dataset, config: AuditConfig, vectors: pd.DataFrame | None) -> pd.DataFrame | None:
    if not config.embedding_diversity:
        return None
    if vectors is not None:
        return vectors
    from fairaudit.models import item_text_embeddings

    matrix = np.asarray(item_text_embeddings(dataset), dtype=float)
    return pd.DataFrame(matrix, index=pd.Index(dataset.items["item_id"].astype(str)))


def adjust_p_values(gaps: pd.DataFrame, family: str = "attribute") -> pd.Series:
    """Benjamini-Hochberg ``p_adjusted`` of a gap table within each family (:data:`FDR_FAMILIES`).

    ``"attribute"``: one family per user attribute (all models, groups, metrics, references);
    ``"model"``: one per model x attribute; ``"audit"``: every gap pooled.

    >>> g = pd.DataFrame({"model": ["a", "a", "b"], "attribute": ["x", "x", "x"], "p_value": [0.01, 0.04, 0.03]})
    >>> adjust_p_values(g, "attribute").round(3).tolist(), adjust_p_values(g, "model").round(3).tolist()
    ([0.03, 0.04, 0.04], [0.02, 0.04, 0.03])
    """
    if family not in FDR_FAMILIES:
        raise ValueError(_BAD_FDR_FAMILY.format(family, FDR_FAMILIES))
    keys = {"attribute": ["attribute"], "model": ["model", "attribute"], "audit": None}[family]
    by = [gaps[k] for k in keys] if keys else pd.Series(ALL, index=gaps.index)
    return gaps.groupby(by)["p_value"].transform(lambda p: benjamini_hochberg(p.to_numpy()))


def train_derived_users(dataset: Dataset, split: Split) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """The users table with every interaction-derived attribute recomputed from ``split.train``.

    The loader derives ``activity`` from all interactions (the Data page profiles the data before
    any split exists); an audit slices users by it, so a user's test interactions must not decide
    their group. Returns the table and what was recomputed (recorded in ``audit.json`` under
    ``derived_attributes``).

    >>> from fairaudit.data import make_split
    >>> inter = pd.DataFrame({"user_id": list("abbccc"), "item_id": list("xxyxyz")})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": list("abc"), "activity": ["heavy"] * 3}), pd.DataFrame())
    >>> users, derived = train_derived_users(data, Split(inter, inter.iloc[:0], "random", 0))
    >>> users["activity"].tolist(), derived
    (['light', 'medium', 'heavy'], {'activity': {'table': 'users', 'from': 'train'}})
    """
    users = dataset.users.copy()
    derived = {}
    if "activity" in users.columns:
        users["activity"] = activity_level(split.train, users["user_id"].astype(str)).to_numpy()
        derived["activity"] = {"table": "users", "from": "train"}
    return users, derived


def run_audit(
    dataset: Dataset,
    split: Split,
    models: Mapping[str, Recommender],
    config: AuditConfig = AuditConfig(),
    *,
    item_vectors: pd.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
) -> AuditResult:
    """Audit ``models`` on ``split``: recommendations, per-user and per-group metrics, gaps, exposure.

    Parameters
    ----------
    dataset, split : Dataset, Split
        The data and the split the models were trained on (see :func:`common_split`).
    models : Mapping
        Display name -> fitted :class:`~fairaudit.models.Recommender`.
    config : AuditConfig
        K, attributes, resampling and thresholds.
    item_vectors : DataFrame, optional
        Item vectors (index ``item_id``) for ``ild_embedding``; default: the LLM item text
        embeddings (``fairaudit.models.item_text_embeddings``) when ``config.embedding_diversity``.
    progress : callable, optional
        Receives a short status line per step.

    Returns
    -------
    AuditResult

    Examples
    --------
    >>> import tempfile
    >>> from fairaudit.data import make_split
    >>> from fairaudit.models import create_model
    >>> users = pd.DataFrame({"user_id": [f"u{i}" for i in range(8)], "gender": ["F", "M"] * 4})
    >>> items = pd.DataFrame({"item_id": list("abcdef"), "title": list("abcdef"), "genres": ["A|B", "B", "C"] * 2})
    >>> inter = pd.DataFrame({"user_id": [f"u{i}" for i in range(8) for _ in range(3)],
    ...                       "item_id": [items["item_id"][(i + j) % 6] for i in range(8) for j in range(3)]})
    >>> data = Dataset(inter, users, items)
    >>> split = make_split(data, "random", seed=0, test_fraction=0.34)
    >>> model = create_model("popularity").fit(data, split)
    >>> config = AuditConfig(k=2, bootstrap_rounds=10, min_group_size=1, embedding_diversity=False)
    >>> result = run_audit(data, split, {"pop": model}, config)
    >>> sorted(result.gaps["reference"].unique()), sorted(result.group_metrics["attribute"].unique())
    (['best', 'rest'], ['all', 'gender'])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     back = read_audit(write_audit(result, folder))
    >>> back.gaps["p_value"].equals(result.gaps["p_value"])
    True
    """
    from fairaudit.models import privacy_record, software_versions

    if not models:
        raise ValueError(_NO_MODELS)
    if config.fdr_family not in FDR_FAMILIES:
        raise ValueError(_BAD_FDR_FAMILY.format(config.fdr_family, FDR_FAMILIES))
    say = progress or (lambda _message: None)
    specs = config.attributes if config.attributes is not None else default_attributes(dataset, config.max_groups)
    # The resolved specs are recorded, so audit.json names every audited attribute.
    config = AuditConfig.from_dict({**config.to_dict(), "split": split.describe(), "attributes": list(specs)})
    users_table, derived = train_derived_users(dataset, split)
    groupings = {spec: attribute_groups(users_table, spec) for spec in specs}
    plain = plain_attributes(specs)
    for column in plain:
        if column in ("model", *USER_METRICS):
            raise ValueError(_ATTRIBUTE_CLASH.format(column, ["model", "user_id", *USER_METRICS]))
    user_attributes = users_table.set_index(users_table["user_id"].astype(str))[list(plain)].astype(str)
    vectors = _resolve_vectors(dataset, config, item_vectors)
    context = _item_context(dataset, split, config, vectors)
    test_users = pd.Index(np.sort(split.test["user_id"].astype(str).unique()))
    higher = {m.name: m.higher_is_better for m in METRICS.where(level="user")}

    recs_all, users_all, group_all, gaps_all, exposure_all, model_meta = [], [], [], [], [], {}
    for name, model in models.items():
        users = test_users[test_users.isin(pd.Index(model.evaluated_users()))]
        if users.empty:
            raise ValueError(_NO_TEST_USERS.format(name))
        say(f"{name}: recommending top-{config.k} for {len(users)} users")
        recs = model.recommend(users.tolist(), k=config.k)
        test = split.test[split.test["user_id"].astype(str).isin(users)]
        per_user = user_metrics_frame(
            recs, Split(split.train, test, split.method, split.seed), context, k=config.k,
            calibration_alpha=config.calibration_alpha,
        )  # fmt: skip
        say(f"{name}: group statistics ({config.bootstrap_rounds} rounds)")
        slices = {ALL: pd.Series(ALL, index=per_user.index), **groupings}
        for spec, labels in slices.items():
            report = SliceReport(
                per_user, labels, rounds=config.bootstrap_rounds, seed=config.seed, key=spec,
                confidence=1 - config.alpha, min_group_size=config.min_group_size,
                include_small_groups=config.include_small_groups, higher_is_better=higher,
            )  # fmt: skip
            group_all.append(report.by_group.assign(model=name, attribute=spec))
            if spec != ALL:
                for reference in ("rest", "best"):
                    gaps_all.append(report.gaps(reference).assign(model=name, attribute=spec))
        group_all.append(_global_metrics(recs, per_user.index, context, config).assign(model=name))
        say(f"{name}: item exposure")
        exposure_all.append(_exposure_table(recs, test, per_user.index, {ALL: None, **groupings}, context, config))
        exposure_all[-1]["model"] = name
        recs_all.append(recs.assign(model=name))
        users_all.append(per_user.join(user_attributes).reset_index().assign(model=name))
        model_meta[name] = {
            "kind": model.kind, "params": model.get_params(), "fingerprint": model.fingerprint(),
            "split": model.split_, "data_fingerprint": getattr(model, "data_fingerprint_", None),
            "privacy": privacy_record(model),  # the DP record (epsilon spent...), None: no DP guarantee
        }  # fmt: skip

    gaps = pd.concat(gaps_all, ignore_index=True)
    gaps["p_adjusted"] = adjust_p_values(gaps, config.fdr_family)
    gaps["direction"] = [describe_gap(r, config.k, config.alpha) for r in gaps.to_dict("records")]
    meta = {
        "config": config.to_dict(),
        "data": {"name": dataset.name, "fingerprint": dataset.fingerprint(), **dataset.summary()},
        "models": model_meta,
        "n_evaluated_users": {name: int(len(u)) for name, u in zip(models, users_all)},
        "versions": software_versions(),
        "seed": config.seed,
        "derived_attributes": {**derived, "popularity_tier": {"table": "items", "from": "train"}},
    }
    # The id identifies what was audited (config, data, models, versions), so a re-run of the
    # same configuration carries the same id; only the run time differs.
    meta["audit_id"] = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:12]
    meta["timestamp"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return AuditResult(
        recommendations=pd.concat(recs_all, ignore_index=True)[list(TABLES["recommendations"].columns)],
        user_metrics=pd.concat(users_all, ignore_index=True).pipe(
            lambda f: f[[*TABLES["user_metrics"].columns, *f.columns[1:-1]]]  # then the metrics, in registry order
        ),
        group_metrics=pd.concat(group_all, ignore_index=True)[list(TABLES["group_metrics"].columns)],
        gaps=gaps[list(TABLES["gaps"].columns)],
        item_exposure=pd.concat(exposure_all, ignore_index=True)[list(TABLES["item_exposure"].columns)],
        meta=meta,
    )
