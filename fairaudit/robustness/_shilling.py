"""Shilling (data-poisoning) attacks: fake user profiles injected to push or nuke target items.

The classic attack models (Lam & Riedl 2004; Mobasher et al. 2007) build each fake profile from
the target items, a few *selected* items and random *filler* items:

- ``random``: filler rated around the global mean (normal, global standard deviation);
- ``average``: filler rated around each filler item's own mean (its standard deviation);
- ``bandwagon``: the ``selected_size`` most popular items rated the maximum (the profile looks like
  many genuine users), plus random filler rated around the global mean;
- ``segment``: the ``selected_size`` most popular items of the target's segment (items sharing a
  genre with the first target, or its ``segment_attribute`` group) rated the maximum, filler the
  minimum (it reaches the users who like that segment).

Targets get the maximum rating (``push``) or the minimum (``nuke``). Implicit-feedback models
(the LLM, MF, item-kNN) read every interaction as a positive one, so on them a ``nuke`` profile
still adds the target to a history: demotion is only meaningful for models that read ratings.
The poisoned :class:`~fairaudit.data.Dataset` and :class:`~fairaudit.data.Split` live in memory
(the clean ones are never changed); the fake users are in the training part only, so the test
users and their held-out items are exactly the clean split's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from fairaudit._choices import INTENTS, SHILLING_KINDS, Intent, ShillingKind
from fairaudit.data import GENRE_SEP, UNKNOWN, Dataset, Split

#: Prefix of the fake users' ids (a number is appended; collisions with real ids are avoided).
FAKE_PREFIX = "shill"
#: Default target: the item at this percentile of training popularity (a mid-list item, rarely in top-K lists).
TARGET_PERCENTILE = 0.75
#: Rating range assumed when the data carry no ratings (only the items of a profile then matter).
DEFAULT_RATING_RANGE = (1.0, 5.0)

_BAD_KIND = "shilling kind must be one of {0}, got {1!r}"
_BAD_INTENT = "intent must be one of {0}, got {1!r}"
_BAD_SHARE = "share of fake users must be in [0, 1], got {0!r}"
_NO_TARGETS = "a shilling attack needs at least one target item"
_UNKNOWN_TARGETS = "target item(s) {0} not in the items table; expected ids such as {1}"
_NO_GROUP = "item attribute '{0}' has no group '{1}'; groups present: {2}"
_NO_ATTRIBUTE = "items have no column '{0}'; item attributes present: {1}"


@dataclass(frozen=True)
class ShillingAttack:
    """One attack model: kind, share of fake users, targets and profile sizes.

    Parameters
    ----------
    kind : {"random", "average", "bandwagon", "segment"}
    share : float
        Fake users as a share of the genuine users (0.03 = 3 %); 0 injects nothing.
    targets : tuple of str
        Target item ids (see :func:`choose_targets`).
    intent : {"push", "nuke"}
        Promote (maximum rating) or demote (minimum rating) the targets.
    filler_size : int, optional
        Filler items per profile; default the median genuine profile length.
    selected_size : int
        Selected items per profile (bandwagon: popular; segment: the segment's popular items).
    targets_per_profile : int
        Targets per profile when there are more targets (an item group): a random subset each.
    segment_attribute : str, optional
        Item column defining the segment; default shared genres.
    seed : int
    """

    kind: ShillingKind = "bandwagon"
    share: float = 0.03
    targets: tuple[str, ...] = ()
    intent: Intent = "push"
    filler_size: int | None = None
    selected_size: int = 10
    targets_per_profile: int = 5
    segment_attribute: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class Poisoning:
    """A poisoned copy of the data: dataset, split, the fake users' ids and their profiles (interactions)."""

    dataset: Dataset
    split: Split
    fake_users: pd.Index
    profiles: pd.DataFrame


def choose_targets(
    dataset: Dataset,
    split: Split,
    *,
    items: Sequence[str] | None = None,
    item_attribute: str | None = None,
    item_group: str | None = None,
    percentile: float = TARGET_PERCENTILE,
) -> tuple[str, ...]:
    """Target item ids: ``items`` as given, every item of ``item_attribute == item_group``, or by default the
    item at ``percentile`` of training popularity among trained items (0.75: popular enough for a 3 % attack to
    reach top-10 lists, rarely in them before; tail items resist such small attacks, docs/benchmarks.md).

    >>> from fairaudit.data import load_sample, make_split
    >>> data = load_sample(); split = make_split(data, "random", seed=0)
    >>> len(choose_targets(data, split))
    1
    """
    catalogue = pd.Index(dataset.items["item_id"].astype(str))
    if items:
        wanted = pd.Index([str(i) for i in items])
        missing = wanted.difference(catalogue)
        if len(missing):
            raise ValueError(_UNKNOWN_TARGETS.format(list(missing[:5]), list(catalogue[:3])))
        return tuple(wanted)
    if item_attribute is not None:
        if item_attribute not in dataset.items.columns:
            raise ValueError(_NO_ATTRIBUTE.format(item_attribute, dataset.item_attributes))
        values = dataset.items[item_attribute].astype(str)
        if item_group not in set(values):
            raise ValueError(_NO_GROUP.format(item_attribute, item_group, sorted(set(values))))
        return tuple(dataset.items.loc[values == item_group, "item_id"].astype(str))
    counts = split.train["item_id"].astype(str).value_counts().reindex(catalogue, fill_value=0)
    trained = counts[counts > 0].sort_values(kind="stable")
    return (str(trained.index[int(percentile * (len(trained) - 1))]),)


def _segment_items(dataset: Dataset, target: str, attribute: str | None) -> pd.Index:
    """Items in the first target's segment: same ``attribute`` value, else a shared genre."""
    items = dataset.items.assign(item_id=dataset.items["item_id"].astype(str)).set_index("item_id")
    if attribute is not None:
        if attribute not in items.columns:
            raise ValueError(_NO_ATTRIBUTE.format(attribute, dataset.item_attributes))
        return items.index[items[attribute].astype(str) == str(items.at[target, attribute])]
    if "genres" not in items.columns:
        return items.index
    mine = set(str(items.at[target, "genres"]).split(GENRE_SEP))
    genres = items["genres"].astype(str).str.split(GENRE_SEP, regex=False).explode()
    return pd.Index(genres[genres.isin(mine)].index.unique())


def _sample_rows(rng: np.random.Generator, n_rows: int, pool: np.ndarray, size: int) -> np.ndarray:
    """``n_rows`` x ``size`` draws without replacement within each row from ``pool`` (vectorised)."""
    size = min(size, len(pool))
    if size == 0 or n_rows == 0:
        return np.empty((n_rows, 0), dtype=pool.dtype)
    keys = rng.random((n_rows, len(pool)))
    return pool[np.argpartition(keys, size - 1, axis=1)[:, :size]]


def inject_profiles(dataset: Dataset, split: Split, attack: ShillingAttack) -> Poisoning:
    """The data with ``attack``'s fake profiles added (to the interactions and to the training split).

    ``round(share x genuine users)`` fake users (at least one when ``share > 0``) named
    ``shill0000...`` get ``targets`` + selected + filler items; ratings as in the module docstring
    (clipped to the data's rating range, rounded to the nearest step of it), timestamps after the
    last training interaction. Attributes of fake users are ``unknown``. ``dataset`` and ``split``
    are not modified.

    >>> from fairaudit.data import load_sample, make_split
    >>> data = load_sample(); split = make_split(data, "random", seed=0)
    >>> attack = ShillingAttack(share=0.01, targets=("i0001",))
    >>> poisoned = inject_profiles(data, split, attack)
    >>> len(poisoned.fake_users), bool(poisoned.split.test.equals(split.test))
    (20, True)
    """
    if attack.kind not in SHILLING_KINDS:
        raise ValueError(_BAD_KIND.format(SHILLING_KINDS, attack.kind))
    if attack.intent not in INTENTS:
        raise ValueError(_BAD_INTENT.format(INTENTS, attack.intent))
    if not 0.0 <= float(attack.share) <= 1.0:
        raise ValueError(_BAD_SHARE.format(attack.share))
    if not attack.targets:
        raise ValueError(_NO_TARGETS)
    rng = np.random.default_rng(attack.seed)
    train = split.train.assign(user_id=split.train["user_id"].astype(str), item_id=split.train["item_id"].astype(str))
    catalogue = np.asarray(dataset.items["item_id"].astype(str), dtype=object)
    targets = np.asarray(attack.targets, dtype=object)
    genuine = dataset.users["user_id"].astype(str)
    n_fake = int(round(attack.share * len(genuine)))
    n_fake = max(n_fake, 1) if attack.share > 0 else 0
    taken = set(genuine)
    width = max(4, len(str(n_fake)))
    offset = 0
    while any(f"{FAKE_PREFIX}{offset + i:0{width}d}" in taken for i in range(n_fake)):
        offset += n_fake  # ids that collide with real users are skipped
    fake = pd.Index([f"{FAKE_PREFIX}{offset + i:0{width}d}" for i in range(n_fake)], name="user_id")
    if n_fake == 0:  # nothing injected: the clean data themselves
        return Poisoning(dataset, split, fake, split.train.iloc[:0].copy())

    popularity = train["item_id"].value_counts().reindex(catalogue, fill_value=0)
    has_rating = "rating" in train.columns and train["rating"].notna().any()
    ratings = train["rating"].astype(float) if has_rating else pd.Series(dtype=float)
    low, high = (float(ratings.min()), float(ratings.max())) if has_rating else DEFAULT_RATING_RANGE
    step = _rating_step(ratings) if has_rating else 1.0
    global_mean = float(ratings.mean()) if has_rating else (low + high) / 2
    global_std = float(ratings.std(ddof=0)) if has_rating and len(ratings) > 1 else 1.0
    item_mean = ratings.groupby(train["item_id"]).mean().reindex(catalogue).fillna(global_mean) if has_rating else None
    item_std = ratings.groupby(train["item_id"]).std(ddof=0).reindex(catalogue).fillna(global_std) if has_rating else None

    n_targets = min(len(targets), attack.targets_per_profile)
    target_rows = _sample_rows(rng, n_fake, targets, n_targets)
    if attack.kind == "bandwagon":
        selected_pool = popularity.drop(targets, errors="ignore").sort_values(ascending=False, kind="stable").index
        selected = np.tile(np.asarray(selected_pool[: attack.selected_size], dtype=object), (n_fake, 1))
    elif attack.kind == "segment":
        segment = _segment_items(dataset, str(targets[0]), attack.segment_attribute).difference(pd.Index(targets))
        ranked = popularity.reindex(segment).sort_values(ascending=False, kind="stable").index
        selected = np.tile(np.asarray(ranked[: attack.selected_size], dtype=object), (n_fake, 1))
    else:
        selected = np.empty((n_fake, 0), dtype=object)
    lengths = train.groupby("user_id").size()
    filler_size = attack.filler_size if attack.filler_size is not None else int(lengths.median()) if len(lengths) else 10
    used = pd.Index(np.concatenate([targets, selected[0] if n_fake else np.empty(0, dtype=object)]))
    pool = np.asarray(pd.Index(catalogue).difference(used), dtype=object)
    filler = _sample_rows(rng, n_fake, pool, filler_size)

    users = np.repeat(np.asarray(fake, dtype=object), [target_rows.shape[1] + selected.shape[1] + filler.shape[1]])
    items = np.concatenate([target_rows, selected, filler], axis=1).ravel()
    role = np.tile(np.repeat(["target", "selected", "filler"], [target_rows.shape[1], selected.shape[1], filler.shape[1]]), n_fake)
    if attack.kind == "average" and item_mean is not None:
        filler_values = rng.normal(item_mean.reindex(items).to_numpy(), item_std.reindex(items).to_numpy())
    elif attack.kind == "segment":
        filler_values = np.full(len(items), low)
    else:
        filler_values = rng.normal(global_mean, global_std, size=len(items))
    value = np.where(role == "target", high if attack.intent == "push" else low,
                     np.where(role == "selected", high, filler_values))  # fmt: skip
    value = np.clip(low + np.round((value - low) / step) * step, low, high)
    profiles = pd.DataFrame({"user_id": users, "item_id": items})
    if "rating" in dataset.interactions.columns:
        profiles["rating"] = value.astype("float64")
    if "timestamp" in dataset.interactions.columns:
        last = int(train["timestamp"].max()) if len(train) else 0
        profiles["timestamp"] = np.int64(last + 1)
    profiles = profiles.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)

    fake_users = pd.DataFrame({"user_id": fake.astype(str)})
    for column in dataset.users.columns.drop("user_id"):
        fake_users[column] = UNKNOWN
    poisoned = Dataset(
        interactions=pd.concat([dataset.interactions, profiles[dataset.interactions.columns.intersection(profiles.columns)]],
                               ignore_index=True),
        users=pd.concat([dataset.users, fake_users], ignore_index=True),
        items=dataset.items,
        name=f"{dataset.name} + {attack.kind} shilling",
        warnings=dataset.warnings,
        texts=dataset.texts,  # the fake users write nothing: a text-reading model gives them its no-text vector
    )  # fmt: skip
    train_columns = split.train.columns.intersection(profiles.columns)
    poisoned_split = Split(
        train=pd.concat([split.train, profiles[train_columns]], ignore_index=True), test=split.test,
        method=split.method, seed=split.seed, params=dict(split.params), cold_items=split.cold_items,
    )  # fmt: skip
    return Poisoning(poisoned, poisoned_split, fake, profiles)


def _rating_step(ratings: pd.Series) -> float:
    """Smallest positive difference between distinct ratings (1 for 1..5 stars, 0.5 for half stars)."""
    values = np.unique(ratings.dropna().to_numpy(dtype=float))
    steps = np.diff(values)
    return float(steps.min()) if len(steps) else 1.0
