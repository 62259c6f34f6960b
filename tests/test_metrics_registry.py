"""The metric registry: one entry per metric, and every list of metrics derived from it."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest

from fairaudit.audit import GLOBAL_METRICS, LOWER_IS_BETTER, USER_METRICS, AuditConfig, run_audit, user_metrics_frame
from fairaudit.audit._engine import _global_metrics, _item_context
from fairaudit.data import make_split
from fairaudit.metrics import (
    ACCURACY_METRICS,
    FAMILIES,
    LEVELS,
    METRIC_LABELS,
    METRICS,
    NEEDS,
    Family,
    Level,
    Metric,
    MetricInputs,
    MetricRegistry,
    Need,
    accuracy_metrics,
    metric_label,
)
from fairaudit.metrics._registry import _BAD_FILTER, _BAD_LABEL, _BAD_OPTION, _CATALOGUE_NEEDS, _DUPLICATE, _USER_CI
from fairaudit.models import create_model
from tests.conftest import make_tiny_dataset

ROOT = Path(__file__).parent.parent
#: The audit-folder contract (docs/architecture.md), typed by hand on purpose.
CONTRACT_USER_METRICS = (
    "ndcg", "recall", "precision", "hit_rate", "mrr", "ild_embedding", "ild_genre", "genre_coverage",
    "novelty", "avg_popularity", "long_tail_share", "miscalibration",
)  # fmt: skip
LABELS_AT_10 = {
    "ndcg": "NDCG@10", "recall": "Recall@10", "precision": "Precision@10", "hit_rate": "HitRate@10", "mrr": "MRR@10",
    "ild_embedding": "ILD (embeddings)@10", "ild_genre": "ILD (genres)@10", "genre_coverage": "Genre coverage@10",
    "novelty": "Novelty@10 (bits)", "avg_popularity": "Average popularity@10", "long_tail_share": "Long-tail share@10",
    "miscalibration": "Miscalibration (KL)@10", "gini_exposure": "Gini of item exposure@10",
    "catalogue_coverage": "Catalogue coverage@10",
}  # fmt: skip
LABELS_WITHOUT_K = {
    "ndcg": "NDCG", "recall": "Recall", "precision": "Precision", "hit_rate": "HitRate", "mrr": "MRR",
    "ild_embedding": "ILD (embeddings)", "ild_genre": "ILD (genres)", "genre_coverage": "Genre coverage",
    "novelty": "Novelty (bits)", "avg_popularity": "Average popularity", "long_tail_share": "Long-tail share",
    "miscalibration": "Miscalibration (KL)", "gini_exposure": "Gini of item exposure",
    "catalogue_coverage": "Catalogue coverage",
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny():
    dataset = make_tiny_dataset()
    split = make_split(dataset, "random", seed=0)
    models = {"pop": create_model("popularity").fit(dataset, split), "knn": create_model("itemknn").fit(dataset, split)}
    vectors = pd.DataFrame(np.random.default_rng(0).normal(size=(len(dataset.items), 8)), index=dataset.items["item_id"])
    return dataset, split, models, vectors


@pytest.fixture(scope="module")
def audit(tiny):
    dataset, split, models, vectors = tiny
    config = AuditConfig(k=5, bootstrap_rounds=20, min_group_size=5)
    return run_audit(dataset, split, models, config, item_vectors=vectors)


def _frame_inputs(tiny, model="knn", k=5):
    """What the engine hands ``user_metrics_frame`` for one model (genres and vectors included)."""
    dataset, split, models, vectors = tiny
    context = _item_context(dataset, split, AuditConfig(k=k), vectors)
    users = sorted(split.test["user_id"].astype(str).unique())
    return models[model].recommend(users, k=k), split, context


# ---- every metric reaches a real audit, with its direction ---------------------------------------
def test_every_registered_metric_is_in_a_real_audit(audit):
    assert audit.user_metrics.columns[2 : 2 + len(USER_METRICS)].tolist() == list(METRICS.names(level="user"))
    assert audit.user_metrics[list(USER_METRICS)].notna().any().all()
    assert set(audit.group_metrics["metric"]) == set(METRICS)
    assert set(audit.gaps["metric"]) == set(METRICS.names(level="user"))


def test_best_reference_follows_each_metrics_direction(audit):
    gm = audit.group_metrics[(audit.group_metrics["attribute"] != "all") & ~audit.group_metrics["flagged"]]
    best = audit.gaps[audit.gaps["reference"] == "best"]
    checked = set()
    for (model, attribute, metric), rows in best.groupby(["model", "attribute", "metric"]):
        values = gm[(gm["model"] == model) & (gm["attribute"] == attribute) & (gm["metric"] == metric)]
        values = values.dropna(subset=["value"]).set_index("group")["value"]
        chosen = rows["reference_group"].unique()
        assert len(chosen) == 1
        expected = values.max() if METRICS[metric].higher_is_better else values.min()
        assert values[chosen[0]] == expected, (model, attribute, metric)
        if values.max() > values.min():  # here the direction decides which group is best
            checked.add(metric)
    # The lower-is-better metrics were decided by their direction somewhere (else the test proves nothing).
    assert set(METRICS.names(level="user", higher_is_better=False)) <= checked


# ---- labels --------------------------------------------------------------------------------------
def test_labels_are_unchanged_for_every_metric():
    assert set(METRICS) == set(LABELS_AT_10)
    assert {m: metric_label(m, 10) for m in METRICS} == LABELS_AT_10
    assert {m: metric_label(m, None) for m in METRICS} == LABELS_WITHOUT_K
    assert metric_label("ild_genre", 20) == "ILD (genres)@20"
    assert metric_label("not_a_metric", 3) == "not_a_metric@3"
    assert METRIC_LABELS == {m.name: m.label for m in METRICS.values()}


# ---- one entry plus its function -----------------------------------------------------------------
def _list_length(inputs: MetricInputs) -> pd.Series:
    return inputs.recs.groupby(inputs.recs["user_id"].astype(str)).size().astype(float)


def test_a_new_entry_appears_in_the_engines_per_user_frame(tiny):
    recs, split, context = _frame_inputs(tiny)
    toy = Metric("list_length", "List length@{k}", "user", True, "coverage", _list_length)
    registry = MetricRegistry([*METRICS.values(), toy])
    default = user_metrics_frame(recs, split, context, k=5)
    extended = user_metrics_frame(recs, split, context, k=5, registry=registry)
    assert "list_length" not in default.columns
    assert extended.columns.tolist() == [*USER_METRICS, "list_length"]
    assert (extended["list_length"] == 5.0).all()
    pd.testing.assert_frame_equal(extended[list(USER_METRICS)], default)
    assert metric_label("list_length", 5) == "list_length@5"  # the global registry is untouched


def test_entries_sharing_a_function_share_one_call_and_missing_inputs_skip(tiny):
    recs, split, context = _frame_inputs(tiny)
    calls = []

    def both(inputs: MetricInputs) -> pd.DataFrame:
        calls.append(1)
        length = _list_length(inputs)
        return pd.DataFrame({"len_a": length, "len_b": 2 * length})

    registry = MetricRegistry([
        Metric("len_a", "A@{k}", "user", True, "coverage", both),
        Metric("len_b", "B@{k}", "user", True, "coverage", both),
        Metric("needs_vectors", "V@{k}", "user", True, "diversity", _list_length, ("item_vectors",)),
        Metric("catalogue_only", "C@{k}", "catalogue", True, "exposure", np.max),
    ])  # fmt: skip
    frame = user_metrics_frame(recs, split, context, k=5, registry=registry)
    assert len(calls) == 1 and frame.columns.tolist() == ["len_a", "len_b", "needs_vectors"]
    assert (frame["len_b"] == 2 * frame["len_a"]).all()
    no_vectors = type(context)(**{**context.__dict__, "vectors": None})
    assert user_metrics_frame(recs, split, no_vectors, k=5, registry=registry).columns.tolist() == ["len_a", "len_b"]


def test_a_new_catalogue_entry_appears_in_the_global_rows(tiny):
    recs, split, context = _frame_inputs(tiny)
    users = pd.Index(sorted(recs["user_id"].astype(str).unique()))
    config = AuditConfig(k=5, bootstrap_rounds=30, min_group_size=5)
    top_share = Metric("top_share", "Top item share@{k}", "catalogue", False, "exposure",
                       lambda counts: np.max(counts, axis=-1) / np.sum(counts, axis=-1))
    rows = _global_metrics(recs, users, context, config, registry=MetricRegistry([*METRICS.values(), top_share]))
    assert rows["metric"].tolist() == [*GLOBAL_METRICS, "top_share"]
    top = rows.set_index("metric").loc["top_share"]
    counts = recs["item_id"].value_counts()
    assert top["value"] == pytest.approx(counts.max() / counts.sum())
    assert np.isfinite(top["ci_low"]) and top["ci_low"] < top["ci_high"]  # a user-bootstrap CI (a max is biased up)
    default = _global_metrics(recs, users, context, config)
    pd.testing.assert_frame_equal(rows.iloc[: len(GLOBAL_METRICS)], default)


# ---- every list is a query on the registry -------------------------------------------------------
def test_derived_lists_keep_their_contents():
    from fairaudit import plots
    from fairaudit.report import RATIO_METRICS
    from fairaudit.report._build import DIVERSITY, GAP_TABLE_METRICS

    assert USER_METRICS == CONTRACT_USER_METRICS
    assert GLOBAL_METRICS == ("gini_exposure", "catalogue_coverage")
    assert LOWER_IS_BETTER == {"avg_popularity", "miscalibration", "gini_exposure"}
    assert ACCURACY_METRICS == RATIO_METRICS == ("ndcg", "recall", "precision", "hit_rate", "mrr")
    assert plots.DIVERSITY_METRICS == ("ild_embedding", "ild_genre", "novelty", "miscalibration")
    assert set(DIVERSITY) == set(USER_METRICS) - set(ACCURACY_METRICS)
    assert GAP_TABLE_METRICS == ("ndcg", "recall")
    assert METRICS.names(headline=True) == ("ndcg", "recall", "gini_exposure", "catalogue_coverage")


def test_accuracy_entries_match_the_function_they_share():
    recs = pd.DataFrame({"user_id": ["a"], "rank": [1], "item_id": ["x"]})
    columns = accuracy_metrics(recs, pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}), k=1).columns
    assert tuple(columns) == METRICS.names(family="accuracy")
    assert len({METRICS[m].compute for m in ACCURACY_METRICS}) == 1


def test_sweep_targets_agree_with_the_registrys_direction():
    from fairaudit.sweep import TARGETS

    registered = {metric: goal for metric, goal in TARGETS.values() if metric in METRICS}
    assert registered  # the sweep does target registered metrics
    for metric, goal in registered.items():
        assert goal == ("high" if METRICS[metric].higher_is_better else "low"), metric


def _typed_metric_lists(path: Path) -> list[tuple[int, list[str]]]:
    """Tuples/lists/sets of string literals in ``path`` holding two or more registered metric names."""
    found = []
    tree = ast.parse(path.read_text())
    exported = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)}  # fmt: skip
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and id(node) not in exported:
            names = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in METRICS]
            if len(names) >= 2:
                found.append((node.lineno, names))
    return found


def test_no_module_types_a_list_of_metrics_again():
    # data/_synth.py names the planted effect's metrics in ground_truth.json; fairaudit.data sits below
    # fairaudit.metrics and cannot import the registry. _choices.py declares ACCURACY_METRICS for the CLI's
    # parsers, which import no numpy/pandas (tests/test_cli_startup.py); the registry refuses to differ.
    allowed = {ROOT / "fairaudit/metrics/_registry.py", ROOT / "fairaudit/data/_synth.py", ROOT / "fairaudit/_choices.py"}
    paths = [*sorted((ROOT / "fairaudit").rglob("*.py")), *sorted((ROOT / "pages").rglob("*.py")), ROOT / "app.py"]
    typed = {str(p.relative_to(ROOT)): hits for p in paths if p not in allowed and (hits := _typed_metric_lists(p))}
    assert typed == {}, "derive these lists from fairaudit.metrics.METRICS instead of typing the names"


# ---- options and errors --------------------------------------------------------------------------
def test_literal_options_match_their_tuples():
    assert get_args(Level) == LEVELS
    assert get_args(Family) == FAMILIES
    assert get_args(Need) == NEEDS
    assert {m.level for m in METRICS.values()} == set(LEVELS)
    assert {n for m in METRICS.values() for n in m.needs} == set(NEEDS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"family": "fairness"}, _BAD_OPTION.format("x", "family", "fairness", FAMILIES)),
        ({"level": "item"}, _BAD_OPTION.format("x", "level", "item", LEVELS)),
        ({"needs": ("ratings",)}, _BAD_OPTION.format("x", "need", "ratings", NEEDS)),
        ({"label": "X at {k}"}, _BAD_LABEL.format("x", "X at {k}")),
        ({"level": "catalogue", "needs": ("genres",)}, _CATALOGUE_NEEDS.format("x", ("genres",))),
        ({"ci": False}, _USER_CI.format("x")),
    ],
)
def test_bad_entries_are_refused(kwargs, message):
    entry = {"name": "x", "label": "X@{k}", "level": "user", "higher_is_better": True, "family": "accuracy",
             "compute": len, **kwargs}
    with pytest.raises(ValueError) as err:
        Metric(**entry)
    assert str(err.value) == message


def test_registry_refuses_duplicates_and_unknown_filters():
    with pytest.raises(ValueError) as err:
        MetricRegistry([METRICS["ndcg"], METRICS["ndcg"]])
    assert str(err.value) == _DUPLICATE.format("ndcg")
    with pytest.raises(ValueError) as err:
        METRICS.names(family="acuracy")
    assert str(err.value) == _BAD_FILTER.format("family", "acuracy", FAMILIES)
    with pytest.raises(KeyError):
        METRICS["acuracy"]
