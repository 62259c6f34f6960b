"""Counterfactual attribute probes: FaiRLLM list metrics and probe_attribute on blind and biased models."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairaudit.data import UNKNOWN, Dataset, Split
from fairaudit.explain import (
    PROBE_COLUMNS,
    exposure_metric,
    group_share,
    jaccard_at_k,
    prag_at_k,
    probe_attribute,
    probe_users,
    serp_at_k,
)
from fairaudit.explain._probe import _MISSING_ATTRIBUTE, _TOO_FEW_VALUES
from fairaudit.models import Recommender, create_model
from tests.conftest import make_tiny_dataset


# ---- FaiRLLM reference (process.ipynb), transcribed loop for loop -------------------------------
def ref_iou(x, y):
    return len(set(x) & set(y)) / len(set(x) | set(y))


def ref_serp(x, y):
    temp = 0
    if len(y) == 0:
        return 0
    for i, item_x in enumerate(x):
        for item_y in y:
            if item_x == item_y:
                temp = temp + len(x) - i + 1
    return temp * 0.5 / ((len(y) + 1) * len(y))


def ref_prag(x, y):
    temp = total = 0
    if len(y) == 0 or len(x) == 0:
        return 0
    if len(x) == 1:
        return 1 if x == y else 0
    for i, x1 in enumerate(x):
        for j, x2 in enumerate(x):
            if i >= j:
                continue
            id1 = id2 = -1
            for k, item_y in enumerate(y):
                if item_y == x1:
                    id1 = k
                if item_y == x2:
                    id2 = k
            total += 1
            if id1 == -1:
                continue
            if id2 == -1:
                temp += 1
            if id1 < id2:
                temp += 1
    return temp / total


def _pad(lists, k):
    return np.array([list(l) + [-1] * (k - len(l)) for l in lists])


# ---- golden values (METRICS.md, K = 20) -----------------------------------------------------------
Y20 = np.arange(20)[None, :]
GOLDEN = [
    ("identical", Y20, 1.0, 0.2738, 1.0),
    ("reversed", Y20[:, ::-1], 1.0, 0.2738, 0.0),
    ("top10_plus_10_new", np.concatenate([Y20[:, :10], np.arange(100, 110)[None, :]], axis=1), 0.3333, 0.1964, 0.7632),
]


@pytest.mark.parametrize(("case", "x", "jaccard", "serp", "prag"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_values_match_fairllm(case, x, jaccard, serp, prag):
    assert jaccard_at_k(x, Y20)[0] == pytest.approx(jaccard, abs=1e-4)
    assert serp_at_k(x, Y20)[0] == pytest.approx(serp, abs=1e-4)
    assert prag_at_k(x, Y20)[0] == pytest.approx(prag, abs=1e-4)


def test_identical_serp_is_closed_form_and_langfair_prag_differs_by_denominator():
    for k in (1, 5, 10, 20):
        y = np.arange(k)[None, :]
        assert serp_at_k(y, y)[0] == pytest.approx((k + 3) / (4 * (k + 1)))
    # LangFair divides the same pair count by K(K+1): 190/420 = 0.4524 at K=20.
    assert prag_at_k(Y20, Y20)[0] * (20 * 19 / 2) / (20 * 21) == pytest.approx(0.4524, abs=1e-4)


@st.composite
def list_pairs(draw):
    k = draw(st.integers(1, 8))
    universe = st.integers(0, 12)
    x = draw(st.lists(universe, min_size=0, max_size=k, unique=True))
    y = draw(st.lists(universe, min_size=0, max_size=k, unique=True))
    return k, x, y


@settings(max_examples=150)
@given(st.lists(list_pairs(), min_size=1, max_size=6))
def test_vectorised_metrics_agree_with_the_fairllm_loops(cases):
    k = max(c[0] for c in cases)
    xs, ys = _pad([c[1] for c in cases], k), _pad([c[2] for c in cases], k)
    expected_serp = [ref_serp(x, y) for _, x, y in cases]
    expected_prag = [ref_prag(x, y) for _, x, y in cases]
    expected_iou = [ref_iou(x, y) if (x or y) else 1.0 for _, x, y in cases]
    np.testing.assert_allclose(serp_at_k(xs, ys), expected_serp, atol=1e-12)
    np.testing.assert_allclose(prag_at_k(xs, ys), expected_prag, atol=1e-12)
    np.testing.assert_allclose(jaccard_at_k(xs, ys), expected_iou, atol=1e-12)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        jaccard_at_k(np.zeros((2, 3), int), np.zeros((2, 4), int))


def test_group_share_counts_filled_slots_only():
    shares = group_share(np.array([[0, 1, 2, 3], [2, -1, -1, -1], [-1, -1, -1, -1]]), np.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(shares, [[0.5, 0.5], [0.0, 1.0], [0.0, 0.0]])


# ---- models -------------------------------------------------------------------------------------
class PlantedAttributeModel(Recommender):
    """Popularity plus a large bonus on the first third of the catalogue for one attribute value.

    Reads the user's attribute (or its override), like a profile-reading model would.
    """

    kind = "planted_test"

    def __init__(self, attribute: str = "gender", favoured: str = "F", strength: float = 100.0, seed: int = 0):
        self.attribute, self.favoured, self.strength, self.seed = attribute, favoured, strength, seed

    def _fit(self, dataset, split, train_users, train_items, progress):
        users = dataset.users.set_index("user_id")[self.attribute].astype(str)
        self.values_ = users.reindex(self.user_ids_).to_numpy(dtype=object)
        self.counts_ = torch.as_tensor(np.bincount(train_items, minlength=len(self.item_ids_)), dtype=torch.float32)

    def _score_indices(self, user_idx, item_idx, attribute_overrides: Mapping[str, str] | None = None):
        values = self.values_[user_idx]
        if attribute_overrides and self.attribute in attribute_overrides:
            values = np.full(len(user_idx), attribute_overrides[self.attribute], dtype=object)
        n = len(self.item_ids_)
        bonus = torch.as_tensor((values == self.favoured).astype(np.float32))[:, None] * (torch.arange(n) < n // 3)
        scores = self.counts_[None, :] + self.strength * bonus
        return scores if item_idx is None else scores[:, torch.as_tensor(item_idx)]


def _with_unknowns(dataset: Dataset, n_unknown: int = 4) -> Dataset:
    users = dataset.users.copy()
    users.loc[users.index[:n_unknown], "gender"] = UNKNOWN
    return Dataset(dataset.interactions, users, dataset.items, name="tiny-unknown")


@pytest.fixture(scope="module")
def data() -> Dataset:
    return _with_unknowns(make_tiny_dataset(n_users=60, n_items=30))


@pytest.fixture(scope="module")
def split(data) -> Split:
    inter = data.interactions
    return Split(inter, inter.iloc[:0], "all", 0)


K = 5
IDENTICAL_SERP = (K + 3) / (4 * (K + 1))


@pytest.mark.parametrize("kind", ["popularity", "itemknn", "mf"])
def test_attribute_blind_models_show_exactly_zero_change(kind, data, split):
    model = create_model(kind).fit(data, split)
    table = probe_attribute(model, data, "gender", k=K, bootstrap_rounds=50)
    assert list(table.columns) == list(PROBE_COLUMNS)
    for metric, value in (("jaccard", 1.0), ("prag", 1.0), ("serp", IDENTICAL_SERP)):
        rows = table[table["metric"] == metric]
        assert len(rows) > 0  # SERP* is a float ratio: equal to its identical-list value up to rounding
        np.testing.assert_allclose(rows[["estimate", "ci_low", "ci_high"]].to_numpy(), value, rtol=0, atol=1e-12)
    spread = table[table["metric"].str.endswith(("_snsr", "_snsv"))]
    assert len(spread) == 6 and (spread["estimate"] == 0).all()
    exposure = table[table["metric"].str.startswith("exposure_change:")]
    assert set(exposure["metric"]) == {exposure_metric("provider", "indie"), exposure_metric("provider", "studio")}
    assert (exposure["estimate"] == 0).all()


def test_planted_attribute_dependence_is_detected(data, split):
    model = PlantedAttributeModel().fit(data, split)
    table = probe_attribute(model, data, "gender", k=K, bootstrap_rounds=200).set_index(
        ["original_value", "counterfactual_value", "metric"]
    )
    # Men made women (and vice versa) get the favoured third instead of the most popular items.
    for original, value in (("M", "F"), ("F", "M"), ("all", "F"), ("all", "M")):
        row = table.loc[(original, value, "jaccard")]
        assert row["ci_high"] < 0.6
    indie = exposure_metric("provider", "indie")  # the first third of the catalogue is "indie"
    assert table.loc[("M", "F", indie), "estimate"] > 0.3
    assert table.loc[("M", "F", indie), "ci_low"] > 0
    assert table.loc[("F", "M", indie), "ci_high"] < 0
    studio = exposure_metric("provider", "studio")
    np.testing.assert_allclose(table.loc[("M", "F", indie), "estimate"], -table.loc[("M", "F", studio), "estimate"])


def test_spread_across_values_flags_the_one_value_that_is_treated_differently(data, split):
    model = PlantedAttributeModel(attribute="age_band", favoured="18-24").fit(data, split)
    table = probe_attribute(model, data, "age_band", k=K, bootstrap_rounds=100).set_index(
        ["original_value", "counterfactual_value", "metric"]
    )
    # Swapping 25-34 <-> 35-44 changes nothing; swapping to/from 18-24 changes the list.
    assert table.loc[("25-34", "35-44", "jaccard"), "estimate"] == 1.0
    assert table.loc[("25-34", "18-24", "jaccard"), "estimate"] < 0.5
    pooled = table.xs("all", level="original_value").xs("jaccard", level="metric")["estimate"]
    expected_range = pooled.max() - pooled.min()
    assert table.loc[("all", "all", "jaccard_snsr"), "estimate"] == pytest.approx(expected_range)
    assert table.loc[("all", "all", "jaccard_snsv"), "estimate"] == pytest.approx(np.std(pooled.to_numpy()))
    assert table.loc[("all", "all", "jaccard_snsr"), "ci_low"] > 0.1


def test_unknown_users_are_reported_separately_and_left_out_of_pooled_rows(data, split):
    model = PlantedAttributeModel().fit(data, split)
    per_user = probe_users(model, data, "gender", k=K)
    unknown_ids = set(data.users.loc[data.users["gender"] == UNKNOWN, "user_id"])
    unknown_rows = per_user[per_user["original_value"] == UNKNOWN]
    assert set(unknown_rows["user_id"]) == unknown_ids
    assert set(unknown_rows["counterfactual_value"]) == {"F", "M"}  # "unknown" is never a counterfactual value
    table = probe_attribute(model, data, "gender", k=K, bootstrap_rounds=0)
    pooled = table[(table["original_value"] == "all") & (table["metric"] == "jaccard")]
    pooled = pooled.set_index("counterfactual_value")
    n_known_m = int((data.users["gender"] == "M").sum())
    assert pooled.loc["F", "n_users"] == n_known_m  # only known men are pooled for value F
    assert (table.loc[table["original_value"] == UNKNOWN, "n_users"] == len(unknown_ids)).all()


def test_user_sample_is_seeded_and_bootstrap_is_reproducible(data, split):
    model = PlantedAttributeModel().fit(data, split)
    a = probe_attribute(model, data, "gender", users=20, k=K, seed=3, bootstrap_rounds=50)
    b = probe_attribute(model, data, "gender", users=20, k=K, seed=3, bootstrap_rounds=50)
    pd.testing.assert_frame_equal(a, b)
    assert probe_users(model, data, "gender", users=20, k=K, seed=3)["user_id"].nunique() == 20
    assert ((a["ci_low"] <= a["estimate"] + 1e-12) & (a["estimate"] <= a["ci_high"] + 1e-12)).all()


def test_bad_attribute_and_single_value_are_refused(data, split):
    model = create_model("popularity").fit(data, split)
    with pytest.raises(ValueError, match=_MISSING_ATTRIBUTE.format("religion", ".*")[:40]):
        probe_attribute(model, data, "religion", k=K)
    with pytest.raises(ValueError, match=_TOO_FEW_VALUES.format("gender", ".*")[:30]):
        probe_attribute(model, data, "gender", values=["F"], k=K)
