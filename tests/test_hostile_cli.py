"""Hostile input through the CLI's one error boundary (issue 13, options / configs / data half).

Every case runs ``fairaudit.cli.main([...])`` and checks the exit status (2 bad usage, 1 bad data or
files, 3 unexpected, 130 interrupted), that no traceback was printed, that the message names the
culprit (option, key path, file and column), and that nothing was written. Property-based tests
fuzz the CSV loader and the configuration schema.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fairaudit.cli._sample as sample_command
from conftest import make_tiny_dataset
from fairaudit.cli import EXIT_DATA, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, main
from fairaudit.data import DataError, load_dataset, make_split
from fairaudit.data import _validate as V
from fairaudit.models import create_model
from fairaudit.pipeline import ConfigError, RunConfig

from audit_fixture import write_audit_folder


# ---- shared inputs --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tiny dataset folder, a popularity and an itemknn model trained on it, and an audit folder."""
    root = tmp_path_factory.mktemp("hostile")
    data = root / "data"
    data.mkdir()
    tiny = make_tiny_dataset()
    tiny.interactions.to_csv(data / "interactions.csv", index=False)
    tiny.users.to_csv(data / "users.csv", index=False)
    tiny.items.drop(columns=["popularity_tier"], errors="ignore").to_csv(data / "items.csv", index=False)
    dataset = load_dataset(data)
    split = make_split(dataset, "random", seed=0)
    create_model("popularity").fit(dataset, split).save(root / "pop")
    create_model("itemknn").fit(dataset, split).save(root / "knn")
    write_audit_folder(root / "audit", n_users=120)
    return {"root": root, "data": data, "pop": root / "pop", "knn": root / "knn", "audit": root / "audit"}


def snapshot(*folders: Path) -> dict[str, int]:
    """Every path under ``folders`` with its modification time: equal snapshots = nothing written."""
    return {str(p): p.stat().st_mtime_ns for folder in folders for p in sorted(folder.rglob("*"))}


def run_cli(argv: list[str], capsys, *folders: Path) -> tuple[int, str, str]:
    """Run the CLI; assert it wrote nothing under ``folders``; return (status, stdout, stderr)."""
    before = snapshot(*folders)
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert snapshot(*folders) == before, "a refused command changed files"
    assert "Traceback" not in err and "Traceback" not in out, err
    return code, out, err


# ---- 1. options validated where they are parsed (exit 2, the option named) -------------------------
NO_CUDA = not torch.cuda.is_available()
OPTION_CASES = [
    # validate
    (["validate", "D", "--max-bytes", "0"], "--max-bytes"),
    (["validate", "D", "--max-bytes", "ten"], "--max-bytes"),
    (["validate", "D", "--encoding", "klingon"], "--encoding"),
    (["validate", "D", "--mapping", "userId"], "--mapping"),
    (["validate", "D", "--mapping", "=user_id"], "--mapping"),
    # sample
    (["sample", "--out", "O", "--users", "0"], "--users"),
    (["sample", "--out", "O", "--users", "-5"], "--users"),
    (["sample", "--out", "O", "--users", "ten"], "--users"),
    (["sample", "--out", "O", "--items", "0"], "--items"),
    (["sample", "--out", "O", "--items", "3"], "--items"),
    (["sample", "--out", "O", "--interactions", "0"], "--interactions"),
    (["sample", "--out", "O", "--seed", "-1"], "--seed"),
    (["sample", "--out", "O", "--seed", str(2**32)], "--seed"),
    (["sample", "--out", "O", "--seed", "1.5"], "--seed"),
    # train
    (["train", "--out", "O", "--k", "0"], "--k"),
    (["train", "--out", "O", "--k", "-1"], "--k"),
    (["train", "--out", "O", "--epochs", "0"], "--epochs"),
    (["train", "--out", "O", "--epochs", "-3"], "--epochs"),
    (["train", "--out", "O", "--device", "banana"], "--device"),
    pytest.param(["train", "--out", "O", "--device", "cuda"], "--device", marks=pytest.mark.skipif(not NO_CUDA, reason="CUDA present")),
    (["train", "--out", "O", "--device", "cuda:7"], "--device"),
    (["train", "--out", "O", "--seed", "-1"], "--seed"),
    (["train", "--out", "O", "--encoder", "no/such/folder"], "--encoder"),
    (["train", "--out", "O", "--fairness-weight", "-1"], "--fairness-weight"),
    (["train", "--out", "O", "--fairness-weight", "inf"], "--fairness-weight"),
    (["train", "--out", "O", "--fairness-weight", "nan"], "--fairness-weight"),
    (["train", "--out", "O", "--model", "rerank_mmr"], "--model"),
    (["train", "--out", "O", "--split", "bogus"], "--split"),
    # recommend
    (["recommend", "--model", "M", "--out", "R.csv", "--k", "0"], "--k"),
    (["recommend", "--model", "M", "--out", "R.csv", "--k", "-1"], "--k"),
    (["recommend", "--model", "M", "--out", "R.csv", "--k", "abc"], "--k"),
    # audit
    (["audit", "--out", "A", "--k", "0"], "--k"),
    (["audit", "--out", "A", "--k", "-1"], "--k"),
    (["audit", "--out", "A", "--alpha", "2"], "--alpha"),
    (["audit", "--out", "A", "--alpha", "0"], "--alpha"),
    (["audit", "--out", "A", "--alpha", "1"], "--alpha"),
    (["audit", "--out", "A", "--alpha", "nan"], "--alpha"),
    (["audit", "--out", "A", "--bootstrap", "0"], "--bootstrap"),
    (["audit", "--out", "A", "--seed", "-1"], "--seed"),
    (["audit", "--out", "A", "--min-group-size", "0"], "--min-group-size"),
    (["audit", "--out", "A", "--probe-users", "0"], "--probe-users"),
    (["audit", "--out", "A", "--probe-users", "-5"], "--probe-users"),
    # explain
    (["explain", "--model", "M", "--data", "D", "--user", "u1", "--top", "0"], "--top"),
    (["explain", "--model", "M", "--data", "D", "--user", "u1", "--max-history", "0"], "--max-history"),
    (["explain", "--model", "M", "--data", "D", "--user", "u1", "--seed", "-1"], "--seed"),
    # probe
    (["probe", "--model", "M", "--data", "D", "--attribute", "gender", "--out", "P", "--k", "0"], "--k"),
    (["probe", "--model", "M", "--data", "D", "--attribute", "gender", "--out", "P", "--users", "0"], "--users"),
    (["probe", "--model", "M", "--data", "D", "--attribute", "gender", "--out", "P", "--bootstrap", "0"], "--bootstrap"),
    (["probe", "--model", "M", "--data", "D", "--attribute", "gender", "--out", "P", "--seed", "-1"], "--seed"),
    # report
    (["report", "--audit", "A", "--out", "r.pdf", "--paper", "A3"], "--paper"),
    (["report", "--audit", "A", "--out", "r.pdf", "--min-ratio", "2"], "--min-ratio"),
    (["report", "--audit", "A", "--out", "r.pdf", "--min-ratio", "-0.1"], "--min-ratio"),
    (["report", "--audit", "A", "--out", "r.pdf", "--max-exposure-diff", "1.5"], "--max-exposure-diff"),
    (["report", "--audit", "A", "--out", "r.pdf", "--alpha", "2"], "--alpha"),
    (["report", "--audit", "A", "--out", "r.pdf", "--date", "2026-13-01"], "--date"),
    (["report", "--audit", "A", "--out", "r.pdf", "--date", "tomorrow"], "--date"),
    # compare
    (["compare", "A", "--rounds", "0"], "--rounds"),
    (["compare", "A", "--seed", "-1"], "--seed"),
    # run
    (["run", "C.yaml", "--date", "someday"], "--date"),
    # sweep
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--strengths", "a,b"], "--strengths"),
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--strengths", ","], "--strengths"),
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--strengths", "0,-1"], "--strengths"),
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--strengths", "0,inf"], "--strengths"),
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--k", "0"], "--k"),
    (["sweep", "--data", "D", "--mitigation", "difference", "--out", "S", "--epochs", "0"], "--epochs"),
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--candidates", "0"], "--candidates"),
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--bootstrap", "0"], "--bootstrap"),
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--seed", "-1"], "--seed"),
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--split", "bogus"], "--split"),
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--metric", "bogus"], "--metric"),
    (["sweep", "--data", "D", "--mitigation", "rerank_mmr", "--out", "S", "--base-model", "rerank_mmr"], "--base-model"),
    (["sweep", "--data", "D", "--mitigation", "bogus", "--out", "S"], "--mitigation"),
]


@pytest.mark.parametrize(("argv", "option"), OPTION_CASES)
def test_bad_option_is_refused_where_it_is_parsed(argv, option, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # relative dummy paths land here, and nothing may appear
    code, _, err = run_cli(argv, capsys, tmp_path)
    assert code == EXIT_USAGE
    assert f"argument {option}" in err


# ---- 2. options checked against the data once it is loaded (exit 2, option and what is present) ---
def _usage_cases(w: dict[str, Path], out: Path) -> dict[str, tuple[list, list[str]]]:
    data, pop, knn, audit = w["data"], w["pop"], w["knn"], w["audit"]
    probe = ["probe", "--model", pop, "--data", data, "--out", out / "p", "--bootstrap", "20"]
    sweep = ["sweep", "--data", data, "--out", out / "s", "--bootstrap", "20"]
    return {
        "probe-values": ([*probe, "--attribute", "gender", "--values", "X,F"], ["--values", "X", "F, M"]),
        "probe-attribute": ([*probe, "--attribute", "shoe_size"], ["--attribute", "shoe_size", "gender"]),
        "recommend-users": (["recommend", "--model", pop, "--data", data, "--out", out / "r.csv", "--users", "nobody"],
                            ["--users", "nobody"]),
        "explain-kind": (["explain", "--model", pop, "--data", data, "--user", "u1"], ["--model", "'popularity'", "itemknn"]),
        "explain-user": (["explain", "--model", knn, "--data", data, "--user", "nobody", "--no-text"], ["--user", "nobody"]),
        "explain-item": (["explain", "--model", knn, "--data", data, "--user", "u1", "--item", "nothing", "--no-text"],
                         ["--item", "nothing"]),
        "audit-attributes": (["audit", "--data", data, "--model", pop, "--out", out / "a", "--attributes", "gender,shoe"],
                             ["--attributes", "shoe", "gender"]),
        "audit-intersection": (["audit", "--data", data, "--model", pop, "--out", out / "a", "--attributes", "gender*shoe"],
                               ["--attributes", "shoe"]),
        "audit-no-model": (["audit", "--data", data, "--out", out / "a"], ["--data", "--model"]),
        "audit-no-data": (["audit", "--model", pop, "--out", out / "a"], ["--data", "--model"]),
        "sweep-attribute": ([*sweep, "--mitigation", "rerank_mmr", "--attribute", "shoe"], ["--attribute", "shoe"]),
        "sweep-item-attribute": ([*sweep, "--mitigation", "rerank_exposure", "--item-attribute", "colour"],
                                 ["--item-attribute", "colour", "provider"]),
        "sweep-strength": ([*sweep, "--mitigation", "rerank_exposure", "--strengths", "0,2"], ["--strengths", "[0, 1]"]),
        "compare-model-a": (["compare", audit, "--model-a", "bogus", "--out", out / "c"], ["--model-a", "bogus", "llm"]),
        "compare-model-b": (["compare", audit, "--model-b", "bogus", "--out", out / "c"], ["--model-b", "bogus", "popularity"]),
        "train-fairness-attribute": (["train", "--data", data, "--model", "llm", "--fairness", "difference",
                                      "--fairness-attribute", "shoe", "--out", out / "m"], ["--fairness-attribute", "shoe"]),
        "train-exposure-attribute": (["train", "--data", data, "--model", "llm", "--fairness", "exposure",
                                      "--exposure-attribute", "colour", "--out", out / "m"],
                                     ["--exposure-attribute", "colour", "provider"]),
    }  # fmt: skip


USAGE_CASES = list(_usage_cases({k: Path(k) for k in ("data", "pop", "knn", "audit")}, Path("o")))


@pytest.mark.parametrize("case", USAGE_CASES)
def test_option_not_matching_the_data_is_a_usage_error(case, world, tmp_path, capsys):
    argv, names = _usage_cases(world, tmp_path)[case]
    code, _, err = run_cli(argv, capsys, tmp_path, world["root"])
    assert code == EXIT_USAGE, err
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one line
    for name in names:
        assert name in err


# ---- 3. configurations: the whole file checked before any work (exit 2, key path named) ------------
BASE_CONFIG = {
    "data": {"path": "data"},
    "split": {"method": "random", "seed": 0, "params": {"test_fraction": 0.2}},
    "models": [{"name": "pop", "kind": "popularity"}],
    "audit": {"k": 5, "bootstrap_rounds": 20},
    "output": "out",
}


def _with(path: str, value, *, base=BASE_CONFIG) -> dict:
    """``base`` with the value at dotted ``path`` replaced (list positions as numbers)."""
    config = json.loads(json.dumps(base))
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = config
    for part in parents:
        node = node[part]
    node[last] = value
    return config


def _without(key: str) -> dict:
    return {k: v for k, v in BASE_CONFIG.items() if k != key}


CONFIG_CASES = {
    "top-unknown": ({**BASE_CONFIG, "colour": "red"}, ["unknown key(s) ['colour'] in 'top level'"]),
    "data-unknown": (_with("data.format", "csv"), ["'data'", "format"]),
    "split-unknown": (_with("split.shuffle", True), ["'split'", "shuffle"]),
    "model-unknown": (_with("models.0.epochs", 3), ["'models[0]'", "epochs"]),
    "params-unknown": (_with("models.0.params", {"colour": 1}), ["'models[0].params'", "colour"]),
    "audit-unknown": (_with("audit.kk", 10), ["'audit'", "kk"]),
    "explain-unknown": ({**BASE_CONFIG, "explain": {"users": 5}}, ["'explain'", "users"]),
    "report-unknown": ({**BASE_CONFIG, "report": {"font": "x"}}, ["'report'", "font"]),
    "thresholds-unknown": ({**BASE_CONFIG, "report": {"thresholds": {"max_gap": 1}}}, ["'report.thresholds'", "max_gap"]),
    "audit-k-text": (_with("audit.k", "ten"), ["audit.k", "integer"]),
    "audit-k-zero": (_with("audit.k", 0), ["audit.k", "greater than or equal to 1"]),
    "audit-k-bool": (_with("audit.k", True), ["audit.k"]),
    "audit-alpha": (_with("audit.alpha", 2), ["audit.alpha", "less than 1"]),
    "audit-rounds": (_with("audit.bootstrap_rounds", 0), ["audit.bootstrap_rounds"]),
    "audit-attributes-string": (_with("audit.attributes", "gender"), ["audit.attributes", "list"]),
    "audit-fdr": (_with("audit.fdr_family", "everything"), ["audit.fdr_family", "attribute"]),
    "audit-seed": (_with("audit.seed", -1), ["audit.seed"]),
    "models-string": (_with("models", "popularity"), ["models:", "list"]),
    "models-empty": (_with("models", []), ["models:"]),
    "models-kind-reranker": (_with("models.0.kind", "rerank_mmr"), ["models[0].kind", "popularity"]),
    "models-kind-unknown": (_with("models.0.kind", "banana"), ["models[0].kind", "banana"]),
    "models-kind-missing": (_with("models.0", {"name": "x"}), ["missing required key 'models[0].kind'"]),
    "params-epochs": (_with("models", [{"kind": "popularity"}, {"kind": "llm", "params": {"epochs": 0}}]),
                      ["models[1].params.epochs"]),
    "params-type": (_with("models.0", {"kind": "mf", "params": {"factors": "many"}}), ["models[0].params.factors"]),
    "params-device": (_with("models.0", {"kind": "mf", "params": {"device": "banana"}}),
                      ["models[0].params.device", "banana", "cpu"]),
    "params-literal": (_with("models.0", {"kind": "llm", "params": {"pooling": "max"}}), ["models[0].params.pooling", "sqrt"]),
    "names-unique": (_with("models", [{"kind": "popularity"}, {"kind": "popularity"}]), ["model names must be unique"]),
    "probe-users": ({**BASE_CONFIG, "explain": {"probe_users": -5}}, ["explain.probe_users"]),
    "paper": ({**BASE_CONFIG, "report": {"paper": "A3"}}, ["report.paper", "A4", "Letter"]),
    "threshold-range": ({**BASE_CONFIG, "report": {"thresholds": {"min_ratio": 1.5}}}, ["report.thresholds.min_ratio"]),
    "split-method": (_with("split.method", "bogus"), ["split.method", "random"]),
    "split-seed": (_with("split.seed", -1), ["split.seed"]),
    "split-fraction": (_with("split.params.test_fraction", 1.5), ["split.params.test_fraction"]),
    "split-param-unknown": (_with("split.params", {"n": 2}), ["'split.params'", "test_fraction"]),
    "output-outside": (_with("output", "../../elsewhere"), ["output", "../../elsewhere", "absolute"]),
    "output-number": (_with("output", 7), ["output"]),
    "data-missing": (_without("data"), ["missing required key 'data'"]),
    "output-missing": (_without("output"), ["missing required key 'output'"]),
    "data-number": (_with("data", 5), ["data:"]),
    "mapping-values": (_with("data.mapping", {"sex": 1}), ["data.mapping.sex"]),
    "all-at-once": (_with("audit", {"k": "ten", "alpha": 3}), ["audit.k", "audit.alpha"]),
}


def _config_folder(tmp_path: Path, world: dict[str, Path]) -> Path:
    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    (folder / "data").symlink_to(world["data"], target_is_directory=True)
    return folder


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_configuration_is_refused_before_any_work(case, world, tmp_path, capsys):
    config, names = CONFIG_CASES[case]
    folder = _config_folder(tmp_path, world)
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    code, _, err = run_cli(["run", path], capsys, tmp_path, world["root"])
    assert code == EXIT_USAGE, err
    assert str(path) in err and err.count("\n") == 1
    for name in names:
        assert name in err


RAW_CONFIG_CASES = {
    "yaml-syntax": (b"data: [unclosed\n", "not valid YAML"),
    "yaml-list": (b"- data\n- models\n", "mapping"),
    "yaml-python-tag": (b"data: !!python/object/apply:os.system ['echo hi']\nmodels: [popularity]\noutput: o\n",
                        "not valid YAML"),
    "not-utf8": (b"data: \xff\xfe\n", "UTF-8"),
    "empty-file": (b"", "mapping"),
}


@pytest.mark.parametrize("case", list(RAW_CONFIG_CASES))
def test_unreadable_configuration_is_a_usage_error(case, tmp_path, capsys):
    content, words = RAW_CONFIG_CASES[case]
    path = tmp_path / "run.yaml"
    path.write_bytes(content)
    code, _, err = run_cli(["run", path], capsys, tmp_path)
    assert code == EXIT_USAGE and str(path) in err and words in err, err


def test_every_config_error_names_its_key_path_at_once():
    config = _with("models", [{"kind": "popularity", "params": {"seed": -2}}, {"kind": "llm", "params": {"epochs": 0}}])
    config["audit"] = {"k": "ten"}
    config["report"] = {"paper": "A3"}
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_mapping(config)
    joined = "\n".join(caught.value.problems)
    for path in ("models[0].params.seed", "models[1].params.epochs", "audit.k", "report.paper"):
        assert path in joined


def test_accepted_configurations_still_round_trip():
    config = RunConfig.from_mapping({**BASE_CONFIG, "explain": True, "data": "data", "models": ["popularity", "mf"]})
    assert config.explain["probe_users"] >= 1 and [m.name for m in config.models] == ["popularity", "mf"]
    assert RunConfig.from_mapping(config.to_mapping()) == config


# ---- 4. data files (exit 1, file, column and rows named) ------------------------------------------
GOOD_ROWS = "u1,i1,4,1601808269\nu1,i2,3,1601808270\nu2,i1,5,1601808271\n"
HEADER = "user_id,item_id,rating,timestamp\n"
DATA_CASES = {
    "timestamp-1e19": (HEADER + GOOD_ROWS + "u2,i2,4,1e19\n", "timestamp", "row 5"),
    "timestamp-2^64": (HEADER + GOOD_ROWS + "u2,i2,4,18446744073709551616\n", "timestamp", "row 5"),
    "timestamp-9999": (HEADER + GOOD_ROWS + "u2,i2,4,9999-12-31\n", "timestamp", "9999-12-31"),
    "timestamp-inf": (HEADER + GOOD_ROWS + "u2,i2,4,inf\n", "timestamp", "inf"),
    "timestamp-minus-inf": (HEADER + GOOD_ROWS + "u2,i2,4,-inf\n", "timestamp", "-inf"),
    "timestamp-ms": (HEADER + GOOD_ROWS + "u2,i2,4,1601808269000\n", "timestamp", "milliseconds"),
    "timestamp-text": (HEADER + GOOD_ROWS + "u2,i2,4,yesterday\n", "timestamp", "yesterday"),
    "rating-inf": (HEADER + GOOD_ROWS + "u2,i2,inf,1601808272\n", "rating", "finite"),
    "rating-1e400": (HEADER + GOOD_ROWS + "u2,i2,1e400,1601808272\n", "rating", "1e400"),
    "rating-minus-inf": (HEADER + GOOD_ROWS + "u2,i2,-inf,1601808272\n", "rating", "finite"),
    "rating-text": (HEADER + GOOD_ROWS + "u2,i2,five,1601808272\n", "rating", "five"),
    "duplicate-item-header": ("user_id,item_id,item_id\nu1,i1,i2\nu2,i2,i3\n", "item_id", "2 times"),
    "duplicate-user-header": ("user_id,user_id,item_id\nu1,u2,i1\n", "user_id", "2 times"),
    "missing-column": ("user_id,rating\nu1,4\n", "item_id", "not found"),
    "empty-ids": (HEADER + "u1,,4,1601808269\n", "item_id", "row 2"),
    "header-only": (HEADER, "interactions.csv", "no rows"),
    "empty-file": ("", "interactions.csv", "could not be read"),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_file_is_refused_naming_file_and_column(case, tmp_path, capsys):
    content, column, detail = DATA_CASES[case]
    data = tmp_path / "data"
    data.mkdir()
    (data / "interactions.csv").write_text(content)
    # the validate command reports (exit 1) ...
    code, out, _ = run_cli(["validate", data], capsys, tmp_path)
    assert code == EXIT_DATA and "interactions.csv" in out and column in out and detail in out, out
    # ... and every command refuses it at the boundary, before writing anything
    code, _, err = run_cli(["train", "--data", data, "--model", "popularity", "--out", tmp_path / "model"], capsys, tmp_path)
    assert code == EXIT_DATA and err.startswith("error: ") and err.count("\n") == 1
    assert "interactions.csv" in err and column in err and detail in err, err


def test_a_mapping_onto_an_existing_column_is_refused(tmp_path, capsys):
    (tmp_path / "ratings.csv").write_text("user_id,item_id,movie\nu1,i1,m1\n")
    code, out, _ = run_cli(["validate", tmp_path / "ratings.csv", "--mapping", "movie=item_id"], capsys, tmp_path)
    assert code == EXIT_DATA and "ratings.csv" in out and "'item_id' appears 2 times" in out


def test_file_over_the_size_limit_names_the_limit(tmp_path, capsys):
    (tmp_path / "interactions.csv").write_text(HEADER + GOOD_ROWS)
    code, out, _ = run_cli(["validate", tmp_path, "--max-bytes", "10"], capsys, tmp_path)
    assert code == EXIT_DATA and "over the limit of 10" in out


def test_timestamps_in_range_and_iso_dates_still_load(tmp_path):
    (tmp_path / "interactions.csv").write_text(HEADER + GOOD_ROWS + "u2,i2,4,1900-01-01\nu3,i1,2,2099-12-31T23:59:59\n")
    ds = load_dataset(tmp_path)
    assert ds.interactions["timestamp"].tolist()[-2:] == [-2208988800, 4102444799]
    assert ds.interactions["timestamp"].dtype == "int64"


# ---- 5. missing or tampered files named on the command line (exit 1) ------------------------------
def _file_cases(w: dict[str, Path], tmp: Path) -> dict[str, tuple[list, str]]:
    bad_json, not_object, bad_config = tmp / "bad.json", tmp / "list.json", tmp / "config.json"
    bad_json.write_text("{not json")
    not_object.write_text("[1, 2]")
    bad_config.write_text(json.dumps({"config": {"k": "ten", "data": {}}}))
    return {
        "data-missing": (["train", "--data", tmp / "nothing", "--model", "popularity", "--out", tmp / "m"], "nothing"),
        "model-missing": (["recommend", "--model", tmp / "nomodel", "--data", w["data"], "--out", tmp / "r.csv"],
                          "nomodel"),
        "audit-config-missing": (["audit", "--config", tmp / "none.json", "--out", tmp / "a"], "none.json"),
        "audit-config-not-json": (["audit", "--config", bad_json, "--out", tmp / "a"], "--config"),
        "audit-config-list": (["audit", "--config", not_object, "--out", tmp / "a"], "'config' mapping"),
        "audit-config-types": (["audit", "--config", bad_config, "--out", tmp / "a"], "config.k"),
        "report-audit-missing": (["report", "--audit", tmp / "noaudit", "--out", tmp / "r.pdf"], "noaudit"),
        "compare-missing": (["compare", tmp / "noaudit"], "noaudit"),
        "run-config-missing": (["run", tmp / "none.yaml"], "none.yaml"),
        "validate-missing": (["validate", tmp / "nothing"], "nothing"),
    }  # fmt: skip


FILE_CASES = [
    "data-missing", "model-missing", "audit-config-missing", "audit-config-not-json", "audit-config-list",
    "audit-config-types", "report-audit-missing", "compare-missing", "run-config-missing", "validate-missing",
]


@pytest.mark.parametrize("case", FILE_CASES)
def test_missing_or_tampered_input_file_is_a_data_error(case, world, tmp_path, capsys):
    argv, name = _file_cases(world, tmp_path)[case]
    code, out, err = run_cli(argv, capsys, tmp_path, world["root"])
    assert code == EXIT_DATA, err
    assert name in (err or out)


# ---- 6. the boundary itself -----------------------------------------------------------------------
def _crash(args):
    raise RuntimeError("boom\nsecond line")


def test_unexpected_error_prints_one_line_and_writes_the_traceback(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sample_command, "run", _crash)
    monkeypatch.delenv("FAIRAUDIT_DEBUG", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = main(["sample", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL and "Traceback" not in err and err.count("\n") == 1
    assert "RuntimeError: boom; second line" in err and "--debug" in err
    written = list(tmp_path.glob("fairaudit-error-*.txt"))
    assert len(written) == 1 and str(written[0]) in err
    assert "Traceback" in written[0].read_text() and "_crash" in written[0].read_text()


@pytest.mark.parametrize("how", ["flag-before", "flag-after", "environment"])
def test_debug_prints_the_traceback(how, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sample_command, "run", _crash)
    argv = ["sample", "--out", str(tmp_path / "s")]
    if how == "environment":
        monkeypatch.setenv("FAIRAUDIT_DEBUG", "1")
    else:
        monkeypatch.delenv("FAIRAUDIT_DEBUG", raising=False)
        argv = ["--debug", *argv] if how == "flag-before" else [*argv, "--debug"]
    assert main(argv) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err


@pytest.mark.parametrize("error", [KeyError("user_id"), TypeError("unsupported operand"), IndexError("out of range")])
def test_programming_errors_are_not_disguised_as_input_errors(error, monkeypatch, tmp_path, capsys):
    def fail(args):
        raise error

    monkeypatch.setattr(sample_command, "run", fail)
    monkeypatch.delenv("FAIRAUDIT_DEBUG", raising=False)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["sample", "--out", str(tmp_path / "s")]) == EXIT_INTERNAL
    assert type(error).__name__ in capsys.readouterr().err


def test_ctrl_c_prints_one_line_and_returns_130(monkeypatch, tmp_path, capsys):
    def interrupt(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(sample_command, "run", interrupt)
    assert main(["sample", "--out", str(tmp_path / "s")]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"


def test_smallest_accepted_sample_sizes_work(tmp_path, capsys):
    assert main(["sample", "--out", str(tmp_path / "s"), "--users", "2", "--items", "10", "--interactions", "1"]) == 0
    assert load_dataset(tmp_path / "s").summary()["n_users"] == 2


def test_help_still_exits_zero(capsys):
    with pytest.raises(SystemExit) as done:
        main(["audit", "--help"])
    assert done.value.code == 0 and "--debug" in capsys.readouterr().out


# ---- 7. property-based fuzzing --------------------------------------------------------------------
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CELLS = st.one_of(
    st.sampled_from(["u1", "i1", "4", "3.5", "", "inf", "-inf", "nan", "1e19", "1e400", "9999-12-31", "2020-01-01",
                     "1601808269", "-1", '"a,b"', '"', "\t", "\x00", "é", "=cmd|' /C calc'!A0", "NA"]),
    st.text(alphabet=string.printable, max_size=8),
)  # fmt: skip
HEADERS = st.lists(st.sampled_from(["user_id", "item_id", "rating", "timestamp", "userId", "movieId", "x", ""]),
                   min_size=0, max_size=6)  # fmt: skip


@st.composite
def csv_texts(draw) -> str:
    header = draw(HEADERS)
    width = max(len(header), 1)
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=width + 1), max_size=8))
    sep = draw(st.sampled_from([",", ",", ";", "\t"]))
    return "\n".join([sep.join(header), *(sep.join(row) for row in rows)]) + draw(st.sampled_from(["", "\n", "\r\n"]))


def _load_or_data_error(folder: Path) -> None:
    try:
        dataset = load_dataset(folder)
    except DataError as err:
        assert err.issues and all(issue.file for issue in err.issues)
    else:
        assert dataset.interactions["timestamp"].between(*V.timestamp_bounds()).all() if "timestamp" in dataset.interactions else True
        assert not dataset.interactions.empty


@FUZZ
@given(content=st.binary(max_size=400))
def test_fuzz_random_bytes_load_or_raise_data_error(content, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_bytes")
    (folder / "interactions.csv").write_bytes(content)
    _load_or_data_error(folder)


@FUZZ
@given(text=csv_texts())
def test_fuzz_csv_like_text_loads_or_raises_data_error(text, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_csv")
    (folder / "interactions.csv").write_text(text, encoding="utf-8")
    _load_or_data_error(folder)


KEYS = st.sampled_from(["data", "split", "models", "audit", "explain", "report", "output", "path", "mapping", "kind",
                        "name", "params", "k", "alpha", "method", "seed", "epochs", "paper", "thresholds",
                        "probe_users", "attributes", "min_ratio", "device", "colour"])  # fmt: skip
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**40), st.floats(allow_nan=True),
                    st.sampled_from(["popularity", "llm", "random", "A4", "A3", "data", "out", "../../x", "cpu", "ten"]),
                    st.text(max_size=6))  # fmt: skip
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=12)  # fmt: skip
SECTIONS = {
    "data": st.one_of(st.just("data"), st.fixed_dictionaries({"path": st.just("data")}, optional={"mapping": VALUES})),
    "models": st.one_of(st.lists(st.one_of(st.sampled_from(["popularity", "mf", "bogus"]), st.dictionaries(KEYS, VALUES, max_size=4)),
                                 max_size=3), VALUES),
    "output": st.one_of(st.sampled_from(["out", "../../x", "/abs/out", ""]), VALUES),
}  # fmt: skip
TOP_LEVEL = ("data", "split", "models", "audit", "explain", "report", "output")


@FUZZ
@given(
    required=st.fixed_dictionaries({}, optional=SECTIONS),
    other=st.dictionaries(st.one_of(KEYS, st.text(max_size=5)), VALUES, max_size=4),
)
def test_fuzz_config_gives_a_run_config_or_names_a_key(required, other):
    raw = {**other, **required}
    try:
        config = RunConfig.from_mapping(raw)
    except ConfigError as err:
        assert err.problems
        for problem in err.problems:
            assert problem.startswith(("unknown key", "missing required key", "expected a mapping", *TOP_LEVEL)), problem
    else:
        assert RunConfig.from_mapping(config.to_mapping()) == config
