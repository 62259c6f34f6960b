"""Imported recommendation lists (issue 15): the loader and its validation, the ``imported`` model kind,
and ``python -m fairaudit audit --recommendations`` end to end (round trip, --test, --model, --config,
--explain, re-rankers), plus MovieLens 100K with lists made by code outside the package.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.audit import AuditConfig, AuditResult
from fairaudit.cli import EXIT_DATA, EXIT_OK, EXIT_USAGE, main
from fairaudit.cli._audit import _CHANGED, _FRACTION_FOR, _NAMES_COUNT, _NEEDS_TRUTH, _SPLIT_OPTION_ALONE
from fairaudit.data import (
    DataError,
    TEST_FILE_METHOD,
    load_dataset,
    load_recommendations,
    load_test_split,
    make_split,
)
from fairaudit.data import _imported as I
from fairaudit.data import _validate as V
from fairaudit.models import ImportedRecommender, NotRescorable, create_model, load_model, NOT_RESCORABLE
from fairaudit.service import audit_models, trainable_kinds
from tests.conftest import make_tiny_dataset

TABLES = ("group_metrics", "gaps", "item_exposure")
AUDIT_OPTIONS = ["--k", "5", "--bootstrap", "30", "--min-group-size", "5", "--no-embeddings"]


# ---- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A tiny dataset on disk, FairAudit models trained on its default split, and their lists as CSV files."""
    root = tmp_path_factory.mktemp("imported")
    data = root / "data"
    data.mkdir()
    tiny = make_tiny_dataset(n_users=60, n_items=40)
    tiny.interactions.to_csv(data / "interactions.csv", index=False)
    tiny.users.to_csv(data / "users.csv", index=False)
    tiny.items.to_csv(data / "items.csv", index=False)
    out = {"root": root, "data": data}
    for kind in ("popularity", "mf"):
        assert main(["train", "--data", str(data), "--model", kind, "--out", str(root / kind), "--device", "cpu"]) == 0
        lists = root / f"{kind}_lists.csv"
        assert main(["recommend", "--model", str(root / kind), "--data", str(data), "--k", "5", "--out", str(lists)]) == 0
        out[kind], out[f"{kind}_lists"] = root / kind, lists
    dataset = load_dataset(data)
    out["dataset"], out["split"] = dataset, make_split(dataset, "random", seed=0)
    return out


def audit_cli(argv: list, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


def model_rows(result: AuditResult, table: str, model: str) -> pd.DataFrame:
    frame = getattr(result, table)
    return frame[frame["model"] == model].drop(columns="model").reset_index(drop=True)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- the round trip: a FairAudit model and its own lists, imported, give identical numbers --------------
@pytest.mark.parametrize("kind", ["popularity", "mf"])
def test_round_trip_identical(world, kind, tmp_path, capsys):
    out = tmp_path / "audit"
    code, _, err = audit_cli(
        ["audit", "--data", world["data"], "--model", world[kind], "--recommendations", world[f"{kind}_lists"],
         "--name", "theirs", "--split", "random", *AUDIT_OPTIONS, "--out", out], capsys,
    )  # fmt: skip
    assert code == EXIT_OK, err
    result = AuditResult.read(out)
    assert result.models == [kind, "theirs"]
    for table in (*TABLES, "user_metrics"):
        mine, theirs = model_rows(result, table, kind), model_rows(result, table, "theirs")
        assert len(mine) > 0
        pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
    data = result.meta["config"]["data"]
    [record] = data["recommendations"]
    assert record["sha256"] == I.file_sha256(world[f"{kind}_lists"]) and record["systems"] == {"theirs": "theirs"}
    assert data["ground_truth"] == {"kind": "split", "method": "random", "seed": 0, "params": {"test_fraction": 0.2}}
    assert result.meta["models"]["theirs"]["kind"] == "imported"
    assert result.comparison is not None  # compared like any two models


def test_imported_is_not_trainable():
    assert "imported" not in trainable_kinds()


# ---- ground truth ------------------------------------------------------------------------------------
def test_test_file_matches_the_split(world, tmp_path, capsys):
    """--test with the split's own test interactions gives the numbers of --split random, and is recorded."""
    test = tmp_path / "held_out.csv"
    world["split"].test.to_csv(test, index=False)
    by_split, by_file = tmp_path / "a", tmp_path / "b"
    base = ["audit", "--data", world["data"], "--recommendations", world["popularity_lists"], *AUDIT_OPTIONS]
    assert audit_cli([*base, "--split", "random", "--out", by_split], capsys)[0] == EXIT_OK
    assert audit_cli([*base, "--test", test, "--out", by_file], capsys)[0] == EXIT_OK
    a, b = AuditResult.read(by_split), AuditResult.read(by_file)
    for table in TABLES:
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), check_exact=True)
    truth = b.meta["config"]["data"]["ground_truth"]
    assert truth["kind"] == TEST_FILE_METHOD and truth["sha256"] == I.file_sha256(test)
    assert b.config.split["method"] == TEST_FILE_METHOD and b.config.split["params"]["sha256"] == truth["sha256"]


def test_test_file_validated_like_interactions(world, tmp_path):
    test = write(tmp_path / "t.csv", "user_id,item_id\nu1,i3\nu1,i3\nnobody,i3\nu2,nothing\n")
    split, warnings = load_test_split(test, world["dataset"])
    messages = [w.message for w in warnings]
    assert V.DUPLICATE_PAIRS in messages and V.UNKNOWN_USER in messages and V.UNKNOWN_ITEM in messages
    assert split.test.values.tolist() == [["u1", "i3"]]
    assert len(split.train) == len(world["dataset"].interactions) - int(
        ((world["dataset"].interactions["user_id"] == "u1") & (world["dataset"].interactions["item_id"] == "i3")).sum()
    )
    with pytest.raises(DataError, match=re.escape(V.MISSING_COLUMN.format(column="item_id", found=["user_id"]))):
        load_test_split(write(tmp_path / "bad.csv", "user_id\nu1\n"), world["dataset"])


def test_model_split_must_match(world, tmp_path, capsys):
    code, _, err = audit_cli(
        ["audit", "--data", world["data"], "--model", world["popularity"], "--recommendations",
         world["popularity_lists"], "--split", "random", "--split-seed", "1", *AUDIT_OPTIONS, "--out", tmp_path / "a"],
        capsys,
    )  # fmt: skip
    assert code == EXIT_DATA and "was trained on split random" in err and "audit it with the split" in err
    assert not (tmp_path / "a").exists()


def test_lists_take_the_model_split_without_truth_options(world, tmp_path, capsys):
    out = tmp_path / "a"
    code, _, err = audit_cli(
        ["audit", "--data", world["data"], "--model", world["popularity"], "--recommendations",
         world["popularity_lists"], *AUDIT_OPTIONS, "--out", out], capsys,
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert AuditResult.read(out).meta["config"]["data"]["ground_truth"] == {"kind": "model_split"}


# ---- re-runs ---------------------------------------------------------------------------------------------
def test_config_rerun_exact_and_fingerprints_verified(world, tmp_path, capsys):
    lists = tmp_path / "lists.csv"
    lists.write_bytes(world["mf_lists"].read_bytes())
    test = tmp_path / "held_out.csv"
    world["split"].test.to_csv(test, index=False)
    first, again = tmp_path / "first", tmp_path / "again"
    argv = ["audit", "--data", world["data"], "--recommendations", lists, "--test", test, *AUDIT_OPTIONS]
    assert audit_cli([*argv, "--out", first], capsys)[0] == EXIT_OK
    assert audit_cli(["audit", "--config", first / "audit.json", "--out", again], capsys)[0] == EXIT_OK
    a, b = AuditResult.read(first), AuditResult.read(again)
    assert a.meta["audit_id"] == b.meta["audit_id"]
    for table in (*TABLES, "recommendations", "user_metrics"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), check_exact=True)
    # An edited list (or test file) is refused on re-run, naming the file and both fingerprints.
    for path in (lists, test):
        original = path.read_bytes()
        path.write_bytes(original.replace(b"\n", b"\r\n", 1))
        code, _, err = audit_cli(["audit", "--config", first / "audit.json", "--out", tmp_path / "x"], capsys)
        assert code == EXIT_DATA and "changed since that audit" in err and str(path.resolve()) in err
        path.write_bytes(original)
    assert _CHANGED.startswith("{0} '{1}' has SHA-256")


# ---- explanations: SHAP gap drivers yes, probes no (a plain note) ---------------------------------------------
def test_explain_skips_probes_with_a_note(world, tmp_path, capsys):
    out = tmp_path / "a"
    code, _, err = audit_cli(
        ["audit", "--data", world["data"], "--model", world["popularity"], "--recommendations",
         world["popularity_lists"], "--name", "theirs", *AUDIT_OPTIONS, "--attributes", "gender,age_band",
         "--explain", "--probe-users", "20",
         "--out", out], capsys,
    )  # fmt: skip
    assert code == EXIT_OK, err
    result = AuditResult.read(out)
    note = NOT_RESCORABLE.format("theirs")
    assert result.explanations["not_probed"] == {"theirs": note} and note in err
    assert set(result.probes["model"]) == {"popularity"}
    assert {"popularity", "theirs"} <= set(result.shap_drivers["model"])
    if shutil.which("pdftotext"):  # the PDF prints the note too
        from fairaudit.report import build_report

        build_report(out, tmp_path / "audit.pdf", charts=False)
        text = subprocess.run(["pdftotext", str(tmp_path / "audit.pdf"), "-"], capture_output=True, text=True).stdout
        assert "Not probed: 'theirs' is a list of recommendations imported" in " ".join(text.split())


def test_overrides_refused_plainly(world):
    model = ImportedRecommender.from_recommendations(
        load_recommendations(world["popularity_lists"], world["dataset"])[0], world["dataset"], world["split"]
    )
    assert not model.probeable
    with pytest.raises(NotRescorable, match="cannot be re-scored with edited user attributes"):
        model.recommend(["u0"], k=3, attribute_overrides={"gender": "M"})
    with pytest.raises(NotRescorable):
        model.score(["u0"], attribute_overrides={"gender": "M"})


# ---- the model kind ---------------------------------------------------------------------------------------
def imported(world, text: str, tmp_path, **options) -> ImportedRecommender:
    frame, _ = load_recommendations(write(tmp_path / "l.csv", text), world["dataset"], **options)
    return ImportedRecommender.from_recommendations(frame, world["dataset"], world["split"])


def test_recommend_cuts_never_pads(world, tmp_path):
    model = imported(world, "user_id,item_id,rank\nu0,i1,1\nu0,i2,2\nu0,i3,3\nu1,i4,1\n", tmp_path)
    recs = model.recommend(["u0", "u1", "u2"], k=2)
    assert recs[["user_id", "rank", "item_id"]].values.tolist() == [["u0", 1, "i1"], ["u0", 2, "i2"], ["u1", 1, "i4"]]
    assert recs["score"].tolist() == [-1.0, -2.0, -1.0]  # no score column: score = -rank
    assert model.evaluated_users().tolist() == ["u0", "u1"]
    scores = model.score(["u0", "u2"], ["i2", "i5"])
    assert scores[0, 0] == -2.0 and np.isneginf(scores[0, 1]) and np.isneginf(scores[1]).all()


def test_short_lists_are_audited_short(world, tmp_path):
    """Users with fewer than K items keep their short list: precision divides by K, never padded."""
    full = load_recommendations(world["popularity_lists"], world["dataset"])[0]
    short = full[(full["rank"] <= 2) | (full["user_id"] != "u0")]
    model = ImportedRecommender.from_recommendations(short, world["dataset"], world["split"])
    pop = load_model(world["popularity"], world["dataset"])
    config = AuditConfig(k=5, bootstrap_rounds=10, min_group_size=5, embedding_diversity=False)
    result = audit_models(world["dataset"], {"pop": pop, "theirs": model}, config, split=world["split"])
    recs = result.recommendations
    assert (recs[(recs["model"] == "theirs")]["user_id"] == "u0").sum() == 2
    per_user = result.user_metrics.set_index(["model", "user_id"])
    test = world["split"].test
    hits = set(test[test["user_id"] == "u0"]["item_id"]) & set(short[short["user_id"] == "u0"]["item_id"])
    assert per_user.loc[("theirs", "u0"), "precision"] == pytest.approx(len(hits) / 5)


def test_save_and_load(world, tmp_path):
    model = imported(world, "user_id,item_id,score\nu0,i1,0.5\nu0,i2,0.7\n", tmp_path)
    model.save(tmp_path / "m")
    back = load_model(tmp_path / "m", world["dataset"])
    assert isinstance(back, ImportedRecommender) and back.fingerprint() == model.fingerprint()
    pd.testing.assert_frame_equal(back.recommend(k=5), model.recommend(k=5))


def test_reranker_reranks_within_the_list(world):
    frame = load_recommendations(world["mf_lists"], world["dataset"])[0]
    base = ImportedRecommender.from_recommendations(frame, world["dataset"], world["split"])
    users = world["split"].test["user_id"].unique().tolist()
    same = create_model("rerank_mmr", base=base, strength=0.0).fit(world["dataset"], world["split"])
    pd.testing.assert_frame_equal(same.recommend(users, k=5), base.recommend(users, k=5))
    moved = create_model("rerank_mmr", base=base, strength=0.9).fit(world["dataset"], world["split"])
    recs = moved.recommend(users, k=3)
    listed = set(zip(frame["user_id"], frame["item_id"]))
    assert all(pair in listed for pair in zip(recs["user_id"], recs["item_id"]))
    assert not moved.probeable and moved.evaluated_users().tolist() == base.evaluated_users().tolist()
    config = AuditConfig(k=3, bootstrap_rounds=10, min_group_size=5, embedding_diversity=False)
    result = audit_models(world["dataset"], {"theirs": base, "theirs+mmr": moved}, config, split=world["split"])
    assert result.models == ["theirs", "theirs+mmr"] and result.verdicts is not None


# ---- the loader: every validation path with its message ---------------------------------------------------
ERROR_CASES = [
    ("item_id,rank\ni1,1\n", V.MISSING_COLUMN.format(column="user_id", found=["item_id", "rank"])),
    ("user_id,item_id\nu0,i1\n", I.NO_RANK_OR_SCORE.format(found=["item_id", "user_id"])),
    ("user_id,item_id,score\nu0,i1,high\n", V.UNPARSEABLE_NUMBER.format(column="score")),
    ("user_id,item_id,score\nu0,i1,inf\n", V.NOT_FINITE.format(column="score")),
    ("user_id,item_id,score\nu0,i1,\n", V.UNPARSEABLE_NUMBER.format(column="score")),
    ("user_id,item_id,rank\nu0,i1,0\nu0,i2,1.5\n", I.BAD_RANK),
    ("user_id,item_id,rank\nu0,i1,first\n", V.UNPARSEABLE_NUMBER.format(column="rank")),
    ("user_id,item_id,rank\n,i1,1\n", V.MISSING_ID.format(column="user_id")),
    ("user_id,item_id,rank\nu0,i1,1\nu0,nothing,2\n", I.REC_UNKNOWN_ITEM),
    ("user_id,item_id,rank\nu0,i1,1\nu0,i1,2\n", I.REC_DUPLICATE_ITEM),
    ("user_id,item_id,rank\nu0,i1,1\nu0,i2,1\n", I.REC_DUPLICATE_RANK),
    ("user_id,item_id,rank\nnobody,i1,1\n", V.EMPTY_TABLE),
    ("user_id,item_id,rank\n", V.EMPTY_TABLE),
]


@pytest.mark.parametrize(("text", "message"), ERROR_CASES)
def test_loader_errors(world, tmp_path, text, message):
    with pytest.raises(DataError) as info:
        load_recommendations(write(tmp_path / "l.csv", text), world["dataset"], split=world["split"], k=5)
    assert message in [issue.message for issue in info.value.issues if issue.severity == "error"]


def test_loader_errors_name_rows(world, tmp_path):
    with pytest.raises(DataError) as info:
        load_recommendations(write(tmp_path / "l.csv", "user_id,item_id,rank\nu0,i1,1\nu0,i1,2\n"), world["dataset"])
    [issue] = info.value.issues
    assert issue.count == 2 and issue.examples == ("row 2: 'i1'", "row 3: 'i1'") and issue.file == "l.csv"


def seen_and_unseen(world) -> tuple[str, str, str]:
    """A test user, an item they had in training and one they never had."""
    split = world["split"]
    user = split.test["user_id"].iloc[0]
    seen = split.train[split.train["user_id"] == user]["item_id"].iloc[0]
    had = set(world["dataset"].interactions.query("user_id == @user")["item_id"])
    unseen = next(i for i in world["dataset"].items["item_id"] if i not in had)
    return user, seen, unseen


def test_loader_warnings_count_and_keep(world, tmp_path):
    user, seen, unseen = seen_and_unseen(world)
    test_users = set(world["split"].test["user_id"])
    idle = next((u for u in world["dataset"].users["user_id"] if u not in test_users), None)
    rows = [f"{user},{seen},1", f"{user},{unseen},3", "nobody,i1,1", "nobody,i2,2"]
    if idle is not None:
        rows.append(f"{idle},i1,1")
    frame, warnings = load_recommendations(
        write(tmp_path / "l.csv", "user_id,item_id,rank\n" + "\n".join(rows) + "\n"), world["dataset"],
        split=world["split"], k=5,
    )  # fmt: skip
    by_message = {w.message: w for w in warnings}
    assert by_message[I.REC_UNKNOWN_USER].count == 2  # dropped, counted
    assert by_message[I.REC_SEEN].count == 1  # kept, counted
    assert by_message[I.RANK_GAPS].count == 1  # 1, 3 -> 1, 2
    assert frame[frame["user_id"] == user][["rank", "item_id"]].values.tolist() == [[1, seen], [2, unseen]]
    n_lists = 1 + (idle is not None)
    short = I.REC_SHORT.format(n=n_lists, total=n_lists, model="l", k=5)
    missing = I.REC_MISSING_LIST.format(n=len(test_users) - 1, total=len(test_users), model="l")
    assert short in by_message and missing in by_message
    if idle is not None:
        assert by_message[I.REC_NO_TEST].count == 1
    assert len(frame) == len(rows) - 2


def test_loader_orders_by_score_ties_in_file_order(world, tmp_path):
    text = "user_id,item_id,score\nu0,i1,0.5\nu0,i2,0.9\nu0,i3,0.5\nu0,i4,0.1\n"
    frame, warnings = load_recommendations(write(tmp_path / "ext.csv", text), world["dataset"])
    assert frame["item_id"].tolist() == ["i2", "i1", "i3", "i4"] and frame["rank"].tolist() == [1, 2, 3, 4]
    assert frame["score"].tolist() == [0.9, 0.5, 0.5, 0.1] and set(frame["model"]) == {"ext"} and not warnings


def test_loader_model_column_and_parquet(world, tmp_path):
    frame = pd.DataFrame({"model": ["a", "a", "b"], "user_id": ["u0", "u0", "u0"], "item_id": ["i1", "i2", "i1"],
                          "rank": [2, 1, 1]})  # fmt: skip
    frame.to_parquet(tmp_path / "two.parquet")
    out, _ = load_recommendations(tmp_path / "two.parquet", world["dataset"], name="ignored")
    assert out[["model", "rank", "item_id"]].values.tolist() == [["a", 1, "i2"], ["a", 2, "i1"], ["b", 1, "i1"]]
    assert list(out.columns) == list(I.RECOMMENDATION_COLUMNS)


def test_one_file_several_systems_cli(world, tmp_path, capsys):
    a = pd.read_csv(world["popularity_lists"]).assign(model="pop-export")
    b = pd.read_csv(world["mf_lists"]).assign(model="mf-export")
    pd.concat([a, b]).to_csv(tmp_path / "both.csv", index=False)
    out = tmp_path / "audit"
    code, _, err = audit_cli(["audit", "--data", world["data"], "--recommendations", tmp_path / "both.csv",
                              "--split", "random", *AUDIT_OPTIONS, "--out", out], capsys)  # fmt: skip
    assert code == EXIT_OK, err
    assert AuditResult.read(out).models == ["pop-export", "mf-export"]


def test_cli_bad_file_exit_1(world, tmp_path, capsys):
    bad = write(tmp_path / "bad.csv", "user_id,item_id,rank\nu0,i1,1\nu0,i1,2\n")
    code, _, err = audit_cli(["audit", "--data", world["data"], "--recommendations", bad, "--split", "random",
                              *AUDIT_OPTIONS, "--out", tmp_path / "a"], capsys)  # fmt: skip
    assert code == EXIT_DATA and I.REC_DUPLICATE_ITEM in err and not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], _NEEDS_TRUTH),
        (["--split-seed", "3"], _SPLIT_OPTION_ALONE.format("--split-seed")),
        (["--split", "temporal", "--test-fraction", "0.3"], _FRACTION_FOR.format("temporal")),
        (["--split", "random", "--name", "a", "--name", "b"], _NAMES_COUNT.format(2, 1)),
        (["--split", "random", "--test", "t.csv"], "not allowed with argument"),
        (["--split", "random", "--test-fraction", "1.5"], "--test-fraction"),
        (["--split", "random", "--split-seed", "-1"], "--split-seed"),
    ],
)
def test_cli_usage_errors(world, tmp_path, capsys, extra, message):
    code, _, err = audit_cli(["audit", "--data", world["data"], "--recommendations", world["popularity_lists"],
                              *extra, "--out", tmp_path / "a"], capsys)  # fmt: skip
    assert code == EXIT_USAGE and message in err and not (tmp_path / "a").exists()


# ---- MovieLens 100K: lists made by code outside the package ---------------------------------------------
def cooccurrence_lists(dataset, split, k: int = 20) -> pd.DataFrame:
    """A tiny item-to-item co-occurrence recommender in numpy/scipy (not FairAudit's): score = sum over the
    user's training items of how many users had both items; seen items excluded."""
    import scipy.sparse as sp

    users = pd.Index(dataset.users["user_id"].astype(str))
    items = pd.Index(dataset.items["item_id"].astype(str))
    rows = users.get_indexer(split.train["user_id"].astype(str))
    cols = items.get_indexer(split.train["item_id"].astype(str))
    history = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(users), len(items)))
    co = (history.T @ history).toarray()
    np.fill_diagonal(co, 0)
    scores = np.asarray(history @ co)
    scores[history.nonzero()] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return pd.DataFrame({
        "user_id": np.repeat(users.to_numpy(), k), "item_id": items.to_numpy()[top.ravel()],
        "score": np.take_along_axis(scores, top, axis=1).ravel(),
    })  # fmt: skip


def test_movielens_100k_cooccurrence_lists(movielens_100k_path, tmp_path, capsys):
    dataset = load_dataset(movielens_100k_path)
    split = make_split(dataset, "random", seed=0)
    lists = cooccurrence_lists(dataset, split)
    lists.to_csv(tmp_path / "cooc.csv", index=False)
    out = tmp_path / "audit"
    code, _, err = audit_cli(
        ["audit", "--data", movielens_100k_path, "--recommendations", tmp_path / "cooc.csv", "--split", "random",
         "--k", "10", "--bootstrap", "50", "--no-embeddings", "--out", out], capsys,
    )  # fmt: skip
    assert code == EXIT_OK, err
    result = AuditResult.read(out)
    overall = result.rows("group_metrics", model="cooc", attribute="all", metric="ndcg")
    assert overall["value"].iloc[0] > 0.05 and overall["n_users"].iloc[0] == split.test["user_id"].nunique()
    assert set(result.gaps["attribute"]) >= {"gender", "age_band"}
    meta = json.loads((out / "audit.json").read_text())
    assert meta["models"]["cooc"]["kind"] == "imported"


# ---- hostile files: any bytes load or raise DataError, never anything else ---------------------------------
@pytest.fixture(scope="module")
def tiny_world():
    dataset = make_tiny_dataset()
    return dataset, make_split(dataset, "random", seed=0)


def _cells():
    from hypothesis import strategies as st

    ids = st.sampled_from(["u0", "u1", "u2", "nobody", "i1", "i2", "i3", "nothing", ""])
    numbers = st.sampled_from(["1", "2", "0", "-1", "1.5", "inf", "nan", "1e400", "x", "", "3"])
    return st.lists(st.tuples(ids, ids, numbers), max_size=12)


def test_fuzz_lists_load_or_refuse(tiny_world, tmp_path_factory):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    dataset, split = tiny_world
    folder = tmp_path_factory.mktemp("fuzz")

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(header=st.sampled_from(["user_id,item_id,rank", "user_id,item_id,score", "model,user_id,item_id"]),
           rows=_cells(), raw=st.binary(max_size=200), use_raw=st.booleans())  # fmt: skip
    def check(header, rows, raw, use_raw):
        path = folder / "l.csv"
        if use_raw:
            path.write_bytes(raw)
        else:
            path.write_text(header + "\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
        try:
            frame, warnings = load_recommendations(path, dataset, split=split, k=3)
        except DataError as err:
            assert err.issues and any(i.severity == "error" for i in err.issues)
            return
        assert list(frame.columns) == list(I.RECOMMENDATION_COLUMNS) and len(frame)
        model = ImportedRecommender.from_recommendations(frame, dataset, split, system=frame["model"].iloc[0])
        recs = model.recommend(k=3)
        assert (recs.groupby("user_id")["rank"].max() <= 3).all()

    check()
