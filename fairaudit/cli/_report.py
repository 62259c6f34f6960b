"""``python -m fairaudit report --audit DIR --out audit.pdf``: the compliance PDF of an audit folder."""

from __future__ import annotations

import argparse

HELP = "write the audit PDF (summary, checks, charts, methodology) from an audit folder"
DESCRIPTION = """\
Render the audit report from AUDIT_DIR alone (the folder `python -m fairaudit audit` writes, plus
the optional probes.csv and shap_drivers.csv): cover with fingerprints, executive summary with
pass/attention/fail checks, data, model cards, per-group results and charts, exposure, diversity,
calibration, explanations, model comparison, methodology and appendix. Charts need Chromium
(kaleido); without it the report says so in place of each chart.

The same audit folder, options and --date give a byte-identical PDF.

Example:
  python -m fairaudit report --audit audits/run1 --out audit.pdf --organisation "ACME" --paper Letter
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit._choices import PAPERS, THRESHOLD_DEFAULTS
    from fairaudit.cli._options import iso_date, probability, unit_interval

    parser.add_argument("--audit", required=True, metavar="AUDIT_DIR", help="audit folder")
    parser.add_argument("--out", required=True, metavar="PDF", help="output PDF path")
    parser.add_argument("--organisation", default=None, help="organisation named on the cover")
    parser.add_argument("--title", default=None, help="report title")
    parser.add_argument("--paper", choices=PAPERS, default="A4", help="page size (default A4)")
    parser.add_argument("--min-ratio", type=unit_interval, default=THRESHOLD_DEFAULTS["min_ratio"],
                        help="least group/reference accuracy ratio (%(default)s)")
    parser.add_argument("--max-exposure-diff", type=unit_interval, default=THRESHOLD_DEFAULTS["max_exposure_diff"],
                        help="largest |exposure share - catalogue share| of an item group (%(default)s)")
    parser.add_argument("--alpha", type=probability, default=THRESHOLD_DEFAULTS["alpha"],
                        help="significance level of BH-adjusted gaps (%(default)s)")
    parser.add_argument("--max-relative-gap", type=unit_interval, default=THRESHOLD_DEFAULTS["max_relative_gap"],
                        help="largest diversity/coverage/novelty/calibration gap as a share of the reference (%(default)s)")
    parser.add_argument("--max-gini", type=unit_interval, default=THRESHOLD_DEFAULTS["max_gini"],
                        help="largest Gini of item exposure (%(default)s)")
    parser.add_argument("--min-coverage", type=unit_interval, default=THRESHOLD_DEFAULTS["min_coverage"],
                        help="least share of the catalogue recommended to anyone (%(default)s)")
    parser.add_argument("--date", type=iso_date, default=None, help="report date YYYY-MM-DD (default today, UTC)")
    parser.add_argument("--no-charts", action="store_true", help="text and tables only (no Chromium needed)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.report import Thresholds, build_report

    thresholds = Thresholds(min_ratio=args.min_ratio, max_exposure_diff=args.max_exposure_diff, alpha=args.alpha,
                            max_relative_gap=args.max_relative_gap, max_gini=args.max_gini,
                            min_coverage=args.min_coverage)
    out = build_report(args.audit, args.out, organisation=args.organisation, title=args.title,
                       thresholds=thresholds, paper=args.paper, date=args.date, charts=not args.no_charts)
    print(f"wrote {out}")
    return 0
