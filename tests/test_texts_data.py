"""User texts (issue 22): the fourth table's validation, the sample's planted texts and their control, uploads, CLI."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from fairaudit.cli import main
from fairaudit.data import (
    GENDER_MARKER_PAIRS,
    MAX_TEXT_CHARS,
    DataError,
    generate_sample,
    load_dataset,
    load_sample,
    load_tables,
    text_summary,
    texts_per_user,
)
from fairaudit.data import _texts as T
from fairaudit.data import _validate as V
from fairaudit.data._synth_texts import MARKER_SHARE, MARKERS
from fairaudit.service import DataSource
from fairaudit.workspace import guess_role, unpack_zip
from tests.test_app import start, workspace  # noqa: F401  (the Data page's AppTest helpers)

INTER = b"user_id,item_id\nu1,i1\nu1,i2\nu2,i1\n"
USERS = b"user_id,gender\nu1,F\nu2,M\nu3,F\n"
ITEMS = b"item_id,title\ni1,One\ni2,Two\n"
SMALL = dict(n_users=200, n_items=80, n_interactions=4000)


def _folder(tmp_path, texts: bytes, name: str = "user_texts.csv"):
    for file, content in (("interactions.csv", INTER), ("users.csv", USERS), ("items.csv", ITEMS), (name, texts)):
        (tmp_path / file).write_bytes(content)
    return tmp_path


def _issue(dataset_or_error, message: str):
    issues = dataset_or_error.issues if isinstance(dataset_or_error, DataError) else dataset_or_error.warnings
    found = [i for i in issues if i.message == message]
    assert found, [str(i) for i in issues]
    return found[0]


# ---- validation at the boundary ------------------------------------------------------------
def test_folder_texts_are_loaded_typed_and_do_not_change_the_fingerprint(tmp_path):
    folder = _folder(tmp_path, b"user_id,text,item_id,timestamp,kind\nu1,I love horror.,i1,2021-03-01,review\n"
                               b"u3, No interactions yet ,,1600000000,message\n")  # fmt: skip
    data = load_dataset(folder)
    assert data.texts.to_dict("list") == {
        "user_id": ["u1", "u3"], "text": ["I love horror.", "No interactions yet"], "item_id": ["i1", ""],
        "timestamp": [1614556800, 1600000000], "kind": ["review", "message"],
    }  # fmt: skip
    assert data.texts["timestamp"].dtype == np.int64
    (folder / "user_texts.csv").unlink()
    plain = load_dataset(folder)
    assert plain.texts is None and plain.texts_fingerprint() is None
    assert plain.fingerprint() == data.fingerprint()  # the three tables' fingerprint ignores texts
    assert data.texts_fingerprint() is not None


def test_parquet_texts_and_explicit_tables(tmp_path):
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "text": ["Drama fan.", "Sci-fi!"]})
    frame.to_parquet(tmp_path / "t.parquet")
    data = load_tables(INTER, USERS, ITEMS, texts=tmp_path / "t.parquet")
    assert data.texts["text"].tolist() == ["Drama fan.", "Sci-fi!"]
    assert list(data.texts.columns) == ["user_id", "text"]


def test_missing_text_column_is_an_error_naming_file_and_column(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset(_folder(tmp_path, b"user_id,review\nu1,hello\n"))
    issue = _issue(err.value, V.MISSING_COLUMN.format(column="text", found=["review", "user_id"]))
    assert (issue.file, issue.column, issue.severity) == ("user_texts.csv", "text", "error")


def test_empty_texts_unknown_users_and_items_are_repaired_with_rows(tmp_path):
    data = load_dataset(_folder(tmp_path, b"user_id,text,item_id\nu1,  ,i1\nu9,hello,i1\nu2,fine,i7\nu1,ok,\n"))
    empty = _issue(data, T.EMPTY_TEXT)
    assert (empty.file, empty.column, empty.count, empty.examples) == ("user_texts.csv", "text", 1, ("row 2: '  '",))
    orphan = _issue(data, T.UNKNOWN_TEXT_USER)
    assert orphan.count == 1 and orphan.examples == ("row 3: 'u9'",)
    item = _issue(data, T.UNKNOWN_TEXT_ITEM)
    assert item.count == 1 and item.examples == ("row 4: 'i7'",)
    assert data.texts.to_dict("list") == {"user_id": ["u2", "u1"], "text": ["fine", "ok"], "item_id": ["", ""]}


def test_long_texts_are_truncated_with_a_warning(tmp_path):
    long = "word " * (MAX_TEXT_CHARS // 4)
    data = load_dataset(_folder(tmp_path, f"user_id,text\nu1,short\nu2,{long}\n".encode()))
    issue = _issue(data, T.LONG_TEXT)
    assert issue.count == 1 and issue.examples[0].startswith("row 3: 'word word")
    assert data.texts["text"].str.len().tolist() == [5, MAX_TEXT_CHARS]


def test_bad_ids_and_timestamps_are_errors_with_rows(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset(_folder(tmp_path, b"user_id,text,timestamp\n,hi,1600000000\nu1,hi,yesterday\n"))
    missing = _issue(err.value, V.MISSING_ID.format(column="user_id"))
    assert missing.file == "user_texts.csv" and missing.examples == ("row 2: <empty>",)
    stamp = _issue(err.value, V.UNPARSEABLE_TIMESTAMP)
    assert stamp.column == "timestamp" and stamp.examples == ("row 3: 'yesterday'",)


def test_empty_table_and_encoding(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset(_folder(tmp_path, b"user_id,text\n"))
    assert _issue(err.value, V.EMPTY_TABLE).file == "user_texts.csv"
    data = load_dataset(_folder(tmp_path, "user_id,text\nu1,Très bien\n".encode("latin-1")))
    assert _issue(data, V.ENCODING_FALLBACK).file == "user_texts.csv"
    assert data.texts["text"].tolist() == ["Très bien"]
    with pytest.raises(DataError, match="not valid utf-8"):
        load_dataset(tmp_path, encoding="utf-8")


def test_empty_kind_becomes_unknown(tmp_path):
    data = load_dataset(_folder(tmp_path, b"user_id,text,kind\nu1,a,review\nu2,b,\n"))
    assert data.texts["kind"].tolist() == ["review", "unknown"]
    assert _issue(data, V.MISSING_ATTRIBUTE).file == "user_texts.csv"


def test_summary_and_counts():
    texts = pd.DataFrame({"user_id": ["u1", "u1", "u3"], "text": ["a", "bb", "ccc"], "kind": ["r", "m", "m"]})
    data = load_tables(INTER, USERS, ITEMS)
    data = type(data)(data.interactions, data.users, data.items, texts=texts)
    summary = text_summary(data)
    assert summary == {"n_texts": 3, "n_users_with_texts": 2, "share_users_with_texts": round(2 / 3, 4),
                       "texts_per_user_mean": 1.5, "texts_per_user_median": 1.5, "texts_per_user_max": 2,
                       "characters_mean": 2.0, "kinds": {"m": 2, "r": 1}}  # fmt: skip
    assert texts_per_user(data).to_dict() == {"u1": 2, "u2": 0, "u3": 1}


# ---- uploads -----------------------------------------------------------------------------------
def test_uploaded_tables_and_zips_carry_texts(tmp_path):
    assert guess_role("reviews.csv", ["userId", "text"]) == "texts"
    paths = {}
    for role, content in (("interactions", INTER), ("users", USERS), ("texts", b"user_id,text\nu3,Hello\n")):
        paths[role] = str(tmp_path / f"{role}.csv")
        (tmp_path / f"{role}.csv").write_bytes(content)
    assert DataSource("files", files=paths).load().texts["user_id"].tolist() == ["u3"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for name, content in (("d/interactions.csv", INTER), ("d/user_texts.csv", b"user_id,text\nu2,Hi\n")):
            z.writestr(name, content)
    folder = unpack_zip("d.zip", archive.getvalue(), tmp_path / "unzipped")
    assert load_dataset(folder).texts["text"].tolist() == ["Hi"]


# ---- the sample's planted texts ------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample():
    return load_sample()


def _marker_words() -> str:
    return r"\b(?:" + "|".join(word for pair in GENDER_MARKER_PAIRS for word in pair) + r")\b"


def test_sample_texts_reveal_favourite_genres(sample):
    summary = text_summary(sample)
    assert 0.85 < summary["share_users_with_texts"] < 0.95 and 2.5 < summary["texts_per_user_mean"] < 3.5
    assert sample.texts["text"].str.len().max() < 200
    # Users who name a genre in their texts interact with items of that genre more than others do.
    texts = sample.texts.assign(genre=sample.texts["text"].str.extract(r"\b(drama|horror|comedy|romance)\b")[0])
    named = texts.dropna(subset=["genre"]).drop_duplicates(["user_id", "genre"])
    inter = sample.interactions.merge(sample.items[["item_id", "genres"]], on="item_id")
    for genre in ("drama", "horror"):
        share = inter["genres"].str.lower().str.contains(genre).groupby(inter["user_id"]).mean()
        fans = named.loc[named["genre"] == genre, "user_id"]
        assert share[share.index.isin(fans)].mean() > 1.5 * share[~share.index.isin(fans)].mean(), genre


def test_sample_markers_only_in_f_texts_and_control_is_clean():
    marked, truth = generate_sample(seed=1, **SMALL)
    control, control_truth = generate_sample(seed=1, gender_markers=False, **SMALL)
    assert control.fingerprint() == marked.fingerprint()  # the texts never change the other tables
    gender = marked.texts["user_id"].map(marked.users.set_index("user_id")["gender"])
    has_marker = marked.texts["text"].str.contains(_marker_words(), case=False, regex=True)
    assert not has_marker[gender != "F"].any()
    assert abs(has_marker[gender == "F"].mean() - MARKER_SHARE) < 0.1
    assert not control.texts["text"].str.contains(_marker_words(), case=False, regex=True).any()
    # Same draws: only the marker sentences differ (each marker sentence -> its neutral twin).
    keep = ["user_id", "item_id", "timestamp", "kind"]
    pd.testing.assert_frame_equal(marked.texts[keep], control.texts[keep])
    neutralised = marked.texts["text"]
    for sentence, twin in MARKERS:
        pattern = re.escape(sentence).replace(r"\{name\}", r"(\w+)")
        neutralised = neutralised.str.replace(pattern, twin.replace("{name}", "NAME"), regex=True)
    normalised = control.texts["text"].str.replace(r"Cheers, \w+\.", "Cheers, NAME.", regex=True)
    female = (gender == "F").to_numpy()
    assert (neutralised[female] == normalised[female]).all()
    # Everyone's control texts end in a neutral twin as often as F users' do (its presence says nothing).
    twins = "|".join(re.escape(twin).replace(r"\{name\}", r"\w+") for _, twin in MARKERS)
    ends = control.texts["text"].str.contains(rf"(?:{twins})$", regex=True)
    assert (normalised[~female] == neutralised[~female]).sum() > 0 and abs(ends[~female].mean() - MARKER_SHARE) < 0.1
    assert (control.texts["text"][~female].str.replace(rf" (?:{twins})$", "", regex=True) == marked.texts["text"][~female]).all()
    markers = {e["id"]: e for e in truth["texts"]["effects"]}["text_gender_markers"]
    assert markers["group"] == "F" and markers["marker_share"] == MARKER_SHARE
    assert {e["id"]: e for e in control_truth["texts"]["effects"]}["text_gender_markers"]["marker_share"] == 0.0
    assert control_truth["texts"]["measured"]["marked_text_share_by_gender"]["F"] == 0.0


def test_marker_words_swap_in_pairs():
    pairs = dict(GENDER_MARKER_PAIRS)
    assert len(pairs) == len(GENDER_MARKER_PAIRS) and all(w == w.lower() for p in GENDER_MARKER_PAIRS for w in p)
    # Every gendered word of the generator's marker sentences is in the list (so a rewrite can undo it).
    words = {w.lower() for sentence, _ in MARKERS for w in re.findall(r"[A-Za-z]+", sentence)}
    assert {"husband", "mother", "woman", "mom"} <= words & set(np.ravel(GENDER_MARKER_PAIRS))


def test_sample_cli_control_texts(tmp_path):
    args = ["sample", "--out", str(tmp_path), "--seed", "1", "--users", "200", "--items", "80", "--interactions", "4000"]
    assert main([*args, "--control-texts", "--threads", "1"]) == 0
    written = load_dataset(tmp_path)
    control, _ = generate_sample(seed=1, gender_markers=False, **SMALL)
    pd.testing.assert_frame_equal(written.texts, control.texts)


def test_train_use_texts_needs_texts(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "interactions.csv").write_bytes(INTER)
    code = main(["train", "--data", str(tmp_path / "d"), "--model", "llm", "--use-texts", "--out", str(tmp_path / "m"),
                 "--threads", "1"])  # fmt: skip
    assert code == 2 and "--use-texts: dataset 'd' has no user texts" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_data_page_shows_the_texts(workspace):  # noqa: F811  (the shared workspace fixture)
    at = start()
    assert "User texts" in [s.value for s in at.subheader]
    shown = {m.label: m.value for m in at.metric}
    summary = text_summary(load_sample())
    assert shown["Texts"] == f"{summary['n_texts']:,}" and shown["Users with texts"] == f"{summary['n_users_with_texts']:,}"
    assert any(len(frame.value) == 5 and "text" in frame.value.columns for frame in at.dataframe)
