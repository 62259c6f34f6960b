"""Privacy-safe exports: seeded Laplace noise at the stated scale, suppression, release folders, no texts in audits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairaudit.audit import TABLES, AuditConfig, run_audit
from fairaudit.cli import main
from fairaudit.data import Dataset, generate_sample, random_holdout
from fairaudit.models import create_model
from fairaudit.privacy import (
    EXPORT_COLUMNS,
    export_private,
    is_release_folder,
    private_group_metrics,
    read_release,
)


def _table(sizes: dict[str, int], models=("m",), value: float = 0.25) -> pd.DataFrame:
    rows = []
    for model in models:
        rows.append((model, "all", "all", "ndcg", value, sum(sizes.values())))
        rows += [(model, "gender", group, "ndcg", value, n) for group, n in sizes.items()]
    return pd.DataFrame(rows, columns=["model", "attribute", "group", "metric", "value", "n_users"])


def test_noise_is_seeded_and_reproducible():
    table = _table({"F": 500, "M": 480})
    first = private_group_metrics(table, epsilon=1.0, seed=11)
    again = private_group_metrics(table, epsilon=1.0, seed=11)
    other = private_group_metrics(table, epsilon=1.0, seed=12)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert not first.table["n_users"].equals(other.table["n_users"])
    assert list(first.table.columns) == list(EXPORT_COLUMNS)
    assert "11" not in json.dumps(first.manifest) and first.manifest["seed"] == "withheld"


def test_noise_scale_matches_the_stated_budget():
    # 4000 groups of one attribute: one family per spec ("all", "gender") -> L1 = 2 * 2, b = 4 / epsilon.
    sizes = {f"g{i}": 1000 for i in range(4000)}
    release = private_group_metrics(_table(sizes), epsilon=0.5, seed=0)
    scale = release.manifest["laplace_scale"]
    assert scale == pytest.approx(8.0) and release.manifest["sensitivity_l1"] == 4
    noise = release.table.loc[release.table["attribute"] == "gender", "n_users"].to_numpy() - 1000
    assert np.var(noise) == pytest.approx(2 * scale**2, rel=0.1)  # Laplace(b): variance 2 b^2 (+1/12 rounding)
    assert abs(np.mean(noise)) < 0.5
    # Value noise: noisy sum / noisy count around 0.25 with the stated spread.
    values = release.table.loc[release.table["attribute"] == "gender", "value"].to_numpy()
    assert np.std(values) == pytest.approx(release.table["noise_sd"].iloc[1], rel=0.15)
    # More families (two models, two metrics) split the same budget: the scale grows with their product.
    two = pd.concat([_table({"F": 50}, models=("a", "b")), _table({"F": 50}, models=("a", "b")).assign(metric="recall")])
    assert private_group_metrics(two, epsilon=0.5, metrics=("ndcg", "recall"), seed=0).manifest["laplace_scale"] == 32


def test_small_groups_are_suppressed_on_the_noisy_count():
    release = private_group_metrics(_table({"F": 900, "M": 880, "X": 4}), epsilon=4.0, seed=1)
    rows = release.table.set_index("group")
    assert bool(rows.loc["X", "suppressed"]) and np.isnan(rows.loc["X", "value"])
    assert not rows.loc[["F", "M", "all"], "suppressed"].any()
    assert rows.loc[["F", "M"], "value"].between(0.2, 0.3).all()
    assert release.manifest["n_suppressed"] == 1


def test_bad_budget_and_unbounded_metrics_are_refused():
    with pytest.raises(ValueError, match="epsilon must be a positive"):
        private_group_metrics(_table({"F": 50}), epsilon=0.0)
    with pytest.raises(ValueError, match="cannot be released privately"):
        private_group_metrics(_table({"F": 50}), epsilon=1.0, metrics=("novelty",))


@pytest.fixture(scope="module")
def audit_with_texts(tmp_path_factory):
    data, _ = generate_sample(n_users=120, n_items=60, n_interactions=2400, seed=2)
    texts = pd.DataFrame({"user_id": data.users["user_id"].astype(str),
                          "text": [f"SECRET-PROFILE-{i} I adore obscure horror films" for i in range(len(data.users))]})
    data = Dataset(data.interactions, data.users, data.items, name="with-texts", texts=texts)
    split = random_holdout(data, seed=0)
    model = create_model("popularity").fit(data, split)
    folder = tmp_path_factory.mktemp("audit") / "audit"
    run_audit(data, split, {"popularity": model}, AuditConfig(bootstrap_rounds=20, attributes=("gender",), embedding_diversity=False)).write(folder)
    return data, folder


def test_an_audit_folder_holds_no_user_texts_and_only_the_documented_per_user_files(audit_with_texts):
    data, folder = audit_with_texts
    known = {schema.file for schema in TABLES.values()} | {"audit.json", "explanations.json"}
    files = sorted(p.name for p in folder.iterdir())
    assert set(files) <= known, files
    per_user = {f for f in files if f.endswith(".parquet")}
    assert per_user == {"recommendations.parquet", "user_metrics.parquet"}
    needles = ["SECRET-PROFILE-", "obscure horror"]
    for path in folder.iterdir():
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            blob = " ".join(frame.astype(str).to_numpy().ravel()) + " ".join(frame.columns)
        else:
            blob = path.read_text(encoding="utf-8")
        assert not any(n in blob for n in needles), path.name
    columns = pd.read_parquet(folder / "user_metrics.parquet").columns
    assert "text" not in columns and "gender" in columns and "age_band" not in columns  # only what was asked


def test_release_folder_holds_only_noisy_aggregates(audit_with_texts, tmp_path):
    data, folder = audit_with_texts
    out = tmp_path / "release"
    release = export_private(folder, out, epsilon=2.0, seed=5)
    assert sorted(p.name for p in out.iterdir()) == ["group_metrics.csv", "release.json"]
    assert is_release_folder(out) and not is_release_folder(folder)
    back = read_release(out)
    pd.testing.assert_frame_equal(back.table, release.table, check_dtype=False)
    assert back.manifest["epsilon"] == 2.0 and back.manifest["mechanism"] == "laplace"
    text = (out / "group_metrics.csv").read_text()
    assert not any(u in text.split(",") for u in data.users["user_id"].astype(str).head(50))
    with pytest.raises(Exception, match="exist|overwrite"):
        export_private(folder, out, epsilon=2.0, seed=5)
    assert main(["privacy", "--export", str(folder), "--epsilon", "1", "--seed", "3", "--out", str(out),
                 "--overwrite", "--pdf", "--threads", "1"]) == 0  # fmt: skip
    assert (out / "release.pdf").read_bytes().startswith(b"%PDF")
    assert main(["privacy", "--export", str(folder), "--out", str(out), "--threads", "1"]) == 2  # no --epsilon
