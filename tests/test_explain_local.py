"""Local SHAP explanations on a stand-in model whose exact Shapley values are known in closed form."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pytest
import torch

from fairaudit.data import UNKNOWN, Split
from fairaudit.explain import LOCAL_COLUMNS, explain_item_text, explain_score, top_item
from fairaudit.explain._local import OTHER_HISTORY
from fairaudit.models import Recommender, create_model
from tests.conftest import make_tiny_dataset


class LinearHistoryModel(Recommender):
    """``score(u, i) = sum_j w_uj S[j, i] + bonus * [profile gender == "F"]``.

    A linear game: the Shapley value of history item ``j`` is ``S[j, i]`` and that of the gender
    attribute is ``bonus`` for women (masked to "unknown" it vanishes), 0 for men.
    """

    kind = "linear_test"
    use_profile = True
    profile_attributes = ("gender",)

    def __init__(self, bonus: float = 0.7, seed: int = 0):
        self.bonus, self.seed = bonus, seed

    def _fit(self, dataset, split, train_users, train_items, progress):
        rng = np.random.default_rng(self.seed)
        self.similarity_ = torch.as_tensor(rng.normal(size=(len(self.item_ids_),) * 2), dtype=torch.float32)
        users = dataset.users.set_index("user_id")["gender"].astype(str)
        self.gender_ = users.reindex(self.user_ids_).to_numpy(dtype=object)

    def score_with_history(self, user_idx, history_weights, attribute_overrides: Mapping[str, str] | None = None):
        gender = self.gender_[np.asarray(user_idx)]
        if attribute_overrides and "gender" in attribute_overrides:
            gender = np.full(len(gender), attribute_overrides["gender"], dtype=object)
        bonus = torch.as_tensor((gender == "F").astype(np.float32))[:, None] * self.bonus
        return history_weights.float() @ self.similarity_ + bonus

    def _score_indices(self, user_idx, item_idx, attribute_overrides=None):
        scores = self.score_with_history(user_idx, self.history_matrix(user_idx), attribute_overrides)
        return scores if item_idx is None else scores[:, torch.as_tensor(item_idx)]


@pytest.fixture(scope="module")
def data():
    return make_tiny_dataset(n_users=10, n_items=30)


@pytest.fixture(scope="module")
def model(data):
    return LinearHistoryModel().fit(data, Split(data.interactions, data.interactions.iloc[:0], "all", 0))


def _history(model, user_id):
    return np.flatnonzero(model.history_matrix(model.user_positions([user_id]))[0].numpy())


@pytest.mark.parametrize("user_id", ["u0", "u1"])  # u0 is F (bonus), u1 is M
def test_exact_shapley_values_of_a_linear_game(model, data, user_id):
    item = top_item(model, user_id)
    frame = explain_score(model, data, user_id, item, max_history=8)
    assert list(frame.columns) == list(LOCAL_COLUMNS)
    i = model.item_positions([item])[0]
    history = frame[frame["kind"] == "history"].set_index("feature")["shap_value"]
    expected = {model.item_ids_[j]: float(model.similarity_[j, i]) for j in _history(model, user_id)}
    assert set(history.index) == set(expected)
    for item_id, value in expected.items():
        assert history[item_id] == pytest.approx(value, abs=1e-5)
    gender = frame[frame["kind"] == "profile"].set_index("feature")
    assert gender.loc["gender", "feature_value"] == data.users.set_index("user_id").at[user_id, "gender"]
    assert gender.loc["gender", "shap_value"] == pytest.approx(0.7 if user_id == "u0" else 0.0, abs=1e-6)
    # Base: empty history and an unknown profile scores 0; base + sum = the model's score.
    assert frame["base_value"].iloc[0] == pytest.approx(0.0, abs=1e-6)
    assert frame["prediction"].iloc[0] == pytest.approx(float(model.score([user_id], [item])[0, 0]), abs=1e-5)
    assert frame["shap_value"].sum() + frame["base_value"].iloc[0] == pytest.approx(frame["prediction"].iloc[0])
    assert (np.diff(frame["shap_value"].abs().to_numpy()) <= 1e-12).all()  # sorted by magnitude


def test_heavy_history_keeps_the_largest_items_and_pools_the_rest_exactly(model, data):
    item = top_item(model, "u2")
    i = model.item_positions([item])[0]
    frame = explain_score(model, data, "u2", item, max_history=3).set_index("feature")
    effects = {model.item_ids_[j]: float(model.similarity_[j, i]) for j in _history(model, "u2")}
    largest = sorted(effects, key=lambda k: -abs(effects[k]))[:3]
    solo = frame[(frame["kind"] == "history") & (frame.index != OTHER_HISTORY)]
    assert set(solo.index) == set(largest)
    rest = sum(v for k, v in effects.items() if k not in largest)
    assert frame.loc[OTHER_HISTORY, "shap_value"] == pytest.approx(rest, abs=1e-5)
    assert frame.loc[OTHER_HISTORY, "feature_value"] == f"{len(effects) - 3} items"


def test_large_games_use_permutation_sampling_which_is_exact_for_a_linear_game(model, data, monkeypatch):
    exact = explain_score(model, data, "u0").set_index("feature")["shap_value"]
    monkeypatch.setattr("fairaudit.explain._local.EXACT_MAX_PLAYERS", 3)
    sampled = explain_score(model, data, "u0", max_evals=100).set_index("feature")["shap_value"]
    assert len(sampled) == 9  # 8 history items + gender
    np.testing.assert_allclose(sampled.reindex(exact.index), exact, atol=1e-5)


def test_models_without_the_hooks_and_unknown_ids_are_refused(data, model):
    popularity = create_model("popularity").fit(data, Split(data.interactions, data.interactions.iloc[:0], "all", 0))
    with pytest.raises(TypeError, match="cannot re-score an edited history"):
        explain_score(popularity, data, "u0")
    with pytest.raises(TypeError, match="does not read item texts"):
        explain_item_text(model, data, "u0")
    with pytest.raises(KeyError, match="User 'nobody'"):
        explain_score(model, data, "nobody")
    with pytest.raises(KeyError, match="Item 'nothing'"):
        explain_score(model, data, "u0", "nothing")


def test_unknown_profile_value_gets_zero_attribution(data):
    users = data.users.copy()
    users.loc[0, "gender"] = UNKNOWN
    other = type(data)(data.interactions, users, data.items)
    model = LinearHistoryModel().fit(other, Split(other.interactions, other.interactions.iloc[:0], "all", 0))
    frame = explain_score(model, other, "u0").set_index("feature")
    assert frame.loc["gender", "shap_value"] == 0.0


def test_itemknn_history_shapley_values_are_its_similarities(data):
    split = Split(data.interactions, data.interactions.iloc[:0], "all", 0)
    model = create_model("itemknn", shrinkage=0.0).fit(data, split)
    frame = explain_score(model, data, "u5").set_index("feature")
    i = model.item_positions([frame["item_id"].iloc[0]])[0]
    assert set(frame["kind"]) == {"history"}  # item-kNN reads no profile
    for j in _history(model, "u5"):
        assert frame.loc[model.item_ids_[j], "shap_value"] == pytest.approx(float(model.similarity_[j, i]), abs=1e-6)
    assert frame["base_value"].iloc[0] == pytest.approx(0.0, abs=1e-7)
