"""Probes and local explanations of the real LLM recommender (tiny data, few epochs), and the two CLIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairaudit.cli import main
from fairaudit.data import Dataset, Split, load_dataset
from fairaudit.explain import (
    PROBE_COLUMNS,
    explain_item_text,
    explain_recommendation,
    explain_score,
    exposure_metric,
    probe_attribute,
)
from fairaudit.models import create_model, item_texts
from tests.conftest import make_tiny_dataset


def attribute_driven(n_users: int = 120, n_items: int = 40, seed: int = 0) -> Dataset:
    """Women interact with one 'indie' item of the first half, men with one 'studio' item of the second.

    With a single interaction per user, the left-out training history is empty, so only the
    profile (and the per-user embedding) can carry the planted preference.
    """
    rng = np.random.default_rng(seed)
    gender = np.where(np.arange(n_users) % 2 == 0, "F", "M")
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(n_users)], "gender": gender})
    half = n_items // 2
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"Item {j}" for j in range(n_items)],
            "provider": np.where(np.arange(n_items) < half, "indie", "studio"),
        }
    )
    chosen = np.where(gender == "F", rng.integers(0, half, n_users), rng.integers(half, n_items, n_users))
    interactions = pd.DataFrame({"user_id": users["user_id"], "item_id": [f"i{j}" for j in chosen]})
    return Dataset(interactions, users, items, name="attribute-driven")


@pytest.fixture(scope="module", autouse=True)
def private_embedding_cache(tmp_path_factory):
    """Keep the masked item texts of SHAP text explanations out of the user's embedding cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAIRAUDIT_CACHE", str(tmp_path_factory.mktemp("embedding-cache")))
        yield


def _all(data: Dataset) -> Split:
    return Split(data.interactions, data.interactions.iloc[:0], "all", 0)


@pytest.fixture(scope="module")
def planted():
    data = attribute_driven()
    return data, create_model("llm", dim=16, epochs=60, use_profile=True, device="cpu").fit(data, _all(data))


@pytest.fixture(scope="module")
def tiny():
    data = make_tiny_dataset(n_users=40, n_items=30)
    return data, create_model("llm", dim=16, epochs=5, use_profile=True, device="cpu").fit(data, _all(data))


def test_llm_that_reads_the_profile_changes_its_lists_when_gender_changes(planted):
    data, model = planted
    table = probe_attribute(model, data, "gender", k=5, bootstrap_rounds=200)
    pooled = table[table["original_value"] == "all"].set_index(["counterfactual_value", "metric"])
    for value in ("F", "M"):
        assert pooled.loc[(value, "jaccard"), "ci_high"] < 0.5
    indie = exposure_metric("provider", "indie")
    assert pooled.loc[("F", indie), "ci_low"] > 0.5  # men made women get indie items
    assert pooled.loc[("M", indie), "ci_high"] < -0.5


def test_llm_without_profile_shows_exactly_zero_change(planted):
    data, _ = planted
    blind = create_model("llm", dim=16, epochs=2, use_profile=False, device="cpu").fit(data, _all(data))
    table = probe_attribute(blind, data, "gender", k=5, bootstrap_rounds=50)
    assert (table.loc[table["metric"].isin(["jaccard", "prag"]), "estimate"] == 1.0).all()
    assert (table.loc[table["metric"].str.startswith("exposure_change"), "estimate"] == 0.0).all()
    assert (table.loc[table["metric"].str.endswith("_snsr"), "estimate"] == 0.0).all()


def test_history_and_profile_explanation_adds_up_to_the_llm_score(tiny):
    data, model = tiny
    frame = explain_score(model, data, "u3")
    item = frame["item_id"].iloc[0]
    assert item == model.recommend(["u3"], k=1)["item_id"].iloc[0]
    score = float(model.score(["u3"], [item])[0, 0])
    assert frame["base_value"].iloc[0] + frame["shap_value"].sum() == pytest.approx(score, abs=1e-4)
    assert set(frame.loc[frame["kind"] == "profile", "feature"]) == {"gender", "age_band", "region"}
    assert (frame["kind"] == "history").sum() == 8  # the tiny users have 8 training items


def test_item_text_explanation_covers_the_text_and_adds_up(tiny):
    data, model = tiny
    item = model.recommend(["u4"], k=1)["item_id"].iloc[0]
    frame = explain_item_text(model, data, "u4", item, max_evals=60)
    text = item_texts(data)[int(np.flatnonzero(data.items["item_id"] == item)[0])]
    tokens = frame.assign(position=frame["feature"].astype(int)).sort_values("position")["feature_value"]
    assert "".join(tokens).replace(" ", "") == text.replace(" ", "")
    score = float(model.score(["u4"], [item])[0, 0])
    assert frame["base_value"].iloc[0] + frame["shap_value"].sum() == pytest.approx(score, abs=1e-3)
    both = explain_recommendation(model, data, "u4", item, text_max_evals=60)
    assert set(both["kind"]) == {"history", "profile", "text"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The tiny dataset written as CSV files and an LLM trained on the loaded copy, saved."""
    root = tmp_path_factory.mktemp("cli")
    tiny = make_tiny_dataset(n_users=40, n_items=30)
    data_dir = root / "data"
    data_dir.mkdir()
    tiny.interactions.to_csv(data_dir / "interactions.csv", index=False)
    tiny.users.to_csv(data_dir / "users.csv", index=False)
    tiny.items.to_csv(data_dir / "items.csv", index=False)
    data = load_dataset(data_dir)
    model = create_model("llm", dim=16, epochs=2, use_profile=True, device="cpu").fit(data, _all(data))
    model.save(root / "model")
    return root, data_dir


def test_probe_cli_writes_the_probe_table(saved, capsys):
    root, data_dir = saved
    code = main(["probe", "--model", str(root / "model"), "--data", str(data_dir), "--attribute", "gender",
                 "--out", str(root / "probe"), "--k", "5", "--users", "30", "--bootstrap", "50"])  # fmt: skip
    assert code == 0
    table = pd.read_csv(root / "probe" / "probes.csv")
    assert list(table.columns) == list(PROBE_COLUMNS)
    assert set(table["attribute"]) == {"gender"}
    assert "jaccard_snsr" in set(table["metric"])
    assert "probes.csv" in capsys.readouterr().out


def test_explain_cli_prints_contributions_and_writes_them(saved, capsys):
    root, data_dir = saved
    code = main(["explain", "--model", str(root / "model"), "--data", str(data_dir), "--user", "u1", "--no-text",
                 "--out", str(root / "explain")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "history items and profile" in out and "largest contributions" in out
    frame = pd.read_csv(root / "explain" / "explanation.csv")
    assert frame["base_value"].iloc[0] + frame["shap_value"].sum() == pytest.approx(frame["prediction"].iloc[0])


def test_cli_reports_an_unknown_user_as_an_error(saved, capsys):
    root, data_dir = saved
    code = main(["explain", "--model", str(root / "model"), "--data", str(data_dir), "--user", "nobody", "--no-text"])
    assert code == 2
    assert "User 'nobody'" in capsys.readouterr().err
