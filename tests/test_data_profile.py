"""fairaudit.data.profile_by_group: users, activity and popularity taste per user group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairaudit.data import Dataset, profile_by_group
from tests.conftest import make_tiny_dataset


def test_profile_by_group_matches_a_direct_count():
    ds = make_tiny_dataset(n_users=40)
    table = profile_by_group(ds, "gender", min_group_size=25).set_index("group")
    inter = ds.interactions.merge(ds.users[["user_id", "gender"]], on="user_id")
    counts = inter.groupby("gender").size()
    pop = inter["item_id"].map(ds.interactions["item_id"].value_counts())
    expected_pop = pop.groupby(inter["user_id"]).mean().groupby(ds.users.set_index("user_id")["gender"]).mean()
    for group in ("F", "M"):
        assert table.loc[group, "users"] == 20
        assert table.loc[group, "interactions"] == counts[group]
        assert table.loc[group, "interactions_per_user"] == pytest.approx(counts[group] / 20)
        assert table.loc[group, "mean_item_popularity"] == pytest.approx(expected_pop[group])
    assert table["small"].tolist() == [True, True]
    assert table["user_share"].sum() == pytest.approx(1.0)


def test_profile_by_group_intersections_and_users_without_interactions():
    users = pd.DataFrame({"user_id": ["a", "b", "c"], "g": ["F", "F", "M"], "age": ["x", "y", "x"]})
    inter = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["i", "j"]})
    ds = Dataset(inter, users, pd.DataFrame({"item_id": ["i", "j"], "title": ["I", "J"]}))
    table = profile_by_group(ds, "g*age", min_group_size=1).set_index("group")
    assert sorted(table.index) == ["F*x", "F*y", "M*x"]
    assert table.loc["F*y", "interactions"] == 0 and np.isnan(table.loc["F*y", "mean_item_popularity"])
