"""Command-line interface: ``python -m fairaudit <command> ...``.

Each sub-command lives in its own module ``fairaudit/cli/_<name>.py`` exposing
``HELP`` (one line), ``DESCRIPTION`` (what it does and writes), ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their command runs, so
``--help`` is fast and a missing optional dependency affects only its command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

#: Sub-command name -> module name, in the order ``--help`` lists them.
COMMANDS = {
    "validate": "_validate",
    "sample": "_sample",
    "train": "_train",
    "recommend": "_recommend",
    "audit": "_audit",
    "explain": "_explain",
    "probe": "_probe",
    "report": "_report",
    "compare": "_compare",
    "run": "_run",
    "sweep": "_sweep",
}


def _module(name: str):
    return importlib.import_module(f"fairaudit.cli.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with one sub-parser per available command."""
    parser = argparse.ArgumentParser(
        prog="python -m fairaudit",
        description="Fairness audits of recommender systems: validate data, train models, "
        "audit them by user group, explain gaps, and write compliance reports.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = _module(name)
        except ModuleNotFoundError as err:
            if err.name != f"fairaudit.cli.{COMMANDS[name]}":
                raise
            continue
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code.

    Expected failures (bad input, refused model folders) print one clear message to
    stderr and return 2 instead of a traceback.
    """
    from fairaudit.data import DataError
    from fairaudit.models import ModelFolderError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except (DataError, ModelFolderError, FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
