"""``python -m fairaudit run CONFIG.yaml``: train if needed -> audit -> report, from one file."""

from __future__ import annotations

import argparse
import sys

HELP = "run a whole audit from a YAML/JSON configuration: train if needed, audit, write the PDF"
DESCRIPTION = """\
Read CONFIG (YAML or JSON; paths inside are relative to its folder), load and split the data,
train each model (or reuse its folder when it already holds that model for this data and
split), audit them, and write OUTPUT/audit/ (the audit folder plus run_config.yaml) and
OUTPUT/audit.pdf. Running the same configuration twice gives identical numbers and, with
--date, an identical PDF.

Example configuration:
  data: {path: sample_data, mapping: {sex: gender}}
  split: {method: random, seed: 0, params: {test_fraction: 0.2}}
  models:
    - {name: popularity, kind: popularity}
    - {name: llm, kind: llm, params: {epochs: 10}}
  audit: {k: 10, bootstrap_rounds: 1000, attributes: [gender, age_band, region, gender*age_band]}
  explain: {probe_users: 1000}     # optional: SHAP gap drivers + counterfactual probes
  report: {title: Quarterly audit, organisation: ACME, thresholds: {min_ratio: 0.8}}
  output: audits/q3
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import iso_date

    parser.add_argument("config", metavar="CONFIG", help="audit configuration file (.yaml, .yml or .json)")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace the output's existing audit folder and model folders of other settings (refused otherwise)",
    )  # fmt: skip
    parser.add_argument("--date", type=iso_date, default=None, help="report date YYYY-MM-DD (default today)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.pipeline import RunConfig, run_pipeline

    config = RunConfig.from_file(args.config)
    result = run_pipeline(
        config, log=lambda line: print(line, file=sys.stderr), date=args.date, overwrite=args.overwrite
    )
    print(f"audit folder: {result.audit_dir}\nreport: {result.report_pdf}")
    return 0
