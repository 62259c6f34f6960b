"""Text profiles (issue 22): pooling by hand, the LLM recommender's text input, replaced texts, cold-start users."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairaudit.compare import compare_models
from fairaudit.data import Dataset, Split, generate_sample, load_sample, random_holdout
from fairaudit.metrics import accuracy_metrics
from fairaudit.models import LLMRecommender, create_model, encode_profiles, load_model, pool_profiles, recency_weights
from fairaudit.models._encoder import get_encoder
from fairaudit.models._llm import NO_TEXTS
from fairaudit.profiles import TextProfiles

DAY = 86_400
FAST = dict(dim=16, epochs=6, batch_size=64, lr=0.02, device="cpu", seed=0)


# ---- pooling ---------------------------------------------------------------------------------------
def test_pool_profiles_by_hand_with_recency():
    e = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    users = np.array([0, 0, 1])
    vectors, counts = pool_profiles(e, users, 3)
    np.testing.assert_allclose(vectors, [[0.5, 0.5], [1.0, 1.0], [0.0, 0.0]])
    assert counts.tolist() == [2, 1, 0]
    # Half-life 1 day: user 0's newest text (day 2) weighs 1, the one 2 days older 1/4 -> (0.25 e0 + e1) / 1.25.
    stamps = np.array([0, 2 * DAY, 5])
    assert recency_weights(users, stamps, 3, 1.0).tolist() == [0.25, 1.0, 1.0]
    vectors, _ = pool_profiles(e, users, 3, timestamps=stamps, half_life_days=1.0)
    np.testing.assert_allclose(vectors, [[0.2, 0.8], [1.0, 1.0], [0.0, 0.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="half_life_days must be a finite number > 0"):
        pool_profiles(e, users, 3, timestamps=stamps, half_life_days=-1.0)


def test_encode_profiles_is_the_mean_of_the_users_text_embeddings():
    texts = pd.DataFrame({"user_id": ["a", "a", "b", "zz"], "text": ["I love horror.", "Drama please.", "Sci-fi!", "x"],
                          "timestamp": [0, DAY, 5, 0]})  # fmt: skip
    encoder = get_encoder()
    profiles = encode_profiles(texts, ["b", "a", "c"])
    e = encoder.encode(["I love horror.", "Drama please.", "Sci-fi!"])
    np.testing.assert_allclose(profiles.vectors, [e[2], (e[0] + e[1]) / 2, np.zeros(e.shape[1])], atol=1e-6)
    assert profiles.n_texts.tolist() == [1, 2, 0] and profiles.has_text.tolist() == [True, True, False]
    assert profiles.user_ids.tolist() == ["b", "a", "c"] and profiles.encoder == encoder.identity
    recent = encode_profiles(texts, ["a"], half_life_days=1.0)
    np.testing.assert_allclose(recent.vectors[0], (0.5 * e[0] + e[1]) / 1.5, atol=1e-6)
    with pytest.raises(ValueError, match="needs a 'timestamp' column"):
        encode_profiles(texts.drop(columns="timestamp"), ["a"], half_life_days=1.0)
    assert not encode_profiles(None, ["a"]).has_text.any()


# ---- the model ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    data, _ = generate_sample(seed=0, n_users=150, n_items=60, n_interactions=3000)
    return data, random_holdout(data, 0.2, seed=0)


@pytest.fixture(scope="module")
def text_model(small):
    return LLMRecommender(use_texts=True, **FAST).fit(*small)


@pytest.fixture(scope="module")
def plain_model(small):
    return LLMRecommender(**FAST).fit(*small)


def test_use_texts_needs_texts_and_off_ignores_them(small, plain_model):
    data, split = small
    bare = Dataset(data.interactions, data.users, data.items, name="bare")
    with pytest.raises(ValueError, match=NO_TEXTS.format("bare").split(";")[0]):
        LLMRecommender(use_texts=True, **FAST).fit(bare, split)
    users = data.users["user_id"][:20]
    np.testing.assert_array_equal(plain_model.score(users), LLMRecommender(**FAST).fit(bare, split).score(users))


def test_save_load_round_trip_records_the_texts(small, text_model, tmp_path):
    data, _ = small
    text_model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["params"]["use_texts"] is True and config["data_fingerprint"] == data.fingerprint()
    assert config["texts"]["fingerprint"] == data.texts_fingerprint()
    assert config["texts"]["n_users_with_texts"] == data.texts["user_id"].nunique()
    assert not list((tmp_path / "m").glob("*.pt")) and not list((tmp_path / "m").glob("*.pkl"))
    loaded = load_model(tmp_path / "m")
    users = data.users["user_id"]
    np.testing.assert_array_equal(loaded.score(users), text_model.score(users))
    assert loaded.fingerprint() == text_model.fingerprint()
    np.testing.assert_array_equal(loaded.text_profiles(users[:5]).vectors, text_model.text_profiles(users[:5]).vectors)


def test_replaced_texts_change_only_those_users(small, text_model, plain_model):
    data, _ = small
    users = data.texts["user_id"].unique()[:4].tolist()
    own = data.texts[data.texts["user_id"] == users[0]]
    same = text_model.with_texts(own)
    np.testing.assert_allclose(same.score(users), text_model.score(users), atol=1e-5)
    swapped = text_model.with_texts(pd.DataFrame({"user_id": [users[0]], "text": ["I only watch documentary films."]}))
    before, after = text_model.score(users), swapped.score(users)
    assert np.abs(after[0] - before[0]).max() > 1e-3
    np.testing.assert_array_equal(after[1:], before[1:])
    assert isinstance(swapped.text_profiles([users[0]]), TextProfiles)
    assert swapped.text_profiles([users[0]]).n_texts.tolist() == [1]
    silent = text_model.without_texts(users[:1])
    assert silent.text_profiles(users[:1]).n_texts.tolist() == [0]
    assert np.abs(silent.user_vectors(users[:1]) - text_model.user_vectors(users[:1])).max() > 1e-4
    assert text_model.text_profiles([users[0]]).n_texts.tolist() == [len(own)]  # the original is unchanged
    with pytest.raises(KeyError):
        text_model.with_texts(pd.DataFrame({"user_id": ["nobody"], "text": ["hi"]}))
    with pytest.raises(ValueError, match="trained without use_texts"):
        plain_model.with_texts(own)


def test_cold_start_user_is_served_from_texts(small):
    data, split = small
    user = data.texts["user_id"].iloc[0]
    cold = Split(split.train[split.train["user_id"] != user], split.test, "cold_user", 0)
    model = LLMRecommender(use_texts=True, **FAST).fit(data, cold)
    horror = model.with_texts(pd.DataFrame({"user_id": [user] * 2, "text": ["I love horror films.", "Horror!"]}))
    comedy = model.with_texts(pd.DataFrame({"user_id": [user] * 2, "text": ["I love comedy films.", "Comedy!"]}))
    genres = data.items.set_index("item_id")["genres"]
    share = {name: genres.loc[m.recommend([user], k=10)["item_id"]].str.contains(name.capitalize()).mean()
             for name, m in (("horror", horror), ("comedy", comedy))}  # fmt: skip
    assert len(horror.recommend([user], k=10)) == 10
    assert share["horror"] > 0 or share["comedy"] > 0
    h_scores, c_scores = horror.score([user])[0], comedy.score([user])[0]
    is_horror = genres.reindex(model.item_ids_).str.contains("Horror").to_numpy()
    # The horror texts raise horror items relative to the comedy texts.
    assert (h_scores - c_scores)[is_horror].mean() > (h_scores - c_scores)[~is_horror].mean()


def test_profile_summaries_one_sentence_per_user_with_texts(tmp_path):
    from fairaudit.models import LanguageModel
    from fairaudit.profiles import profile_summaries
    from tests.tiny_lm import build_tiny_lm

    lm = LanguageModel(build_tiny_lm(tmp_path / "lm"), device="cpu", cache=False)
    texts = pd.DataFrame({"user_id": ["a", "a", "c"], "text": ["I love horror.", "Drama too.", "Comedy!"]})
    out = profile_summaries(texts, ["a", "b", "c"], lm=lm, max_new_tokens=4)
    assert out.index.tolist() == ["a", "b", "c"] and out["b"] == ""
    assert all(isinstance(s, str) and "\n" not in s for s in out)
    assert profile_summaries(None, ["a"], lm=lm).tolist() == [""]


# ---- must hold on the sample ------------------------------------------------------------------------------
SAMPLE_PARAMS = dict(dim=32, epochs=30, device="cpu", seed=0)


@pytest.mark.slow
def test_on_the_sample_texts_help_light_users_and_cold_start_users():
    """Paired bootstrap CI of the per-user NDCG@10 difference (texts - none) excludes 0 for light users;
    200 users whose interactions are all held out (they keep their texts) get NDCG@10 far above random
    and above popularity."""
    data = load_sample()
    split = random_holdout(data, 0.2, seed=0)
    users = split.test["user_id"].unique()
    frames = []
    for name, use in (("plain", False), ("texts", True)):
        model = LLMRecommender(use_texts=use, **SAMPLE_PARAMS).fit(data, split)
        frames.append(accuracy_metrics(model.recommend(users, k=10), split.test)[["ndcg"]].assign(model=name))
    per_user = pd.concat(frames).reset_index()
    activity = data.users.set_index("user_id")["activity"]
    table = compare_models(per_user, model_a="plain", model_b="texts", groups={"activity": activity}, rounds=1000)
    light = table[(table["group"] == "light") & (table["quantity"] == "value")].iloc[0]
    overall = table[(table["attribute"] == "all") & (table["quantity"] == "value")].iloc[0]
    print(table[table["quantity"] == "value"][["group", "a", "b", "difference", "ci_low", "ci_high"]])
    assert light["ci_low"] > 0 and overall["ci_low"] > 0

    rng = np.random.default_rng(0)
    cold = rng.choice(np.sort(data.texts["user_id"].unique()), 200, replace=False)
    held = data.interactions["user_id"].isin(cold)
    cold_split = Split(data.interactions[~held], data.interactions[held], "cold_users", 0)
    model = LLMRecommender(use_texts=True, **SAMPLE_PARAMS).fit(data, cold_split)
    ndcg = accuracy_metrics(model.recommend(cold, k=10), cold_split.test)["ndcg"].mean()
    popular = create_model("popularity").fit(data, cold_split)
    popularity = accuracy_metrics(popular.recommend(cold, k=10), cold_split.test)["ndcg"].mean()
    items = data.items["item_id"].to_numpy()
    random_lists = pd.DataFrame({"user_id": np.repeat(cold, 10), "rank": np.tile(np.arange(1, 11), len(cold)),
                                 "item_id": np.concatenate([rng.permutation(items)[:10] for _ in cold])})  # fmt: skip
    chance = accuracy_metrics(random_lists, cold_split.test)["ndcg"].mean()
    print(f"cold-start NDCG@10: texts {ndcg:.4f}, popularity {popularity:.4f}, random {chance:.4f}")
    assert ndcg > 4 * chance and ndcg > popularity
