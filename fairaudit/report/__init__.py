"""The audit PDF, built from an audit folder alone, and safe CSV exports.

``build_report(audit_dir, out_pdf)`` writes the compliance report (cover, executive summary opening
with the ranked findings of :func:`audit_findings` and the pass/attention/fail checks, data, model
cards, results with the dashboard's charts, comparison, methodology, appendix); ``safe_csv(frame)``
gives CSV bytes that spreadsheets cannot execute (it is :func:`fairaudit.data.csv_bytes`, FairAudit's one CSV writer; see ``docs/input_validation.md``).
"""

from fairaudit.data import FORMULA_PREFIXES
from fairaudit.data import csv_bytes as safe_csv
from fairaudit.report._build import build_report
from fairaudit.report._dynamics import build_simulation_report
from fairaudit.report._document import PAPERS, Paper
from fairaudit.report._privacy import (
    MIA_NOTE,
    build_release_report,
    has_privacy,
    mia_chart,
    model_privacy,
    privacy_section,
)
from fairaudit.report._findings import FINDING_COLUMNS, FINDING_FAMILIES, Findings, audit_findings, findings_from_tables
from fairaudit.report._rules import (
    RATIO_METRICS,
    RELATIVE_GAP_METRICS,
    Thresholds,
    by_severity,
    catalogue_checks,
    check_counts,
    evaluate_thresholds,
    exposure_checks,
    format_number,
    ratio_checks,
    relative_gap_checks,
)

__all__ = [
    "FINDING_COLUMNS", "FINDING_FAMILIES", "FORMULA_PREFIXES", "Findings", "PAPERS", "Paper", "RATIO_METRICS",
    "RELATIVE_GAP_METRICS", "Thresholds", "audit_findings", "build_report", "by_severity", "catalogue_checks",
    "check_counts", "evaluate_thresholds", "exposure_checks", "findings_from_tables", "format_number", "ratio_checks",
    "relative_gap_checks", "safe_csv", "build_simulation_report", "build_release_report", "has_privacy", "MIA_NOTE", "mia_chart",
    "model_privacy", "privacy_section",
]
