"""Exposure metrics: golden values from METRICS.md, direct loops, properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairaudit.metrics import (
    avg_popularity,
    catalogue_coverage,
    exposure_shares,
    gini,
    item_exposure,
    item_groups,
    long_tail_share,
    position_weights,
)

# RecBole tests/metrics/test_topk_metrics.py toy lists, n = 8 items.
RECBOLE_LISTS = [[5, 7, 3], [4, 5, 2], [2, 3, 5], [1, 4, 6], [5, 3, 7]]


def _recs(lists: list[list]) -> pd.DataFrame:
    return pd.DataFrame(
        [(f"u{u}", r + 1, str(i)) for u, items in enumerate(lists) for r, i in enumerate(items)],
        columns=["user_id", "rank", "item_id"],
    )


def _gini_loop(x: list[float]) -> float:
    """Mean absolute difference form: G = sum_i sum_j |x_i - x_j| / (2 n^2 mean) * n / (n - 1)."""
    n, mean = len(x), sum(x) / len(x)
    mad = sum(abs(a - b) for a in x for b in x)
    return mad / (2 * n * n * mean) * n / (n - 1)


def test_recbole_toy_gini_and_coverage():
    recs = _recs(RECBOLE_LISTS)
    counts = item_exposure(recs, pd.Index([str(i) for i in range(1, 9)]), browsing="uniform")
    assert gini(counts.to_numpy()) == pytest.approx(0.3905, abs=1e-4)
    # RecBole's GiniIndex divides by n instead of n - 1: 41/120.
    assert gini(counts.to_numpy()) * 7 / 8 == pytest.approx(41 / 120, abs=1e-12)
    assert catalogue_coverage(recs, 8) == pytest.approx(0.875)


def test_gini_extremes():
    assert gini(np.array([3.0, 3.0, 3.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 5.0])) == pytest.approx(1.0)
    assert math.isnan(gini(np.array([0.0, 0.0])))


@settings(max_examples=80)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=30).filter(lambda x: sum(x) > 1e-6))
def test_gini_matches_pairwise_definition_and_bounds(values):
    got = gini(np.array(values))
    assert got == pytest.approx(_gini_loop(values), abs=1e-9)
    assert -1e-12 <= got <= 1 + 1e-12
    assert gini(np.array(values[::-1])) == pytest.approx(got, abs=1e-12)


def test_position_weights_and_errors():
    assert position_weights(np.array([1, 2, 3, 7]), browsing="dcg").tolist() == pytest.approx(
        [1.0, 1 / math.log2(3), 0.5, 1 / 3]
    )
    assert position_weights(np.array([1, 3]), browsing="rbp", gamma=0.8).tolist() == pytest.approx([1.0, 0.64])
    with pytest.raises(ValueError, match="Unknown browsing model 'cascade'"):
        position_weights(np.array([1]), browsing="cascade")
    with pytest.raises(ValueError, match="RBP patience gamma must be in"):
        position_weights(np.array([1]), browsing="rbp", gamma=1.5)


def test_genre_groups_split_weight_equally():
    items = pd.DataFrame({"item_id": ["x", "y", "z"], "genres": ["A|B|C", "A", None]})
    groups = item_groups(items, "genre")
    assert groups.columns.tolist() == ["A", "B", "C", "unknown"]
    assert groups.loc["x"].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0])
    assert groups.sum(axis=1).tolist() == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="Items table has no column 'studio'"):
        item_groups(items, "studio")


def _shares_loop(recs, test, membership, user_groups, weight):
    """Direct loops over rows: exposure and relevance mass per (user group, item group)."""
    out = {}
    for ug in sorted(set(user_groups.values())):
        shown = {g: 0.0 for g in membership.columns}
        rel = {g: 0.0 for g in membership.columns}
        for row in recs.itertuples():
            if user_groups.get(row.user_id) == ug:
                for g in membership.columns:
                    shown[g] += weight(row.rank) * membership.loc[row.item_id, g]
        for row in test.itertuples():
            if user_groups.get(row.user_id) == ug:
                for g in membership.columns:
                    rel[g] += membership.loc[row.item_id, g]
        for g in membership.columns:
            out[(ug, g)] = (shown[g] / sum(shown.values()), rel[g] / sum(rel.values()))
    return out


@pytest.mark.parametrize("browsing", ["dcg", "rbp", "uniform"])
def test_exposure_shares_match_loops(browsing):
    rng = np.random.default_rng(1)
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(12)],
            "genres": ["|".join(rng.choice(["A", "B", "C"], size=rng.integers(1, 3), replace=False)) for _ in range(12)],
        }
    )
    lists = [list(rng.choice(items["item_id"], size=4, replace=False)) for _ in range(9)]
    recs = _recs(lists)
    test = pd.DataFrame({"user_id": [f"u{u}" for u in range(9) for _ in range(2)],
                         "item_id": rng.choice(items["item_id"], size=18)})  # fmt: skip
    user_groups = pd.Series({f"u{u}": "F" if u % 3 else "M" for u in range(9)})
    membership = item_groups(items, "genre")
    got = exposure_shares(recs, test, membership, user_groups=user_groups, browsing=browsing, gamma=0.7)
    expected = _shares_loop(recs, test, membership, user_groups.to_dict(),
                            lambda r: position_weights(np.array([r]), browsing=browsing, gamma=0.7)[0])  # fmt: skip
    for row in got.itertuples():
        exposure, relevance = expected[(row.user_group, row.item_group)]
        assert row.exposure_share == pytest.approx(exposure, abs=1e-9)
        assert row.relevance_share == pytest.approx(relevance, abs=1e-9)
    assert got.groupby("user_group")["exposure_share"].sum().tolist() == pytest.approx([1.0, 1.0])
    catalogue = membership.sum() / 12
    assert got.drop_duplicates("item_group").set_index("item_group")["catalogue_share"].to_dict() == pytest.approx(
        catalogue.to_dict()
    )


def test_popularity_and_long_tail_per_user():
    recs = _recs([["a", "b"], ["c", "c2"]])
    train = pd.DataFrame({"user_id": ["x"] * 6, "item_id": ["a", "a", "a", "b", "c", "c"]})
    catalogue = pd.Index(["a", "b", "c", "c2"])
    assert avg_popularity(recs, train, catalogue).tolist() == [2.0, 1.0]
    tiers = pd.Series({"a": "head", "b": "mid", "c": "tail", "c2": "tail"})
    assert long_tail_share(recs, tiers).tolist() == [0.0, 1.0]


def test_unknown_item_is_refused():
    with pytest.raises(ValueError, match="not in the catalogue"):
        item_exposure(_recs([["zz"]]), pd.Index(["a"]))
