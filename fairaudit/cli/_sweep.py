"""``python -m fairaudit sweep``: run a mitigation over a grid of strengths and write the trade-off curve."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

HELP = "run a mitigation at several strengths and write the accuracy-fairness trade-off (sweep.csv)"
DESCRIPTION = """\
Train (in-training terms of the LLM recommender: difference, exposure, adversarial) or wrap
(re-rankers: rerank_exposure, rerank_calibrated, rerank_mmr) one model per strength, audit each
one on the same split, and write OUT/:
  sweep.csv     one row per strength: accuracy with CI, the user-group gap and the item exposure gap
                with CIs, the targeted quantity, paired-bootstrap accuracy cost and target improvement
                vs. the lowest strength, and fit/audit time per point
  sweep.json    the settings of the run
  models/<mitigation>@<strength>/   each point's model (load, audit or compare it like any model)
Points on the Pareto front (higher accuracy, smaller targeted gap) are listed at the end.
Without --model, the adversarial sweep trains LLMs with mean history pooling: sqrt pooling (the
model default) writes history length into the user vectors, which no adversary can fully remove.
--pooling and --epochs set every in-training point's pooling and epochs (over --model's too).
privacy trains the LLM with DP-SGD at each target epsilon (--strengths, default inf,8,3,1; inf = the
non-private twin, the reference); sweep.csv's epsilon column holds the epsilon each point spent.

Examples:
  python -m fairaudit sweep --data sample_data --mitigation rerank_exposure --strengths 0,0.25,0.5,1 \\
      --base-model itemknn --out sweeps/exposure
  python -m fairaudit sweep --data sample_data --mitigation difference --strengths 0,1,4 --epochs 5 \\
      --attribute gender --out sweeps/difference
  python -m fairaudit sweep --data sample_data --mitigation privacy --strengths inf,8,3,1 --epochs 5 \\
      --attribute activity --out sweeps/privacy      # DP-SGD at each target epsilon (docs/privacy.md)
"""


_STRENGTH_ABOVE_ONE = "argument --strengths: a re-ranker's strength is a lambda in [0, 1]; got {0} for {1}"


def parse_strengths(text: str) -> tuple[float, ...]:
    """Comma-separated strengths >= 0; ``inf`` is allowed (a privacy sweep's point trained without DP).

    >>> parse_strengths("inf,8, 3,1")
    (inf, 8.0, 3.0, 1.0)
    """
    from fairaudit.cli._options import number_list

    parts = [part.strip() for part in text.split(",") if part.strip()]
    return tuple(math.inf if p.lower() in ("inf", "infinity") else number_list(p)[0] for p in parts) or number_list(text)


def strengths(text: str) -> str:
    """An argparse type: comma-separated strengths >= 0 (kept as written, as ``sweep.json`` records it).

    >>> strengths("0,0.5,1")
    '0,0.5,1'
    """
    parse_strengths(text)
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit._choices import ACCURACY_METRICS, MITIGATIONS, SPLIT_METHODS, TRAINABLE_KINDS
    from fairaudit.cli._options import llm_choices, positive_int, seed

    parser.add_argument("--data", required=True, help="dataset folder or file (as for `validate`)")
    parser.add_argument("--mitigation", required=True, choices=MITIGATIONS, help="which mitigation to sweep")
    parser.add_argument(
        "--strengths", type=strengths, default=None,
        help="comma-separated strengths: re-ranking lambda in [0, 1], fairness weight >= 0 (default 0,0.25,0.5,1), "
        "or for privacy the target epsilons, inf = without DP (default inf,8,3,1)",
    )  # fmt: skip
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--model", metavar="DIR",
        help="saved model: the base to re-rank, or the LLM whose settings each mitigated point re-uses; "
        "its split is re-created and verified",
    )  # fmt: skip
    source.add_argument(
        "--base-model", metavar="KIND", choices=TRAINABLE_KINDS,
        help="model kind to train first (default: itemknn for re-rankers, llm for in-training terms)",
    )  # fmt: skip
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for sweep.csv, sweep.json and models/")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing sweep in --out (refused otherwise)")
    parser.add_argument("--split", choices=SPLIT_METHODS, default="random", help="split method when no --model is given (default random)")
    parser.add_argument("--k", type=positive_int, default=10, help="list length K (default 10)")
    parser.add_argument("--attribute", default="gender", help="user attribute of the gap (default gender)")
    parser.add_argument("--metric", choices=ACCURACY_METRICS, default="ndcg", help="accuracy metric (default ndcg)")
    parser.add_argument(
        "--item-attribute", default="provider", help="item attribute of the exposure gap (default provider)"
    )
    parser.add_argument("--epochs", type=positive_int, help="training epochs of each LLM point (in-training mitigations)")
    parser.add_argument(
        "--use-texts", action="store_true",
        help="each LLM point reads the users' texts as a profile (in-training mitigations; adversarial: the "
        "recovery measured from its user vectors then includes the text term, docs/profiles.md)",
    )  # fmt: skip
    parser.add_argument(
        "--pooling", choices=llm_choices("pooling"),
        help="history pooling of each LLM point (in-training mitigations; default: the --model's, or mean for "
        "adversarial and sqrt otherwise)",
    )  # fmt: skip
    parser.add_argument(
        "--candidates", type=positive_int, help="re-rankers: size of the base model's candidate pool (default 100)"
    )
    parser.add_argument(
        "--embedding", choices=("auto", "text", "genres"),
        help="rerank_mmr: item vectors (default auto: LLM text embeddings when available, else genres)",
    )  # fmt: skip
    parser.add_argument("--bootstrap", type=positive_int, default=200, help="bootstrap rounds (default 200)")
    parser.add_argument("--seed", type=seed, default=0, help="split, training and resampling seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.audit import split_for_model
    from fairaudit.data import load_dataset, make_split, write_bytes_atomic
    from fairaudit.metrics import pareto_front
    from fairaudit.sweep import run_sweep
    from fairaudit.models import load_model

    from fairaudit.cli._options import UsageError, check_item_attribute, check_user_attributes
    from fairaudit.models import RERANK_KINDS

    strengths = list(parse_strengths(args.strengths)) if args.strengths is not None else None
    if strengths and args.mitigation != "privacy" and math.inf in strengths:
        raise UsageError(f"argument --strengths: inf is a privacy sweep's epsilon (no DP); {args.mitigation} needs finite strengths")
    if strengths and args.mitigation in RERANK_KINDS and max(strengths) > 1:
        raise UsageError(_STRENGTH_ABOVE_ONE.format(max(strengths), args.mitigation))
    dataset = load_dataset(args.data)
    check_user_attributes("--attribute", [args.attribute], dataset)
    check_item_attribute("--item-attribute", args.item_attribute, dataset)
    if args.model:
        model = load_model(args.model, dataset)
        split = split_for_model(dataset, model)
    else:
        split = make_split(dataset, args.split, seed=args.seed)
        model = None
    params = {"seed": args.seed}
    template = {}
    if args.mitigation not in RERANK_KINDS:  # in-training terms and APR re-train the LLM
        template = {k: v for k, v in (("epochs", args.epochs), ("pooling", args.pooling)) if v is not None}
        template.update({"use_texts": True} if args.use_texts else {})
    rerank_params = {"n_candidates": args.candidates} if args.candidates is not None else {}
    if args.embedding is not None and args.mitigation == "rerank_mmr":
        rerank_params["embedding"] = args.embedding
    out = Path(args.out)
    frame = run_sweep(
        dataset, split, mitigation=args.mitigation, strengths=strengths, model=model, model_kind=args.base_model,
        model_params=params if model is None else None, rerank_params=rerank_params, template_params=template, k=args.k,
        attribute=args.attribute, metric=args.metric, item_attribute=args.item_attribute, rounds=args.bootstrap,
        seed=args.seed, out=out, overwrite=args.overwrite, progress=lambda line: print(line, file=sys.stderr),
    )  # fmt: skip
    settings = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    settings["strengths"] = args.strengths or ",".join(f"{s:g}" for s in frame["strength"])  # the defaults used
    document = json.dumps({"settings": settings, "split": split.describe()}, indent=1)
    write_bytes_atomic(out / "sweep.json", document.encode("utf-8"))
    print(f"Sweep of {args.mitigation} over {frame['strength'].tolist()} written to {out / 'sweep.csv'}")
    target, goal = frame["target_metric"].iloc[0], frame["target_goal"].iloc[0]
    front = frame[pareto_front(frame, "accuracy", "target", gap_goal=goal)]
    for row in frame.itertuples():
        mark = "*" if row.Index in front.index else " "
        print(
            f" {mark} strength {row.strength:g}{f' (epsilon spent {row.epsilon:.3f})' if math.isfinite(row.epsilon) else ''}: "
            f"{row.accuracy_metric} {row.accuracy:.4f} "
            f"(cost {row.accuracy_cost:+.4f} [{row.accuracy_cost_ci_low:+.4f}, {row.accuracy_cost_ci_high:+.4f}]), "
            f"{target} {row.target:+.4f} (improvement {row.target_improvement:+.4f} "
            f"[{row.target_improvement_ci_low:+.4f}, {row.target_improvement_ci_high:+.4f}]), {row.time_s:.1f}s"
        )
    print("* = on the Pareto front (accuracy vs. targeted quantity)")
    return 0
