"""``python -m fairaudit train``: fit a recommender and save it as a model folder."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

HELP = "train a recommender (llm, popularity, itemknn, mf) and save it to a folder"
DESCRIPTION = """\
Load --data (default: the bundled sample), split it (--split), fit --model on the training
part with a progress bar on stderr, print NDCG@10 and Recall@10 on the held-out part, and
write the model folder --out (config.json + model.safetensors; never pickled).

Example:
  python -m fairaudit train --data ml-100k --model llm --epochs 50 --out models/llm
  python -m fairaudit train --model mf --split cold_items --out models/mf-cold
"""

#: Model kind trained when --model is not given.
DEFAULT_KIND = "llm"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import (
        device, encoder_folder, llm_choices, llm_default, non_negative_float, positive_int, seed,
    )  # fmt: skip
    from fairaudit.data import SPLIT_METHODS
    from fairaudit.models import ADVERSARY_OBJECTIVES, FAIRNESS_KINDS
    from fairaudit.service import trainable_kinds

    parser.add_argument("--data", default=None, help="dataset folder/file (default: the bundled sample)")
    parser.add_argument(
        "--model", choices=trainable_kinds(), default=DEFAULT_KIND, help="model kind (default: %(default)s)"
    )
    parser.add_argument("--out", required=True, help="folder to write the model to")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model folder --out (refused otherwise)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (llm) or ALS sweeps (mf)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the split and the model")
    parser.add_argument("--device", type=device, default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
    parser.add_argument("--encoder", type=encoder_folder, default=None, help="local Hugging Face model folder (llm; default MiniLM)")
    parser.add_argument("--split", choices=SPLIT_METHODS, default="random")
    parser.add_argument("--use-profile", action="store_true", help="llm: read a profile text of user attributes")
    parser.add_argument(
        "--fairness", choices=FAIRNESS_KINDS, default=llm_default("fairness"),
        help="llm: in-training mitigation term added to the loss (see fairaudit.models._losses; default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--fairness-weight", type=non_negative_float, default=llm_default("fairness_weight"), help="llm: weight lambda of --fairness"
    )
    parser.add_argument(
        "--fairness-attribute", default=llm_default("fairness_attribute"),
        help="llm: user column of the difference/adversarial term",
    )  # fmt: skip
    parser.add_argument(
        "--exposure-attribute", default=llm_default("exposure_attribute"), help="llm: item column of the exposure term"
    )
    parser.add_argument(
        "--adversary-objective", choices=ADVERSARY_OBJECTIVES, default=llm_default("adversary_objective"),
        help="llm: the user tower's objective against the adversarial term (default %(default)s; "
        "reversal = gradient reversal, for comparison)",
    )  # fmt: skip
    parser.add_argument(
        "--pooling", choices=llm_choices("pooling"), default=llm_default("pooling"),
        help="llm: history pooling; mean removes history length from user vectors (use it with adversarial)",
    )  # fmt: skip
    parser.add_argument("--k", type=positive_int, default=10, help="cut-off of the holdout quality print")


def model_params(args: argparse.Namespace) -> dict[str, Any]:
    """Hyper-parameters implied by the command-line options for ``args.model``.

    >>> ns = argparse.Namespace(model="mf", epochs=5, seed=1, device="cpu", encoder=None, use_profile=False)
    >>> model_params(ns)
    {'seed': 1, 'iterations': 5, 'device': 'cpu'}
    """
    params: dict[str, Any] = {"seed": args.seed}
    if args.model == "mf":
        params.update({} if args.epochs is None else {"iterations": args.epochs})
        params["device"] = args.device
    if args.model == "llm":
        params.update({} if args.epochs is None else {"epochs": args.epochs})
        params.update(device=args.device, encoder=args.encoder, use_profile=args.use_profile, pooling=args.pooling)
        params.update(
            fairness=args.fairness, fairness_weight=args.fairness_weight,
            fairness_attribute=args.fairness_attribute, exposure_attribute=args.exposure_attribute,
            adversary_objective=args.adversary_objective,
        )  # fmt: skip
    return params


def progress_printer():
    """A ``fit(progress=...)`` callback drawing a tqdm bar of epochs and loss on stderr."""
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def callback(event) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=event.n_epochs, desc="training", unit="epoch", file=sys.stderr)
        bar.set_postfix(loss=f"{event.loss:.4f}")
        bar.update(event.epoch - bar.n)
        if event.epoch >= event.n_epochs:
            bar.close()

    return callback


def check_attributes(args: argparse.Namespace, dataset) -> None:
    """Refuse (naming the option) a fairness term's user or item column that ``dataset`` lacks."""
    from fairaudit.cli._options import check_values

    if args.model != "llm" or args.fairness == "none":
        return
    if args.fairness == "exposure":
        columns = [c for c in dataset.items.columns if c not in ("item_id", "title", "description")]
        check_values("--exposure-attribute", [args.exposure_attribute], columns, "item attributes")
    else:
        columns = [c for c in dataset.users.columns if c != "user_id"]
        check_values("--fairness-attribute", [args.fairness_attribute], columns, "user attributes")


def run(args: argparse.Namespace) -> int:
    from fairaudit.data import check_folder_target, load_dataset, load_sample, make_split
    from fairaudit.models import create_model, is_model_folder
    from fairaudit.service import holdout_quality

    # Refused before training, not after it; the atomic save checks again under its lock.
    check_folder_target(args.out, overwrite=args.overwrite, is_ours=is_model_folder, kind="model folder")
    dataset = load_sample() if args.data is None else load_dataset(args.data)
    check_attributes(args, dataset)
    split = make_split(dataset, args.split, seed=args.seed)
    model = create_model(args.model, **model_params(args))
    start = time.perf_counter()
    model.fit(dataset, split, progress=progress_printer())
    fit_s = time.perf_counter() - start
    model.save(args.out, overwrite=args.overwrite)
    quality = holdout_quality(model, split, k=args.k)
    print(
        f"{args.model}: trained in {fit_s:.1f}s on {len(split.train):,} interactions ({args.split} split); "
        f"holdout NDCG@{args.k} {quality['ndcg']:.4f}, Recall@{args.k} {quality['recall']:.4f}; saved to {args.out}"
    )
    return 0
