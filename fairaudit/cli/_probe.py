"""``python -m fairaudit probe``: counterfactual attribute probe of a saved model; writes probes.csv."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "does the model change its top-K when only a user attribute changes? (writes probes.csv)"
DESCRIPTION = """\
For each probed user, re-rank with the sensitive attribute swapped to every other value
(everything else fixed) and compare with the user's original top-K: Jaccard@K, SERP*@K and
PRAG*@K (FaiRLLM conventions: identical lists give 1, (K+3)/(4(K+1)) and 1) and the change in
each item group's share of the list, per original -> counterfactual value and pooled, with
bootstrap CIs over users, plus the SNSR/SNSV spread across values. A model that ignores the
attribute shows exactly zero change. Writes OUT/probes.csv (attribute, original_value,
counterfactual_value, metric, estimate, ci_low, ci_high, n_users).

Example:
  python -m fairaudit probe --model models/llm --data sample_data --attribute gender --out probes/llm
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import positive_int, seed

    parser.add_argument("--model", required=True, metavar="DIR", help="saved model folder")
    parser.add_argument("--data", required=True, help="dataset folder or file the model was trained on")
    parser.add_argument("--attribute", required=True, help="user attribute to swap, e.g. gender, age_band, region")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write probes.csv to")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT/probes.csv (refused otherwise)")
    parser.add_argument("--k", type=positive_int, default=10, help="list length K (default 10)")
    parser.add_argument("--users", type=positive_int, default=None, help="probe a seeded sample of N users (default: all)")
    parser.add_argument("--values", help="comma-separated counterfactual values (default: every known value)")
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap rounds (default 1000)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the user sample and bootstrap (default 0)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.data import check_file_target, load_dataset, write_csv
    from fairaudit.explain import EXPLANATION_FILES, probe_attribute
    from fairaudit.cli._options import check_values, text_list
    from fairaudit.models import load_model

    path = Path(args.out) / EXPLANATION_FILES["probes"]
    check_file_target(path, overwrite=args.overwrite)  # before the work, not after it
    dataset = load_dataset(args.data)
    model = load_model(args.model, dataset)
    columns = [c for c in dataset.users.columns if c != "user_id"]
    check_values("--attribute", [args.attribute], columns, "user attributes")
    values = text_list(args.values) or None
    if values:
        check_values("--values", values, sorted(dataset.users[args.attribute].astype(str).unique()))
    table = probe_attribute(
        model, dataset, args.attribute, users=args.users, k=args.k, values=values, seed=args.seed,
        bootstrap_rounds=args.bootstrap,
    )  # fmt: skip
    write_csv(table, path, overwrite=args.overwrite)
    pooled = table[(table["original_value"] == "all") & table["metric"].isin(["jaccard", "prag"])]
    print(f"Probe of '{args.attribute}' on {model.kind} model (K={args.k}): mean over users, 95% CI")
    for row in pooled.itertuples():
        print(f"  -> {row.counterfactual_value}: {row.metric} {row.estimate:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"
              f" (n={row.n_users})")
    spread = table[table["metric"] == "jaccard_snsr"]
    if not spread.empty:
        snsr = spread["estimate"].iloc[0]
        print(f"  spread across values (Jaccard SNSR): {snsr:.3f}  (0 = every value treated alike)")
    print(f"wrote {path}")
    return 0
