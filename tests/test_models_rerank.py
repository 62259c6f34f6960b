"""Re-rankers: the greedy cores on hand cases and against direct loops, and the wrappers as models."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairaudit.data import make_split
from fairaudit.models import (
    CalibratedReranker,
    ExposureReranker,
    MMRReranker,
    greedy_kl_rerank,
    greedy_mmr_rerank,
    normalise_relevance,
)
from fairaudit.models._greedy import _BAD_STRENGTH
from fairaudit.models._rerank import _BAD_TARGETS, _NO_BASE, _NO_ITEM_COLUMN
from fairaudit.models import ModelFolderError, create_model, load_model, model_kinds
from tests.conftest import make_tiny_dataset


RERANKERS = {
    "rerank_exposure": lambda base, s: ExposureReranker(base, strength=s),
    "rerank_calibrated": lambda base, s: CalibratedReranker(base, strength=s),
    "rerank_mmr": lambda base, s: MMRReranker(base, strength=s, embedding="genres"),
}


# ---- greedy cores ------------------------------------------------------------------------------
def _kl(p: np.ndarray, q: np.ndarray) -> float:
    keep = p > 0
    return float(np.sum(p[keep] * np.log(p[keep] / q[keep])))


def _steck_loop(rel, dist, target, strength, k, weights, alpha=0.01):
    """Direct, one-user-at-a-time transcription of Steck's greedy algorithm (reference)."""
    out = []
    for u in range(rel.shape[0]):
        chosen: list[int] = []
        for pos in range(k):
            best, best_gain = -1, -np.inf
            for i in range(rel.shape[1]):
                if i in chosen or not np.isfinite(rel[u, i]):
                    continue
                picks = chosen + [i]
                w = weights[: len(picks)]
                q = (w[:, None] * dist[u, picks]).sum(0) / w.sum()
                q = (1 - alpha) * q + alpha * target[u]
                gain = (1 - strength) * rel[u, i] - strength * _kl(target[u], q)
                if gain > best_gain:
                    best, best_gain = i, gain
            chosen.append(best)
        out.append(chosen)
    return np.array(out)


def _mmr_loop(rel, emb, strength, k):
    out = []
    for u in range(rel.shape[0]):
        chosen: list[int] = []
        for pos in range(k):
            best, best_gain = -1, -np.inf
            for i in range(rel.shape[1]):
                if i in chosen:
                    continue
                sim = max((float(emb[u, i] @ emb[u, j]) for j in chosen), default=0.0)
                gain = (1 - strength) * rel[u, i] - strength * sim
                if gain > best_gain:
                    best, best_gain = i, gain
            chosen.append(best)
        out.append(chosen)
    return np.array(out)


def test_greedy_kl_hand_case():
    # Target half/half; the two most relevant items are both group 0.
    # Step 2 with lambda=0.5: item 1 -> 0.5*0.9 - 0.5*KL(p||(.995,.005)) = -0.529; item 2 -> 0.5*0.1 - 0 = 0.05.
    rel = torch.tensor([[1.0, 0.9, 0.1]])
    dist = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    target = torch.tensor([0.5, 0.5])
    assert greedy_kl_rerank(rel, dist, target, strength=0.0, k=3).tolist() == [[0, 1, 2]]
    assert greedy_kl_rerank(rel, dist, target, strength=0.5, k=3).tolist() == [[0, 2, 1]]
    # With lambda=0.9 even the first pick is decided by calibration alone (all tie at KL 1.958):
    # relevance still breaks the tie toward item 0.
    assert greedy_kl_rerank(rel, dist, target, strength=0.9, k=1).tolist() == [[0]]


def test_greedy_kl_matches_direct_loop():
    rng = np.random.default_rng(3)
    users, cand, groups, k = 6, 9, 4, 5
    rel = rng.random((users, cand))
    rel[0, 3] = -np.inf  # padding
    dist = rng.dirichlet(np.ones(groups), size=(users, cand))
    dist[0, 3] = 0.0
    target = rng.dirichlet(np.ones(groups), size=users)
    weights = 1 / np.log2(np.arange(k) + 2)
    for strength in (0.0, 0.3, 0.8):
        got = greedy_kl_rerank(
            torch.tensor(rel), torch.tensor(dist), torch.tensor(target), strength=strength, k=k,
            weights=torch.tensor(weights),
        )  # fmt: skip
        np.testing.assert_array_equal(got.numpy(), _steck_loop(rel, dist, target, strength, k, weights))


def test_greedy_mmr_matches_direct_loop():
    rng = np.random.default_rng(4)
    rel = rng.random((5, 8))
    emb = rng.normal(size=(5, 8, 3))
    emb /= np.linalg.norm(emb, axis=2, keepdims=True)
    for strength in (0.0, 0.4, 1.0):
        got = greedy_mmr_rerank(torch.tensor(rel), torch.tensor(emb), strength=strength, k=6)
        np.testing.assert_array_equal(got.numpy(), _mmr_loop(rel, emb, strength, 6))


@settings(max_examples=40)
@given(st.lists(st.integers(0, 5), min_size=2, max_size=12), st.integers(1, 12))
def test_strength_zero_keeps_order_with_ties(scores, k):
    """Strength 0: the candidates come back in their given order, ties included."""
    rel = normalise_relevance(torch.tensor([sorted(scores, reverse=True)], dtype=torch.float64))
    n = rel.shape[1]
    dist = torch.eye(3, dtype=torch.float64)[torch.arange(n) % 3][None]
    expected = list(range(min(k, n)))
    assert greedy_kl_rerank(rel, dist, torch.tensor([0.2, 0.3, 0.5]), strength=0.0, k=k).tolist() == [expected]
    assert greedy_mmr_rerank(rel, dist, strength=0.0, k=k).tolist() == [expected]


def test_padding_is_never_chosen_and_strength_is_checked():
    rel = torch.tensor([[1.0, float("-inf"), 0.5]])
    dist = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]])
    assert greedy_kl_rerank(rel, dist, torch.tensor([0.0, 1.0]), strength=1.0, k=3).tolist() == [[2, 0, -1]]
    with pytest.raises(ValueError, match=re.escape(_BAD_STRENGTH.format(1.5))):
        greedy_kl_rerank(rel, dist, torch.tensor([0.5, 0.5]), strength=1.5, k=2)


def test_normalise_relevance_hand_case():
    out = normalise_relevance(torch.tensor([[4.0, 2.0, float("-inf")], [1.0, 1.0, 1.0]]))
    assert out.tolist() == [[1.0, 0.0, float("-inf")], [0.0, 0.0, 0.0]]


# ---- wrappers as models ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    data = make_tiny_dataset(n_users=40, n_items=30)
    split = make_split(data, "random", seed=0)
    base = create_model("itemknn").fit(data, split)
    return data, split, base


def test_kinds_are_registered():
    assert {"rerank_exposure", "rerank_calibrated", "rerank_mmr"} <= set(model_kinds())


@pytest.mark.parametrize("kind", sorted(RERANKERS))
def test_strength_zero_reproduces_base_exactly(tiny, kind):
    data, split, base = tiny
    model = RERANKERS[kind](base, 0.0).fit(data, split)
    users = data.users["user_id"].tolist()[::3]
    for k in (5, 30):
        pd.testing.assert_frame_equal(model.recommend(users, k=k), base.recommend(users, k=k))
    np.testing.assert_array_equal(model.score(users), base.score(users))


@pytest.mark.parametrize("kind", sorted(RERANKERS))
def test_reranked_lists_are_permutations_of_candidates(tiny, kind):
    data, split, base = tiny
    model = RERANKERS[kind](base, 0.7).fit(data, split)
    recs = model.recommend(k=5, batch_size=7)
    candidates = base.recommend(k=model.n_candidates)
    assert recs.groupby("user_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    assert not recs.duplicated(["user_id", "item_id"]).any()
    merged = recs.merge(candidates, on=["user_id", "item_id"], suffixes=("", "_base"))
    assert len(merged) == len(recs)
    np.testing.assert_array_equal(merged["score"], merged["score_base"])
    seen = split.train.assign(seen=True)[["user_id", "item_id", "seen"]]
    assert recs.merge(seen, on=["user_id", "item_id"]).empty


def test_exposure_reranker_moves_toward_target(tiny):
    data, split, base = tiny
    provider = data.items.set_index("item_id")["provider"]
    gaps = []
    for strength in (0.0, 0.5, 1.0):
        model = ExposureReranker(base, strength=strength, targets={"indie": 0.8, "studio": 0.2})
        recs = model.fit(data, split).recommend(k=10)
        w = 1 / np.log2(recs["rank"] + 1)
        gaps.append(abs(float((w * (recs["item_id"].map(provider) == "indie")).sum() / w.sum()) - 0.8))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < gaps[0] / 3, gaps


@pytest.mark.parametrize("kind", sorted(RERANKERS))
def test_save_load_round_trip(tiny, tmp_path, kind):
    data, split, base = tiny
    model = RERANKERS[kind](base, 0.6).fit(data, split)
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["kind"] == kind and config["base"]["kind"] == "itemknn"
    assert config["params"]["base"] == {"kind": "itemknn", "params": base.get_params()}
    loaded = load_model(tmp_path / "m", dataset=data)
    assert type(loaded) is type(model) and loaded.base.kind == "itemknn"
    pd.testing.assert_frame_equal(loaded.recommend(k=10), model.recommend(k=10))
    assert loaded.fingerprint() == model.fingerprint()
    assert loaded.get_params() == model.get_params()


def test_fingerprint_depends_on_strength_and_tampering_is_refused(tiny, tmp_path):
    data, split, base = tiny
    a = ExposureReranker(base, strength=0.2).fit(data, split)
    b = ExposureReranker(base, strength=0.3).fit(data, split)
    assert a.fingerprint() != b.fingerprint()
    a.save(tmp_path / "a")
    weights = tmp_path / "a" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 1
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelFolderError, match="checksum"):
        load_model(tmp_path / "a")


def test_unfitted_base_is_fitted_and_errors_name_the_fix(tiny):
    data, split, base = tiny
    wrapped = CalibratedReranker(create_model("popularity"), strength=0.0).fit(data, split)
    pd.testing.assert_frame_equal(wrapped.recommend(k=4), create_model("popularity").fit(data, split).recommend(k=4))
    with pytest.raises(ValueError, match=_NO_BASE.format("ExposureReranker")[:40]):
        ExposureReranker(None).fit(data, split)
    with pytest.raises(ValueError, match="no column 'studio'"):
        ExposureReranker(base, attribute="studio").fit(data, split)
    assert "item attribute columns" in _NO_ITEM_COLUMN
    with pytest.raises(ValueError, match="must name its groups"):
        ExposureReranker(base, targets={"indie": 0.9}).fit(data, split)
    assert "summing to 1" in _BAD_TARGETS


def test_custom_targets_are_used(tiny):
    data, split, base = tiny
    provider = data.items.set_index("item_id")["provider"]
    recs = ExposureReranker(base, strength=1.0, targets={"indie": 0.0, "studio": 1.0}).fit(data, split).recommend(k=5)
    assert (recs["item_id"].map(provider) == "studio").all()


def test_overrides_seen_items_and_cold_support_follow_the_base(tiny):
    data, split, base = tiny
    model = MMRReranker(base, strength=0.5, embedding="genres").fit(data, split)
    users = data.users["user_id"].tolist()[:6]
    # item-kNN reads no profile, so a counterfactual override changes nothing, through the wrapper too.
    pd.testing.assert_frame_equal(model.recommend(users, attribute_overrides={"gender": "M"}), model.recommend(users))
    with_seen = model.recommend(users, k=30, exclude_seen=False)
    assert with_seen.merge(split.train, on=["user_id", "item_id"]).shape[0] > 0
    assert model.supports_cold_items == base.supports_cold_items
