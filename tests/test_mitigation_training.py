"""In-training mitigation in the LLM recommender: off means exactly off; on, each term moves its target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairaudit.cli._train import add_arguments, model_params
from fairaudit.data import generate_sample, make_split
from fairaudit.mitigation import run_sweep
from fairaudit.mitigation._sweep import RECOVERED
from fairaudit.models import create_model, load_model
from tests.mitigation_support import one_torch_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"dim": 32, "epochs": 3, "device": "cpu", "seed": 0}


@pytest.fixture(scope="module")
def planted():
    data, truth = generate_sample(seed=0, n_users=600, n_items=300, n_interactions=24_000)
    split = make_split(data, "random", seed=0)
    plain = create_model("llm", **SMALL).fit(data, split)
    return data, split, plain, truth


def _same_model(a, b, users) -> None:
    assert a.fingerprint() == b.fingerprint()
    np.testing.assert_array_equal(a.score(users), b.score(users))
    pd.testing.assert_frame_equal(a.recommend(users, k=10), b.recommend(users, k=10))


def test_fairness_none_ignores_the_weight(planted):
    data, split, plain, _ = planted
    model = create_model("llm", **SMALL, fairness="none", fairness_weight=5.0).fit(data, split)
    _same_model(model, plain, data.users["user_id"][:80])


def test_exposure_term_reduces_the_planted_indie_gap(planted, tmp_path):
    data, split, plain, truth = planted
    frame = run_sweep(
        data, split, mitigation="exposure", strengths=[0, 4], model=create_model("llm", **SMALL), rounds=100,
        out=tmp_path,
    )  # fmt: skip
    # lambda = 0 is exactly the unmitigated model.
    _same_model(load_model(tmp_path / frame["model_dir"].iloc[0], data), plain, data.users["user_id"][:80])
    reference, point = frame.iloc[0], frame.iloc[1]
    planted_items = next(e for e in truth["effects"] if e["id"] == "indie_underexposure")
    assert reference["exposure_group"] == planted_items["group"] and reference["exposure_gap_ci_high"] < 0
    assert point["target_metric"] == "exposure_gap" and point["target_improvement_ci_low"] > 0
    assert point["accuracy_cost_ci_low"] <= point["accuracy_cost"] <= point["accuracy_cost_ci_high"]
    loaded = load_model(tmp_path / frame["model_dir"].iloc[1], data)
    assert loaded.get_params()["fairness"] == "exposure" and loaded.get_params()["fairness_weight"] == 4.0


def test_difference_term_reduces_the_planted_gender_gap_at_an_accuracy_cost(planted, tmp_path):
    data, split, plain, _ = planted
    frame = run_sweep(
        data, split, mitigation="difference", strengths=[0, 8], model=create_model("llm", **SMALL), rounds=100,
        out=tmp_path,
    )  # fmt: skip
    _same_model(load_model(tmp_path / frame["model_dir"].iloc[0], data), plain, data.users["user_id"][:80])
    reference, point = frame.iloc[0], frame.iloc[1]
    assert reference["gap_group"] == "F" and reference["gap_ci_high"] < 0
    assert point["target_metric"] == "gap" and point["target_improvement_ci_low"] > 0
    # Equalising training losses levels down: the cost is real and reported.
    assert point["accuracy_cost_ci_low"] > 0


def test_adversarial_term_reports_adversary_and_recovery(planted, tmp_path):
    data, split, plain, _ = planted
    messages = []
    model = create_model("llm", **SMALL, fairness="adversarial", fairness_weight=1.0)
    model.fit(data, split, progress=lambda event: messages.append(event.message))
    assert all(m.startswith("adversary accuracy ") for m in messages) and len(messages) == SMALL["epochs"]
    assert 0.0 <= model.adversary_accuracy_ <= 1.0
    frame = run_sweep(
        data, split, mitigation="adversarial", strengths=[0, 1], model=create_model("llm", **SMALL), rounds=100,
        out=tmp_path,
    )  # fmt: skip
    _same_model(load_model(tmp_path / frame["model_dir"].iloc[0], data), plain, data.users["user_id"][:80])
    assert frame["target_metric"].tolist() == [RECOVERED, RECOVERED]
    assert frame["target"].between(0, 1).all()
    # The planted sample leaks gender into plain user vectors (F users have half the history).
    known = data.users["gender"][data.users["gender"].isin(["F", "M", "X"])]
    majority = known.value_counts(normalize=True).max()
    assert frame["target_ci_low"].iloc[0] > majority


@pytest.mark.xfail(
    strict=True,
    reason="known defect: the gradient-reversal adversary makes gender easier, not harder, for a fresh "
    "classifier to recover from the user vectors (docs/benchmarks.md, Mitigation); the issue's bar stands",
)
def test_adversarial_term_reduces_gender_recovery(planted, tmp_path):
    data, split, _, _ = planted
    frame = run_sweep(
        data, split, mitigation="adversarial", strengths=[0, 1], model=create_model("llm", **SMALL), rounds=100,
        out=tmp_path,
    )  # fmt: skip
    assert frame["target_improvement_ci_low"].iloc[1] > 0


def test_train_cli_passes_fairness_options():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--out", "x", "--fairness", "exposure", "--fairness-weight", "2", "--exposure-attribute", "popularity_tier"]
    )
    params = model_params(args)
    assert params["fairness"] == "exposure" and params["fairness_weight"] == 2.0
    assert params["exposure_attribute"] == "popularity_tier" and params["fairness_attribute"] == "gender"
    assert create_model("llm", **params).get_params()["fairness"] == "exposure"
