"""fairaudit.workspace: folders, uploads, zips and background training."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fairaudit.data import make_split
from fairaudit.models import Progress, create_model, load_model
from fairaudit.workspace import (
    BAD_SESSION_DAYS,
    BAD_SESSION_ID,
    ZIP_TOO_LARGE,
    ZIP_UNREADABLE,
    ZIP_UNSAFE_PATH,
    TrainingJob,
    Workspace,
    new_session_id,
    safe_filename,
    zip_folder,
)
from tests.conftest import WAIT_CEILING_S, make_tiny_dataset, zip_bytes


def test_root_comes_from_the_environment(tmp_path):
    assert Workspace.from_env({"FAIRAUDIT_WORKSPACE": str(tmp_path)}).root == tmp_path.resolve()
    assert Workspace.from_env({}).root == Path("workspace").resolve()


def test_sessions_are_private_folders(tmp_path):
    ws = Workspace(tmp_path)
    a, b = new_session_id(), new_session_id()
    assert a != b
    path = ws.save_upload(a, "../../secret/../users.csv", b"user_id\n1\n")
    assert path.parent == ws.session_dir(a) / "uploads" and path.name == "users.csv"
    assert not (ws.session_dir(b)).exists()
    with pytest.raises(ValueError) as err:
        ws.session_dir("../x")
    assert str(err.value) == BAD_SESSION_ID.format("../x")


def test_session_lifetime_comes_from_the_environment(tmp_path):
    assert Workspace.from_env({}).session_days == 7.0
    assert Workspace.from_env({"FAIRAUDIT_SESSION_DAYS": "0"}).session_days == 0.0
    for bad in ("a week", "-1", "nan"):
        with pytest.raises(ValueError) as err:
            Workspace.from_env({"FAIRAUDIT_SESSION_DAYS": bad})
        assert str(err.value) == BAD_SESSION_DAYS.format("FAIRAUDIT_SESSION_DAYS", bad)


def test_prune_sessions_deletes_only_sessions_untouched_for_long(tmp_path):
    import os

    day, now = 86_400, 1_000_000_000.0
    ws = Workspace(tmp_path, session_days=7)
    old, busy, fresh = new_session_id(), new_session_id(), new_session_id()
    for session, (folder_age, file_age) in {old: (8, 9), busy: (30, 2), fresh: (1, 1)}.items():
        path = ws.save_upload(session, "users.csv", b"user_id\n1\n")
        os.utime(path, (now - file_age * day,) * 2)
        for folder in (path.parent, ws.session_dir(session)):
            os.utime(folder, (now - folder_age * day,) * 2)
    stranger = tmp_path / "sessions" / "notes"  # not a session id: never touched
    stranger.mkdir()
    os.utime(stranger, (now - 100 * day,) * 2)
    assert ws.prune_sessions(now=now) == [ws.session_dir(old)]
    assert not ws.session_dir(old).exists()
    assert ws.session_dir(busy).is_dir() and ws.session_dir(fresh).is_dir() and stranger.is_dir()
    assert Workspace(tmp_path, session_days=0).prune_sessions(now=now + 1_000 * day) == []
    assert Workspace(tmp_path / "empty").prune_sessions() == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a b.csv", "a_b.csv"), ("..\\..\\x.parquet", "x.parquet"), ("....", "upload"), ("é=1+2.csv", "__1_2.csv")],
)
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


def test_model_folder_name_is_deterministic_and_session_independent(tmp_path):
    ws = Workspace(tmp_path)
    one = ws.model_dir("mf", "abc", {"factors": 8, "reg": 1.0})
    assert one == ws.model_dir("mf", "abc", {"reg": 1.0, "factors": 8})
    assert one != ws.model_dir("mf", "abc", {"factors": 9, "reg": 1.0})
    assert one != ws.model_dir("mf", "abd", {"factors": 8, "reg": 1.0})
    assert one.parent == ws.models_dir


def test_saved_models_only_for_their_data(tmp_path):
    ws = Workspace(tmp_path)
    for name, fp in (("mf-aaa-1", "aaa"), ("popularity-bbb-2", "bbb")):
        (ws.models_dir / name).mkdir(parents=True)
        config = {"kind": name.split("-")[0], "data_fingerprint": fp}
        (ws.models_dir / name / "config.json").write_text(json.dumps(config))
    (ws.models_dir / "broken").mkdir()
    (ws.models_dir / "broken" / "config.json").write_text("{not json")
    assert [m.label for m in ws.saved_models("aaa")] == ["mf-1"]
    assert {m.kind for m in ws.saved_models()} == {"mf", "popularity"}
    assert ws.saved_models("zzz") == []


def test_extract_zip_returns_the_single_top_folder(tmp_path):
    ws, sid = Workspace(tmp_path), new_session_id()
    folder = ws.extract_zip(sid, "ml.zip", zip_bytes({"ml-100k/u.data": b"1\t2\t3\t4\n", "__MACOSX/._u.data": b""}))
    assert folder.name == "ml-100k" and (folder / "u.data").read_bytes() == b"1\t2\t3\t4\n"
    assert ws.session_dir(sid) in folder.parents


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a zip", ZIP_UNREADABLE.split("'")[2].split("(")[0]),
        (zip_bytes({"../evil.csv": b"x"}), ZIP_UNSAFE_PATH.format("bad.zip", "../evil.csv")),
        (zip_bytes({"/abs.csv": b"x"}), ZIP_UNSAFE_PATH.format("bad.zip", "/abs.csv")),
        (zip_bytes({"big.csv": b"x" * 2000}), ZIP_TOO_LARGE.format("bad.zip", 2000, 1000)),
    ],
)
def test_extract_zip_refuses_bad_archives(tmp_path, content, message):
    ws, sid = Workspace(tmp_path), new_session_id()
    with pytest.raises(ValueError) as err:
        ws.extract_zip(sid, "bad.zip", content, max_bytes=1000)
    assert message in str(err.value)
    assert not (tmp_path.parent / "evil.csv").exists()


def test_zip_folder_round_trip(tmp_path):
    (tmp_path / "audit" / "sub").mkdir(parents=True)
    (tmp_path / "audit" / "a.csv").write_text("1")
    (tmp_path / "audit" / "sub" / "b.json").write_text("{}")
    names = zipfile.ZipFile(io.BytesIO(zip_folder(tmp_path / "audit"))).namelist()
    assert names == ["audit/a.csv", "audit/sub/b.json"]


@pytest.fixture
def tiny_fit():
    ds = make_tiny_dataset()
    return ds, make_split(ds, "random", seed=0)


def test_training_job_trains_and_saves(tmp_path, tiny_fit):
    ds, split = tiny_fit
    job = TrainingJob(create_model("mf", factors=4, iterations=3), ds, split, tmp_path / "m").start()
    assert job.wait(WAIT_CEILING_S) == "done", job.error
    assert job.latest.epoch == job.latest.n_epochs == 3 and len(job.losses) == 3
    assert job.time_left_s is None
    reloaded = load_model(tmp_path / "m", ds)
    np.testing.assert_allclose(reloaded.score(["u0"]), job.model.score(["u0"]))


def test_training_job_cancels_at_the_next_epoch(tmp_path, tiny_fit):
    ds, split = tiny_fit
    gate, release = threading.Event(), threading.Event()
    model = create_model("mf", factors=4, iterations=50)
    job = TrainingJob(model, ds, split, tmp_path / "m")
    original = job._progress

    def slow(event: Progress) -> None:  # pause after epoch 2 so the test can cancel deterministically
        original(event)
        if event.epoch == 2:
            gate.set()
            release.wait(WAIT_CEILING_S)

    job._progress = slow
    job.start()
    try:
        assert gate.wait(WAIT_CEILING_S)
        assert job.status == "running" and job.time_left_s == pytest.approx(job.latest.elapsed_s / 2 * 48)
        job.cancel()
    finally:
        release.set()  # never leave the training thread parked, even when an assertion above fails
    assert job.wait(WAIT_CEILING_S) == "cancelled"
    assert job.error == "training cancelled at epoch 3 of 50"
    assert not (tmp_path / "m").exists()


def test_training_job_reports_failures(tmp_path, tiny_fit):
    ds, _ = tiny_fit
    job = TrainingJob(create_model("mf"), ds, None, tmp_path / "m").start()  # no split: fit raises
    assert job.wait(WAIT_CEILING_S) == "failed"
    assert job.error and not (tmp_path / "m").exists()
