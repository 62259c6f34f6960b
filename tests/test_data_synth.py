"""The planted-bias generator: determinism, write/load round trip, and the planted effects in sample_data/."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from fairaudit.cli import main
from fairaudit.data import GENRE_SEP, generate_sample, load_dataset, load_sample, random_holdout
from fairaudit.data._synth import OLD_GENRES, SAMPLE_DIR, YOUNG_GENRES

SMALL = dict(n_users=120, n_items=60, n_interactions=3000)


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def test_generator_is_deterministic():
    a, truth_a = generate_sample(seed=3, **SMALL)
    b, truth_b = generate_sample(seed=3, **SMALL)
    c, _ = generate_sample(seed=4, **SMALL)
    assert a.fingerprint() == b.fingerprint() and truth_a == truth_b
    assert a.fingerprint() != c.fingerprint()


def test_written_files_load_to_the_same_dataset(tmp_path):
    generated, truth = generate_sample(seed=2, **SMALL)
    assert main(["sample", "--out", str(tmp_path), "--seed", "2", "--users", "120", "--items", "60",
                 "--interactions", "3000"]) == 0  # fmt: skip
    loaded = load_dataset(tmp_path)
    assert loaded.fingerprint() == generated.fingerprint()
    assert loaded.texts_fingerprint() == generated.texts_fingerprint() is not None
    assert json.loads((tmp_path / "ground_truth.json").read_text()) == json.loads(json.dumps(truth))


def test_committed_sample_matches_the_generator(sample):
    truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text())
    assert truth["seed"] == 0 and truth["params"] == {"n_users": 2000, "n_items": 800, "n_interactions": 100_000}
    assert truth["measured"]["summary"] == sample.summary()
    generated, generated_truth = generate_sample()  # the committed files are what the code writes
    assert generated.fingerprint() == sample.fingerprint()
    pd.testing.assert_frame_equal(generated.texts, sample.texts)  # user_texts.csv too
    assert truth["texts"]["file"] == "user_texts.csv"
    assert json.loads(json.dumps(generated_truth)) == truth
    assert {e["id"] for e in truth["effects"]} >= {"gender_accuracy", "age_genre_preference", "indie_underexposure", "region_null"}


def test_sample_shape(sample):
    inter, users, items = sample.interactions, sample.users, sample.items
    assert sample.summary()["n_users"] == 2000 and sample.summary()["n_items"] == 800
    assert 95_000 <= len(inter) <= 105_000
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert (inter.groupby("user_id")["timestamp"].diff().dropna() > 0).all()  # increasing per user
    assert items["title"].is_unique
    n_genres = items["genres"].str.count(r"\|") + 1
    assert n_genres.between(1, 3).all()
    # descriptions mention the item's genres in words, for the text model
    first = items["genres"].str.split(GENRE_SEP).str[0].str.lower()
    assert all(g in d for g, d in zip(first, items["description"]))
    assert set(users["gender"]) == {"F", "M", "X", "unknown"}
    assert 0 < (users["region"] == "unknown").mean() < 0.05
    counts = inter["item_id"].value_counts()
    assert counts.iloc[:80].sum() > 0.25 * len(inter)  # long tail: top 10% of items take >2.5x their share
    assert counts.max() > 10 * counts.median()


def test_planted_gender_activity(sample):
    per_user = sample.users["user_id"].map(sample.interactions["user_id"].value_counts())
    means = per_user.groupby(sample.users["gender"]).mean()
    assert 0.4 < means["F"] / means["M"] < 0.6


def test_planted_age_genre_preference(sample):
    inter = sample.interactions.merge(sample.users[["user_id", "age"]], on="user_id")
    inter = inter.merge(sample.items[["item_id", "genres"]], on="item_id")
    young, old = inter["age"] < 25, inter["age"] >= 45

    def share(rows, genres):
        return rows["genres"].str.split(GENRE_SEP).apply(lambda g: bool(set(g) & set(genres))).mean()

    assert share(inter[young], YOUNG_GENRES) > share(inter[old], YOUNG_GENRES) + 0.07
    assert share(inter[old], OLD_GENRES) > share(inter[young], OLD_GENRES) + 0.07


def test_planted_indie_underexposure(sample):
    indie = sample.items.loc[sample.items["provider"] == "indie", "item_id"]
    catalogue = len(indie) / len(sample.items)
    assert catalogue == pytest.approx(0.3)
    assert sample.interactions["item_id"].isin(indie).mean() < catalogue - 0.08
    top = sample.interactions["item_id"].value_counts().index[:50]  # what a popularity model shows
    assert top.isin(indie).mean() < catalogue / 2


def test_region_is_a_null_control(sample):
    users = sample.users[sample.users["region"] != "unknown"]
    for column in ("activity", "gender", "age_band"):
        assert chi2_contingency(pd.crosstab(users["region"], users[column])).pvalue > 0.01, column


def test_popularity_ranking_serves_f_worse_than_m(sample):
    split = random_holdout(sample, 0.2, seed=0)
    top = split.train["item_id"].value_counts().index[:60].to_numpy()
    users = sample.users["user_id"].to_numpy()
    cand = pd.DataFrame({"user_id": np.repeat(users, len(top)), "item_id": np.tile(top, len(users))})
    seen = cand.merge(split.train[["user_id", "item_id"]], how="left", indicator=True)["_merge"] == "both"
    top10 = cand[~seen.to_numpy()].groupby("user_id").head(10)
    hits = top10.merge(split.test[["user_id", "item_id"]]).groupby("user_id").size()
    hit_rate = (sample.users["user_id"].map(hits).fillna(0) > 0).groupby(sample.users["gender"]).mean()
    assert hit_rate["M"] - hit_rate["F"] > 0.15
