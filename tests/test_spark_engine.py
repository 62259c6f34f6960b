"""The Spark engine (``fairaudit.spark``): same numbers as the pandas engine, partition-free, planted effects found.

One Spark session per test worker (``local[2]``, 4 shuffle partitions); every test that needs it is
in the ``spark`` xdist group. The reference is the pandas engine auditing the same lists
(``ImportedRecommender``) on the same split of ``sample_data/``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.audit import AuditConfig, read_audit, run_audit
from fairaudit.data import Dataset, generate_sample, load_sample, make_split
from fairaudit.data._synth import RAW_ITEM_COLUMNS, RAW_USER_COLUMNS
from fairaudit.metrics import SliceReport
from fairaudit.spark import PoissonSliceReport, poisson_weights
from tests.conftest import ROOT

ROUNDS = 300
CONFIG = AuditConfig(k=10, bootstrap_rounds=ROUNDS, embedding_diversity=False)
#: Monte Carlo tolerance of a CI bound, as a share of the pandas CI's width: both engines estimate
#: the 2.5 % / 97.5 % quantiles from ROUNDS resamples (Monte Carlo sd of each about 0.05 widths at
#: 300 rounds, so their difference has sd ~0.07); 0.35 widths is 5 sd. Groups flagged as too
#: small are left out (the unstratified Poisson bootstrap and the stratified one differ there).
CI_TOLERANCE = 0.35
KEYS = ["model", "attribute", "group", "metric"]
EXPOSURE_KEYS = ["model", "user_attribute", "user_group", "item_attribute", "item_group", "browsing"]

spark_group = pytest.mark.xdist_group("spark")


# ---- inputs shared with tests/test_spark_cluster.py ------------------------------------------------
def write_inputs(folder: Path, dataset: Dataset | None = None, *, kinds: tuple[str, ...] = ("popularity", "itemknn"),
                 config: AuditConfig = CONFIG) -> dict[str, Path]:
    """Data as a Spark audit reads it, plus the pandas engine's reference audit of the same lists.

    ``folder/data/{interactions,users,items}.parquet`` (users raw: ``age``/``zip``, as the sample's
    CSV holds them; ``dataset`` default: the sample), ``folder/lists.parquet`` (top-10 of every test
    user from each of ``kinds``, ``model`` column), ``folder/test.parquet``; returns those paths and
    the reference audit folder (audited with ``config``).
    """
    from fairaudit.models import ImportedRecommender, create_model

    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    if dataset is None:
        dataset = load_sample()
        users_raw = pd.read_csv(ROOT / "sample_data" / "users.csv", dtype=str).assign(age=lambda f: pd.to_numeric(f["age"]))
        items_raw = pd.read_csv(ROOT / "sample_data" / "items.csv", dtype=str)
    else:
        users_raw, items_raw = dataset.users[list(RAW_USER_COLUMNS)], dataset.items[list(RAW_ITEM_COLUMNS)]
    split = make_split(dataset, "random", seed=0)
    users = sorted(split.test["user_id"].astype(str).unique())
    lists = pd.concat(
        [create_model(kind).fit(dataset, split).recommend(users, k=10).assign(model=kind) for kind in kinds],
        ignore_index=True,
    )[["model", "user_id", "rank", "item_id", "score"]]  # fmt: skip
    dataset.interactions[["user_id", "item_id", "rating", "timestamp"]].to_parquet(data / "interactions.parquet")
    users_raw.to_parquet(data / "users.parquet")
    items_raw.to_parquet(data / "items.parquet")
    lists.to_parquet(folder / "lists.parquet")
    split.test[["user_id", "item_id"]].to_parquet(folder / "test.parquet")
    models = {name: ImportedRecommender.from_recommendations(lists, dataset, split, system=name) for name in kinds}
    run_audit(dataset, split, models, config).write(folder / "pandas")
    return {"data": data, "lists": folder / "lists.parquet", "test": folder / "test.parquet",
            "pandas": folder / "pandas"}  # fmt: skip


# ---- no Spark needed --------------------------------------------------------------------------------
def test_poisson_weights_depend_on_user_and_round_only():
    hashes = np.array([-5, 0, 7, 2**62], dtype=np.int64)
    whole = poisson_weights(hashes, 0, 50)
    assert np.array_equal(whole[1:3, 20:30], poisson_weights(hashes[1:3], 20, 30))  # any slice of users/rounds
    assert not np.array_equal(whole[0], whole[1])
    many = poisson_weights(np.arange(20_000, dtype=np.int64), 0, 50)
    assert abs(many.mean() - 1) < 0.01 and abs(many.var() - 1) < 0.02
    assert abs((many == 0).mean() - np.exp(-1)) < 0.005  # P(X = 0) of Poisson(1)


def test_poisson_report_matches_slice_report_estimates_and_two_group_references():
    """Same estimates as SliceReport from sums; with two groups the rest and best p-values are identical."""
    rng = np.random.default_rng(0)
    values = pd.DataFrame({"ndcg": rng.random(200), "mrr": rng.random(200) + np.r_[np.zeros(100), np.full(100, 0.3)]})
    labels = pd.Series(np.r_[["F"] * 100, ["M"] * 100], index=values.index)
    reference = SliceReport(values, labels, rounds=50, min_group_size=30)
    weights = poisson_weights(np.arange(200, dtype=np.int64), 0, 400)
    both = np.hstack([values.to_numpy(), np.ones((200, 2))])
    sums = np.stack([(weights[labels == g].T @ both[(labels == g).to_numpy()]) for g in ("F", "M")])
    observed = np.stack([both[(labels == g).to_numpy()].sum(axis=0) for g in ("F", "M")])
    report = PoissonSliceReport(["F", "M"], ["ndcg", "mrr"], observed[:, :2], observed[:, 2:], sums[:, :, :2],
                                sums[:, :, 2:])  # fmt: skip
    assert np.allclose(report.by_group["value"], reference.by_group["value"], atol=1e-12)
    rest, best = report.gaps("rest").set_index("metric"), report.gaps("best").set_index("metric")
    assert np.allclose(rest.loc["mrr", "difference"].min(), -0.3, atol=0.15)
    assert rest.loc["mrr", "p_value"].max() < 0.01  # a real difference is found
    paired = best.reset_index().merge(rest.reset_index(), on=["metric", "group"], suffixes=("_best", "_rest"))
    assert len(paired) == 2 and np.array_equal(paired["p_value_best"], paired["p_value_rest"])


@pytest.mark.slow  # a fresh interpreter importing the CLI: ~5 s quiet, 30 s on a loaded machine
def test_importing_fairaudit_and_audit_help_never_load_pyspark():
    import subprocess
    import sys

    code = ("import sys, contextlib, io, fairaudit, fairaudit.spark\n"
            "from fairaudit.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['audit', '--help'])\n    except SystemExit:\n        pass\n"
            "print('pyspark' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False", done.stderr


def test_quantile_from_histogram_is_numpy_quantile():
    from fairaudit.spark._engine import _quantile_from_histogram

    rng = np.random.default_rng(1)
    for size in (1, 2, 7, 100):
        sample = rng.integers(0, 9, size).astype(float)
        values, weights = np.unique(sample, return_counts=True)
        for q in (1 / 3, 2 / 3, 0.5):
            assert _quantile_from_histogram(values, weights.astype(float), q) == np.quantile(sample, q)


def test_audit_folder_reads_and_writes_parquet_dataset_folders(tmp_path):
    """The Spark engine's partitioned tables: a folder of part files reads like the file, and write moves one in."""
    from fairaudit.audit import AuditResult
    from tests.audit_fixture import write_audit_folder

    folder = write_audit_folder(tmp_path / "audit")
    whole = pd.read_parquet(folder / "user_metrics.parquet")
    (folder / "user_metrics.parquet").unlink()
    parts = folder / "user_metrics.parquet"
    parts.mkdir()
    half = len(whole) // 2
    whole.iloc[:half].to_parquet(parts / "part-00000.parquet", index=False)
    whole.iloc[half:].to_parquet(parts / "part-00001.parquet", index=False)
    (parts / "_SUCCESS").write_text("")
    result = read_audit(folder)
    pd.testing.assert_frame_equal(result.user_metrics.reset_index(drop=True), whole)
    staged = tmp_path / "staged.parquet"
    parts.rename(staged)
    moved = AuditResult(**{**{f: getattr(result, f) for f in ("recommendations", "group_metrics", "gaps",
                                                              "item_exposure", "meta")}, "user_metrics": staged})  # fmt: skip
    moved.write(tmp_path / "again")
    assert (tmp_path / "again" / "user_metrics.parquet" / "part-00001.parquet").is_file()
    assert len(read_audit(tmp_path / "again").user_metrics) == len(whole)
    broken = tmp_path / "broken.parquet"
    broken.mkdir()
    whole.drop(columns="user_id").to_parquet(broken / "part-0.parquet")
    with pytest.raises(ValueError, match="lacks column 'user_id'"):
        AuditResult(**{**{f: getattr(result, f) for f in ("recommendations", "group_metrics", "gaps", "item_exposure",
                                                          "meta")}, "user_metrics": broken}).write(tmp_path / "no")  # fmt: skip


@pytest.mark.parametrize(
    "extra, message",
    [([], "--engine spark needs"), (["--test", "t.parquet", "--model", "m"], "--model is not available")],
)
def test_cli_spark_usage_errors_exit_2(tmp_path, capsys, extra, message):
    from fairaudit.cli import main

    code = main(["audit", "--engine", "spark", "--data", str(tmp_path), "--recommendations", "r.parquet",
                 "--out", str(tmp_path / "a"), *extra])  # fmt: skip
    assert code == 2 and message in capsys.readouterr().err


# ---- Spark ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def spark():
    from fairaudit.spark import spark_session

    session = spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "4", "spark.driver.memory": "1g",
                                              "spark.default.parallelism": "4"})  # fmt: skip
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("spark_inputs"))


@pytest.fixture(scope="module")
def audits(spark, inputs, tmp_path_factory):
    """(pandas audit, Spark audit written by the CLI, its folder)."""
    from fairaudit.cli import main

    out = tmp_path_factory.mktemp("spark_audit") / "audit"
    code = main(["audit", "--engine", "spark", "--data", str(inputs["data"]), "--recommendations",
                 str(inputs["lists"]), "--test", str(inputs["test"]), "--bootstrap", str(ROUNDS), "--out", str(out)])  # fmt: skip
    assert code == 0
    return read_audit(inputs["pandas"]), read_audit(out), out


@spark_group
@pytest.mark.slow
def test_folder_holds_partitioned_user_metrics(audits):
    _, spark_audit, out = audits
    assert (out / "user_metrics.parquet").is_dir() and list((out / "user_metrics.parquet").glob("part-*.parquet"))
    assert (out / "recommendations.parquet").is_dir()
    assert spark_audit.meta["engine"]["bootstrap"] == "poisson"
    assert spark_audit.meta["config"]["data"]["engine"] == "spark"


@spark_group
@pytest.mark.slow
def test_point_estimates_equal_the_pandas_engine(audits):
    pandas_audit, spark_audit, _ = audits
    assert_same_point_estimates(pandas_audit, spark_audit)


@spark_group
@pytest.mark.slow
def test_point_estimates_equal_the_pandas_engine_at_movielens_1m_size(spark, tmp_path):
    """6,040 users, 3,700 items, 1M interactions (MovieLens 1M's shape), popularity lists: every point
    estimate of the Spark engine equals the pandas engine's to 1e-9 (few rounds: CIs are not compared)."""
    from fairaudit.cli import main

    dataset, _ = generate_sample(seed=1, n_users=6040, n_items=3700, n_interactions=1_000_000)
    config = dataclasses.replace(CONFIG, bootstrap_rounds=20)
    inputs = write_inputs(tmp_path / "in", dataset, kinds=("popularity",), config=config)
    assert main(["audit", "--engine", "spark", "--data", str(inputs["data"]), "--recommendations",
                 str(inputs["lists"]), "--test", str(inputs["test"]), "--bootstrap", "20",
                 "--out", str(tmp_path / "spark")]) == 0  # fmt: skip
    pandas_audit, spark_audit = read_audit(inputs["pandas"]), read_audit(tmp_path / "spark")
    assert spark_audit.meta["n_evaluated_users"]["popularity"] > 6000
    assert_same_point_estimates(pandas_audit, spark_audit)


def assert_same_point_estimates(pandas_audit, spark_audit) -> None:
    """Group values, gaps, exposure shares and every per-user metric agree to 1e-9; same rows."""
    for table, keys, columns in (
        ("group_metrics", KEYS, ["value", "n_users"]),
        ("gaps", [*KEYS, "reference"], ["difference", "ratio"]),
        ("item_exposure", EXPOSURE_KEYS, ["exposure_share", "catalogue_share", "relevance_share"]),
    ):
        a, b = getattr(pandas_audit, table), getattr(spark_audit, table)
        merged = a.merge(b, on=keys, how="outer", suffixes=("_p", "_s"), indicator=True)
        assert (merged["_merge"] == "both").all(), (table, merged["_merge"].value_counts().to_dict())
        for column in columns:
            assert np.allclose(merged[f"{column}_p"], merged[f"{column}_s"], rtol=0, atol=1e-9, equal_nan=True), (table, column)
    per_user = pandas_audit.user_metrics.merge(spark_audit.user_metrics, on=["model", "user_id"], suffixes=("_p", "_s"))
    assert len(per_user) == len(pandas_audit.user_metrics) == len(spark_audit.user_metrics)
    for column in pandas_audit.user_metrics.columns.drop(["model", "user_id"]):
        left, right = per_user[f"{column}_p"], per_user[f"{column}_s"]
        if pd.api.types.is_numeric_dtype(left):
            assert np.allclose(left, right, rtol=0, atol=1e-9, equal_nan=True), column
        else:
            assert (left.astype(str) == right.astype(str)).all(), column


@spark_group
@pytest.mark.slow
def test_ci_bounds_and_p_values_agree_within_monte_carlo_error(audits):
    pandas_audit, spark_audit, _ = audits
    merged = pandas_audit.group_metrics.merge(spark_audit.group_metrics, on=KEYS, suffixes=("_p", "_s"))
    merged = merged[~merged["flagged_p"] & (merged["ci_high_p"] > merged["ci_low_p"])]
    width = merged["ci_high_p"] - merged["ci_low_p"]
    for bound in ("ci_low", "ci_high"):
        error = ((merged[f"{bound}_p"] - merged[f"{bound}_s"]).abs() / width).dropna()
        assert len(error) > 100 and error.max() < CI_TOLERANCE, error.describe()
    gaps = pandas_audit.gaps.merge(spark_audit.gaps, on=[*KEYS, "reference"], suffixes=("_p", "_s"))
    clear = gaps[(gaps["p_value_p"] < 0.002) | (gaps["p_value_p"] > 0.3)]
    assert ((clear["p_value_p"] < 0.05) == (clear["p_value_s"] < 0.05)).mean() > 0.97


@spark_group
@pytest.mark.slow
def test_planted_biases_found_and_null_control_not(audits):
    _, result, _ = audits
    truth = {e["id"]: e for e in json.loads((ROOT / "sample_data" / "ground_truth.json").read_text())["effects"]}
    effect = truth["gender_accuracy"]
    rows = result.gaps.query(f"attribute == 'gender' and group == '{effect['group']}' and reference == 'rest'")
    for model in ("popularity", "itemknn"):
        for metric in [effect["metric"], *effect["also"]]:
            row = rows.query(f"model == '{model}' and metric == '{metric}'").iloc[0]
            assert row["difference"] < 0 and row["ci_high"] < 0 and row["p_adjusted"] < 0.05, (model, metric)
    indie = truth["indie_underexposure"]
    shares = result.item_exposure.query(
        f"user_attribute == 'all' and item_attribute == '{indie['item_attribute']}' and item_group == '{indie['group']}'"
    )
    assert len(shares) == 4 and (shares["exposure_share"] < shares["catalogue_share"]).all()
    assert np.allclose(shares["catalogue_share"], indie["catalogue_share"], atol=0.01)
    assert truth["region_null"]["direction"] == "none"
    region = result.gaps.query("attribute == 'region'")
    assert len(region) and (region["p_adjusted"] >= 0.05).all(), region.nsmallest(3, "p_adjusted")


@spark_group
@pytest.mark.slow
def test_an_existing_folder_is_refused_before_any_spark_work(audits, inputs, capsys, monkeypatch):
    """Without --overwrite the finished audit folder is refused (exit 2) before the catalogue stage runs."""
    import fairaudit.spark._engine as engine
    from fairaudit.cli import main

    out = audits[2]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    monkeypatch.setattr(engine, "_catalogue", lambda *a, **k: pytest.fail("the Spark work ran"))
    code = main(["audit", "--engine", "spark", "--data", str(inputs["data"]), "--recommendations",
                 str(inputs["lists"]), "--test", str(inputs["test"]), "--out", str(out)])  # fmt: skip
    assert code == 2 and "--overwrite" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


@spark_group
@pytest.mark.slow
def test_report_and_compare_open_a_spark_audit(audits, tmp_path):
    from fairaudit.cli import main
    from fairaudit.data import read_csv

    _, _, out = audits
    assert main(["compare", str(out), "--out", str(tmp_path / "cmp")]) == 0
    comparison = read_csv(tmp_path / "cmp" / "comparison.csv")
    assert {"gender", "age_band"} <= set(comparison["attribute"]) and comparison["n_users"].gt(0).all()
    assert main(["report", "--audit", str(out), "--out", str(tmp_path / "audit.pdf"), "--no-charts"]) == 0
    assert (tmp_path / "audit.pdf").read_bytes().startswith(b"%PDF")


@spark_group
@pytest.mark.slow
def test_results_do_not_depend_on_partitioning(spark, inputs):
    """Per-user metrics, group sums (observed and every bootstrap round) and item counts with 1, 3 and 7 partitions."""
    from fairaudit.spark import load_inputs
    from fairaudit.spark._engine import (
        _applicable,
        _catalogue,
        _catalogue_rows,
        _group_sums,
        _per_user,
        _prepare_lists,
        _prepare_users,
    )  # fmt: skip

    config = AuditConfig(k=10, bootstrap_rounds=40, embedding_diversity=False, attributes=("gender", "gender*age_band"))
    loaded = load_inputs(spark, inputs["data"], inputs["lists"], inputs["test"])
    catalogue = _catalogue(loaded, config)  # catalogue-sized: counted once
    users = _prepare_users(loaded).select("user_id", "gender", "age_band").persist()
    recs = _prepare_lists(loaded, catalogue, users, config.k)
    recs = recs.join(loaded.test.select("user_id").distinct(), "user_id", "left_semi").persist()
    metrics = _applicable(catalogue.registry, catalogue.context)
    specs = {"all": (), "gender": ("gender",), "gender*age_band": ("gender", "age_band")}
    outcomes = []
    for partitions in (1, 3, 7):
        shuffled = dataclasses.replace(loaded, train=loaded.train.repartition(partitions),
                                       test=loaded.test.repartition(partitions))  # fmt: skip
        lists = recs.repartition(partitions)
        per_user = _per_user(lists, shuffled, catalogue, metrics, config).join(users, "user_id")
        per_user = per_user.repartition(partitions).persist()
        assert per_user.rdd.getNumPartitions() == partitions
        sums = _group_sums(per_user, metrics, specs, config)
        gini = _catalogue_rows(lists, catalogue, {"itemknn": 1, "popularity": 1}, config, spark)
        rows = per_user.orderBy("model", "user_id").collect()
        outcomes.append((sums, gini, np.array([[r[m] for m in metrics] for r in rows], dtype=float)))
        per_user.unpersist()
    first = outcomes[0]
    for sums, gini, values in outcomes[1:]:
        assert sums.keys() == first[0].keys()
        for key in sums:
            assert np.allclose(sums[key], first[0][key], rtol=1e-12, atol=1e-9), key
        assert np.allclose(gini[["value", "ci_low", "ci_high"]].to_numpy(float),
                           first[1][["value", "ci_low", "ci_high"]].to_numpy(float), atol=1e-12, equal_nan=True)  # fmt: skip
        assert np.allclose(values, first[2], atol=0, rtol=0, equal_nan=True)
