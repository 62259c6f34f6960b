"""The audit PDF, built from an audit folder alone, and safe CSV exports.

``build_report(audit_dir, out_pdf)`` writes the compliance report (cover, executive summary opening
with the ranked findings of :func:`audit_findings` and the pass/attention/fail checks, data, model
cards, results with the dashboard's charts, comparison, methodology, appendix); ``safe_csv(frame)``
gives CSV bytes that spreadsheets cannot execute (it is :func:`fairaudit.data.csv_bytes`, FairAudit's one CSV writer; see ``docs/input_validation.md``).
"""

from importlib import import_module
from typing import Any

from fairaudit.data import FORMULA_PREFIXES
from fairaudit.data import csv_bytes as safe_csv
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

#: Names whose modules import the PDF writer, scipy or torch, loaded on first use: the dashboard's
#: first screen needs only the findings and rules above (tests/test_cli_startup.py pins this).
_LAZY = {
    "build_report": "_build", "build_simulation_report": "_dynamics", "PAPERS": "_document", "Paper": "_document",
    **dict.fromkeys(("MIA_NOTE", "build_release_report", "has_privacy", "mia_chart", "model_privacy",
                     "privacy_section"), "_privacy"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
