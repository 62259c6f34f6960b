"""fairaudit.workspace: folders, uploads checked in plain words, zips, jobs in worker processes,
presets, readable model names and the leaderboard."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pandas as pd

from fairaudit.data import load_sample, make_split
from fairaudit.models import ExternalRecommender, create_model, load_model
from fairaudit.workspace import (
    BAD_SESSION_DAYS,
    BAD_SESSION_ID,
    SAMPLE_MODELS_DIR,
    UPLOAD_BINARY,
    UPLOAD_EMPTY,
    UPLOAD_ENCODING,
    UPLOAD_EXCEL,
    UPLOAD_LATIN1,
    UPLOAD_MIXED,
    UPLOAD_MOVIELENS_MISSING,
    UPLOAD_NO_INTERACTIONS,
    UPLOAD_NO_ROWS,
    UPLOAD_ONE_COLUMN,
    UPLOAD_TWO_ROLES,
    UPLOAD_UNKNOWN_ROLE,
    UPLOAD_UTF16,
    WORKER_LOST,
    ZIP_TOO_LARGE,
    ZIP_UNREADABLE,
    ZIP_UNSAFE_PATH,
    Job,
    SavedModel,
    Workspace,
    get_job,
    inspect_file,
    job_threads,
    leaderboard,
    list_jobs,
    missing_columns,
    new_session_id,
    param_choices,
    param_help,
    preset_params,
    safe_filename,
    settings_name,
    start_training,
    upload_problems,
    write_model_info,
    zip_folder,
)
from fairaudit.service import DataSource
from tests.conftest import ROOT, WAIT_CEILING_S, zip_bytes


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
    assert [m.label for m in ws.saved_models("aaa")] == [ws.saved_models("aaa")[0].label]
    assert ws.saved_models("aaa")[0].label.startswith("mf-standard")
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



# ---- dropped files: every problem in plain words, before anything else is drawn -----------------
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.mark.parametrize(
    ("name", "content", "encoding", "message"),
    [
        ("plays.csv", b"", "auto", UPLOAD_EMPTY.format("plays.csv")),
        ("plays.csv", b"\n \n", "auto", UPLOAD_EMPTY.format("plays.csv")),
        ("plays.csv", b"user_id,item_id\n", "auto", UPLOAD_NO_ROWS.format("plays.csv", "user_id, item_id")),
        ("plays.csv", PNG, "auto", UPLOAD_BINARY.format("plays.csv", "a PNG image")),
        ("plays.csv", bytes(range(256)) * 8, "auto", UPLOAD_BINARY.split("{1}")[0].format("plays.csv")),
        ("plays.csv", "user_id,item_id\nJosé,1\n".encode("latin-1"), "utf-8",
         UPLOAD_ENCODING.format("plays.csv", "utf-8", 0xE9, 19)),
        ("plays.csv", b"user_id;item_id\n1;2\n", "auto", UPLOAD_ONE_COLUMN.format("plays.csv", "user_id;item_id")),
        ("plays.parquet", b"PAR1 not really", "auto", "'plays.parquet' could not be read as Parquet ("),
        ("book.xlsx", zip_bytes({"[Content_Types].xml": b"x", "xl/workbook.xml": b"x"}), "auto",
         UPLOAD_EXCEL.format("book.xlsx")),
        ("evil.zip", zip_bytes({"../x.csv": b"a"}), "auto", ZIP_UNSAFE_PATH.format("evil.zip", "../x.csv")),
        ("u.data", b"", "auto", UPLOAD_EMPTY.format("u.data")),
        ("plays.csv", "user_id,item_id\nu1,i1\n".encode("utf-16-le"), "auto", UPLOAD_UTF16.format("plays.csv")),
    ],
)
def test_dropped_files_with_a_problem_say_it_in_plain_words(name, content, encoding, message):
    dropped = inspect_file(name, content, encoding=encoding)
    assert dropped.problem is not None and message in dropped.problem, dropped.problem
    assert "Traceback" not in dropped.problem and "mapping=" not in dropped.problem
    assert upload_problems([dropped], {}) == [dropped.problem]


def test_dropped_tables_are_recognised_and_re_encoded():
    latin = inspect_file("people.csv", "user_id,city\nu1,Málaga\n".encode("latin-1"))
    assert latin.problem is None and latin.warning == UPLOAD_LATIN1.format("people.csv")
    assert latin.role == "users" and latin.content.decode("utf-8") == "user_id,city\nu1,Málaga\n"
    chosen = inspect_file("people.csv", "user_id,city\nu1,Málaga\n".encode("cp1252"), encoding="cp1252")
    assert chosen.warning is None and chosen.content == latin.content
    utf16 = inspect_file("plays.csv", "userId,movieId\n1,2\n".encode("utf-16"))
    assert utf16.problem is None and utf16.role == "interactions" and utf16.columns == ("userId", "movieId")
    no_bom = inspect_file("plays.csv", "userId,movieId\n1,2\n".encode("utf-16-le"), encoding="utf-16")
    assert no_bom.problem is None and no_bom.content == b"userId,movieId\n1,2\n"
    parquet = io.BytesIO()
    pd.DataFrame({"item_id": ["a"], "title": ["A"]}).to_parquet(parquet)
    assert inspect_file("films.parquet", parquet.getvalue()).role == "items"
    assert inspect_file("ml.zip", zip_bytes({"ml-100k/u.data": b"1\t2\t3\t4\n"})).kind == "zip"
    assert {inspect_file(n, b"1|2\n").kind for n in ("u.data", "u.user", "u.item")} == {"movielens"}


def test_dropped_sets_are_checked_as_a_whole():
    plays = inspect_file("plays.csv", b"user_id,item_id\n1,2\n")
    people = inspect_file("people.csv", b"user_id,gender\n1,F\n")
    odd = inspect_file("odd.csv", b"a,b\n1,2\n")
    assert upload_problems([plays, people], {"plays.csv": "interactions", "people.csv": "users"}) == []
    assert upload_problems([people], {"people.csv": "users"}) == [UPLOAD_NO_INTERACTIONS]
    assert upload_problems([plays, people], {"plays.csv": "users", "people.csv": "users"}) == [
        UPLOAD_TWO_ROLES.format("plays.csv", "people.csv", "users")]
    assert upload_problems([plays, odd], {"plays.csv": "interactions", "odd.csv": None}) == [
        UPLOAD_UNKNOWN_ROLE.format("odd.csv", "a, b")]
    zipped = inspect_file("ml.zip", zip_bytes({"u.data": b"1"}))
    assert upload_problems([plays, zipped], {}) == [UPLOAD_MIXED.format("plays.csv, ml.zip")]
    data, user = inspect_file("u.data", b"1\t2\t3\t4\n"), inspect_file("u.user", b"1|20|F|x|10001\n")
    assert upload_problems([data, user], {}) == [
        UPLOAD_MOVIELENS_MISSING.format("MovieLens 100K", "u.data, u.user, u.item", "u.item")]
    item = inspect_file("u.item", b"1|Film|01-Jan-1995||http://x|0\n")
    assert upload_problems([data, user, item], {}) == []


def test_missing_columns_point_to_the_mapping():
    plays = inspect_file("plays.csv", b"uid,product,rating\n1,2,5\n")
    assert plays.role == "interactions"
    (problem,) = missing_columns(plays, "interactions")
    assert problem.startswith("required column 'item_id' not found in 'plays.csv' (its columns: uid, product, rating)")
    assert "Column mapping" in problem and "mapping=" not in problem
    assert missing_columns(plays, "interactions", {"product": "item_id"}) == []


def test_raw_movielens_files_load_like_the_folder(tmp_path):
    ws, sid = Workspace(tmp_path), new_session_id()
    files = {"u.data": "".join(f"{u}\t{i}\t4\t88000000{i}\n" for u in range(1, 4) for i in range(1, 4)).encode(),
             "u.user": "".join(f"{u}|30|{'MF'[u % 2]}|writer|10001\n" for u in range(1, 4)).encode(),
             "u.item": "".join(f"{i}|Film {i}|01-Jan-1995||http://x|{'0|' * 18}1\n" for i in range(1, 4)).encode()}
    folder = ws.save_movielens(sid, files)
    assert ws.session_dir(sid) in folder.parents
    assert DataSource("folder", path=str(folder)).load().summary() == {"n_users": 3, "n_items": 3, "n_interactions": 9}


def test_session_datasets_are_remembered_for_a_reload(tmp_path):
    ws, sid = Workspace(tmp_path), new_session_id()
    path = ws.save_upload(sid, "plays.csv", b"user_id,item_id\nu1,i1\n")
    source = DataSource("files", files={"interactions": str(path)}, name="plays.csv")
    ws.save_datasets(sid, {"upload · plays.csv": source.to_dict(), "elsewhere": {"source": "folder", "path": "/"}})
    restored = ws.load_datasets(sid)
    assert list(restored) == ["upload · plays.csv"] and DataSource.from_dict(restored["upload · plays.csv"]) == source
    path.unlink()  # files gone (session pruned): nothing to restore
    assert ws.load_datasets(sid) == {} and ws.load_datasets(new_session_id()) == {}


# ---- presets, names, choices, leaderboard ----------------------------------------------------------
def test_presets_are_data_on_top_of_the_defaults():
    standard = preset_params("llm", "standard")
    assert standard == create_model("llm").get_params()
    assert preset_params("llm", "quick")["epochs"] < standard["epochs"] < preset_params("llm", "thorough")["epochs"]
    assert settings_name("llm", preset_params("llm", "thorough")) == "thorough"
    assert settings_name("mf", {**preset_params("mf"), "factors": 3}) == "factors=3"


def test_hyper_parameter_choices_come_from_the_data(tiny_dataset):
    choices = param_choices("llm", tiny_dataset)
    assert choices["exposure_attribute"] == ("provider",)  # built directly: no derived popularity_tier
    assert {"provider", "popularity_tier"} <= set(param_choices("llm", load_sample())["exposure_attribute"])
    assert "gender" in choices["fairness_attribute"] and "user_id" not in choices["fairness_attribute"]
    assert choices["device"][:2] == ("auto", "cpu") and choices["pooling"] == ("sqrt", "mean")
    no_provider = tiny_dataset.items.drop(columns="provider")
    from dataclasses import replace as dc_replace

    assert "provider" not in param_choices("llm", dc_replace(tiny_dataset, items=no_provider))["exposure_attribute"]
    helps = param_help("llm")
    assert "Adam" in helps["epochs"] and "Size of the user and item vectors" in helps["dim"]


def test_model_labels_are_readable_and_unique(tmp_path):
    ws = Workspace(tmp_path)
    for name, params in (("mf-f-1", {"factors": 3}), ("mf-f-2", {"factors": 3, "seed": 0}), ("mf-f-3", {})):
        folder = ws.models_dir / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"kind": "mf", "data_fingerprint": "f", "params": params}))
        write_model_info(folder, {"data_name": "plays.csv", "trained_at": 1_700_000_000.0})
    labels = [m.label for m in ws.saved_models("f")]
    assert len(set(labels)) == 3 and all(" · plays.csv · " in label for label in labels)
    assert sum(label.startswith("mf-standard · plays.csv · ") for label in labels) == 1
    assert {label.split(" · ")[0] for label in labels} == {"mf-standard", "mf-factors=3-1", "mf-factors=3-2"}
    bundled = SavedModel(Path("x"), "llm", {}, "f", 0.0, {"data_name": "sample_data", "bundled": True})
    assert bundled.label == "llm-standard · sample_data · bundled"


def test_the_sample_ships_ready_models_listed_for_it():
    sample = load_sample()
    found = Workspace(Path("/nonexistent"), bundled=(SAMPLE_MODELS_DIR,)).saved_models(sample.fingerprint())
    assert {m.kind for m in found} >= {"popularity", "llm"} and found[0].kind == "llm"
    for saved in found:
        model = load_model(saved.path, sample)  # checksums and data verified: the format still loads
        assert saved.label.endswith(" · sample_data · bundled")
        assert model.kind == saved.kind
    assert Workspace(Path("/nonexistent"), bundled=(SAMPLE_MODELS_DIR,)).saved_models("other") == []


def test_leaderboard_measures_against_popularity():
    sample = load_sample()  # enough test users for the reverse of popularity to be clearly worse
    split = make_split(sample, "random", seed=0)
    popularity = create_model("popularity").fit(sample, split)
    counts = np.bincount(pd.Categorical(split.train["item_id"], categories=popularity.item_ids_).codes,
                         minlength=len(popularity.item_ids_)).astype(float)

    def unpopular(users, items):  # the reverse of popularity: clearly worse on the holdout
        return np.tile(-counts, (len(users), 1))

    worse = ExternalRecommender(unpopular, name="unpopular").fit(sample, split)
    table, warnings = leaderboard({"same": popularity, "worse": worse}, sample, split, k=5, rounds=200,
                                  info={"same": {"fit_s": 0.5}})  # fmt: skip
    rows = table.set_index("model")
    assert rows.loc["same", "vs_baseline"] == 0 and rows.loc["same", "ndcg"] == rows.loc["popularity (reference)", "ndcg"]
    assert rows.loc["same", "fit_s"] == 0.5
    assert rows.loc["worse", "vs_baseline_ci_high"] < 0 and list(table["model"])[-1] == "worse"
    assert len(warnings) == 1 and warnings[0].startswith("worse ranks worse than the popularity baseline")


# ---- jobs in a worker process ----------------------------------------------------------------------
TINY_INTERACTIONS = "user_id,item_id,rating\n" + "".join(
    f"u{u},i{(u * 3 + j) % 12},4\n" for u in range(12) for j in range(5))  # fmt: skip


@pytest.fixture
def tiny_source(tmp_path) -> dict:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "interactions.csv").write_text(TINY_INTERACTIONS)
    (tmp_path / "data" / "users.csv").write_text("user_id,gender\n" + "".join(f"u{u},{'FM'[u % 2]}\n" for u in range(12)))
    return DataSource("folder", path=str(tmp_path / "data")).to_dict()


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_CEILING_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_job_threads():
    assert [job_threads(2, n) for n in (0, 1, 2, 5)] == [2, 2, 1, 1]
    with pytest.raises(ValueError):
        job_threads(0, 0)


# Slow (~10-20 s): starts worker processes (each imports torch).
@pytest.mark.slow
def test_a_training_job_runs_in_a_worker_and_saves_with_its_info(tmp_path, tiny_source):
    out = tmp_path / "ws" / "models" / "mf"
    job = start_training(tmp_path / "ws", kind="mf", params={"factors": 4, "iterations": 3}, data=tiny_source,
                         out_dir=out, session="s1", label="mf-test", threads=1,
                         info={"data_name": "data", "settings": "factors=4"})  # fmt: skip
    assert job.wait(WAIT_CEILING_S) == "done", (job.error, (job.folder / "worker.log").read_text()[-2000:])
    state = job.state()
    assert state["pid"] != os.getpid() and state["phase"] == "saving" and state["epoch"] == state["n_epochs"] == 3
    assert len(job.losses) == 3 and job.time_left_s is None and job.describe() == "done"
    info = json.loads((out / "dashboard.json").read_text())
    assert info["data_name"] == "data" and info["fit_s"] >= 0 and info["threads"] == 1
    dataset = DataSource.from_dict(tiny_source).load()
    direct = create_model("mf", factors=4, iterations=3).fit(dataset, make_split(dataset, "random", seed=0))
    np.testing.assert_allclose(load_model(out, dataset).score(["u0"]), direct.score(["u0"]), rtol=1e-5, atol=1e-6)
    # The job list lives in the workspace: a new handle (a reloaded page) finds it, per session.
    assert [j.id for j in list_jobs(tmp_path / "ws", session="s1")] == [job.id]
    assert list_jobs(tmp_path / "ws", session="s2") == [] and get_job(tmp_path / "ws", job.id).status == "done"
    with pytest.raises(KeyError):
        get_job(tmp_path / "ws", "../x")


@pytest.mark.slow
def test_cancel_terminates_the_worker_and_saves_nothing(tmp_path, tiny_source):
    root = tmp_path / "ws"
    job = start_training(root, kind="mf", params={"factors": 4, "iterations": 1_000_000}, data=tiny_source,
                         out_dir=root / "models" / "mf", threads=2)  # fmt: skip
    _wait_for(lambda: job.state().get("epoch", 0) >= 2, "two epochs")
    assert job.latest.epoch >= 2 and job.time_left_s > 0 and job.describe().startswith("epoch ")
    second = start_training(root, kind="mf", params={"factors": 4, "iterations": 1_000_000}, data=tiny_source,
                            out_dir=root / "models" / "mf2", threads=2)  # fmt: skip
    # Two jobs running: each is told to use one thread.
    assert json.loads((job.folder / "control.json").read_text()) == {"threads": 1}
    assert json.loads((second.folder / "control.json").read_text()) == {"threads": 1}
    pid = job.state()["pid"]
    job.cancel()
    second.cancel()
    assert job.status == "cancelled" and job.error == "cancelled by the analyst while training"
    assert second.status == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (root / "models").exists() or not any((root / "models").iterdir())


@pytest.mark.slow
def test_cancel_stops_the_text_encoding_phase(tmp_path, monkeypatch):
    """An LLM job reports encoding n/N with a rate, and Cancel ends it there (not at an epoch boundary)."""
    monkeypatch.setenv("FAIRAUDIT_CACHE", str(tmp_path / "cache"))  # nothing cached: the texts must be encoded
    n_items = 3000
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "interactions.csv").write_text("user_id,item_id\n" + "".join(
        f"u{u},i{(u * 7 + j) % n_items}\n" for u in range(50) for j in range(5)))  # fmt: skip
    (folder / "items.csv").write_text("item_id,title\n" + "".join(
        f"i{j},A long enough title number {j} about things\n" for j in range(n_items)))  # fmt: skip
    root = tmp_path / "ws"
    job = start_training(root, kind="llm", params={"epochs": 1}, data=DataSource("folder", path=str(folder)).to_dict(),
                         out_dir=root / "models" / "llm", threads=1)  # fmt: skip
    _wait_for(lambda: job.state().get("done", 0) > 0 or job.status != "running", "the first encoded batch")
    state = job.state()
    assert state["phase"] == "encoding" and state["total"] == n_items and state["rate"] > 0, state
    assert job.describe().startswith("encoding item texts ") and f"/{n_items:,}" in job.describe()
    job.cancel()
    assert job.status == "cancelled" and job.error == "cancelled by the analyst while encoding"
    assert not (root / "models").exists()


def test_a_job_whose_worker_vanished_is_failed(tmp_path):
    folder = tmp_path / "jobs" / "0123456789abcdef0123456789abcdef"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"created_at": time.time() - 3600, "pid": 2**22 + 12345}))
    (folder / "state.json").write_text(json.dumps({"status": "running", "phase": "training"}))
    job = Job(folder)
    assert job.status == "failed" and job.error == WORKER_LOST
    assert json.loads((folder / "state.json").read_text())["status"] == "failed"  # recorded once


def test_audit_cache_keys_follow_data_models_config_and_code(tmp_path):
    from fairaudit.workspace import audit_cache_key, audit_code_fingerprint, cached_audit_dir

    key = audit_cache_key("data", [("llm", "w1-c1")], {"k": 10})
    assert key == audit_cache_key("data", [("llm", "w1-c1")], {"k": 10})
    others = {audit_cache_key("other", [("llm", "w1-c1")], {"k": 10}),
              audit_cache_key("data", [("llm", "w2-c1")], {"k": 10}),
              audit_cache_key("data", [("llm", "w1-c1")], {"k": 20})}  # fmt: skip
    assert key not in others and len(others) == 3
    assert len(audit_code_fingerprint()) == 16
    ws = Workspace(tmp_path)
    assert cached_audit_dir(ws, key) is None
    (ws.root / "audit_cache" / key).mkdir(parents=True)
    (ws.root / "audit_cache" / key / "audit.json").write_text("{}")
    assert cached_audit_dir(ws, key) == ws.root / "audit_cache" / key


# ---- audits, sweeps and PDFs as jobs ---------------------------------------------------------------
def _saved_popularity(tmp_path, tiny_source) -> tuple[object, list]:
    """The tiny dataset and [[label, folder]] of a popularity model fitted on its dashboard split."""
    dataset = DataSource.from_dict(tiny_source).load()
    folder = tmp_path / "models" / "popularity"
    create_model("popularity").fit(dataset, make_split(dataset, "random", seed=0)).save(folder)
    return dataset, [["popularity", str(folder)]]


def _audit_spec(tiny_source, models, rounds: int = 50) -> dict:
    from fairaudit.audit import AuditConfig

    config = AuditConfig(k=5, attributes=("gender",), bootstrap_rounds=rounds).to_dict()
    return {"data": tiny_source, "models": models, "config": json.loads(json.dumps(config))}


def _same_audit(out, dataset, models, spec) -> None:
    """The job's audit folder holds exactly what fairaudit.service.audit_models computes in this process."""
    from fairaudit.audit import AuditConfig, AuditResult
    from fairaudit.service import audit_models

    direct = audit_models(dataset, {label: load_model(folder, dataset) for label, folder in models},
                          AuditConfig.from_dict(spec["config"]))  # fmt: skip
    written = AuditResult.read(out)
    assert written.meta["audit_id"] == direct.meta["audit_id"]
    pd.testing.assert_frame_equal(written.group_metrics.reset_index(drop=True),
                                  direct.group_metrics.reset_index(drop=True), check_dtype=False)  # fmt: skip


def test_an_inline_audit_job_runs_the_services_audit_in_this_process(tmp_path, tiny_source, monkeypatch):
    from fairaudit.workspace import find_job, start_job

    monkeypatch.setenv("FAIRAUDIT_INLINE_JOBS", "audit")
    dataset, models = _saved_popularity(tmp_path, tiny_source)
    spec, root = _audit_spec(tiny_source, models), tmp_path / "ws"
    job = start_job(root, "audit", spec, out_dir=root / "audit_cache" / "k1", session="s1", key="k1", threads=1)
    state = job.state()  # finished before start_job returned, by this process, through the worker's runner
    assert state["status"] == "done" and state["pid"] == os.getpid() and state["phase"] == "saving", state
    assert find_job(root, "k1").id == job.id and find_job(root, "k2") is None
    _same_audit(root / "audit_cache" / "k1", dataset, models, spec)
    bad = start_job(root, "audit", {**spec, "models": [["gone", str(tmp_path / "nowhere")]]},
                    out_dir=root / "audit_cache" / "k3", key="k3", threads=1)  # fmt: skip
    assert bad.status == "failed" and "nowhere" in bad.error and not bad.error.startswith("ModelFolderError")
    with pytest.raises(ValueError, match="unknown job kind 'nap'"):
        start_job(root, "nap", {}, out_dir=root / "x")


def test_an_inline_report_job_builds_the_pdf_of_an_audit_folder(tmp_path, tiny_source, monkeypatch):
    from fairaudit.audit import AuditResult
    from fairaudit.workspace import start_job

    monkeypatch.setenv("FAIRAUDIT_INLINE_JOBS", "audit,report")
    _, models = _saved_popularity(tmp_path, tiny_source)
    root = tmp_path / "ws"
    start_job(root, "audit", _audit_spec(tiny_source, models), out_dir=root / "audit_cache" / "k1", threads=1)
    out = root / "sessions" / "s1" / "audits" / "a1"
    job = start_job(root, "report", {"audit": str(root / "audit_cache" / "k1"),
                                     "options": {"title": "Tiny", "paper": "A4", "charts": False}},
                    out_dir=out, threads=1)  # fmt: skip
    assert job.status == "done", job.error
    assert job.state()["phase"] == "building the PDF" and (out / "audit.pdf").read_bytes().startswith(b"%PDF")
    assert AuditResult.read(out).meta["audit_id"] == AuditResult.read(root / "audit_cache" / "k1").meta["audit_id"]


def test_a_sweep_job_writes_its_folder_whole_or_not_at_all(tmp_path, monkeypatch):
    """Like every result folder, a sweep's appears complete (its table and point models) or not at all: the
    Compare page takes a folder that exists for a finished sweep, also after a sweep that failed midway."""
    import fairaudit.sweep
    from fairaudit.workspace import start_job

    monkeypatch.setenv("FAIRAUDIT_INLINE_JOBS", "sweep")
    root = tmp_path / "ws"
    request = {"mitigation": "rerank_exposure", "strengths": [0.0, 1.0], "k": 5, "attribute": "gender",
               "metric": "ndcg", "item_attribute": "popularity_tier", "rounds": 20}  # fmt: skip
    spec = {"data": DataSource("sample").to_dict(), "model": str(ROOT / "sample_data" / "models" / "popularity-standard"),
            "request": request}  # fmt: skip
    job = start_job(root, "sweep", spec, out_dir=root / "sweeps" / "s1", threads=1)
    assert job.status == "done", job.error
    assert sorted(p.name for p in (root / "sweeps").iterdir()) == ["s1"]  # no temporary folder left beside it
    table = pd.read_csv(root / "sweeps" / "s1" / fairaudit.sweep.SWEEP_FILE)
    assert len(table) == 2 and all((root / "sweeps" / "s1" / d / "config.json").is_file() for d in table["model_dir"])

    audits = []
    real_audit = fairaudit.sweep.run_audit

    def second_audit_fails(*args, **kwargs):  # the first point is fitted, audited and saved; the second fails
        audits.append(1)
        if len(audits) == 2:
            raise ValueError("the second point failed")
        return real_audit(*args, **kwargs)

    monkeypatch.setattr(fairaudit.sweep, "run_audit", second_audit_fails)
    failed = start_job(root, "sweep", spec, out_dir=root / "sweeps" / "s2", threads=1)
    assert failed.status == "failed" and "the second point failed" in failed.error and len(audits) == 2
    assert sorted(p.name for p in (root / "sweeps").iterdir()) == ["s1"]


# Slow (~10-20 s): worker processes, each importing torch.
def test_a_status_line_is_written_at_once(tmp_path):
    """A step's line reaches ``state.json`` when the step starts, not at the next throttled write: a step can
    take minutes (group statistics of a large audit), and the page shows its line meanwhile."""
    from fairaudit.workspace._worker import _Reporter

    report = _Reporter(tmp_path, control_threads=False)
    report.phase("auditing", total=3)
    report.step("recommending")
    report.step("group statistics")  # well within WRITE_EVERY_S of the line before
    state = json.loads((tmp_path / "state.json").read_text())
    assert (state["done"], state["total"], state["message"]) == (1, 3, "group statistics")


@pytest.mark.slow
def test_an_audit_job_runs_in_a_worker_and_cancel_ends_it(tmp_path, tiny_source, monkeypatch):
    from fairaudit.workspace import start_job

    monkeypatch.delenv("FAIRAUDIT_INLINE_JOBS", raising=False)
    dataset, models = _saved_popularity(tmp_path, tiny_source)
    spec, root = _audit_spec(tiny_source, models), tmp_path / "ws"
    job = start_job(root, "audit", spec, out_dir=root / "audit_cache" / "k1", label="audit of popularity", threads=1)
    assert job.wait(WAIT_CEILING_S) == "done", (job.error, (job.folder / "worker.log").read_text()[-2000:])
    state = job.state()
    # Progress per phase: one status line per audit step (recommending, group statistics, exposure).
    assert state["pid"] != os.getpid() and state["phase"] == "saving" and "done" not in state, state
    _same_audit(root / "audit_cache" / "k1", dataset, models, spec)
    # A long audit (many bootstrap rounds) is cancelled mid-phase: the worker ends, nothing is written.
    slow = start_job(root, "audit", _audit_spec(tiny_source, models, rounds=10_000_000),
                     out_dir=root / "audit_cache" / "k2", threads=1)  # fmt: skip
    _wait_for(lambda: slow.state().get("phase") == "auditing" or slow.status != "running", "the audit phase")
    _wait_for(lambda: slow.state().get("done", 0) >= 1 or slow.status != "running", "the group statistics step")
    assert slow.status == "running", slow.error
    # e.g. "auditing 1/3 · popularity: group statistics (10000000 rounds) · ~20 s left"
    assert slow.describe().startswith(("auditing 1/3 · popularity: ", "auditing 2/3 · popularity: ")), slow.describe()
    pid = slow.state()["pid"]
    slow.cancel()
    assert slow.status == "cancelled" and slow.error == "cancelled by the analyst while auditing"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (root / "audit_cache" / "k2").exists()


@pytest.mark.slow
def test_the_worker_is_niced_in_the_servers_session(tmp_path, tiny_source, monkeypatch):
    """Nice 19 and SCHED_IDLE, in its own process group but the server's session: with autogroups, nice only ranks the
    processes of one session, so a worker in a session of its own would compete with the server as an equal."""
    monkeypatch.delenv("FAIRAUDIT_INLINE_JOBS", raising=False)
    root = tmp_path / "ws"
    job = start_training(root, kind="mf", params={"factors": 4, "iterations": 1_000_000}, data=tiny_source,
                         out_dir=root / "models" / "mf", threads=1)  # fmt: skip
    _wait_for(lambda: job.state().get("epoch", 0) >= 1 or job.status != "running", "the first epoch")
    pid = job.state()["pid"]
    try:
        assert os.getsid(pid) == os.getsid(0) and os.getpgid(pid) == pid != os.getpgid(0)
        assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16]) == 19  # the nice field
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE  # runs on CPU time the server does not want
    finally:
        job.cancel()
