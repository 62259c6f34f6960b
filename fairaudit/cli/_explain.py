"""``python -m fairaudit explain``: SHAP explanation of one user's recommendation."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "explain one recommendation with SHAP (history items, profile attributes, item words)"
DESCRIPTION = """\
Attribute the model's score for USER and ITEM (default: the user's top recommendation) to the
user's history items (present/removed), the profile attributes the model reads (value/unknown)
and the words of the item's text, with the shap library over the model's own scoring function.
Needs a model that can re-score edited histories (llm, itemknn; item words: llm only). Prints
the largest contributions; with --out writes OUT/explanation.csv (user_id, item_id, kind,
feature, feature_value, shap_value, base_value, prediction).

Example:
  python -m fairaudit explain --model models/llm --data sample_data --user 42
"""

#: File written with ``--out``.
EXPLANATION_FILE = "explanation.csv"


_NOT_EXPLAINABLE = (
    "--model: a {0!r} model cannot be explained (it cannot re-score an edited history); "
    "explain works on the kinds {1}"
)
_UNKNOWN_ID = "{0}: {1} {2!r} is not known to the model (not in its training data); e.g. {3}"


def explainable_kinds() -> tuple[str, ...]:
    """Model kinds whose recommendations ``explain`` can attribute (they re-score edited histories).

    >>> "llm" in explainable_kinds() and "popularity" not in explainable_kinds()
    True
    """
    from fairaudit.models import create_model
    from fairaudit.service import trainable_kinds

    return tuple(kind for kind in trainable_kinds() if hasattr(create_model(kind), "score_with_history"))


def check_request(model, user: str, item: str | None) -> None:
    """Refuse, naming the option, a model kind that cannot be explained or a user/item it does not know."""
    from fairaudit.cli._options import UsageError

    if not hasattr(model, "score_with_history"):
        raise UsageError(_NOT_EXPLAINABLE.format(model.kind, explainable_kinds()))
    for option, what, value, positions, known in (
        ("--user", "User", user, model.user_positions, model.user_ids_),
        ("--item", "Item", item, model.item_positions, model.item_ids_),
    ):
        if value is None:
            continue
        try:
            positions([value])
        except KeyError:
            raise UsageError(_UNKNOWN_ID.format(option, what, value, ", ".join(map(str, list(known)[:5])))) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import positive_int, seed

    parser.add_argument("--model", required=True, metavar="DIR", help="saved model folder")
    parser.add_argument("--data", required=True, help="dataset folder or file the model was trained on")
    parser.add_argument("--user", required=True, help="user id")
    parser.add_argument("--item", help="item id (default: the user's top recommendation)")
    parser.add_argument("--out", metavar="DIR", help="folder to write explanation.csv to")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT/explanation.csv (refused otherwise)")
    parser.add_argument("--top", type=positive_int, default=10, help="contributions to print per part (default 10)")
    parser.add_argument("--max-history", type=positive_int, default=8, help="history items explained one by one (default 8)")
    parser.add_argument("--no-text", action="store_true", help="skip the item-text (word) explanation")
    parser.add_argument("--seed", type=seed, default=0, help="seed of permutation sampling (default 0)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.data import check_file_target, load_dataset, write_csv
    from fairaudit.explain import explain_recommendation
    from fairaudit.models import load_model

    if args.out:  # before the work, not after it
        check_file_target(Path(args.out) / EXPLANATION_FILE, overwrite=args.overwrite)
    dataset = load_dataset(args.data)
    model = load_model(args.model, dataset)
    check_request(model, args.user, args.item)
    frame = explain_recommendation(
        model, dataset, args.user, args.item, text=not args.no_text, max_history=args.max_history, seed=args.seed
    )
    item = frame["item_id"].iloc[0]
    print(f"Why {model.kind} model scores item {item} for user {args.user} (score {frame['prediction'].iloc[0]:.4f})")
    for part, rows in frame.groupby(frame["kind"].eq("text"), sort=True):
        title = "item text words" if part else "history items and profile"
        print(f"{title}: base value {rows['base_value'].iloc[0]:.4f}; largest contributions:")
        for row in rows.head(args.top).itertuples():
            label = row.feature_value if row.kind == "text" else f"{row.feature} ({row.feature_value})"
            print(f"  {row.shap_value:+.4f}  {row.kind:<8} {label}")
    if args.out:
        path = write_csv(frame, Path(args.out) / EXPLANATION_FILE, overwrite=args.overwrite)
        print(f"wrote {path}")
    return 0
