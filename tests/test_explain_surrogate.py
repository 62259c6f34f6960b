"""Global gap drivers: user features, the SHAP surrogate and the gap decomposition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairaudit.data import Dataset
from fairaudit.explain import explain_gaps, user_features
from fairaudit.explain._surrogate import _NO_OVERLAP, DECOMPOSITION_COLUMNS, DRIVER_COLUMNS


def test_user_features_by_hand():
    users = pd.DataFrame({"user_id": ["a", "b", "c"], "gender": ["F", "M", "unknown"]})
    items = pd.DataFrame({"item_id": ["x", "y", "z"], "title": list("XYZ"), "genres": ["A", "A|B", "C"]})
    inter = pd.DataFrame(
        {"user_id": ["a", "a", "b"], "item_id": ["x", "z", "x"], "timestamp": np.array([0, 86_400, 3 * 86_400])}
    )
    feats = user_features(Dataset(inter, users, items))
    assert list(feats.index) == ["a", "b", "c"]
    assert list(feats.columns) == [
        "gender=F", "gender=M", "gender=unknown", "n_interactions", "mean_popularity", "genre_entropy",
        "account_age_days",
    ]
    np.testing.assert_allclose(feats["n_interactions"], [2, 1, 0])
    # x is used by 2 of 3 users, z by 1 of 3.
    np.testing.assert_allclose(feats["mean_popularity"], [(2 / 3 + 1 / 3) / 2, 2 / 3, 0.0])
    np.testing.assert_allclose(feats["genre_entropy"], [1.0, 0.0, 0.0])  # a: A and C half each
    np.testing.assert_allclose(feats["account_age_days"], [3.0, 0.0, 0.0])
    np.testing.assert_allclose(feats["gender=unknown"], [0, 0, 1])


def _planted(n: int, *, via: str, seed: int = 0) -> tuple[pd.Series, pd.DataFrame]:
    """Women are half as active; the metric depends on activity (``via="activity"``) or on gender."""
    rng = np.random.default_rng(seed)
    female = rng.random(n) < 0.5
    activity = rng.gamma(2.0, 20.0, n) * np.where(female, 0.5, 1.0)
    feats = pd.DataFrame(
        {
            "gender=F": female.astype(float),
            "gender=M": (~female).astype(float),
            "age_band=young": (rng.random(n) < 0.5).astype(float),
            "n_interactions": activity,
            "mean_popularity": rng.random(n),
            "genre_entropy": rng.random(n) * 3,
        },
        index=pd.Index([f"u{i}" for i in range(n)], name="user_id"),
    )
    feats["age_band=old"] = 1.0 - feats["age_band=young"]
    signal = np.log1p(activity) / 5 if via == "activity" else np.where(female, 0.2, 0.4)
    return pd.Series(signal + rng.normal(0, 0.03, n), index=feats.index, name="ndcg"), feats


@pytest.fixture(scope="module")
def activity_driven():
    metric, feats = _planted(1500, via="activity")
    return metric, feats, explain_gaps(metric, feats, cv_folds=3)


def test_gap_carried_by_activity_is_attributed_to_activity_not_gender(activity_driven):
    metric, feats, result = activity_driven
    assert list(result.drivers.columns) == list(DRIVER_COLUMNS)
    assert list(result.decomposition.columns) == list(DECOMPOSITION_COLUMNS)
    assert result.drivers["feature"].iloc[0] == "n_interactions"
    assert result.r2 > 0.8
    women = result.decomposition.query("attribute == 'gender' and group == 'F'").set_index("feature")
    gap = women["predicted_gap"].iloc[0]
    assert gap < -0.05  # women's metric is clearly lower...
    assert women.loc["n_interactions", "contribution"] / gap > 0.9  # ...because they are less active
    assert abs(women.loc["gender", "contribution"]) < 0.05 * abs(gap)
    assert women.loc["gender", "role"] == "own attribute"
    assert women.loc["age_band", "role"] == "other attribute"
    assert women.loc["n_interactions", "role"] == "behaviour"


def test_contributions_add_up_to_the_predicted_gap_which_tracks_the_observed_gap(activity_driven):
    metric, feats, result = activity_driven
    by_group = result.decomposition.groupby(["attribute", "group"])
    np.testing.assert_allclose(by_group["contribution"].sum(), by_group["predicted_gap"].first(), atol=1e-12)
    # SHAP additivity at the user level, aggregated: predicted gap = gap of (base + sum of SHAP values).
    prediction = result.base_value + result.shap_values.sum(axis=1)
    female = feats["gender=F"] > 0
    direct = prediction[female].mean() - prediction[~female].mean()
    women = result.decomposition.query("attribute == 'gender' and group == 'F'")
    assert women["predicted_gap"].iloc[0] == pytest.approx(direct, abs=1e-9)
    observed = metric[female].mean() - metric[~female].mean()
    assert women["observed_gap"].iloc[0] == pytest.approx(observed)
    assert women["predicted_gap"].iloc[0] == pytest.approx(observed, abs=0.01)


def test_direct_attribute_effect_is_carried_by_the_attribute():
    metric, feats = _planted(1000, via="gender", seed=1)
    result = explain_gaps(metric, feats, cv_folds=3, attributes=["gender"])
    assert set(result.decomposition["attribute"]) == {"gender"}
    women = result.decomposition.query("group == 'F'").set_index("feature")
    gap = women["predicted_gap"].iloc[0]
    assert gap == pytest.approx(-0.2, abs=0.02)
    assert women.loc["gender", "contribution"] / gap > 0.9


def test_noise_metric_gets_a_poor_r2_reported():
    metric, feats = _planted(600, via="activity", seed=2)
    noise = pd.Series(np.random.default_rng(5).random(600), index=feats.index, name="ndcg")
    result = explain_gaps(noise, feats, cv_folds=3)
    assert result.r2 < 0.05
    assert (result.drivers["r2"] == result.r2).all()


def test_users_without_a_metric_value_are_dropped_and_disjoint_ids_refused():
    metric, feats = _planted(300, via="activity", seed=3)
    metric.iloc[:50] = np.nan
    assert explain_gaps(metric, feats, cv_folds=2).drivers["n_users"].iloc[0] == 250
    with pytest.raises(ValueError, match=_NO_OVERLAP.format("ndcg")[:30]):
        explain_gaps(metric.rename(lambda u: u + "x"), feats)


def test_attributes_that_are_not_features_are_refused():
    metric, feats = _planted(200, via="activity", seed=4)
    with pytest.raises(ValueError, match="Attribute 'region' is not among the features' one-hot attributes"):
        explain_gaps(metric, feats, cv_folds=2, attributes=["region"])
    users = pd.DataFrame({"user_id": ["a"], "gender": ["F"]})
    items = pd.DataFrame({"item_id": ["x"], "title": ["X"]})
    data = Dataset(pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}), users, items)
    with pytest.raises(ValueError, match=r"User attribute\(s\) \['religion'\] are not columns of the users table"):
        user_features(data, attributes=["religion"])
