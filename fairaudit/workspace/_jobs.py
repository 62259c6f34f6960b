"""Long jobs (training with its text encoding, audits, mitigation sweeps, PDF reports) in a worker
process, so the web server always answers.

A job is a folder ``<workspace>/jobs/<job id>/`` holding ``job.json`` (what to do: written once
by :func:`start_job`), ``state.json`` (how far it got: phase, ``done``/``total`` with rate
and time left, epochs and losses; rewritten atomically by the worker) and ``control.json``
(threads the worker may use now). The worker is ``python -m fairaudit.workspace._worker <folder>``:
it calls the same functions as the CLI (``fairaudit.service.audit_models``, ``fairaudit.sweep.run_sweep``,
``fairaudit.report.build_report``, a recommender's ``fit``) as a library in that process (never a
remote service), with its torch threads bounded and its priority lowered (nice 19 and, on Linux, the
``SCHED_IDLE`` policy), so a 2-core machine keeps serving pages while it works. The worker gets its own
process group (a Ctrl-C meant for the server does not reach it) but stays in the server's session: with
Linux's autogroups (on by default) each session is scheduled as one group and nice only ranks processes
within a group, so a worker in a session of its own (``setsid``) would take an equal share of the CPU
against the server whatever its nice value.
Cancelling terminates the worker in any phase. The folder outlives the page that started it, so a
reload lists the same jobs, and a job's ``key`` (e.g. the audit's cache key) lets any session find
a job already running for the same work instead of starting a second one.

With ``FAIRAUDIT_INLINE_JOBS`` listing job kinds (e.g. ``audit,sweep,report``; the test suite's
AppTest runs set it), jobs of those kinds run to the end inside the calling process, through the
same runner, before :func:`start_job` returns.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, get_args

from fairaudit._choices import BAD_THREADS
from fairaudit.workspace._worker import _read_json, _write_json, run_job

if TYPE_CHECKING:  # the server follows jobs without importing torch
    from fairaudit.models import Progress

JobStatus = Literal["running", "done", "cancelled", "failed"]
FINAL_STATUSES: tuple[str, ...] = ("done", "cancelled", "failed")
#: Kinds of job: training (Model page), audits, sweeps and PDFs (Audit, Compare, Report pages), and the
#: analyses of the Dynamics, Robustness, Profiles, Explain and Privacy pages (docs/dashboard_jobs.md).
JobKind = Literal["train", "audit", "sweep", "report", "simulate", "periods", "robustness", "profiles", "probe",
                  "fairllm", "membership", "privacy_cost"]
JOB_KINDS: tuple[str, ...] = get_args(JobKind)
#: Environment variable listing the job kinds run inside the calling process (comma-separated).
INLINE_VAR = "FAIRAUDIT_INLINE_JOBS"
BAD_JOB_KIND = "unknown job kind '{0}'; expected one of {1}"

JOB_CANCELLED = "cancelled by the analyst while {0}"
WORKER_DIED = (
    "the worker process ended without finishing (exit code {0}): it was killed or ran out of memory; "
    "start the job again, with fewer threads or a smaller preset"
)
WORKER_LOST = "the worker process is gone (the server restarted or it was killed); start the job again"
NO_SUCH_JOB = "no job '{0}' in {1}"

_JOB_ID_CHARS = set("0123456789abcdef")
#: Worker processes started by this server process, by job id (polled so they never linger as zombies).
_PROCESSES: dict[str, subprocess.Popen] = {}


def physical_cores() -> int:
    """Physical CPU cores of this machine (hyper-threads not counted); the default threads of a job.

    Reads ``/proc/cpuinfo`` (Linux); elsewhere, or when it says nothing, the logical CPU count.

    >>> physical_cores() >= 1
    True
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return max(os.cpu_count() or 1, 1)
    cores, physical = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            cores.add((physical, value.strip()))
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(min(len(cores) or usable, usable), 1)


def inline_kinds(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Job kinds that run inside the calling process (``FAIRAUDIT_INLINE_JOBS``; ``all`` for every kind).

    >>> sorted(inline_kinds({"FAIRAUDIT_INLINE_JOBS": "audit, report"})), inline_kinds({})
    (['audit', 'report'], frozenset())
    """
    text = (os.environ if environ is None else environ).get(INLINE_VAR, "")
    kinds = {part.strip() for part in text.split(",") if part.strip()}
    return frozenset(JOB_KINDS) if "all" in kinds else frozenset(kinds & set(JOB_KINDS))


def job_threads(requested: int, n_running: int) -> int:
    """Torch threads for one job: ``requested`` when it runs alone, 1 each when several jobs run.

    >>> job_threads(4, 0), job_threads(4, 1), job_threads(4, 3)
    (4, 4, 1)
    """
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise ValueError(BAD_THREADS.format(requested))
    return requested if n_running <= 1 else 1


def _pid_is_worker(pid: int | None, job_id: str) -> bool:
    """Whether process ``pid`` still exists and is the worker of ``job_id`` (not a recycled pid)."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (not Linux): trust the pid
    return job_id.encode() in cmdline


@dataclass(frozen=True)
class Job:
    """Handle on one job folder; every property re-reads the folder (the worker may be in another process).

    The attributes the Model page polls match the old in-process ``TrainingJob``: ``status``,
    ``latest`` (the last epoch as :class:`~fairaudit.models.Progress`), ``losses``, ``error``,
    ``elapsed_s``, ``time_left_s``, ``out_dir``, ``cancel()`` and ``wait()``.
    """

    folder: Path

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def spec(self) -> dict:
        """What the job does (``job.json``): kind, label, session, data, split, model kind and params, out_dir."""
        return _read_json(self.folder / "job.json")

    def state(self) -> dict:
        """How far the job got (``state.json``), with a dead worker detected and recorded as failed."""
        state = _read_json(self.folder / "state.json")
        if state.get("status", "running") in FINAL_STATUSES:
            return state
        process = _PROCESSES.get(self.id)
        code = process.poll() if process is not None else None
        if process is not None:
            alive = code is None  # our own child: poll() is exact (and reaps it when it ended)
        else:
            alive = _pid_is_worker(state.get("pid") or self.spec.get("pid"), self.id)
        if alive:
            return state
        state = _read_json(self.folder / "state.json")  # it may have finished between the two reads
        if state.get("status", "running") in FINAL_STATUSES:
            return state
        if process is None and time.time() - float(self.spec.get("created_at", 0)) < 30 and not state.get("pid"):
            return {"status": "running", "phase": "starting", **state}  # started by another process, not up yet
        error = WORKER_DIED.format(code) if code is not None else WORKER_LOST
        return self._finish(state, "failed", error)

    def _finish(self, state: dict, status: JobStatus, error: str | None) -> dict:
        state = {**state, "status": status, "error": error, "finished_at": time.time()}
        _write_json(self.folder / "state.json", state)
        return state

    @property
    def status(self) -> JobStatus:
        return self.state().get("status", "running")

    @property
    def error(self) -> str | None:
        return self.state().get("error")

    @property
    def out_dir(self) -> Path:
        return Path(self.spec.get("out_dir", ""))

    @property
    def label(self) -> str:
        return str(self.spec.get("label", self.id))

    @property
    def losses(self) -> list[float]:
        return [float(x) for x in self.state().get("losses", [])]

    @property
    def latest(self) -> Progress | None:
        """The last finished epoch, or ``None`` before the first (during loading and encoding)."""
        from fairaudit.models import Progress

        state = self.state()
        if not state.get("n_epochs"):
            return None
        loss = state.get("loss")
        return Progress(int(state.get("epoch", 0)), int(state["n_epochs"]), float("nan") if loss is None else
                        float(loss), float(state.get("train_elapsed_s", 0.0)), str(state.get("message", "")))

    @property
    def elapsed_s(self) -> float:
        state, spec = self.state(), self.spec
        end = state.get("finished_at") or time.time()
        return max(float(end) - float(spec.get("created_at", end)), 0.0)

    @property
    def time_left_s(self) -> float | None:
        """Seconds left in the current phase (encoding: from the text rate; training: from the epoch time)."""
        state = self.state()
        if state.get("status", "running") != "running":
            return None
        return state.get("eta_s")

    def cancel(self, *, grace_s: float = 5.0) -> None:
        """Terminate the worker now, in whatever phase it is, and record the job as cancelled.

        Nothing is saved: a model folder is only written, atomically, after the last epoch.
        A job that finished meanwhile keeps its final status.
        """
        state = self.state()
        if state.get("status", "running") in FINAL_STATUSES:
            return
        pid = state.get("pid") or self.spec.get("pid")
        if _pid_is_worker(pid, self.id):
            try:
                os.kill(int(pid), signal.SIGTERM)
            except OSError:
                pass
            deadline = time.monotonic() + grace_s
            while _pid_is_worker(pid, self.id) and time.monotonic() < deadline:
                process = _PROCESSES.get(self.id)
                if process is not None and process.poll() is not None:
                    break
                time.sleep(0.05)
            if _pid_is_worker(pid, self.id):
                os.kill(int(pid), signal.SIGKILL)
        process = _PROCESSES.pop(self.id, None)
        if process is not None:
            process.wait()
        state = _read_json(self.folder / "state.json")
        if state.get("status", "running") not in FINAL_STATUSES:
            self._finish(state, "cancelled", JOB_CANCELLED.format(state.get("phase", "starting")))

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until the job ends (or ``timeout`` seconds); returns its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (status := self.status) == "running":
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if status != "running":
            _PROCESSES.pop(self.id, None)
        return status

    def describe(self) -> str:
        """One line for the job list: phase with n/N, rate and time left, or the epoch and loss.

        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp()) / "0123456789abcdef"
        >>> folder.mkdir()
        >>> _write_json(folder / "state.json", {"status": "running", "phase": "encoding", "done": 320,
        ...             "total": 800, "unit": "item texts", "rate": 160.0, "eta_s": 3.0, "pid": 0})
        >>> _write_json(folder / "job.json", {"created_at": time.time()})
        >>> Job(folder).describe()
        'encoding item texts 320/800 · 160 item texts/s · ~3 s left'
        """
        state = self.state()
        status, phase = state.get("status", "running"), state.get("phase", "starting")
        if status != "running":
            return status if not state.get("error") else f"{status}: {state['error']}"
        parts = [phase]
        if state.get("total"):
            unit = state.get("unit", "")
            parts = [" ".join(filter(None, [phase, unit, f"{state.get('done', 0):,}/{state['total']:,}"]))]
            if state.get("rate") and unit:
                parts.append(f"{state['rate']:.0f} {unit}/s")
            if state.get("message") and phase != "training":
                parts.append(str(state["message"]))
        elif phase == "training" and state.get("n_epochs"):
            parts = [f"epoch {state.get('epoch', 0)}/{state['n_epochs']}"]
            if state.get("loss") is not None:
                parts.append(f"loss {float(state['loss']):.4f}")
        if state.get("eta_s") is not None:
            parts.append(f"~{float(state['eta_s']):.0f} s left")
        return " · ".join(parts)


def jobs_dir(root: str | Path) -> Path:
    """Folder of every job of a workspace (``<root>/jobs``)."""
    return Path(root) / "jobs"


def list_jobs(root: str | Path, *, session: str | None = None) -> list[Job]:
    """Jobs of the workspace at ``root``, newest first; only those of ``session`` when given."""
    found = []
    for spec_path in jobs_dir(root).glob("*/job.json"):
        job = Job(spec_path.parent)
        spec = job.spec
        if session is not None and spec.get("session") != session:
            continue
        found.append((float(spec.get("created_at", 0)), job))
    return [job for _, job in sorted(found, key=lambda pair: pair[0], reverse=True)]


def running_jobs(root: str | Path) -> list[Job]:
    """Jobs of every session whose worker is still running."""
    return [job for job in list_jobs(root) if job.status == "running"]


def find_job(root: str | Path, key: str) -> Job | None:
    """The newest job of any session started with ``key`` (e.g. an audit's cache key), or ``None``.

    A page asks before starting work, so two sessions wanting the same audit share one worker.
    """
    return next((job for job in list_jobs(root) if job.spec.get("key") == key), None)


def get_job(root: str | Path, job_id: str) -> Job:
    """The job ``job_id`` of the workspace at ``root``; ``KeyError`` when there is none."""
    folder = jobs_dir(root) / str(job_id)
    if not set(str(job_id)) <= _JOB_ID_CHARS or not (folder / "job.json").is_file():
        raise KeyError(NO_SUCH_JOB.format(job_id, jobs_dir(root)))
    return Job(folder)


def rebalance_threads(root: str | Path, requested: int) -> None:
    """Tell every running worker how many threads it may use now (``requested`` alone, else 1 each).

    Workers read ``control.json`` between batches and epochs, so a job started alone drops to one
    thread as soon as a second job starts, and no job oversubscribes the machine.
    """
    running = running_jobs(root)
    for job in running:
        _write_json(job.folder / "control.json", {"threads": job_threads(requested, len(running))})


def start_job(
    root: str | Path,
    job: JobKind,
    spec: Mapping[str, Any],
    *,
    out_dir: str | Path,
    session: str = "",
    label: str = "",
    key: str = "",
    threads: int | None = None,
) -> Job:
    """Start a ``job`` (``train``, ``audit``, ``sweep`` or ``report``) described by ``spec``; returns its :class:`Job`.

    ``spec`` holds what the worker's runner for that kind reads (:mod:`fairaudit.workspace._worker`);
    its result goes to ``out_dir``. ``key`` names the work (see :func:`find_job`). ``threads`` defaults
    to :func:`physical_cores`; with other jobs running every job gets one thread
    (:func:`rebalance_threads`). Kinds listed in ``FAIRAUDIT_INLINE_JOBS`` run here, to the end.
    """
    if job not in JOB_KINDS:
        raise ValueError(BAD_JOB_KIND.format(job, JOB_KINDS))
    requested = physical_cores() if threads is None else threads
    job_threads(requested, 0)  # validates
    folder = jobs_dir(root) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    record = {**dict(spec), "job": job, "out_dir": str(out_dir), "session": session, "label": label or job,
              "key": key, "threads": requested, "created_at": time.time()}  # fmt: skip
    _write_json(folder / "job.json", record)
    _write_json(folder / "state.json", {"status": "running", "phase": "starting"})
    if job in inline_kinds():
        run_job(folder, in_process=True)
        return Job(folder)
    n_running = len(running_jobs(root))  # this job counts: it is "running" from now on
    _write_json(folder / "control.json", {"threads": job_threads(requested, n_running)})
    env = {
        **os.environ, "OMP_NUM_THREADS": str(job_threads(requested, n_running)),
        "MKL_NUM_THREADS": str(job_threads(requested, n_running)), "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                    os.environ.get("PYTHONPATH", "")])),
    }  # fmt: skip
    log = open(folder / "worker.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "fairaudit.workspace._worker", str(folder)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, process_group=0,
    )  # fmt: skip
    log.close()
    _PROCESSES[folder.name] = process
    _write_json(folder / "job.json", {**record, "pid": process.pid})
    rebalance_threads(root, requested)
    return Job(folder)


def start_training(
    root: str | Path,
    *,
    kind: str,
    params: Mapping[str, Any],
    data: Mapping[str, Any],
    out_dir: str | Path,
    session: str = "",
    label: str = "",
    split_method: str = "random",
    split_seed: int = 0,
    threads: int | None = None,
    info: Mapping[str, Any] | None = None,
) -> Job:
    """Start training a ``kind`` model with ``params`` in a worker process; returns its :class:`Job`.

    ``data`` is a ``fairaudit.service.DataSource.to_dict()`` record (paths included): the worker
    loads and splits the data itself (``split_method``, ``split_seed``, as the dashboard does),
    encodes item texts where the kind reads them (progress per batch), fits (progress per epoch)
    and saves the model to ``out_dir``. ``threads`` defaults to :func:`physical_cores`; with other
    jobs running every job gets one thread (:func:`rebalance_threads`). ``info`` (e.g. ``data_name``,
    ``settings``) is saved with the model as ``dashboard.json``, with the fit seconds and training time.
    """
    spec = {"kind": kind, "params": dict(params), "data": dict(data),
            "split": {"method": split_method, "seed": split_seed}, "info": dict(info or {})}  # fmt: skip
    return start_job(root, "train", spec, out_dir=out_dir, session=session, label=label or kind, threads=threads)
