"""``python -m fairaudit recommend``: top-K lists of a saved model as a CSV."""

from __future__ import annotations

import argparse

HELP = "write the top-K recommendations of a saved model to a CSV file"
DESCRIPTION = """\
Load the model folder --model (refused if incomplete, modified, or trained on other data
than --data), recommend --k unseen items to every user (or --users), and write
user_id,rank,item_id,score to --out.

Example:
  python -m fairaudit recommend --model models/llm --data ml-100k --k 10 --out recs.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import positive_int

    parser.add_argument("--model", required=True, help="model folder written by 'train'")
    parser.add_argument("--data", default=None, help="the dataset the model was trained on (default: bundled sample)")
    parser.add_argument("--k", type=positive_int, default=10, help="items per user (default 10)")
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--users", nargs="*", default=None, help="only these user ids (default: all)")
    parser.add_argument("--include-seen", action="store_true", help="do not exclude training items")


def run(args: argparse.Namespace) -> int:
    from fairaudit.data import check_file_target, load_dataset, load_sample, write_csv
    from fairaudit.cli._options import check_values
    from fairaudit.models import load_model

    check_file_target(args.out)  # a folder is refused before the work
    dataset = load_sample() if args.data is None else load_dataset(args.data)
    model = load_model(args.model, dataset=dataset)
    if args.users:
        check_values("--users", args.users, dataset.users["user_id"], "user ids")
    recs = model.recommend(args.users, k=args.k, exclude_seen=not args.include_seen)
    write_csv(recs, args.out)  # no cell can start a spreadsheet formula; read back with fairaudit.data.read_csv
    print(f"wrote {len(recs):,} recommendations for {recs['user_id'].nunique():,} users to {args.out}")
    return 0
