"""Recommendation lists made by other systems, and held-out test files, validated at the boundary.

:func:`load_recommendations` reads a CSV/TSV/Parquet file of ``user_id, item_id`` plus ``rank``
or ``score`` (optional ``model``: one file, several systems) into the tidy frame
``model, user_id, rank, item_id, score`` the audit engine uses. :func:`load_test_split` turns a
file of held-out interactions into the :class:`Split` the lists are judged on (split method
:data:`TEST_FILE_METHOD`, re-created by ``make_split`` from its recorded path and SHA-256).

Rules (see ``docs/input_validation.md``, "Imported recommendation lists"): every blocking problem
is an ``error`` (raised together in one :class:`DataError`), every repair or caveat a counted
``warning``; nothing is dropped without one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.data import _validate as V
from fairaudit.data._load import read_table
from fairaudit.data._schema import DataError, Dataset, Split, ValidationIssue

#: Columns of a validated recommendations frame, in order.
RECOMMENDATION_COLUMNS = ("model", "user_id", "rank", "item_id", "score")
#: Split method of a split read from a test file (``make_split(dataset, TEST_FILE_METHOD, path=..., sha256=...)``).
TEST_FILE_METHOD = "test_file"

NO_RANK_OR_SCORE = (
    "neither a 'rank' nor a 'score' column; found {found}; expected user_id, item_id and rank or score "
    "(and optionally model)"
)
BAD_RANK = "ranks are not whole numbers >= 1; expected rank 1 for the first item of each list"
RANK_GAPS = "lists whose ranks skip positions (e.g. 1, 2, 5); renumbered 1..n in rank order"
REC_UNKNOWN_USER = "users not in the dataset's users table; dropped their rows (they cannot be grouped or evaluated)"
REC_UNKNOWN_ITEM = (
    "items not in the dataset's catalogue; a list holding them cannot be measured: load the items table "
    "that has them, or remove them from the lists"
)
REC_DUPLICATE_ITEM = "the same item appears more than once in one list (model, user_id); expected each item once per list"
REC_DUPLICATE_RANK = "two or more items share a rank in one list (model, user_id); expected distinct ranks"
REC_SEEN = (
    "items the user already had in the training interactions: the external system did not exclude seen "
    "items; kept in the lists (they count as misses)"
)
REC_NO_TEST = "rows of users without test interactions; their lists are not evaluated (accuracy needs held-out items)"
REC_SHORT = "{n} of {total} lists of '{model}' are shorter than K={k}; audited as they are, never padded (empty positions count as misses)"
REC_MISSING_LIST = "{n} of {total} test users have no list from '{model}'; they are not evaluated for it"
TEST_CHANGED = "test file '{0}' has SHA-256 {1}, but {2} was recorded; pass the test file the audit used"

_ORDER_NOTE = "rank from score: descending score, ties in file order"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (the fingerprint ``audit.json`` records for imported files).

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(delete=False) as fh:
    ...     _ = fh.write(b"abc")
    >>> file_sha256(fh.name)[:12]
    'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _id_index(ids: pd.Series) -> pd.Index:
    """Ids as a plain object index (hash look-ups without converting Arrow strings per call)."""
    return pd.Index(ids.astype(str).to_numpy(dtype=object), dtype=object)


def _pair_keys(frame: pd.DataFrame, users: pd.Index, items: pd.Index) -> np.ndarray:
    """One int64 per (user, item) pair of ``frame`` (-1 parts for unknown ids)."""
    u = users.get_indexer(frame["user_id"].to_numpy(dtype=object))
    i = items.get_indexer(frame["item_id"].to_numpy(dtype=object))
    return u.astype(np.int64) * (len(items) + 1) + i


def _isin_pairs(keys: np.ndarray, among: np.ndarray) -> np.ndarray:
    """``np.isin`` of pair keys (>= 0 below a few hundred million: a lookup table; otherwise a hash/sort)."""
    high = int(max(keys.max(initial=0), among.max(initial=0))) + 1
    if keys.min(initial=0) >= 0 and among.min(initial=0) >= 0 and high <= 400_000_000:
        return np.isin(keys, among, kind="table")
    return np.isin(keys, among)


def load_recommendations(
    path: str | os.PathLike,
    dataset: Dataset,
    *,
    split: Split | None = None,
    k: int | None = None,
    name: str | None = None,
    max_bytes: int = 200_000_000,
) -> tuple[pd.DataFrame, list[ValidationIssue]]:
    """Read and validate a recommendations file against ``dataset``: ``(frame, warnings)``.

    Parameters
    ----------
    path : str or Path
        CSV, TSV or Parquet with ``user_id, item_id`` and ``rank`` or ``score`` (both allowed:
        ``rank`` orders the list, ``score`` is kept), optionally ``model``.
    dataset : Dataset
        The users and catalogue the lists must refer to.
    split : Split, optional
        The ground truth: items seen in ``split.train`` and users without ``split.test`` rows are reported.
    k : int, optional
        Lists shorter than ``k`` are counted and reported (never padded).
    name : str, optional
        System name when the file has no ``model`` column (default: the file's stem).
    max_bytes : int
        Files over this size are refused before they are read.

    Returns
    -------
    frame : DataFrame
        ``model, user_id, rank, item_id, score``, sorted by model (in file order), user (in the dataset's
        order) and rank; ranks renumbered
        ``1..n`` per list (without ``rank``: by descending score, ties in file order); without
        ``score``, ``score = -rank`` (orders like the rank). Lists are not cut: ``recommend(k=...)`` cuts.
    warnings : list of ValidationIssue
        Every repair and caveat, counted.

    Raises
    ------
    DataError
        With every error (and the warnings) when any error was found.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> data = Dataset(pd.DataFrame({"user_id": ["u"], "item_id": ["a"]}), pd.DataFrame({"user_id": ["u"]}),
    ...                pd.DataFrame({"item_id": ["a", "b", "c"]}))
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "ext.csv"
    >>> _ = file.write_text("user_id,item_id,score\\nu,b,0.5\\nu,c,0.9\\n")
    >>> frame, warnings = load_recommendations(file, data)
    >>> frame[["model", "user_id", "rank", "item_id"]].values.tolist(), warnings
    ([['ext', 'u', 1, 'c'], ['ext', 'u', 2, 'b']], [])
    """
    issues: list[ValidationIssue] = []
    file = Path(path).name
    raw = read_table(path, max_bytes=max_bytes, encoding=None, issues=issues)
    raw.columns = [str(c).strip() for c in raw.columns]
    found = sorted(raw.columns)
    errors = [
        ValidationIssue("error", file, column, V.MISSING_COLUMN.format(column=column, found=found))
        for column in ("user_id", "item_id") if column not in raw
    ]  # fmt: skip
    if "rank" not in raw and "score" not in raw:
        errors.append(ValidationIssue("error", file, None, NO_RANK_OR_SCORE.format(found=found)))
    if not errors and raw.empty:
        errors.append(ValidationIssue("error", file, None, V.EMPTY_TABLE))
    if errors:
        raise DataError(errors + issues)
    frame = raw.copy()
    for column in ("user_id", "item_id", *(("model",) if "model" in frame else ())):
        V._clean_ids(frame, column, file, issues)
    if "model" not in frame:
        frame["model"] = name or Path(path).stem
    if "score" in frame:
        frame["score"] = V._to_number(frame, "score", file, issues, allow_missing=False)
    if "rank" in frame:
        rank = V._to_number(frame, "rank", file, issues, allow_missing=False)
        values = np.where(np.isfinite(rank.to_numpy()), rank.to_numpy(), 1.0)  # NaN/inf: reported above
        bad = (values < 1) | (values % 1 != 0)
        if bad.any():
            issues.append(V.make_issue("error", file, "rank", BAD_RANK, frame, bad))
        frame["rank"] = rank
    if any(i.severity == "error" for i in issues):
        raise DataError(sorted(issues, key=lambda i: i.severity != "error"))

    users, items = _id_index(dataset.users["user_id"]), _id_index(dataset.items["item_id"])
    user_pos = users.get_indexer(frame["user_id"].to_numpy(dtype=object))
    item_pos = items.get_indexer(frame["item_id"].to_numpy(dtype=object))
    unknown_item = item_pos < 0
    if unknown_item.any():
        issues.append(V.make_issue("error", file, "item_id", REC_UNKNOWN_ITEM, frame, unknown_item))
    lists = ["model", "user_id"]
    duplicate_item = frame.duplicated([*lists, "item_id"], keep=False).to_numpy()
    if duplicate_item.any():
        issues.append(V.make_issue("error", file, "item_id", REC_DUPLICATE_ITEM, frame, duplicate_item))
    if "rank" in frame:
        duplicate_rank = frame.duplicated([*lists, "rank"], keep=False).to_numpy()
        if duplicate_rank.any():
            issues.append(V.make_issue("error", file, "rank", REC_DUPLICATE_RANK, frame, duplicate_rank))
    if any(i.severity == "error" for i in issues):
        raise DataError(sorted(issues, key=lambda i: i.severity != "error"))
    unknown_user = user_pos < 0
    if unknown_user.any():
        issues.append(V.make_issue("warning", file, "user_id", REC_UNKNOWN_USER, frame, unknown_user))
        frame, user_pos, item_pos = frame[~unknown_user], user_pos[~unknown_user], item_pos[~unknown_user]
    if frame.empty:
        raise DataError([ValidationIssue("error", file, None, V.EMPTY_TABLE), *issues])

    # Order every list: by rank, or by descending score with ties in file order (the row number index).
    row = frame.index.to_numpy()
    key = frame["rank"].to_numpy() if "rank" in frame else -frame["score"].to_numpy()
    systems = pd.factorize(frame["model"])[0]  # systems in the order they first appear in the file
    order = np.lexsort((row, key, user_pos, systems))  # users in the dataset's order
    frame, user_pos, item_pos = frame.iloc[order], user_pos[order], item_pos[order]
    position = frame.groupby(lists, sort=False).cumcount().to_numpy() + 1
    if "rank" in frame:
        gaps = frame["rank"].to_numpy() != position
        if gaps.any():
            issues.append(V.make_issue("warning", file, "rank", RANK_GAPS, frame, gaps))
    score = frame["score"].to_numpy(dtype=np.float64) if "score" in frame else -position.astype(np.float64)
    out = pd.DataFrame(
        {
            "model": frame["model"].to_numpy(dtype=object), "user_id": frame["user_id"].to_numpy(dtype=object),
            "rank": position.astype(np.int64), "item_id": frame["item_id"].to_numpy(dtype=object), "score": score,
        },
        index=frame.index,
    )  # fmt: skip

    if split is not None:
        keys = user_pos.astype(np.int64) * (len(items) + 1) + item_pos
        seen = _isin_pairs(keys, _pair_keys(split.train, users, items))
        if seen.any():
            issues.append(V.make_issue("warning", file, "item_id", REC_SEEN, out, seen))
        test_users = pd.Index(split.test["user_id"].astype(str).unique())
        no_test = ~out["user_id"].isin(test_users).to_numpy()
        if no_test.any():
            issues.append(V.make_issue("warning", file, "user_id", REC_NO_TEST, out, no_test))
        for model, rows in out.groupby("model", sort=False):
            missing = test_users.difference(pd.Index(rows["user_id"].unique()))
            if len(missing):
                message = REC_MISSING_LIST.format(n=len(missing), total=len(test_users), model=model)
                shown = tuple(f"user_id {u!r}" for u in missing[: V.N_EXAMPLES])
                issues.append(ValidationIssue("warning", file, "user_id", message, examples=shown))
    if k is not None:
        lengths = out.groupby(["model", "user_id"], sort=False).size()
        for model, sizes in lengths.groupby(level=0, sort=False):
            short = sizes[sizes < k]
            if len(short):
                message = REC_SHORT.format(n=len(short), total=len(sizes), model=model, k=k)
                shown = tuple(f"user_id {u!r}: {n} items" for (_, u), n in short.head(V.N_EXAMPLES).items())
                issues.append(ValidationIssue("warning", file, "user_id", message, examples=shown))
    return out.reset_index(drop=True), issues


def load_test_split(
    path: str | os.PathLike, dataset: Dataset, *, max_bytes: int = 200_000_000
) -> tuple[Split, list[ValidationIssue]]:
    """The held-out interactions in ``path`` as a :class:`Split` of ``dataset``: ``(split, warnings)``.

    The file is validated like an interactions file (ids, ratings, timestamps, duplicate pairs);
    rows of users or items the dataset lacks are dropped with a counted warning. ``test`` is the
    file's ``user_id, item_id`` pairs; ``train`` every interaction of ``dataset`` that is not a test
    pair (so ``--data`` may hold the test interactions or not). The split's method is
    :data:`TEST_FILE_METHOD` and its params the file's absolute path and SHA-256.

    >>> import tempfile, pathlib
    >>> data = Dataset(pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"]}),
    ...                pd.DataFrame({"user_id": ["u"]}), pd.DataFrame({"item_id": ["a", "b"]}))
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "test.csv"
    >>> _ = file.write_text("user_id,item_id\\nu,b\\n")
    >>> split, warnings = load_test_split(file, data)
    >>> split.train["item_id"].tolist(), split.test["item_id"].tolist(), split.method
    (['a'], ['b'], 'test_file')
    """
    issues: list[ValidationIssue] = []
    file = Path(path).name
    raw = read_table(path, max_bytes=max_bytes, encoding=None, issues=issues)
    users = dataset.users[["user_id"]].astype(str).reset_index(drop=True)
    items = dataset.items[["item_id"]].astype(str).reset_index(drop=True)
    inter, _, _, found = V.validate_tables(raw, users, items, {"interactions": file, "users": "dataset users",
                                                                "items": "dataset items"})  # fmt: skip
    issues += found
    if any(i.severity == "error" for i in issues):
        raise DataError(sorted(issues, key=lambda i: i.severity != "error"))
    test = inter[["user_id", "item_id"]].reset_index(drop=True)
    user_index, item_index = _id_index(users["user_id"]), _id_index(items["item_id"])
    in_test = _isin_pairs(_pair_keys(dataset.interactions, user_index, item_index), _pair_keys(test, user_index, item_index))
    train = dataset.interactions[~in_test].reset_index(drop=True)
    params = {"path": str(Path(path).resolve()), "sha256": file_sha256(path)}
    return Split(train=train, test=test, method=TEST_FILE_METHOD, seed=0, params=params), issues


def split_from_test_file(dataset: Dataset, *, path: str, sha256: str | None = None, **_ignored) -> Split:
    """The split of :func:`load_test_split`, refusing a file whose SHA-256 differs from ``sha256`` (re-runs)."""
    got = file_sha256(path)
    if sha256 is not None and got != sha256:
        raise ValueError(TEST_CHANGED.format(path, got, sha256))
    return load_test_split(path, dataset)[0]
