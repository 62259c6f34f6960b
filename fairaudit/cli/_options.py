"""Choices and defaults of command-line options, read from :mod:`fairaudit._choices` and the config types.

Not a command: the command modules take their option choices and defaults from here, so a new
model kind, split method, fairness term or audit default reaches the CLI without retyping it.
Everything a parser needs comes from :mod:`fairaudit._choices` (standard library only), so
``--help`` and usage errors never import torch, pandas or the models (tests/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import math
from typing import Any

from fairaudit import _choices

_UNDECLARED_DEFAULT = "{0} {1!r} has no default in fairaudit._choices.{2}; declare it there (the model reads it from there too)"


def audit_default(name: str) -> Any:
    """Default of the :class:`~fairaudit.audit.AuditConfig` field ``name``.

    >>> audit_default("k"), audit_default("min_group_size")
    (10, 30)
    """
    if name not in _choices.AUDIT_DEFAULTS:
        raise KeyError(_UNDECLARED_DEFAULT.format("AuditConfig field", name, "AUDIT_DEFAULTS"))
    return _choices.AUDIT_DEFAULTS[name]


def llm_default(name: str) -> Any:
    """Default of the LLM recommender's hyper-parameter ``name``.

    >>> llm_default("pooling"), llm_default("fairness")
    ('sqrt', 'none')
    """
    if name not in _choices.LLM_DEFAULTS:
        raise KeyError(_UNDECLARED_DEFAULT.format("LLM hyper-parameter", name, "LLM_DEFAULTS"))
    return _choices.LLM_DEFAULTS[name]


def llm_choices(name: str) -> tuple[str, ...]:
    """Values of the LLM recommender's ``Literal``-typed hyper-parameter ``name``.

    >>> llm_choices("pooling")
    ('sqrt', 'mean')
    """
    return _choices.LLM_CHOICES[name]


# ---- validation of option values ----------------------------------------------------------------
# argparse ``type=`` functions: they raise ``argparse.ArgumentTypeError``, which argparse prints as
# "argument --k: ..." (the option named) with exit status 2, before any work is done.

_NOT_INTEGER = "expected a whole number; got {0!r}"
_NOT_NUMBER = "expected a finite number; got {0!r}"
_OUT_OF_RANGE = "expected {0}; got {1}"
_BAD_DATE = "expected a date YYYY-MM-DD; got {0!r}"
_BAD_ENCODING = "unknown text encoding {0!r}; expected e.g. utf-8, latin-1, cp1252"
_BAD_PAIR = "expected OLD=NEW; got {0!r}"
_BAD_LIST = "expected comma-separated numbers, e.g. 0,0.25,0.5,1; got {0!r}"
_EMPTY_LIST = "expected at least one value; got {0!r}"
_NOT_DEVICE = "'{0}' is not a device; expected auto, cpu, or cuda, cuda:N or mps where present"
_NOT_ENCODER = "'{0}' is not a local Hugging Face model folder (it has no config.json); expected e.g. a folder saved with save_pretrained"
_NOT_IN_DATA = "{0}: {1} not found in the data; the {2} present are {3}"


class UsageError(ValueError):
    """A command-line option (or option combination) that cannot work; the CLI exits with status 2.

    The message names the option (``--k``) and what was expected.
    """


def describe_bounds(bounds: dict[str, float]) -> str:
    """Words for a range given as ``ge``/``gt``/``le``/``lt`` bounds.

    >>> describe_bounds({"ge": 1}), describe_bounds({"gt": 0, "lt": 1})
    ('a value >= 1', 'a value > 0 and < 1')
    """
    signs = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return "a value " + " and ".join(f"{signs[key]} {bounds[key]:g}" for key in signs if key in bounds)


def in_bounds(value: float, bounds: dict[str, float]) -> bool:
    """Whether ``value`` satisfies every bound.

    >>> in_bounds(0, {"gt": 0}), in_bounds(0.5, {"gt": 0, "lt": 1})
    (False, True)
    """
    checks = {"ge": value >= bounds.get("ge", value), "gt": "gt" not in bounds or value > bounds["gt"],
              "le": value <= bounds.get("le", value), "lt": "lt" not in bounds or value < bounds["lt"]}  # fmt: skip
    return all(checks.values())


def bounded_int(**bounds: float):
    """An argparse type: a whole number within ``bounds`` (``ge``, ``gt``, ``le``, ``lt``).

    >>> bounded_int(ge=1)("3")
    3
    >>> bounded_int(ge=1)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a value >= 1; got 0
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(_NOT_INTEGER.format(text)) from None
        if not in_bounds(value, bounds):
            raise argparse.ArgumentTypeError(_OUT_OF_RANGE.format(describe_bounds(bounds), value))
        return value

    parse.__name__ = "integer"
    return parse


def bounded_float(**bounds: float):
    """An argparse type: a finite number within ``bounds``.

    >>> bounded_float(gt=0, lt=1)("0.05")
    0.05
    >>> bounded_float(gt=0, lt=1)("2")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a value > 0 and < 1; got 2.0
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(_NOT_NUMBER.format(text)) from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(_NOT_NUMBER.format(text))
        if not in_bounds(value, bounds):
            raise argparse.ArgumentTypeError(_OUT_OF_RANGE.format(describe_bounds(bounds), value))
        return value

    parse.__name__ = "number"
    return parse


#: Whole numbers >= 1 (K, epochs, rounds, sizes).
positive_int = bounded_int(ge=1)
#: Finite numbers >= 0 (weights, thresholds).
non_negative_float = bounded_float(ge=0)
#: Numbers strictly between 0 and 1 (significance levels).
probability = bounded_float(gt=0, lt=1)
#: Numbers in [0, 1] (shares, ratios).
unit_interval = bounded_float(ge=0, le=1)


def seed(text: str) -> int:
    """An argparse type: a seed, a whole number in ``[0, MAX_SEED]``.

    >>> seed("7")
    7
    """
    return bounded_int(**_choices.AUDIT_BOUNDS["seed"])(text)


def audit_option(name: str):
    """An argparse type for the :class:`~fairaudit.audit.AuditConfig` field ``name``, with its bounds.

    >>> audit_option("k")("10"), audit_option("alpha")("0.1")
    (10, 0.1)
    """
    parse = bounded_int if isinstance(audit_default(name), int) else bounded_float
    return parse(**_choices.AUDIT_BOUNDS[name])


def device(text: str) -> str:
    """An argparse type: a device a model can train on here (``auto``, ``cpu``, ``cuda`` when present ...).

    Only a device other than ``auto`` and ``cpu`` (which every machine has) needs torch to be checked.

    >>> device("cpu")
    'cpu'
    """
    if text in _choices.ALWAYS_AVAILABLE_DEVICES:
        return text
    if not _choices.ACCELERATOR_DEVICE.match(text):
        raise argparse.ArgumentTypeError(_NOT_DEVICE.format(text))
    from fairaudit.models import check_device

    try:
        return check_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def iso_date(text: str) -> dt.date:
    """An argparse type: a date ``YYYY-MM-DD``.

    >>> iso_date("2026-01-02")
    datetime.date(2026, 1, 2)
    """
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(_BAD_DATE.format(text)) from None


def encoding(text: str) -> str:
    """An argparse type: a text encoding Python knows.

    >>> encoding("latin-1")
    'latin-1'
    """
    try:
        codecs.lookup(text)
    except LookupError:
        raise argparse.ArgumentTypeError(_BAD_ENCODING.format(text)) from None
    return text


def mapping_pair(text: str) -> str:
    """An argparse type: one ``OLD=NEW`` column rename (both parts non-empty).

    >>> mapping_pair("userId=user_id")
    'userId=user_id'
    """
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(_BAD_PAIR.format(text))
    return text


def number_list(text: str) -> tuple[float, ...]:
    """An argparse type: comma-separated finite numbers >= 0.

    >>> number_list("0, 0.5,1")
    (0.0, 0.5, 1.0)
    """
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(_EMPTY_LIST.format(text))
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(_BAD_LIST.format(text)) from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(_OUT_OF_RANGE.format("finite numbers >= 0", part))
        values.append(value)
    return tuple(values)


def encoder_folder(text: str) -> str:
    """An argparse type: a local Hugging Face model folder (one holding ``config.json``).

    >>> from fairaudit.models._encoder import default_encoder_path
    >>> encoder_folder(str(default_encoder_path())) == str(default_encoder_path())
    True
    """
    from pathlib import Path

    if not (Path(text) / "config.json").is_file():
        raise argparse.ArgumentTypeError(_NOT_ENCODER.format(text))
    return text


def text_list(text: str | None) -> list[str] | None:
    """Comma-separated values, stripped, empty ones dropped (``None`` stays ``None``).

    >>> text_list(" F, M,,")
    ['F', 'M']
    """
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def check_user_attributes(option: str, given, dataset) -> None:
    """Refuse (naming ``option``) user attributes that ``dataset``'s users table lacks."""
    check_values(option, given, [c for c in dataset.users.columns if c != "user_id"], "user attributes")


def check_item_attribute(option: str, given: str, dataset) -> None:
    """Refuse (naming ``option``) an item grouping ``dataset`` lacks: an items column, or ``genre`` when
    the items have ``genres``."""
    columns = [c for c in dataset.items.columns if c not in ("item_id", "title", "description")]
    columns += ["genre"] if "genres" in dataset.items.columns else []
    check_values(option, [given], columns, "item attributes")


def check_values(option: str, given, present, what: str = "values") -> None:
    """Raise :class:`UsageError` naming ``option`` when some of ``given`` are not in ``present``.

    >>> check_values("--values", ["F"], ["F", "M"])
    >>> check_values("--values", ["X"], ["F", "M"])
    Traceback (most recent call last):
    ...
    fairaudit.cli._options.UsageError: --values: X not found in the data; the values present are F, M
    """
    present = [str(value) for value in present]
    missing = [str(value) for value in given if str(value) not in set(present)]
    if missing:
        shown = ", ".join(present[:20]) + (f" ... ({len(present)} in all)" if len(present) > 20 else "")
        raise UsageError(_NOT_IN_DATA.format(option, ", ".join(missing[:10]), what, shown))



# ---- CPU threads ---------------------------------------------------------------------------------

#: Help of ``--threads`` (every compute command has it: :func:`add_threads_option`).
THREADS_HELP = (
    "CPU threads for torch, BLAS and implicit (default: physical cores; use 1 per job when several run at once)"
)


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads N`` to a command's parser; :func:`apply_threads` puts it in force before the command runs.

    >>> parser = argparse.ArgumentParser()
    >>> add_threads_option(parser)
    >>> parser.parse_args(["--threads", "2"]).threads
    2
    """
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help=THREADS_HELP)


def apply_threads(args: argparse.Namespace):
    """Bound the compute threads to ``args.threads`` (default: the physical cores) for one command.

    Returns a function that puts the previous settings back (``None`` for a command without
    ``--threads``). Imports torch, so the CLI calls it only once a command runs (never for ``--help``
    or usage errors).
    """
    if not hasattr(args, "threads"):
        return None
    import torch
    from threadpoolctl import threadpool_limits

    from fairaudit.models import set_threads
    from fairaudit.workspace import physical_cores

    torch_before, pools_before = torch.get_num_threads(), threadpool_limits(limits=None)
    set_threads(args.threads if args.threads is not None else physical_cores())

    def restore() -> None:
        torch.set_num_threads(torch_before)
        pools_before.restore_original_limits()

    return restore
