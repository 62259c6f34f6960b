"""Validation of raw tables at the data boundary, once.

Raw tables arrive with every column as read from the file, and with the DataFrame index
set to the **row number in the file**: for text files the 1-based line number, counting a
header line when there is one (the first data row of a CSV with a header is row 2); for
Parquet the 1-based row position. Examples in every issue quote those row numbers.

Policy (each repair is a ``warning`` issue with a count; anything else is an ``error``):

* missing required columns, unparseable or empty ratings/timestamps/ids, empty tables -> error;
* duplicate (user, item) pairs -> warning, the **last** row in file order is kept;
* duplicate ids in the users/items table -> warning, the first row is kept;
* interactions whose user or item is absent from the side tables -> warning, dropped;
* missing/empty attribute values -> warning, set to ``"unknown"``;
* an attribute column with fewer than two known groups -> warning (it cannot be audited).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from fairaudit.data._schema import (
    INTERACTION_COLUMNS,
    UNKNOWN,
    USER_COLUMNS,
    ValidationIssue,
)

FILE_TOO_LARGE = "file is {size:,} bytes, over the limit of {limit:,}; pass max_bytes={size} (or larger) to load it"
PATH_NOT_FOUND = "no such file or folder; expected a folder or a CSV/Parquet interactions file"
NO_INTERACTIONS_FILE = (
    "no interactions file found; expected interactions.csv/.parquet, or a MovieLens u.data / ratings.dat"
)
UNSUPPORTED_FORMAT = "unsupported file type '{suffix}'; expected .csv, .tsv, .parquet or a MovieLens file"
UNREADABLE_FILE = "could not be read as {kind}: {reason}"
ENCODING_FALLBACK = "not valid UTF-8; read as Latin-1 instead (pass encoding= to choose another)"
BAD_ENCODING = "not valid {encoding}; pass encoding= with the file's encoding (e.g. encoding='latin-1')"
MISSING_COLUMN = "required column '{column}' not found; found {found}; map yours with mapping={{'yours': '{column}'}}"
EMPTY_TABLE = "table has no rows; expected at least one"
MISSING_ID = "empty {column}; expected an identifier in every row"
UNPARSEABLE_NUMBER = "values are not numbers; expected a numeric {column}"
UNPARSEABLE_TIMESTAMP = "values are neither numbers nor dates; expected Unix seconds or an ISO date"
NOT_FINITE = "values are not finite numbers (inf, or too large for a float); expected a finite numeric {column}"
TIMESTAMP_OUT_OF_RANGE = (
    "values outside the accepted range; expected Unix seconds from {low:,} to below {high:,} "
    "(dates {low_date} to before {high_date}; milliseconds must be divided by 1000) or an ISO date in that range"
)
DUPLICATE_COLUMN = "column '{column}' appears {count} times in the header; rename or remove the extra ones"
DUPLICATE_PAIRS = "duplicate (user_id, item_id) pairs; kept the last row of each pair in file order"
DUPLICATE_IDS = "duplicate {column} values; kept the first row of each"
UNKNOWN_USER = "interactions whose user_id is not in the users table; dropped them"
UNKNOWN_ITEM = "interactions whose item_id is not in the items table; dropped them"
MISSING_ATTRIBUTE = "missing values; set to 'unknown' (for a numeric column: its derived band)"
SINGLE_GROUP = "fewer than two known groups ({groups}); this attribute cannot be compared across groups"
NO_USERS_TABLE = "no users table; built one with user_id only (no attributes to audit by)"
NO_ITEMS_TABLE = "no items table; built one with title = item_id"
UNKNOWN_REGION = "ZIP codes that are not valid US ZIPs; their region is 'unknown'"

#: Columns converted to float64 when present (everything else stays text).
NUMERIC_USER_COLUMNS = ("age",)
#: Number of example rows quoted per issue.
N_EXAMPLES = 3
#: Accepted timestamps (UTC): from the first date, up to but excluding the second. Raise the limits here.
TIMESTAMP_RANGE = ("1900-01-01", "2100-01-01")
_EPOCH = pd.Timestamp(0, tz="UTC")


def timestamp_bounds() -> tuple[int, int]:
    """:data:`TIMESTAMP_RANGE` in Unix seconds.

    >>> timestamp_bounds()
    (-2208988800, 4102444800)
    """
    low, high = (pd.Timestamp(day, tz="UTC") for day in TIMESTAMP_RANGE)
    return (low - _EPOCH) // pd.Timedelta(seconds=1), (high - _EPOCH) // pd.Timedelta(seconds=1)


def _date_seconds(dates: pd.Series) -> pd.Series:
    """UTC dates (any resolution, NaT allowed) as float Unix seconds (NaN for NaT), without overflow."""
    values = pd.to_datetime(dates, utc=True).dt.tz_convert(None).to_numpy()
    seconds = values.astype("datetime64[s]").astype("int64").astype("float64")
    return pd.Series(np.where(np.isnat(values), np.nan, seconds), index=dates.index)


def examples(frame: pd.DataFrame, mask: np.ndarray | pd.Series, column: str) -> tuple[str, ...]:
    """Up to ``N_EXAMPLES`` ``"row N: 'value'"`` strings for the rows in ``mask``.

    >>> examples(pd.DataFrame({"a": ["x", "y"]}, index=[2, 3]), np.array([False, True]), "a")
    ("row 3: 'y'",)
    """
    picked = frame.loc[np.asarray(mask), column].head(N_EXAMPLES)
    return tuple(f"row {row}: {value!r}" if pd.notna(value) else f"row {row}: <empty>" for row, value in picked.items())


def make_issue(severity, file, column, message, frame=None, mask=None) -> ValidationIssue:
    """An issue counting the rows in ``mask`` and quoting examples of ``frame[column]`` there."""
    shown = examples(frame, mask, column) if frame is not None and column in frame else ()
    n = int(np.asarray(mask).sum()) if mask is not None else 0
    return ValidationIssue(severity, file, column, message, count=n, examples=shown)


def _clean_ids(frame: pd.DataFrame, column: str, file: str, issues: list[ValidationIssue]) -> pd.DataFrame:
    ids = frame[column].astype("string").str.strip()
    bad = ids.isna() | (ids == "")
    if bad.any():
        issues.append(make_issue("error", file, column, MISSING_ID.format(column=column), frame, bad))
    frame[column] = ids.astype(object)
    return frame


def _to_number(
    frame: pd.DataFrame, column: str, file: str, issues: list[ValidationIssue], *, allow_missing: bool
) -> pd.Series:
    """Numeric column as float64; text is an error, empty cells an error unless ``allow_missing`` (warned)."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    if allow_missing:
        text = raw.astype("string").str.strip()
        empty = (text.isna() | (text == "")).to_numpy()
        bad = values.isna().to_numpy() & ~empty
    else:
        bad = values.isna().to_numpy()
    if bad.any():
        issues.append(make_issue("error", file, column, UNPARSEABLE_NUMBER.format(column=column), frame, bad))
    infinite = np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
    if infinite.any():
        issues.append(make_issue("error", file, column, NOT_FINITE.format(column=column), frame, infinite))
    if allow_missing and empty.any():
        issues.append(make_issue("warning", file, column, MISSING_ATTRIBUTE, frame, empty))
    return values.astype("float64")


def _to_timestamp(frame: pd.DataFrame, file: str, issues: list[ValidationIssue]) -> pd.Series:
    raw = frame["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(raw):  # Parquet timestamps
        numeric = _date_seconds(raw)
    else:
        numeric = pd.to_numeric(raw, errors="coerce").astype("float64")
    missing = numeric.isna()
    if missing.any():
        dates = pd.to_datetime(raw[missing].astype("string"), errors="coerce", utc=True, format="mixed")
        numeric[missing] = _date_seconds(dates)
    bad = numeric.isna().to_numpy()
    if bad.any():
        issues.append(make_issue("error", file, "timestamp", UNPARSEABLE_TIMESTAMP, frame, bad))
    low, high = timestamp_bounds()
    outside = (~bad) & ((numeric < low) | (numeric >= high)).to_numpy()
    if outside.any():
        message = TIMESTAMP_OUT_OF_RANGE.format(low=low, high=high, low_date=TIMESTAMP_RANGE[0], high_date=TIMESTAMP_RANGE[1])
        issues.append(make_issue("error", file, "timestamp", message, frame, outside))
    return numeric.where(~(bad | outside), 0).astype("int64")


def _required(frame: pd.DataFrame, columns, file: str) -> list[ValidationIssue]:
    duplicated = pd.Index(frame.columns)[pd.Index(frame.columns).duplicated()].unique()
    if len(duplicated):  # e.g. a mapping that renames a column onto one that exists
        counts = pd.Index(frame.columns).value_counts()
        return [
            ValidationIssue("error", file, str(c), DUPLICATE_COLUMN.format(column=c, count=int(counts[c])))
            for c in duplicated
        ]
    found = sorted(map(str, frame.columns))
    return [
        ValidationIssue("error", file, c, MISSING_COLUMN.format(column=c, found=found))
        for c in columns
        if c not in frame.columns
    ]


def _attributes(frame: pd.DataFrame, id_column: str, file: str, skip: tuple[str, ...], issues) -> pd.DataFrame:
    """Attribute columns -> str with ``"unknown"`` for missing; numeric ones -> float64."""
    for column in frame.columns:
        if column == id_column or column in skip:
            continue
        if column in NUMERIC_USER_COLUMNS:
            frame[column] = _to_number(frame, column, file, issues, allow_missing=True)
            continue
        text = frame[column].astype("string").str.strip()
        missing = (text.isna() | (text == "")).to_numpy()
        if missing.any():
            issues.append(make_issue("warning", file, column, MISSING_ATTRIBUTE, frame, missing))
        frame[column] = text.fillna(UNKNOWN).replace("", UNKNOWN).astype(object)
    return frame


def _single_groups(frame: pd.DataFrame, columns, file: str) -> list[ValidationIssue]:
    out = []
    for column in columns:
        if column not in frame or frame[column].dtype == float:
            continue
        groups = sorted(set(frame[column].unique()) - {UNKNOWN})
        if len(groups) < 2:
            out.append(ValidationIssue("warning", file, column, SINGLE_GROUP.format(groups=groups)))
    return out


def validate_tables(
    interactions: pd.DataFrame,
    users: pd.DataFrame | None,
    items: pd.DataFrame | None,
    files: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[ValidationIssue]]:
    """Check and repair raw tables; returns the clean tables and every issue found.

    ``files`` names the source of each table (keys ``interactions``, ``users``, ``items``).
    When any issue is an ``error`` the returned tables must not be used.

    >>> inter = pd.DataFrame({"user_id": ["1", "1"], "item_id": ["a", "a"]}, index=[2, 3])
    >>> _, users, items, issues = validate_tables(inter, None, None, {"interactions": "x.csv"})
    >>> [i.message for i in issues] == [DUPLICATE_PAIRS, NO_USERS_TABLE, NO_ITEMS_TABLE]
    True
    """
    issues: list[ValidationIssue] = []
    f_int = files.get("interactions", "interactions")
    f_users, f_items = files.get("users", "users"), files.get("items", "items")
    issues += _required(interactions, INTERACTION_COLUMNS, f_int)
    if users is not None:
        issues += _required(users, USER_COLUMNS, f_users)
    if items is not None:
        issues += _required(items, ("item_id",), f_items)
    if issues:
        return interactions, users, items, issues
    for frame, file in ((interactions, f_int), (users, f_users), (items, f_items)):
        if frame is not None and frame.empty:
            issues.append(ValidationIssue("error", file, None, EMPTY_TABLE))
    if issues:
        return interactions, users, items, issues

    inter = interactions.copy()
    for column in INTERACTION_COLUMNS:
        _clean_ids(inter, column, f_int, issues)
    if "rating" in inter:
        inter["rating"] = _to_number(inter, "rating", f_int, issues, allow_missing=False)
    if "timestamp" in inter:
        inter["timestamp"] = _to_timestamp(inter, f_int, issues)
    keep = [c for c in ("user_id", "item_id", "rating", "timestamp") if c in inter]
    inter = inter[keep]
    dup = inter.duplicated(["user_id", "item_id"], keep="last").to_numpy()
    if dup.any():
        issues.append(make_issue("warning", f_int, "item_id", DUPLICATE_PAIRS, inter, dup))
        inter = inter[~dup]

    users, inter = _side_table(users, inter, "user_id", f_users, f_int, UNKNOWN_USER, NO_USERS_TABLE, issues)
    items, inter = _side_table(items, inter, "item_id", f_items, f_int, UNKNOWN_ITEM, NO_ITEMS_TABLE, issues)
    if "title" not in items:
        items.insert(1, "title", items["item_id"])
    users = _attributes(users, "user_id", f_users, (), issues)
    items = _attributes(items, "item_id", f_items, ("title", "description"), issues)
    items["title"] = items["title"].replace(UNKNOWN, np.nan).fillna(items["item_id"])
    if "description" in items:
        items["description"] = items["description"].astype("string").fillna("").astype(object)
    issues += _single_groups(users, [c for c in users.columns if c != "user_id"], f_users)
    if inter.empty:
        issues.append(ValidationIssue("error", f_int, None, EMPTY_TABLE))
    return inter, users, items, issues


def _side_table(table, inter, column, file, f_int, orphan_message, absent_message, issues):
    """Clean a users/items table (or build one) and drop interactions not in it."""
    if table is None:
        issues.append(ValidationIssue("warning", file, None, absent_message))
        ids = pd.unique(inter[column])
        return pd.DataFrame({column: ids}), inter
    table = _clean_ids(table.copy(), column, file, issues)
    dup = table.duplicated(column, keep="first").to_numpy()
    if dup.any():
        issues.append(make_issue("warning", file, column, DUPLICATE_IDS.format(column=column), table, dup))
        table = table[~dup]
    orphan = ~inter[column].isin(table[column]).to_numpy()
    if orphan.any():
        issues.append(make_issue("warning", f_int, column, orphan_message, inter, orphan))
        inter = inter[~orphan]
    return table, inter
