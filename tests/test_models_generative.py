"""The generative LLM recommender: parsing and matching answers, likelihood ranking, caching, LoRA, contract.

Almost everything runs on a tiny randomly initialised Llama built in-test (``tests/tiny_lm.py``);
answers are planted by replacing ``LanguageModel.generate`` where the test is about what happens to them.
One slow test loads the packaged SmolLM2-135M-Instruct (once, in its own xdist group).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from fairaudit.data import Split, random_holdout
from fairaudit.models import GenerativeRecommender, LanguageModel, Progress, TitleMatcher, create_model, load_model
from fairaudit.models._generative import (
    GENERATED_SCORE,
    attribute_sentence,
    default_lm_path,
    get_language_model,
    history_table,
    normalise_title,
    parse_titles,
)
from tests.conftest import make_tiny_dataset
from tests.test_models_contract import RecommenderContract, planted_dataset, split_of
from tests.tiny_lm import build_tiny_lm


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    """Answers, likelihoods and embeddings of these tests go to a temporary cache."""
    old = os.environ.get("FAIRAUDIT_CACHE")
    os.environ["FAIRAUDIT_CACHE"] = str(tmp_path_factory.mktemp("generative-cache"))
    yield
    if old is None:
        os.environ.pop("FAIRAUDIT_CACHE", None)
    else:
        os.environ["FAIRAUDIT_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> str:
    return str(build_tiny_lm(tmp_path_factory.mktemp("tiny-lm")))


@pytest.fixture(scope="module")
def tiny():
    data = make_tiny_dataset()
    return data, random_holdout(data, test_fraction=0.2, seed=0)


@pytest.fixture(scope="module")
def planted():
    data = planted_dataset()
    return data, split_of(data)


def fast(lm: str, **params) -> dict:
    """Small, quick settings for the tiny LM (no embedding matching unless asked)."""
    return {"lm": lm, "device": "cpu", "history_items": 3, "n_candidates": 8, "max_new_tokens": 24,
            "match_threshold": 1.0, **params}


# ---- parsing and matching -------------------------------------------------------------------------


def test_parse_titles_numbered_bulleted_and_inline():
    answer = "Here you go:\n1. Heat (1995) - a heist film\n2) \"Up\"\n- *Casino*\n3. Heat (1995)"
    assert parse_titles(answer) == ["Heat (1995)", "Up", "Casino", "Heat (1995)"]
    assert parse_titles("Heat; Up; Casino") == ["Heat", "Up", "Casino"]
    assert parse_titles("") == []


def test_normalised_titles_match_movielens_style():
    assert normalise_title("Usual Suspects, The (1995)") == "usual suspects"
    assert normalise_title("THE USUAL SUSPECTS!") == "usual suspects"
    assert normalise_title("Heat (1995)") != normalise_title("Heath (1995)")


def test_matcher_exact_normalised_embedding_and_none():
    titles = ["Heat (1995)", "Usual Suspects, The (1995)", "Toy Story (1995)", "Casino (1995)"]
    positions, kinds = TitleMatcher(titles, threshold=0.8).match(
        ["Heat (1995)", "the usual suspects", "Toy Story 1995 movie", "A Film Nobody Made About Llamas"]
    )
    assert positions.tolist() == [0, 1, 2, -1]
    assert kinds == ["exact", "normalised", "embedding", "none"]
    positions, kinds = TitleMatcher(titles, threshold=None).match(["Toy Story 1995 movie"])
    assert positions.tolist() == [-1] and kinds == ["none"]


def test_attribute_sentence_leaves_unknown_out():
    assert attribute_sentence({"gender": "F", "age_band": "unknown"}) == "About me: gender F. "
    assert attribute_sentence({}) == ""


def test_history_sampling_recent_top_rated_random():
    train = pd.DataFrame({"user_id": ["a"] * 4 + ["b"], "item_id": ["w", "x", "y", "z", "w"],
                          "rating": [1.0, 5.0, 3.0, 5.0, 2.0], "timestamp": [4, 1, 3, 2, 9]})
    split, ids = Split(train, train.iloc[:0], "all", 0), np.array(["w", "x", "y", "z"], dtype=object)
    users = np.array(["a", "b", "c"], dtype=object)
    assert history_table(split, users, ids, 2, "recent", 0).tolist() == [[0, 2], [0, -1], [-1, -1]]
    assert history_table(split, users, ids, 2, "top_rated", 0).tolist() == [[3, 1], [0, -1], [-1, -1]]
    first = history_table(split, users, ids, 3, "random", 0)
    np.testing.assert_array_equal(first, history_table(split, users, ids, 3, "random", 0))
    assert set(first[0]) <= {0, 1, 2, 3} and len(set(first[0])) == 3


# ---- the language model -----------------------------------------------------------------------------


def _plain_loglik(lm, prompt: str, title: str) -> float:
    """Reference: prompt + title in one plain forward pass (no packing, no padding, no cache)."""
    tok = lm.tokenizer
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    t = tok(title, add_special_tokens=False)["input_ids"] or [tok.pad_token_id]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([p + t])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    return float(np.mean([logp[len(p) - 1 + j, t[j]] for j in range(len(t))]))


@pytest.mark.parametrize("batch_tokens", [12, 40, 4096])
def test_packed_loglik_equals_plain_forward_passes(tiny_lm, batch_tokens):
    """Titles packed behind their prompt (split over rows when they do not fit, rows sharing passes) score as alone."""
    lm = LanguageModel(tiny_lm, device="cpu", cache=False).load()
    prompts = ["Liked: Heat. Next:", "Hi", "Liked: Up; Casino; Heat; Fargo. Recommend one:"]
    titles = [[" Up", " Casino Royale", " X"], [" A", "", " Usual Suspects, The (1995)"], [" Heat"] * 2 + [" B"]]
    packed = lm.loglik(prompts, titles, batch_tokens=batch_tokens)
    expected = [[_plain_loglik(lm, p, t) for t in row] for p, row in zip(prompts, titles)]
    for got, want in zip(packed, expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert lm.loglik(["Hi"], [[]])[0].shape == (0,)


def test_batched_greedy_generation_equals_unbatched_and_transformers_generate(tmp_path):
    """Left padding, per-row positions and rows leaving the batch at their end token do not change any answer."""
    lm = LanguageModel(build_tiny_lm(tmp_path / "lm", init_std=0.3), device="cpu", cache=False).load()
    prompts = ["Name three movies.", "Liked: Heat; Up.", "Hi", "List 4 comedies", "Say yes.", "abc", "Movies:"]
    tok = lm.tokenizer
    ids = tok(prompts, add_special_tokens=False)["input_ids"]
    # The end token: one this lively random model emits mid-answer for the second prompt, so rows end at varied steps.
    lm.model.generation_config.eos_token_id = lm._decode([ids[1]], 30, 0.0, 0)[0][5]
    lengths = [len(lm._decode([row], 30, 0.0, 0)[0]) for row in ids]
    assert 30 in lengths and min(lengths) < 30  # some rows really leave the batch early, some run to the limit
    one = [lm.generate([p], max_new_tokens=30, batch_size=1)[0] for p in prompts]
    assert lm.generate(prompts, max_new_tokens=30, batch_size=3) == one
    assert lm.generate(prompts, max_new_tokens=30, batch_size=8) == one
    for prompt, answer in zip(prompts, one):  # the same tokens as transformers' own greedy generate()
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = lm.model.generate(**ids, max_new_tokens=30, do_sample=False, pad_token_id=tok.pad_token_id)
        assert tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True) == answer


def test_generation_is_cached_and_deterministic(tiny_lm, monkeypatch):
    lm = LanguageModel(tiny_lm, device="cpu")
    first = lm.generate(["Hello", "Movies:"], max_new_tokens=8)
    assert first == lm.generate(["Hello", "Movies:"], max_new_tokens=8)
    fresh = LanguageModel(tiny_lm, device="cpu")  # same identity: answers come from the disk cache
    monkeypatch.setattr(LanguageModel, "load", lambda self: pytest.fail("cached answers must not load the model"))
    assert fresh.generate(["Movies:", "Hello"], max_new_tokens=8) == first[::-1]


def test_sampling_depends_on_seed_greedy_does_not(tiny_lm):
    lm = LanguageModel(tiny_lm, device="cpu", cache=False)
    greedy = [lm.generate(["Films:"], max_new_tokens=12, seed=s)[0] for s in (0, 1)]
    assert greedy[0] == greedy[1]
    sampled = {lm.generate(["Films:"], max_new_tokens=12, temperature=1.5, seed=s)[0] for s in range(4)}
    assert len(sampled) > 1
    assert lm.generate(["Films:"], max_new_tokens=12, temperature=1.5, seed=2)[0] in sampled


def test_a_folder_without_safetensors_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(FileNotFoundError, match="neither config.json with"):
        LanguageModel(tmp_path)


# ---- the recommender --------------------------------------------------------------------------------


def test_rank_mode_candidates_first_and_every_user_has_a_full_list(tiny, tiny_lm):
    data, split = tiny
    model = create_model("generative", **fast(tiny_lm)).fit(data, split)
    scores = model.score(data.users["user_id"])
    assert np.isfinite(scores).all()
    users = model.user_positions(data.users["user_id"])
    candidates = model.candidates(users, model._retrieval_scores(users))
    for row, cand in enumerate(candidates[:5]):
        others = np.setdiff1d(np.arange(len(model.item_ids_)), cand)
        assert scores[row, cand].min() > scores[row, others].max()
    recs = model.recommend(k=5)
    assert recs.groupby("user_id").size().eq(5).all() and recs["user_id"].nunique() == len(data.users)


def test_generate_mode_counts_matches_hallucinations_duplicates_and_seen(tiny, tiny_lm, monkeypatch):
    data, split = tiny
    model = create_model("generative", **fast(tiny_lm, mode="generate", n_generate=5)).fit(data, split)
    seen_title = data.items.set_index("item_id").loc[split.train["item_id"].iloc[0], "title"]
    user = split.train["user_id"].iloc[0]
    answer = f"1. Item 21\n2. item 21\n3. A Film That Does Not Exist\n4. {seen_title}\n5. ITEM 22"
    monkeypatch.setattr(LanguageModel, "generate", lambda self, prompts, **kw: [answer] * len(prompts))
    stats = model.generation_stats([user]).iloc[0]
    assert stats[["n_generated", "n_matched", "n_hallucinated", "n_duplicate", "n_seen"]].tolist() == [5, 4, 1, 1, 1]
    assert stats[["matched_exact", "matched_normalised", "matched_embedding"]].tolist() == [2, 2, 0]
    lists = model.generated_lists([user], 4)
    expected = [model.item_positions([i])[0] for i in ("i21", "i22")]
    assert lists.tolist() == [expected + [-1, -1]]
    recs = model.recommend([user], k=4)
    assert recs["item_id"].tolist()[:2] == ["i21", "i22"] and len(recs) == 4  # filled from retrieval
    assert recs["score"].iloc[0] == GENERATED_SCORE and recs["score"].iloc[2] < 0
    short = create_model("generative", **fast(tiny_lm, mode="generate", fill=False)).fit(data, split)
    assert short.recommend([user], k=4)["item_id"].tolist() == ["i21", "i22"]


def test_attributes_enter_the_prompt_and_unknown_leaves_them_out(tiny, tiny_lm):
    data, split = tiny
    model = create_model("generative", **fast(tiny_lm, prompt_attributes=("gender",))).fit(data, split)
    assert "About me: gender F." in model.prompts(["u0"])[0]
    assert "About me: gender M." in model.prompts(["u0"], attribute_overrides={"gender": "M"})[0]
    neutral = model.prompts(["u0"], attribute_overrides={"gender": "unknown"})[0]
    assert "About me" not in neutral and "Item" in neutral
    stated = model.prompts(["u0"], attribute_overrides={"region": "South"})[0]
    assert "gender F, region South" in stated


def test_progress_reports_scoring(tiny, tiny_lm):
    data, split = tiny
    model = create_model("generative", **fast(tiny_lm)).fit(data, split)
    events: list[Progress] = []
    model.progress = events.append
    model.recommend(["u0", "u1", "u2"], k=3)
    assert events[-1].epoch == events[-1].n_epochs == 3 and "likelihood" in events[-1].message


def test_bad_option_is_refused(tiny, tiny_lm):
    with pytest.raises(ValueError, match="history_sampling must be one of"):
        create_model("generative", **fast(tiny_lm, history_sampling="oldest")).fit(*tiny)


def test_evaluated_users_is_a_seeded_sample(tiny, tiny_lm):
    data, split = tiny
    model = create_model("generative", **fast(tiny_lm, eval_users=7)).fit(data, split)
    assert len(model.evaluated_users()) == 7 and set(model.evaluated_users()) <= set(model.user_ids_)
    np.testing.assert_array_equal(model.evaluated_users(), model.evaluated_users())


def test_lora_finetuning_changes_scores_and_round_trips_as_safetensors(tiny, tiny_lm, tmp_path):
    data, split = tiny
    plain = create_model("generative", **fast(tiny_lm)).fit(data, split)
    events: list[Progress] = []
    tuned = create_model("generative", **fast(tiny_lm, finetune_epochs=2, finetune_users=12, lr=5e-3,
                                               lora_rank=4)).fit(data, split, progress=events.append)
    assert [e.epoch for e in events] == [1, 2] and all(np.isfinite(e.loss) for e in events)
    assert tuned.adapter_ and all(name.startswith("base_model") for name in tuned.adapter_)
    assert np.abs(tuned.score(["u0"]) - plain.score(["u0"])).max() > 1e-6
    tuned.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_model(tmp_path / "m", data)
    np.testing.assert_allclose(loaded.score(["u0", "u3"]), tuned.score(["u0", "u3"]), rtol=1e-5, atol=1e-6)


# ---- the common contract ----------------------------------------------------------------------------


class _TinyLMContract(RecommenderContract):
    mode = "rank"

    @pytest.fixture(scope="class", autouse=True)
    def _lm(self, tiny_lm):
        type(self).lm_path = tiny_lm

    def make(self, **overrides):
        return create_model("generative", **fast(self.lm_path, mode=self.mode, prompt_attributes=("gender",),
                                                 retrieval="embedding", **overrides))

    def test_attribute_overrides(self, fitted):
        """The prompt states the user's gender: overriding it moves only users whose value changes."""
        base = fitted.score(["u0", "u1"])  # u0 is F, u1 is M
        flipped = fitted.score(["u0", "u1"], attribute_overrides={"gender": "M"})
        assert np.abs(flipped[0] - base[0]).max() > 1e-6 if self.mode == "rank" else True
        np.testing.assert_array_equal(flipped[1], base[1])


class TestGenerativeRank(_TinyLMContract):
    mode = "rank"


class TestGenerativeGenerate(_TinyLMContract):
    mode = "generate"


# ---- the packaged SmolLM2 (slow) --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("smollm2")
def test_smollm2_ranks_and_generates(tiny):
    try:
        default_lm_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    data, split = tiny
    lm = get_language_model(None, "cpu")
    model = GenerativeRecommender(device="cpu", history_items=3, n_candidates=4, eval_users=None).fit(data, split)
    recs = model.recommend(["u0", "u1"], k=3)
    assert recs.groupby("user_id").size().tolist() == [3, 3]
    answer = lm.generate([lm.chat("You are a movie recommendation system.", "Name three movies.")],
                         max_new_tokens=32)[0]
    assert answer.strip()
    generated = GenerativeRecommender(device="cpu", mode="generate", n_generate=3, max_new_tokens=48,
                                      history_items=3).fit(data, split)
    stats = generated.generation_stats(["u0"])
    assert int(stats["n_generated"].iloc[0]) >= 0 and len(generated.recommend(["u0"], k=3)) == 3


def test_fingerprint_covers_mode_and_a_changed_language_model_is_refused(tiny, tmp_path):
    data, split = tiny
    lm = build_tiny_lm(tmp_path / "lm")
    rank = create_model("generative", **fast(str(lm))).fit(data, split)
    generate = create_model("generative", **fast(str(lm), mode="generate")).fit(data, split)
    assert rank.fingerprint() != generate.fingerprint()
    rank.save(tmp_path / "m")
    assert load_model(tmp_path / "m", data).fingerprint() == rank.fingerprint()
    build_tiny_lm(lm, seed=1)  # same folder, other weights and ...
    config = (lm / "config.json").read_text()
    (lm / "config.json").write_text(config.replace('"num_hidden_layers": 2', '"num_hidden_layers": 2 '))
    get_language_model.cache_clear()
    with pytest.raises(ValueError, match="was saved with language model"):
        load_model(tmp_path / "m", data)
