"""``python -m fairaudit privacy-cost``: who pays for privacy? A DP model against its non-private twin, per group."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "who pays for privacy: accuracy and exposure lost per group by a DP-trained model vs its non-DP twin"
DESCRIPTION = """\
Compare the audit of a model trained with differential privacy (train --dp-epsilon) with the audit
of its non-private twin (same data and split; or one audit folder holding both models) as a
paired comparison over the same users (the bootstrap of `compare`):
  user side   per user group: accuracy lost (cost = base - DP) with a 95% CI, and the excess cost,
              how much more the group loses than the rest of the users, with its CI
  item side   per item group of --item-attribute (needs --data): the DCG-weighted exposure share lost
Writes privacy_cost.csv to --out (default: the DP audit folder, where the dashboard and the
report find it) and prints the groups that pay significantly more. See docs/privacy.md.

Examples:
  python -m fairaudit privacy-cost --audit-dp audits/llm-dp3 --audit-base audits/llm --data sample_data
  python -m fairaudit privacy-cost --audit-dp audits/both --model-dp llm-dp3 --model-base llm
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit._choices import AUDIT_DEFAULTS
    from fairaudit.cli._options import positive_int, seed

    parser.add_argument("--audit-dp", required=True, metavar="DIR", help="audit folder of the DP-trained model")
    parser.add_argument("--audit-base", default=None, metavar="DIR",
                        help="audit folder of the non-private twin (default: --audit-dp holds both models)")
    parser.add_argument("--model-dp", default=None, help="DP model's name (default: the audited model recording privacy)")
    parser.add_argument("--model-base", default=None, help="twin's name (default: the first other / first model)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="the audited dataset: user groups from its users table and the item side (fingerprint checked)")
    parser.add_argument("--metric", default="ndcg", help="accuracy metric of the user side (default ndcg)")
    parser.add_argument("--item-attribute", default="popularity_tier",
                        help="item column of the item side (default popularity_tier)")
    parser.add_argument("--rounds", type=positive_int, default=None, help="bootstrap rounds (default: the audit's)")
    parser.add_argument("--seed", type=seed, default=None, help=f"bootstrap seed (default: the audit's, {AUDIT_DEFAULTS['seed']})")
    parser.add_argument("--out", default=None, metavar="DIR", help="folder for privacy_cost.csv (default: --audit-dp)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.audit import AuditResult
    from fairaudit.cli._options import check_item_attribute, check_values
    from fairaudit.compare import load_users
    from fairaudit.data import load_dataset, write_csv
    from fairaudit.privacy import PRIVACY_COST_FILE, privacy_cost

    audit = AuditResult.read(args.audit_dp)
    if args.model_dp is not None:
        check_values("--model-dp", [args.model_dp], audit.models, "models")
    if args.model_base is not None:
        base_models = AuditResult.read(args.audit_base).models if args.audit_base else audit.models
        check_values("--model-base", [args.model_base], base_models, "models")
    dataset = users = None
    if args.data:
        users = load_users(args.data, args.audit_dp)  # refuses data other than the audited
        dataset = load_dataset(args.data, mapping=(audit.config.data or {}).get("mapping"))
        check_item_attribute("--item-attribute", args.item_attribute, dataset)
    else:
        print("note: no --data, so no item side (item groups need the items table)", file=sys.stderr)
    table = privacy_cost(
        args.audit_dp, args.audit_base, model_dp=args.model_dp, model_base=args.model_base, dataset=dataset,
        users=users, metric=args.metric, item_attribute=args.item_attribute, rounds=args.rounds, seed=args.seed,
    )  # fmt: skip
    first = table.iloc[0]
    print(f"{first['model_dp']} (epsilon {first['epsilon']:.3f}) vs {first['model_base']}:")
    columns = ["side", "attribute", "group", "metric", "n_users", "cost", "cost_ci_low", "cost_ci_high",
               "excess_cost", "excess_cost_ci_low", "excess_cost_ci_high", "pays_more"]  # fmt: skip
    print(table[columns].to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    payers = table[table["pays_more"]]
    print("\nPays more for privacy: " + (", ".join(f"{r.attribute}={r.group} ({r.side})" for r in payers.itertuples())
                                        or "no group significantly more than the rest"))  # fmt: skip
    out = Path(args.out or args.audit_dp) / PRIVACY_COST_FILE
    write_csv(table, out)
    print(f"wrote {out}")
    return 0
