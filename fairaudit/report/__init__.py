"""The audit PDF, built from an audit folder alone, and safe CSV exports.

``build_report(audit_dir, out_pdf)`` writes the compliance report (cover, executive summary with
pass/attention/fail checks, data, model cards, results with the dashboard's charts, comparison,
methodology, appendix); ``safe_csv(frame)`` gives CSV bytes that spreadsheets cannot execute (it is
:func:`fairaudit.data.csv_bytes`, FairAudit's one CSV writer; see ``docs/input_validation.md``).
"""

from fairaudit.data import FORMULA_PREFIXES
from fairaudit.data import csv_bytes as safe_csv
from fairaudit.report._build import build_report
from fairaudit.report._document import PAPERS, Paper
from fairaudit.report._rules import (
    RATIO_METRICS,
    Thresholds,
    by_severity,
    check_counts,
    evaluate_thresholds,
    exposure_checks,
    format_number,
    largest_gap_sentences,
    ratio_checks,
)

__all__ = [
    "FORMULA_PREFIXES", "PAPERS", "Paper", "RATIO_METRICS", "Thresholds", "build_report", "by_severity", "check_counts",
    "evaluate_thresholds", "exposure_checks", "format_number", "largest_gap_sentences", "ratio_checks", "safe_csv",
]
