"""Model training in a background thread, observable and cancellable by the Model page."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fairaudit.data import Dataset, Split
from fairaudit.models import Progress, Recommender, TrainingCancelled

TRAINING_CANCELLED = "training cancelled at epoch {0} of {1}"

JobStatus = Literal["running", "done", "cancelled", "failed"]


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
            self.model.save(self.out_dir, overwrite=True)  # the workspace's folder for this kind, data and params
            self.status = "done"
        except TrainingCancelled as err:
            self.error, self.status = str(err), "cancelled"
        except Exception as err:  # reported on the page, which shows it as a message
            self.error, self.status = f"{type(err).__name__}: {err}", "failed"
        finally:
            self.finished_at = time.monotonic()
