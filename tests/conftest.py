"""Shared fixtures: the real MovieLens folder (skipped when absent) and tiny datasets."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, settings

from fairaudit.data import Dataset
from fairaudit.workspace import JOB_KINDS

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("FAIRAUDIT_DATASETS", ROOT.parent / "shared" / "datasets"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# AppTest runs have no browser to poll a job's progress: every job but training (audits, sweeps, PDFs and the
# analysis pages' jobs) runs inline, through the worker's own runner (fairaudit.workspace.start_job). Training
# keeps its worker process; the browser tests' server (bench.bench_dashboard.dashboard) runs every job in a worker.
os.environ.setdefault("FAIRAUDIT_INLINE_JOBS", ",".join(kind for kind in JOB_KINDS if kind != "train"))

#: Hypothesis for every test: no wall-clock deadline per example (hypothesis' default is 200 ms,
#: which a busy 2-core machine overruns) and no "too slow" health check. Tests assert behaviour
#: and numbers; timing targets live in ``bench/``. ``print_blob`` prints how to replay a failure.
settings.register_profile(
    "fairaudit",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("fairaudit")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch thread per test process: `make test` runs two xdist workers on the two cores, and the
    models under test are tiny, so more threads only oversubscribe a shared CPU (under load, two threads
    per worker made re-ranking ~10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

#: Ceiling (seconds) for every wait in the tests (script runs, training jobs, the browser): tests
#: wait for a condition and this only bounds a hang, so it is generous for a slow, busy machine.
WAIT_CEILING_S = 600


@pytest.fixture(scope="session")
def movielens_100k_path() -> Path:
    """Folder of MovieLens 100K; tests using it skip cleanly where it is not present."""
    path = SHARED_DATASETS / "ml-100k"
    if not (path / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found at {path}")
    return path


def make_tiny_dataset(n_users: int = 40, n_items: int = 30, seed: int = 0) -> Dataset:
    """A small, fully valid dataset built directly (no loader involved).

    Users ``u0..``: gender alternates F/M; items ``i0..`` have two genres and a provider.
    Each user interacts with 8 items, F users preferring the first half of the catalogue.
    """
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n_users)],
            "gender": np.where(np.arange(n_users) % 2 == 0, "F", "M"),
            "age_band": np.array(["18-24", "25-34", "35-44"])[np.arange(n_users) % 3],
            "region": np.array(["Northeast", "South"])[(np.arange(n_users) % 4 < 2).astype(int)],
        }
    )
    genres = np.array(["Action", "Comedy", "Drama"])
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"Item {j}" for j in range(n_items)],
            "genres": [f"{genres[j % 3]}|{genres[(j + 1) % 3]}" for j in range(n_items)],
            "description": [f"A {genres[j % 3].lower()} story number {j}." for j in range(n_items)],
            "provider": np.where(np.arange(n_items) < n_items // 3, "indie", "studio"),
        }
    )
    rows = []
    for u in range(n_users):
        half = np.arange(n_items // 2) if u % 2 == 0 else np.arange(n_items // 2, n_items)
        chosen = rng.choice(half, size=8, replace=False)
        rows += [(f"u{u}", f"i{j}", float(rng.integers(1, 6)), 1_000_000 + 10 * u + k) for k, j in enumerate(chosen)]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    interactions["timestamp"] = interactions["timestamp"].astype("int64")
    return Dataset(interactions=interactions, users=users, items=items, name="tiny")


@pytest.fixture
def tiny_dataset() -> Dataset:
    return make_tiny_dataset()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """An in-memory zip archive of ``{name: content}``, as a browser would upload it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()
