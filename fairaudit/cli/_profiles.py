"""``python -m fairaudit profiles``: the audit of text profiles (who gains, what leaks, what markers change)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "audit text profiles: accuracy with vs without user texts, attribute leakage, gender-marker counterfactuals"
DESCRIPTION = """\
Audit an LLM recommender that reads users' own texts (trained with --use-texts) against the same
recommender without them, on the same test users, and write OUT as an audit folder (report, compare
and the dashboard open it) holding, besides the usual tables of both models and their comparison:
  profile_accuracy.csv     accuracy with minus without texts (NDCG, recall ...) overall, per user group,
                           per activity level and for users with / without texts (has_texts), with
                           paired-bootstrap 95% CIs: who gains?
  profile_leakage.csv      how well each sensitive attribute is recovered from the text profile, the
                           interaction-only user vector and the user vector with texts: out-of-fold
                           classifier accuracy vs the majority rate and AUC vs 0.5, with bootstrap CIs,
                           and each vector's difference to the interaction-only one
  text_counterfactual.csv  gender markers in every user's texts swapped (fairaudit.data.GENDER_MARKER_PAIRS:
                           pronouns, gendered nouns, names), profiles re-encoded, and the new top-K
                           compared with the original per user group: Jaccard@K, SERP*@K, PRAG*@K,
                           share of changed lists, share of users with a marker, exposure change
No text is written to OUT. Give both saved models (--model-with, --model-without; same data and
split), or neither: then both LLMs are trained here (--epochs, --seed) and saved to OUT/models/.
Columns: docs/profiles.md.

Examples:
  python -m fairaudit profiles --data sample_data --epochs 3 --out audits/profiles
  python -m fairaudit profiles --data sample_data --model-with models/llm_texts --model-without models/llm \\
      --attributes gender,age_band --out audits/profiles
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import positive_int, seed

    parser.add_argument("--data", required=True, help="dataset folder with user_texts.csv (as for `validate`)")
    parser.add_argument("--out", required=True, metavar="DIR", help="audit folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier audit folder in --out")
    parser.add_argument("--model-with", metavar="DIR", help="saved LLM trained with --use-texts")
    parser.add_argument("--model-without", metavar="DIR", help="saved LLM trained without texts (same split)")
    parser.add_argument("--epochs", type=positive_int, help="training epochs of both LLMs (without saved models)")
    parser.add_argument("--seed", type=seed, default=0, help="split, training, classifier and resampling seed")
    parser.add_argument("--attributes", help="comma-separated user attribute specs (default: the audit's, "
                        "activity included); leakage is measured for the plain ones but activity")
    parser.add_argument("--users", type=positive_int, default=None,
                        help="text counterfactual on a seeded sample of N users with texts (default: all)")
    parser.add_argument("--k", type=positive_int, default=10, help="list length K (default 10)")
    parser.add_argument("--folds", type=positive_int, default=3, help="folds of the leakage classifier (default 3)")
    parser.add_argument("--bootstrap", type=positive_int, default=200, help="bootstrap rounds (default 200)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.audit import is_audit_folder, split_for_model
    from fairaudit.cli._options import UsageError, check_user_attributes, text_list
    from fairaudit.data import check_folder_target, load_dataset, make_split
    from fairaudit.models import create_model, load_model
    from fairaudit.profiles import WITH_TEXTS, WITHOUT_TEXTS, run_profile_audit

    if (args.model_with is None) != (args.model_without is None):
        raise UsageError("--model-with and --model-without go together (or give neither to train both)")
    if args.model_with is not None and args.epochs is not None:
        raise UsageError("--epochs trains the models here; it does not apply to saved --model-with/--model-without")
    out = Path(args.out)
    check_folder_target(out, overwrite=args.overwrite, is_ours=is_audit_folder, kind="audit folder")
    dataset = load_dataset(args.data)
    if dataset.texts is None:
        raise UsageError(f"--data {args.data}: no user texts (user_texts.csv); see docs/profiles.md")
    specs = text_list(args.attributes)
    if specs:
        check_user_attributes("--attributes", [p for spec in specs for p in spec.split("*")], dataset)

    def say(line: str) -> None:
        print(line, file=sys.stderr)

    trained = {}
    if args.model_with is not None:
        model_with, model_without = load_model(args.model_with, dataset), load_model(args.model_without, dataset)
        split = split_for_model(dataset, model_without)
        if split_for_model(dataset, model_with).describe() != split.describe():
            raise UsageError("--model-with and --model-without were trained on different splits; train both on one")
    else:
        split = make_split(dataset, "random", seed=args.seed)
        params = {"seed": args.seed, **({} if args.epochs is None else {"epochs": args.epochs})}
        for name, use_texts in ((WITHOUT_TEXTS, False), (WITH_TEXTS, True)):
            say(f"training the LLM {name.replace('_', ' ')}")
            trained[name] = create_model("llm", use_texts=use_texts, **params).fit(dataset, split)
        model_with, model_without = trained[WITH_TEXTS], trained[WITHOUT_TEXTS]
    result = run_profile_audit(
        dataset, split, model_without, model_with, attributes=specs, k=args.k, rounds=args.bootstrap, seed=args.seed,
        users=args.users, folds=args.folds, progress=say,
    )  # fmt: skip
    result.meta["profiles"]["settings"] = {key: value for key, value in vars(args).items() if not key.startswith("_")}
    result.write(out, overwrite=args.overwrite)
    for name, model in trained.items():
        model.save(out / "models" / name, overwrite=args.overwrite)
    _print_summary(result)
    print(f"wrote {out}" + (f" (models in {out / 'models'})" if trained else ""))
    return 0


def _print_summary(result) -> None:
    """Headline lines: accuracy change overall and per activity level, leakage of the text profile, counterfactual."""
    accuracy = result.profile_accuracy
    rows = accuracy[(accuracy["quantity"] == "value") & (accuracy["metric"] == "ndcg")
                    & accuracy["attribute"].isin(["all", "activity", "has_texts"])]  # fmt: skip
    print("NDCG with minus without texts (95% CI):")
    for row in rows.itertuples():
        print(f"  {row.attribute}={row.group}: {row.difference:+.4f} [{row.ci_low:+.4f}, {row.ci_high:+.4f}]"
              f" (n={row.n_users})")
    leakage = result.profile_leakage
    rows = leakage[(leakage["reference"] == "chance") & (leakage["metric"] == "auc")]
    print("Attribute recovery AUC (chance 0.5):")
    for row in rows.itertuples():
        mark = " *" if row.significant else ""
        print(f"  {row.attribute} from {row.representation}: {row.estimate:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"
              f"{mark}")
    counterfactual = result.text_counterfactual
    rows = counterfactual[(counterfactual["metric"] == "jaccard") & (counterfactual["attribute"] != "activity")
                          & ~counterfactual["attribute"].str.contains("*", regex=False)]  # fmt: skip
    print("Text counterfactual (gender markers swapped): Jaccard@K of the new list with the original, per group "
          "(intersections in text_counterfactual.csv)")
    for row in rows.itertuples():
        print(f"  {row.attribute}={row.group}: {row.value:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}] (n={row.n_users})")
