"""Diversity, novelty and calibration: Microsoft Recommenders golden values, loops, properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairaudit.data import genre_matrix
from fairaudit.metrics import (
    catalogue_coverage,
    genre_coverage,
    intra_list_diversity,
    miscalibration,
    novelty,
)

# Microsoft Recommenders tests/unit/recommenders/evaluation/conftest.py::diversity_data
MS_TRAIN = pd.DataFrame(
    [(1, 1), (1, 2), (1, 4), (2, 3), (2, 4), (3, 3), (3, 4), (3, 5)], columns=["user_id", "item_id"]
).astype(str)
MS_RECO = pd.DataFrame(
    [(1, 1, 3), (1, 2, 5), (2, 1, 2), (2, 2, 5), (3, 1, 1), (3, 2, 2)], columns=["user_id", "rank", "item_id"]
).astype({"user_id": str, "item_id": str})
MS_CATALOGUE = pd.Index(["1", "2", "3", "4", "5"])


def test_microsoft_recommenders_fixture():
    # Item x train-user incidence: cosine = |U_i ∩ U_j| / sqrt(|U_i||U_j|), their co-occurrence similarity.
    incidence = pd.crosstab(MS_TRAIN["item_id"], MS_TRAIN["user_id"]).astype(float)
    diversity = intra_list_diversity(MS_RECO, incidence)
    assert diversity.tolist() == pytest.approx([0.29289, 1.0, 0.0], abs=1e-5)
    assert diversity.mean() == pytest.approx(0.43096, abs=1e-5)
    assert novelty(MS_RECO, MS_TRAIN, MS_CATALOGUE).mean() == pytest.approx(2.83333, abs=1e-5)
    item_novelty = -np.log2(MS_TRAIN["item_id"].value_counts().reindex(MS_CATALOGUE) / len(MS_TRAIN))
    assert item_novelty.tolist() == pytest.approx([3, 3, 2, 1.41504, 3], abs=1e-5)
    assert catalogue_coverage(MS_RECO, len(MS_CATALOGUE)) == pytest.approx(0.8)


def _rescaled(v: np.ndarray) -> np.ndarray:
    """``v / max|v|``: same cosine, but squares of tiny entries no longer underflow."""
    top = np.abs(v).max()
    return v / top if top > 0 else v


def _ild_loop(lists: dict[str, list[str]], vectors: pd.DataFrame) -> dict[str, float]:
    out = {}
    for user, items in lists.items():
        sims = []
        for a, b in itertools.combinations(items, 2):
            va, vb = (_rescaled(vectors.loc[i].to_numpy()) for i in (a, b))
            norm = np.linalg.norm(va) * np.linalg.norm(vb)
            sims.append(float(va @ vb / norm) if norm > 0 else 0.0)
        out[user] = 1 - sum(sims) / len(sims) if sims else math.nan
    return out


@st.composite
def _lists_and_vectors(draw):
    n_items = draw(st.integers(2, 10))
    dims = draw(st.integers(1, 5))
    flat = draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=n_items * dims, max_size=n_items * dims))
    vectors = pd.DataFrame(np.array(flat).reshape(n_items, dims), index=[f"i{j}" for j in range(n_items)])
    items = list(vectors.index)
    lists = {f"u{u}": draw(st.permutations(items))[: draw(st.integers(1, n_items))] for u in range(draw(st.integers(1, 5)))}
    return lists, vectors


@settings(max_examples=60)
@given(_lists_and_vectors())
def test_ild_matches_pairwise_loop(case):
    lists, vectors = case
    recs = pd.DataFrame([(u, r + 1, i) for u, items in lists.items() for r, i in enumerate(items)],
                        columns=["user_id", "rank", "item_id"])  # fmt: skip
    got = intra_list_diversity(recs, vectors)
    expected = _ild_loop(lists, vectors)
    np.testing.assert_allclose(got.to_numpy(), [expected[u] for u in got.index], atol=1e-9)
    assert ((got.dropna() >= -1e-9) & (got.dropna() <= 2 + 1e-9)).all()


def test_genre_ild_and_coverage_hand_case():
    items = pd.DataFrame({"item_id": ["x", "y", "z"], "genres": ["A|B", "B", "C"]})
    genres = genre_matrix(items)
    recs = pd.DataFrame({"user_id": ["u", "u", "v"], "rank": [1, 2, 1], "item_id": ["x", "y", "z"]})
    # cos(x, y) = 1/sqrt(2); v has one item -> NaN
    ild = intra_list_diversity(recs, genres)
    assert ild["u"] == pytest.approx(1 - 1 / math.sqrt(2)) and math.isnan(ild["v"])
    assert genre_coverage(recs, genres).tolist() == pytest.approx([2 / 3, 1 / 3])


def _kl_loop(history: list[str], top: list[str], weights: pd.DataFrame, alpha: float) -> float:
    genres = list(weights.columns)
    p = {g: sum(weights.loc[i, g] for i in history) / len(history) for g in genres}
    q = {g: sum(weights.loc[i, g] for i in top) / len(top) for g in genres}
    return sum(p[g] * math.log(p[g] / ((1 - alpha) * q[g] + alpha * p[g])) for g in genres if p[g] > 0)


def test_miscalibration_matches_loop_and_bounds():
    rng = np.random.default_rng(3)
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(15)],
                          "genres": ["|".join(rng.choice(list("ABCDE"), rng.integers(1, 4), replace=False)) for _ in range(15)]})  # fmt: skip
    weights = genre_matrix(items, normalise=True)
    history = {f"u{u}": list(rng.choice(items["item_id"], 6, replace=False)) for u in range(6)}
    top = {f"u{u}": list(rng.choice(items["item_id"], 4, replace=False)) for u in range(6)}
    train = pd.DataFrame([(u, i) for u, its in history.items() for i in its], columns=["user_id", "item_id"])
    recs = pd.DataFrame([(u, r + 1, i) for u, its in top.items() for r, i in enumerate(its)],
                        columns=["user_id", "rank", "item_id"])  # fmt: skip
    got = miscalibration(recs, train, weights)
    for user in got.index:
        assert got[user] == pytest.approx(_kl_loop(history[user], top[user], weights, 0.01), abs=1e-9)
    assert (got >= 0).all()
    # Recommending exactly the history is perfectly calibrated.
    same = pd.DataFrame([(u, r + 1, i) for u, its in history.items() for r, i in enumerate(its)],
                        columns=["user_id", "rank", "item_id"])  # fmt: skip
    assert miscalibration(same, train, weights).to_numpy() == pytest.approx(0.0, abs=1e-12)
    # A user without history has no defined miscalibration.
    assert math.isnan(miscalibration(recs, train[train["user_id"] != "u0"], weights)["u0"])


def test_novelty_unseen_item_is_finite():
    recs = pd.DataFrame({"user_id": ["u"], "rank": [1], "item_id": ["new"]})
    train = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["old", "old"]})
    assert novelty(recs, train, pd.Index(["old", "new"])).tolist() == [1.0]
