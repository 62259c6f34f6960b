"""fairaudit.service: the one audit orchestration (audit_models), holdout quality and DataSource."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest

from fairaudit.audit import AuditConfig, read_audit, run_audit
from fairaudit.cli import build_parser, main
from fairaudit.compare import add_comparison
from fairaudit.data import load_dataset, load_sample, make_split
from fairaudit.metrics import accuracy_metrics
from fairaudit.models import RERANK_KINDS, create_model, model_kinds
from fairaudit.service import (
    IMPORTED_KINDS,
    DataSource,
    ExplainOptions,
    audit_models,
    holdout_quality,
    trainable_kinds,
)
from tests.conftest import ROOT, make_tiny_dataset

#: The AuditResult fields that explanations fill in.
EXPLANATION_FIELDS = ("probes", "shap_drivers", "gap_decomposition", "explanations")
CONFIG = AuditConfig(k=5, bootstrap_rounds=40, min_group_size=5, embedding_diversity=False)
TABLES = ("recommendations", "user_metrics", "group_metrics", "gaps", "item_exposure")


@pytest.fixture(scope="module")
def tiny():
    dataset = make_tiny_dataset()
    split = make_split(dataset, "random", seed=0)
    models = {"pop": create_model("popularity").fit(dataset, split), "knn": create_model("itemknn").fit(dataset, split)}
    return dataset, split, models


def _same_tables(a, b) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    without_time = lambda meta: {k: v for k, v in meta.items() if k != "timestamp"}  # noqa: E731
    assert without_time(a.meta) == without_time(b.meta)


# ---- audit_models -----------------------------------------------------------------------------
def test_audit_models_gives_the_tables_of_run_audit(tiny):
    dataset, split, models = tiny
    one = {"pop": models["pop"]}
    result = audit_models(dataset, one, CONFIG)
    _same_tables(result, run_audit(dataset, split, one, CONFIG))
    assert result.comparison is None and all(getattr(result, name) is None for name in EXPLANATION_FIELDS)


def test_two_or_more_models_add_the_comparison(tiny):
    dataset, split, models = tiny
    lines: list[str] = []
    result = audit_models(dataset, models, CONFIG, progress=lines.append)
    direct = run_audit(dataset, split, models, CONFIG)
    _same_tables(result, direct)
    expected = add_comparison(direct)
    pd.testing.assert_frame_equal(result.comparison, expected.comparison, check_exact=True)
    pd.testing.assert_frame_equal(result.verdicts, expected.verdicts, check_exact=True)
    assert set(result.comparison["model_a"]) == {"pop"} and set(result.comparison["model_b"]) == {"knn"}
    assert "comparing the models" in lines
    against_knn = audit_models(dataset, models, CONFIG, baseline="knn")
    assert set(against_knn.comparison["model_a"]) == {"knn"}


def test_out_writes_a_readable_folder(tiny, tmp_path):
    dataset, _, models = tiny
    result = audit_models(dataset, models, CONFIG, out=tmp_path / "audit")
    folder = read_audit(tmp_path / "audit")
    _same_tables(folder, result)
    pd.testing.assert_frame_equal(folder.comparison, result.comparison, check_dtype=False)
    assert (tmp_path / "audit" / "comparison.csv").is_file() and (tmp_path / "audit" / "verdicts.csv").is_file()


def test_explain_adds_the_explanation_tables(tiny, tmp_path):
    dataset, _, models = tiny
    one = {"pop": models["pop"]}
    result = audit_models(dataset, one, CONFIG, explain=ExplainOptions(probe_users=20), out=tmp_path / "audit")
    for file in ("shap_drivers.csv", "gap_decomposition.csv", "probes.csv", "explanations.json"):
        assert (tmp_path / "audit" / file).is_file(), file
    # the explained attributes: the plain user columns behind the audited specs (incl. gender*age_band)
    assert set(result.probes["attribute"]) == {"gender", "age_band", "region"}
    assert result.explanations["probe_users"] == 20 and set(result.shap_drivers["model"]) == {"pop"}
    pd.testing.assert_frame_equal(read_audit(tmp_path / "audit").probes, result.probes)
    # popularity ignores attributes: every swapped profile gives the same list
    assert (result.probes.loc[result.probes["metric"] == "jaccard", "estimate"] == 1.0).all()
    # without a folder, the explanations are computed in a scratch folder and returned all the same
    scratch = audit_models(dataset, one, CONFIG, explain=20)
    pd.testing.assert_frame_equal(scratch.probes, result.probes)
    _same_tables(scratch, audit_models(dataset, one, CONFIG))


def test_models_trained_on_different_splits_are_refused(tiny):
    dataset, _, models = tiny
    other = create_model("popularity").fit(dataset, make_split(dataset, "random", seed=1))
    with pytest.raises(ValueError, match="different splits"):
        audit_models(dataset, {"pop": models["pop"], "other": other}, CONFIG)


# ---- holdout quality --------------------------------------------------------------------------
def test_holdout_quality_is_the_mean_over_test_users(tiny):
    dataset, split, models = tiny
    quality = holdout_quality(models["knn"], split, k=5)
    users = split.test["user_id"].unique()
    recs = models["knn"].recommend(users, k=5)
    pd.testing.assert_series_equal(
        quality, accuracy_metrics(recs, split.test, k=5).mean(), check_names=False, check_exact=True
    )
    # by hand: hit rate and recall from plain sets
    held_out = split.test.groupby("user_id")["item_id"].apply(set)
    listed = recs.groupby("user_id")["item_id"].apply(set)
    hits = {u: len(held_out[u] & listed.get(u, set())) for u in held_out.index}
    assert quality["hit_rate"] == pytest.approx(sum(h > 0 for h in hits.values()) / len(hits))
    assert quality["recall"] == pytest.approx(sum(hits[u] / len(held_out[u]) for u in hits) / len(hits))
    assert quality.name == "mean over test users"


# ---- DataSource -------------------------------------------------------------------------------
def test_data_source_round_trips_and_is_hashable(tmp_path):
    sources = [
        DataSource(),
        DataSource("folder", path="sample_data", mapping={"sex": "gender", "zipcode": "zip"}, name="s"),
        DataSource("files", files={"interactions": "a.csv", "users": "u.csv"}, mapping={"b": "a"}, name="a.csv"),
    ]
    for source in sources:
        again = DataSource.from_dict(json.loads(json.dumps(source.to_dict())))
        assert again == source and hash(again) == hash(source)
    assert len({*sources, *[DataSource.from_dict(s.to_dict()) for s in sources]}) == 3
    # the mapping's order does not matter: equal sources, one cache entry
    assert DataSource("folder", path="p", mapping={"a": "x", "b": "y"}) == DataSource(
        "folder", path="p", mapping={"b": "y", "a": "x"}
    )
    assert sources[2].to_dict(paths=False) == {"source": "files", "mapping": {"b": "a"}, "name": "a.csv"}
    with pytest.raises(ValueError, match="unknown"):
        DataSource("web")


def test_data_source_reads_the_config_data_of_older_audit_folders():
    cli = DataSource.from_dict({"path": "sample_data", "models": {"pop": "models/pop"}})
    assert cli == DataSource("folder", path="sample_data")
    run = DataSource.from_dict({"path": "data", "mapping": {"sex": "gender"}})
    assert run == DataSource("folder", path="data", mapping={"sex": "gender"})
    page = DataSource.from_dict({"name": "sample_data", "source": "sample", "mapping": {}})
    assert page.kind == "sample" and page.load().fingerprint() == load_sample().fingerprint()
    upload = DataSource.from_dict({"name": "plays.csv", "source": "files", "mapping": {}})
    with pytest.raises(ValueError, match="records no interactions file"):
        upload.load()


def test_data_source_loads_the_sample_three_ways():
    sample = load_sample()
    assert DataSource().load().fingerprint() == sample.fingerprint()
    assert DataSource("folder", path=str(ROOT / "sample_data")).load().fingerprint() == sample.fingerprint()
    files = {role: str(ROOT / "sample_data" / f"{role}.csv") for role in ("interactions", "users", "items")}
    assert DataSource("files", files=files).load().fingerprint() == sample.fingerprint()
    assert DataSource("folder", path="sample_data").resolved(ROOT).path == str((ROOT / "sample_data").resolve())


# ---- CLI --------------------------------------------------------------------------------------
def test_cli_train_offers_the_model_registry(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    kinds = [kind for kind in model_kinds() if kind not in RERANK_KINDS and kind not in IMPORTED_KINDS]
    assert kinds == list(trainable_kinds()) and {"llm", "popularity", "itemknn", "mf"} <= set(kinds)
    assert "{" + ",".join(kinds) + "}" in out.replace("\n", "").replace(" ", "")
    assert not any(kind in out for kind in (*RERANK_KINDS, *IMPORTED_KINDS))
    args = build_parser().parse_args(["train", "--out", "m"])
    assert (args.model, args.split, args.fairness, args.adversary_objective, args.pooling) == (
        "llm", "random", "none", "mean_matching", "sqrt"
    )  # fmt: skip


def test_cli_audit_defaults_are_the_audit_config_defaults():
    args = build_parser().parse_args(["audit", "--out", "x"])
    defaults = {f.name: f.default for f in fields(AuditConfig)}
    assert (args.k, args.bootstrap, args.seed, args.min_group_size, args.alpha) == (
        defaults["k"], defaults["bootstrap_rounds"], defaults["seed"], defaults["min_group_size"], defaults["alpha"]
    )  # fmt: skip
    assert (args.k, args.bootstrap, args.seed, args.min_group_size, args.alpha, args.probe_users) == (
        10, 1000, 0, 30, 0.05, 1000
    )  # fmt: skip


def _write_tiny(folder: Path) -> Path:
    dataset = make_tiny_dataset()
    folder.mkdir(parents=True)
    dataset.interactions.to_csv(folder / "interactions.csv", index=False)
    dataset.users.to_csv(folder / "users.csv", index=False)
    dataset.items.to_csv(folder / "items.csv", index=False)
    return folder


def test_cli_audit_records_its_data_source_and_reruns_an_older_audit_json(tmp_path):
    data = _write_tiny(tmp_path / "data")
    dataset = load_dataset(data)
    split = make_split(dataset, "random", seed=0)
    create_model("popularity").fit(dataset, split).save(tmp_path / "pop")
    args = ["audit", "--data", str(data), "--model", str(tmp_path / "pop"), "--k", "5", "--bootstrap", "30",
            "--min-group-size", "5", "--no-embeddings", "--out", str(tmp_path / "a1")]  # fmt: skip
    assert main(args) == 0
    meta = json.loads((tmp_path / "a1" / "audit.json").read_text())
    assert DataSource.from_dict(meta["config"]["data"]) == DataSource("folder", path=str(data))
    assert meta["config"]["data"]["models"] == {"pop": str(tmp_path / "pop")}
    # an audit.json written before DataSource: config.data = {path, models}
    meta["config"]["data"] = {"path": str(data), "models": {"pop": str(tmp_path / "pop")}}
    (tmp_path / "old.json").write_text(json.dumps(meta))
    assert main(["audit", "--config", str(tmp_path / "old.json"), "--out", str(tmp_path / "a2")]) == 0
    for file in ("group_metrics.csv", "gaps.csv", "item_exposure.csv"):
        assert (tmp_path / "a1" / file).read_bytes() == (tmp_path / "a2" / file).read_bytes()
