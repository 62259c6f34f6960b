"""The dashboard's folders on disk: saved models, sweeps, and per-session uploads and audits.

Layout under the workspace root (``$FAIRAUDIT_WORKSPACE``, default ``./workspace``)::

    models/<kind>-<data fingerprint>-<params hash>/   saved models, shared, survive restarts
    sweeps/<mitigation>-<data fingerprint>-<hash>/    mitigation sweeps (their point models)
    sessions/<session id>/uploads/                    one browser session's uploaded files
    sessions/<session id>/audits/<audit id>/          one browser session's audit folders

A session folder nothing has been written to for ``$FAIRAUDIT_SESSION_DAYS`` days (default 7;
0 keeps them forever) is deleted when a new browser session starts (:meth:`Workspace.prune_sessions`).

Saved models are listed only for the dataset they were trained on (same fingerprint), so an
analyst never sees a model of data they do not hold themselves; uploads and audits live under a
random per-session id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from fairaudit.data import replacing_folder
from fairaudit.workspace._uploads import MAX_UNZIPPED_BYTES, unpack_zip

ENV_VAR = "FAIRAUDIT_WORKSPACE"
DEFAULT_ROOT = "workspace"
SESSION_DAYS_VAR = "FAIRAUDIT_SESSION_DAYS"
#: Days after its last write that a browser session's folder is deleted; 0 keeps them forever.
DEFAULT_SESSION_DAYS = 7.0

BAD_SESSION_DAYS = "{0} must be a number of days >= 0 (0 keeps session folders forever), got '{1}'"
BAD_SESSION_ID = "session id '{0}' is not a 32-digit hex string; create one with new_session_id()"
NOT_A_MODEL_FOLDER = (
    "'{0}' has no readable config.json; pick a model folder written by FairAudit "
    "(e.g. a sweep's models/<mitigation>@<strength>/)"
)

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
        if not (target / "config.json").is_file():  # the workspace's own folder: a partial copy is replaced
            with replacing_folder(target, overwrite=True, is_ours=lambda _: True, kind="model folder") as temporary:
                shutil.copytree(folder, temporary, dirs_exist_ok=True, symlinks=True)
        return target

    def saved_models(self, data_fingerprint: str | None = None) -> list[SavedModel]:
        """Saved models, newest first; only those trained on ``data_fingerprint`` when given.

        Folders without a readable ``config.json`` are skipped (``load_model`` explains them).
        """
        found = []
        for config_path in self.models_dir.glob("*/config.json"):
            if config_path.parent.name.startswith("."):  # a folder being written (.<name>.tmp-*) or swapped out
                continue
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

        Refuses (with a ``ValueError`` naming the archive, leaving no folder behind) unsafe member
        paths, links, encryption, unknown compression, damaged members, too many members and archives
        that unpack beyond ``max_bytes`` (:func:`~fairaudit.workspace.unpack_zip`). When the archive holds a single top folder
        (``ml-100k/u.data``), that folder is returned.
        """
        target = self.session_dir(session_id) / "uploads" / f"zip-{uuid.uuid4().hex[:8]}"
        return unpack_zip(name, content, target, max_bytes=max_bytes)

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
