"""``python -m fairaudit simulate``: feedback-loop simulation with retraining, tracked with CIs per round."""

from __future__ import annotations

import argparse
import sys

HELP = "simulate feedback loops: recommend, click, retrain for several rounds, and track group gaps per round"
DESCRIPTION = """\
Fits a ground-truth preference model on all interactions (MF by default), then, for --seeds repeated
simulations, trains the model on the log (round 0) and runs --rounds rounds: every user gets a top-K
list (re-ranked by --mitigation when given), clicks are drawn from a position-based or cascade click
model, the clicks join the training data and the model is retrained from scratch or fine-tuned from
the previous weights (--retrain finetune). Writes OUT/:
  rounds.csv               per round, seed ("all" = pooled over seeds), attribute and group: true and logged
                           NDCG, their difference, clicks, popularity, homogenisation, exposure shares,
                           gaps vs. the rest (gap:<metric>), exposure Gini and coverage, with CIs
  drift.csv                every quantity's change against round 0, with a paired CI and `significant`
  recommendations.parquet  the lists of every round and seed, with the clicks
  timings.csv              fit and recommend seconds per round
  simulation.json          the settings, model and data
  models/round_NN/         the first seed's model of each --save-rounds round
  simulation.pdf           with --pdf: settings, every quantity's change, charts over rounds
See docs/dynamics.md for the click and consumption models and the statistics.

Examples:
  python -m fairaudit simulate --data sample_data --model-kind mf --rounds 10 --out sims/mf
  python -m fairaudit simulate --data sample_data --model models/mf --rounds 10 --popularity-bias 2 \\
      --mitigation rerank_exposure --strength 1 --out sims/mf_exposure
"""

_BAD_SAVE_ROUNDS = "--save-rounds: expected comma-separated whole rounds in 0..{0}; got {1!r}"
_RERANKER_MODEL = "--model: {0} is a re-ranker; pass its base model and --mitigation {1}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit._choices import CHOICE_MODELS, CONSUMPTIONS, RERANK_KINDS, RETRAIN_MODES, TRAINABLE_KINDS
    from fairaudit.cli._options import non_negative_float, positive_int, seed, unit_interval

    parser.add_argument("--data", required=True, help="dataset folder or file (as for `validate`)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="DIR", help="saved model whose kind and settings are simulated")
    source.add_argument("--model-kind", metavar="KIND", choices=TRAINABLE_KINDS, help="model kind with its defaults")
    parser.add_argument("--rounds", type=positive_int, default=10, help="retraining rounds after round 0 (default 10)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing simulation in --out")
    parser.add_argument("--mitigation", choices=RERANK_KINDS, help="re-ranker applied to the lists of every round")
    parser.add_argument("--strength", type=unit_interval, default=0.5, help="re-ranker lambda in [0, 1] (default 0.5)")
    parser.add_argument("--retrain", choices=RETRAIN_MODES, default="scratch",
                        help="retrain from scratch, or fine-tune from the previous weights (default scratch)")  # fmt: skip
    parser.add_argument("--finetune-epochs", type=positive_int, default=2, help="epochs per fine-tuning round (default 2)")
    parser.add_argument("--choice", choices=CHOICE_MODELS, default="position", help="click model (default position)")
    parser.add_argument("--no-click", type=bounded_no_click, default=0.3,
                        help="probability a user skips a round, in [0, 1) (default 0.3)")  # fmt: skip
    parser.add_argument("--consumption", choices=CONSUMPTIONS, default="repeat",
                        help="repeat: clicked items can be shown again; once: never (default repeat)")  # fmt: skip
    parser.add_argument("--popularity-bias", type=non_negative_float, default=0.0,
                        help="herding exponent of the click model (default 0: none)")  # fmt: skip
    parser.add_argument("--window", type=positive_int, help="retrain on the last N batches only (the log is the first)")
    parser.add_argument("--k", type=positive_int, default=10, help="list length K (default 10)")
    parser.add_argument("--attributes", default="gender", help="comma-separated user attributes (default gender)")
    parser.add_argument("--item-attribute", default="provider", help="item attribute of the exposure shares")
    parser.add_argument("--seeds", type=positive_int, default=3, help="repeated simulations (default 3)")
    parser.add_argument("--bootstrap", type=positive_int, default=200, help="bootstrap rounds (default 200)")
    parser.add_argument("--seed", type=seed, default=0, help="first simulation seed (default 0)")
    parser.add_argument("--pdf", action="store_true", help="also write OUT/simulation.pdf (charts need Chromium)")
    parser.add_argument("--save-rounds", default=None,
                        help="comma-separated rounds whose model is saved (default: 0 and the last)")  # fmt: skip


def bounded_no_click(text: str) -> float:
    """An argparse type: a no-click rate in ``[0, 1)``.

    >>> bounded_no_click("0.3")
    0.3
    """
    from fairaudit.cli._options import bounded_float

    return bounded_float(ge=0, lt=1)(text)


def run(args: argparse.Namespace) -> int:
    from fairaudit.cli._options import UsageError, check_item_attribute, check_user_attributes, number_list, text_list
    from fairaudit.data import load_dataset
    from fairaudit.dynamics import SimulationSettings, simulate
    from fairaudit.models import Reranker, create_model, load_model

    dataset = load_dataset(args.data)
    attributes = text_list(args.attributes) or ["gender"]
    check_user_attributes("--attributes", attributes, dataset)
    check_item_attribute("--item-attribute", args.item_attribute, dataset)
    model = load_model(args.model, dataset) if args.model else create_model(args.model_kind)
    if isinstance(model, Reranker):
        raise UsageError(_RERANKER_MODEL.format(args.model, model.kind))
    save_rounds = (0, args.rounds)
    if args.save_rounds is not None:
        chosen = number_list(args.save_rounds)
        if any(r != int(r) or not 0 <= r <= args.rounds for r in chosen):
            raise UsageError(_BAD_SAVE_ROUNDS.format(args.rounds, args.save_rounds))
        save_rounds = tuple(int(r) for r in chosen)
    settings = SimulationSettings(
        rounds=args.rounds, k=args.k, choice=args.choice, no_click=args.no_click, retrain=args.retrain,
        finetune_epochs=args.finetune_epochs, mitigation=args.mitigation, strength=args.strength,
        attributes=tuple(attributes), item_attribute=args.item_attribute, seeds=args.seeds, seed=args.seed,
        bootstrap=args.bootstrap, consumption=args.consumption, popularity_bias=args.popularity_bias,
        window=args.window, save_rounds=save_rounds,
    )  # fmt: skip
    result = simulate(dataset, model, settings, out=args.out, overwrite=args.overwrite,
                      progress=lambda line: print(line, file=sys.stderr))  # fmt: skip
    print(f"Simulation of {result.meta['model']['name']} over {args.rounds} rounds written to {args.out}")
    final = result.drift[(result.drift["round"] == args.rounds) & (result.drift["attribute"] == "all")]
    for row in final.itertuples():
        mark = "*" if row.significant else " "
        print(f" {mark} {row.metric}: {row.reference_value:.4f} -> {row.value:.4f} "
              f"(change {row.change:+.4f} [{row.ci_low:+.4f}, {row.ci_high:+.4f}])")  # fmt: skip
    print("* = change against round 0 whose CI (over users and seeds) excludes zero")
    if args.pdf:
        from pathlib import Path

        from fairaudit.report import build_simulation_report

        print(f"PDF written to {build_simulation_report(args.out, Path(args.out) / 'simulation.pdf')}")
    return 0
