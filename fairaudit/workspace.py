"""The dashboard's folders on disk, and model training in a background thread.

Layout under the workspace root (``$FAIRAUDIT_WORKSPACE``, default ``./workspace``)::

    models/<kind>-<data fingerprint>-<params hash>/   saved models, shared, survive restarts
    sessions/<session id>/uploads/                    one browser session's uploaded files
    sessions/<session id>/audits/<audit id>/          one browser session's audit folders

A session folder nothing has been written to for ``$FAIRAUDIT_SESSION_DAYS`` days (default 7;
0 keeps them forever) is deleted when a new browser session starts (:meth:`Workspace.prune_sessions`).

Saved models are listed only for the dataset they were trained on (same fingerprint), so an
analyst never sees a model of data they do not hold themselves; uploads and audits live under a
random per-session id. Nothing here imports Streamlit: the pages call it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import pandas as pd

from fairaudit.data import Dataset, Split
from fairaudit.models import Progress, Recommender, TrainingCancelled

ENV_VAR = "FAIRAUDIT_WORKSPACE"
DEFAULT_ROOT = "workspace"
SESSION_DAYS_VAR = "FAIRAUDIT_SESSION_DAYS"
#: Days after its last write that a browser session's folder is deleted; 0 keeps them forever.
DEFAULT_SESSION_DAYS = 7.0
#: Largest total size of the files inside an uploaded zip, in bytes.
MAX_UNZIPPED_BYTES = 500 * 1024**2

BAD_SESSION_DAYS = "{0} must be a number of days >= 0 (0 keeps session folders forever), got '{1}'"
BAD_SESSION_ID = "session id '{0}' is not a 32-digit hex string; create one with new_session_id()"
ZIP_UNREADABLE = "'{0}' is not a readable zip archive ({1}); upload a .zip of a MovieLens or CSV/Parquet folder"
ZIP_UNSAFE_PATH = (
    "'{0}' contains the unsafe path '{1}' (absolute or with '..'); re-create the zip from the folder itself"
)
ZIP_TOO_LARGE = "'{0}' unpacks to {1:,} bytes, over the limit of {2:,}; upload a smaller dataset"
TRAINING_CANCELLED = "training cancelled at epoch {0} of {1}"
NOT_A_MODEL_FOLDER = (
    "'{0}' has no readable config.json; pick a model folder written by FairAudit "
    "(e.g. a sweep's models/<mitigation>@<strength>/)"
)

JobStatus = Literal["running", "done", "cancelled", "failed"]
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


def new_session_id() -> str:
    """A random id for one browser session's private folder.

    >>> len(new_session_id())
    32
    """
    return uuid.uuid4().hex


def safe_filename(name: str) -> str:
    """``name`` reduced to its last path part with only ``[A-Za-z0-9._-]`` characters.

    >>> safe_filename("../../etc/pass wd.csv")
    'pass_wd.csv'
    """
    base = re.split(r"[\\/]", str(name))[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return cleaned or "upload"


def params_hash(params: Mapping[str, Any]) -> str:
    """Short stable hash of JSON-ready hyper-parameters (key order does not matter).

    >>> params_hash({"a": 1, "b": 2}) == params_hash({"b": 2, "a": 1})
    True
    """
    text = json.dumps(dict(params), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class SavedModel:
    """A model folder found in the workspace, described from its ``config.json`` alone."""

    path: Path
    kind: str
    params: dict
    data_fingerprint: str
    saved_at: float

    @property
    def label(self) -> str:
        """Short name shown in the dashboard and used as the model name in audits.

        >>> SavedModel(Path("models/mf-3f2a9c-1b2c3d4e"), "mf", {}, "3f2a9c", 0.0).label
        'mf-1b2c3d4e'
        """
        return f"{self.kind}-{self.path.name.rsplit('-', 1)[-1]}"


@dataclass(frozen=True)
class Workspace:
    """Folders of one dashboard installation.

    >>> ws = Workspace(Path("/tmp/ws"))
    >>> ws.models_dir.as_posix()
    '/tmp/ws/models'
    """

    root: Path
    session_days: float = DEFAULT_SESSION_DAYS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Workspace":
        """Root from ``$FAIRAUDIT_WORKSPACE`` (else ``./workspace``), session lifetime from ``$FAIRAUDIT_SESSION_DAYS``.

        >>> ws = Workspace.from_env({"FAIRAUDIT_WORKSPACE": "/srv/fa", "FAIRAUDIT_SESSION_DAYS": "30"})
        >>> ws.root.as_posix(), ws.session_days
        ('/srv/fa', 30.0)
        """
        environ = os.environ if environ is None else environ
        text = environ.get(SESSION_DAYS_VAR) or str(DEFAULT_SESSION_DAYS)
        try:
            days = float(text)
        except ValueError:
            days = float("nan")
        if not days >= 0:
            raise ValueError(BAD_SESSION_DAYS.format(SESSION_DAYS_VAR, text))
        return cls(Path(environ.get(ENV_VAR) or DEFAULT_ROOT).resolve(), days)

    def prune_sessions(self, *, now: float | None = None) -> list[Path]:
        """Delete the session folders nothing was written to for ``session_days`` days; returns them.

        A folder's age counts from its newest file or sub-folder, so a session that uploads or
        audits now and then is kept. Only folders named like a session id are ever touched.
        """
        sessions = self.root / "sessions"
        if self.session_days == 0 or not sessions.is_dir():
            return []
        cutoff = (time.time() if now is None else now) - self.session_days * 86_400
        pruned = []
        for folder in sessions.iterdir():
            if not (folder.is_dir() and _SESSION_ID.match(folder.name)):
                continue
            if _last_write(folder) < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                pruned.append(folder)
        return pruned

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def session_dir(self, session_id: str) -> Path:
        """Private folder of one browser session; ``session_id`` must come from ``new_session_id``."""
        if not _SESSION_ID.match(session_id):
            raise ValueError(BAD_SESSION_ID.format(session_id))
        return self.root / "sessions" / session_id

    def model_dir(self, kind: str, data_fingerprint: str, params: Mapping[str, Any]) -> Path:
        """Folder for a model of ``kind`` with ``params`` trained on data ``data_fingerprint``.

        The name depends only on what determines the weights, so re-training the same
        configuration on the same data reuses the folder, from any session.

        >>> Workspace(Path("/w")).model_dir("mf", "abc", {"factors": 8}).name
        'mf-abc-0e0ec07a'
        """
        return self.models_dir / f"{safe_filename(kind)}-{safe_filename(data_fingerprint)}-{params_hash(params)}"

    def sweep_dir(self, mitigation: str, data_fingerprint: str, params: Mapping[str, Any]) -> Path:
        """Folder of one mitigation sweep (its point models under ``models/``), shared like saved models.

        >>> Workspace(Path("/w")).sweep_dir("rerank_mmr", "abc", {"strengths": [0, 1]}).parent.as_posix()
        '/w/sweeps'
        """
        name = f"{safe_filename(mitigation)}-{safe_filename(data_fingerprint)}-{params_hash(params)}"
        return self.root / "sweeps" / name

    def save_candidate(self, folder: str | Path) -> Path:
        """Copy a saved model folder (e.g. one sweep point) into ``models/`` so the dashboard lists it.

        The target is :meth:`model_dir` of the folder's kind, data fingerprint and parameters, so
        saving the same point twice keeps one copy. Raises ``FileNotFoundError`` with
        :data:`NOT_A_MODEL_FOLDER` when ``folder`` has no readable ``config.json``.

        >>> import tempfile
        >>> src = Path(tempfile.mkdtemp()) / "rerank_mmr@0.5"
        >>> src.mkdir(); _ = (src / "config.json").write_text('{"kind": "rerank_mmr", "data_fingerprint": "f"}')
        >>> ws = Workspace(Path(tempfile.mkdtemp()))
        >>> [m.kind for m in ws.saved_models("f")] == [] and ws.save_candidate(src).parent == ws.models_dir
        True
        >>> [m.kind for m in ws.saved_models("f")]
        ['rerank_mmr']
        """
        folder = Path(folder)
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            raise FileNotFoundError(NOT_A_MODEL_FOLDER.format(folder)) from None
        target = self.model_dir(
            str(config.get("kind", "?")), str(config.get("data_fingerprint", "")), config.get("params", {})
        )
        if not (target / "config.json").is_file():
            shutil.copytree(folder, target, dirs_exist_ok=True)
        return target

    def saved_models(self, data_fingerprint: str | None = None) -> list[SavedModel]:
        """Saved models, newest first; only those trained on ``data_fingerprint`` when given.

        Folders without a readable ``config.json`` are skipped (``load_model`` explains them).
        """
        found = []
        for config_path in self.models_dir.glob("*/config.json"):
            try:
                config = json.loads(config_path.read_text())
            except (OSError, ValueError):
                continue
            if data_fingerprint is not None and config.get("data_fingerprint") != data_fingerprint:
                continue
            found.append(
                SavedModel(
                    path=config_path.parent,
                    kind=str(config.get("kind", "?")),
                    params=dict(config.get("params", {})),
                    data_fingerprint=str(config.get("data_fingerprint", "")),
                    saved_at=config_path.stat().st_mtime,
                )
            )
        return sorted(found, key=lambda m: m.saved_at, reverse=True)

    def save_upload(self, session_id: str, name: str, content: bytes, *, folder: str = "uploads") -> Path:
        """Write an uploaded file into the session's ``folder``; returns its path."""
        target = self.session_dir(session_id) / folder
        target.mkdir(parents=True, exist_ok=True)
        path = target / safe_filename(name)
        path.write_bytes(content)
        return path

    def extract_zip(
        self, session_id: str, name: str, content: bytes, *, max_bytes: int = MAX_UNZIPPED_BYTES
    ) -> Path:
        """Unpack an uploaded zip into a fresh session folder; returns the folder holding its data.

        Refuses absolute or ``..`` member paths and archives that unpack beyond ``max_bytes``.
        When the archive holds a single top folder (``ml-100k/u.data``), that folder is returned.
        """
        try:
            archive = zipfile.ZipFile(io.BytesIO(content))
            members = archive.infolist()
        except (zipfile.BadZipFile, ValueError) as err:
            raise ValueError(ZIP_UNREADABLE.format(name, err)) from None
        for member in members:
            parts = Path(member.filename).parts
            if member.filename.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", member.filename):
                raise ValueError(ZIP_UNSAFE_PATH.format(name, member.filename))
        total = sum(m.file_size for m in members)
        if total > max_bytes:
            raise ValueError(ZIP_TOO_LARGE.format(name, total, max_bytes))
        target = self.session_dir(session_id) / "uploads" / f"zip-{uuid.uuid4().hex[:8]}"
        target.mkdir(parents=True)
        archive.extractall(target)
        entries = [p for p in target.iterdir() if not p.name.startswith(("__MACOSX", "."))]
        return entries[0] if len(entries) == 1 and entries[0].is_dir() else target

    def audit_dir(self, session_id: str, audit_id: str) -> Path:
        """Folder for one of the session's audits."""
        return self.session_dir(session_id) / "audits" / safe_filename(audit_id)


def _last_write(folder: Path) -> float:
    """Newest modification time in ``folder``, itself included; paths deleted meanwhile are skipped."""
    times = []
    for path in (folder, *folder.rglob("*")):
        try:
            times.append(path.stat().st_mtime)
        except FileNotFoundError:
            continue
    return max(times, default=0.0)


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


@dataclass
class TrainingJob:
    """Fit ``model`` in a daemon thread and save it to ``out_dir``, observable and cancellable.

    The thread only writes this object's fields; the page polls them (``status``,
    ``latest``, ``losses``, ``time_left_s``) and calls ``cancel()``, which makes the
    next progress event raise ``TrainingCancelled`` inside ``fit``.

    >>> job = TrainingJob(None, None, None, Path("/tmp/x"))
    >>> job.status
    'running'
    """

    model: Recommender | None
    dataset: Dataset | None
    split: Split | None
    out_dir: Path
    status: JobStatus = "running"
    latest: Progress | None = None
    losses: list[float] = field(default_factory=list)
    error: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> "TrainingJob":
        self._thread = threading.Thread(target=self._run, name=f"fairaudit-train-{self.out_dir.name}", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the training to stop at its next progress event."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until the thread ends (or ``timeout`` seconds); returns the status."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status

    @property
    def elapsed_s(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at

    @property
    def time_left_s(self) -> float | None:
        """Estimate from the mean epoch time so far; ``None`` before the first epoch."""
        p = self.latest
        if self.status != "running" or p is None or p.epoch <= 0:
            return None
        return p.elapsed_s / p.epoch * max(p.n_epochs - p.epoch, 0)

    def _progress(self, event: Progress) -> None:
        self.latest = event
        if event.loss == event.loss:  # not NaN
            self.losses.append(float(event.loss))
        if self._cancel.is_set():
            raise TrainingCancelled(TRAINING_CANCELLED.format(event.epoch, event.n_epochs))

    def _run(self) -> None:
        try:
            if self._cancel.is_set():
                raise TrainingCancelled(TRAINING_CANCELLED.format(0, "?"))
            self.model.fit(self.dataset, self.split, progress=self._progress)
            self.model.save(self.out_dir)
            self.status = "done"
        except TrainingCancelled as err:
            self.error, self.status = str(err), "cancelled"
        except Exception as err:  # reported on the page, which shows it as a message
            self.error, self.status = f"{type(err).__name__}: {err}", "failed"
        finally:
            self.finished_at = time.monotonic()


#: Groups with fewer users than this are marked small on the Data page (the audit's default too).
MIN_GROUP_SIZE = 30


def profile_by_group(dataset: Dataset, attribute: str, *, min_group_size: int = MIN_GROUP_SIZE) -> pd.DataFrame:
    """Per group of a user ``attribute``: users, activity and taste for popular items.

    Shown before anything is trained, because unequal activity and popularity taste are the
    usual hidden drivers of later accuracy gaps. An item's popularity is its number of
    interactions; a user's ``mean_item_popularity`` is the mean over their history.
    Intersections ``"a*b"`` join the values with ``*``.

    Returns
    -------
    DataFrame
        ``group, users, user_share, interactions, interactions_per_user,
        median_interactions_per_user, mean_item_popularity, small`` sorted by ``users`` (desc).

    Examples
    --------
    >>> ds = Dataset(pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]}),
    ...              pd.DataFrame({"user_id": ["a", "b"], "g": ["F", "M"]}), pd.DataFrame({"item_id": ["x", "y"]}))
    >>> table = profile_by_group(ds, "g", min_group_size=1)
    >>> table[["group", "interactions_per_user", "mean_item_popularity"]].values.tolist()
    [['F', 2.0, 1.5], ['M', 1.0, 2.0]]
    """
    users = dataset.users.set_index("user_id")
    groups = users[attribute.split("*")].astype(str).agg("*".join, axis=1)
    inter = dataset.interactions[["user_id", "item_id"]]
    popularity = inter["item_id"].map(inter["item_id"].value_counts())
    per_user = pd.DataFrame(
        {
            "n": inter.groupby("user_id").size(),
            "pop": popularity.groupby(inter["user_id"]).mean(),
        }
    ).reindex(users.index)
    per_user["n"] = per_user["n"].fillna(0)
    per_user["group"] = groups
    table = per_user.groupby("group").agg(
        users=("n", "size"),
        interactions=("n", "sum"),
        interactions_per_user=("n", "mean"),
        median_interactions_per_user=("n", "median"),
        mean_item_popularity=("pop", "mean"),
    )
    table.insert(1, "user_share", table["users"] / table["users"].sum())
    table["interactions"] = table["interactions"].astype("int64")
    table["small"] = table["users"] < min_group_size
    return table.reset_index().sort_values(["users", "group"], ascending=[False, True], ignore_index=True)


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
