"""The audit run, the audit folder and the CLI: contract columns, reproducibility, planted effects."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairaudit.audit import (
    FILES,
    USER_METRICS,
    AuditConfig,
    attribute_groups,
    audit_split,
    common_split,
    default_attributes,
    plain_attributes,
    read_audit,
    run_audit,
    split_for_model,
    write_audit,
)
from fairaudit.audit._engine import _ATTRIBUTE_CLASH
from fairaudit.cli import main
from fairaudit.data import Dataset, load_sample, make_split
from fairaudit.metrics import benjamini_hochberg
from fairaudit.models import create_model
from tests.conftest import ROOT, make_tiny_dataset

GROUP_COLUMNS = ["model", "attribute", "group", "metric", "value", "ci_low", "ci_high", "n_users", "flagged"]
GAP_COLUMNS = ["model", "attribute", "group", "reference", "reference_group", "metric", "difference", "ratio",
               "ci_low", "ci_high", "p_value", "p_adjusted", "direction", "mdg"]  # fmt: skip
EXPOSURE_COLUMNS = ["model", "user_attribute", "user_group", "item_attribute", "item_group", "browsing",
                    "exposure_share", "catalogue_share", "relevance_share"]  # fmt: skip
TINY_CONFIG = AuditConfig(k=5, bootstrap_rounds=50, min_group_size=5, embedding_diversity=False)


def _vectors(dataset: Dataset) -> pd.DataFrame:
    """Stand-in item embeddings (the real encoder is exercised once, below)."""
    return pd.DataFrame(np.random.default_rng(0).normal(size=(len(dataset.items), 8)), index=dataset.items["item_id"])


@pytest.fixture(scope="module")
def tiny():
    dataset = make_tiny_dataset()
    split = make_split(dataset, "random", seed=0)
    models = {"pop": create_model("popularity").fit(dataset, split), "knn": create_model("itemknn").fit(dataset, split)}
    return dataset, split, models


@pytest.fixture(scope="module")
def tiny_audit(tiny):
    dataset, split, models = tiny
    config = AuditConfig(k=5, bootstrap_rounds=50, min_group_size=5)
    return run_audit(dataset, split, models, config, item_vectors=_vectors(dataset))


def test_contract_columns_and_content(tiny, tiny_audit):
    dataset, split, _ = tiny
    result = tiny_audit
    assert result.recommendations.columns.tolist() == ["model", "user_id", "rank", "item_id", "score"]
    # Contract columns first, then the plain attributes behind the audited specs (for paired comparisons).
    assert result.user_metrics.columns.tolist() == ["model", "user_id", *USER_METRICS, "gender", "age_band", "region"]
    stored = result.user_metrics.set_index("user_id")[["gender", "age_band", "region"]]
    expected = dataset.users.set_index("user_id").loc[stored.index, ["gender", "age_band", "region"]]
    assert stored.to_numpy().tolist() == expected.astype(str).to_numpy().tolist()
    assert result.meta["config"]["attributes"] == ["gender", "age_band", "region", "gender*age_band"]
    assert result.group_metrics.columns.tolist() == GROUP_COLUMNS
    assert result.gaps.columns.tolist() == GAP_COLUMNS
    assert result.item_exposure.columns.tolist() == EXPOSURE_COLUMNS
    # Every user with a test item is evaluated, with K items each.
    test_users = set(split.test["user_id"])
    for _, recs in result.recommendations.groupby("model"):
        assert set(recs["user_id"]) == test_users and (recs.groupby("user_id").size() == 5).all()
    attributes = set(result.group_metrics["attribute"])
    assert attributes == {"all", "gender", "age_band", "region", "gender*age_band"}
    overall = result.group_metrics.query("model == 'pop' and attribute == 'all'").set_index("metric")
    assert {"gini_exposure", "catalogue_coverage", "long_tail_share", "avg_popularity"} <= set(overall.index)
    assert overall.loc["ndcg", "value"] == pytest.approx(result.user_metrics.query("model == 'pop'")["ndcg"].mean())
    # Popularity gives everybody the same list (minus seen items): low coverage, high Gini.
    knn = result.group_metrics.query("model == 'knn' and attribute == 'all'").set_index("metric")
    assert overall.loc["catalogue_coverage", "value"] < knn.loc["catalogue_coverage", "value"]
    assert overall.loc["gini_exposure", "value"] > knn.loc["gini_exposure", "value"]
    # Exposure shares sum to one within each model x user group x item attribute x browsing model.
    sums = result.item_exposure.groupby(EXPOSURE_COLUMNS[:4] + ["browsing"])["exposure_share"].sum()
    assert np.allclose(sums, 1.0)
    assert set(result.item_exposure["item_attribute"]) == {"popularity_tier", "genre", "provider"}
    assert set(result.gaps["reference"]) == {"rest", "best"}
    assert result.gaps["p_adjusted"].ge(result.gaps["p_value"] - 1e-12).all()
    meta = result.meta
    assert meta["data"]["fingerprint"] == dataset.fingerprint()
    assert meta["models"]["pop"]["fingerprint"] == tiny[2]["pop"].fingerprint()
    assert meta["config"]["split"]["fingerprint"] == split.describe()["fingerprint"]
    assert {"numpy", "pandas", "torch"} <= set(meta["versions"])


def test_same_config_reproduces_every_number(tiny, tiny_audit):
    dataset, split, models = tiny
    vectors = _vectors(dataset)
    again = run_audit(dataset, split, models, AuditConfig.from_dict(tiny_audit.meta["config"]), item_vectors=vectors)
    for name in ("recommendations", "user_metrics", "group_metrics", "gaps", "item_exposure"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(tiny_audit, name), check_exact=True)
    other_seed = run_audit(dataset, split, models, AuditConfig(k=5, bootstrap_rounds=50, min_group_size=5, seed=1),
                           item_vectors=vectors)  # fmt: skip
    assert not np.allclose(other_seed.group_metrics["ci_low"].fillna(0), tiny_audit.group_metrics["ci_low"].fillna(0))


def test_embedding_diversity_uses_the_llm_item_embeddings(tiny):
    from fairaudit.metrics import intra_list_diversity
    from fairaudit.models import item_text_embeddings

    dataset, split, models = tiny
    config = AuditConfig(k=5, bootstrap_rounds=10, min_group_size=5, attributes=("gender",))
    result = run_audit(dataset, split, {"knn": models["knn"]}, config)
    vectors = pd.DataFrame(item_text_embeddings(dataset), index=dataset.items["item_id"])
    expected = intra_list_diversity(result.recommendations.drop(columns="model"), vectors)
    got = result.user_metrics.set_index("user_id")["ild_embedding"]
    np.testing.assert_allclose(got.to_numpy(), expected.reindex(got.index).to_numpy(), atol=1e-9)
    assert got.between(0, 2).all()


def test_write_and_read_round_trip(tiny_audit, tmp_path):
    write_audit(tiny_audit, tmp_path / "audit")
    assert sorted(p.name for p in (tmp_path / "audit").iterdir()) == sorted(FILES.values())
    back = read_audit(tmp_path / "audit")
    for name in ("recommendations", "user_metrics", "group_metrics", "gaps", "item_exposure"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(tiny_audit, name), check_dtype=False)
    assert back.meta == json.loads(json.dumps(tiny_audit.meta))
    assert back.config == AuditConfig.from_dict(tiny_audit.meta["config"])
    (tmp_path / "audit" / "gaps.csv").unlink()
    with pytest.raises(FileNotFoundError, match="lacks gaps.csv"):
        read_audit(tmp_path / "audit")


def test_the_split_recorded_in_an_audit_is_recreated_and_checked(tiny, tiny_audit):
    dataset, split, _ = tiny
    assert audit_split(dataset, tiny_audit.config).describe() == split.describe()
    assert audit_split(dataset, AuditConfig()) is None  # nothing recorded
    with pytest.raises(ValueError, match="but the audit was made on"):
        audit_split(make_tiny_dataset(n_users=50), tiny_audit.config)  # other data, same split settings


def test_small_groups_are_flagged_and_left_out_of_gaps(tiny):
    dataset, split, models = tiny
    config = AuditConfig(k=5, bootstrap_rounds=20, min_group_size=30, embedding_diversity=False, attributes=("gender",))
    result = run_audit(dataset, split, {"pop": models["pop"]}, config)
    gender = result.group_metrics.query("attribute == 'gender'")
    assert gender["flagged"].all()  # 20 users per gender
    assert result.gaps.empty or not len(result.gaps.query("attribute == 'gender'"))
    config = AuditConfig.from_dict({**config.to_dict(), "include_small_groups": True})
    assert len(run_audit(dataset, split, {"pop": models["pop"]}, config).gaps) > 0


def test_fdr_family_options(tiny, tiny_audit):
    dataset, split, models = tiny
    config = AuditConfig.from_dict({**tiny_audit.meta["config"], "fdr_family": "audit"})
    pooled = run_audit(dataset, split, models, config, item_vectors=_vectors(dataset)).gaps
    per_attribute = tiny_audit.gaps
    assert pooled["p_value"].tolist() == per_attribute["p_value"].tolist()
    assert pooled["p_adjusted"].to_numpy() == pytest.approx(benjamini_hochberg(pooled["p_value"].to_numpy()), nan_ok=True)
    gender = per_attribute["attribute"] == "gender"
    assert per_attribute.loc[gender, "p_adjusted"].to_numpy() == pytest.approx(
        benjamini_hochberg(per_attribute.loc[gender, "p_value"].to_numpy()), nan_ok=True
    )
    assert not np.allclose(pooled["p_adjusted"].fillna(1), per_attribute["p_adjusted"].fillna(1))
    config = AuditConfig.from_dict({**tiny_audit.meta["config"], "fdr_family": "model"})
    per_model = run_audit(dataset, split, models, config, item_vectors=_vectors(dataset)).gaps
    one = (per_model["attribute"] == "gender") & (per_model["model"] == per_model["model"].iloc[0])
    assert per_model.loc[one, "p_adjusted"].to_numpy() == pytest.approx(
        benjamini_hochberg(per_model.loc[one, "p_value"].to_numpy()), nan_ok=True
    )
    with pytest.raises(ValueError, match="Unknown fdr_family 'user'"):
        run_audit(dataset, split, models, AuditConfig(fdr_family="user"))
    with pytest.raises(ValueError, match="run_audit needs at least one model"):
        run_audit(dataset, split, {}, TINY_CONFIG)


def test_attributes_and_intersections():
    users = pd.DataFrame({"user_id": ["a", "b"], "gender": ["F", "M"], "age_band": ["18-24", "25-34"],
                          "zip": ["10001", "94043"]})  # fmt: skip
    data = Dataset(pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}), users, pd.DataFrame({"item_id": ["x"]}))
    assert default_attributes(data, max_groups=1) == ()
    assert default_attributes(data) == ("gender", "age_band", "zip", "gender*age_band")
    assert attribute_groups(users, "gender*age_band").to_dict() == {"a": "F*18-24", "b": "M*25-34"}
    with pytest.raises(ValueError, match="User attribute 'race' is not a column of the users table"):
        attribute_groups(users, "gender*race")
    assert plain_attributes(["gender*age_band", "zip", "age_band"]) == ("gender", "age_band", "zip")


def test_attribute_named_like_a_metric_is_refused(tiny):
    dataset, split, models = tiny
    users = dataset.users.rename(columns={"region": "novelty"})
    clash = Dataset(dataset.interactions, users, dataset.items)
    with pytest.raises(ValueError) as err:
        run_audit(clash, split, {"pop": models["pop"]}, AuditConfig.from_dict({**TINY_CONFIG.to_dict(),
                                                                             "attributes": ["novelty"]}))
    assert str(err.value) == _ATTRIBUTE_CLASH.format("novelty", ["model", "user_id", *USER_METRICS])


def test_split_is_recreated_and_verified(tiny):
    dataset, split, models = tiny
    assert split_for_model(dataset, models["pop"]).describe() == split.describe()
    assert common_split(dataset, models).describe() == split.describe()
    changed = Dataset(dataset.interactions.iloc[1:], dataset.users, dataset.items, name="changed")
    with pytest.raises(ValueError, match="the data changed since training"):
        split_for_model(changed, models["pop"])
    other = create_model("popularity").fit(dataset, make_split(dataset, "random", seed=5))
    with pytest.raises(ValueError, match="were trained on different splits"):
        common_split(dataset, {"a": models["pop"], "b": other})


# ---- planted effects of sample_data/ground_truth.json ------------------------------------------
@pytest.fixture(scope="module")
def sample_audit():
    dataset = load_sample()
    split = make_split(dataset, "random", seed=0)
    models = {kind: create_model(kind).fit(dataset, split) for kind in ("popularity", "itemknn")}
    config = AuditConfig(bootstrap_rounds=300, embedding_diversity=False)
    truth = json.loads((ROOT / "sample_data" / "ground_truth.json").read_text())
    return run_audit(dataset, split, models, config), {e["id"]: e for e in truth["effects"]}


def test_planted_gender_accuracy_gap_is_recovered(sample_audit):
    result, truth = sample_audit
    effect = truth["gender_accuracy"]
    rows = result.gaps.query(f"attribute == '{effect['attribute']}' and group == '{effect['group']}' and reference == 'rest'")
    for model in ("popularity", "itemknn"):
        for metric in [effect["metric"], *effect["also"]]:
            row = rows.query(f"model == '{model}' and metric == '{metric}'").iloc[0]
            assert effect["direction"] == "lower"
            assert row["difference"] < 0 and row["ci_high"] < 0 and row["p_adjusted"] < 0.05, (model, metric)
            assert row["direction"].startswith(f"{effect['group']} users get lower")


def test_planted_indie_underexposure_is_recovered(sample_audit):
    result, truth = sample_audit
    effect = truth["indie_underexposure"]
    rows = result.item_exposure.query(
        f"user_attribute == 'all' and item_attribute == '{effect['item_attribute']}' and item_group == '{effect['group']}'"
    )
    assert len(rows) == 4  # two models x two browsing models
    assert np.allclose(rows["catalogue_share"], effect["catalogue_share"], atol=0.01)
    assert (rows["exposure_share"] < rows["catalogue_share"]).all()


def test_planted_age_genre_preference_shows_in_exposure_between_user_groups(sample_audit):
    result, truth = sample_audit
    effect = truth["age_genre_preference"]
    shares = result.item_exposure.query(
        f"model == 'itemknn' and user_attribute == '{effect['attribute']}' and item_attribute == 'genre' "
        "and browsing == 'dcg'"
    ).pivot(index="user_group", columns="item_group", values="exposure_share")
    assert effect["direction"] == "higher"
    for band, genres in effect["groups"].items():
        others = [g for g in shares.index if effect["groups"].get(g) != genres and g != "unknown"]
        preferred = shares[genres].sum(axis=1)
        assert preferred[band] > preferred[others].max(), (band, preferred.round(3).to_dict())


def test_derived_attributes_come_from_training_interactions(sample_audit):
    """Activity levels and popularity tiers are recomputed from split.train and recorded in audit.json."""
    from fairaudit.data import activity_level, popularity_tier

    result, _ = sample_audit
    dataset = load_sample()
    split = make_split(dataset, "random", seed=0)
    assert result.meta["derived_attributes"] == {
        "activity": {"table": "users", "from": "train"}, "popularity_tier": {"table": "items", "from": "train"},
    }
    stored = result.user_metrics.drop_duplicates("user_id").set_index("user_id")["activity"]
    train_levels = activity_level(split.train, pd.Series(stored.index, index=stored.index))
    assert (stored == train_levels).all()
    tiers = popularity_tier(split.train, dataset.items["item_id"].astype(str))
    catalogue = result.item_exposure.query("item_attribute == 'popularity_tier' and user_attribute == 'all'")
    expected = tiers.value_counts(normalize=True)
    for row in catalogue.drop_duplicates("item_group").itertuples():
        assert row.catalogue_share == pytest.approx(expected.get(row.item_group, 0.0))


def test_mdg_and_too_small_to_tell(sample_audit):
    result, _ = sample_audit
    assert (result.gaps["mdg"] >= 0).all() and (result.gaps["mdg"] > 0).mean() > 0.9  # 0: a constant metric
    quiet = result.gaps.query("p_adjusted >= 0.05 and abs(difference) < mdg")
    assert len(quiet) and quiet["direction"].str.contains("too small to tell").all()
    loud = result.gaps.query("p_adjusted < 0.05")
    assert not loud["direction"].str.contains("too small to tell").any()


def test_movielens_gender_rest_and_best_give_identical_p_values(movielens_100k_path):
    """Issue 14's case: on MovieLens 100K gender has two groups, so F vs rest is F vs best (M)."""
    from fairaudit.data import load_dataset

    dataset = load_dataset(movielens_100k_path)
    split = make_split(dataset, "random", seed=0)
    model = create_model("popularity").fit(dataset, split)
    config = AuditConfig(bootstrap_rounds=200, embedding_diversity=False, attributes=("gender",), browsing=("dcg",))
    gaps = run_audit(dataset, split, {"popularity": model}, config).gaps
    rest = gaps.query("reference == 'rest'").set_index(["group", "metric"])
    best = gaps.query("reference == 'best'").set_index(["group", "metric"])
    assert len(best) == len(rest) // 2 > 0
    assert (best["p_value"] == rest.loc[best.index, "p_value"]).all()
    assert (best["p_adjusted"] == rest.loc[best.index, "p_adjusted"]).all()
    assert np.allclose(best["difference"], rest.loc[best.index, "difference"])


def test_null_control_region_is_not_flagged(sample_audit):
    result, truth = sample_audit
    assert truth["region_null"]["direction"] == "none"
    region = result.gaps.query("attribute == 'region'")
    assert len(region) > 50
    assert (region["p_adjusted"] >= 0.05).all(), region.sort_values("p_adjusted").head()


# ---- CLI -------------------------------------------------------------------------------------
def test_cli_audit_writes_folder_and_reruns_exactly(tmp_path, capsys):
    dataset = load_sample()
    split = make_split(dataset, "random", seed=0)
    for name in ("pop", "pop2"):
        create_model("popularity").fit(dataset, split).save(tmp_path / name / "pop")
    args = ["audit", "--data", str(ROOT / "sample_data"), "--model", str(tmp_path / "pop" / "pop"),
            "--model", str(tmp_path / "pop2" / "pop"), "--k", "5", "--out", str(tmp_path / "a1"),
            "--attributes", "gender,region,gender*region", "--bootstrap", "30", "--no-embeddings"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "written to" in out and "significant after Benjamini-Hochberg" in out
    first = read_audit(tmp_path / "a1")
    assert sorted(first.recommendations["model"].unique()) == ["pop", "pop-2"]
    assert set(first.group_metrics["attribute"]) == {"all", "gender", "region", "gender*region"}
    assert main(["audit", "--config", str(tmp_path / "a1" / "audit.json"), "--out", str(tmp_path / "a2")]) == 0
    for file in ("group_metrics.csv", "gaps.csv", "item_exposure.csv"):
        assert (tmp_path / "a1" / file).read_bytes() == (tmp_path / "a2" / file).read_bytes()
    assert main(["audit", "--out", str(tmp_path / "a3")]) == 2
    assert "audit needs --data and at least one --model" in capsys.readouterr().err
