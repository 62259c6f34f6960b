"""Split determinism and properties (hand cases + hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairaudit.data import Dataset, item_cold_start, make_split, random_holdout, temporal_leave_last
from fairaudit.data import _split as S


def _dataset(counts: list[int], seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{j}", int(t)) for u, n in enumerate(counts) for j, t in zip(rng.permutation(30)[:n], rng.integers(0, 5, n))]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).astype({"timestamp": "int64"})
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(len(counts))]})
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(30)], "title": "t"})
    return Dataset(inter, users, items)


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["user_id"], frame["item_id"]))


counts_strategy = st.lists(st.integers(1, 30), min_size=1, max_size=12)


@settings(max_examples=40)
@given(counts=counts_strategy, fraction=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_random_holdout_properties(counts, fraction, seed):
    ds = _dataset(counts, seed)
    split = random_holdout(ds, fraction, seed=seed)
    assert _pairs(split.train) | _pairs(split.test) == _pairs(ds.interactions)
    assert not _pairs(split.train) & _pairs(split.test)
    n_test = split.test["user_id"].value_counts().reindex(ds.users["user_id"], fill_value=0).to_numpy()
    n = np.asarray(counts)
    expected = np.where(n >= 2, np.clip(np.floor(fraction * n + 0.5), 1, n - 1), 0)
    np.testing.assert_array_equal(n_test, expected)


@settings(max_examples=40)
@given(counts=counts_strategy, n=st.integers(1, 4))
def test_temporal_leave_last_properties(counts, n):
    ds = _dataset(counts)
    split = temporal_leave_last(ds, n)
    assert len(split.train) + len(split.test) == len(ds.interactions)
    key = ["timestamp", "item_id"]
    for user, test in split.test.groupby("user_id"):  # test rows come after every train row of the user
        train = split.train[split.train["user_id"] == user]
        assert len(train) >= 1 and len(test) == min(n, len(train) + len(test) - 1)
        assert train[key].apply(tuple, axis=1).max() < test[key].apply(tuple, axis=1).min()


def test_temporal_tie_break_by_item_id():
    inter = pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["b", "c", "a"], "timestamp": [5, 5, 9]})
    ds = Dataset(inter, pd.DataFrame({"user_id": ["u"]}), pd.DataFrame({"item_id": list("abc"), "title": "t"}))
    assert temporal_leave_last(ds, 2).test["item_id"].tolist() == ["c", "a"]


def test_random_holdout_deterministic_and_row_order_free(tiny_dataset):
    a = random_holdout(tiny_dataset, seed=7)
    b = random_holdout(tiny_dataset, seed=7)
    shuffled = Dataset(tiny_dataset.interactions.sample(frac=1, random_state=1), tiny_dataset.users, tiny_dataset.items)
    c = random_holdout(shuffled, seed=7)
    assert a.describe() == b.describe()
    assert _pairs(a.test) == _pairs(c.test)
    assert _pairs(random_holdout(tiny_dataset, seed=8).test) != _pairs(a.test)


def test_item_cold_start(tiny_dataset):
    split = item_cold_start(tiny_dataset, 0.2, seed=3)
    n_items = tiny_dataset.interactions["item_id"].nunique()
    assert len(split.cold_items) == round(0.2 * n_items)
    assert set(split.train["item_id"]).isdisjoint(split.cold_items)
    assert set(split.test["item_id"]) <= set(split.cold_items)
    assert set(split.test["user_id"]) <= set(split.train["user_id"])  # warm users only
    cold_rows = tiny_dataset.interactions["item_id"].isin(split.cold_items)
    assert len(split.train) == int((~cold_rows).sum())


@pytest.mark.parametrize(
    "method, params", [("random", {"test_fraction": 0.3}), ("temporal", {"n": 2}), ("cold_items", {"cold_fraction": 0.2})]
)
def test_make_split_reproduces_from_description(tiny_dataset, method, params):
    split = make_split(tiny_dataset, method, seed=5, **params)
    again = make_split(tiny_dataset, split.method, seed=split.seed, **split.params)
    assert split.describe() == again.describe()
    assert split.cold_items == again.cold_items
    assert split.params == params


def test_split_errors(tiny_dataset):
    with pytest.raises(ValueError, match="unknown split method"):
        make_split(tiny_dataset, "bogus")
    with pytest.raises(ValueError) as info:
        random_holdout(tiny_dataset, 1.5)
    assert str(info.value) == S.BAD_FRACTION.format("test_fraction", 1.5)
    no_time = Dataset(tiny_dataset.interactions.drop(columns="timestamp"), tiny_dataset.users, tiny_dataset.items)
    with pytest.raises(ValueError) as info:
        temporal_leave_last(no_time)
    assert str(info.value) == S.NO_TIMESTAMP
