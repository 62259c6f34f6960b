"""What FairAudit writes: CSV files no spreadsheet can execute, and folders written atomically under a lock.

CSV (formula injection)
-----------------------
:func:`csv_bytes` / :func:`write_csv` write a frame so that no cell starts with a character that
makes a spreadsheet run it as a formula (``= + - @``, tab, carriage return): such a text cell,
and any text cell that already starts with an apostrophe, gets one leading apostrophe ``'``
(OWASP "CSV injection" advice). :func:`read_csv` removes exactly that one apostrophe from every
text cell (and column name) that starts with one, so reading a file FairAudit wrote gives back
the original strings: ``"=1+1"`` -> ``"'=1+1"`` -> ``"=1+1"`` and ``"'quoted"`` -> ``"''quoted"``
-> ``"'quoted"``. Numbers (negative ones too) are written unchanged.

Folders (atomic, locked, never over foreign content)
----------------------------------------------------
:func:`replacing_folder` is how model and audit folders are written: a lock file beside the
target (``.<name>.lock``, :mod:`filelock`, non-blocking) refuses a second concurrent writer; the
target must be absent, empty, or -- with ``overwrite=True`` -- a folder of the same kind
(``is_ours``); the writer fills a temporary sibling folder, which is then renamed into place, so
a crash or Ctrl-C leaves either the old folder or the new one, never a half-written one.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

#: First characters that make Excel, LibreOffice or Google Sheets treat a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: The escape put before a formula-leading cell (and before a cell that already starts with it).
ESCAPE = "'"

FOLDER_LOCKED = (
    "'{0}' is being written by another FairAudit process (lock file '{1}'); wait for it to finish "
    "or write to another folder"
)
FOLDER_EXISTS = (
    "'{0}' already holds a FairAudit {1}; pass --overwrite (Python: overwrite=True) to replace it, "
    "or write to another folder"
)
FOLDER_FOREIGN = (
    "'{0}' exists and is not an empty folder or a FairAudit {1}; FairAudit never writes over other "
    "content: pick a new or empty folder"
)
FILE_EXISTS = "'{0}' already exists; pass --overwrite (Python: overwrite=True) to replace it, or pick another file"
IS_A_FOLDER = "'{0}' is a folder; give a file path"
NOT_A_PDF = "'{0}' exists and is not a PDF; FairAudit replaces only an earlier PDF there: pick another output path"


class OutputError(ValueError):
    """An output FairAudit refuses to write (exists, foreign, or being written); the message names it."""


class OutputLockedError(OutputError):
    """Another writer holds the output's lock."""


# ---- CSV -----------------------------------------------------------------------------------
def escape_cell(value: object) -> object:
    """``value`` with one leading apostrophe when it is text starting with a formula character or ``'``.

    >>> escape_cell("=1+1"), escape_cell("'a"), escape_cell("F"), escape_cell(-1.5)
    ("'=1+1", "''a", 'F', -1.5)
    """
    if isinstance(value, str) and value.startswith((*FORMULA_PREFIXES, ESCAPE)):
        return ESCAPE + value
    return value


def unescape_cell(value: object) -> object:
    """Undo :func:`escape_cell`: drop exactly one leading apostrophe of a text value.

    >>> unescape_cell("'=1+1"), unescape_cell("''a"), unescape_cell("F")
    ('=1+1', "'a", 'F')
    """
    if isinstance(value, str) and value.startswith(ESCAPE):
        return value[1:]
    return value


def _is_text(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def csv_bytes(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """UTF-8 CSV bytes of ``frame`` in which no text cell can run as a spreadsheet formula.

    Text cells (and column names) starting with ``= + - @``, a tab, a carriage return or an
    apostrophe get a leading apostrophe; numbers, including negative ones, are written unchanged.
    Every text cell is quoted, so embedded line breaks stay inside their cell. :func:`read_csv`
    gives the original values back.

    >>> frame = pd.DataFrame({"group": ["=HYPERLINK(\\"x\\")", "-1+2", "F"], "value": [-0.5, 1.0, 2.0]})
    >>> print(csv_bytes(frame).decode())
    "group","value"
    "'=HYPERLINK(""x"")",-0.5
    "'-1+2",1.0
    "F",2.0
    <BLANKLINE>
    >>> read_csv(io.BytesIO(csv_bytes(frame)))["group"].tolist()
    ['=HYPERLINK("x")', '-1+2', 'F']
    """
    safe = frame.copy()
    safe.columns = [escape_cell(str(c)) for c in safe.columns]
    for position in range(safe.shape[1]):
        column = safe.iloc[:, position]
        if _is_text(column):
            safe.isetitem(position, column.astype(object).map(escape_cell))
    if index:
        safe.index = safe.index.map(escape_cell)
    return safe.to_csv(index=index, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")


def read_csv(source: str | Path | io.IOBase, **options) -> pd.DataFrame:
    """``pandas.read_csv(source, **options)`` of a file written by :func:`csv_bytes`/:func:`write_csv`.

    Removes the one escaping apostrophe from column names and text cells. Files of FairAudit
    versions before the escape was added read the same, except a text cell that itself started
    with an apostrophe, which loses it.

    >>> read_csv(io.StringIO("\\"''a\\",\\"x\\"\\n\\"'=1\\",2\\n"), dtype=str).to_dict("list")
    {"'a": ['=1'], 'x': ['2']}
    """
    frame = pd.read_csv(source, **options)
    frame.columns = [unescape_cell(c) for c in frame.columns]
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if _is_text(column) and column.map(lambda v: isinstance(v, str) and v.startswith(ESCAPE)).any():
            frame.isetitem(position, column.map(unescape_cell).astype(column.dtype))
    return frame


def write_csv(frame: pd.DataFrame, path: str | Path, *, index: bool = False, overwrite: bool = True) -> Path:
    """Write :func:`csv_bytes` of ``frame`` to ``path`` atomically (a temporary file, then renamed).

    Refuses a folder (:data:`IS_A_FOLDER`) and, with ``overwrite=False``, an existing file
    (:data:`FILE_EXISTS`).

    >>> import tempfile
    >>> path = write_csv(pd.DataFrame({"g": ["@SUM(A1)"]}), Path(tempfile.mkdtemp()) / "t.csv")
    >>> path.read_text()
    '"g"\\n"\\'@SUM(A1)"\\n'
    >>> write_csv(pd.DataFrame({"g": [1]}), path, overwrite=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fairaudit.data._output.OutputError: '...t.csv' already exists; pass --overwrite ...
    """
    path = Path(path)
    check_file_target(path, overwrite=overwrite)
    write_bytes_atomic(path, csv_bytes(frame, index=index))
    return path


def check_file_target(path: str | Path, *, overwrite: bool = True) -> None:
    """Refuse writing the file ``path`` when it is a folder, or exists and ``overwrite`` is false."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(IS_A_FOLDER.format(path))
    if path.exists() and not overwrite:
        raise OutputError(FILE_EXISTS.format(path))


def check_pdf_target(path: str | Path) -> None:
    """Refuse writing a PDF to ``path`` when it is a folder or an existing file that is not a PDF.

    >>> import tempfile
    >>> notes = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = notes.write_text("mine")
    >>> check_pdf_target(notes)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fairaudit.data._output.OutputError: '...notes.txt' exists and is not a PDF; ...
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(IS_A_FOLDER.format(path))
    if path.exists():
        with open(path, "rb") as handle:
            if handle.read(5) != b"%PDF-":
                raise OutputError(NOT_A_PDF.format(path))


def cache_root() -> Path:
    """FairAudit's cache folder on this machine: ``$FAIRAUDIT_CACHE`` or ``~/.cache/fairaudit`` (text
    embeddings, generations, lookup tables; anything in it can be deleted and is rebuilt).

    >>> isinstance(cache_root(), Path)
    True
    """
    return Path(os.environ.get("FAIRAUDIT_CACHE") or Path.home() / ".cache" / "fairaudit")


def write_bytes_atomic(path: str | Path, content: bytes) -> Path:
    """Write ``content`` to a temporary sibling of ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


# ---- folders -------------------------------------------------------------------------------
def lock_path(target: str | Path) -> Path:
    """The lock file beside ``target``: ``<parent>/.<name>.lock``.

    >>> lock_path("out/audit").as_posix().endswith("out/.audit.lock")
    True
    """
    target = _placed(target)
    return target.with_name(f".{target.name}.lock")


def _placed(target: str | Path) -> Path:
    """``target`` as an absolute path (``.`` and ``out/..`` too), so its siblings can be named."""
    place = Path(os.path.abspath(target))
    if not place.name:
        raise OutputError(FOLDER_FOREIGN.format(target, "output"))
    return place


def check_folder_target(target: str | Path, *, overwrite: bool, is_ours: Callable[[Path], bool], kind: str) -> None:
    """Refuse a target folder that exists and is not empty unless it is a FairAudit ``kind`` and ``overwrite``.

    ``is_ours(folder)`` says whether an existing folder is a FairAudit ``kind`` folder (model or
    audit). Raises :class:`OutputError` with :data:`FOLDER_FOREIGN` (never overwritten, flag or
    not) or :data:`FOLDER_EXISTS` (pass ``overwrite``).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check_folder_target(folder, overwrite=False, is_ours=lambda p: False, kind="model folder")  # empty: fine
    >>> _ = (folder / "notes.txt").write_text("mine")
    >>> check_folder_target(folder, overwrite=True, is_ours=lambda p: False, kind="model folder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fairaudit.data._output.OutputError: '...' exists and is not an empty folder or a FairAudit model folder; ...
    """
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if target.is_dir() and not target.is_symlink():
        if not any(target.iterdir()):
            return
        if is_ours(target):
            if overwrite:
                return
            raise OutputError(FOLDER_EXISTS.format(target, kind))
    raise OutputError(FOLDER_FOREIGN.format(target, kind))


def _same_file(lock: FileLock, path: Path) -> bool:
    """Whether the locked descriptor is still the file at ``path`` (not one its last holder removed)."""
    descriptor = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    if descriptor is None:
        return True
    try:
        return os.fstat(descriptor).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


@contextmanager
def folder_lock(target: str | Path) -> Iterator[Path]:
    """Hold the lock beside ``target`` (non-blocking); :class:`OutputLockedError` when another writer has it.

    The lock file is removed (while still locked) when the write ends, so no ``.lock`` files pile
    up beside model and audit folders; a writer that locked the removed file sees that it is no
    longer the file at ``.<name>.lock`` and is refused like any concurrent writer.
    """
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=0, thread_local=False)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise OutputLockedError(FOLDER_LOCKED.format(target, path)) from None
    if not _same_file(lock, path):
        lock.release()
        raise OutputLockedError(FOLDER_LOCKED.format(target, path))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        lock.release()


@contextmanager
def replacing_folder(
    target: str | Path,
    *,
    overwrite: bool,
    is_ours: Callable[[Path], bool],
    kind: str,
    replaced: Iterable[str] = (),
) -> Iterator[Path]:
    """Write the folder ``target`` atomically: yields a temporary sibling folder to fill.

    Under the lock of :func:`folder_lock`, checks ``target`` (:func:`check_folder_target`),
    yields an empty temporary folder beside it, and on a normal exit moves it into place: files
    of an existing ``target`` that the writer did not write and that are not named in
    ``replaced`` (e.g. an ``audit.pdf`` beside the tables) are copied into it first, then the old
    folder is swapped out and deleted. On any exception (Ctrl-C included) the temporary folder is
    deleted and ``target`` is left as it was.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out"
    >>> with replacing_folder(target, overwrite=False, is_ours=lambda p: True, kind="audit folder") as tmp:
    ...     _ = (tmp / "a.csv").write_text("1")
    >>> sorted(p.name for p in target.iterdir())
    ['a.csv']
    """
    target = Path(target)
    with folder_lock(target):
        check_folder_target(target, overwrite=overwrite, is_ours=is_ours, kind=kind)
        token, place = uuid.uuid4().hex[:8], _placed(target)
        temporary = place.with_name(f".{place.name}.tmp-{token}")
        temporary.mkdir()
        try:
            yield temporary
            _swap_in(temporary, place, set(replaced), token)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise


def _swap_in(temporary: Path, target: Path, replaced: set[str], token: str) -> None:
    if not target.exists():
        os.rename(temporary, target)
        return
    if not any(target.iterdir()):  # an empty folder (perhaps a shell's working folder): fill it, keep its inode
        for entry in temporary.iterdir():
            os.rename(entry, target / entry.name)
        temporary.rmdir()
        return
    for entry in target.iterdir():  # keep what the writer does not own (a PDF, a run configuration)
        if entry.name in replaced or (temporary / entry.name).exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, temporary / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, temporary / entry.name, follow_symlinks=False)
    old = target.with_name(f".{target.name}.old-{token}")
    os.rename(target, old)
    try:
        os.rename(temporary, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
