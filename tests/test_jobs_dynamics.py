"""The Dynamics page's jobs (kinds ``simulate`` and ``periods``, fairaudit/workspace/_run_dynamics.py): run inline
through the worker's runner, they write folders that read back to exactly what the fairaudit functions compute
in this process, count their steps n/N, and a bad spec ends as a plain failure. Also the period-audit folder's
writer/reader round trip."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from fairaudit.audit import AuditConfig
from fairaudit.data import OutputError, make_split, write_sample
from fairaudit.dynamics import (
    SimulationSettings,
    audit_by_period,
    period_windows,
    read_period_audit,
    read_simulation,
    simulate,
    write_period_audit,
)
from fairaudit.models import create_model, load_model
from fairaudit.service import DataSource
from fairaudit.workspace import _worker, start_job

#: A tiny loop: 3 rounds (0-2) x 2 seeds = 6 steps.
SETTINGS = SimulationSettings(rounds=2, seeds=2, k=5, bootstrap=20, attributes=("gender",), item_attribute="provider",
                              min_group_size=5)  # fmt: skip
CONFIG = AuditConfig(k=5, attributes=("gender",), bootstrap_rounds=20, embedding_diversity=False, min_group_size=5)
PERIOD = "120-days"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(data source dict, dataset, saved popularity model folder) of a small planted-bias sample with timestamps."""
    folder = tmp_path_factory.mktemp("dyn")
    write_sample(folder / "data", n_users=150, n_items=80, n_interactions=3000)
    source = DataSource("folder", path=str(folder / "data")).to_dict()
    dataset = DataSource.from_dict(source).load()
    create_model("popularity").fit(dataset, make_split(dataset, "random", seed=0)).save(folder / "pop")
    return source, dataset, str(folder / "pop")


@pytest.fixture
def counts(monkeypatch) -> list[tuple[int, int]]:
    """Every (done, total) a job reports."""
    seen: list[tuple[int, int]] = []
    real = _worker._Reporter.count

    def spy(self, done, total):
        seen.append((done, total))
        real(self, done, total)

    monkeypatch.setattr(_worker._Reporter, "count", spy)
    return seen


def test_a_simulate_job_writes_what_simulate_computes(tmp_path, tiny, counts, monkeypatch):
    monkeypatch.setenv("FAIRAUDIT_INLINE_JOBS", "simulate")
    source, dataset, model = tiny
    out = tmp_path / "ws" / "results" / "sim"
    job = start_job(tmp_path / "ws", "simulate", {"data": source, "model": model, "settings": SETTINGS.to_dict()},
                    out_dir=out, threads=1)  # fmt: skip
    assert job.status == "done", job.error
    # One step per round of each seed, n/6, then the pooling and writing.
    assert counts == [(n, 6) for n in range(1, 7)] and job.state()["phase"] == "pooling and saving"
    written = read_simulation(out)
    direct = simulate(dataset, load_model(model, dataset), SETTINGS)
    assert written.settings == SETTINGS
    for table in ("rounds", "drift"):
        pd.testing.assert_frame_equal(getattr(written, table), getattr(direct, table), check_dtype=False, check_exact=True)
    assert set(written.rounds["round"]) == {0, 1, 2} and set(written.rounds["seed"]) == {"0", "1", "all"}


def test_a_periods_job_writes_what_audit_by_period_computes(tmp_path, tiny, counts, monkeypatch):
    monkeypatch.setenv("FAIRAUDIT_INLINE_JOBS", "periods")
    source, dataset, model = tiny
    out = tmp_path / "ws" / "results" / "periods"
    spec = {"data": source, "model": model, "model_label": "pop", "config": CONFIG.to_dict(), "period": PERIOD}
    job = start_job(tmp_path / "ws", "periods", spec, out_dir=out, threads=1)
    assert job.status == "done", job.error
    windows = len(period_windows(dataset.interactions["timestamp"], PERIOD)) - 1
    assert windows >= 2 and counts == [(n, windows) for n in range(1, windows + 1)]
    assert job.state()["phase"] == "saving"
    written = read_period_audit(out)
    direct = audit_by_period(dataset, {"pop": load_model(model, dataset)}, CONFIG, period=PERIOD)
    for table in ("metrics", "trends", "exposure", "gaps"):
        pd.testing.assert_frame_equal(getattr(written, table), getattr(direct, table).reset_index(drop=True),
                                      check_dtype=False, check_exact=True)  # fmt: skip
    assert set(written.metrics["model"]) == {"pop"} and written.skipped == {}


def test_the_period_audit_folder_round_trips(tmp_path, tiny):
    _, dataset, model = tiny
    periods = audit_by_period(dataset, {"pop": load_model(model, dataset)}, CONFIG, period=PERIOD)
    periods = dataclasses.replace(periods, skipped={"lists": "imported lists cannot be re-trained per window"})
    folder = write_period_audit(periods, tmp_path / "p")
    assert sorted(p.name for p in folder.iterdir()) == [
        "exposure_drift.csv", "period_gaps.csv", "period_metrics.csv", "period_trends.csv", "periods.json"]
    back = read_period_audit(folder)
    for table in ("metrics", "trends", "exposure", "gaps"):  # exact floats, text stays text, flags stay booleans
        pd.testing.assert_frame_equal(getattr(back, table), getattr(periods, table).reset_index(drop=True),
                                      check_dtype=False, check_exact=True)  # fmt: skip
    assert back.metrics["flagged"].dtype == bool and back.metrics["period"].map(type).eq(str).all()
    assert back.skipped == periods.skipped
    with pytest.raises(OutputError):
        write_period_audit(periods, folder)  # an existing folder is replaced only with overwrite=True
    write_period_audit(periods, folder, overwrite=True)
    with pytest.raises(FileNotFoundError, match="periods.json"):
        read_period_audit(tmp_path)


def test_bad_specs_end_as_plain_failures(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("FAIRAUDIT_INLINE_JOBS", "simulate,periods")
    source, _, model = tiny
    root = tmp_path / "ws"
    gone = start_job(root, "simulate", {"data": source, "model": str(tmp_path / "nowhere"),
                                        "settings": SETTINGS.to_dict()}, out_dir=root / "a", threads=1)  # fmt: skip
    assert gone.status == "failed" and "nowhere" in gone.error and not gone.error.startswith("ModelFolderError")
    for settings, words in (({**SETTINGS.to_dict(), "rounds": 0}, "rounds must be a positive integer"),
                            ({**SETTINGS.to_dict(), "round": 3}, "'round' is not a simulation setting")):  # fmt: skip
        bad = start_job(root, "simulate", {"data": source, "model": model, "settings": settings},
                        out_dir=root / "b", threads=1)  # fmt: skip
        assert bad.status == "failed" and bad.error.startswith(words), bad.error
    spec = {"data": source, "model": model, "model_label": "pop", "config": CONFIG.to_dict(), "period": "fortnight"}
    bad = start_job(root, "periods", spec, out_dir=root / "c", threads=1)
    assert bad.status == "failed" and "period must be" in bad.error, bad.error
    assert not any((root / name).exists() for name in "abc")
