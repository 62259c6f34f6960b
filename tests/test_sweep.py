"""The trade-off sweep: planted gaps shrink under each re-ranker (paired CIs exclude 0), Pareto fronts, CLI."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairaudit.cli import main
from fairaudit.data import generate_sample, load_dataset, make_split, write_sample
from fairaudit.metrics import pareto_front
from fairaudit.sweep import SWEEP_COLUMNS, run_sweep
from fairaudit.sweep import _BAD_MITIGATION, _NOT_MITIGABLE
from fairaudit.models import create_model, load_model


@pytest.fixture(scope="module")
def planted():
    """A small draw of the planted-bias generator (indie under-exposed, F users less accurate)."""
    data, truth = generate_sample(seed=0, n_users=600, n_items=300, n_interactions=24_000)
    split = make_split(data, "random", seed=0)
    return data, split, create_model("itemknn").fit(data, split), truth


@pytest.mark.parametrize(
    ("mitigation", "params", "target"),
    [
        ("rerank_exposure", {}, "exposure_gap"),
        ("rerank_calibrated", {}, "miscalibration"),
        ("rerank_mmr", {"embedding": "genres"}, "ild_genre"),
    ],
)
def test_each_reranker_reduces_the_gap_it_targets(planted, mitigation, params, target):
    data, split, base, truth = planted
    frame = run_sweep(
        data, split, mitigation=mitigation, strengths=[1.0, 0.0], model=base, rerank_params=params, rounds=100,
    )  # fmt: skip
    assert list(frame.columns) == list(SWEEP_COLUMNS)
    assert frame["strength"].tolist() == [0.0, 1.0]
    reference, point = frame.iloc[0], frame.iloc[1]
    assert reference["target_metric"] == target
    # The reference point compares with itself.
    assert reference[["accuracy_cost", "target_improvement"]].tolist() == [0.0, 0.0]
    # Full strength: the paired-bootstrap CI of the improvement excludes 0 ...
    assert point["target_improvement_ci_low"] > 0
    # ... and the accuracy cost is reported with its CI (re-ranking away from relevance costs accuracy).
    assert point["accuracy_cost_ci_low"] <= point["accuracy_cost"] <= point["accuracy_cost_ci_high"]
    assert point["accuracy_cost"] == pytest.approx(reference["accuracy"] - point["accuracy"], abs=1e-12)
    assert point["accuracy_cost_ci_low"] > 0
    # The watched item group is the planted under-exposed one, and the tracked user gap is the planted F gap.
    planted_items = next(e for e in truth["effects"] if e["id"] == "indie_underexposure")
    assert reference["exposure_group"] == planted_items["group"] and reference["exposure_gap_ci_high"] < 0
    assert reference["gap_group"] == "F" and reference["gap_ci_high"] < 0
    if mitigation == "rerank_exposure":  # full strength nearly closes the indie exposure gap
        assert abs(point["exposure_gap"]) < abs(reference["exposure_gap"]) / 5


def test_sweep_refuses_unknown_and_untrainable_mitigations(planted):
    data, split, base, _ = planted
    with pytest.raises(ValueError, match="mitigation must be one of"):
        run_sweep(data, split, mitigation="rerank_magic", model=base)
    assert "{1}" in _BAD_MITIGATION
    with pytest.raises(ValueError, match=re.escape(_NOT_MITIGABLE.format("itemknn", "difference"))):
        run_sweep(data, split, mitigation="difference", model=base, strengths=[0])


def test_pareto_front_hand_example():
    frame = pd.DataFrame(
        {
            "accuracy": [0.30, 0.28, 0.25, 0.20, 0.28, np.nan],
            "gap": [-0.10, -0.04, -0.05, 0.01, 0.04, 0.0],
        }
    )
    # Row 2 is dominated by row 1 (more accurate, smaller |gap|); rows 1 and 4 tie (|gap| 0.04): both stay.
    assert pareto_front(frame).tolist() == [True, True, False, True, True, False]
    # Goal "high": a larger value is better (e.g. diversity).
    div = pd.DataFrame({"accuracy": [0.3, 0.2, 0.1], "ild": [0.5, 0.7, 0.6]})
    assert pareto_front(div, "accuracy", "ild", gap_goal="high").tolist() == [True, True, False]
    with pytest.raises(ValueError, match="gap_goal must be one of"):
        pareto_front(div, "accuracy", "ild", gap_goal="up")


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-5, 5)), min_size=1, max_size=12))
def test_pareto_front_properties(points):
    frame = pd.DataFrame(points, columns=["accuracy", "gap"]).astype(float)
    front = pareto_front(frame)
    acc, bad = frame["accuracy"].to_numpy(), frame["gap"].abs().to_numpy()

    def dominates(i, j):
        return acc[i] >= acc[j] and bad[i] <= bad[j] and (acc[i] > acc[j] or bad[i] < bad[j])

    n = len(frame)
    for j in range(n):
        dominated = any(dominates(i, j) for i in range(n))
        assert front[j] == (not dominated)
    assert front.any()


def test_cli_sweep_writes_csv_and_loadable_models(tmp_path, capsys):
    write_sample(tmp_path / "data", seed=1, n_users=300, n_items=150, n_interactions=9_000)
    code = main(
        [
            "sweep", "--data", str(tmp_path / "data"), "--mitigation", "rerank_exposure", "--strengths", "0,1",
            "--base-model", "popularity", "--bootstrap", "30", "--out", str(tmp_path / "out"),
        ]
    )  # fmt: skip
    assert code == 0
    frame = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert list(frame.columns) == list(SWEEP_COLUMNS) and len(frame) == 2
    assert (tmp_path / "out" / "sweep.json").is_file()
    assert "Pareto front" in capsys.readouterr().out
    data = load_dataset(tmp_path / "data")
    model = load_model(tmp_path / "out" / frame["model_dir"].iloc[1], data)
    assert model.kind == "rerank_exposure" and model.strength == 1.0 and model.base.kind == "popularity"
    base = create_model("popularity").fit(data, make_split(data, "random", seed=0))
    reloaded_zero = load_model(tmp_path / "out" / frame["model_dir"].iloc[0], data)
    pd.testing.assert_frame_equal(reloaded_zero.recommend(k=10), base.recommend(k=10))


def test_cli_sweep_pooling_and_epochs_reach_every_llm_point(tmp_path):
    write_sample(tmp_path / "data", seed=1, n_users=300, n_items=150, n_interactions=9_000)
    args = ["sweep", "--data", str(tmp_path / "data"), "--mitigation", "adversarial", "--strengths", "0,1",
            "--epochs", "1", "--bootstrap", "10"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "default")]) == 0
    with pytest.warns(UserWarning, match="use pooling='mean'"):
        assert main([*args, "--pooling", "sqrt", "--out", str(tmp_path / "sqrt")]) == 0
    data = load_dataset(tmp_path / "data")
    for out, pooling in (("default", "mean"), ("sqrt", "sqrt")):
        frame = pd.read_csv(tmp_path / out / "sweep.csv")
        for folder in frame["model_dir"]:
            params = load_model(tmp_path / out / folder, data).get_params()
            assert params["pooling"] == pooling and params["epochs"] == 1
