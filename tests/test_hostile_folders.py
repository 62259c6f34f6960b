"""Hostile input to what FairAudit writes and reads back: CSV formula injection through every writer,
edited model folders, overwrites and concurrent writers, hostile zip uploads, and markdown in page text.

Every case asserts a clear message naming the culprit (no traceback), and that nothing outside the
intended output changed. See ``docs/input_validation.md``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from audit_fixture import analysis_tables, write_audit_folder, write_optional_explanations
from fairaudit.audit import TABLES, read_audit, write_audit
from fairaudit.cli import EXIT_DATA, EXIT_INTERRUPTED, EXIT_USAGE, main
from fairaudit.compare import add_comparison
from fairaudit.data import (
    FORMULA_PREFIXES,
    OutputError,
    OutputLockedError,
    csv_bytes,
    random_holdout,
    read_csv,
    write_csv,
)
from fairaudit.data._output import lock_path
from fairaudit.models import ModelFolderError, config_checksum, create_model, load_model
from fairaudit.models._base import CONFIG_FILE, WEIGHTS_FILE
from fairaudit.workspace import (
    MAX_ZIP_MEMBERS,
    ZIP_CORRUPT,
    ZIP_ENCRYPTED,
    ZIP_METHOD,
    ZIP_TOO_MANY,
    ZIP_UNSAFE_LINK,
    ZIP_UNSAFE_PATH,
    Workspace,
    new_session_id,
    zip_folder,
)
from tests.conftest import WAIT_CEILING_S, make_tiny_dataset, zip_bytes
from tests.test_app import finish_training, texts

ROOT = Path(__file__).resolve().parents[1]

#: Cells a spreadsheet would run as formulas (OWASP CSV injection), plus the escape character itself.
PAYLOADS = [
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example","click")',
    "+1+2",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "'=already escaped",
    "'",
]
PAYLOAD_IDS = ["cmd", "at_sum", "hyperlink", "plus", "minus", "tab", "cr", "apostrophe_formula", "apostrophe"]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def dangerous_cells(content: bytes | str) -> list[str]:
    """Cells of a CSV that a spreadsheet would read as a formula (numbers such as -0.5 are fine)."""
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    rows = csv.reader(io.StringIO(text, newline=""))
    return [cell for row in rows for cell in row if cell.startswith(FORMULA_PREFIXES) and not _is_number(cell)]


def no_traceback(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out, captured.err
    return captured.err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> content), to prove nothing was touched."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    """Temporary siblings a write left behind (``.<name>.tmp-*``, ``.old-*``, ``.partial-*``)."""
    return sorted(p.name for p in parent.iterdir() if any(t in p.name for t in (".tmp-", ".old-", ".partial-")))


# ---- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full_audit(tmp_path_factory):
    """An audit result holding every CSV table (comparison, verdicts, probes, drivers, decomposition, analyses)."""
    folder = write_audit_folder(tmp_path_factory.mktemp("hostile_audit"), n_users=80)
    write_optional_explanations(folder)
    result = add_comparison(read_audit(folder))
    decomposition = pd.DataFrame({
        "model": "llm", "metric": "ndcg", "attribute": "gender", "group": ["F", "M"], "reference": "rest",
        "feature": ["gender=F", "n_interactions"], "role": ["own attribute", "behaviour"],
        "contribution": [-0.1 / 3, 0.2 / 7], "predicted_gap": -0.05, "observed_gap": -0.0612345678901234,
        "n_users": 40,
    })  # fmt: skip
    return dataclasses.replace(result, gap_decomposition=decomposition, explanations={"seed": 0}, **analysis_tables())


def _data_folder(path: Path, *, gender: str | None = None, user: str | None = None, item: str | None = None,
                 n_users: int = 40) -> Path:
    """The tiny dataset as CSV files; ``gender``/``user``/``item`` replace a value with a hostile string."""
    data = make_tiny_dataset(n_users=n_users)
    users, interactions, items = data.users.copy(), data.interactions.copy(), data.items.copy()
    if gender is not None:
        users["gender"] = users["gender"].replace({"F": gender})
    if user is not None:
        users["user_id"] = users["user_id"].replace({"u0": user})
        interactions["user_id"] = interactions["user_id"].replace({"u0": user})
    if item is not None:
        items["item_id"] = items["item_id"].replace({"i0": item})
        interactions["item_id"] = interactions["item_id"].replace({"i0": item})
    path.mkdir(parents=True, exist_ok=True)
    interactions.to_csv(path / "interactions.csv", index=False)
    users.to_csv(path / "users.csv", index=False)
    items.to_csv(path / "items.csv", index=False)
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return _data_folder(tmp_path_factory.mktemp("hostile_data") / "data")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, data_dir) -> Path:
    """A popularity model trained on ``data_dir`` through the CLI."""
    out = tmp_path_factory.mktemp("hostile_model") / "pop"
    assert main(["train", "--data", str(data_dir), "--model", "popularity", "--out", str(out)]) == 0
    return out


# ==== 1. CSV injection ======================================================================
def _poison(frame: pd.DataFrame, text_columns: tuple[str, ...], payload: str) -> pd.DataFrame:
    """``frame`` with the first row's value of every text column replaced by ``payload`` + column name."""
    frame = frame.copy()
    for column in text_columns:
        if column in frame.columns and len(frame):
            values = frame[column].astype(object).tolist()
            values[0] = payload + column
            frame[column] = pd.Series(values, index=frame.index, dtype=object)
    return frame


CSV_TABLES = [name for name, schema in TABLES.items() if schema.file.endswith(".csv")]


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
def test_audit_folder_csvs_are_safe_and_read_back_exactly(full_audit, tmp_path, payload):
    poisoned = dataclasses.replace(
        full_audit, **{name: _poison(getattr(full_audit, name), TABLES[name].text, payload) for name in CSV_TABLES}
    )
    folder = write_audit(poisoned, tmp_path / "audit")
    back = read_audit(folder)
    for name in CSV_TABLES:
        raw = (folder / TABLES[name].file).read_bytes()
        assert dangerous_cells(raw) == [], (name, dangerous_cells(raw)[:3])
        written = getattr(poisoned, name)
        for column in (c for c in TABLES[name].text if c in written.columns):
            assert back.__getattribute__(name)[column].tolist() == written[column].astype(str).tolist(), (name, column)
    # The zip download of the folder holds the same safe files.
    archive = zipfile.ZipFile(io.BytesIO(zip_folder(folder)))
    for member in (m for m in archive.namelist() if m.endswith(".csv")):
        assert dangerous_cells(archive.read(member)) == [], member


@pytest.mark.parametrize("payload", PAYLOADS[:5], ids=PAYLOAD_IDS[:5])
def test_recommend_csv_is_safe_and_reads_back(tmp_path, capsys, payload):
    data = _data_folder(tmp_path / "data", user=payload + "u", item=payload + "i")
    model = tmp_path / "model"
    assert main(["train", "--data", str(data), "--model", "popularity", "--out", str(model)]) == 0
    out = tmp_path / "recs.csv"
    assert main(["recommend", "--model", str(model), "--data", str(data), "--out", str(out), "--k", "5"]) == 0
    no_traceback(capsys)
    assert dangerous_cells(out.read_bytes()) == []
    back = read_csv(out, dtype={"user_id": str, "item_id": str}, keep_default_na=False)
    assert payload + "u" in set(back["user_id"]) and payload + "i" in set(back["item_id"])


@pytest.mark.parametrize("payload", PAYLOADS[:4], ids=PAYLOAD_IDS[:4])
def test_probe_csv_is_safe_and_reads_back(tmp_path, capsys, payload):
    data = _data_folder(tmp_path / "data", gender=payload)
    model = tmp_path / "model"
    assert main(["train", "--data", str(data), "--model", "popularity", "--out", str(model)]) == 0
    out = tmp_path / "probe"
    args = ["probe", "--model", str(model), "--data", str(data), "--attribute", "gender", "--out", str(out),
            "--bootstrap", "20", "--users", "20"]  # fmt: skip
    assert main(args) == 0
    no_traceback(capsys)
    raw = (out / "probes.csv").read_bytes()
    assert dangerous_cells(raw) == []
    back = read_csv(out / "probes.csv", dtype=str, keep_default_na=False)
    assert payload in set(back["original_value"]) | set(back["counterfactual_value"])


def test_sweep_csv_is_safe(tmp_path, capsys):
    data = _data_folder(tmp_path / "data", gender=PAYLOADS[0], n_users=80)  # groups of 40: gaps are tested
    args = ["sweep", "--data", str(data), "--mitigation", "rerank_exposure", "--strengths", "0,1",
            "--base-model", "popularity", "--bootstrap", "20", "--attribute", "gender", "--out", str(tmp_path / "s")]
    assert main(args) == 0
    no_traceback(capsys)
    assert dangerous_cells((tmp_path / "s" / "sweep.csv").read_bytes()) == []


def test_compare_csvs_are_safe_and_read_back(full_audit, tmp_path, capsys):
    folder = write_audit(dataclasses.replace(full_audit, comparison=None, verdicts=None), tmp_path / "a")
    assert main(["compare", str(folder), "--rounds", "20", "--out", str(tmp_path / "cmp")]) == 0
    no_traceback(capsys)
    for file in ("comparison.csv", "verdicts.csv"):
        assert dangerous_cells((tmp_path / "cmp" / file).read_bytes()) == []
    back = read_csv(tmp_path / "cmp" / "verdicts.csv", keep_default_na=False)
    assert not back.empty and not back["verdict"].str.startswith("'").any()


@settings(max_examples=150)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12), min_size=1, max_size=6),
       st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8))
def test_fuzz_csv_writer_and_reader_round_trip_exactly(cells, column):
    assume(column != "n")  # the other column's name: a frame's columns are distinct
    frame = pd.DataFrame({"n": range(len(cells))})
    frame.insert(0, column, pd.Series(cells, dtype=object))
    raw = csv_bytes(frame)
    assert dangerous_cells(raw) == []
    back = read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    assert back.columns.tolist()[0] == column
    assert back.iloc[:, 0].tolist() == cells


@settings(max_examples=25)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10))
def test_fuzz_audit_group_names_round_trip(tmp_path_factory, full_audit, name):
    gm = full_audit.group_metrics.copy()
    gm["group"] = gm["group"].astype(object).where(gm["group"] != "F", name)
    folder = write_audit(dataclasses.replace(full_audit, group_metrics=gm), tmp_path_factory.mktemp("fuzz") / "a")
    assert dangerous_cells((folder / "group_metrics.csv").read_bytes()) == []
    assert read_audit(folder).group_metrics["group"].tolist() == gm["group"].astype(str).tolist()


def test_write_csv_refuses_a_folder_and_an_existing_file_without_overwrite(tmp_path):
    with pytest.raises(OutputError, match="is a folder"):
        write_csv(pd.DataFrame({"a": [1]}), tmp_path)
    path = write_csv(pd.DataFrame({"a": ["=1"]}), tmp_path / "t.csv")
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        write_csv(pd.DataFrame({"a": [2]}), path, overwrite=False)
    assert read_csv(path)["a"].tolist() == ["=1"]


# ==== 2. Integrity of model folders =========================================================
@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A popularity model and a re-ranker (nesting an itemknn base) saved from the tiny dataset."""
    data = make_tiny_dataset()
    split = random_holdout(data, seed=0)
    root = tmp_path_factory.mktemp("hostile_models")
    create_model("popularity").fit(data, split).save(root / "pop")
    base = create_model("itemknn").fit(data, split)
    create_model("rerank_exposure", base=base, strength=0.5).fit(data, split).save(root / "rerank")
    return root


def _edit(config: dict, path: str, value) -> None:
    keys = path.split(".")
    target = config
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value(target.get(keys[-1])) if callable(value) else value


TAMPERING = {
    "kind": ("pop", "kind", "itemknn"),
    "params": ("pop", "params.seed", 7),
    "params_new_key": ("pop", "params", lambda p: {**p, "encoder": "/tmp/evil-encoder"}),
    "encoder_path": ("pop", "encoder", "/tmp/evil-encoder"),
    "data_fingerprint": ("pop", "data_fingerprint", "0" * 16),
    "split": ("pop", "split", lambda s: {**s, "fingerprint": "x"}),
    "user_ids_truncated": ("pop", "user_ids", lambda ids: ids[:-3]),
    "item_ids_reordered": ("pop", "item_ids", lambda ids: ids[::-1]),
    "weights_sha256": ("pop", "weights_sha256", "0" * 64),
    "versions": ("pop", "versions", {"fairaudit": "9.9"}),
    "format_version": ("pop", "format_version", 3),
    "rerank_strength": ("rerank", "params.strength", 1.0),
    "rerank_base_kind": ("rerank", "base.kind", "popularity"),
    "rerank_base_params": ("rerank", "base.params", lambda p: {**p, "n_neighbours": 3}),
    "reformatted_only": ("pop", "kind", lambda k: k),  # same content, another layout: still verifies
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_every_edit_of_config_json_is_refused(saved_models, tmp_path, case):
    folder_name, path, value = TAMPERING[case]
    folder = shutil.copytree(saved_models / folder_name, tmp_path / "model")
    config = json.loads((folder / CONFIG_FILE).read_text())
    _edit(config, path, value)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    if case == "reformatted_only":  # the same content in another layout is the same config
        assert load_model(folder).kind == "popularity"
        return
    with pytest.raises(ModelFolderError) as err:
        load_model(folder)
    assert str(folder) in str(err.value) and "modified" in str(err.value)


@pytest.mark.parametrize("edit", ["flip_byte", "other_weights", "truncate"])
def test_edited_weights_are_refused(saved_models, tmp_path, edit):
    folder = shutil.copytree(saved_models / "pop", tmp_path / "model")
    weights = folder / WEIGHTS_FILE
    raw = bytearray(weights.read_bytes())
    if edit == "flip_byte":
        raw[-1] ^= 0xFF
    elif edit == "other_weights":
        raw = bytearray((saved_models / "rerank" / WEIGHTS_FILE).read_bytes())
    else:
        raw = raw[: len(raw) // 2]
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelFolderError, match="modified after FairAudit saved it") as err:
        load_model(folder)
    assert str(folder) in str(err.value) and WEIGHTS_FILE in str(err.value)


def test_folders_of_the_previous_format_are_refused_with_a_retrain_hint(saved_models, tmp_path):
    folder = shutil.copytree(saved_models / "pop", tmp_path / "old")
    config = json.loads((folder / CONFIG_FILE).read_text())
    config.pop("config_sha256")
    config["format_version"] = 1
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="cannot be verified; re-train it") as err:
        load_model(folder)
    assert str(folder) in str(err.value)


def test_a_forged_checksum_still_never_loads_code(saved_models, tmp_path):
    """Even with both checksums recomputed, the folder is read as JSON + safetensors only."""
    import pickle
    folder = shutil.copytree(saved_models / "pop", tmp_path / "forged")
    (folder / WEIGHTS_FILE).write_bytes(pickle.dumps({"x": 1}))
    config = json.loads((folder / CONFIG_FILE).read_text())
    from fairaudit.data import file_sha256

    config["weights_sha256"] = file_sha256(folder / WEIGHTS_FILE)
    config["config_sha256"] = config_checksum(config)
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="not a safetensors file"):
        load_model(folder)


@pytest.mark.parametrize("field", ["params", "user_ids", "kind", "weights"])
def test_cli_recommend_refuses_a_modified_folder(model_dir, data_dir, tmp_path, capsys, field):
    folder = shutil.copytree(model_dir, tmp_path / "model")
    if field == "weights":
        raw = bytearray((folder / WEIGHTS_FILE).read_bytes())
        raw[-1] ^= 0xFF
        (folder / WEIGHTS_FILE).write_bytes(bytes(raw))
    else:
        config = json.loads((folder / CONFIG_FILE).read_text())
        config[field] = {"params": {"seed": 5}, "user_ids": config["user_ids"][:2], "kind": "mf"}[field]
        (folder / CONFIG_FILE).write_text(json.dumps(config))
    out = tmp_path / "recs.csv"
    assert main(["recommend", "--model", str(folder), "--data", str(data_dir), "--out", str(out)]) == EXIT_DATA
    err = no_traceback(capsys)
    assert str(folder) in err and "modified" in err
    assert not out.exists()


def test_encoder_folders_without_safetensors_are_refused(tmp_path):
    from fairaudit.models import TextEncoder

    folder = tmp_path / "encoder"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(FileNotFoundError, match="never loads pickled"):
        TextEncoder(folder)


def test_encoder_loads_safetensors_only_and_no_remote_code(monkeypatch):
    import transformers

    from fairaudit.models import TextEncoder

    calls = []

    def record(name):
        def from_pretrained(path, **kwargs):
            calls.append((name, kwargs))
            raise RuntimeError("stop")

        return from_pretrained

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", record("tokenizer"))
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", record("model"))
    with pytest.raises(RuntimeError, match="stop"):
        TextEncoder(cache=False)._load()
    assert calls and all(kw.get("trust_remote_code") is False for _, kw in calls)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="stop"):
        TextEncoder(cache=False)._load()
    assert calls[-1][0] == "model" and calls[-1][1]["use_safetensors"] is True


# ==== 3. Overwrites, locks and atomic writes ================================================
@pytest.fixture
def fitted():
    data = make_tiny_dataset()
    return create_model("popularity").fit(data, random_holdout(data, seed=0))


def test_second_model_save_is_refused_without_overwrite(fitted, tmp_path):
    folder = fitted.save(tmp_path / "m")
    before = snapshot(folder)
    with pytest.raises(OutputError, match="already holds a FairAudit model folder; pass --overwrite") as err:
        fitted.save(folder)
    assert str(folder) in str(err.value) and snapshot(folder) == before
    fitted.save(folder, overwrite=True)
    assert load_model(folder).kind == "popularity" and leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no lock file left beside it


def test_second_audit_write_is_refused_without_overwrite(full_audit, tmp_path):
    folder = write_audit(full_audit, tmp_path / "a")
    (folder / "audit.pdf").write_bytes(b"%PDF-1.4 keep me")
    before = snapshot(folder)
    with pytest.raises(OutputError, match="already holds a FairAudit audit folder") as err:
        write_audit(full_audit, folder)
    assert str(folder) in str(err.value) and snapshot(folder) == before
    write_audit(dataclasses.replace(full_audit, probes=None), folder, overwrite=True)
    assert (folder / "audit.pdf").read_bytes() == b"%PDF-1.4 keep me"  # other files are kept
    assert not (folder / "probes.csv").exists() and leftovers(tmp_path) == []


def _foreign(folder: Path) -> dict[str, bytes]:
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("my thesis")
    (folder / "config.json").write_text('{"my": "app config"}')
    (folder / "sub" / "group_metrics.csv").write_text("a,b\n1,2\n")
    return snapshot(folder)


FOREIGN_WRITERS = ["model_save", "audit_write", "cli_train", "cli_audit", "cli_sweep", "run_model_path",
                   "run_output"]  # fmt: skip


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "with_overwrite"])
@pytest.mark.parametrize("writer", FOREIGN_WRITERS)
def test_non_fairaudit_folders_are_never_written(fitted, full_audit, data_dir, model_dir, tmp_path, capsys,
                                                 writer, overwrite):
    target = tmp_path / "target"
    before = _foreign(target)
    flag = ["--overwrite"] if overwrite else []
    if writer == "model_save":
        with pytest.raises(OutputError, match="is not an empty folder or a FairAudit model folder"):
            fitted.save(target, overwrite=overwrite)
    elif writer == "audit_write":
        with pytest.raises(OutputError, match="is not an empty folder or a FairAudit audit folder"):
            write_audit(full_audit, target, overwrite=overwrite)
    else:
        if writer == "cli_train":
            args = ["train", "--data", str(data_dir), "--model", "popularity", "--out", str(target)]
        elif writer == "cli_audit":
            args = ["audit", "--data", str(data_dir), "--model", str(model_dir), "--out", str(target),
                    "--bootstrap", "20", "--attributes", "gender", "--no-embeddings"]  # fmt: skip
        elif writer == "cli_sweep":
            args = ["sweep", "--data", str(data_dir), "--mitigation", "rerank_exposure", "--strengths", "0,1",
                    "--base-model", "popularity", "--bootstrap", "20", "--out", str(target)]  # fmt: skip
        else:
            config = {"data": {"path": str(data_dir)}, "models": [{"name": "pop", "kind": "popularity"}],
                      "audit": {"k": 5, "bootstrap_rounds": 20, "attributes": ["gender"],
                                "embedding_diversity": False}, "output": str(tmp_path / "run")}  # fmt: skip
            if writer == "run_model_path":
                config["models"][0]["path"] = str(target)
            else:
                config["output"] = str(tmp_path)  # OUTPUT/audit would be ... tmp_path/audit: make it foreign
                before = _foreign(tmp_path / "audit")
                target = tmp_path / "audit"
            (tmp_path / "run.yaml").write_text(json.dumps(config))
            args = ["run", str(tmp_path / "run.yaml")]
        assert main(args + flag) == EXIT_USAGE
        err = no_traceback(capsys)
        assert str(target) in err and "never writes over other content" in err
    assert snapshot(target) == before


@pytest.mark.parametrize("holder", ["thread", "process"])
@pytest.mark.parametrize("writer", ["model", "audit"])
def test_a_held_lock_refuses_the_second_writer(fitted, full_audit, tmp_path, holder, writer):
    target = tmp_path / "out"
    lock = str(lock_path(target))
    release, proc, thread = threading.Event(), None, None
    if holder == "thread":
        from filelock import FileLock

        locked = threading.Event()

        def hold():
            with FileLock(lock, thread_local=False):
                locked.set()
                release.wait(WAIT_CEILING_S)

        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        assert locked.wait(WAIT_CEILING_S)
    else:
        code = ("import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
                "print('locked', flush=True); sys.stdin.readline()")  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-c", code, lock], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
        assert proc.stdout.readline().strip() == "locked"
    try:
        with pytest.raises(OutputLockedError, match="is being written by another FairAudit process") as err:
            if writer == "model":
                fitted.save(target)
            else:
                write_audit(full_audit, target)
        assert str(target) in str(err.value)
        assert not target.exists() and leftovers(tmp_path) == []
    finally:
        release.set()
        if thread is not None:
            thread.join(WAIT_CEILING_S)
        if proc is not None:
            proc.stdin.close()
            proc.wait(WAIT_CEILING_S)
    # Once the other writer is gone, the write goes through.
    fitted.save(target) if writer == "model" else write_audit(full_audit, target)


@pytest.mark.parametrize("writer", ["model", "audit"])
def test_an_interrupted_write_leaves_the_old_folder_and_no_temporaries(fitted, full_audit, tmp_path, monkeypatch,
                                                                       writer):
    target = tmp_path / "out"
    fitted.save(target) if writer == "model" else write_audit(full_audit, target)
    before = snapshot(target)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if writer == "model":
        monkeypatch.setattr("fairaudit.models._base.save_file", interrupt)
        with pytest.raises(KeyboardInterrupt):
            fitted.save(target, overwrite=True)
    else:
        monkeypatch.setattr("fairaudit.audit._folder.csv_bytes", interrupt)
        with pytest.raises(KeyboardInterrupt):
            write_audit(full_audit, target, overwrite=True)
    assert snapshot(target) == before and leftovers(tmp_path) == []


def test_ctrl_c_during_train_leaves_no_folder(data_dir, tmp_path, monkeypatch, capsys):
    import fairaudit.cli._train as train_module

    def interrupting_printer():
        def callback(event):
            raise KeyboardInterrupt

        return callback

    monkeypatch.setattr(train_module, "progress_printer", interrupting_printer)
    out = tmp_path / "model"
    try:
        code = main(["train", "--data", str(data_dir), "--model", "mf", "--epochs", "3", "--out", str(out)])
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    assert code == EXIT_INTERRUPTED
    no_traceback(capsys)
    assert not out.exists() and leftovers(tmp_path) == []


def test_two_cli_audits_to_one_folder_do_not_both_succeed(data_dir, model_dir, tmp_path, capsys):
    out = tmp_path / "audit"
    args = ["audit", "--data", str(data_dir), "--model", str(model_dir), "--out", str(out), "--bootstrap", "20",
            "--attributes", "gender", "--no-embeddings"]  # fmt: skip
    assert main(args) == 0
    first = snapshot(out)
    assert main(args) == EXIT_USAGE
    err = no_traceback(capsys)
    assert str(out) in err and "--overwrite" in err and snapshot(out) == first
    assert main([*args, "--overwrite"]) == 0


def test_cli_train_refuses_an_existing_model_before_training(data_dir, model_dir, tmp_path, capsys, monkeypatch):
    import fairaudit.models._base as base

    folder = shutil.copytree(model_dir, tmp_path / "m")
    before = snapshot(folder)
    fits = []
    monkeypatch.setattr(base.Recommender, "fit", lambda self, *a, **k: fits.append(1) or self)
    assert main(["train", "--data", str(data_dir), "--model", "popularity", "--out", str(folder)]) == EXIT_USAGE
    err = no_traceback(capsys)
    assert str(folder) in err and "--overwrite" in err and fits == [] and snapshot(folder) == before


def _run_config(tmp_path: Path, data_dir: Path, **model) -> Path:
    config = {"data": {"path": str(data_dir)}, "models": [{"name": "pop", "kind": "popularity", **model}],
              "audit": {"k": 5, "bootstrap_rounds": 20, "attributes": ["gender"], "embedding_diversity": False},
              "output": str(tmp_path / "run")}  # fmt: skip
    (tmp_path / "run.yaml").write_text(json.dumps(config))
    return tmp_path / "run.yaml"


def test_run_refuses_to_replace_a_model_of_another_kind(data_dir, tmp_path, capsys):
    other = tmp_path / "models" / "knn"
    assert main(["train", "--data", str(data_dir), "--model", "itemknn", "--out", str(other)]) == 0
    before = snapshot(other)
    config = _run_config(tmp_path, data_dir, path=str(other))
    assert main(["run", str(config)]) == EXIT_USAGE
    err = no_traceback(capsys)
    assert str(other) in err and "--overwrite" in err and snapshot(other) == before
    assert not (tmp_path / "run" / "audit").exists()
    assert main(["run", str(config), "--overwrite"]) == 0
    assert load_model(other).kind == "popularity"


def test_run_twice_to_one_output_needs_overwrite(data_dir, tmp_path, capsys):
    config = _run_config(tmp_path, data_dir)
    assert main(["run", str(config)]) == 0
    audit = tmp_path / "run" / "audit"
    before = snapshot(audit)
    assert main(["run", str(config)]) == EXIT_USAGE
    err = no_traceback(capsys)
    assert str(audit) in err and snapshot(audit) == before
    assert main(["run", str(config), "--overwrite"]) == 0


@pytest.mark.parametrize("target", ["folder", "text_file"])
def test_report_out_refuses_a_folder_and_a_non_pdf(full_audit, tmp_path, capsys, target):
    folder = write_audit(full_audit, tmp_path / "a")
    out = tmp_path / "out"
    if target == "folder":
        out.mkdir()
        (out / "keep.txt").write_text("x")
    else:
        out.write_text("my notes")
    before = snapshot(tmp_path / "a"), (snapshot(out) if out.is_dir() else out.read_bytes())
    assert main(["report", "--audit", str(folder), "--out", str(out), "--no-charts"]) == EXIT_USAGE
    err = no_traceback(capsys)
    assert str(out) in err
    assert (snapshot(tmp_path / "a"), (snapshot(out) if out.is_dir() else out.read_bytes())) == before


@pytest.mark.parametrize("command", ["probe", "explain"])
def test_probe_and_explain_outputs_need_overwrite(model_dir, data_dir, tmp_path, capsys, command):
    out = tmp_path / "out"
    out.mkdir()
    file = out / ("probes.csv" if command == "probe" else "explanation.csv")
    file.write_text("earlier results")
    if command == "probe":
        args = ["probe", "--model", str(model_dir), "--data", str(data_dir), "--attribute", "gender",
                "--out", str(out), "--bootstrap", "20", "--users", "10"]  # fmt: skip
    else:
        args = ["explain", "--model", str(model_dir), "--data", str(data_dir), "--user", "u1", "--out", str(out)]
    assert main(args) == EXIT_USAGE
    err = no_traceback(capsys)
    assert str(file) in err and "--overwrite" in err and file.read_text() == "earlier results"


# ==== 4. Uploads ============================================================================
def _patch_all(content: bytes, old: bytes, new: bytes) -> bytes:
    assert old in content
    return content.replace(old, new)


def _bad_crc() -> bytes:
    raw = bytearray(zip_bytes({"data/interactions.csv": b"user_id,item_id\n1,2\n" * 50}))
    start = raw.index(b"user_id")  # stored member: flip a byte of its data
    raw[start] ^= 0x01
    return bytes(raw)


def _encrypted() -> bytes:
    raw = bytearray(zip_bytes({"data/interactions.csv": b"user_id,item_id\n1,2\n"}))
    # general purpose flag bit 0 (encrypted) in the local header (offset 6) and central directory (offset 8)
    local = raw.index(b"PK\x03\x04")
    central = raw.index(b"PK\x01\x02")
    raw[local + 6] |= 0x01
    raw[central + 8] |= 0x01
    return bytes(raw)


def _unsupported_method() -> bytes:
    raw = bytearray(zip_bytes({"data/interactions.csv": b"user_id,item_id\n1,2\n"}))
    local, central = raw.index(b"PK\x03\x04"), raw.index(b"PK\x01\x02")
    raw[local + 8 : local + 10] = (99).to_bytes(2, "little")  # AE-x / unknown method
    raw[central + 10 : central + 12] = (99).to_bytes(2, "little")
    return bytes(raw)


def _lying_bomb() -> bytes:
    """Deflated zeros whose headers declare 100 bytes: the real data is 200x the limit."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/interactions.csv", b"0" * 200_000)
    raw = bytearray(buffer.getvalue())
    size = (200_000).to_bytes(4, "little")
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.index(signature)
        assert raw[at + offset : at + offset + 4] == size
        raw[at + offset : at + offset + 4] = (100).to_bytes(4, "little")
    return bytes(raw)


def _symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("data/users.csv")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _too_many() -> bytes:
    return zip_bytes({f"data/f{i}.csv": b"" for i in range(MAX_ZIP_MEMBERS + 1)})


ZIP_CASES = {
    "bad_crc": (_bad_crc, ZIP_CORRUPT.split("'")[2].split("(")[0].strip()),
    "encrypted": (_encrypted, ZIP_ENCRYPTED.split("'")[2].split("(")[0].strip()),
    "unsupported_method": (_unsupported_method, "compression method FairAudit cannot unpack"),
    "lying_bomb": (_lying_bomb, "cannot be unpacked"),
    "too_many_members": (_too_many, ZIP_TOO_MANY.split("'")[2].split("{")[0].strip()),
    "traversal": (lambda: zip_bytes({"../evil.csv": b"x"}), "unsafe path '../evil.csv'"),
    "nested_traversal": (lambda: zip_bytes({"data/../../evil.csv": b"x"}), "unsafe path"),
    "absolute": (lambda: zip_bytes({"/tmp/evil.csv": b"x"}), "unsafe path '/tmp/evil.csv'"),
    "drive_letter": (lambda: zip_bytes({"C:/evil.csv": b"x"}), "unsafe path"),
    "backslash": (lambda: zip_bytes({"..\\evil.csv": b"x"}), "unsafe path"),
    "symlink": (_symlink, ZIP_UNSAFE_LINK.split("'")[2].strip()),
    "not_a_zip": (lambda: b"PK\x03\x04 not really a zip", "is not a readable zip archive"),
    "truncated": (lambda: zip_bytes({"data/a.csv": b"x" * 1000})[:-30], "is not a readable zip archive"),
    "empty": (lambda: b"", "is not a readable zip archive"),
}


@pytest.mark.parametrize("case", list(ZIP_CASES))
def test_hostile_zips_give_a_clear_message_and_leave_nothing(tmp_path, case):
    build, message = ZIP_CASES[case]
    ws, sid = Workspace(tmp_path / "ws"), new_session_id()
    with pytest.raises(ValueError) as err:
        ws.extract_zip(sid, "upload.zip", build(), max_bytes=10_000)
    assert "'upload.zip'" in str(err.value) and message in str(err.value), str(err.value)
    uploads = ws.session_dir(sid) / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert not (tmp_path / "evil.csv").exists() and not (tmp_path / "ws" / "evil.csv").exists()


def test_the_size_limit_holds_while_streaming_even_when_headers_pass(tmp_path, monkeypatch):
    """Bytes really unpacked are counted: with the header checks skipped, the limit still holds."""
    import fairaudit.workspace._uploads as uploads

    monkeypatch.setattr(uploads, "_check_members", lambda *args: None)
    ws, sid = Workspace(tmp_path / "ws"), new_session_id()
    with pytest.raises(ValueError, match="unpacks to more than 10,000 bytes"):
        ws.extract_zip(sid, "big.zip", zip_bytes({"d/a.csv": b"x" * 8_000, "d/b.csv": b"y" * 8_000}), max_bytes=10_000)
    uploads_dir = ws.session_dir(sid) / "uploads"
    assert not uploads_dir.exists() or list(uploads_dir.iterdir()) == []


def test_a_good_zip_still_unpacks(tmp_path):
    ws, sid = Workspace(tmp_path / "ws"), new_session_id()
    folder = ws.extract_zip(sid, "ok.zip", zip_bytes({"data/interactions.csv": b"user_id,item_id\n1,2\n"}))
    assert folder.name == "data" and (folder / "interactions.csv").is_file()
    assert leftovers(folder.parent.parent) == []


def test_unsafe_path_message_is_the_constant(tmp_path):
    ws, sid = Workspace(tmp_path / "ws"), new_session_id()
    with pytest.raises(ValueError, match=re.escape(ZIP_UNSAFE_PATH.format("u.zip", "../x"))):
        ws.extract_zip(sid, "u.zip", zip_bytes({"../x": b"1"}))
    assert ZIP_METHOD.format("u.zip", "m", 99).startswith("'u.zip'")


# ==== 5. Markdown in page text ==============================================================
MARKDOWN_PAYLOADS = [
    "[click me](http://evil.example)",
    "![img](http://evil.example/x.png)",
    "<img src=x onerror=alert(1)>",
    "**bold** _it_",
    "# Heading",
    "- list item",
    "`code`",
    "$x^2$",
    ":red[alarm]",
    "<http://evil.example>",
    "line1\n\n[second](http://evil.example)",
    "back\\slash [x](y)",
]


@pytest.mark.parametrize("text", MARKDOWN_PAYLOADS)
def test_md_shows_text_literally(text):
    from pages._state import md

    html = MarkdownIt("commonmark").render(md(text))
    for tag in ("<a ", "<img", "<strong", "<em", "<h1", "<li", "<code", "<p><img"):
        assert tag not in html, (text, html)
    plain = html.replace("<p>", "").replace("</p>", "").replace("<br />", "").replace("\n", "")
    import html as html_module

    assert html_module.unescape(plain) == text.replace("\n", "")


def test_audit_page_shows_a_link_like_group_name_as_text(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FAIRAUDIT_WORKSPACE", str(tmp_path / "ws"))
    hostile = "[click](http://evil.example)"
    interactions = "user_id,item_id,rating\n" + "".join(
        f"u{u},i{(u * 3 + j) % 12},4\n" for u in range(24) for j in range(5)
    )
    users = "user_id,gender\n" + "".join(f"u{u},{hostile if u % 3 == 0 else 'M'}\n" for u in range(24))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=WAIT_CEILING_S)
    at.run()
    at.session_state["audit_rounds"] = 50
    at.switch_page("pages/data.py").run()
    at.file_uploader(key="upload_files").set_value(
        [(f"{role}.csv", content.encode(), "text/csv") for role, content in (("interactions", interactions), ("users", users))])
    at.run()
    at.button(key="load_upload").click().run()
    assert not at.exception
    at.switch_page("pages/model.py").run()
    at.selectbox(key="train_kind").select("popularity").run()
    at.button(key="train").click().run()
    finish_training(at)
    assert any("Trained and saved" in s for s in texts(at.success))
    at.switch_page("pages/audit.py").run()
    assert not at.exception, at.exception
    shown = [e.value for kind in ("markdown", "caption", "warning", "error", "info", "success")
             for e in at.get(kind)]  # fmt: skip
    assert any("evil" in text for text in shown), "the group name is shown on the page"
    for text in shown:
        html = MarkdownIt("commonmark").render(str(text))
        assert "<a " not in html and "](http" not in text, text
