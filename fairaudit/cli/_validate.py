"""``python -m fairaudit validate PATH``: check a dataset and print every issue found."""

from __future__ import annotations

import argparse

HELP = "check a dataset folder or file and print a validation report"
DESCRIPTION = """\
Load PATH exactly as the dashboard would (CSV/Parquet folder or file, MovieLens 100K or 1M)
and print every problem found, with file, column, example rows (row numbers as in the file;
for CSV the header is row 1) and what was expected. Warnings are repairs the loader made
(e.g. missing attribute -> 'unknown'); errors block loading.

Exit status: 0 when there are no errors (warnings allowed), 1 when the data has errors
(bad data, as for every command), 2 for bad options.

Example:
  python -m fairaudit validate sample_data
  python -m fairaudit validate ratings.csv --mapping userId=user_id movieId=item_id
"""


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """``["old=new", ...]`` -> ``{"old": "new"}``.

    >>> parse_mapping(["userId=user_id", "sex=gender"])
    {'userId': 'user_id', 'sex': 'gender'}
    """
    from fairaudit.cli._options import UsageError

    mapping = {}
    for pair in pairs or []:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise UsageError(f"--mapping expects OLD=NEW pairs; got '{pair}'")
        mapping[old] = new
    return mapping


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import encoding, mapping_pair, positive_int

    parser.add_argument("path", help="dataset folder, interactions file, or MovieLens folder")
    parser.add_argument("--mapping", nargs="*", type=mapping_pair, metavar="OLD=NEW", help="rename columns, e.g. userId=user_id")
    parser.add_argument("--max-bytes", type=positive_int, default=200_000_000, help="refuse files larger than this")
    parser.add_argument("--encoding", type=encoding, default=None, help="text encoding of CSV files (default: UTF-8, else Latin-1)")


def run(args: argparse.Namespace) -> int:
    from fairaudit.data import validate_path

    issues = validate_path(
        args.path, mapping=parse_mapping(args.mapping), max_bytes=args.max_bytes, encoding=args.encoding
    )
    errors = [i for i in issues if i.severity == "error"]
    for issue in issues:
        print(issue)
    print(f"{len(errors)} error(s), {len(issues) - len(errors)} warning(s) in {args.path}")
    from fairaudit.cli import EXIT_DATA, EXIT_OK

    return EXIT_DATA if errors else EXIT_OK
