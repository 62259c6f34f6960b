"""The dashboard's folders on disk: saved models, sweeps, and per-session uploads and audits.

Layout under the workspace root (``$FAIRAUDIT_WORKSPACE``, default ``./workspace``)::

    models/<kind>-<data fingerprint>-<params hash>/   saved models, shared, survive restarts
    sweeps/<mitigation>-<data fingerprint>-<hash>/    mitigation sweeps (their point models)
    results/<job kind>-<data fingerprint>-<hash>/     analysis jobs' results (simulations, probes ...)
    audit_cache/<key>/                                computed audits, shared, reused by the same code
    jobs/<job id>/                                    jobs and their progress (docs/dashboard_jobs.md)
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from functools import lru_cache
from typing import Any, Mapping, Sequence

from fairaudit.data import replacing_folder
from fairaudit.data._synth import SAMPLE_DIR
from fairaudit.workspace._catalogue import model_name, settings_name
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
#: Ready models of the bundled sample (safetensors + JSON config), listed for the sample's data.
SAMPLE_MODELS_DIR = SAMPLE_DIR / "models"
#: File in a model folder with what the dashboard knows beyond ``config.json`` (data name, settings,
#: fit time); ``load_model`` ignores it.
MODEL_INFO = "dashboard.json"


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


def write_model_info(folder: str | Path, info: Mapping[str, Any]) -> None:
    """Record what the dashboard knows about a saved model (``dashboard.json``: data name, settings,
    fit seconds, training time) next to its ``config.json``."""
    _write_text(Path(folder) / MODEL_INFO, json.dumps(dict(info), default=str, sort_keys=True))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _settings(kind: str, params: Mapping[str, Any]) -> str:
    try:
        return settings_name(kind, params)
    except (TypeError, ValueError, KeyError):  # a kind that needs more to build (a re-ranker's base)
        return "custom"


@dataclass(frozen=True)
class SavedModel:
    """A model folder found in the workspace, described from its ``config.json`` and ``dashboard.json``."""

    path: Path
    kind: str
    params: dict
    data_fingerprint: str
    saved_at: float
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Readable name shown in the dashboard and used as the model name in audits: kind and settings
        (a preset's name or the changed parameters), data, and training time (``bundled`` for the sample's).

        >>> SavedModel(Path("models/mf-3f2a9c-1b2c3d4e"), "mf", {}, "3f2a9c", 0.0, {"data_name": "plays.csv",
        ...            "trained_at": 0.0}).label.startswith("mf-standard · plays.csv · ")
        True
        >>> SavedModel(Path("x"), "popularity", {}, "f", 0.0, {"data_name": "sample_data", "bundled": True}).label
        'popularity-standard · sample_data · bundled'
        """
        settings = str(self.info.get("settings") or _settings(self.kind, self.params))
        name = model_name(self.kind, settings, str(self.info.get("data_name", "")),
                          None if self.info.get("bundled") else float(self.info.get("trained_at", self.saved_at)))
        return f"{name} · bundled" if self.info.get("bundled") else name


@dataclass(frozen=True)
class Workspace:
    """Folders of one dashboard installation.

    >>> ws = Workspace(Path("/tmp/ws"))
    >>> ws.models_dir.as_posix()
    '/tmp/ws/models'
    """

    root: Path
    session_days: float = DEFAULT_SESSION_DAYS
    #: Read-only folders of ready models listed with the workspace's own (the sample's).
    bundled: tuple[Path, ...] = ()

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
        return cls(Path(environ.get(ENV_VAR) or DEFAULT_ROOT).resolve(), days, (SAMPLE_MODELS_DIR,))

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

    def result_dir(self, kind: str, data_fingerprint: str, params: Mapping[str, Any]) -> Path:
        """Folder of one analysis job's result (a simulation, a probe ...), shared by sessions like sweeps:
        one per kind, data and ``params`` (which name the model by its folder and weights checksum).

        >>> Workspace(Path("/w")).result_dir("simulate", "abc", {"rounds": 5}).parent.as_posix()
        '/w/results'
        """
        return self.root / "results" / f"{safe_filename(kind)}-{safe_filename(data_fingerprint)}-{params_hash(params)}"

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
        configs = [*self.models_dir.glob("*/config.json"), *(p for b in self.bundled for p in b.glob("*/config.json"))]
        for config_path in configs:
            if config_path.parent.name.startswith("."):  # a folder being written (.<name>.tmp-*) or swapped out
                continue
            try:
                config = json.loads(config_path.read_text())
            except (OSError, ValueError):
                continue
            if data_fingerprint is not None and config.get("data_fingerprint") != data_fingerprint:
                continue
            try:
                info = json.loads((config_path.parent / MODEL_INFO).read_text())
            except (OSError, ValueError):
                info = {}
            info = info if isinstance(info, dict) else {}
            found.append(
                SavedModel(
                    path=config_path.parent,
                    kind=str(config.get("kind", "?")),
                    params=dict(config.get("params", {})),
                    data_fingerprint=str(config.get("data_fingerprint", "")),
                    saved_at=0.0 if info.get("bundled") else config_path.stat().st_mtime,
                    info=info,
                )
            )
        found.sort(key=lambda m: (m.saved_at, m.kind == "llm"), reverse=True)  # among the bundled: the LLM first
        labels = [m.label for m in found]
        return [  # a label shared by two folders gets the folder's name, so every label is unique
            replace(m, info={**m.info, "settings": f"{m.info.get('settings') or _settings(m.kind, m.params)}"
                                                  f"-{m.path.name.rsplit('-', 1)[-1]}"})
            if labels.count(m.label) > 1 else m
            for m in found
        ]

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

    def save_movielens(self, session_id: str, files: Mapping[str, bytes]) -> Path:
        """Write raw MovieLens files (``u.data``, ``u.user``, ``u.item`` ...) into a fresh session folder
        that loads like the unpacked release; returns the folder."""
        digest = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()[:10]
        target = self.session_dir(session_id) / "uploads" / f"movielens-{digest}"
        target.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (target / safe_filename(name)).write_bytes(content)
        return target

    def save_datasets(self, session_id: str, datasets: Mapping[str, Mapping[str, Any]]) -> None:
        """Remember the session's uploaded datasets (label -> ``DataSource.to_dict()``), so a reload of
        the page, which starts a new browser session on the same session id, lists them again."""
        folder = self.session_dir(session_id)
        folder.mkdir(parents=True, exist_ok=True)
        _write_text(folder / "datasets.json", json.dumps({k: dict(v) for k, v in datasets.items()}, sort_keys=True))

    def load_datasets(self, session_id: str) -> dict[str, dict]:
        """The datasets :meth:`save_datasets` remembered whose files are still in the session's folder.

        >>> import tempfile
        >>> ws, sid = Workspace(Path(tempfile.mkdtemp())), new_session_id()
        >>> path = ws.save_upload(sid, "plays.csv", b"user_id,item_id\\n1,2\\n")
        >>> ws.save_datasets(sid, {"upload · plays.csv": {"source": "files", "files": {"interactions": str(path)}},
        ...                        "gone": {"source": "folder", "path": "/etc"}})
        >>> list(ws.load_datasets(sid))
        ['upload · plays.csv']
        """
        folder = self.session_dir(session_id)
        try:
            records = json.loads((folder / "datasets.json").read_text())
        except (OSError, ValueError):
            return {}
        kept = {}
        for label, record in (records.items() if isinstance(records, dict) else ()):
            if not isinstance(record, dict):
                continue
            paths = [record.get("path") or "", *dict(record.get("files") or {}).values()]
            paths = [Path(p).resolve() for p in paths if p]
            if paths and all(folder.resolve() in p.parents and p.exists() for p in paths):
                kept[str(label)] = record
        return kept

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


#: The sample's ready models: kind -> preset (the quick LLM already beats popularity on the sample).
SAMPLE_MODELS = {"popularity": "standard", "llm": "quick"}


def write_sample_models(out: str | Path = SAMPLE_MODELS_DIR) -> list[Path]:
    """Train the bundled sample's ready models (:data:`SAMPLE_MODELS`, the dashboard's split) into ``out``.

    The dashboard lists them for the sample, so its first screen has an audit without training.
    Re-run after a change to a model's saved format:
    ``python -c "from fairaudit.workspace import write_sample_models; write_sample_models()"``.
    """
    import torch

    from fairaudit.data import load_sample, make_split
    from fairaudit.models import create_model
    from fairaudit.workspace._catalogue import preset_params

    torch.set_num_threads(1)  # deterministic and friendly to a shared machine
    dataset = load_sample()
    split = make_split(dataset, "random", seed=0)
    written = []
    for kind, preset in SAMPLE_MODELS.items():
        model = create_model(kind, **preset_params(kind, preset))
        start = time.perf_counter()
        model.fit(dataset, split)
        fit_s = time.perf_counter() - start
        folder = Path(out) / f"{kind}-{preset}"
        model.save(folder, overwrite=True)
        write_model_info(folder, {"data_name": dataset.name, "settings": preset, "fit_s": round(fit_s, 2),
                                  "bundled": True})  # fmt: skip
        written.append(folder)
    return written


#: Audits of the bundled sample's ready models, so the first screen needs no computing.
SAMPLE_AUDITS_DIR = SAMPLE_DIR / "audits"
#: Packages whose code decides an audit's numbers; their source is part of every audit-cache key.
_AUDIT_CODE = ("audit", "metrics", "compare.py", "explain", "service.py", "data", "models")


@lru_cache(maxsize=1)
def audit_code_fingerprint() -> str:
    """Hash of the source that computes an audit: a cached audit is only reused by the same code.

    >>> len(audit_code_fingerprint())
    16
    """
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for part in _AUDIT_CODE:
        for path in sorted((package / part).rglob("*.py")) if (package / part).is_dir() else [package / part]:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def audit_cache_key(data_fingerprint: str, models: Sequence[tuple[str, str]], config: Mapping[str, Any]) -> str:
    """Key of one audit: data, models (label, weights checksum), configuration and the auditing code.

    >>> audit_cache_key("d", [("m", "abc")], {"k": 10}) == audit_cache_key("d", [("m", "abc")], {"k": 10})
    True
    """
    text = json.dumps([data_fingerprint, [list(m) for m in models], dict(config), audit_code_fingerprint()],
                      sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_audit_dir(workspace: Workspace, key: str) -> Path | None:
    """The folder of an audit computed before with this key (the workspace's, else the sample's); ``None``."""
    for folder in (workspace.root / "audit_cache" / key, SAMPLE_AUDITS_DIR / key):
        if (folder / "audit.json").is_file():
            return folder
    return None
