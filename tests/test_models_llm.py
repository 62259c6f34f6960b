"""LLM-specific behaviour: cold-start items from text, the encoder and its cache, SHAP hooks, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fairaudit.cli import main
from fairaudit.data import cache_root, item_cold_start
from fairaudit.models import TextEncoder, create_model, item_texts, load_model
from fairaudit.models._encoder import get_encoder
from tests.test_models_contract import _embedding_cache, planted_dataset  # noqa: F401  (fixture reuse)

LLM_PARAMS = {"dim": 16, "epochs": 8, "batch_size": 32, "lr": 0.02, "device": "cpu"}


@pytest.fixture(scope="module")
def cold():
    data = planted_dataset(n_users=120, n_items=40)
    return data, item_cold_start(data, cold_fraction=0.25, seed=0)


@pytest.fixture(scope="module")
def cold_llm(cold):
    return create_model("llm", **LLM_PARAMS).fit(*cold)


def _genre_agreement(model, data, split) -> float:
    """Share of users whose mean score on cold items of their liked genre beats the other genre."""
    cold_items = list(split.cold_items)
    scores = model.score(data.users["user_id"], cold_items)
    comedy = data.items.set_index("item_id").loc[cold_items, "genres"].eq("Comedy").to_numpy()
    likes_comedy = data.users["gender"].eq("F").to_numpy()
    gap = scores[:, comedy].mean(1) - scores[:, ~comedy].mean(1)
    return float(np.mean(np.where(likes_comedy, gap > 0, gap < 0)))


def test_cold_items_scored_from_text(cold, cold_llm):
    data, split = cold
    assert {"Comedy", "Action"} <= set(data.items.set_index("item_id").loc[list(split.cold_items), "genres"])
    assert _genre_agreement(cold_llm, data, split) >= 0.9  # chance: 0.5


@pytest.mark.parametrize("kind", ["popularity", "itemknn", "mf"])
def test_baselines_have_no_cold_signal(cold, kind):
    data, split = cold
    model = create_model(kind).fit(*cold)
    scores = model.score(data.users["user_id"][:10], list(split.cold_items))
    assert np.all(scores == 0.0)


def test_score_with_history_matches_score_and_reacts_to_masks(cold_llm):
    users = np.array([0, 3])
    history = cold_llm.history_matrix(users)
    full = cold_llm.score_with_history(users, history)
    np.testing.assert_allclose(full.detach().numpy(), cold_llm.score(cold_llm.user_ids_[users]), rtol=1e-6)
    sparse = cold_llm.score_with_history(users, history.to_sparse())
    np.testing.assert_allclose(sparse.detach().numpy(), full.detach().numpy(), rtol=1e-6)
    masked = history.clone()
    masked[0, history[0].nonzero()[0]] = 0.0  # drop one history item of user 0
    moved = cold_llm.score_with_history(users, masked)
    assert not torch.allclose(moved[0], full[0]) and torch.equal(moved[1], full[1])


def test_override_of_an_attribute_the_profile_does_not_state_changes_nothing(cold):
    model = create_model("llm", **{**LLM_PARAMS, "epochs": 1, "use_profile": True}).fit(*cold)
    original = model.score(["u0", "u1"])
    np.testing.assert_array_equal(model.score(["u0", "u1"], attribute_overrides={"shoe_size": "42"}), original)
    assert not np.array_equal(model.score(["u0", "u1"], attribute_overrides={"gender": "X"}), original)


def test_encoder_matches_mean_pooling_and_caches(tmp_path):
    encoder = get_encoder()
    texts = ["A funny film.", "A funny movie.", "A tax form."]
    emb = encoder.encode(texts)
    assert emb.shape == (3, encoder.dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # synonyms are closer than an unrelated text
    files = list((cache_root() / "embeddings" / encoder.identity).glob("*.npy"))
    assert files, "the list should have been cached on disk"
    fresh = TextEncoder()  # a new instance must read the cache, not the model
    np.testing.assert_array_equal(fresh.encode(texts), emb)
    assert fresh._model is None


def test_any_local_hugging_face_folder_serves_as_encoder(cold, tmp_path):
    """A different architecture saved with save_pretrained (here a tiny random BERT) trains and reloads."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(get_encoder().path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64)  # fmt: skip
    BertModel(config).save_pretrained(tmp_path / "tiny-bert")
    tokenizer.save_pretrained(tmp_path / "tiny-bert")
    model = create_model("llm", **LLM_PARAMS, encoder=str(tmp_path / "tiny-bert")).fit(*cold)
    assert model.item_text_embeddings_.shape[1] == 32
    model.save(tmp_path / "model")
    reloaded = load_model(tmp_path / "model", cold[0])
    users = cold[0].users["user_id"][:5]
    np.testing.assert_array_equal(reloaded.score(users), model.score(users))


def test_encoder_refuses_non_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        TextEncoder(tmp_path)


def test_item_texts_skip_popularity_tier(cold):
    data, _ = cold
    items = data.items.assign(popularity_tier="head", provider="indie")
    text = item_texts(type(data)(data.interactions, data.users, items))[0]
    assert "head" not in text and "Provider: indie." in text and "Genres: Comedy." in text


def test_cli_train_and_recommend(tmp_path, capsys, monkeypatch):
    data = planted_dataset(n_users=60, n_items=20)
    folder = tmp_path / "data"
    folder.mkdir()
    data.interactions.to_csv(folder / "interactions.csv", index=False)
    data.users.to_csv(folder / "users.csv", index=False)
    data.items.to_csv(folder / "items.csv", index=False)
    out = tmp_path / "model"
    code = main(["train", "--data", str(folder), "--model", "llm", "--epochs", "2", "--device", "cpu",
                 "--out", str(out), "--use-profile"])
    assert code == 0
    assert "holdout NDCG@10" in capsys.readouterr().out
    assert load_model(out).get_params()["use_profile"] is True
    recs_file = tmp_path / "recs.csv"
    assert main(["recommend", "--model", str(out), "--data", str(folder), "--k", "3", "--out", str(recs_file)]) == 0
    recs = pd.read_csv(recs_file, dtype={"user_id": str, "item_id": str})
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"] and len(recs) == 3 * 60
    other = tmp_path / "other"
    other.mkdir()
    data.interactions.iloc[:-5].to_csv(other / "interactions.csv", index=False)
    data.users.to_csv(other / "users.csv", index=False)
    data.items.to_csv(other / "items.csv", index=False)
    assert main(["recommend", "--model", str(out), "--data", str(other), "--out", str(recs_file)]) == 1  # bad files
    assert "was trained on data with fingerprint" in capsys.readouterr().err


def test_in_batch_loss_learns_planted_signal():
    from fairaudit.data import random_holdout
    from fairaudit.metrics import accuracy_metrics
    from tests.test_models_contract import random_ndcg

    data = planted_dataset()
    split = random_holdout(data, test_fraction=0.2, seed=0)
    model = create_model("llm", **{**LLM_PARAMS, "loss": "in_batch"}).fit(data, split)
    recs = model.recommend(split.test["user_id"].unique(), k=5)
    assert accuracy_metrics(recs, split.test, k=5)["ndcg"].mean() > 2.0 * random_ndcg(data, split)


def test_bad_loss_refused(cold):
    with pytest.raises(ValueError, match="loss must be one of"):
        create_model("llm", **{**LLM_PARAMS, "loss": "bpr"}).fit(*cold)
