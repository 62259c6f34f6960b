"""The worker process of one job: ``python -m fairaudit.workspace._worker <job folder>``.

Reads ``job.json``, runs the job with bounded torch threads at a lowered priority, and reports
every phase to ``state.json`` (see :mod:`fairaudit.workspace._jobs`). Only
:func:`fairaudit.workspace.start_training` starts it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from fairaudit.workspace._folders import write_model_info
from fairaudit.workspace._jobs import _read_json, _write_json

#: Seconds between two writes of ``state.json`` within a phase (phase changes are written at once).
WRITE_EVERY_S = 0.25


class _Reporter:
    """Writes the job's progress to ``state.json`` and applies ``control.json``'s thread budget."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state: dict = {"status": "running", "phase": "starting", "pid": os.getpid(), "losses": []}
        self.phase_start = time.monotonic()
        self.written = 0.0
        self.threads = 0
        self.apply_threads()
        self.write(force=True)

    def apply_threads(self) -> None:
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
        for key in ("done", "total", "unit", "rate", "eta_s"):
            self.state.pop(key, None)
        self.state.update(phase=name, **fields)
        self.write(force=True)

    def count(self, done: int, total: int) -> None:
        """``done`` of ``total`` units of the current phase, with rate and time left."""
        elapsed = max(time.monotonic() - self.phase_start, 1e-9)
        rate = done / elapsed
        self.state.update(done=int(done), total=int(total), rate=rate,
                          eta_s=(total - done) / rate if rate > 0 else None)  # fmt: skip
        self.write(force=done >= total)

    def epoch(self, event) -> None:
        loss = float(event.loss) if event.loss == event.loss else None
        self.state.update(epoch=int(event.epoch), n_epochs=int(event.n_epochs), loss=loss,
                          train_elapsed_s=float(event.elapsed_s), message=str(event.message or ""),
                          eta_s=event.elapsed_s / event.epoch * max(event.n_epochs - event.epoch, 0)
                          if event.epoch > 0 else None)  # fmt: skip
        if loss is not None:
            self.state["losses"].append(loss)
        self.write(force=event.epoch >= event.n_epochs)


def run_training(folder: Path) -> None:
    """Load and split the data, encode item texts (if the model reads them), fit, save."""
    spec = _read_json(folder / "job.json")
    report = _Reporter(folder)
    try:
        report.phase("loading")
        from fairaudit.data import make_split
        from fairaudit.models import TextEncoder, create_model, item_texts
        from fairaudit.service import DataSource

        dataset = DataSource.from_dict(spec["data"]).load()
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
                                           "trained_at": time.time(), "threads": report.threads})
        report.state.update(status="done", finished_at=time.time(), eta_s=None)
    except Exception as err:  # recorded for the page, which shows it as a message
        report.state.update(status="failed", error=f"{type(err).__name__}: {err}", finished_at=time.time())
    report.write(force=True)


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    try:
        os.nice(19)  # the lowest priority: the web server's requests come first
    except OSError:
        pass
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    run_training(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
