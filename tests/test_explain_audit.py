"""Explanation tables added to a real audit folder."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from fairaudit.audit import AuditConfig, read_audit, run_audit, write_audit
from fairaudit.cli import main
from fairaudit.compare import add_comparison
from fairaudit.data import make_split
from fairaudit.explain import (
    DECOMPOSITION_COLUMNS,
    DRIVER_COLUMNS,
    EXPLANATION_FILES,
    PROBE_COLUMNS,
    add_explanations_to_audit,
)
from fairaudit.models import create_model
from tests.conftest import make_tiny_dataset


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    data = make_tiny_dataset(n_users=80, n_items=30)
    split = make_split(data, "random", seed=0)
    models = {"pop": create_model("popularity").fit(data, split), "knn": create_model("itemknn").fit(data, split)}
    config = AuditConfig(k=5, attributes=("gender", "age_band"), bootstrap_rounds=50, embedding_diversity=False)
    folder = write_audit(run_audit(data, split, models, config), tmp_path_factory.mktemp("audit"))
    return data, split, models, folder


def test_surrogate_tables_are_written_per_model_with_their_fit(audited):
    data, _, _, folder = audited
    written = add_explanations_to_audit(folder, data, metrics=("ndcg", "recall"), attributes=("gender", "age_band"))
    assert set(written) == {"drivers", "decomposition", "settings"}  # no models given: no probes
    drivers = pd.read_csv(folder / EXPLANATION_FILES["drivers"])
    assert list(drivers.columns) == ["model", *DRIVER_COLUMNS]
    assert set(drivers["model"]) == {"pop", "knn"} and set(drivers["metric"]) == {"ndcg", "recall"}
    assert drivers.groupby(["model", "metric"])["r2"].nunique().eq(1).all()
    assert {"gender", "age_band", "n_interactions", "mean_popularity", "genre_entropy", "account_age_days"} == set(
        drivers["feature"]
    )
    decomposition = pd.read_csv(folder / EXPLANATION_FILES["decomposition"])
    assert list(decomposition.columns) == ["model", *DECOMPOSITION_COLUMNS]
    assert set(decomposition["attribute"]) == {"gender", "age_band"}
    settings = json.loads((folder / EXPLANATION_FILES["settings"]).read_text())
    assert settings["seed"] == 0 and settings["bootstrap_rounds"] == 50 and settings["k"] == 5


def test_probes_are_added_for_every_model_and_attribute(audited):
    data, split, models, folder = audited
    add_explanations_to_audit(folder, data, models, attributes=("gender", "age_band"), probe_users=40)
    probes = pd.read_csv(folder / EXPLANATION_FILES["probes"])
    assert list(probes.columns) == ["model", *PROBE_COLUMNS]
    pairs = set(map(tuple, probes[["model", "attribute"]].drop_duplicates().to_numpy()))
    assert pairs == {("pop", "gender"), ("pop", "age_band"), ("knn", "gender"), ("knn", "age_band")}
    assert (probes.loc[probes["metric"] == "jaccard", "estimate"] == 1.0).all()  # both ignore attributes


def test_explanations_are_written_as_fields_of_the_audit_folder(audited, tmp_path):
    data, _, models, folder = audited
    copy = shutil.copytree(folder, tmp_path / "audit")
    write_audit(add_comparison(read_audit(copy)), copy, overwrite=True)
    add_explanations_to_audit(copy, data, {"pop": models["pop"]}, attributes=("gender",), probe_users=20)
    audit = read_audit(copy)
    assert audit.comparison is not None  # the rest of the folder is kept
    assert list(audit.shap_drivers.columns) == ["model", *DRIVER_COLUMNS] and audit.explanations["k"] == 5
    assert set(audit.probes["model"]) == {"pop"} and audit.probes["group"].equals(audit.probes["original_value"])
    add_explanations_to_audit(copy, data, attributes=("gender",))  # without models the probes stay
    assert read_audit(copy).probes is not None


def test_unknown_metric_and_missing_audit_are_refused(audited, tmp_path):
    data, _, _, folder = audited
    with pytest.raises(ValueError, match="Metric 'ndcg2' is not a column of user_metrics.parquet"):
        add_explanations_to_audit(folder, data, metrics=("ndcg2",))
    with pytest.raises(FileNotFoundError, match="lacks user_metrics.parquet"):
        add_explanations_to_audit(tmp_path, data)


def test_audit_cli_with_explain_writes_drivers_and_probes(tmp_path):
    data = make_tiny_dataset(n_users=80, n_items=30)
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("interactions", "users", "items"):
        getattr(data, name).to_csv(folder / f"{name}.csv", index=False)
    assert main(["train", "--data", str(folder), "--model", "popularity", "--out", str(tmp_path / "pop")]) == 0
    args = ["audit", "--data", str(folder), "--model", str(tmp_path / "pop"), "--out", str(tmp_path / "audit"),
            "--k", "5", "--bootstrap", "50", "--attributes", "gender,gender*age_band", "--no-embeddings",
            "--explain", "--probe-users", "40"]  # fmt: skip
    assert main(args) == 0
    probes = pd.read_csv(tmp_path / "audit" / EXPLANATION_FILES["probes"])
    assert set(probes["attribute"]) == {"gender", "age_band"}
    assert (probes.loc[probes["metric"] == "jaccard", "estimate"] == 1.0).all()
    drivers = pd.read_csv(tmp_path / "audit" / EXPLANATION_FILES["drivers"])
    assert set(drivers["model"]) == {"pop"}
