"""Loaders: CSV/Parquet folders or files, uploaded file objects, MovieLens 100K and 1M.

Every loader ends in the same path: column mapping -> :func:`validate_tables` (once) ->
derived attributes -> :class:`Dataset`. Blocking problems raise :class:`DataError` with
every issue; repairs end up in ``Dataset.warnings``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Union

import pandas as pd

from fairaudit.data import _derive
from fairaudit.data import _validate as V
from fairaudit.data._texts import TEXTS_STEM, validate_texts
from fairaudit.data._schema import GENRE_SEP, UNKNOWN, DataError, Dataset, ValidationIssue

#: A table to load: a path, raw bytes, or a file object (an upload) with a ``name``.
Source = Union[str, os.PathLike, bytes, IO[bytes]]

#: Automatic column aliases (case-insensitive), applied when the target column is absent.
ALIASES = {
    "user_id": ("userid", "user", "uid", "user id", "customer_id"),
    "item_id": ("itemid", "item", "movieid", "movie_id", "iid", "product_id", "item id"),
    "rating": ("score", "stars", "rate"),
    "timestamp": ("time", "ts", "datetime", "date", "unix_timestamp"),
    "gender": ("sex",),
    "zip": ("zip_code", "zipcode", "zip-code", "postal_code", "postcode"),
    "title": ("name", "movie_title", "item_title"),
    "genres": ("genre", "categories", "category"),
}
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
#: MovieLens 100K genre flags, in file order.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def apply_mapping(frame: pd.DataFrame, mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """Rename columns by ``mapping`` (old -> new), then by :data:`ALIASES` where the target is absent.

    >>> apply_mapping(pd.DataFrame(columns=["userId", "movieId", "sex", "x"]), {"x": "age"}).columns.tolist()
    ['user_id', 'item_id', 'gender', 'age']
    """
    frame = frame.rename(columns=dict(mapping or {}))
    present = set(frame.columns)
    renames = {}
    for target, names in ALIASES.items():
        if target in present:
            continue
        match = [c for c in frame.columns if str(c).strip().lower() in (target, *names) and c not in renames]
        if match:
            renames[match[0]] = target
            present.add(target)
    return frame.rename(columns=renames)


def _name(source: Source) -> str:
    """File name (without folder) shown in issues; unnamed bytes count as ``upload.csv``."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return Path(str(getattr(source, "name", "upload.csv"))).name


def _read_bytes(source: Source, max_bytes: int) -> bytes:
    """The raw bytes of ``source``, refusing files over ``max_bytes`` before reading them."""
    name = _name(source)
    if isinstance(source, (str, os.PathLike)):
        size = os.path.getsize(source)
        if size > max_bytes:
            raise DataError(ValidationIssue("error", name, None, V.FILE_TOO_LARGE.format(size=size, limit=max_bytes)))
        return Path(source).read_bytes()
    data = source if isinstance(source, bytes) else source.read()
    if len(data) > max_bytes:
        raise DataError(
            ValidationIssue("error", name, None, V.FILE_TOO_LARGE.format(size=len(data), limit=max_bytes))
        )
    return data


def _decode(data: bytes, name: str, encoding: str | None, issues: list[ValidationIssue]) -> str:
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as err:
            raise DataError(ValidationIssue("error", name, None, V.BAD_ENCODING.format(encoding=encoding))) from err
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        issues.append(ValidationIssue("warning", name, None, V.ENCODING_FALLBACK))
        return data.decode("latin-1")


def _header_duplicates(text: str, sep: str) -> dict[str, int]:
    """Column names that occur more than once in the header line (pandas would rename them ``x.1``).

    >>> _header_duplicates("user_id,item_id,item_id\\n1,2,3\\n", ",")
    {'item_id': 2}
    """
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
    except csv.Error:
        return {}
    counts: dict[str, int] = {}
    for column in header:
        counts[column] = counts.get(column, 0) + 1
    return {column: n for column, n in counts.items() if n > 1}


def _parse_text(text: str, name: str, *, first_row: int, **read_options) -> pd.DataFrame:
    if read_options.get("header", "infer") == "infer":
        duplicates = _header_duplicates(text, read_options.get("sep", ","))
        if duplicates:
            raise DataError([
                ValidationIssue("error", name, column, V.DUPLICATE_COLUMN.format(column=column, count=n))
                for column, n in duplicates.items()
            ])  # fmt: skip
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, **read_options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        message = V.UNREADABLE_FILE.format(kind="text", reason=reason)
        raise DataError(ValidationIssue("error", name, None, message)) from err
    frame.index = pd.RangeIndex(first_row, first_row + len(frame))
    return frame


def read_table(
    source: Source, *, max_bytes: int, encoding: str | None, issues: list[ValidationIssue]
) -> pd.DataFrame:
    """Read one CSV/TSV/Parquet table; index = row number in the file (see ``_validate``)."""
    name = _name(source)
    suffix = Path(name).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(ValidationIssue("error", name, None, V.UNSUPPORTED_FORMAT.format(suffix=suffix)))
    data = _read_bytes(source, max_bytes)
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except Exception as err:  # pyarrow raises several unrelated types for corrupt files
            raise DataError(
                ValidationIssue("error", name, None, V.UNREADABLE_FILE.format(kind="Parquet", reason=err))
            ) from err
        frame.index = pd.RangeIndex(1, len(frame) + 1)
        for column in frame.columns:  # numeric ZIPs lost their leading zeros
            if str(column).lower() in ("zip", *ALIASES["zip"]) and pd.api.types.is_integer_dtype(frame[column]):
                frame[column] = frame[column].astype("string").str.zfill(5)
        return frame
    sep = "\t" if suffix == ".tsv" else ","
    return _parse_text(_decode(data, name, encoding, issues), name, first_row=2, sep=sep)


def read_columns(path: str | Path) -> list[str]:
    """Column names of an uploaded CSV/TSV or Parquet file, reading only its header.

    Used to offer the column-mapping choices before anything is loaded.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("userId,movieId\\n1,2\\n")
    >>> read_columns(p)
    ['userId', 'movieId']
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    sep = "\t" if suffix == ".tsv" else None
    try:
        header = pd.read_csv(path, nrows=0, sep=sep, engine="python", encoding="utf-8")
    except UnicodeDecodeError:
        header = pd.read_csv(path, nrows=0, sep=sep, engine="python", encoding="latin-1")
    return [str(c) for c in header.columns]


def _read_movielens(path: Path, columns: Sequence[str], sep: str, max_bytes: int) -> pd.DataFrame:
    text = _read_bytes(path, max_bytes).decode("latin-1")
    if sep == "::":
        text, sep = text.replace("::", "\t"), "\t"
    return _parse_text(
        text, path.name, first_row=1, sep=sep, header=None, names=list(columns), quoting=csv.QUOTE_NONE
    )


def _movielens_100k(folder: Path, max_bytes: int):
    inter = _read_movielens(folder / "u.data", ("user_id", "item_id", "rating", "timestamp"), "\t", max_bytes)
    users = _read_movielens(folder / "u.user", ("user_id", "age", "gender", "occupation", "zip"), "|", max_bytes)
    head = ("item_id", "title", "release_date", "video_release_date", "url")
    raw = _read_movielens(folder / "u.item", (*head, *ML100K_GENRES), "|", max_bytes)
    flags = raw[list(ML100K_GENRES)].astype(int)
    genres = flags.dot(pd.Index(ML100K_GENRES) + GENRE_SEP).str.rstrip(GENRE_SEP)
    items = raw[["item_id", "title"]].assign(genres=genres.replace("", UNKNOWN))
    return inter, users, items, {"interactions": "u.data", "users": "u.user", "items": "u.item"}


def _movielens_1m(folder: Path, max_bytes: int):
    inter = _read_movielens(folder / "ratings.dat", ("user_id", "item_id", "rating", "timestamp"), "::", max_bytes)
    users = _read_movielens(
        folder / "users.dat", ("user_id", "gender", "age", "occupation", "zip"), "::", max_bytes
    )
    bands = pd.to_numeric(users.pop("age"), errors="coerce").map(_derive.ML1M_AGE_BANDS)
    users.insert(2, "age_band", bands.fillna(UNKNOWN))
    items = _read_movielens(folder / "movies.dat", ("item_id", "title", "genres"), "::", max_bytes)
    return inter, users, items, {"interactions": "ratings.dat", "users": "users.dat", "items": "movies.dat"}


def _beside(interactions: Path, stem: str) -> Path | None:
    for suffix in (interactions.suffix, *TABLE_SUFFIXES):
        candidate = interactions.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def load_dataset(
    path: str | os.PathLike,
    *,
    mapping: dict[str, str] | None = None,
    max_bytes: int = 200_000_000,
    age_edges: Sequence[int] = _derive.AGE_EDGES,
    popularity_cuts: tuple[float, float] = _derive.POPULARITY_CUTS,
    encoding: str | None = None,
) -> Dataset:
    """Load a dataset from a folder or an interactions file, detecting its layout.

    Layouts: a folder (or file) with ``u.data`` -> MovieLens 100K; ``ratings.dat`` ->
    MovieLens 1M; otherwise ``interactions.csv|.tsv|.parquet`` with optional ``users.*``,
    ``items.*`` and ``user_texts.*`` beside it (any interactions file name works when given directly).

    Parameters
    ----------
    path : path-like
        Folder or interactions file.
    mapping : dict, optional
        Column renames ``{"theirs": "ours"}`` applied to every table before automatic
        aliases (``userId``, ``movieId``, ``sex``, ``zipcode`` ... see :data:`ALIASES`).
    max_bytes : int
        Any file larger than this is refused before reading.
    age_edges : sequence of int
        Band edges for ``age_band`` from a numeric ``age`` column.
    popularity_cuts : (float, float)
        Cumulative interaction shares closing the head and mid tiers.
    encoding : str, optional
        Text encoding of CSV files; by default UTF-8, falling back to Latin-1 with a warning.

    Raises
    ------
    DataError
        With every blocking :class:`ValidationIssue`.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "interactions.csv").write_text("userId,movieId\\n1,a\\n1,b\\n2,a\\n")
    >>> load_dataset(folder).summary()
    {'n_users': 2, 'n_items': 2, 'n_interactions': 3}
    """
    path = Path(path)
    options = dict(age_edges=age_edges, popularity_cuts=popularity_cuts)
    if not path.exists():
        raise DataError(ValidationIssue("error", str(path), None, V.PATH_NOT_FOUND))
    folder = path if path.is_dir() else path.parent
    if (folder / "u.data").is_file() and (path.is_dir() or path.name == "u.data"):
        return _finish(*_movielens_100k(folder, max_bytes), [], name=folder.name, **options)
    if (folder / "ratings.dat").is_file() and (path.is_dir() or path.name == "ratings.dat"):
        return _finish(*_movielens_1m(folder, max_bytes), [], name=folder.name, **options)
    if path.is_dir():
        found = [path / f"interactions{s}" for s in TABLE_SUFFIXES if (path / f"interactions{s}").is_file()]
        if not found:
            raise DataError(ValidationIssue("error", str(path), None, V.NO_INTERACTIONS_FILE))
        path = found[0]
    return load_tables(
        path,
        _beside(path, "users"),
        _beside(path, "items"),
        texts=_beside(path, TEXTS_STEM),
        mapping=mapping,
        max_bytes=max_bytes,
        encoding=encoding,
        name=folder.name if path.stem == "interactions" else path.name,
        **options,
    )


def load_tables(
    interactions: Source,
    users: Source | None = None,
    items: Source | None = None,
    *,
    texts: Source | None = None,
    mapping: dict[str, str] | None = None,
    max_bytes: int = 200_000_000,
    age_edges: Sequence[int] = _derive.AGE_EDGES,
    popularity_cuts: tuple[float, float] = _derive.POPULARITY_CUTS,
    encoding: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Load explicit tables: paths, bytes or file objects (e.g. dashboard uploads).

    The file type comes from the path or the object's ``name`` (``.csv``, ``.tsv``,
    ``.parquet``); bytes without a name are read as CSV. ``texts`` is the optional user-texts
    table (:mod:`fairaudit.data._texts`). Options as :func:`load_dataset`.

    >>> load_tables(b"user_id,item_id\\nu1,i1\\n", b"user_id,gender\\nu1,F\\n").users.columns.tolist()
    ['user_id', 'gender', 'activity']
    """
    issues: list[ValidationIssue] = []
    sources = {"interactions": interactions, "users": users, "items": items}
    read = dict(max_bytes=max_bytes, encoding=encoding, issues=issues)
    tables = [None if src is None else apply_mapping(read_table(src, **read), mapping) for src in sources.values()]
    files = {key: _name(src) for key, src in sources.items() if src is not None}
    if texts is not None:
        files["texts"] = _name(texts)
    return _finish(
        *tables,
        files,
        issues,
        texts=None if texts is None else apply_mapping(read_table(texts, **read), mapping),
        name=name or files["interactions"],
        age_edges=age_edges,
        popularity_cuts=popularity_cuts,
    )


def _finish(
    interactions: pd.DataFrame,
    users: pd.DataFrame | None,
    items: pd.DataFrame | None,
    files: dict[str, str],
    issues: list[ValidationIssue],
    *,
    name: str,
    age_edges: Sequence[int],
    popularity_cuts: tuple[float, float],
    texts: pd.DataFrame | None = None,
) -> Dataset:
    """Validate once, derive attributes, and build the :class:`Dataset` (shared by every loader)."""
    inter, users, items, found = V.validate_tables(interactions, users, items, files)
    issues = issues + found
    if texts is not None and not any(i.severity == "error" for i in issues):
        texts, found = validate_texts(texts, users, items, files.get("texts", "user_texts"))
        issues = issues + found
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise DataError(errors + [i for i in issues if i.severity != "error"])
    users = users.copy()
    if "age" in users and "age_band" not in users:
        users["age_band"] = _derive.age_band(users["age"], age_edges)
    if "zip" in users and "region" not in users:
        users["region"] = _derive.zip_region(users["zip"])
        bad = (users["region"] == UNKNOWN).to_numpy()
        if bad.any():
            issues.append(V.make_issue("warning", files.get("users", "users"), "zip", V.UNKNOWN_REGION, users, bad))
    users["activity"] = _derive.activity_level(inter, users["user_id"])
    items = items.copy()
    items["popularity_tier"] = _derive.popularity_tier(inter, items["item_id"], popularity_cuts)
    return Dataset(
        interactions=inter.reset_index(drop=True),
        users=users.reset_index(drop=True),
        items=items.reset_index(drop=True),
        name=name,
        warnings=tuple(issues),
        texts=None if texts is None or texts.empty else texts,
    )


def validate_path(path: str | os.PathLike, **options) -> list[ValidationIssue]:
    """Every issue found when loading ``path`` (options as ``load_dataset``), errors first.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "interactions.csv").write_text("user,rating\\n1,x\\n")
    >>> expected = V.MISSING_COLUMN.format(column="item_id", found=["rating", "user_id"])
    >>> [i.message for i in validate_path(folder)] == [expected]
    True
    """
    try:
        dataset = load_dataset(path, **options)
    except DataError as err:
        return err.issues
    return list(dataset.warnings)
