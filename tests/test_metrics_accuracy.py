"""Accuracy metrics: hand-computed cases, a direct double-loop reference, and properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairaudit.metrics import ACCURACY_METRICS, accuracy_metrics


def _frames(lists: dict[str, list[str]], test: dict[str, list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    recs = pd.DataFrame(
        [(u, r + 1, i) for u, items in lists.items() for r, i in enumerate(items)], columns=["user_id", "rank", "item_id"]
    )
    held = pd.DataFrame([(u, i) for u, items in test.items() for i in items], columns=["user_id", "item_id"])
    return recs, held


def _reference(lists: dict[str, list[str]], test: dict[str, list[str]], k: int) -> dict[str, dict[str, float]]:
    """Textbook definitions, one user and one rank at a time."""
    out = {}
    for user, relevant in test.items():
        relevant = set(relevant)
        ranked = lists.get(user, [])[:k]
        dcg, hits, first = 0.0, 0, None
        for position, item in enumerate(ranked, start=1):
            if item in relevant:
                dcg += 1.0 / math.log2(position + 1)
                hits += 1
                first = first or position
        idcg = sum(1.0 / math.log2(p + 1) for p in range(1, min(len(relevant), k) + 1))
        out[user] = {
            "ndcg": dcg / idcg,
            "recall": hits / len(relevant),
            "precision": hits / k,
            "hit_rate": float(hits > 0),
            "mrr": 1.0 / first if first else 0.0,
        }
    return out


def test_hand_computed_case():
    # u1: hits at ranks 2 and 3 of 3, |T|=2; u2: no hit; u3 has test items but no list; u4 has no test items.
    recs, test = _frames(
        {"u1": ["a", "b", "c"], "u2": ["a", "d", "e"], "u4": ["a", "b", "c"]},
        {"u1": ["b", "c"], "u2": ["z"], "u3": ["a"]},
    )
    got = accuracy_metrics(recs, test, k=3)
    assert got.index.tolist() == ["u1", "u2", "u3"]  # u4 excluded: no test item
    idcg = 1 + 1 / math.log2(3)
    assert got.loc["u1", "ndcg"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / idcg, abs=1e-12)
    assert got.loc["u1", ["recall", "precision", "hit_rate", "mrr"]].tolist() == pytest.approx([1.0, 2 / 3, 1.0, 0.5])
    assert got.loc["u2"].tolist() == [0.0] * 5
    assert got.loc["u3"].tolist() == [0.0] * 5


def test_rows_beyond_k_are_ignored_and_idcg_uses_min_of_t_and_k():
    recs, test = _frames({"u": ["x", "y", "a"]}, {"u": ["a", "b", "c", "d"]})
    got = accuracy_metrics(recs, test, k=2)
    assert got.loc["u"].tolist() == [0.0] * 5
    got = accuracy_metrics(recs, test, k=3)
    idcg3 = sum(1 / math.log2(r + 1) for r in (1, 2, 3))
    assert got.loc["u", "ndcg"] == pytest.approx(0.5 / idcg3)
    assert got.loc["u", "recall"] == pytest.approx(0.25)


@st.composite
def _instances(draw):
    items = [f"i{j}" for j in range(draw(st.integers(3, 12)))]
    users = [f"u{j}" for j in range(draw(st.integers(1, 8)))]
    k = draw(st.integers(1, 6))
    lists = {u: draw(st.permutations(items))[: draw(st.integers(0, k))] for u in users}
    test = {u: draw(st.lists(st.sampled_from(items), min_size=1, max_size=6, unique=True)) for u in users}
    return lists, test, k


@settings(max_examples=60)
@given(_instances())
def test_matches_double_loop_reference(instance):
    lists, test, k = instance
    recs, held = _frames(lists, test)
    got = accuracy_metrics(recs, held, k=k)
    expected = pd.DataFrame(_reference(lists, test, k)).T.loc[got.index, list(ACCURACY_METRICS)]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(dtype=float), atol=1e-9)
    assert ((got >= 0) & (got <= 1)).all().all()


@settings(max_examples=30)
@given(_instances(), st.randoms(use_true_random=False))
def test_invariant_to_row_and_user_order(instance, random):
    lists, test, k = instance
    recs, held = _frames(lists, test)
    base = accuracy_metrics(recs, held, k=k)
    shuffled = recs.sample(frac=1.0, random_state=random.randint(0, 10_000))
    pd.testing.assert_frame_equal(accuracy_metrics(shuffled, held.iloc[::-1], k=k), base)


@settings(max_examples=30)
@given(_instances())
def test_perfect_ranking_scores_one(instance):
    _, test, k = instance
    perfect = {u: items[:k] for u, items in test.items()}
    recs, held = _frames(perfect, test)
    got = accuracy_metrics(recs, held, k=k)
    assert np.allclose(got["ndcg"], 1.0)
    assert np.allclose(got["hit_rate"], 1.0) and np.allclose(got["mrr"], 1.0)


def test_missing_column_names_the_frame():
    with pytest.raises(ValueError, match="Frame 'recommendations' lacks column"):
        accuracy_metrics(pd.DataFrame({"user_id": ["u"]}), pd.DataFrame({"user_id": [], "item_id": []}))
