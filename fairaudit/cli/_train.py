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

Iterative models (llm, mf) hold out 10% of each user's training interactions for validation and
stop when validation NDCG@10 has not improved for --patience epochs (0: no validation, train
--epochs). --tune tries a fixed grid per kind (fairaudit.models.TUNING_GRIDS: popularity 1 fit,
itemknn 12, mf 12, llm 3) and keeps the best on validation; the test part is never read. The
chosen settings and the validation curve are saved under "validation" in config.json.
--threads bounds the CPU threads (default: physical cores).

Example:
  python -m fairaudit train --data ml-100k --model llm --epochs 50 --out models/llm
  python -m fairaudit train --model mf --split cold_items --out models/mf-cold
  python -m fairaudit train --data ml-100k --model mf --tune --threads 2 --out models/mf-tuned
"""

#: Model kind trained when --model is not given.
DEFAULT_KIND = "llm"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import (
        bounded_float, bounded_int, device, encoder_folder, llm_choices, llm_default, non_negative_float, positive_int,
        probability, seed,
    )  # fmt: skip
    from fairaudit._choices import (
        ADVERSARY_OBJECTIVES, ALGORITHMS, FAIRNESS_KINDS, SPLIT_METHODS, TRAINABLE_KINDS, TUNING_PATIENCE,
    )  # fmt: skip

    parser.add_argument("--data", default=None, help="dataset folder/file (default: the bundled sample)")
    parser.add_argument(
        "--model", choices=TRAINABLE_KINDS, default=DEFAULT_KIND, help="model kind (default: %(default)s)"
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
        "--use-texts", action="store_true",
        help="llm: add each user's text profile (their own texts, user_texts.csv; docs/profiles.md) to the user tower",
    )  # fmt: skip
    parser.add_argument(
        "--text-half-life", type=bounded_float(gt=0), default=None, metavar="DAYS",
        help="llm with --use-texts: recency weighting of the texts (a text DAYS older weighs half; default: plain mean)",
    )  # fmt: skip
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
        "--adv-epsilon", type=non_negative_float, default=llm_default("adv_epsilon"),
        help="llm: APR adversarial training radius, relative to the mean vector norm (docs/robustness.md; default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--adv-weight", type=non_negative_float, default=llm_default("adv_weight"),
        help="llm: weight of the APR adversarial loss (0 = off, the default; 0.1 kept accuracy in docs/benchmarks.md)",
    )  # fmt: skip
    parser.add_argument(
        "--pooling", choices=llm_choices("pooling"), default=llm_default("pooling"),
        help="llm: history pooling; mean removes history length from user vectors (use it with adversarial)",
    )  # fmt: skip
    parser.add_argument("--k", type=positive_int, default=10, help="cut-off of the holdout quality print")
    parser.add_argument(
        "--patience", type=bounded_int(ge=0), default=None,
        help="llm, mf: stop when validation NDCG@10 has not improved for this many epochs (0: no validation; "
        f"default: {', '.join(f'{kind} {n}' for kind, n in TUNING_PATIENCE.items())})",
    )  # fmt: skip
    parser.add_argument(
        "--tune", action="store_true",
        help="choose hyper-parameters on the validation split from a fixed grid (budget: one fit per grid entry)",
    )  # fmt: skip
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="als", help="mf: als or bpr (default %(default)s)")
    parser.add_argument("--lm", default=None, metavar="DIR",
                        help="generative: local Hugging Face causal-LM folder (default: the packaged SmolLM2-135M)")
    parser.add_argument("--lm-mode", choices=("rank", "generate"), default="rank",
                        help="generative: rank candidates by title likelihood (default) or generate titles")
    parser.add_argument(
        "--dp-epsilon", type=bounded_float(gt=0), default=None, metavar="EPS",
        help="llm: differentially private training (DP-SGD, user-level) to this target epsilon (docs/privacy.md; "
        "default: off); early stopping is then off",
    )  # fmt: skip
    parser.add_argument("--dp-delta", type=probability, default=None, help="llm with --dp-epsilon: delta (default 1/n_users^1.1)")
    parser.add_argument(
        "--dp-max-grad-norm", type=bounded_float(gt=0), default=llm_default("dp_max_grad_norm"), metavar="C",
        help="llm with --dp-epsilon: per-user gradient clipping norm (default %(default)s)",
    )  # fmt: skip


def model_params(args: argparse.Namespace) -> dict[str, Any]:
    """Hyper-parameters implied by the command-line options for ``args.model``.

    >>> ns = argparse.Namespace(model="mf", epochs=5, seed=1, device="cpu", encoder=None, use_profile=False)
    >>> model_params(ns)
    {'seed': 1, 'iterations': 5, 'device': 'cpu'}
    >>> model_params(argparse.Namespace(model="mf", epochs=None, seed=0, device="cpu", patience=None, algorithm="bpr"))
    {'seed': 0, 'device': 'cpu', 'patience': 5, 'algorithm': 'bpr'}
    """
    from fairaudit._choices import TUNING_PATIENCE

    params: dict[str, Any] = {"seed": args.seed}
    patience = getattr(args, "patience", 0)
    patience = TUNING_PATIENCE.get(args.model) if patience is None else (patience or None)
    if args.model == "mf":
        params.update({} if args.epochs is None else {"iterations": args.epochs})
        params["device"] = args.device
        params.update({} if patience is None else {"patience": patience})
        params.update({} if getattr(args, "algorithm", "als") == "als" else {"algorithm": args.algorithm})
    if args.model == "llm":
        params.update({} if args.epochs is None else {"epochs": args.epochs})
        params.update(device=args.device, encoder=args.encoder, use_profile=args.use_profile, pooling=args.pooling)
        if getattr(args, "use_texts", False):
            params.update(use_texts=True, text_half_life_days=args.text_half_life)
        params.update(
            fairness=args.fairness, fairness_weight=args.fairness_weight,
            fairness_attribute=args.fairness_attribute, exposure_attribute=args.exposure_attribute,
            adversary_objective=args.adversary_objective,
        )  # fmt: skip
        params.update(adv_epsilon=args.adv_epsilon, adv_weight=args.adv_weight)
        dp = getattr(args, "dp_epsilon", None) is not None  # DP: no early stopping unless asked (then refused)
        params.update({} if patience is None or (dp and args.patience is None) else {"patience": patience})
        if dp:
            params.update(dp_epsilon=args.dp_epsilon, dp_delta=args.dp_delta, dp_max_grad_norm=args.dp_max_grad_norm)
    if args.model == "generative":  # --epochs = LoRA fine-tuning passes (none by default)
        params.update({} if args.epochs is None else {"finetune_epochs": args.epochs})
        params.update(device=args.device, lm=getattr(args, "lm", None), mode=getattr(args, "lm_mode", "rank"))
    return params


def holdout_convention(split) -> str:
    """How the printed holdout figure treats cold-start items, in words.

    >>> from fairaudit.data import Split
    >>> import pandas as pd
    >>> holdout_convention(Split(pd.DataFrame(), pd.DataFrame(), "random", 0))
    'all unseen catalogue items ranked for each test user (no cold-start items)'
    """
    if split.cold_items:
        return (
            f"cold-start convention: the {len(split.cold_items)} withheld items are ranked against the whole "
            "catalogue (every item the user has not seen), as audits rank them; bench/bench_models.py's "
            "cold-start figure ranks them among the withheld items only"
        )
    return "all unseen catalogue items ranked for each test user (no cold-start items)"


def validation_summary(model) -> str:
    """One line on what validation chose (empty when the model did not validate)."""
    record = getattr(model, "validation_", None)
    if not record:
        return ""
    best = max(record["curve"], key=lambda point: point["value"])
    chosen = ", ".join(f"{name}={value}" for name, value in record["chosen"].items())
    tried = f" over {len(record['trials'])} settings" if "trials" in record else ""
    return f"validation {record['metric']} {best['value']:.4f}{tried}; chosen {chosen}"


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


def check_privacy(args: argparse.Namespace) -> None:
    """Refuse (naming the option) DP options that cannot apply: never a silent non-private model."""
    from fairaudit.cli._options import UsageError
    from fairaudit.models import refuse_dp_kind

    if getattr(args, "dp_epsilon", None) is None:
        if getattr(args, "dp_delta", None) is not None:
            raise UsageError("--dp-delta needs --dp-epsilon (differentially private training is off without it)")
        return
    if args.model != "llm":
        raise UsageError(f"--dp-epsilon: {refuse_dp_kind(args.model)}")
    if args.tune:
        raise UsageError("--dp-epsilon with --tune: tuning chooses settings on a validation share of the private "
                         "interactions, which the privacy accounting does not cover; drop --tune")
    if args.patience:
        raise UsageError("--dp-epsilon with --patience: early stopping reads a validation share of the private "
                         "interactions, which the privacy accounting does not cover; drop --patience")


def check_attributes(args: argparse.Namespace, dataset) -> None:
    """Refuse (naming the option) a fairness term's user or item column that ``dataset`` lacks."""
    from fairaudit.cli._options import check_item_attribute, check_user_attributes

    if args.model != "llm" or args.fairness == "none":
        return
    if args.fairness == "exposure":
        check_item_attribute("--exposure-attribute", args.exposure_attribute, dataset)
    else:
        check_user_attributes("--fairness-attribute", [args.fairness_attribute], dataset)


def check_texts(args: argparse.Namespace, dataset) -> None:
    """Refuse (naming the option) --use-texts on a dataset without texts, or --text-half-life without --use-texts."""
    from fairaudit.cli._options import UsageError

    if getattr(args, "text_half_life", None) is not None and not getattr(args, "use_texts", False):
        raise UsageError("--text-half-life needs --use-texts")
    if not getattr(args, "use_texts", False):
        return
    if args.model != "llm":
        raise UsageError(f"--use-texts: only the llm model reads texts, not {args.model!r}")
    if dataset.texts is None:
        raise UsageError(f"--use-texts: dataset {dataset.name!r} has no user texts; add user_texts.csv "
                         "(user_id, text) beside the interactions (docs/profiles.md)")  # fmt: skip
    if args.text_half_life is not None and "timestamp" not in dataset.texts:
        raise UsageError("--text-half-life: the user texts have no timestamp column")


def run(args: argparse.Namespace) -> int:
    from fairaudit.data import check_folder_target, load_dataset, load_sample, make_split
    from fairaudit.models import create_model, is_model_folder
    from fairaudit.service import holdout_quality

    # Refused before training, not after it; the atomic save checks again under its lock.
    check_folder_target(args.out, overwrite=args.overwrite, is_ours=is_model_folder, kind="model folder")
    check_privacy(args)
    dataset = load_sample() if args.data is None else load_dataset(args.data)
    check_attributes(args, dataset)
    check_texts(args, dataset)
    split = make_split(dataset, args.split, seed=args.seed)
    start = time.perf_counter()
    if args.tune:
        from fairaudit.models import tune

        def trial(number: int, total: int, settings: dict, value: float) -> None:
            print(f"trial {number}/{total}: {settings} validation NDCG@10 {value:.4f}", file=sys.stderr)

        model = tune(args.model, dataset, split, params=model_params(args), seed=args.seed, on_trial=trial).model
    else:
        model = create_model(args.model, **model_params(args))
        model.fit(dataset, split, progress=progress_printer())
    fit_s = time.perf_counter() - start
    model.save(args.out, overwrite=args.overwrite)
    quality = holdout_quality(model, split, k=args.k)
    print(
        f"{args.model}: trained in {fit_s:.1f}s on {len(split.train):,} interactions ({args.split} split); "
        f"holdout NDCG@{args.k} {quality['ndcg']:.4f}, Recall@{args.k} {quality['recall']:.4f}; saved to {args.out}"
    )
    print(f"holdout: {holdout_convention(split)}")
    summary = validation_summary(model)
    if summary:
        print(summary)
    if getattr(model, "privacy_", None) is not None:
        from fairaudit.models import privacy_summary

        print(f"privacy: {privacy_summary(model.privacy_)}")
    return 0
