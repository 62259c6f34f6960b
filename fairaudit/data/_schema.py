"""Typed containers for a recommendation dataset and its evaluation split.

Every table that leaves ``fairaudit.data`` has passed validation once, at the boundary:
identifiers are strings, attribute columns are strings with an explicit ``"unknown"``
group instead of NaN, ratings are floats and timestamps are int64 seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

#: Value given to a missing or unparseable attribute, so no user is silently dropped.
UNKNOWN = "unknown"
#: Separator of the ``genres`` column of the items table.
GENRE_SEP = "|"

INTERACTION_COLUMNS = ("user_id", "item_id")
INTERACTION_OPTIONAL = ("rating", "timestamp")
USER_COLUMNS = ("user_id",)
ITEM_COLUMNS = ("item_id", "title")
#: Most distinct values a column may have to count as a slicing attribute.
MAX_GROUPS = 50
#: Item columns that hold text the language model may read.
ITEM_TEXT_COLUMNS = ("title", "genres", "description")

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ValidationIssue:
    """One problem found in an input file.

    ``severity="error"`` blocks loading; ``"warning"`` was repaired (and says how,
    with a count) so the analyst knows what the loader changed.
    """

    severity: Severity
    file: str
    column: str | None
    message: str
    count: int = 0
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = self.file + (f", column '{self.column}'" if self.column else "")
        text = f"{self.severity.upper()} [{where}] {self.message}"
        if self.count:
            text += f" ({self.count} row{'s' if self.count != 1 else ''})"
        if self.examples:
            text += "; e.g. " + "; ".join(self.examples)
        return text


class DataError(ValueError):
    """Input data that cannot be loaded; carries every blocking issue found."""

    def __init__(self, issues: list[ValidationIssue] | ValidationIssue):
        self.issues = [issues] if isinstance(issues, ValidationIssue) else list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


@dataclass(frozen=True)
class Dataset:
    """Interactions, users and items of one recommendation dataset.

    Attributes
    ----------
    interactions : DataFrame
        ``user_id`` (str), ``item_id`` (str), optional ``rating`` (float64) and
        ``timestamp`` (int64, seconds). One row per (user, item) pair.
    users : DataFrame
        ``user_id`` plus one string column per attribute (``gender``, ``age``,
        ``age_band``, ``region``, ``activity`` ...). Missing values are ``"unknown"``.
    items : DataFrame
        ``item_id``, ``title`` and optional ``genres`` (``"A|B"``), ``description``,
        ``popularity_tier`` and any other attribute columns.
    name : str
        Human-readable source name (folder or file).
    warnings : tuple of ValidationIssue
        Recoverable problems repaired while loading.
    texts : DataFrame or None
        Optional user texts (``user_texts.csv``): ``user_id``, ``text`` and, when the file has
        them, ``item_id`` (``""`` for none), ``timestamp`` (int64 seconds) and ``kind``
        (see :mod:`fairaudit.data._texts`). Not part of :meth:`fingerprint`.
    """

    interactions: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    name: str = "dataset"
    warnings: tuple[ValidationIssue, ...] = field(default=())
    texts: pd.DataFrame | None = None

    @property
    def user_attributes(self) -> list[str]:
        """User columns an audit can slice by: non-numeric, at most ``MAX_GROUPS`` values.

        Raw identifiers such as ZIP codes (thousands of values) are left out; their
        derived attributes (``region``) are what an audit slices by.
        """
        return _categorical_columns(self.users, skip={"user_id"})

    @property
    def item_attributes(self) -> list[str]:
        """Item columns usable as item groups (text columns and identifiers excluded)."""
        return _categorical_columns(self.items, skip={"item_id", "title", "description", "genres"})

    def fingerprint(self) -> str:
        """Stable SHA-256 prefix of the three tables' content, for provenance checks."""
        return frame_fingerprint(self.interactions, self.users, self.items)

    def texts_fingerprint(self) -> str | None:
        """Fingerprint of the texts table (``None`` without one), recorded by models that read texts."""
        return None if self.texts is None else frame_fingerprint(self.texts)

    def summary(self) -> dict[str, int]:
        """Sizes used on the Data page, in reports and in ``audit.json``."""
        return {
            "n_users": int(self.users.shape[0]),
            "n_items": int(self.items.shape[0]),
            "n_interactions": int(self.interactions.shape[0]),
        }


@dataclass(frozen=True)
class Split:
    """A deterministic train/test partition of a dataset's interactions.

    ``cold_items`` lists item ids withheld from training entirely (item cold-start
    split); it is empty for the per-user splits.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    method: str
    seed: int
    params: dict = field(default_factory=dict)
    cold_items: tuple[str, ...] = ()

    def describe(self) -> dict:
        """JSON-ready description, stored in model configs and ``audit.json``."""
        return {
            "method": self.method,
            "seed": self.seed,
            "params": dict(self.params),
            "n_train": int(len(self.train)),
            "n_test": int(len(self.test)),
            "n_cold_items": len(self.cold_items),
            "fingerprint": frame_fingerprint(self.train, self.test),
        }


def _categorical_columns(frame: pd.DataFrame, skip: set[str]) -> list[str]:
    return [
        column
        for column in frame.columns
        if column not in skip
        and not pd.api.types.is_numeric_dtype(frame[column])
        and frame[column].nunique() <= MAX_GROUPS
    ]


def frame_fingerprint(*frames: pd.DataFrame) -> str:
    """SHA-256 (first 16 hex digits) over the values and column names of ``frames``.

    >>> a = pd.DataFrame({"x": [1, 2]})
    >>> frame_fingerprint(a) == frame_fingerprint(a.copy())
    True
    """
    digest = hashlib.sha256()
    for frame in frames:
        digest.update("\x1f".join(map(str, frame.columns)).encode())
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digest.update(np.ascontiguousarray(hashed).tobytes())
    return digest.hexdigest()[:16]
