"""``python -m fairaudit sample --out DIR``: write the planted-bias sample dataset."""

from __future__ import annotations

import argparse

HELP = "write a synthetic dataset with planted, documented biases"
DESCRIPTION = """\
Generate the planted-bias sample (the dashboard's default dataset) and write
interactions.csv, users.csv, items.csv, user_texts.csv and ground_truth.json (the planted
effects an audit must find: F users served worse than M, genre taste by age band, indie items
under-exposed, region a null control; texts that name the users' favourite genres, with gender
markers in F users' texts) to --out. --control-texts writes texts without gender markers (the
control). Same seed and sizes -> identical files.

Example:
  python -m fairaudit sample --out my_sample --seed 1 --users 500
"""


#: Smallest sizes the generator handles (each user needs a few unseen items).
MIN_USERS, MIN_ITEMS, MIN_INTERACTIONS = 2, 10, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import bounded_int, seed

    parser.add_argument("--out", required=True, help="folder to write (created if missing)")
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--users", type=bounded_int(ge=MIN_USERS), default=2000, help=f"number of users, >= {MIN_USERS} (default 2000)"
    )
    parser.add_argument(
        "--items", type=bounded_int(ge=MIN_ITEMS), default=800, help=f"number of items, >= {MIN_ITEMS} (default 800)"
    )
    parser.add_argument(
        "--interactions", type=bounded_int(ge=MIN_INTERACTIONS), default=100_000,
        help="target number of interactions (default 100000)",
    )  # fmt: skip
    parser.add_argument(
        "--control-texts", action="store_true",
        help="write user_texts.csv without gender markers (the control: texts carry no attribute signal)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from fairaudit.data import write_sample

    dataset = write_sample(
        args.out, seed=args.seed, n_users=args.users, n_items=args.items, n_interactions=args.interactions,
        gender_markers=not args.control_texts,
    )  # fmt: skip
    sizes = dataset.summary()
    print(f"wrote {sizes['n_users']} users, {sizes['n_items']} items, {sizes['n_interactions']} interactions")
    print(f"to {args.out} (planted effects: ground_truth.json)")
    return 0
