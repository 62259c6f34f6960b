"""Uploaded archives: unpacking a zip safely, and packing a folder (an audit) as a zip download."""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import uuid
import zipfile
import zlib
from pathlib import Path

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
