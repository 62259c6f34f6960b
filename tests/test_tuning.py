"""``train --tune``: a fixed grid judged on validation only; the test split never changes the choice."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairaudit.cli import main
from fairaudit.data import Split, random_holdout
from fairaudit.models import TUNING_GRIDS, create_model, tune
from tests.test_models_contract import _embedding_cache, planted_dataset  # noqa: F401  (fixture reuse)

GRID = [{"n_neighbors": 5, "shrinkage": 0.0}, {"n_neighbors": 20, "shrinkage": 10.0}, {"n_neighbors": None, "shrinkage": 0.0}]
MF_GRID = [{"factors": 4, "reg": 0.1}, {"factors": 8, "reg": 1.0}]


@pytest.fixture(scope="module")
def planted():
    data = planted_dataset()
    return data, random_holdout(data, test_fraction=0.2, seed=0)


def _poisoned(split: Split) -> Split:
    """The same training part with a test part that says the opposite of the data: every user's test
    items are those they never touched, so a tuner that looked at it would choose differently."""
    rng = np.random.default_rng(1)
    users = split.test["user_id"].unique()
    seen = set(zip(split.train["user_id"], split.train["item_id"]))
    items = sorted(split.train["item_id"].unique())
    rows = [(u, i) for u in users for i in rng.permutation(items)[:5] if (u, i) not in seen]
    return Split(split.train, pd.DataFrame(rows, columns=["user_id", "item_id"]), split.method, split.seed)


@pytest.mark.parametrize("kind, grid, params", [("itemknn", GRID, {}), ("mf", MF_GRID, {"device": "cpu", "iterations": 6})])
def test_poisoning_the_test_split_does_not_change_the_choice(planted, kind, grid, params):
    data, split = planted
    clean = tune(kind, data, split, grid=grid, params=params)
    poisoned = tune(kind, data, _poisoned(split), grid=grid, params=params)
    assert clean.params == poisoned.params
    assert [t["value"] for t in clean.trials] == [t["value"] for t in poisoned.trials]
    assert clean.model.fingerprint() == poisoned.model.fingerprint()


def test_tune_picks_the_best_validation_setting_and_records_it(planted):
    data, split = planted
    result = tune("itemknn", data, split, grid=GRID)
    values = [t["value"] for t in result.trials]
    assert result.params == GRID[int(np.argmax(values))]
    record = result.model.validation_
    assert record["metric"] == "ndcg@10" and record["chosen"] == result.params
    assert [p["step"] for p in record["curve"]] == [1, 2, 3] and record["best_step"] == int(np.argmax(values)) + 1
    # The winner is refitted on the whole training part.
    again = create_model("itemknn", **result.params).fit(data, split)
    assert again.fingerprint() == result.model.fingerprint()


def test_iterative_kinds_also_choose_their_epochs(planted):
    data, split = planted
    result = tune("mf", data, split, grid=MF_GRID, params={"device": "cpu", "iterations": 6})
    assert "iterations" in result.params and 1 <= result.params["iterations"] <= 6
    assert result.model.validation_["trials"][0]["params"]["factors"] == 4


def test_every_trainable_baseline_has_a_grid():
    assert {"popularity", "itemknn", "mf", "llm"} <= set(TUNING_GRIDS)


def test_unknown_kind_is_refused(planted):
    with pytest.raises(ValueError, match="No tuning grid"):
        tune("rerank_mmr", *planted)


def test_train_cli_tune_saves_the_choice(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "--model", "popularity", "--tune", "--out", str(out), "--threads", "1"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["validation"]["metric"] == "ndcg@10" and len(config["validation"]["trials"]) == 1
    printed = capsys.readouterr().out
    assert "validation ndcg@10" in printed and "holdout:" in printed
