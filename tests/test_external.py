"""External models in process (``fairaudit.models.ExternalRecommender``) and the worked example of
``docs/external_models.md``: an ``implicit`` ALS model trained outside FairAudit, audited next to FairAudit's
own ``mf`` and ``popularity`` models (bundled sample; MovieLens 100K end to end when present).

The interface contract of the adapter runs in ``tests/test_models_contract.py`` (``TestExternal*``).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from fairaudit.audit import AuditConfig, AuditResult
from fairaudit.data import Dataset, load_dataset, load_sample, make_split
from fairaudit.explain import probe_attribute
from fairaudit.explain._probe import NOT_PROBEABLE
from fairaudit.models import ExternalRecommender, create_model
from fairaudit.models._external import (
    _BAD_SHAPE,
    _CANNOT_SAVE,
    _NAN_SCORES,
    _NOT_ATTRIBUTE_AWARE,
    _UNKNOWN_IDS,
)
from fairaudit.service import audit_models
from tests.conftest import make_tiny_dataset

implicit = pytest.importorskip("implicit")


# ---- the worked example of docs/external_models.md ---------------------------------------------
def train_als(dataset: Dataset, split, *, factors: int = 32, iterations: int = 15):
    """Train implicit's ALS outside FairAudit on the training split; returns (als, user_row, item_col)."""
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    user_ids = dataset.users["user_id"].astype(str).to_numpy()
    item_ids = dataset.items["item_id"].astype(str).to_numpy()
    user_row = pd.Series(np.arange(len(user_ids)), index=user_ids)
    item_col = pd.Series(np.arange(len(item_ids)), index=item_ids)
    rows = user_row[split.train["user_id"].astype(str)].to_numpy()
    cols = item_col[split.train["item_id"].astype(str)].to_numpy()
    user_items = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids))
    )
    with threadpool_limits(1, "blas"):  # implicit's own threads do the work; one BLAS thread each
        als = AlternatingLeastSquares(
            factors=factors, regularization=0.05, iterations=iterations, num_threads=1, random_state=0, use_gpu=False
        )
        als.fit(user_items, show_progress=False)
    return als, user_row, item_col


def wrap_als(als, user_row: pd.Series, item_col: pd.Series) -> ExternalRecommender:
    """The adapter: score = user_factors @ item_factors.T for the requested ids."""

    def als_scores(user_ids, item_ids):
        users = als.user_factors[user_row[user_ids].to_numpy()]
        items = als.item_factors[item_col[item_ids].to_numpy()]
        return users @ items.T

    return ExternalRecommender(
        score=als_scores,
        users=user_row.index,
        items=item_col.index,
        name="implicit-als",
        description=f"implicit {implicit.__version__} ALS, {als.factors} factors, trained outside FairAudit",
    )


QUICK = AuditConfig(k=10, attributes=("gender",), bootstrap_rounds=50, embedding_diversity=False)


def test_worked_example_on_the_sample(tmp_path):
    data = load_sample()
    split = make_split(data, "random", test_fraction=0.2, seed=0)
    als, user_row, item_col = train_als(data, split, factors=8, iterations=3)
    external = wrap_als(als, user_row, item_col).fit(data, split)

    # The adapter's lists are the top-10 of the factors' scores, seen items excluded.
    users = ["1", "2", "3"] if "1" in user_row.index else list(user_row.index[:3])
    recs = external.recommend(users, k=10)
    scores = als.user_factors[user_row[users].to_numpy()] @ als.item_factors.T
    seen = split.train.assign(user_id=split.train["user_id"].astype(str))
    for i, user in enumerate(users):
        mask = item_col[seen.loc[seen["user_id"] == user, "item_id"].astype(str)].to_numpy()
        row = scores[i].copy()
        row[mask] = -np.inf
        expected = item_col.index[np.argsort(-row, kind="stable")[:10]].tolist()
        assert recs.loc[recs["user_id"] == user, "item_id"].tolist() == expected

    models = {
        "implicit-als": external,
        "mf": create_model("mf", factors=8, iterations=3, device="cpu").fit(data, split),
        "popularity": create_model("popularity").fit(data, split),
    }
    out = tmp_path / "audit"
    result = audit_models(data, models, QUICK, baseline="popularity", out=out, explain=20)
    assert set(result.group_metrics["model"]) == set(models)
    assert set(result.verdicts["model_b"]) == {"implicit-als", "mf"}
    # The external model is not attribute-aware: explanations name it as not probed, with the reason.
    assert set(result.probes["model"]) == {"mf", "popularity"}
    assert result.explanations["not_probed"] == {"implicit-als": NOT_PROBEABLE.format("implicit-als")}

    again = AuditResult.read(out)
    meta = again.model_meta("implicit-als")
    assert meta["kind"] == "external" and meta["fingerprint"] == external.fingerprint()
    assert meta["params"]["name"] == "implicit-als" and "trained outside FairAudit" in meta["params"]["description"]
    assert meta["params"]["attribute_aware"] is False and meta["params"]["function"].endswith("als_scores")
    json.dumps(meta)  # everything recorded is JSON
    assert again.explanations["not_probed"] == result.explanations["not_probed"]


def test_worked_example_on_movielens_100k(movielens_100k_path, tmp_path):
    from fairaudit.report import build_report

    data = load_dataset(movielens_100k_path)
    split = make_split(data, "random", test_fraction=0.2, seed=0)
    als, user_row, item_col = train_als(data, split, factors=16, iterations=5)
    models = {"implicit-als": wrap_als(als, user_row, item_col).fit(data, split),
              "popularity": create_model("popularity").fit(data, split)}  # fmt: skip
    out = tmp_path / "audit"
    result = audit_models(data, models, QUICK, out=out)
    overall = result.rows("group_metrics", attribute="all", group="all", metric="ndcg").set_index("model")["value"]
    assert overall["implicit-als"] > 0  # a real model: it finds held-out items
    pdf = build_report(out, tmp_path / "audit.pdf", charts=False)
    assert pdf.read_bytes().startswith(b"%PDF")


# ---- probes -----------------------------------------------------------------------------------
def gender_aware_scores(user_ids, item_ids, attributes):
    """F users prefer the first half of the tiny catalogue, M users the second (read from ``attributes``)."""
    position = np.array([int(i[1:]) for i in item_ids], dtype=np.float32)
    female = (attributes["gender"].to_numpy() == "F")[:, None]
    return np.where(female, -position, position)


def blind_scores(user_ids, item_ids):
    return np.tile(np.arange(len(item_ids), dtype=np.float32), (len(user_ids), 1))


@pytest.fixture(scope="module")
def tiny():
    data = make_tiny_dataset()
    return data, make_split(data, "random", test_fraction=0.2, seed=0)


def test_attribute_aware_model_changes_its_lists_when_gender_is_overridden(tiny):
    data, split = tiny
    model = ExternalRecommender(score=gender_aware_scores, attribute_aware=True, name="aware").fit(data, split)
    base = model.recommend(["u0", "u1"], k=5)  # u0 is F, u1 is M
    as_m = model.recommend(["u0", "u1"], k=5, attribute_overrides={"gender": "M"})
    assert base.query("user_id == 'u0'")["item_id"].tolist() != as_m.query("user_id == 'u0'")["item_id"].tolist()
    assert base.query("user_id == 'u1'")["item_id"].tolist() == as_m.query("user_id == 'u1'")["item_id"].tolist()
    table = probe_attribute(model, data, "gender", k=5, bootstrap_rounds=20)
    pooled = table.query("metric == 'jaccard' and original_value == 'all'")
    assert (pooled["estimate"] < 0.5).all()  # the lists change when only gender changes


def test_blind_model_is_refused_plainly(tiny):
    data, split = tiny
    model = ExternalRecommender(score=blind_scores, name="blind").fit(data, split)
    assert not model.probeable
    with pytest.raises(ValueError, match=re.escape(NOT_PROBEABLE.format("blind"))):
        probe_attribute(model, data, "gender", k=5, bootstrap_rounds=20)
    with pytest.raises(ValueError, match=re.escape(_NOT_ATTRIBUTE_AWARE.format("blind", {"gender": "M"}))):
        model.recommend(["u0"], k=3, attribute_overrides={"gender": "M"})
    # A re-ranker over it is as (un)probeable as the model it wraps, and works otherwise.
    rerank = create_model("rerank_mmr", base=model, strength=0.5).fit(data, split)
    assert not rerank.probeable and len(rerank.recommend(["u0", "u1"], k=3)) == 6
    assert rerank.fingerprint().startswith("rerank_mmr-")


def test_reranker_around_an_external_model_is_not_saved(tiny, tmp_path):
    data, split = tiny
    model = ExternalRecommender(score=blind_scores, name="blind").fit(data, split)
    rerank = create_model("rerank_mmr", base=model, strength=0.5).fit(data, split)
    with pytest.raises(TypeError, match=re.escape(_CANNOT_SAVE.format("blind"))):
        rerank.save(tmp_path / "m")
    assert not (tmp_path / "m").exists() and list(tmp_path.iterdir()) == []


# ---- save and validation ------------------------------------------------------------------------
def test_save_is_refused(tiny, tmp_path):
    data, split = tiny
    model = ExternalRecommender(score=blind_scores, name="blind").fit(data, split)
    with pytest.raises(TypeError, match=re.escape(_CANNOT_SAVE.format("blind"))):
        model.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_bad_functions_and_ids_are_named(tiny):
    data, split = tiny
    with pytest.raises(TypeError, match="needs score=fn"):
        ExternalRecommender(score="not a function")
    wrong = ExternalRecommender(score=lambda users, items: np.zeros((len(users), 2)), name="w")
    with pytest.raises(ValueError, match=re.escape(_BAD_SHAPE.format("w", (40, 2), (40, 30)))):
        wrong.fit(data, split)
    nan = ExternalRecommender(score=lambda users, items: np.full((len(users), len(items)), np.nan), name="n")
    with pytest.raises(ValueError, match=re.escape(_NAN_SCORES.format("n", 40 * 30))):
        nan.fit(data, split)
    unknown = ExternalRecommender(score=blind_scores, users=["u0", "ghost"], name="g")
    with pytest.raises(ValueError, match=re.escape(_UNKNOWN_IDS.format("g", "user", ["ghost"]))):
        unknown.fit(data, split)


def test_known_users_and_items_subset(tiny):
    """Users outside ``users`` are unknown to the model; items outside ``items`` are never recommended."""
    data, split = tiny
    model = ExternalRecommender(score=blind_scores, users=["u3", "u1"], items=["i0", "i1", "i2", "i3"], name="s")
    model.fit(data, split)
    assert model.user_ids_.tolist() == ["u1", "u3"]
    recs = model.recommend(k=10, exclude_seen=False)
    assert set(recs["item_id"]) <= {"i0", "i1", "i2", "i3"} and len(recs) == 8
    seen = set(zip(split.train["user_id"], split.train["item_id"]))
    assert not any(pair in seen for pair in zip(*model.recommend(k=3)[["user_id", "item_id"]].to_numpy().T))
    with pytest.raises(KeyError):
        model.score(["u0"])
