"""The worker process of one job: ``python -m fairaudit.workspace._worker <job folder>``.

Reads ``job.json``, runs the job with bounded torch threads at the lowest priority, and reports
every phase to ``state.json`` (see :mod:`fairaudit.workspace._jobs`). Each kind of job calls the
function the CLI calls: training a recommender's ``fit``, an audit
:func:`fairaudit.service.audit_models`, a sweep :func:`fairaudit.sweep.run_sweep`, a report
:func:`fairaudit.report.build_report`; the analysis pages' kinds have their runners in
``_run_<page>.py`` beside this module (:data:`ANALYSIS_RUNNERS`). Only
:func:`fairaudit.workspace.start_job` starts it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from importlib import import_module
from typing import Any, Callable, Mapping

from fairaudit.data import write_bytes_atomic
from fairaudit.workspace._folders import write_model_info

#: Seconds between two writes of ``state.json`` within a phase (phase changes are written at once).
WRITE_EVERY_S = 0.25
#: Errors from bad input or files, recorded as their message alone; anything else keeps its type name.
_PLAIN_ERRORS = (ValueError, LookupError, OSError)


def _write_json(path: Path, record: Mapping[str, Any]) -> None:
    """Write ``record`` to ``path`` atomically (readers never see half a file)."""
    write_bytes_atomic(path, json.dumps(record, default=str).encode())


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class _Reporter:
    """Writes the job's progress to ``state.json`` and applies ``control.json``'s thread budget."""

    def __init__(self, folder: Path, *, control_threads: bool = True) -> None:
        self.folder = folder
        self.state: dict = {"status": "running", "phase": "starting", "pid": os.getpid(), "losses": []}
        self.phase_start = time.monotonic()
        self.written = 0.0
        self.threads = 0
        self.control_threads = control_threads  # never in the server's own process (inline jobs)
        self.apply_threads()
        self.write(force=True)

    def apply_threads(self) -> None:
        if not self.control_threads:
            return
        from fairaudit.models import set_threads

        threads = int(_read_json(self.folder / "control.json").get("threads", 1) or 1)
        if threads != self.threads:
            set_threads(max(threads, 1))
            self.threads = threads
            self.state["threads"] = threads

    def write(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.written >= WRITE_EVERY_S:
            self.state["updated_at"] = time.time()
            _write_json(self.folder / "state.json", self.state)
            self.written = now
            self.apply_threads()

    def phase(self, name: str, **fields) -> None:
        self.phase_start = time.monotonic()
        for key in ("done", "total", "unit", "rate", "eta_s", "message"):
            self.state.pop(key, None)
        self.state.update(phase=name, **fields)
        self.write(force=True)

    def _progress(self, done: int, total: int) -> None:
        elapsed = max(time.monotonic() - self.phase_start, 1e-9)
        rate = done / elapsed
        self.state.update(done=int(done), total=int(total), rate=rate,
                          eta_s=(total - done) / rate if rate > 0 else None)  # fmt: skip

    def count(self, done: int, total: int) -> None:
        """``done`` of ``total`` units of the current phase, with rate and time left (written at most every
        ``WRITE_EVERY_S``: counts can come thousands of times a second)."""
        self._progress(done, total)
        self.write(force=done >= total)

    def step(self, message: str) -> None:
        """One more step of the current phase (a status line of the audit or sweep), with time left.

        Written at once: a step can take minutes, and its line is what the page shows meanwhile."""
        total = int(self.state.get("total") or 0)
        done = int(self.state.get("done", -1)) + 1  # the line announces a step: the steps before it are done
        self.state["message"] = str(message)
        if total:
            self._progress(min(done, total), max(total, done))
        self.write(force=True)

    def epoch(self, event) -> None:
        loss = float(event.loss) if event.loss == event.loss else None
        self.state.update(epoch=int(event.epoch), n_epochs=int(event.n_epochs), loss=loss,
                          train_elapsed_s=float(event.elapsed_s), message=str(event.message or ""),
                          eta_s=event.elapsed_s / event.epoch * max(event.n_epochs - event.epoch, 0)
                          if event.epoch > 0 else None)  # fmt: skip
        if loss is not None:
            self.state["losses"].append(loss)
        self.write(force=event.epoch >= event.n_epochs)


def holds_file(name: str) -> Callable[[Path], bool]:
    """``is_ours`` for :func:`fairaudit.data.replacing_folder`: a result folder holding ``name`` is a job's own
    earlier result, which a rerun replaces (a check of presence, not of content: a damaged table is replaced too)."""
    return lambda folder: (Path(folder) / name).is_file()


def spec_dataset(spec: Mapping[str, Any]):
    """The job's data (``spec["data"]``, a :class:`~fairaudit.service.DataSource` as a dict), loaded and checked."""
    from fairaudit.service import DataSource

    return DataSource.from_dict(spec["data"]).load()


def spec_model(spec: Mapping[str, Any], dataset):
    """The job's model (``spec["model"]``, a saved model folder), loaded for ``dataset``."""
    from fairaudit.models import load_model

    return load_model(spec["model"], dataset)


def run_training(spec: dict, report: _Reporter) -> None:
    """Load and split the data, encode item texts (if the model reads them), fit, save."""
    report.phase("loading")
    from fairaudit.data import make_split
    from fairaudit.models import TextEncoder, create_model, item_texts

    dataset = spec_dataset(spec)
    split = make_split(dataset, spec["split"]["method"], seed=int(spec["split"]["seed"]))
    model = create_model(spec["kind"], **spec["params"])
    encoder = getattr(model, "encoder", None)
    if isinstance(encoder, TextEncoder):  # fit re-uses these in-memory embeddings: no second pass
        texts = item_texts(dataset)
        report.phase("encoding", done=0, total=len(texts), unit="item texts")
        encoder.encode(texts, progress=report.count)
    report.phase("training")
    start = time.perf_counter()
    model.fit(dataset, split, progress=report.epoch)
    fit_s = time.perf_counter() - start
    report.phase("saving")
    model.save(spec["out_dir"], overwrite=True)
    write_model_info(spec["out_dir"], {**spec.get("info", {}), "fit_s": round(fit_s, 3),
                                       "trained_at": time.time(), "threads": report.threads})  # fmt: skip


def audit_steps(n_models: int) -> int:
    """Status lines :func:`fairaudit.service.audit_models` reports for ``n_models`` models: three per model
    (recommending, group statistics, exposure), and one for the comparison of two or more.

    >>> audit_steps(1), audit_steps(2)
    (3, 7)
    """
    return 3 * n_models + (n_models >= 2)


def run_audit(spec: dict, report: _Reporter) -> None:
    """Load the data and the model folders (``spec["models"]``: [label, folder] pairs), audit them with
    ``spec["config"]`` through :func:`fairaudit.service.audit_models` and write the audit folder."""
    report.phase("loading")
    from fairaudit.audit import AuditConfig
    from fairaudit.models import load_model
    from fairaudit.service import audit_models

    dataset = spec_dataset(spec)
    models = {label: load_model(folder, dataset) for label, folder in spec["models"]}
    report.phase("auditing", total=audit_steps(len(models)))
    result = audit_models(dataset, models, AuditConfig.from_dict(spec["config"]), progress=report.step)
    report.phase("saving")
    out = Path(spec["out_dir"])
    try:
        result.write(out, overwrite=True)
    except (ValueError, OSError):
        if not (out / "audit.json").is_file():  # another job wrote the same audit meanwhile: theirs is this one
            raise


def run_sweep(spec: dict, report: _Reporter) -> None:
    """Load the data and the base model, and run :func:`fairaudit.sweep.run_sweep` with ``spec["request"]``
    on the split the model was trained on; the table and point models go to ``out_dir``, atomically (like
    every analysis job's folder: one that exists is complete)."""
    report.phase("loading")
    from fairaudit.audit import split_for_model
    from fairaudit.data import replacing_folder
    from fairaudit.sweep import is_sweep_folder, run_sweep as sweep

    dataset = spec_dataset(spec)
    base = spec_model(spec, dataset)
    request = spec["request"]
    report.phase("sweeping", total=2 * len(request["strengths"]))  # fit, then audit, per strength
    with replacing_folder(spec["out_dir"], overwrite=True, is_ours=is_sweep_folder, kind="sweep folder") as tmp:
        sweep(dataset, split_for_model(dataset, base), model=base, out=tmp, overwrite=True, progress=report.step,
              **request)  # fmt: skip


def run_report(spec: dict, report: _Reporter) -> None:
    """Copy the audit folder ``spec["audit"]`` to ``out_dir`` and build its PDF there
    (:func:`fairaudit.report.build_report` with ``spec["options"]``)."""
    report.phase("writing the audit folder")
    from fairaudit.audit import AuditResult
    from fairaudit.report import build_report

    out = Path(spec["out_dir"])
    AuditResult.read(spec["audit"]).write(out, overwrite=True)
    report.phase("building the PDF")
    build_report(out, out / "audit.pdf", **spec.get("options", {}))


RUNNERS: dict[str, Callable[[dict, _Reporter], Any]] = {
    "train": run_training, "audit": run_audit, "sweep": run_sweep, "report": run_report,
}  # fmt: skip
#: The analysis pages' job kinds: (module of this package, runner), imported when a job of the kind runs.
#: Each runner writes its result folder ``spec["out_dir"]`` atomically (:func:`fairaudit.data.replacing_folder`),
#: so a folder that exists is complete.
ANALYSIS_RUNNERS: dict[str, tuple[str, str]] = {
    "simulate": ("_run_dynamics", "run_simulation"), "periods": ("_run_dynamics", "run_periods"),
    "robustness": ("_run_robustness", "run_robustness_job"), "profiles": ("_run_profiles", "run_profiles_job"),
    "probe": ("_run_explain", "run_probe"), "fairllm": ("_run_explain", "run_fairllm"),
    "membership": ("_run_privacy", "run_membership"), "privacy_cost": ("_run_privacy", "run_privacy_cost"),
}  # fmt: skip


def runner(kind: str) -> Callable[[dict, _Reporter], Any]:
    """The function that runs a job of ``kind``."""
    if kind in RUNNERS:
        return RUNNERS[kind]
    module, name = ANALYSIS_RUNNERS[kind]
    return getattr(import_module(f"fairaudit.workspace.{module}"), name)


def run_job(folder: Path, *, in_process: bool = False) -> None:
    """Run the job in ``folder`` to the end, recording ``done`` or ``failed`` (with the error) in ``state.json``.

    ``in_process``: called by the server itself (an inline job), so the thread budget is left alone.
    """
    spec = _read_json(folder / "job.json")
    report = _Reporter(folder, control_threads=not in_process)
    try:
        runner(spec.get("job", "train"))(spec, report)
        report.state.update(status="done", finished_at=time.time(), eta_s=None)
    except Exception as err:  # recorded for the page, which shows it as a message
        error = str(err) if isinstance(err, _PLAIN_ERRORS) else f"{type(err).__name__}: {err}"
        report.state.update(status="failed", error=error, finished_at=time.time())
    report.write(force=True)


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    try:
        os.nice(19)  # the lowest priority: the web server's requests come first
    except OSError:
        pass
    if hasattr(os, "SCHED_IDLE"):  # Linux: CPU time no one else wants; a CPU running only the worker counts as
        try:  # idle, so the server's (and a local browser's) wakeups go there at once. Torch's threads inherit it.
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    run_job(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
