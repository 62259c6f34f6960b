"""Paired model comparison: hand-computed differences, exact pairing, a loop reference for the
bootstrap, planted gap recovery, verdict wording, refusal of mismatched audits, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audit_fixture import make_users, write_audit_folder
from fairaudit.cli import main
from fairaudit.audit import read_audit, write_audit
from fairaudit.compare import _DIFFERENT_DATA, _ONE_MODEL, add_comparison, compare_audits, compare_models, verdicts
from fairaudit.metrics._stats import seeded_rng


def frame(a, b, metric="ndcg"):
    users = [f"u{i}" for i in range(len(a))]
    return pd.DataFrame({"model": ["A"] * len(a) + ["B"] * len(b), "user_id": users * 2,
                         metric: np.r_[a, b]})


def pick(table, attribute, group, quantity, metric="ndcg"):
    rows = table[(table["attribute"] == attribute) & (table["group"] == group) & (table["quantity"] == quantity)
                 & (table["metric"] == metric)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_hand_computed_tiny_case():
    um = frame([0.1, 0.2, 0.3, 0.4], [0.2, 0.2, 0.5, 0.4])
    groups = {"g": pd.Series(["F", "F", "M", "M"], index=[f"u{i}" for i in range(4)])}
    out = compare_models(um, model_a="A", model_b="B", groups=groups, rounds=200, min_group_size=1)
    overall = pick(out, "all", "all", "value")
    assert (overall.a, overall.b, overall.difference) == pytest.approx((0.25, 0.325, 0.075))
    female = pick(out, "g", "F", "value")
    assert (female.a, female.b, female.difference, female.n_users) == pytest.approx((0.15, 0.2, 0.05, 2))
    gap = pick(out, "g", "F", "gap")  # A: 0.15 - 0.35, B: 0.2 - 0.45
    assert (gap.a, gap.b, gap.difference) == pytest.approx((-0.2, -0.25, -0.05))
    directed = pick(out, "g", "F", "directed_gap")  # on A's side: |gap_A| = 0.2, B's gap 0.25 -> B widens it
    assert (directed.a, directed.b, directed.difference) == pytest.approx((0.2, 0.25, 0.05))


def test_users_defined_for_only_one_model_are_left_out():
    um = frame([0.1, np.nan, 0.3], [0.2, 0.9, np.nan])
    overall = pick(compare_models(um, model_a="A", model_b="B", rounds=20), "all", "all", "value")
    assert (overall.a, overall.b, overall.n_users) == pytest.approx((0.1, 0.2, 1))


def test_bootstrap_is_paired():
    rng = np.random.default_rng(0)
    a = rng.random(300)
    groups = {"g": pd.Series(np.where(np.arange(300) % 3 == 0, "F", "M"), index=[f"u{i}" for i in range(300)])}
    out = compare_models(frame(a, a + 0.03), model_a="A", model_b="B", groups=groups, rounds=300)
    for _, row in out[out["quantity"] == "value"].iterrows():
        assert row.difference == pytest.approx(0.03)
        assert (row.ci_low, row.ci_high) == pytest.approx((0.03, 0.03), abs=1e-12)  # unpaired: +-0.06 wide
    gaps = out[out["quantity"] == "gap"]
    assert np.allclose(gaps[["difference", "ci_low", "ci_high"]].to_numpy(), 0.0, atol=1e-12)


def test_bootstrap_matches_a_loop_reference():
    rng = np.random.default_rng(1)
    a, b = rng.random(50), rng.random(50)
    out = compare_models(frame(a, b), model_a="A", model_b="B", rounds=400, seed=5)
    order = np.argsort([f"u{i}" for i in range(50)])  # users are resampled in sorted-id order
    a, b = a[order], b[order]
    draws = seeded_rng(5, "compare", "all", "all").integers(0, 50, size=(400, 50))
    reference = [b[idx].mean() - a[idx].mean() for idx in draws]
    row = pick(out, "all", "all", "value")
    assert (row.ci_low, row.ci_high) == pytest.approx(tuple(np.quantile(reference, [0.025, 0.975])), abs=1e-12)


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory):
    return write_audit_folder(tmp_path_factory.mktemp("audit"))


def test_planted_gap_reduction_is_recovered(audit_dir):
    result = compare_audits(audit_dir, users=make_users(400, 0), rounds=300)
    verdict = result.verdicts.set_index(["attribute", "metric"]).loc[("gender", "ndcg")]
    # llm disadvantages women by ~0.05 NDCG; popularity has no gender gap but lower accuracy.
    assert verdict.gap_reduction_ci_low > 0 and verdict.cost_ci_low > 0
    assert verdict.verdict.startswith("popularity improves the gender NDCG@10 gap (largest for ")
    assert "at a cost of" in verdict.verdict and verdict.verdict.endswith("NDCG@10.")
    region = result.verdicts.set_index(["attribute", "metric"]).loc[("region", "ndcg")]
    assert "does not change" in region.verdict  # no planted region effect
    assert result.notes == []


def test_audit_folder_alone_gives_the_same_per_group_cis_as_the_users_table(audit_dir):
    alone = compare_audits(audit_dir, rounds=100)
    with_users = compare_audits(audit_dir, users=make_users(400, 0), rounds=100)
    assert alone.notes == []
    pd.testing.assert_frame_equal(alone.table, with_users.table)
    pd.testing.assert_frame_equal(alone.verdicts, with_users.verdicts)
    assert set(alone.table["attribute"]) == {"all", "gender", "age_band", "region", "gender*age_band"}
    female = pick(alone.table, "gender", "F", "directed_gap")  # llm's planted gap for women is ~0.05
    assert female.a > 0.03 and female.ci_low < female.difference < female.ci_high and female.ci_high < 0
    assert not (alone.table["metric"].isin(["gender", "age_band", "region"])).any()  # attributes are not metrics


def test_add_comparison_stores_what_compare_audits_computes_with_the_audit_settings(audit_dir, tmp_path):
    audit = read_audit(audit_dir)
    added = add_comparison(audit)
    assert audit.comparison is None and audit.verdicts is None  # the argument is left unchanged
    expected = compare_audits(audit_dir)  # rounds, seed, min_group_size and K of audit.json
    pd.testing.assert_frame_equal(added.comparison, expected.table, check_exact=True)
    pd.testing.assert_frame_equal(added.verdicts, expected.verdicts, check_exact=True)
    back = read_audit(write_audit(added, tmp_path / "audit"))
    pd.testing.assert_frame_equal(back.comparison, expected.table, check_exact=True)
    assert set(back.comparison["model_a"]) == {"llm"} and set(back.comparison["model_b"]) == {"popularity"}


def test_add_comparison_baseline_and_one_model(audit_dir, tmp_path):
    audit = read_audit(audit_dir)
    other = add_comparison(audit, baseline="popularity")
    assert set(other.comparison["model_a"]) == {"popularity"} and set(other.verdicts["model_b"]) == {"llm"}
    with pytest.raises(ValueError, match="Model 'mf' is not in the audit"):
        add_comparison(audit, baseline="mf")
    single = read_audit(write_audit_folder(tmp_path / "one", n_users=120, models=("llm",)))
    assert add_comparison(single) is single and single.comparison is None


def test_older_folder_without_attribute_columns_gives_overall_rows_and_a_note(tmp_path):
    folder = write_audit_folder(tmp_path / "old", n_users=120, user_attributes=False)
    meta = json.loads((folder / "audit.json").read_text())
    meta["config"]["attributes"] = None  # older audits recorded None for the default attributes ...
    (folder / "audit.json").write_text(json.dumps(meta))
    result = compare_audits(folder, rounds=50)
    assert set(result.table["attribute"]) == {"all"}
    assert result.verdicts.empty and "--data" in result.notes[0]
    # ... so the specs are read from group_metrics.csv
    assert result.notes[0].startswith("Per-group comparison skipped for gender, age_band, region, gender*age_band: "
                                      "user attribute column(s) gender, age_band, region are not in")
    assert set(compare_audits(folder, users=make_users(120, 0), rounds=50).table["attribute"]) > {"all"}


def test_verdict_wording_for_lower_is_better_metrics():
    table = pd.DataFrame({"model_a": "A", "model_b": "B", "attribute": ["all", "g"], "group": ["all", "F"],
                          "quantity": ["value", "directed_gap"], "metric": "miscalibration", "n_users": 50,
                          "a": [0.5, 0.1], "b": [0.3, 0.12], "difference": [-0.2, 0.02],
                          "ci_low": [-0.25, 0.01], "ci_high": [-0.15, 0.03], "significant": True})
    sentence = verdicts(table).iloc[0]["verdict"]
    assert sentence == ("B widens the g Miscalibration (KL)@10 gap (largest for F) by 0.020 [0.010, 0.030] "
                        "and also improves Miscalibration (KL)@10 by 0.200 [0.150, 0.250].")


def _split_of(folder, split):
    meta = json.loads((folder / "audit.json").read_text())
    meta["config"]["split"] = split
    (folder / "audit.json").write_text(json.dumps(meta))


def test_two_folders_same_data_are_compared_and_names_kept_apart(tmp_path):
    a = write_audit_folder(tmp_path / "a", n_users=120, models=("llm",))
    b = write_audit_folder(tmp_path / "b", n_users=120, models=("llm",))
    result = compare_audits(a, b, rounds=50)
    assert set(result.table["model_b"]) == {"llm (b)"}
    assert pick(result.table, "all", "all", "value").difference == pytest.approx(0.0)


def test_mismatched_audits_are_refused(tmp_path):
    a = write_audit_folder(tmp_path / "a", n_users=120, models=("llm",))
    other = write_audit_folder(tmp_path / "other", n_users=120, models=("mf",), data_fingerprint="ffff")
    with pytest.raises(ValueError) as err:
        compare_audits(a, other)
    assert str(err.value) == _DIFFERENT_DATA.format(a, other, "data d41d8cd98f00b204 vs ffff")
    resplit = write_audit_folder(tmp_path / "resplit", n_users=120, models=("mf",))
    _split_of(resplit, {"method": "temporal", "seed": 0, "params": {"n": 1}})
    with pytest.raises(ValueError) as err:
        compare_audits(a, resplit)
    assert str(err.value) == _DIFFERENT_DATA.format(a, resplit, "same data, different splits")
    with pytest.raises(ValueError) as err:
        compare_audits(a)
    assert str(err.value) == _ONE_MODEL.format(a, ["llm"])


def test_cli_prints_and_writes_csvs(audit_dir, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(audit_dir), "--out", str(out), "--rounds", "50"]) == 0
    captured = capsys.readouterr()
    assert "ndcg" in captured.out and "popularity improves the gender" in captured.out and captured.err == ""
    table = pd.read_csv(out / "comparison.csv", keep_default_na=False)
    assert {"model_a", "model_b", "difference", "ci_low", "ci_high"} <= set(table.columns)
    assert {"all", "gender", "gender*age_band"} <= set(table["attribute"])
    assert (out / "verdicts.csv").is_file()
    old = write_audit_folder(tmp_path / "old", n_users=120, user_attributes=False)
    assert main(["compare", str(old), "--out", str(out), "--rounds", "20"]) == 0
    assert "--data" in capsys.readouterr().err


def test_cli_refuses_mismatched_folders(tmp_path, capsys):
    a = write_audit_folder(tmp_path / "a", n_users=120, models=("llm",))
    b = write_audit_folder(tmp_path / "b", n_users=120, models=("mf",), data_fingerprint="ffff")
    assert main(["compare", str(a), str(b)]) == 1  # bad input folders (2 is bad usage)
    assert "different data or splits" in capsys.readouterr().err
