"""Data profile by user group: how much and how popular each group's interactions are."""

from __future__ import annotations

import pandas as pd

from fairaudit.data._schema import Dataset


def profile_by_group(dataset: Dataset, attribute: str, *, min_group_size: int) -> pd.DataFrame:
    """Per group of a user ``attribute``: users, activity and taste for popular items.

    Shown before anything is trained, because unequal activity and popularity taste are the
    usual hidden drivers of later accuracy gaps. An item's popularity is its number of
    interactions; a user's ``mean_item_popularity`` is the mean over their history.
    Intersections ``"a*b"`` join the values with ``*``. Groups with fewer than ``min_group_size``
    users are marked ``small`` (the dashboard passes the audit's default,
    ``fairaudit.metrics.MIN_GROUP_SIZE``).

    Returns
    -------
    DataFrame
        ``group, users, user_share, interactions, interactions_per_user,
        median_interactions_per_user, mean_item_popularity, small`` sorted by ``users`` (desc).

    Examples
    --------
    >>> ds = Dataset(pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]}),
    ...              pd.DataFrame({"user_id": ["a", "b"], "g": ["F", "M"]}), pd.DataFrame({"item_id": ["x", "y"]}))
    >>> table = profile_by_group(ds, "g", min_group_size=1)
    >>> table[["group", "interactions_per_user", "mean_item_popularity"]].values.tolist()
    [['F', 2.0, 1.5], ['M', 1.0, 2.0]]
    """
    users = dataset.users.set_index("user_id")
    groups = users[attribute.split("*")].astype(str).agg("*".join, axis=1)
    inter = dataset.interactions[["user_id", "item_id"]]
    popularity = inter["item_id"].map(inter["item_id"].value_counts())
    per_user = pd.DataFrame(
        {
            "n": inter.groupby("user_id").size(),
            "pop": popularity.groupby(inter["user_id"]).mean(),
        }
    ).reindex(users.index)
    per_user["n"] = per_user["n"].fillna(0)
    per_user["group"] = groups
    table = per_user.groupby("group").agg(
        users=("n", "size"),
        interactions=("n", "sum"),
        interactions_per_user=("n", "mean"),
        median_interactions_per_user=("n", "median"),
        mean_item_popularity=("pop", "mean"),
    )
    table.insert(1, "user_share", table["users"] / table["users"].sum())
    table["interactions"] = table["interactions"].astype("int64")
    table["small"] = table["users"] < min_group_size
    return table.reset_index().sort_values(["users", "group"], ascending=[False, True], ignore_index=True)
