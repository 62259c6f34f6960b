"""Pass/attention/fail rules, number formatting, literal text and formula-safe CSV exports."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, strategies as st

from fairaudit.report import (
    Thresholds,
    by_severity,
    catalogue_checks,
    check_counts,
    evaluate_thresholds,
    exposure_checks,
    format_number,
    ratio_checks,
    relative_gap_checks,
    safe_csv,
)
from fairaudit.report._document import clean_text
from fairaudit.report._rules import _BAD_THRESHOLD, _UNKNOWN_THRESHOLD, interval_status


def test_interval_status_boundaries():
    low = np.array([0.8, 0.79, 0.5, 0.81, -0.1, -0.2])
    high = np.array([0.9, 0.81, 0.79, 0.81, 0.1, 0.2])
    assert interval_status(low[:4], high[:4], 0.8).tolist() == ["pass", "attention", "fail", "pass"]
    assert interval_status(low[4:], high[4:], -0.1, 0.1).tolist() == ["pass", "attention"]


def test_ratio_checks_hand_computed():
    # group value 0.24, reference (best) 0.30: ratio 0.8; difference CI [-0.09, -0.03] -> ratio CI [0.7, 0.9]
    gm = pd.DataFrame({"model": "m", "attribute": "g", "group": ["F", "M", "X"], "metric": "ndcg",
                       "value": [0.24, 0.30, 0.15]})
    gaps = pd.DataFrame({"model": "m", "attribute": "g", "group": ["F", "X"], "reference": "best",
                         "metric": "ndcg", "difference": [-0.06, -0.15], "ci_low": [-0.09, -0.2],
                         "ci_high": [-0.03, -0.1]})
    out = ratio_checks(gm, gaps, Thresholds(min_ratio=0.8))
    assert out["estimate"].tolist() == pytest.approx([0.8, 0.5])
    assert out["ci_low"].tolist() == pytest.approx([0.7, 1 / 3])
    assert out["ci_high"].tolist() == pytest.approx([0.9, 2 / 3])
    assert out["status"].tolist() == ["attention", "fail"]
    assert out["subject"].tolist() == ["g = F vs best", "g = X vs best"]
    assert ratio_checks(gm, gaps, Thresholds(min_ratio=0.5))["status"].tolist() == ["pass", "attention"]


def test_ratio_checks_fall_back_to_rest_and_skip_other_metrics():
    gm = pd.DataFrame({"model": "m", "attribute": "g", "group": ["F", "F"], "metric": ["ndcg", "novelty"],
                       "value": [0.2, 8.0]})
    gaps = pd.DataFrame({"model": "m", "attribute": "g", "group": "F", "reference": "rest",
                         "metric": ["ndcg", "novelty"], "difference": [0.05, -1.0], "ci_low": [0.01, -2.0],
                         "ci_high": [0.1, 0.0]})
    out = ratio_checks(gm, gaps, Thresholds())
    assert out["subject"].tolist() == ["g = F vs rest"] and out["status"].tolist() == ["pass"]


def test_exposure_checks_with_and_without_ci():
    ie = pd.DataFrame({"model": "m", "user_attribute": ["all"] * 3 + ["gender"], "user_group": "all",
                       "item_attribute": "tier", "item_group": ["head", "mid", "tail", "head"], "browsing": "dcg",
                       "exposure_share": [0.35, 0.30, 0.35, 0.9], "catalogue_share": [0.2, 0.3, 0.5, 0.2],
                       "relevance_share": 0.3})
    out = exposure_checks(ie, Thresholds(max_exposure_diff=0.1))
    assert out["estimate"].tolist() == pytest.approx([0.15, 0.0, -0.15])
    assert out["status"].tolist() == ["fail", "pass", "fail"]
    with_ci = ie.assign(ci_low=[0.25, 0.25, 0.30, 0.9], ci_high=[0.45, 0.45, 0.45, 0.9])
    assert exposure_checks(with_ci, Thresholds())["status"].tolist() == ["attention", "attention", "attention"]


def test_counts_per_attribute_and_severity_order():
    gm = pd.DataFrame({"model": "m", "attribute": ["g", "g", "a"], "group": ["F", "M", "old"], "metric": "ndcg",
                       "value": [0.24, 0.30, 0.29]})
    gaps = pd.DataFrame({"model": "m", "attribute": ["g", "a"], "group": ["F", "old"], "reference": "best",
                         "metric": "ndcg", "difference": [-0.06, -0.01], "ci_low": [-0.09, -0.02],
                         "ci_high": [-0.03, 0.0]})
    ie = pd.DataFrame({"model": "m", "user_attribute": "all", "user_group": "all", "item_attribute": "tier",
                       "item_group": ["head", "tail"], "browsing": "dcg", "exposure_share": [0.35, 0.65],
                       "catalogue_share": [0.2, 0.8], "relevance_share": 0.5})
    checks = evaluate_thresholds(gm, gaps, ie, Thresholds())
    # g = F: ratio CI [0.7, 0.9] -> attention; a = old: ratio CI [0.93, 1.0] -> pass; tier: +-0.15 -> fail, fail
    assert checks["attribute"].tolist() == ["g", "a", "tier", "tier"]
    assert check_counts(checks).values.tolist() == [["m", "accuracy ratio", "g", 0, 1, 0],
                                                    ["m", "accuracy ratio", "a", 1, 0, 0],
                                                    ["m", "exposure share", "tier", 0, 0, 2]]
    ordered = by_severity(checks)
    assert ordered["status"].tolist() == ["fail", "fail", "attention", "pass"]
    assert ordered["subject"].tolist()[:2] == ["tier = head (dcg)", "tier = tail (dcg)"]  # stable within a status
    assert len(ordered) == len(checks) and check_counts(checks)[["pass", "attention", "fail"]].to_numpy().sum() == 4


def test_threshold_validation_messages():
    with pytest.raises(ValueError) as err:
        Thresholds(min_ratio=1.5)
    assert str(err.value) == _BAD_THRESHOLD.format("min_ratio", 1.5, "a number in (0, 1]")
    with pytest.raises(ValueError) as err:
        Thresholds.from_mapping({"ratio": 0.8})
    assert str(err.value) == _UNKNOWN_THRESHOLD.format(["ratio"], ["alpha", "max_exposure_diff", "max_gini",
                                                                "max_relative_gap", "min_coverage", "min_ratio"])


def test_rules_print_the_thresholds():
    text = " ".join(Thresholds(min_ratio=0.75, max_exposure_diff=0.05).rules())
    assert "at least 0.75" in text and "+/-0.05" in text


def test_format_number():
    assert [format_number(x) for x in (0.0004, -0.0126, 99.94, 100.04, np.nan)] == \
        ["0.000", "-0.013", "99.940", "100.0", "n/a"]


HOSTILE = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+2", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "<b>x</b>", "{{7*7}}"]


def test_safe_csv_neutralises_formulas_and_keeps_numbers():
    frame = pd.DataFrame({"group": HOSTILE, "value": np.arange(len(HOSTILE)) - 3.5,
                          "=col": ["F"] * len(HOSTILE)})
    back = pd.read_csv(io.BytesIO(safe_csv(frame)), keep_default_na=False)
    assert back.columns.tolist() == ["group", "value", "'=col"]
    assert back["group"].tolist()[:6] == ["'" + h for h in HOSTILE[:6]]
    assert back["group"].tolist()[6:] == ["<b>x</b>", "{{7*7}}"]
    assert back["value"].tolist() == frame["value"].tolist()


@given(st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_safe_csv_no_cell_starts_a_formula(cells):
    back = pd.read_csv(io.BytesIO(safe_csv(pd.DataFrame({"c": cells}))), keep_default_na=False, dtype=str)
    assert not any(str(v).startswith(("=", "+", "-", "@", "\t", "\r")) for v in back["c"])


def test_clean_text_is_literal():
    assert clean_text("<b>x</b> {nb} {{7*7}}", glyphs=set(range(256))) == "<b>x</b> {nb} {{7*7}}"
    assert clean_text("a\x00b\x1bc") == "a\\x00b\\x1bc"
    assert clean_text("東京", glyphs={ord("東")}) == "東\\u4eac"


def test_relative_gap_checks_hand_computed_and_zero_reference():
    # novelty F 6.0 vs best M 8.0: -2 / 8 = -0.25, CI [-2.4, -1.6] / 8 = [-0.3, -0.2] -> touches the 0.2 bound: attention;
    # miscalibration (lower is better) F 0.5 vs best 0.25: +1.0 [0.8, 1.2] -> fail; a zero reference with a zero gap
    # is no gap (pass), not 0/0.
    gm = pd.DataFrame({"model": "m", "attribute": "g", "group": "F", "metric": ["novelty", "miscalibration", "ild_genre"],
                       "value": [6.0, 0.5, 0.0]})
    gaps = pd.DataFrame({"model": "m", "attribute": "g", "group": "F", "reference": "best", "reference_group": "M",
                         "metric": ["novelty", "miscalibration", "ild_genre", "ndcg"], "difference": [-2.0, 0.25, 0.0, 0.1],
                         "ci_low": [-2.4, 0.2, 0.0, 0.0], "ci_high": [-1.6, 0.3, 0.0, 0.2]})
    out = relative_gap_checks(gm, gaps, Thresholds())
    assert out["metric"].tolist() == ["novelty", "miscalibration", "ild_genre"]  # accuracy is the ratio checks' job
    assert out["estimate"].tolist() == pytest.approx([-0.25, 1.0, 0.0])
    assert out["ci_low"].tolist() == pytest.approx([-0.3, 0.8, 0.0])
    assert out["status"].tolist() == ["attention", "fail", "pass"]
    assert out["reference_group"].tolist() == ["M"] * 3 and out["reference_value"].tolist() == pytest.approx([8, .25, 0])
    assert relative_gap_checks(gm, gaps, Thresholds(max_relative_gap=0.35))["status"].tolist() == ["pass", "fail",
                                                                                                   "pass"]


def test_catalogue_checks_gini_with_ci_and_coverage_without():
    gm = pd.DataFrame({"model": ["a", "a", "b", "b"], "attribute": "all", "group": "all",
                       "metric": ["gini_exposure", "catalogue_coverage"] * 2, "value": [0.95, 0.3, 0.89, 0.1],
                       "ci_low": [0.94, np.nan, 0.88, np.nan], "ci_high": [0.96, np.nan, 0.91, np.nan]})
    out = catalogue_checks(gm, Thresholds())
    assert out["status"].tolist() == ["fail", "pass", "attention", "fail"]
    assert out["threshold"].tolist() == ["<= 0.9", ">= 0.2"] * 2
    assert out["ci_low"].tolist()[1] == out["estimate"].tolist()[1] == 0.3  # no CI: judged on the value


def test_new_thresholds_are_validated_and_printed():
    with pytest.raises(ValueError) as err:
        Thresholds(max_gini=1.5)
    assert str(err.value) == _BAD_THRESHOLD.format("max_gini", 1.5, "a number in (0, 1]")
    text = " ".join(Thresholds(max_relative_gap=0.3, max_gini=0.8, min_coverage=0.25).rules())
    assert "+/-0.3" in text and "at most 0.8" in text and "at least 0.25" in text


def test_report_cli_and_audit_config_take_every_threshold(monkeypatch, tmp_path):
    """Each Thresholds field is a `report` option and a bounded key of an audit configuration."""
    from dataclasses import fields

    import fairaudit.report as report
    from fairaudit.cli import main
    from fairaudit.pipeline import THRESHOLD_BOUNDS

    assert set(THRESHOLD_BOUNDS) == {f.name for f in fields(Thresholds)}
    seen = {}
    monkeypatch.setattr(report, "build_report", lambda *a, thresholds, **k: seen.setdefault("t", thresholds) and "x")
    assert main(["report", "--audit", str(tmp_path), "--out", str(tmp_path / "a.pdf"), "--max-gini", "0.5",
                 "--min-coverage", "0.3", "--max-relative-gap", "0.25"]) == 0
    assert (seen["t"].max_gini, seen["t"].min_coverage, seen["t"].max_relative_gap) == (0.5, 0.3, 0.25)
