"""Synthetic sample data with planted, documented biases (the dashboard's default dataset).

The generator draws users, items and interactions from a simple, fully specified model, so
an audit has known answers (written to ``ground_truth.json``):

1. **Gender accuracy gap.** ``F`` users have half the interaction budget of ``M`` users and
   half of their choices are uniformly random (``M``: 15%), so any recommender that learns
   from the data (popularity, item-kNN, MF, LLM) serves ``F`` worse (NDCG/recall/hit rate).
   A further 3% of users have gender ``X`` and 3% none (loaded as ``"unknown"``, the
   missing-attribute path), both with 75% of the budget and 30% random choices.
2. **Genre preference by age band.** Users under 25 weight Action/Sci-Fi/Animation x3,
   users aged 45+ weight Drama/Documentary/Mystery x3 (25-44: no age effect).
3. **Indie under-exposure.** 30% of items have ``provider="indie"``; their popularity weight is
   multiplied by 0.3, so their interaction (and popularity-driven exposure) share is well
   below their catalogue share.
4. **Region null control.** ZIP codes are drawn uniformly from real US ZIPs (2% malformed or
   foreign -> region ``"unknown"``), independently of everything else: region has no effect.
5. **User texts** (``user_texts.csv``, their own random stream): texts name the users' favourite
   genres, and F users' texts carry gender markers; ``gender_markers=False`` is the control
   (:mod:`fairaudit.data._synth_texts`).

Choices: each user has two random favourite genres (x8, on top of the age boost); an item's
affinity is the boost of its best-liked genre, its weight ``affinity x popularity`` (Zipf,
exponent 0.7, random item order). Weights are mixed with a uniform distribution at the
user's random share, and items are drawn
without replacement by the Gumbel top-k trick (vectorised over users). Timestamps increase
per user in random item order; ratings are higher for boosted genres.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.data import _derive
from fairaudit.data._load import _finish, load_dataset
from fairaudit.data._schema import GENRE_SEP, Dataset
from fairaudit.data._synth_texts import sample_texts, texts_truth

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"

GENRES = ("Action", "Sci-Fi", "Animation", "Comedy", "Romance", "Thriller", "Horror", "Drama", "Documentary", "Mystery")
YOUNG_GENRES = ("Action", "Sci-Fi", "Animation")
OLD_GENRES = ("Drama", "Documentary", "Mystery")
AGE_BOOST = 3.0
FAVOURITE_BOOST = 8.0
N_FAVOURITES = 2
YOUNG_BELOW, OLD_FROM = 25, 45
#: gender -> (share of users, interaction-budget multiplier, share of uniformly random choices).
GENDER_MODEL = {"F": (0.47, 0.5, 0.5), "M": (0.47, 1.0, 0.15), "X": (0.03, 0.75, 0.3), "": (0.03, 0.75, 0.3)}
INDIE_SHARE, INDIE_POPULARITY = 0.3, 0.3
ZIPF_EXPONENT = 0.7
BAD_ZIP_SHARE = 0.02
BAD_ZIPS = ("T8H1N", "1234", "SW1A 1AA", "ABCDE", "00000")
MIN_INTERACTIONS = 5

_ADJECTIVES = (
    "Silent", "Crimson", "Hidden", "Last", "Broken", "Golden", "Midnight", "Distant", "Frozen", "Wild",
    "Secret", "Burning", "Electric", "Hollow", "Iron", "Lonely", "Quiet", "Restless", "Shattered", "Velvet",
    "Wandering", "Bright", "Final", "Lost", "Paper", "Neon", "Savage", "Gentle", "Northern", "Endless",
)  # fmt: skip
_NOUNS = (
    "Harbor", "Signal", "Garden", "Empire", "River", "Machine", "Orchard", "Frontier", "Mirror", "Voyage",
    "Kingdom", "Letter", "Storm", "Station", "Promise", "Canyon", "Archive", "Circus", "Lantern", "Island",
    "Dynasty", "Horizon", "Requiem", "Planet", "Shadow", "Bridge", "Summer", "Code", "Forest", "Engine",
)  # fmt: skip
_MOODS = ("dark", "heartwarming", "tense", "playful", "bittersweet", "uplifting", "eerie", "thoughtful")
_SUBJECTS = (
    "a family that hides a secret", "a stranded crew far from home", "two rivals forced to cooperate",
    "a small town facing a sudden change", "an inventor chasing one last idea", "a friendship tested by time",
    "a detective who cannot forget", "a journey across a forgotten land",
)  # fmt: skip


def _titles(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` unique "The Adjective Noun" titles (numbered sequels once the pairs run out)."""
    pairs = np.array([f"The {a} {b}" for a in _ADJECTIVES for b in _NOUNS], dtype=object)
    base = pairs[rng.permutation(len(pairs))]
    idx = np.arange(n)
    part = idx // len(base)
    suffix = np.where(part > 0, np.char.add(" ", (part + 1).astype(str)), "")
    return np.char.add(base[idx % len(base)].astype(str), suffix).astype(object)


def _items(rng: np.random.Generator, n_items: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Items table, genre membership matrix (items x genres) and base popularity weights."""
    n_genres = len(GENRES)
    n_per = rng.choice([1, 2, 3], size=n_items, p=[0.4, 0.4, 0.2])
    order = np.argsort(rng.random((n_items, n_genres)), axis=1)  # random genre order per item
    member = np.zeros((n_items, n_genres), dtype=bool)
    np.put_along_axis(member, order, np.arange(n_genres)[None, :] < n_per[:, None], axis=1)
    names = np.array(GENRES, dtype=object)
    ranked = names[order]  # genres in per-item random order; the first n_per are the item's
    keep = np.arange(n_genres)[None, :] < n_per[:, None]
    genre_lists = pd.Series([GENRE_SEP.join(r[k]) for r, k in zip(ranked, keep)])
    words = genre_lists.str.lower().str.replace(GENRE_SEP, " and ", regex=False)
    moods = np.array(_MOODS, dtype=object)[rng.integers(len(_MOODS), size=n_items)]
    subjects = np.array(_SUBJECTS, dtype=object)[rng.integers(len(_SUBJECTS), size=n_items)]
    description = "A " + pd.Series(moods) + " " + words + " story about " + pd.Series(subjects) + "."
    indie = np.zeros(n_items, dtype=bool)
    indie[rng.choice(n_items, size=int(round(INDIE_SHARE * n_items)), replace=False)] = True
    popularity = 1.0 / (rng.permutation(n_items) + 1.0) ** ZIPF_EXPONENT
    popularity = np.where(indie, INDIE_POPULARITY * popularity, popularity)
    items = pd.DataFrame(
        {
            "item_id": [f"i{j:04d}" for j in range(n_items)],
            "title": _titles(rng, n_items),
            "genres": genre_lists.to_numpy(),
            "description": description.to_numpy(),
            "provider": np.where(indie, "indie", "studio"),
        }
    )
    return items, member, popularity


def _users(rng: np.random.Generator, n_users: int) -> pd.DataFrame:
    genders = np.array(list(GENDER_MODEL), dtype=object)
    shares = np.array([v[0] for v in GENDER_MODEL.values()])
    gender = genders[rng.choice(len(genders), size=n_users, p=shares / shares.sum())]
    age = rng.integers(15, 71, size=n_users)
    exact, _ = _derive._zip_tables()
    valid = np.array(sorted(exact), dtype=object)
    zips = valid[rng.integers(len(valid), size=n_users)]
    bad = rng.random(n_users) < BAD_ZIP_SHARE
    zips[bad] = np.array(BAD_ZIPS, dtype=object)[rng.integers(len(BAD_ZIPS), size=int(bad.sum()))]
    return pd.DataFrame(
        {"user_id": [f"u{u:05d}" for u in range(n_users)], "gender": gender, "age": age, "zip": zips}
    )


def _raw_tables(seed: int, n_users: int, n_items: int, n_interactions: int):
    rng = np.random.default_rng(seed)
    items, member, popularity = _items(rng, n_items)
    users = _users(rng, n_users)
    model = np.array([GENDER_MODEL[g][1:] for g in users["gender"]])
    budget, random_share = model[:, 0], model[:, 1]

    # Interaction counts: lognormal activity x gender budget, scaled to the target total.
    weight = rng.lognormal(0.0, 0.6, size=n_users) * budget
    counts = np.clip(np.round(weight / weight.sum() * n_interactions), MIN_INTERACTIONS, n_items // 2).astype(int)

    # Preference weights: popularity x boost of the item's best-liked genre (age and favourite boosts).
    age = users["age"].to_numpy()
    boost = np.ones((n_users, len(GENRES)))
    young, old = np.isin(GENRES, YOUNG_GENRES), np.isin(GENRES, OLD_GENRES)
    boost[np.ix_(age < YOUNG_BELOW, young)] *= AGE_BOOST
    boost[np.ix_(age >= OLD_FROM, old)] *= AGE_BOOST
    favourites = np.argsort(rng.random((n_users, len(GENRES))), axis=1)[:, :N_FAVOURITES]
    boost[np.arange(n_users)[:, None], favourites] *= FAVOURITE_BOOST
    affinity = np.where(member[None, :, :], boost[:, None, :], 0.0).max(axis=2)  # best-liked genre of the item
    signal = affinity * popularity[None, :]
    signal /= signal.sum(axis=1, keepdims=True)
    prob = (1 - random_share[:, None]) * signal + random_share[:, None] / n_items

    # Gumbel top-k: each user's first counts[u] items by log p + Gumbel noise = sampling without replacement.
    keys = np.log(prob) + rng.gumbel(size=prob.shape)
    ranked = np.argsort(-keys, axis=1)
    chosen = np.arange(n_items)[None, :] < counts[:, None]
    user_idx = np.repeat(np.arange(n_users), counts)
    item_idx = ranked[chosen]

    # Timestamps: per-user start + increasing gaps, in random item order; ratings from affinity.
    shuffle = np.lexsort((rng.random(len(item_idx)), user_idx))
    item_idx = item_idx[shuffle]
    gaps = rng.integers(60, 3 * 86_400, size=len(item_idx))
    total, first = np.cumsum(gaps), np.cumsum(counts) - counts
    within = total - np.repeat(total[first], counts)  # 0 for each user's first interaction
    start = 1_577_836_800 + rng.integers(0, 365 * 86_400, size=n_users)
    timestamp = np.repeat(start, counts) + within
    relative = affinity[user_idx, item_idx] / affinity.mean(axis=1)[user_idx]
    rating = np.clip(np.round(3.0 + 0.8 * np.log(relative) + rng.normal(0, 0.8, size=len(item_idx))), 1, 5)
    interactions = pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy()[user_idx],
            "item_id": items["item_id"].to_numpy()[item_idx],
            "rating": rating.astype(float),
            "timestamp": timestamp.astype("int64"),
        }
    )
    users["gender"] = users["gender"].replace("", None)
    return interactions, users, items, member, favourites


def _ground_truth(dataset: Dataset, seed: int, params: dict) -> dict:
    """Planted effects (machine-readable) plus the statistics measured on the generated data."""
    inter = dataset.interactions.merge(dataset.users[["user_id", "gender", "age_band"]], on="user_id")
    per_user = dataset.users["user_id"].map(dataset.interactions["user_id"].value_counts()).fillna(0)
    by_gender = per_user.groupby(dataset.users["gender"]).mean().round(2).to_dict()
    indie_items = set(dataset.items.loc[dataset.items["provider"] == "indie", "item_id"])
    catalogue_share = len(indie_items) / len(dataset.items)
    interaction_share = float(dataset.interactions["item_id"].isin(indie_items).mean())
    genres = inter.merge(dataset.items[["item_id", "genres"]], on="item_id")
    exploded = genres.assign(genre=genres["genres"].str.split(GENRE_SEP)).explode("genre")
    shares = pd.crosstab(exploded["age_band"], exploded["genre"], normalize="index").round(3)
    return {
        "generator": "fairaudit.data.generate_sample",
        "seed": seed,
        "params": params,
        "effects": [
            {
                "id": "gender_accuracy",
                "attribute": "gender",
                "group": "F",
                "reference": "M",
                "metric": "ndcg",
                "also": ["recall", "hit_rate", "precision", "mrr"],
                "direction": "lower",
                "mechanism": "F users have half M's interaction budget and 50% uniformly random choices (M: 15%).",
            },
            {
                "id": "gender_activity",
                "attribute": "gender",
                "group": "F",
                "reference": "M",
                "metric": "interactions_per_user",
                "direction": "lower",
                "expected_ratio": GENDER_MODEL["F"][1] / GENDER_MODEL["M"][1],
                "mechanism": "Interaction budget multiplier 0.5 for F, 1.0 for M.",
            },
            {
                "id": "age_genre_preference",
                "attribute": "age_band",
                "metric": "genre_share",
                "direction": "higher",
                "groups": {
                    **dict.fromkeys(["Under 18", "18-24"], list(YOUNG_GENRES)),
                    **dict.fromkeys(["45-54", "55+"], list(OLD_GENRES)),
                },
                "mechanism": f"Item weight x{AGE_BOOST} for the listed genres: ages < {YOUNG_BELOW} "
                f"prefer {', '.join(YOUNG_GENRES)}; ages >= {OLD_FROM} prefer {', '.join(OLD_GENRES)}.",
            },
            {
                "id": "indie_underexposure",
                "item_attribute": "provider",
                "group": "indie",
                "reference": "studio",
                "metric": "exposure_share",
                "direction": "lower",
                "catalogue_share": round(catalogue_share, 3),
                "mechanism": f"Indie items' popularity weight is multiplied by {INDIE_POPULARITY}.",
            },
            {
                "id": "region_null",
                "attribute": "region",
                "metric": "any",
                "direction": "none",
                "mechanism": "ZIP codes are drawn uniformly and independently of every other variable.",
            },
            {
                "id": "unknown_groups",
                "attribute": "gender",
                "groups": {"X": GENDER_MODEL["X"][0], "unknown": GENDER_MODEL[""][0]},
                "direction": "none",
                "mechanism": "Small groups: 'X' and a missing gender (loaded as 'unknown'); "
                "budget 0.75, 30% random choices. Also ~2% malformed/foreign ZIPs -> region 'unknown'.",
            },
        ],
        "measured": {
            "interactions_per_user_by_gender": by_gender,
            "indie_catalogue_share": round(catalogue_share, 3),
            "indie_interaction_share": round(interaction_share, 3),
            "genre_share_by_age_band": shares.to_dict(orient="index"),
            "summary": dataset.summary(),
        },
    }


def generate_sample(
    seed: int = 0,
    n_users: int = 2000,
    n_items: int = 800,
    n_interactions: int = 100_000,
    *,
    texts: bool = True,
    gender_markers: bool = True,
) -> tuple[Dataset, dict]:
    """Generate the planted-bias sample; returns the dataset and its ground truth.

    The dataset passes through the same validation and derivation as a loaded one, so
    ``load_dataset`` on the written files gives an identical :class:`Dataset`. ``texts`` adds
    the user texts (``Dataset.texts``, ground truth ``"texts"``); ``gender_markers=False`` writes
    the control texts without any attribute signal. Neither changes the other three tables.

    >>> ds, truth = generate_sample(seed=1, n_users=60, n_items=40, n_interactions=600)
    >>> ds.summary()["n_users"], [e["id"] for e in truth["effects"]][:2]
    (60, ['gender_accuracy', 'gender_activity'])
    """
    params = {"n_users": n_users, "n_items": n_items, "n_interactions": n_interactions}
    interactions, users, items, member, favourites = _raw_tables(seed, **params)
    files = {"interactions": "interactions.csv", "users": "users.csv", "items": "items.csv"}
    raw_texts = None
    if texts:
        raw_texts = sample_texts(seed, users, items, member, favourites, GENRES, gender_markers=gender_markers)
        raw_texts = None if raw_texts.empty else raw_texts  # a tiny sample where nobody writes
        files["texts"] = "user_texts.csv"
    for frame in (interactions, users, items, raw_texts):
        if frame is not None:
            frame.index = pd.RangeIndex(2, len(frame) + 2)  # CSV row numbers, as the loader sets them
    dataset = _finish(
        interactions,
        users,
        items,
        files,
        [],
        name="sample_data",
        age_edges=_derive.AGE_EDGES,
        popularity_cuts=_derive.POPULARITY_CUTS,
        texts=raw_texts,
    )
    truth = _ground_truth(dataset, seed, params)
    if dataset.texts is not None:
        truth["texts"] = texts_truth(dataset.texts, dataset.users, gender_markers)
    return dataset, truth


#: Columns written to ``users.csv`` / ``items.csv`` (derived ones are recomputed on load).
RAW_USER_COLUMNS = ("user_id", "gender", "age", "zip")
RAW_ITEM_COLUMNS = ("item_id", "title", "genres", "description", "provider")


def write_sample(
    directory: str | Path,
    seed: int = 0,
    n_users: int = 2000,
    n_items: int = 800,
    n_interactions: int = 100_000,
    *,
    gender_markers: bool = True,
) -> Dataset:
    """Generate the sample and write ``interactions.csv``, ``users.csv``, ``items.csv``, ``user_texts.csv``, ``ground_truth.json``.

    Only raw columns are written; ``age_band``, ``region``, ``activity`` and
    ``popularity_tier`` are derived again when the folder is loaded. ``gender_markers=False``
    writes the control texts (see :func:`generate_sample`).

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> _ = write_sample(out, n_users=30, n_items=20, n_interactions=200)
    >>> sorted(p.name for p in out.iterdir())
    ['ground_truth.json', 'interactions.csv', 'items.csv', 'user_texts.csv', 'users.csv']
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dataset, truth = generate_sample(seed, n_users, n_items, n_interactions, gender_markers=gender_markers)
    users = dataset.users[list(RAW_USER_COLUMNS)].copy()
    users["gender"] = users["gender"].replace("unknown", "")
    users["age"] = users["age"].astype(int)
    dataset.interactions.to_csv(directory / "interactions.csv", index=False)
    users.to_csv(directory / "users.csv", index=False)
    dataset.items[list(RAW_ITEM_COLUMNS)].to_csv(directory / "items.csv", index=False)
    if dataset.texts is not None:
        dataset.texts.to_csv(directory / "user_texts.csv", index=False)
    (directory / "ground_truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return dataset


def load_sample() -> Dataset:
    """The committed sample in ``sample_data/`` (the dashboard's default dataset).

    >>> load_sample().summary()["n_users"]
    2000
    """
    return load_dataset(SAMPLE_DIR)
