"""Command-line interface: ``python -m fairaudit <command> ...``.

Each sub-command lives in its own module ``fairaudit/cli/_<name>.py`` exposing
``HELP`` (one line), ``DESCRIPTION`` (what it does and writes), ``add_arguments(parser)``
and ``run(args) -> int``. A command module imports nothing heavy at module level or in
``add_arguments`` (its choices come from :mod:`fairaudit._choices`), only in ``run``, so ``--help``
and usage errors start in a fraction of a second and a missing optional dependency affects only
its command.
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
    "robustness": "_robustness",
    "simulate": "_simulate",
    "privacy": "_privacy",
    "privacy-cost": "_privacy_cost",
    "profiles": "_profiles",
}


_DEBUG_HELP = "print the full traceback of unexpected errors (also: FAIRAUDIT_DEBUG=1)"


def _module(name: str):
    return importlib.import_module(f"fairaudit.cli.{COMMANDS[name]}")


def _chosen_command(argv: Sequence[str] | None) -> str | None:
    """The sub-command named in ``argv`` (its first word that is not an option), or None.

    >>> _chosen_command(["--debug", "train", "--help"]), _chosen_command(["--help"])
    ('train', None)
    """
    return next((word for word in argv if not word.startswith("-")), None) if argv is not None else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with one sub-parser per available command.

    With ``argv``, only the command it names gets its options (``add_arguments``); without, every
    command gets them. Options take their choices and defaults from :mod:`fairaudit._choices`
    (standard library only) and commands import their libraries inside ``run``, so ``--help`` and
    usage errors import no torch, transformers, shap, pandas ... (tests/test_cli_startup.py). Every command also takes ``--threads``
    (:func:`fairaudit.cli._options.add_threads_option`), put in force just before it runs.
    """
    from fairaudit.cli._options import add_threads_option

    chosen = _chosen_command(argv)
    parser = argparse.ArgumentParser(
        prog="python -m fairaudit",
        description="Fairness audits of recommender systems: validate data, train models, "
        "audit them by user group, explain gaps, and write compliance reports.",
    )
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
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
        command.set_defaults(_run=module.run)
        if argv is not None and name != chosen:
            continue  # not the command being run: its options are never parsed
        module.add_arguments(command)
        if not any("--threads" in action.option_strings for action in command._actions):
            add_threads_option(command)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parser


#: Exit status of a finished command.
EXIT_OK = 0
#: Bad data or files: a dataset, model folder or audit folder that cannot be used, a missing path.
EXIT_DATA = 1
#: Bad usage: an option or configuration value out of range, unknown or inconsistent (argparse's own too).
EXIT_USAGE = 2
#: Anything unexpected (a bug): a one-line summary and the file holding the traceback.
EXIT_INTERNAL = 3
#: Interrupted with Ctrl-C.
EXIT_INTERRUPTED = 130
#: Environment variable that prints the traceback of unexpected errors (as ``--debug`` does).
DEBUG_VARIABLE = "FAIRAUDIT_DEBUG"

_INTERRUPTED = "interrupted"
_UNEXPECTED = (
    "unexpected {0}: {1} (this is a bug in FairAudit; the full traceback is in {2}; "
    "rerun with --debug or {3}=1 to print it)"
)
_UNEXPECTED_DEBUG = "unexpected {0}: {1} (the traceback is above)"


#: Expected errors, ``"module:Class"``, by exit status, checked in order (see :func:`error_classes`).
_EXPECTED_ERRORS: dict[int, tuple[str, ...]] = {
    EXIT_USAGE: ("fairaudit.cli._options:UsageError", "fairaudit.pipeline:ConfigError", "fairaudit.data:OutputError"),
    EXIT_DATA: (
        "fairaudit.data:DataError", "fairaudit.models:ModelFolderError", "fairaudit.audit:AuditFolderError",
        "builtins:OSError", "builtins:ValueError",
    ),
}  # fmt: skip


def _loaded_class(spec: str, *, load: bool) -> type[BaseException] | None:
    """The class ``"module:Class"`` names; without ``load``, None when its module is not imported yet."""
    module, _, name = spec.partition(":")
    if load:
        importlib.import_module(module)
    return getattr(sys.modules.get(module), name, None)


def error_classes(*, loaded_only: bool = False) -> dict[int, tuple[type[BaseException], ...]]:
    """The one place that decides which errors are expected, and their exit status.

    Checked in order: usage errors (options, configurations, and an output that is in the way: an
    existing folder without ``--overwrite``, foreign content) exit :data:`EXIT_USAGE`; errors of
    the inputs (data files, model folders, audit folders, paths, and any other ``ValueError`` the
    package raises with a message naming the input) exit :data:`EXIT_DATA`. Everything else is
    unexpected (:data:`EXIT_INTERNAL`). With ``loaded_only``, the classes of modules not imported
    yet are left out (no error can be one of theirs), so classifying a usage error raised before a
    command imported its libraries does not import them.

    >>> sorted(error_classes())
    [1, 2]
    """
    return {
        status: tuple(cls for cls in (_loaded_class(spec, load=not loaded_only) for spec in specs) if cls is not None)
        for status, specs in _EXPECTED_ERRORS.items()
    }


def exit_status(err: BaseException) -> int:
    """Exit status for ``err`` (see :func:`error_classes`).

    >>> from fairaudit.data import DataError, ValidationIssue
    >>> exit_status(DataError(ValidationIssue("error", "x.csv", None, "bad"))), exit_status(KeyError("x"))
    (1, 3)
    """
    for status, classes in error_classes(loaded_only=True).items():
        if isinstance(err, classes):
            return status
    return EXIT_INTERNAL


def one_line(err: BaseException) -> str:
    """The message of an expected error on one line (a data error: its blocking issues, then a count).

    >>> one_line(ValueError("first\\nsecond"))
    'first; second'
    """
    data_error = _loaded_class("fairaudit.data:DataError", load=False)  # not imported: err cannot be one
    if data_error is not None and isinstance(err, data_error):
        errors = [str(i) for i in err.issues if i.severity == "error"] or [str(i) for i in err.issues]
        rest = len(err.issues) - len(errors)
        text = "; ".join(errors) + (f" (and {rest} warning(s); `validate` lists them)" if rest else "")
    elif isinstance(err, OSError) and err.filename is not None and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err) or type(err).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _write_traceback() -> str:
    """Write the current exception's traceback to a new file under the temp folder; return its path."""
    import tempfile
    import traceback

    handle, path = tempfile.mkstemp(prefix="fairaudit-error-", suffix=".txt")
    with open(handle, "w", encoding="utf-8") as file:
        file.write(traceback.format_exc())
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code.

    This is the CLI's one error boundary. Expected failures print one line to stderr naming the
    input and what was expected: :data:`EXIT_USAGE` (2) for bad options or configurations
    (argparse's own errors included), :data:`EXIT_DATA` (1) for bad data, model or audit folders
    and paths. Anything else prints a one-line summary and the path of a file holding the
    traceback (:data:`EXIT_INTERNAL`, 3), or the traceback itself with ``--debug`` or
    ``FAIRAUDIT_DEBUG=1``. Ctrl-C prints ``interrupted`` and returns :data:`EXIT_INTERRUPTED` (130).
    """
    import os

    from fairaudit.cli._options import apply_threads

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # argparse printed usage and the error (status 2), or --help (0)
        if done.code in (0, None):
            raise
        return int(done.code) if isinstance(done.code, int) else EXIT_USAGE
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_DATA
    debug = bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    restore_threads = None
    try:
        restore_threads = apply_threads(args)
        return int(args._run(args) or EXIT_OK)
    except KeyboardInterrupt:
        print(_INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the boundary: every error ends here
        status = exit_status(err)
        if status != EXIT_INTERNAL:
            print(f"error: {one_line(err)}", file=sys.stderr)
            return status
        summary = one_line(err)[:300]
        if debug:
            import traceback

            traceback.print_exc(file=sys.stderr)
            print(f"error: {_UNEXPECTED_DEBUG.format(type(err).__name__, summary)}", file=sys.stderr)
        else:
            path = _write_traceback()
            message = _UNEXPECTED.format(type(err).__name__, summary, path, DEBUG_VARIABLE)
            print(f"error: {message}", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if restore_threads is not None:  # main() called in a process that goes on (tests, notebooks)
            restore_threads()
