"""Findings: hand-computed tiny audits, mirror pairs merged, one finding per group and family, ranking,
and verdicts that are exactly the PDF's threshold checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit_fixture import write_audit_folder
from fairaudit.audit import read_audit
from fairaudit.report import Thresholds, audit_findings, evaluate_thresholds, findings_from_tables

GM_COLUMNS = ["model", "attribute", "group", "metric", "value", "ci_low", "ci_high", "n_users", "flagged"]
IE_COLUMNS = ["model", "user_attribute", "user_group", "item_attribute", "item_group", "browsing", "exposure_share",
              "catalogue_share", "relevance_share"]


def group_metrics(rows) -> pd.DataFrame:
    """(attribute, group, metric, value[, ci_low, ci_high]) tuples of model "m"."""
    frame = pd.DataFrame([(*r, *([np.nan] * (6 - len(r)))) for r in rows],
                         columns=["attribute", "group", "metric", "value", "ci_low", "ci_high"])
    return frame.assign(model="m", n_users=100, flagged=False)[GM_COLUMNS]


def gaps(rows, reference: str = "best") -> pd.DataFrame:
    """(attribute, group, reference_group, metric, difference, ci_low, ci_high) tuples of model "m"."""
    frame = pd.DataFrame(rows, columns=["attribute", "group", "reference_group", "metric", "difference", "ci_low",
                                        "ci_high"])
    return frame.assign(model="m", reference=reference, p_adjusted=0.01)


def exposure(rows) -> pd.DataFrame:
    """(item_attribute, item_group, browsing, exposure_share, catalogue_share) tuples of model "m", all users."""
    frame = pd.DataFrame(rows, columns=["item_attribute", "item_group", "browsing", "exposure_share",
                                        "catalogue_share"])
    return frame.assign(model="m", user_attribute="all", user_group="all", relevance_share=0.5)[IE_COLUMNS]


NO_EXPOSURE = pd.DataFrame(columns=IE_COLUMNS)


def find(gm, gp, ie=NO_EXPOSURE, **thresholds):
    return findings_from_tables(gm, gp, ie, attributes=("gender",), thresholds=thresholds or None)


def test_accuracy_ratio_finding_hand_computed():
    # F: 0.2 vs best M 0.3 -> ratio 0.667; difference CI [-0.15, -0.12] -> ratio CI [0.5, 0.6]: wholly below 0.8.
    gm = group_metrics([("gender", "F", "ndcg", 0.2), ("gender", "M", "ndcg", 0.3)])
    found = find(gm, gaps([("gender", "F", "M", "ndcg", -0.1, -0.15, -0.12)]))
    (row,) = found.table.itertuples()
    assert (row.verdict, row.family, row.affected, row.reference_group) == ("fail", "accuracy", "users: gender = F", "M")
    assert (row.estimate, row.ci_low, row.ci_high) == pytest.approx((2 / 3, 0.5, 0.6))
    assert row.effect == "ratio 0.67 [0.50, 0.60]"
    assert row.sentence == ("NDCG@10 for gender = F is 33% lower than for gender = M: 0.200 vs 0.300 (ratio 0.67 "
                            "[0.50, 0.60]; the four-fifths rule asks at least 0.8).")
    assert found.headline == f"FAIL · model m: {row.sentence}"
    # The same numbers under a laxer rule: the whole CI is now above 0.45 -> pass.
    assert find(gm, gaps([("gender", "F", "M", "ndcg", -0.1, -0.15, -0.12)]), min_ratio=0.45).table["verdict"][0] == \
        "pass"


def test_null_control_equal_groups_pass():
    gm = group_metrics([("gender", "F", "ndcg", 0.3), ("gender", "M", "ndcg", 0.3), ("gender", "F", "novelty", 8.0),
                        ("gender", "M", "novelty", 8.0)])
    gp = gaps([("gender", "F", "M", "ndcg", 0.0, -0.01, 0.01), ("gender", "F", "M", "novelty", 0.0, -0.2, 0.2)])
    found = find(gm, gp, exposure([("tier", "head", "dcg", 0.3, 0.3), ("tier", "tail", "dcg", 0.7, 0.7)]))
    assert set(found.table["verdict"]) == {"pass"} and found.counts() == {"pass": 4, "attention": 0, "fail": 0}


def test_mirror_pairs_against_the_rest_merge_into_the_losing_group():
    # Two groups against the rest: F lower by 0.1 and M higher by 0.1 are one finding about F, named against M.
    gm = group_metrics([("gender", "F", "ndcg", 0.2), ("gender", "M", "ndcg", 0.3)])
    gp = gaps([("gender", "F", "rest", "ndcg", -0.1, -0.15, -0.12), ("gender", "M", "rest", "ndcg", 0.1, 0.12, 0.15)],
              reference="rest")
    found = find(gm, gp)
    assert found.table[["group", "reference_group"]].values.tolist() == [["F", "M"]]
    assert "than for gender = M" in found.table["sentence"][0]
    assert len(found.checks) == 2  # the PDF still counts both checks


def test_exposure_mirrors_merge_but_three_tiers_do_not():
    ie = exposure([("provider", "indie", "dcg", 0.05, 0.3), ("provider", "studio", "dcg", 0.95, 0.7),
                   ("tier", "head", "dcg", 0.9, 0.2), ("tier", "mid", "dcg", 0.08, 0.3), ("tier", "tail", "dcg", 0.02, 0.5)])
    found = find(group_metrics([]), gaps([]), ie)
    assert found.table[["attribute", "group", "reference_group"]].values.tolist() == [
        ["tier", "head", "catalogue share"], ["tier", "tail", "catalogue share"], ["provider", "indie", "studio"],
        ["tier", "mid", "catalogue share"]]  # ranked by |difference| / 0.1: 7.0, 4.8, 2.5, 2.2
    head = found.table.iloc[0]
    assert head["effect"] == "+70.0 points of exposure"
    assert head["sentence"] == ("Items with tier = head get 90.0% of the exposure but are 20.0% of the catalogue "
                                "(+70.0 points; the rule allows +/-10).")
    assert found.table.iloc[2]["sentence"].endswith("; provider = studio the reverse.")


def test_one_browsing_model_is_shown_and_named():
    ie = exposure([("tier", "head", "dcg", 0.9, 0.2), ("tier", "head", "rbp", 0.95, 0.2)])
    found = find(group_metrics([]), gaps([]), ie)
    assert len(found.table) == 1 and found.table["estimate"][0] == pytest.approx(0.7)
    assert found.browsing == "dcg" and "exposure under the dcg browsing model" in found.scope()
    assert len(found.checks) == 2


def test_one_finding_per_group_and_family_led_by_the_most_severe_metric():
    gm = group_metrics([("gender", "F", "ndcg", 0.2), ("gender", "F", "recall", 0.27), ("gender", "F", "mrr", 0.3),
                        ("gender", "F", "novelty", 6.0), ("gender", "F", "miscalibration", 0.5)])
    gp = gaps([("gender", "F", "M", "ndcg", -0.1, -0.15, -0.12),    # ratio CI [0.5, 0.6]: fail
               ("gender", "F", "M", "recall", -0.03, -0.06, 0.0),   # reference 0.3, CI [0.8, 1.0]: pass
               ("gender", "F", "M", "mrr", -0.05, -0.1, -0.01),     # reference 0.35, CI [0.71, 0.97]: attention
               ("gender", "F", "M", "novelty", -2.0, -2.4, -1.6),   # relative -0.25 [-0.3, -0.2]: attention
               ("gender", "F", "M", "miscalibration", 0.25, 0.2, 0.3)])  # reference 0.25: +1.0 [0.8, 1.2]: fail
    found = find(gm, gp)
    table = found.table.set_index("family")
    assert sorted(table.index) == ["accuracy", "calibration", "diversity"]
    assert table.loc["accuracy", "metric"] == "ndcg" and table.loc["accuracy", "also"] == "also MRR@10 attention"
    assert table.loc["diversity", "verdict"] == "attention" and table.loc["diversity", "estimate"] == -0.25
    assert table.loc["calibration", "effect"] == "relative gap +1.00 [0.80, 1.20]"
    assert "100% higher" in table.loc["calibration", "sentence"]
    # Ranked fail before attention; among failures by how far beyond the limit: calibration 1.0/0.2 = 5 units,
    # accuracy (1 - 0.667)/0.2 = 1.7 units.
    assert found.table["family"].tolist() == ["calibration", "accuracy", "diversity"]
    assert found.table["rank"].tolist() == [1, 2, 3]


def test_catalogue_findings_gini_and_coverage():
    gm = pd.DataFrame({"model": "m", "attribute": "all", "group": "all",
                       "metric": ["gini_exposure", "catalogue_coverage"], "value": [0.95, 0.05],
                       "ci_low": [0.94, np.nan], "ci_high": [0.96, np.nan], "n_users": 100, "flagged": False})
    found = find(gm, gaps([]))
    table = found.table.set_index("metric")
    assert table["verdict"].to_dict() == {"gini_exposure": "fail", "catalogue_coverage": "fail"}
    assert table.loc["catalogue_coverage", "sentence"] == ("5.0% of the catalogue is recommended to anyone; the rule "
                                                           "asks for at least 20%.")
    assert table.loc["gini_exposure", "effect"] == "Gini 0.950 [0.940, 0.960]"
    assert set(table["affected"]) == {"whole catalogue"} and set(table["family"]) == {"exposure"}
    assert found.cue("m", "gini_exposure") == ("fail", "FAIL (limit <= 0.9)")
    assert find(gm, gaps([]), max_gini=0.97, min_coverage=0.01).table["verdict"].tolist() == ["pass", "pass"]


@pytest.fixture(scope="module")
def fixture_audit(tmp_path_factory):
    return read_audit(write_audit_folder(tmp_path_factory.mktemp("audit"), n_users=240))


def test_every_verdict_is_the_pdf_check_of_the_same_subject(fixture_audit):
    found = audit_findings(fixture_audit)
    checks = evaluate_thresholds(fixture_audit.group_metrics, fixture_audit.gaps, fixture_audit.item_exposure,
                                 Thresholds())
    pd.testing.assert_frame_equal(found.checks, checks)
    keyed = checks.set_index(["model", "check", "subject", "metric"])["status"]
    for row in found.table.itertuples():
        assert keyed[(row.model, row.check, row.subject, row.metric)] == row.verdict, row
    severity = found.table["verdict"].map({"fail": 0, "attention": 1, "pass": 2})
    assert severity.is_monotonic_increasing
    assert set(found.table["family"]) <= {"accuracy", "exposure", "diversity", "calibration"}
    assert len(found.table) < len(checks)  # collapsed and merged


def test_findings_cover_every_audited_attribute_and_split_by_model(fixture_audit):
    found = audit_findings(fixture_audit)
    assert found.attributes == tuple(fixture_audit.attributes)
    assert set(found.item_attributes) == set(fixture_audit.item_exposure["item_attribute"])
    assert {a for a in found.table["attribute"]} >= set(fixture_audit.attributes) - {"gender*age_band"}
    one = found.for_model("popularity")
    assert set(one.table["model"]) == {"popularity"} and one.table["rank"].tolist() == list(range(1, len(one.table) + 1))
    assert sum(one.counts().values()) == int((found.checks["model"] == "popularity").sum())
