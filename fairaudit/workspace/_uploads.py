"""Uploaded archives: unpacking a zip safely, and packing a folder (an audit) as a zip download."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import stat
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping, Sequence

import pandas as pd

#: Largest total size of the files inside an uploaded zip, in bytes.
MAX_UNZIPPED_BYTES = 500 * 1024**2
#: Most members (files and folders) an uploaded zip may hold.
MAX_ZIP_MEMBERS = 2_000
#: Compression methods unpacked (stored, deflate, bzip2, LZMA: those Python reads without extra code).
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_CHUNK = 1 << 20

ZIP_UNREADABLE = "'{0}' is not a readable zip archive ({1}); upload a .zip of a MovieLens or CSV/Parquet folder"
ZIP_UNSAFE_PATH = (
    "'{0}' contains the unsafe path '{1}' (absolute or with '..'); re-create the zip from the folder itself"
)
ZIP_UNSAFE_LINK = "'{0}' contains the symbolic link '{1}'; re-create the zip with plain files only"
ZIP_TOO_LARGE = "'{0}' unpacks to {1:,} bytes, over the limit of {2:,}; upload a smaller dataset"
ZIP_LYING_SIZE = (
    "'{0}' unpacks to more than {1:,} bytes (the limit) although its headers declare {2:,}; the archive "
    "misstates its sizes (a zip bomb?): re-create it from the folder itself"
)
ZIP_TOO_MANY = "'{0}' holds {1:,} members, over the limit of {2:,}; zip only the dataset's files"
ZIP_ENCRYPTED = "'{0}' is encrypted (member '{1}'); upload an archive without a password"
ZIP_METHOD = (
    "'{0}' uses a compression method FairAudit cannot unpack (member '{1}', method {2}); "
    "re-create it with ordinary (deflate) compression"
)
ZIP_CORRUPT = "'{0}' is damaged: member '{1}' cannot be unpacked ({2}); re-create the zip and upload it again"


def _is_link(member: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(member.external_attr >> 16)


def _check_members(name: str, members: list[zipfile.ZipInfo], max_bytes: int, max_members: int) -> None:
    if len(members) > max_members:
        raise ValueError(ZIP_TOO_MANY.format(name, len(members), max_members))
    for member in members:
        parts = Path(member.filename).parts
        if member.filename.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", member.filename) \
                or "\\" in member.filename or "\x00" in member.filename:
            raise ValueError(ZIP_UNSAFE_PATH.format(name, member.filename))
        if _is_link(member):
            raise ValueError(ZIP_UNSAFE_LINK.format(name, member.filename))
        if member.flag_bits & 0x1:
            raise ValueError(ZIP_ENCRYPTED.format(name, member.filename))
        if member.compress_type not in ZIP_METHODS:
            raise ValueError(ZIP_METHOD.format(name, member.filename, member.compress_type))
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        raise ValueError(ZIP_TOO_LARGE.format(name, total, max_bytes))


def _extract(name: str, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], folder: Path, max_bytes: int) -> None:
    """Write every member under ``folder``, counting the bytes really unpacked (not the declared sizes)."""
    declared, written = sum(m.file_size for m in members), 0
    root = folder.resolve()
    for member in members:
        path = folder.joinpath(*Path(member.filename).parts)
        if root not in (path.resolve(), *path.resolve().parents):  # belt and braces after _check_members
            raise ValueError(ZIP_UNSAFE_PATH.format(name, member.filename))
        if member.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive.open(member) as source, open(path, "xb") as target:
                while chunk := source.read(_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise ValueError(ZIP_LYING_SIZE.format(name, max_bytes, declared))
                    target.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as err:
            raise ValueError(ZIP_CORRUPT.format(name, member.filename, err)) from None


def unpack_zip(
    name: str,
    content: bytes,
    target: str | Path,
    *,
    max_bytes: int = MAX_UNZIPPED_BYTES,
    max_members: int = MAX_ZIP_MEMBERS,
) -> Path:
    """Unpack the zip ``content`` (uploaded as ``name``) into the new folder ``target``; returns its data folder.

    Refuses, before writing anything, unreadable archives (:data:`ZIP_UNREADABLE`), more than
    ``max_members`` members (:data:`ZIP_TOO_MANY`), absolute or ``..`` member paths
    (:data:`ZIP_UNSAFE_PATH`), symbolic links (:data:`ZIP_UNSAFE_LINK`), encrypted members
    (:data:`ZIP_ENCRYPTED`), compression methods other than :data:`ZIP_METHODS`
    (:data:`ZIP_METHOD`) and archives whose headers declare more than ``max_bytes``
    (:data:`ZIP_TOO_LARGE`). While unpacking, the bytes really written are counted, so an archive
    whose headers understate its size stops at ``max_bytes`` (:data:`ZIP_LYING_SIZE`), and a
    damaged member (bad CRC, truncated data) gives :data:`ZIP_CORRUPT`. Everything is unpacked
    into a temporary sibling folder renamed to ``target`` only on success; on any failure it is
    deleted, so no half-unpacked folder is left. Every refusal is a ``ValueError`` naming the
    archive. When the archive holds a single top folder (``ml-100k/u.data``), that folder is
    returned, else ``target``.

    >>> import tempfile
    >>> buffer = io.BytesIO()
    >>> with zipfile.ZipFile(buffer, "w") as archive:
    ...     archive.writestr("ml-100k/u.data", "1 2 3 4")
    >>> unpack_zip("ml.zip", buffer.getvalue(), Path(tempfile.mkdtemp()) / "zip").name
    'ml-100k'
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, NotImplementedError) as err:
        raise ValueError(ZIP_UNREADABLE.format(name, err)) from None
    _check_members(name, members, max_bytes, max_members)
    target = Path(target)
    if target.exists():
        raise ValueError(ZIP_UNREADABLE.format(name, f"the folder '{target}' to unpack it into already exists"))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
    partial.mkdir()
    try:
        _extract(name, archive, members, partial, max_bytes)
        os.rename(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    entries = [p for p in target.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target


def zip_folder(folder: str | Path) -> bytes:
    """The files under ``folder`` as an in-memory zip (paths relative to ``folder``'s parent).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()) / "audit"
    >>> d.mkdir(); _ = (d / "gaps.csv").write_text("x")
    >>> zipfile.ZipFile(io.BytesIO(zip_folder(d))).namelist()
    ['audit/gaps.csv']
    """
    folder = Path(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder.parent).as_posix())
    return buffer.getvalue()


# ---- files dropped on the Data page ------------------------------------------------------------
UploadKind = Literal["table", "zip", "movielens"]
#: Encodings offered for text tables; ``auto`` reads UTF-8 (with or without BOM, or UTF-16 with a
#: BOM) and falls back to Latin-1 with a warning.
ENCODINGS: tuple[str, ...] = ("auto", "utf-8", "latin-1", "cp1252", "utf-16")
#: Raw MovieLens files, by release: dropped together they load like the unpacked folder.
MOVIELENS_FILES = {"MovieLens 100K": ("u.data", "u.user", "u.item"),
                   "MovieLens 1M": ("ratings.dat", "users.dat", "movies.dat")}  # fmt: skip
TABLE_ROLES: tuple[str, ...] = ("interactions", "users", "items", "texts")
#: Columns each table needs (after the automatic renames and the analyst's mapping).
REQUIRED_COLUMNS = {"interactions": ("user_id", "item_id"), "users": ("user_id",), "items": ("item_id",),
                    "texts": ("user_id", "text")}  # fmt: skip
_COLUMN_WORDS = {"user_id": "user ids", "item_id": "item ids", "text": "texts"}
_BINARY_MAGIC = {b"%PDF": "a PDF document", b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image",
                 b"GIF8": "a GIF image", b"SQLite format 3": "an SQLite database",
                 b"\xd0\xcf\x11\xe0": "an old Excel/Word file (.xls/.doc)", b"\x1f\x8b": "a gzip archive"}  # fmt: skip

UPLOAD_EMPTY = (
    "'{0}' is empty. Export the table again with a header row (for example user_id,item_id,rating) "
    "and at least one row of data."
)
UPLOAD_NO_ROWS = "'{0}' has a header ({1}) but no rows of data. Upload the file that holds the data."
UPLOAD_BINARY = (
    "'{0}' is not a text table: it looks like {1}. Upload a table saved as CSV or TSV text, a Parquet file, "
    "a .zip of a dataset folder, or the MovieLens files (u.data, u.user, u.item)."
)
UPLOAD_EXCEL = "'{0}' is an Excel workbook. In Excel use File > Save As > CSV (comma delimited), then upload the .csv."
UPLOAD_NOT_PARQUET = (
    "'{0}' could not be read as Parquet ({1}). Export it again as Parquet, or upload the table as CSV."
)
UPLOAD_ENCODING = (
    "'{0}' is not valid {1} text (byte 0x{2:02x} at position {3:,} is not a {1} character). Choose the file's "
    "encoding under 'Text encoding' (files from older Excel are usually cp1252 or latin-1)."
)
UPLOAD_UTF16 = (
    "'{0}' looks like UTF-16 text without a byte-order mark. Choose utf-16 under 'Text encoding', or save the "
    "file again as UTF-8 CSV."
)
UPLOAD_LATIN1 = (
    "'{0}' is not UTF-8 text, so it was read as Latin-1. If accented letters look wrong in the data, choose "
    "its encoding under 'Text encoding'."
)
UPLOAD_ONE_COLUMN = (
    "'{0}' has a single column ('{1}'). FairAudit reads comma-separated (.csv) or tab-separated (.tsv) tables; "
    "if this file separates values with ';' or '|', save it again as CSV."
)
UPLOAD_UNREADABLE = "'{0}' could not be read as a {1} table ({2}). Check that it is a plain {1} file and upload it again."
UPLOAD_UNKNOWN_ROLE = (
    "'{0}' has no user_id or item_id column that FairAudit recognises (its columns: {1}). Choose what the file "
    "holds under 'What each file holds', then which column is which under 'Column mapping'."
)
UPLOAD_MISSING_COLUMN = (
    "required column '{0}' not found in '{1}' (its columns: {2}). Choose which column holds the {3} under "
    "'Column mapping' (or rename it in the file)."
)
UPLOAD_NO_INTERACTIONS = (
    "None of the files holds interactions (a table with user_id and item_id). Add the interactions table; "
    "users and items tables are optional."
)
UPLOAD_TWO_ROLES = "'{0}' and '{1}' both hold {2}; drop one of them."
UPLOAD_MOVIELENS_MISSING = "{0} needs {1} together; also drop {2} (or upload the release's .zip)."
UPLOAD_MIXED = (
    "Drop either tables, one .zip, or the MovieLens files, not a mix ({0}). Load them one kind at a time."
)


@dataclass(frozen=True)
class DroppedFile:
    """One file dropped on the Data page, checked before anything else is drawn.

    ``kind`` says how it will load; ``problem`` is a plain-language error (nothing loads while a
    file has one); ``warning`` a repair the analyst should know about (read as Latin-1);
    ``text`` the table re-encoded as UTF-8 (tables only), ``columns`` its header and ``role``
    the table it looks like (``None`` when unsure).
    """

    name: str
    kind: UploadKind
    content: bytes
    problem: str | None = None
    warning: str | None = None
    columns: tuple[str, ...] = ()
    role: str | None = None


def _decode_table(name: str, content: bytes, encoding: str) -> tuple[str, str | None]:
    """(text, warning); raises ``ValueError`` (:data:`UPLOAD_ENCODING`) when ``encoding`` does not fit."""
    if encoding == "auto":
        if content.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoding = "utf-16"
        else:
            try:
                return content.decode("utf-8-sig"), None
            except UnicodeDecodeError:
                return content.decode("latin-1"), UPLOAD_LATIN1.format(name)
    try:
        return content.decode("utf-8-sig" if encoding == "utf-8" else encoding), None
    except UnicodeDecodeError as err:
        raise ValueError(UPLOAD_ENCODING.format(name, encoding, err.object[err.start], err.start)) from None


def _binary_kind(name: str, content: bytes) -> str | None:
    """What a binary file looks like, or ``None`` for text."""
    head = content[:65_536]
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            return what
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # UTF-16 text with a byte-order mark
    if len(head) >= 4 and max(head[1::2].count(0), head[0::2].count(0)) >= 0.4 * (len(head) // 2):
        return "utf-16"  # ASCII text as UTF-16: every other byte is zero
    controls = sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13))
    if b"\x00" in head or controls > 0.05 * max(len(head), 1):
        return "a binary file (it contains bytes that never occur in text)"
    return None


def guess_role(name: str, columns: Sequence[str]) -> str | None:
    """The table a file looks like, from its columns (after the usual renames), then its name.

    >>> guess_role("plays.csv", ["userId", "movieId", "rating"]), guess_role("people.csv", ["user_id", "sex"])
    ('interactions', 'users')
    >>> guess_role("films.csv", ["movieId", "title"]), guess_role("x.csv", ["a", "b"])
    ('items', None)
    >>> guess_role("x.csv", ["user_id", "rating"])  # the item column still has to be mapped
    'interactions'
    >>> guess_role("reviews.csv", ["user_id", "text", "item_id"])  # user texts (a review may name its item)
    'texts'
    """
    from fairaudit.data import apply_mapping

    found = set(apply_mapping(pd.DataFrame(columns=list(columns))).columns)
    if {"user_id", "text"} <= found:
        return "texts"
    if {"user_id", "item_id"} <= found:
        return "interactions"
    if "user_id" in found and found & {"rating", "timestamp"}:
        return "interactions"  # an interactions table whose item column is not recognised yet
    if "item_id" in found:
        return "items"
    if "user_id" in found:
        return "users"
    stem = Path(name).stem.lower()
    for role, words in (("interactions", ("interaction", "rating", "play", "click", "event")),
                        ("users", ("user", "people", "member")), ("items", ("item", "movie", "product"))):
        if any(word in stem for word in words):
            return role
    return None


def inspect_file(name: str, content: bytes, *, encoding: str = "auto") -> DroppedFile:
    """Check one dropped file before anything is drawn: what it is, and any problem in plain words.

    Empty, binary, damaged Parquet, unreadable-as-``encoding`` and header-only files get a
    problem; zips are checked member by member (unsafe paths, links, sizes) without unpacking;
    raw MovieLens files are recognised by name.

    >>> inspect_file("plays.csv", b"").problem == UPLOAD_EMPTY.format("plays.csv")
    True
    >>> inspect_file("u.data", b"1\\t2\\t5\\t881250949\\n").kind
    'movielens'
    >>> inspect_file("plays.csv", b"userId,movieId\\n1,2\\n").role
    'interactions'
    """
    base = Path(name).name
    if any(base in files for files in MOVIELENS_FILES.values()):
        problem = UPLOAD_EMPTY.format(base) if not content.strip() else None
        return DroppedFile(base, "movielens", content, problem)
    if content.startswith(b"PK") or base.lower().endswith(".zip"):
        return _inspect_zip(base, content)
    if not content.strip():
        return DroppedFile(base, "table", content, UPLOAD_EMPTY.format(base))
    if base.lower().endswith((".parquet", ".pq")) or content.startswith(b"PAR1"):
        return _inspect_parquet(base, content)
    what = None if encoding == "utf-16" else _binary_kind(base, content)
    if what == "utf-16":
        return DroppedFile(base, "table", content, UPLOAD_UTF16.format(base))
    if what is not None:
        return DroppedFile(base, "table", content, UPLOAD_BINARY.format(base, what))
    try:
        text, warning = _decode_table(base, content, encoding)
    except ValueError as err:
        return DroppedFile(base, "table", content, str(err))
    sep = "\t" if base.lower().endswith(".tsv") else ","
    kind = "TSV" if sep == "\t" else "CSV"
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, nrows=5)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        return DroppedFile(base, "table", content, UPLOAD_UNREADABLE.format(base, kind, reason))
    columns = tuple(str(c) for c in frame.columns)
    if frame.empty:
        return DroppedFile(base, "table", content, UPLOAD_NO_ROWS.format(base, ", ".join(columns)), columns=columns)
    if len(columns) == 1:
        return DroppedFile(base, "table", content, UPLOAD_ONE_COLUMN.format(base, columns[0]), columns=columns)
    utf8 = text.encode("utf-8")
    return DroppedFile(base, "table", utf8, None, warning, columns, guess_role(base, columns))


def _inspect_parquet(name: str, content: bytes) -> DroppedFile:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(io.BytesIO(content))
        n_rows = pq.ParquetFile(io.BytesIO(content)).metadata.num_rows
    except Exception as err:  # pyarrow raises several unrelated types for damaged files
        return DroppedFile(name, "table", content, UPLOAD_NOT_PARQUET.format(name, str(err).splitlines()[0][:200]))
    columns = tuple(str(c) for c in schema.names)
    if n_rows == 0:
        return DroppedFile(name, "table", content, UPLOAD_NO_ROWS.format(name, ", ".join(columns)), columns=columns)
    return DroppedFile(name, "table", content, None, None, columns, guess_role(name, columns))


def _inspect_zip(name: str, content: bytes) -> DroppedFile:
    try:
        members = zipfile.ZipFile(io.BytesIO(content)).infolist()
        _check_members(name, members, MAX_UNZIPPED_BYTES, MAX_ZIP_MEMBERS)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as err:
        return DroppedFile(name, "zip", content, ZIP_UNREADABLE.format(name, err))
    except ValueError as err:
        return DroppedFile(name, "zip", content, str(err))
    names = {Path(m.filename).name for m in members}
    if "[Content_Types].xml" in names and any(m.filename.startswith("xl/") for m in members):
        return DroppedFile(name, "zip", content, UPLOAD_EXCEL.format(name))
    return DroppedFile(name, "zip", content)


def missing_columns(file: DroppedFile, role: str, mapping: dict[str, str] | None = None) -> list[str]:
    """Plain-language problems (:data:`UPLOAD_MISSING_COLUMN`) for columns ``role`` needs but ``file`` lacks.

    >>> f = inspect_file("plays.csv", b"uid,product\\n1,2\\n")
    >>> missing_columns(f, "interactions", {"uid": "user_id"})[0].startswith("required column 'item_id' not found")
    True
    >>> missing_columns(f, "interactions", {"uid": "user_id", "product": "item_id"})
    []
    """
    from fairaudit.data import apply_mapping

    found = set(apply_mapping(pd.DataFrame(columns=list(file.columns)), mapping).columns)
    return [
        UPLOAD_MISSING_COLUMN.format(column, file.name, ", ".join(file.columns), _COLUMN_WORDS.get(column, column))
        for column in REQUIRED_COLUMNS[role] if column not in found
    ]  # fmt: skip


def upload_problems(files: Sequence[DroppedFile], roles: Mapping[str, str | None]) -> list[str]:
    """Problems of the dropped set as a whole: each file's own, a mix of kinds, MovieLens files that do not
    come together, tables without interactions or with two files for one role (``roles``: name -> role).

    >>> upload_problems([inspect_file("u.data", b"1\\t2\\t5\\t9\\n")], {})[0].startswith("MovieLens 100K needs")
    True
    """
    problems = [f.problem for f in files if f.problem]
    if problems or not files:
        return problems
    kinds = sorted({f.kind for f in files})
    if len(kinds) > 1 or (kinds == ["zip"] and len(files) > 1):
        return [UPLOAD_MIXED.format(", ".join(f.name for f in files))]
    if kinds == ["movielens"]:
        names = {f.name for f in files}
        for release, needed in MOVIELENS_FILES.items():
            if names & set(needed) and not set(needed) <= names:
                missing = ", ".join(sorted(set(needed) - names))
                return [UPLOAD_MOVIELENS_MISSING.format(release, ", ".join(needed), missing)]
        return []
    if kinds == ["table"]:
        for f in files:
            if roles.get(f.name) is None:
                problems.append(UPLOAD_UNKNOWN_ROLE.format(f.name, ", ".join(f.columns)))
        seen: dict[str, str] = {}
        for f in files:
            role = roles.get(f.name)
            if role in seen:
                problems.append(UPLOAD_TWO_ROLES.format(seen[role], f.name, role))
            elif role:
                seen[role] = f.name
        if not problems and "interactions" not in seen:
            problems.append(UPLOAD_NO_INTERACTIONS)
    return problems
