"""The audit PDF: sections, numbers as in group_metrics.csv, literal rendering of hostile names,
page sizes, page images, determinism, and the CLI."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

from audit_fixture import write_audit_folder, write_optional_explanations
from fairaudit.cli import main
from fairaudit.audit import read_audit, select_rows, write_audit
from fairaudit.compare import add_comparison, compare_audits
from fairaudit.report import (
    Thresholds,
    audit_findings,
    build_report,
    by_severity,
    check_counts,
    evaluate_thresholds,
    format_number,
)
from fairaudit.report._build import SUMMARY_FINDINGS

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")

LONG = "Llanfair" + "pwllgwyngyll" * 12  # 152 characters, no spaces
NAMES = {"F": "<b>x</b>", "Northeast": '=HYPERLINK("http://evil.example","click")', "South": "{{7*7}}",
         "West": LONG, "56+": "Привет Ωμέγα"}
MODELS = ("llm", "{nb}")
ORGANISATION = "<script>alert(1)</script> & Co"
TITLE = "=cmd|' /C calc'!A0 audit"
DATE = dt.date(2026, 3, 14)
SECTIONS = ("Contents", "Executive summary", "Findings", "Threshold checks", "Data", "Group sizes",
            "Suppressed small groups", "Model cards", "Results", "Item exposure", "Diversity, novelty and calibration",
            "Counterfactual attribute probes", "SHAP drivers of the gaps", "Model comparison", "Gap changes per group",
            "Methodology and limitations", "What this audit cannot show", "Appendix", "All threshold checks",
            "Full configuration", "Software versions")


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def squeeze(text: str) -> str:
    """Text without whitespace, so wrapped cells and lines compare."""
    return "".join(text.split())


@pytest.fixture(scope="session")
def audit_dir(tmp_path_factory) -> Path:
    folder = write_audit_folder(tmp_path_factory.mktemp("audit"), names=NAMES, models=MODELS)
    write_audit(add_comparison(read_audit(folder)), folder, overwrite=True)  # the report draws the stored comparison
    write_optional_explanations(folder, models=MODELS)
    return folder


@pytest.fixture(scope="session")
def report(audit_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pdf") / "audit.pdf"
    return build_report(audit_dir, out, organisation=ORGANISATION, title=TITLE, date=DATE)


@pytest.fixture(scope="session")
def text(report) -> str:
    return pdf_text(report)


def test_every_section_is_present_in_order(text):
    body = text[text.index("Executive summary", text.index("Contents") + 200):]
    positions = [body.find(s) for s in SECTIONS[1:]]
    assert all(p >= 0 for p in positions), [s for s, p in zip(SECTIONS[1:], positions) if p < 0]
    assert "Contents" in text


def test_group_values_and_cis_match_group_metrics_csv(audit_dir, text):
    gm = pd.read_csv(audit_dir / "group_metrics.csv", keep_default_na=False)
    flat = squeeze(text)
    rows = gm[(gm["metric"].isin(["ndcg", "recall"])) & (gm["attribute"] == "gender")]
    assert len(rows) == 8  # 2 models x 2 groups x 2 metrics
    for row in rows.itertuples():
        cell = f"{format_number(row.value)}[{format_number(row.ci_low)},{format_number(row.ci_high)}]"
        assert cell in flat, (row.model, row.group, row.metric, cell)
    overall = gm[(gm["attribute"] == "all") & (gm["metric"] == "ndcg")]
    for row in overall.itertuples():
        assert f"{format_number(row.value)}[{format_number(row.ci_low)},{format_number(row.ci_high)}]" in flat


def test_summary_opens_with_the_ranked_findings(audit_dir, text):
    findings = audit_findings(read_audit(audit_dir))
    start = text.index("Executive summary", text.index("Contents") + 200)
    summary = squeeze(text[start:text.index("Threshold checks", start)])
    assert squeeze(findings.headline) in summary
    assert squeeze(findings.scope()) in summary  # which attributes the findings cover
    positions = [summary.find(squeeze(s)) for s in findings.table["sentence"].head(SUMMARY_FINDINGS)]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)  # every listed finding, in rank order
    listed = re.findall(r"(\d+)(FAIL|ATTENTION|PASS)", summary)
    assert [(int(n), v.lower()) for n, v in listed[:SUMMARY_FINDINGS]] == \
        list(zip(findings.table["rank"].head(SUMMARY_FINDINGS), findings.table["verdict"].head(SUMMARY_FINDINGS)))


def _checks(audit_dir: Path) -> pd.DataFrame:
    read = {n: pd.read_csv(audit_dir / f"{n}.csv", keep_default_na=False) for n in ("group_metrics", "gaps", "item_exposure")}
    return evaluate_thresholds(read["group_metrics"], read["gaps"], read["item_exposure"], Thresholds())


def _page_of(report: Path, needle: str, start: int = 0) -> int:
    pages = [squeeze(p.extract_text()) for p in PdfReader(report).pages]
    return next(i for i, page in enumerate(pages) if i >= start and squeeze(needle) in page)


def test_executive_summary_fits_two_pages_with_counts_per_attribute(audit_dir, report, text):
    start = text.index("Executive summary", text.index("Contents") + 200)
    summary = text[start:text.index("Group sizes", start)]
    counts = check_counts(_checks(audit_dir))
    assert set(counts["attribute"]) == {"gender", "age_band", "region", "gender*age_band", "popularity_tier", "genre"}
    assert set(counts["check"]) == {"accuracy ratio", "exposure share", "relative gap"}  # the fixture has no Gini
    flat = squeeze(summary)
    for row in counts.itertuples(index=False):  # one table row per model x check x attribute, counts as computed
        assert squeeze(" ".join(map(str, row))) in flat, row
    totals = _checks(audit_dir)["status"].value_counts()
    assert squeeze(f"{totals.sum()} checks: {totals.get('pass', 0)} pass, {totals.get('attention', 0)} need "
                   f"attention, {totals.get('fail', 0)} fail") in flat
    first = _page_of(report, "Findings", start=2)
    assert _page_of(report, "Group sizes", start=first) <= first + 2  # summary on two pages, then Data's page


def test_appendix_lists_every_check_by_severity(audit_dir, text):
    appendix = text[text.rindex("All threshold checks"):text.rindex("Full configuration")]
    checks = by_severity(_checks(audit_dir))
    statuses = re.findall(r"\b(FAIL|ATTENTION|PASS)\b", appendix)
    assert statuses == [s.upper() for s in checks["status"]]  # every check once, failures first
    assert statuses.index("ATTENTION") > statuses.index("FAIL") and "PASS" in statuses
    flat = squeeze(appendix)
    for row in checks.itertuples():
        cell = (format_number(row.estimate) if row.ci_low == row.ci_high == row.estimate  # exposure: no CI
                else f"{format_number(row.estimate)}[{format_number(row.ci_low)},{format_number(row.ci_high)}]")
        assert squeeze(f"{row.status.upper()}{row.model}") in flat and cell in flat, row


def test_comparison_gives_paired_cis_per_group_from_the_folder_alone(audit_dir, text):
    comparison = squeeze(text[text.rindex("Gap changes per group"):text.rindex("Methodology and limitations")])
    result = compare_audits(audit_dir)  # same rounds, seed and minimum group size as the report
    table = result.table
    rows = table[(table["quantity"] == "directed_gap") & table["metric"].isin(["ndcg", "recall"])]
    assert set(rows["attribute"]) == {"gender", "age_band", "region", "gender*age_band"}
    for row in rows.itertuples():
        cell = f"{format_number(row.difference)}[{format_number(row.ci_low)},{format_number(row.ci_high)}]"
        assert cell in comparison, (row.attribute, row.group, row.metric, cell)
    # the planted llm gap for women (group renamed '<b>x</b>') narrows under the second model: whole CI below 0
    female = rows[(rows["attribute"] == "gender") & (rows["group"] == NAMES["F"]) & (rows["metric"] == "ndcg")].iloc[0]
    assert female.ci_high < 0 and "narrower" in comparison
    verdicts = result.verdicts.set_index(["attribute", "metric"])
    assert squeeze(verdicts.loc[("gender", "ndcg"), "verdict"]) in comparison


def test_the_report_draws_the_stored_comparison_and_recomputes_nothing(audit_dir, tmp_path):
    folder = shutil.copytree(audit_dir, tmp_path / "audit")
    comparison = read_audit(folder).comparison
    row = select_rows(comparison, attribute="gender", quantity="directed_gap", metric="ndcg").index[0]
    comparison.loc[row, ["difference", "ci_low", "ci_high"]] = [0.777, 0.701, 0.888]  # no bootstrap gives these
    comparison.to_csv(folder / "comparison.csv", index=False)
    text = pdf_text(build_report(folder, tmp_path / "x.pdf", date=DATE, charts=False))
    changes = squeeze(text[text.rindex("Gap changes per group"):text.rindex("Methodology and limitations")])
    assert "0.777[0.701,0.888]wider" in changes


def test_a_multi_model_folder_without_comparison_says_how_to_add_it(tmp_path):
    folder = write_audit_folder(tmp_path / "audit", n_users=120)
    text = pdf_text(build_report(folder, tmp_path / "a.pdf", date=DATE, charts=False))
    flat = squeeze(text)
    assert squeeze("Not computed: the audit folder holds no comparison.csv; add it with") in flat
    assert "Gapchangespergroup" not in flat and "Eachmodelagainstthebaseline" not in flat


def test_cover_names_models_fingerprints_and_date(text):
    flat = squeeze(text)
    for needle in ("a1b2c3d4e5f6", "d41d8cd98f00b204", "0000000000000001", "0000000000000002", "2026-03-14",
                   squeeze(ORGANISATION), squeeze(TITLE), "Models:llm,{nb}"):
        assert needle in flat, needle


def test_methodology_states_the_audit_settings(text):
    flat = squeeze(text)
    assert squeeze("Benjamini-Hochberg adjustment across all gaps of the audit") in flat  # fdr_family "audit"
    assert squeeze("percentile bootstrap with 200 resamples of users (seed 0)") in flat


def test_hostile_names_are_drawn_literally(text):
    flat = squeeze(text)
    for name in NAMES.values():
        assert squeeze(name) in flat, name
    assert "<b>x</b>*18-24" in flat  # intersection values too
    assert "{nb}" in text and "49" not in re.findall(r"\{\{(\d+)\}\}", text)


def test_page_count_alias_is_not_user_text(report):
    pages = len(PdfReader(report).pages)
    assert f"Page 2 of {pages}" in pdf_text(report)


def test_optional_sections_say_not_run_when_files_are_absent(tmp_path):
    folder = write_audit_folder(tmp_path / "audit", n_users=120, models=("only",))
    text = pdf_text(build_report(folder, tmp_path / "a.pdf", date=DATE, charts=False))
    assert "Not run: the audit folder holds no probes.csv" in text
    assert "Not run: the audit folder holds no shap_drivers.csv" in text
    assert "Each model against the baseline" not in text  # no comparison section for one model


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm not installed")
def test_every_page_renders_to_an_image(report, tmp_path):
    done = subprocess.run(["pdftoppm", "-r", "20", "-png", str(report), str(tmp_path / "page")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    assert len(list(tmp_path.glob("page-*.png"))) == len(PdfReader(report).pages)


def test_charts_are_embedded(report):
    images = sum(len(page.images) for page in PdfReader(report).pages)
    assert images >= 10


def test_same_folder_and_date_give_identical_bytes(audit_dir, report, tmp_path):
    again = build_report(audit_dir, tmp_path / "again.pdf", organisation=ORGANISATION, title=TITLE, date=DATE)
    assert again.read_bytes() == report.read_bytes()


def test_other_date_changes_only_the_date(audit_dir, tmp_path):
    first = pdf_text(build_report(audit_dir, tmp_path / "1.pdf", date=DATE, charts=False))
    second = pdf_text(build_report(audit_dir, tmp_path / "2.pdf", date=dt.date(2027, 1, 2), charts=False))
    assert first != second
    assert first.replace("2026-03-14", "DATE") == second.replace("2027-01-02", "DATE")


def test_paper_sizes(audit_dir, report, tmp_path):
    letter = build_report(audit_dir, tmp_path / "letter.pdf", paper="Letter", date=DATE, charts=False)
    for pdf, size in ((report, (595.28, 841.89)), (letter, (612.0, 792.0))):  # A4 and Letter in points
        for page in PdfReader(pdf).pages:
            assert (round(float(page.mediabox.width), 2), round(float(page.mediabox.height), 2)) == size


def test_unknown_paper_is_refused(audit_dir, tmp_path):
    with pytest.raises(ValueError, match="Unknown paper size 'A3'"):
        build_report(audit_dir, tmp_path / "x.pdf", paper="A3", charts=False)  # type: ignore[arg-type]


def test_cli_writes_the_pdf(audit_dir, tmp_path, capsys):
    out = tmp_path / "cli.pdf"
    code = main(["report", "--audit", str(audit_dir), "--out", str(out), "--paper", "Letter", "--no-charts",
                 "--organisation", "ACME", "--min-ratio", "0.9", "--max-exposure-diff", "0.01",
                 "--date", "2026-03-14"])
    assert code == 0 and out.is_file()
    text = pdf_text(out)
    assert "ACME" in text and "at least 0.9" in text and "within +/-0.01" in text
    fails = int(re.search(r"(\d+) fail\.", text).group(1))
    appendix = text[text.rindex("All threshold checks"):text.rindex("Full configuration")]
    assert fails > 0 and len(re.findall(r"\bFAIL\b", appendix)) == fails


def test_cli_reports_a_missing_audit_folder(tmp_path, capsys):
    assert main(["report", "--audit", str(tmp_path / "none"), "--out", str(tmp_path / "x.pdf")]) == 1  # bad files
    assert "lacks" in capsys.readouterr().err


def test_report_and_comparison_from_a_real_audit(tmp_path):
    from conftest import make_tiny_dataset
    from fairaudit.audit import AuditConfig, run_audit, write_audit
    from fairaudit.data import make_split
    from fairaudit.models import create_model

    dataset = make_tiny_dataset(n_users=60)
    split = make_split(dataset, "random", seed=0)
    models = {kind: create_model(kind).fit(dataset, split) for kind in ("popularity", "itemknn")}
    config = AuditConfig(attributes=("gender", "age_band"), bootstrap_rounds=50, min_group_size=5,
                         embedding_diversity=False)
    folder = write_audit(add_comparison(run_audit(dataset, split, models, config)), tmp_path / "audit")
    text = pdf_text(build_report(folder, tmp_path / "real.pdf", date=DATE, charts=False))
    gm = pd.read_csv(folder / "group_metrics.csv", keep_default_na=False)
    row = gm[(gm["model"] == "itemknn") & (gm["attribute"] == "gender") & (gm["metric"] == "ndcg")].iloc[0]
    flat = squeeze(text)
    assert f"{format_number(row.value)}[{format_number(row.ci_low)},{format_number(row.ci_high)}]" in flat
    assert "Modelcomparison" in flat and "Model:itemknn" in flat
    result = compare_audits(folder, users=dataset.users, rounds=50)
    assert {"gender", "age_band", "all"} == set(result.table["attribute"])
    assert set(result.verdicts["attribute"]) == {"gender", "age_band"}
    assert result.verdicts["verdict"].str.startswith("itemknn ").all()
    alone = compare_audits(folder, rounds=50)  # the attribute columns of user_metrics.parquet suffice
    pd.testing.assert_frame_equal(alone.table, result.table)
    assert alone.notes == [] and "Nopergroupcomparison" not in flat
