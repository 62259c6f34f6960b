"""Session state, cached loaders and small drawing helpers shared by every page.

Only glue lives here: reading the session, calling ``fairaudit`` through Streamlit's caches
and showing errors as messages. Everything computed comes from ``fairaudit``.

Caching rules: datasets and splits go through ``st.cache_data`` keyed by content (file paths
inside the session's private folder, fingerprints, configs); fitted models through
``st.cache_resource`` keyed by folder and weights checksum; audits are computed by jobs in a worker
process into folders keyed by content, read once through ``st.cache_resource``. Unhashable
arguments carry a leading underscore and are always accompanied by a hashable key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import pandas as pd
import streamlit as st

from fairaudit.audit import AuditConfig, AuditResult, default_attributes
from fairaudit.data import DataError, Dataset, Split
# MIN_GROUP_SIZE is re-exported for the pages (S.MIN_GROUP_SIZE).
from fairaudit.metrics import MIN_GROUP_SIZE  # noqa: F401
from fairaudit.report import Findings, audit_findings, safe_csv
from fairaudit.service import DataSource
from fairaudit.workspace import (
    Job,
    JobKind,
    Workspace,
    audit_cache_key,
    cached_audit_dir,
    find_job,
    list_jobs,
    new_session_id,
    physical_cores,
    start_job,
)

if TYPE_CHECKING:  # the Audit page reads audits; torch loads only where a page needs a model
    from fairaudit.models import Recommender

SAMPLE_LABEL = "Sample data (bundled)"
K_CHOICES = (5, 10, 20)
DEFAULT_K = 10
#: Bootstrap rounds of dashboard audits (the CLI uses 1000); changeable on the Audit page.
DEFAULT_ROUNDS = 200
#: Split used for training and auditing in the dashboard (same as the CLI defaults).
SPLIT_METHOD, SPLIT_SEED = "random", 0
#: Errors from bad input that pages show as messages; anything else is a bug and surfaces.
USER_ERRORS = (DataError, ValueError, KeyError, FileNotFoundError)  # ModelFolderError is a ValueError

NO_MODEL_HINT = "No model yet for this dataset: train one (or load a saved folder) on the **Model** page."
NO_ATTRIBUTES = (
    "This dataset has no user attributes (its users table has only user_id), so there are no groups to "
    "audit by. Upload a users table with columns such as gender, age or zip on the **Data** page."
)


#: Every ASCII punctuation character: each may start markdown, HTML, a link, LaTeX (``$``) or a
#: Streamlit directive (``:red[...]``, ``:emoji:``); a backslash before it makes it literal.
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def md(text: object) -> str:
    r"""``text`` (a group, attribute, model or file name, an error message) escaped to show literally in markdown.

    Use it for every data-derived string put into ``st.markdown``, ``st.caption``, ``st.error``,
    ``st.warning``, ``st.info``, ``st.success``, ``st.subheader`` or a widget label: each ASCII
    punctuation character gets a backslash (so no link, image, emphasis, heading, list, HTML tag,
    LaTeX or ``:colour[...]`` directive can form, and bare URLs are not linked), and line breaks
    become hard breaks so multi-line messages keep their lines.

    >>> md("[click](http://evil.example)")
    '\\[click\\]\\(http\\:\\/\\/evil\\.example\\)'
    >>> md("a\nb")
    'a  \nb'
    """
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", str(text))
    return "  \n".join(escaped.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


#: URL query parameter holding the session id, so a reload of the page keeps the session's uploads and jobs.
SESSION_PARAM = "session"


def init_state() -> None:
    """Create this browser session's state once: its private id (kept in the URL, so a reload finds the
    same uploads and jobs again) and its datasets/models."""
    ss = st.session_state
    if "session_id" not in ss:
        from_url = st.query_params.get(SESSION_PARAM, "")
        try:
            workspace().session_dir(from_url)
            ss["session_id"] = from_url
        except ValueError:
            ss["session_id"] = new_session_id()
        workspace().prune_sessions()  # a new browser session clears those long gone
        restored = {label: DataSource.from_dict(record)
                    for label, record in workspace().load_datasets(ss["session_id"]).items()}  # fmt: skip
        # label -> DataSource: the sample, uploaded tables ("files") or an unpacked zip/MovieLens files ("folder")
        ss["datasets"] = {SAMPLE_LABEL: DataSource(), **restored}
    if st.query_params.get(SESSION_PARAM) != ss["session_id"]:  # page switches drop query parameters
        st.query_params[SESSION_PARAM] = ss["session_id"]
    # model folders the analyst loaded by path this session (trained ones are found in the workspace)
    ss.setdefault("loaded_models", [])
    # label -> model folder (in this session's private folder) of lists imported from other systems
    ss.setdefault("imported_models", {})
    ss.setdefault("intersections", [])
    ss.setdefault("audit_rounds", DEFAULT_ROUNDS)


def workspace() -> Workspace:
    return Workspace.from_env()


def remember_datasets() -> None:
    """Save the session's uploaded datasets in its folder, so a page reload restores them."""
    datasets = {label: source.to_dict() for label, source in st.session_state["datasets"].items()
                if label != SAMPLE_LABEL}  # fmt: skip
    workspace().save_datasets(st.session_state["session_id"], datasets)


def session_jobs(kind: str | None = "train") -> list[Job]:
    """This session's jobs of ``kind`` (``None``: every kind), newest first (kept in the workspace: they survive
    reloads)."""
    jobs = list_jobs(workspace().root, session=st.session_state["session_id"])
    return [job for job in jobs if kind is None or job.spec.get("job", "train") == kind]


def content_hash(content: bytes) -> str:
    """Short content hash put into saved upload names, so a re-upload never hits a stale cache."""
    return hashlib.sha256(content).hexdigest()[:10]


def _keep(key: str) -> None:
    st.session_state[key] = st.session_state[f"_w_{key}"]


def bound(widget: Any, label: str, key: str, *args: Any, **kwargs: Any) -> Any:
    """Draw ``widget`` whose value lives in ``st.session_state[key]``, not in the widget itself.

    Widget state is dropped when a widget is not drawn in a run (e.g. after a page switch, since
    the sidebar is drawn by each page); the plain ``key`` survives, so selections carry over.
    """
    st.session_state[f"_w_{key}"] = st.session_state[key]
    return widget(label, *args, key=f"_w_{key}", on_change=_keep, args=(key,), **kwargs)


def sidebar() -> None:
    """The shared selections; pages read them from ``st.session_state`` by key
    (``dataset``, ``model``, ``attributes``, ``k``)."""
    ss = st.session_state
    with st.sidebar:
        st.markdown("### FairAudit")
        labels = list(ss["datasets"])
        if "select_dataset" in ss:  # set by the Data page after a successful upload
            ss["dataset"] = ss.pop("select_dataset")
        if ss.get("dataset") not in labels:
            ss["dataset"] = labels[0]
        bound(st.selectbox, "Dataset", "dataset", labels, help="Add datasets on the Data page.")
        dataset = current_dataset()
        if dataset is None:
            return
        models = list(available_models())
        if ss.get("select_model") in models:  # set by the Model page after training or loading
            ss["model"] = ss.pop("select_model")
        if ss.get("model") not in models:
            ss["model"] = models[0] if models else None
        bound(st.selectbox, "Model", "model", models, placeholder="train one on the Model page",
               help="Models saved in the workspace for this dataset, folders you loaded, and systems "
                    "whose recommendations you imported.")
        choices = attribute_choices(dataset)
        ss["attributes"] = [a for a in ss.get("attributes", choices[:1]) if a in choices] or choices[:1]
        bound(st.multiselect, "User attributes", "attributes", choices,
               help="Groups to audit by. Add intersections (e.g. gender × age band) on the Audit page.")
        ss.setdefault("k", DEFAULT_K)
        bound(st.radio, "K (list length)", "k", list(K_CHOICES), horizontal=True)


def start_page() -> None:
    """First call of every page: session state and the shared sidebar."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    init_state()
    sidebar()


# ---- data ----------------------------------------------------------------------------------
@st.cache_data(show_spinner="Loading and validating the data…", max_entries=8)
def _dataset(source: DataSource) -> Dataset:
    """Keyed by the hashable source (its paths lie in the session's private folder)."""
    return source.load()


@st.cache_data(max_entries=8)
def _fingerprint(source: DataSource) -> str:
    return _dataset(source).fingerprint()


def dataset_from_source(source: DataSource) -> Dataset:
    """Load (cached) the dataset a session entry describes; raises ``DataError`` on bad input."""
    return _dataset(source)


def current_source() -> DataSource:
    label = st.session_state.get("dataset", SAMPLE_LABEL)
    return st.session_state["datasets"].get(label, DataSource())


def current_dataset() -> Dataset | None:
    """The dataset chosen in the sidebar, or ``None`` after showing why it cannot load."""
    label = st.session_state.get("dataset", SAMPLE_LABEL)
    try:
        return dataset_from_source(current_source())
    except USER_ERRORS as err:
        st.error(f"Could not load **{md(label)}**:\n\n{md(err)}\n\nFix the file and upload it again on the **Data** page.")
    return None


def current_fingerprint() -> str:
    """Fingerprint of the sidebar's dataset, hashed once per dataset (not on every rerun)."""
    return _fingerprint(current_source())


@st.cache_data(show_spinner="Splitting train/test…", max_entries=8)
def _split(_dataset: Dataset, fingerprint: str, method: str, seed: int) -> Split:
    from fairaudit.data import make_split

    return make_split(_dataset, method, seed=seed)


def split_for(dataset: Dataset) -> Split:
    """The dashboard's deterministic train/test split of the sidebar's dataset (cached by fingerprint)."""
    return _split(dataset, current_fingerprint(), SPLIT_METHOD, SPLIT_SEED)


# ---- models --------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Loading the model…", max_entries=16)
def _model(path: str, weights_sha: str, data_fp: str, _dataset: Dataset) -> Recommender:
    from fairaudit.models import load_model  # torch: only where a page needs the model itself

    return load_model(path, _dataset)


def model_config(path: str | Path) -> dict:
    """A saved model folder's ``config.json`` (kind, settings, split, DP record ...) without loading the model;
    ``{}`` when unreadable."""
    try:
        return json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def weights_checksum(path: str | Path) -> str:
    """Checksums recorded in the folder's ``config.json``, weights and config (the cache key of a loaded model)."""
    config = model_config(path)
    return f"{config.get('weights_sha256', '')}-{config.get('config_sha256', '')}"


def model_at(path: str | Path, dataset: Dataset) -> Recommender:
    """A fitted model loaded once per folder content and dataset; raises ``ModelFolderError``."""
    return _model(str(path), weights_checksum(path), current_fingerprint(), dataset)


def available_models() -> dict[str, str]:
    """Label -> folder of every model usable with the sidebar's dataset: saved in the workspace or loaded."""
    found: dict[str, str] = {m.label: str(m.path) for m in workspace().saved_models(current_fingerprint())}
    for path in st.session_state.get("loaded_models", []):
        if model_config(path).get("data_fingerprint") == current_fingerprint():
            found.setdefault(loaded_label(path), path)
    for label, path in st.session_state.get("imported_models", {}).items():
        if model_config(path).get("data_fingerprint") == current_fingerprint():
            found.setdefault(label, path)
    return found


def split_fingerprint(path: str | Path) -> str | None:
    """Fingerprint of the split the model in ``path`` was trained (or imported) on, from its config."""
    return (model_config(path).get("split") or {}).get("fingerprint")


def imported_label(system: str) -> str:
    """Sidebar label of a system whose recommendation lists were imported (Model page)."""
    return f"imported-{system}"


def loaded_label(path: str | Path) -> str:
    """Sidebar label of a folder loaded by path."""
    return f"loaded-{Path(path).name}"


def model_label(path: str | Path) -> str:
    """Sidebar label of a model folder in the workspace (its ``SavedModel.label``)."""
    wanted = Path(path).resolve()
    for model in workspace().saved_models(model_config(path).get("data_fingerprint")):
        if model.path.resolve() == wanted:
            return model.label
    return loaded_label(path)


def require_model() -> tuple[Dataset, str, Recommender]:
    """The sidebar's dataset and (label, model); stops the page after saying what is missing."""
    dataset = current_dataset()
    chosen = selected_model(dataset) if dataset is not None else None
    if chosen is None:
        st.stop()
    return dataset, *chosen


def require_model_folder() -> tuple[Dataset, str, str]:
    """The sidebar's dataset, model label and model folder, without loading the model (pages whose work runs
    in a job); stops the page after saying what is missing."""
    dataset = current_dataset()
    if dataset is None:
        st.stop()
    folders, label = available_models(), st.session_state.get("model")
    if label not in folders:
        st.info(NO_MODEL_HINT)
        st.stop()
    return dataset, label, folders[label]


def require_model_label() -> tuple[Dataset, str]:
    """The sidebar's dataset and model label (see :func:`require_model_folder`)."""
    dataset, label, _ = require_model_folder()
    return dataset, label


def selected_model(dataset: Dataset) -> tuple[str, Recommender] | None:
    """(label, model) chosen in the sidebar; ``None`` after saying what to do."""
    models = available_models()
    label = st.session_state.get("model")
    if not models or label not in models:
        st.info(NO_MODEL_HINT)
        return None
    try:
        return label, model_at(models[label], dataset)
    except USER_ERRORS as err:
        st.error(f"Could not load model **{md(label)}**:\n\n{md(err)}")
        return None


# ---- small drawing helpers -----------------------------------------------------------------
@contextmanager
def user_errors(what: str) -> Iterator[None]:
    """Show expected failures (bad data, refused folders, bad options) as an error message."""
    try:
        yield
    except USER_ERRORS as err:
        st.error(f"{what} failed:\n\n{md(err)}")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV download of ``frame`` through fairaudit's formula-injection-safe writer."""
    return safe_csv(frame)


def chart(fig: Any, frame: pd.DataFrame, name: str, *, key: str) -> None:
    """Draw a plotly figure with its data as a safe CSV download (PNG via the chart's camera icon)."""
    st.plotly_chart(fig, key=f"fig_{key}", config={"toImageButtonOptions": {"format": "png", "filename": name}})
    st.download_button(
        f"Data as CSV ({name}.csv)", csv_bytes(frame), file_name=f"{name}.csv", mime="text/csv", key=f"csv_{key}"
    )


def attribute_choices(dataset: Dataset) -> list[str]:
    """Sidebar options: the audit's default attributes, then the intersections the analyst added."""
    plain = list(default_attributes(dataset))
    extra = [i for i in st.session_state.get("intersections", []) if i not in plain]
    return plain + extra


def selected_attributes(dataset: Dataset) -> list[str]:
    """The sidebar's attributes; stops the page with an explanation when the data has none."""
    choices = attribute_choices(dataset)
    if not choices:
        st.info(NO_ATTRIBUTES)
        st.stop()
    return [a for a in st.session_state.get("attributes", []) if a in choices] or choices[:1]


def selected_k() -> int:
    return int(st.session_state.get("k", DEFAULT_K))


# ---- jobs (audits, sweeps, PDFs: in a worker process) ----------------------------------------
#: Seconds between two looks at a running job's progress.
POLL_S = 1.0


def follow_job(job: Job, what: str, *, stop: bool = True) -> None:
    """Draw ``job``'s progress (phase, n/N, time left) with a Cancel button, polling until it ends; then the
    page runs again to show the result. ``stop``: stop the page meanwhile (nothing below needs the result)."""

    def progress() -> None:
        state = job.state()
        if state.get("status", "running") != "running":
            st.rerun()
        total = state.get("total") or 0
        fraction = min(state.get("done", 0) / total, 1.0) if total else 0.0
        st.progress(fraction, text=f"{what}: {job.describe()}")
        st.caption(f"Running in a worker process for {job.elapsed_s:.0f} s; the other pages stay usable meanwhile, and "
                   "a reload of this page finds the job again.")
        # A callback, not ``if st.button``: it runs in whatever rerun picks the click up, also a full-page rerun
        # in which the job has ended and this button is no longer drawn; the fragment's next run (at once after
        # a callback) sees the job ended and reruns the page.
        st.button(f"Cancel the {what.lower()}", key=f"cancel_{job.id}", on_click=job.cancel)

    st.fragment(run_every=POLL_S)(progress)()
    if stop:
        st.stop()


def unfinished(job: Job | None, what: str, *, say_failure: bool = True) -> bool:
    """Whether ``job`` ended without success (cancelled or failed), after saying so (``say_failure=False``
    leaves a failure's message to the caller)."""
    if job is None or job.status not in ("cancelled", "failed"):
        return False
    if job.status == "cancelled":
        st.warning(f"The {what.lower()} was stopped: {md(job.error)}.")
    elif say_failure:
        st.error(f"The {what.lower()} failed: {md(job.error)}")
    return True


BAD_STRENGTHS = "Strengths must be numbers separated by commas, e.g. {0}; got '{1}'."


def strengths_from_text(text: str, default: str) -> list[float] | None:
    """The comma-separated strengths typed in a box, sorted without repeats; ``None`` after saying what is wrong."""
    try:
        return sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        st.error(md(BAD_STRENGTHS.format(default, text)))
        return None


def job_result(kind: JobKind, spec: Mapping[str, Any], *, what: str, label: str, start: bool,
               out: Path | None = None) -> Path | None:  # fmt: skip
    """The result folder of the job ``kind`` (an analysis or a sweep) for ``spec`` on the sidebar's data, or ``None``.

    ``start`` (a button was pressed) starts the job in the worker process; while it runs, its progress and
    Cancel are drawn and ``None`` comes back (the page goes on below). ``None`` also when it has not run yet,
    or ended without success (after saying why). Results are shared by sessions: one folder per kind, data,
    and ``spec``, whose ``model`` (a saved folder) is named by its weights checksum too (``out``, when given,
    is that folder, e.g. a sweep's); the runner writes the folder atomically, so one that exists is complete.
    """
    if out is None:
        identity = {**spec, "weights": weights_checksum(spec["model"])} if "model" in spec else dict(spec)
        out = workspace().result_dir(kind, current_fingerprint(), identity)
    root = workspace().root
    job = find_job(root, out.name)
    if start:
        job = start_job(root, kind, {"data": current_source().to_dict(), **spec}, out_dir=out,
                        session=st.session_state["session_id"], label=label, key=out.name,
                        threads=int(st.session_state.get("train_threads", physical_cores())))  # fmt: skip
    if job is not None and job.status == "running":
        follow_job(job, what, stop=False)
        return None
    if unfinished(job, what):
        return None
    return out if out.is_dir() else None


# ---- audits --------------------------------------------------------------------------------
@st.cache_resource(max_entries=16)
def _read_audit(folder: str) -> AuditResult:
    """An audit folder, read once per server (an audit folder is never changed once written; no copy per run)."""
    return AuditResult.read(folder)


def audit_config_json(dataset: Dataset) -> dict:
    """:func:`audit_config` as the JSON a worker reads back (sorted keys, tuples as lists): a job's spec and key."""
    return json.loads(json.dumps(audit_config(dataset).to_dict(), sort_keys=True))


def audit_config(dataset: Dataset) -> AuditConfig:
    """The audit the dashboard runs: every sidebar attribute choice, so a slice change only filters.

    The recorded data source leaves out the upload paths (the session's private folder), so the
    same data and models give the same audit, and the same cache entry, in every session.
    """
    return AuditConfig(
        k=selected_k(),
        attributes=tuple(attribute_choices(dataset)),
        bootstrap_rounds=int(st.session_state["audit_rounds"]),
        data=replace(current_source(), name=dataset.name).to_dict(paths=False),
    )


def audit_folder(dataset: Dataset, labels: list[str], *, stop: bool = True) -> Path | None:
    """The folder of the audit of the models with sidebar ``labels``, computed by a job in a worker process.

    The audit is keyed by data fingerprint, model folders + checksums and the full config (never by
    session) and kept on disk (``audit_cache/`` of the workspace, or the sample's ready audits), so every
    session and a restarted server find it at once. Otherwise an audit job (``fairaudit.service.audit_models``
    in the worker) is started, or joined when another session runs the same one, and its progress drawn
    with Cancel; the page stops until it ends (``stop=False``: ``None`` is returned instead). Raises
    ``ValueError`` when the job failed (e.g. models trained on different splits).
    """
    folders = available_models()
    models = [(label, folders[label]) for label in labels]
    config = audit_config_json(dataset)
    key = audit_cache_key(current_fingerprint(), [(label, weights_checksum(path)) for label, path in models], config)
    folder = cached_audit_dir(workspace(), key)
    if folder is not None:
        return folder
    root = workspace().root
    job = find_job(root, key)
    again = unfinished(job, "Audit", say_failure=False) and st.button("Run the audit again", key=f"again_{key}")
    if job is None or again or (job.status == "done" and cached_audit_dir(workspace(), key) is None):
        job = start_job(root, "audit", {"data": current_source().to_dict(), "models": models, "config": config},
                        out_dir=root / "audit_cache" / key, session=st.session_state["session_id"],
                        label=f"audit of {', '.join(labels)}", key=key, threads=1)  # fmt: skip
    folder = cached_audit_dir(workspace(), key)
    if folder is not None:
        return folder
    if job.status == "running":
        follow_job(job, "Audit", stop=stop)
    elif job.status == "failed":
        raise ValueError(job.error)
    elif stop:
        st.stop()  # cancelled: said above, with the button to run it again
    return None


def audit_models(dataset: Dataset, labels: list[str], *, stop: bool = True) -> AuditResult | None:
    """The audit of the models with sidebar ``labels`` (see :func:`audit_folder`), read once per server."""
    folder = audit_folder(dataset, labels, stop=stop)
    return None if folder is None else read_audit(folder)


def read_audit(folder: str | Path) -> AuditResult:
    """The audit folder ``folder``, read once per server (no copy per run: results are never modified in place)."""
    return _read_audit(str(folder))


@st.cache_resource(show_spinner="Ranking the findings…", max_entries=16)
def _findings(audit_id: str, _result: AuditResult) -> Findings:
    return audit_findings(_result)


def findings(result: AuditResult) -> Findings:
    """The audit's ranked findings with the PDF's verdicts (``fairaudit.report.audit_findings``), computed once per
    audit id (the id identifies data, models and configuration)."""
    return _findings(result.meta["audit_id"], result)
