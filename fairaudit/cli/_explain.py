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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR", help="saved model folder")
    parser.add_argument("--data", required=True, help="dataset folder or file the model was trained on")
    parser.add_argument("--user", required=True, help="user id")
    parser.add_argument("--item", help="item id (default: the user's top recommendation)")
    parser.add_argument("--out", metavar="DIR", help="folder to write explanation.csv to")
    parser.add_argument("--top", type=int, default=10, help="contributions to print per part (default 10)")
    parser.add_argument("--max-history", type=int, default=8, help="history items explained one by one (default 8)")
    parser.add_argument("--no-text", action="store_true", help="skip the item-text (word) explanation")
    parser.add_argument("--seed", type=int, default=0, help="seed of permutation sampling (default 0)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.data import load_dataset
    from fairaudit.explain import explain_recommendation
    from fairaudit.models import load_model

    dataset = load_dataset(args.data)
    model = load_model(args.model, dataset)
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
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out / EXPLANATION_FILE, index=False)
        print(f"wrote {out / EXPLANATION_FILE}")
    return 0
