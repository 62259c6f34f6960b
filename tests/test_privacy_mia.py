"""Membership-inference audit: the AUC itself, planted memorisation recovered, controls at 0.5, users resampled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fairaudit.data import generate_sample, random_holdout, temporal_leave_last
from fairaudit.models import ExternalRecommender, create_model, rank_auc
from fairaudit.privacy import (
    MIA_COLUMNS,
    membership_inference,
    membership_pairs,
    pair_auc,
    split_is_exchangeable,
)
from fairaudit.privacy._mia import _group_rows


def test_auc_by_hand_and_as_sklearn():
    # Members 0.9, 0.4; non-members 0.4, 0.1: pairs (0.9>0.4) (0.9>0.1) (0.4=0.4 -> 1/2) (0.4>0.1) -> 3.5 / 4.
    assert pair_auc(np.array([0.9, 0.4, 0.4, 0.1]), np.array([True, True, False, False])) == 0.875
    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, 300).astype(float)  # many ties
    member = rng.random(300) < 0.4
    assert pair_auc(values, member) == pytest.approx(roc_auc_score(member, values), abs=1e-12)


def test_weights_count_rows_as_repeated_pairs():
    rng = np.random.default_rng(1)
    values, member = rng.normal(size=40), rng.random(40) < 0.5
    weights = rng.integers(0, 4, size=(3, 40))
    got = rank_auc(values, member, weights)
    for w, auc in zip(weights, got):
        rows = np.repeat(np.arange(40), w)
        assert auc == pytest.approx(roc_auc_score(member[rows], values[rows]), abs=1e-12)


@pytest.fixture(scope="module")
def data_split():
    data, _ = generate_sample(n_users=300, n_items=200, n_interactions=9000, seed=1)
    return data, random_holdout(data, seed=0)


def _external(data, split, table: np.ndarray, name: str):
    users = pd.Index(data.users["user_id"].astype(str))
    items = pd.Index(data.items["item_id"].astype(str))
    fn = lambda u, i: table[np.ix_(users.get_indexer(u), items.get_indexer(i))]  # noqa: E731
    return ExternalRecommender(score=fn, name=name).fit(data, split)


def test_overfit_model_leaks_membership(data_split):
    data, split = data_split
    model = create_model("mf", factors=64, reg=1e-4, iterations=30, alpha=10.0, device="cpu").fit(data, split)
    table = membership_inference(model, data, split, attributes=["gender"], rounds=100)
    assert list(table.columns) == list(MIA_COLUMNS)
    overall = table.iloc[0]
    assert (overall["attribute"], overall["group"]) == ("all", "all")
    assert overall["auc"] > 0.8 and overall["ci_low"] > 0.7
    big = table[~table["flagged"]]
    assert (big["ci_low"] > 0.5).all()
    assert table.loc[table["n_users"] < 30, "flagged"].all()


@pytest.mark.parametrize("control", ["random", "popularity_on_all_data"])
def test_models_that_ignore_training_data_sit_at_one_half(data_split, control):
    data, split = data_split
    if control == "random":
        scores = np.random.default_rng(7).random((len(data.users), len(data.items)))
    else:  # counts over train AND test: membership cannot change them
        counts = data.interactions["item_id"].astype(str).value_counts()
        pop = counts.reindex(data.items["item_id"].astype(str), fill_value=0).to_numpy(float)
        scores = np.tile(pop, (len(data.users), 1))
    model = _external(data, split, scores, control)
    for attack in ("score", "rank", "loss"):
        overall = membership_inference(model, data, split, attributes=[], attack=attack, rounds=200).iloc[0]
        assert overall["ci_low"] <= 0.5 <= overall["ci_high"], (attack, overall.to_dict())
        assert abs(overall["auc"] - 0.5) < 0.03


def test_bootstrap_resamples_users_not_pairs():
    # 40 users, each with a user-specific shift shared by all their pairs: the uncertainty is between users.
    rng = np.random.default_rng(3)
    shift = rng.normal(size=40)
    rows = []
    for copies in (1, 10):
        user = np.repeat(np.arange(40), 4 * copies)
        member = np.tile(np.r_[True, True, False, False], 40 * copies)
        stat = shift[user] + np.where(member, 0.3, 0.0)
        pairs = pd.DataFrame({"user_id": user.astype(str), "member": member, "statistic": stat})
        groups = pd.Series("all", index=pd.Index(np.arange(40).astype(str)))
        rows.append(_group_rows(pairs, groups, rounds=300, seed=0, key="all", confidence=0.95).iloc[0])
    width = [r["ci_high"] - r["ci_low"] for r in rows]
    assert rows[0]["auc"] == pytest.approx(rows[1]["auc"])
    assert width[1] > 0.7 * width[0]  # ten times the pairs of the same users: about the same interval
    assert rows[1]["n_users"] == 40


def test_pairs_are_same_users_and_split_kind_is_reported(data_split):
    data, split = data_split
    model = create_model("popularity").fit(data, split)
    pairs = membership_pairs(model, split, attack="rank")
    per_user = pairs.groupby("user_id")["member"].agg(["min", "max"])
    assert (~per_user["min"] & per_user["max"]).all()  # every user has members and non-members
    assert pairs["statistic"].between(0, 1).all()
    assert split_is_exchangeable(split.describe())
    assert not split_is_exchangeable(temporal_leave_last(data).describe())
    again = membership_inference(model, data, split, attributes=["gender"], rounds=50)
    pd.testing.assert_frame_equal(again, membership_inference(model, data, split, attributes=["gender"], rounds=50))


# Slow (~20 s): an LLM recommender that memorises (no regularisation) against its DP-SGD twin at epsilon 1.
@pytest.mark.slow
def test_dp_training_pulls_the_auc_back_toward_one_half(data_split):
    data, split = data_split
    settings = dict(epochs=40, lr=0.01, weight_decay=0.0, id_dropout=0.0, device="cpu")
    plain = create_model("llm", **settings).fit(data, split)
    private = create_model("llm", dp_epsilon=1.0, **settings).fit(data, split)
    assert private.privacy_["epsilon_spent"] <= 1.0
    base = membership_inference(plain, data, split, attributes=[], rounds=200).iloc[0]
    dp = membership_inference(private, data, split, attributes=[], rounds=200).iloc[0]
    assert base["ci_low"] > 0.55  # measured 0.634 [0.618, 0.649]
    assert dp["ci_high"] < base["ci_low"] and abs(dp["auc"] - 0.5) < 0.04  # measured 0.510 [0.495, 0.524]



# Slow (~6 s, loads the sample): the command on a bundled model, then the PDF's privacy section from its table.
@pytest.mark.slow
def test_cli_writes_mia_and_the_pdf_section_draws_it(tmp_path):
    import datetime as dt
    import json
    import shutil
    import subprocess
    from pathlib import Path

    from fairaudit.audit import AuditResult
    from fairaudit.cli import main
    from fairaudit.report import privacy_section
    from fairaudit.report._document import ReportPDF

    root = Path(__file__).resolve().parents[1]
    model = root / "sample_data" / "models" / "popularity-standard"
    out = tmp_path / "mia"
    assert main(["privacy", "--model", str(model), "--data", str(root / "sample_data"), "--attributes", "gender",
                 "--bootstrap", "30", "--out", str(out), "--threads", "1"]) == 0  # fmt: skip
    table = pd.read_csv(out / "mia.csv", keep_default_na=False)
    assert list(table.columns) == list(MIA_COLUMNS) and table["group"].tolist()[0] == "all"
    record = json.loads((out / "privacy.json").read_text())["models"]["popularity-standard"]
    assert record["privacy"] is None and record["exchangeable"] is True
    assert main(["privacy", "--model", str(model), "--out", str(out), "--threads", "1"]) == 2  # no --data
    groups = pd.DataFrame({"model": ["base", "dp"], "attribute": "all", "group": "all", "metric": "ndcg"})
    meta = {"config": {}, "models": {"base": {}, "dp": {"privacy": {"epsilon_spent": 0.99, "epsilon_target": 1,
                                                                     "delta": 1e-4, "max_grad_norm": 1.0}}}}
    audit = AuditResult(None, None, groups, None, None, meta=meta, mia=table.assign(model="dp"))
    pdf = ReportPDF(paper="A4", running_title="t", footer_note="f", creation_date=dt.datetime(2026, 1, 1))
    pdf.add_page()
    privacy_section(pdf, audit)
    (tmp_path / "s.pdf").write_bytes(bytes(pdf.output()))
    if shutil.which("pdftotext"):
        text = " ".join(subprocess.run(["pdftotext", str(tmp_path / "s.pdf"), "-"], capture_output=True,
                                       text=True).stdout.split())
        assert "Membership inference" in text and "epsilon 0.99" in text and "(target 1)" in text
        assert "no differential-privacy guarantee" in text
