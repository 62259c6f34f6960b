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
    parser.add_argument("--model", required=True, metavar="DIR", help="saved model folder")
    parser.add_argument("--data", required=True, help="dataset folder or file the model was trained on")
    parser.add_argument("--attribute", required=True, help="user attribute to swap, e.g. gender, age_band, region")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write probes.csv to")
    parser.add_argument("--k", type=int, default=10, help="list length K (default 10)")
    parser.add_argument("--users", type=int, default=None, help="probe a seeded sample of N users (default: all)")
    parser.add_argument("--values", help="comma-separated counterfactual values (default: every known value)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the user sample and bootstrap (default 0)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.data import load_dataset
    from fairaudit.explain import EXPLANATION_FILES, probe_attribute
    from fairaudit.models import load_model

    dataset = load_dataset(args.data)
    model = load_model(args.model, dataset)
    values = [v.strip() for v in args.values.split(",") if v.strip()] if args.values else None
    table = probe_attribute(
        model, dataset, args.attribute, users=args.users, k=args.k, values=values, seed=args.seed,
        bootstrap_rounds=args.bootstrap,
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / EXPLANATION_FILES["probes"]
    table.to_csv(path, index=False)
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
