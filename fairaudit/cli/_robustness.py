"""``python -m fairaudit robustness``: attack a model at several strengths and audit who the attack hurts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "attack a model (shilling, fgsm, pgd, noise) at several strengths and audit the damage by group"
DESCRIPTION = """\
Attack --model at each strength and audit the clean and attacked models on the same test users:
  shilling   inject fake users (a share of the genuine ones: --strengths 0,0.01,0.03) following an
             attack model (--shilling random|average|bandwagon|segment) that pushes (or nukes)
             target items (--target ITEM..., or --target-attribute/--target-group, default: a
             mid-popularity item), then re-train the model's kind and settings on the poisoned data
  fgsm, pgd  perturb the learned user and/or item vectors (LLM, MF) within an L2 ball of radius
             epsilon x their mean norm (--strengths 0,0.05,0.1), maximising the ranking loss of the
             clean top-K; Gaussian noise of the same norm is audited beside each strength
  noise      Gaussian (or --noise sign) perturbations only
The data on disk are never modified: poisoned data live in memory and, as the fake profiles, in OUT.
Writes OUT/:
  summary.csv   one row per attacked model: accuracy drop with CI, worst group's drop, target
                exposure lift with CI and hit ratio (shilling), largest gap change, detector
                precision/recall on the injected profiles (shilling)
  audit/        audit folder of the clean and attacked models, with robustness.csv (every group's
                change with paired-bootstrap CIs) and the comparison; `report --audit OUT/audit`
                adds a robustness section to the PDF
  poisoned/<model>/fake_profiles.csv   the injected profiles (shilling)
  robustness.json   the settings of the run

Examples:
  python -m fairaudit robustness --data sample_data --model models/llm --attack shilling \\
      --strengths 0,0.03 --out runs/shilling
  python -m fairaudit robustness --data sample_data --model models/llm --attack pgd --strengths 0,0.1 \\
      --out runs/pgd
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit._choices import ATTACKS, INTENTS, NOISES, PGD_STEPS, ROBUSTNESS_ROUNDS, SHILLING_KINDS, SIDES
    from fairaudit.cli._options import positive_int, seed
    from fairaudit.cli._sweep import strengths

    parser.add_argument("--data", required=True, help="dataset folder or file (as for `validate`)")
    parser.add_argument("--model", required=True, metavar="DIR", help="saved model folder; its split is re-created")
    parser.add_argument("--attack", required=True, choices=ATTACKS, help="attack family")
    parser.add_argument(
        "--strengths", type=strengths, default="0,0.03",
        help="comma-separated strengths: share of fake users (shilling) or relative epsilon (default 0,0.03)",
    )  # fmt: skip
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier robustness run in --out")
    parser.add_argument("--shilling", choices=SHILLING_KINDS, default="bandwagon", help="shilling attack model")
    parser.add_argument("--intent", choices=INTENTS, default="push", help="push (promote) or nuke (demote) targets")
    parser.add_argument("--target", nargs="+", metavar="ITEM", help="target item ids (shilling)")
    parser.add_argument("--target-attribute", metavar="COLUMN", help="item column of a target item group")
    parser.add_argument("--target-group", metavar="VALUE", help="the target group's value in --target-attribute")
    parser.add_argument("--side", choices=SIDES, default="both", help="vectors perturbed (fgsm, pgd, noise)")
    parser.add_argument("--noise", choices=NOISES, default="gaussian", help="noise baseline kind")
    parser.add_argument("--steps", type=positive_int, default=PGD_STEPS, help=f"PGD steps (default {PGD_STEPS})")
    parser.add_argument("--k", type=positive_int, default=10, help="list length K (default 10)")
    parser.add_argument("--attributes", nargs="+", metavar="SPEC", help="user attributes to slice by (default: audit's)")
    parser.add_argument(
        "--item-attribute", default="popularity_tier", help="item attribute of the exposure shares (default popularity_tier)"
    )
    parser.add_argument("--bootstrap", type=positive_int, default=ROBUSTNESS_ROUNDS,
                        help=f"bootstrap rounds (default {ROBUSTNESS_ROUNDS})")
    parser.add_argument("--seed", type=seed, default=0, help="attack and resampling seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.audit import split_for_model
    from fairaudit.cli._options import UsageError, check_item_attribute, number_list
    from fairaudit.data import load_dataset, write_bytes_atomic
    from fairaudit.models import load_model, model_vectors
    from fairaudit.robustness import ShillingAttack, choose_targets, run_robustness

    values = list(number_list(args.strengths))
    if args.attack == "shilling" and max(values) > 1:
        raise UsageError(f"--strengths: a shilling strength is a share of fake users in [0, 1]; got {max(values)}")
    if (args.target_attribute is None) != (args.target_group is None):
        raise UsageError("--target-attribute and --target-group go together")
    dataset = load_dataset(args.data)
    model = load_model(args.model, dataset)
    split = split_for_model(dataset, model)
    if args.attack != "shilling":
        try:
            model_vectors(model)
        except ValueError as err:
            raise UsageError(f"--attack {args.attack}: {err}") from None
    check_item_attribute("--item-attribute", args.item_attribute, dataset)
    shilling = None
    if args.attack == "shilling":
        try:
            targets = choose_targets(dataset, split, items=args.target, item_attribute=args.target_attribute,
                                     item_group=args.target_group)  # fmt: skip
        except ValueError as err:
            raise UsageError(str(err)) from None
        shilling = ShillingAttack(kind=args.shilling, targets=targets, intent=args.intent, seed=args.seed)
    out = Path(args.out)
    result = run_robustness(
        dataset, split, model, attack=args.attack, strengths=values, shilling=shilling, side=args.side,
        noise=args.noise, steps=args.steps, k=args.k, attributes=args.attributes, item_attribute=args.item_attribute,
        rounds=args.bootstrap, seed=args.seed, out=out, overwrite=args.overwrite,
        progress=lambda line: print(line, file=sys.stderr),
    )  # fmt: skip
    settings = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    document = json.dumps({"settings": settings, "split": split.describe(), "targets": list(result.targets)}, indent=1)
    write_bytes_atomic(out / "robustness.json", document.encode("utf-8"))
    print(f"Robustness of {args.model} to {args.attack} over {values} written to {out}")
    for row in result.summary.itertuples():
        line = (f"  {row.model}: {row.metric} {row.clean:.4f} -> {row.attacked:.4f} (drop {row.drop:+.4f} "
                f"[{row.drop_ci_low:+.4f}, {row.drop_ci_high:+.4f}])")  # fmt: skip
        if row.worst_group:
            line += f", worst group {row.worst_attribute}={row.worst_group} drop {row.worst_group_drop:+.4f}"
        if row.target_exposure_lift == row.target_exposure_lift:  # not NaN
            line += (f", target exposure lift {row.target_exposure_lift:+.4f} [{row.target_exposure_lift_ci_low:+.4f}, "
                     f"{row.target_exposure_lift_ci_high:+.4f}], hit ratio {row.hit_ratio_clean:.3f} -> "
                     f"{row.hit_ratio_attacked:.3f}")  # fmt: skip
        if row.exposure_shift_group:
            line += (f", largest exposure shift {row.exposure_shift_group} {row.exposure_shift:+.4f} "
                     f"[{row.exposure_shift_ci_low:+.4f}, {row.exposure_shift_ci_high:+.4f}]")
        if row.detector_recall == row.detector_recall:
            line += f", detector precision {row.detector_precision:.2f} recall {row.detector_recall:.2f}"
        print(line)
    return 0
