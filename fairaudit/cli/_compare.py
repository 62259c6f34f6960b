"""``python -m fairaudit compare AUDIT_A [AUDIT_B]``: paired differences between models, with CIs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "compare models on the same users: paired-bootstrap differences of every metric and gap"
DESCRIPTION = """\
Compare the models of one audit folder (the first model against each other one) or the models of
two audit folders made on the same data and split (refused otherwise). For every per-user metric,
overall and per group, the difference B - A with a paired-bootstrap 95% CI (the same resampled
users for both models), and for every gap the change of the gap; then one verdict sentence per
attribute and metric. Per-group rows use the user attribute columns stored in
user_metrics.parquet; for older audit folders without them pass the dataset with --data (its
fingerprint must match the audit's).

Writes comparison.csv and verdicts.csv to --out (default: AUDIT_A) and prints the verdicts.

Example:
  python -m fairaudit compare audits/llm audits/mitigated --data sample_data --out audits/compare
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import positive_int, seed

    parser.add_argument("audit_a", metavar="AUDIT_DIR_A", help="audit folder of the baseline (A)")
    parser.add_argument("audit_b", metavar="AUDIT_DIR_B", nargs="?", default=None,
                        help="audit folder of the candidate (B); omit to compare the models of AUDIT_DIR_A")
    parser.add_argument("--out", default=None, metavar="DIR", help="folder for comparison.csv and verdicts.csv")
    parser.add_argument("--model-a", default=None, help="baseline model name (default: the first)")
    parser.add_argument("--model-b", default=None, help="candidate model name (default: every other / the first of B)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="dataset the audit used (per-group rows for older audit folders)")
    parser.add_argument("--rounds", type=positive_int, default=None, help="bootstrap rounds (default: the audit's)")
    parser.add_argument("--seed", type=seed, default=None, help="bootstrap seed (default: the audit's)")


def check_model_names(args: argparse.Namespace) -> None:
    """Refuse, naming the option, a --model-a/--model-b that the audit folder(s) do not hold."""
    from fairaudit.audit import AuditResult
    from fairaudit.cli._options import check_values

    if args.model_a is None and args.model_b is None:
        return
    models_a = AuditResult.read(args.audit_a).models
    if args.model_a is not None:
        check_values("--model-a", [args.model_a], models_a, "models")
    if args.model_b is not None:
        models_b = AuditResult.read(args.audit_b).models if args.audit_b else models_a
        check_values("--model-b", [args.model_b], models_b, "models")


def run(args: argparse.Namespace) -> int:
    from fairaudit.compare import compare_audits, load_users
    from fairaudit.data import write_csv

    check_model_names(args)
    users = load_users(args.data, args.audit_a) if args.data else None
    result = compare_audits(args.audit_a, args.audit_b, model_a=args.model_a, model_b=args.model_b, users=users,
                            rounds=args.rounds, seed=args.seed)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    overall = result.table[(result.table["attribute"] == "all") & (result.table["quantity"] == "value")]
    print(overall[["model_a", "model_b", "metric", "a", "b", "difference", "ci_low", "ci_high"]]
          .to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if not result.verdicts.empty:
        print()
        for sentence in result.verdicts["verdict"]:
            print(sentence)
    out = Path(args.out or args.audit_a)
    write_csv(result.table, out / "comparison.csv")
    write_csv(result.verdicts, out / "verdicts.csv")
    print(f"\nwrote {out / 'comparison.csv'} and {out / 'verdicts.csv'}")
    return 0
