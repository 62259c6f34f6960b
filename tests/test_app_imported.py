"""Dashboard: import recommendation lists made by another system (Model page) and audit them."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairaudit.data import load_sample, make_split
from fairaudit.metrics import accuracy_metrics
from fairaudit.models import create_model
from tests.test_app import goto, start, texts, train


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FAIRAUDIT_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws"


def _lists() -> tuple[bytes, float]:
    """Top-10 lists of a popularity model on the dashboard's split (random, seed 0), as another system's file,
    and their mean NDCG@10 on that split."""
    data = load_sample()
    split = make_split(data, "random", seed=0)
    model = create_model("popularity").fit(data, split)
    recs = model.recommend(split.test["user_id"].unique(), k=10)
    ndcg = accuracy_metrics(recs, split.test, k=10)["ndcg"].mean()
    return recs[["user_id", "item_id", "rank", "score"]].to_csv(index=False).encode(), ndcg


def test_import_lists_then_audit_compare_explain(workspace):
    content, ndcg = _lists()
    at = goto(start(), "model")
    at.file_uploader(key="import_recs").set_value(("other.csv", content, "text/csv"))
    at.text_input(key="import_name").input("other-pop")
    at.run()
    at.button(key="import_button").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.session_state["model"] == "imported-other-pop"
    assert any("Imported" in s for s in texts(at.success))
    # The upload and the model folder stay in the session's private folder, not in the shared models.
    session = workspace / "sessions" / at.session_state["session_id"]
    assert any(p.name.startswith("recommendations-") for p in (session / "imported").iterdir())
    assert not (workspace / "models").exists() or not any((workspace / "models").iterdir())

    at = goto(at, "audit")
    assert not at.error, texts(at.error)
    cards = {m.label: m.value for m in at.metric}
    assert cards["NDCG@10"] == f"{ndcg:.3f}"  # the imported lists audit as the model that made them
    # Explain: what applies; the probes say plainly that imported lists cannot be re-scored.
    at = goto(at, "explain")
    assert not at.error, texts(at.error)
    at.session_state["explain_tab"] = "Counterfactual probes"
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert any("cannot be probed" in i for i in texts(at.info))
    at = goto(at, "report")
    assert not at.error, texts(at.error)

    # Compare: beside a model trained in the dashboard on the same split.
    train(at, "popularity")
    at.session_state["model"] = "imported-other-pop"
    at = goto(at, "compare")
    assert not at.error, texts(at.error)
    assert set(at.session_state["compare_models"]) >= {"imported-other-pop"} and len(at.session_state["compare_models"]) == 2
    assert any("imported-other-pop" in m or "popularity" in m for m in texts(at.markdown))


def test_bad_lists_show_the_validation_errors(workspace):
    at = goto(start(), "model")
    at.file_uploader(key="import_recs").set_value(("bad.csv", b"user_id,item_id\n1,2\n", "text/csv"))
    at.run()
    at.button(key="import_button").click().run()
    assert not at.exception
    assert any("cannot be imported" in e and "rank" in e for e in texts(at.error))
    assert not any(m.startswith("imported-") for m in at.session_state["imported_models"])


def test_sweep_re_ranks_imported_lists_on_their_own_test_file(workspace):
    """A re-ranking sweep over an imported system uses the split the lists were imported with (here a
    held-out test file, not the dashboard's split) and re-ranks within the lists."""
    data = load_sample()
    split = make_split(data, "random", seed=1)  # another split than the dashboard's (seed 0)
    model = create_model("popularity").fit(data, split)
    recs = model.recommend(split.test["user_id"].unique(), k=30)
    at = goto(start(), "model")
    at.file_uploader(key="import_recs").set_value(
        ("lists.csv", recs[["user_id", "item_id", "rank"]].to_csv(index=False).encode(), "text/csv"))
    at.file_uploader(key="import_test").set_value(
        ("test.csv", split.test[["user_id", "item_id"]].to_csv(index=False).encode(), "text/csv"))
    at.text_input(key="import_name").input("seed1-pop")
    at.run()
    at.button(key="import_button").click().run()
    assert not at.exception and not at.error, texts(at.error)
    at = goto(at, "compare")
    at.selectbox(key="sweep_mitigation").select("rerank_exposure").run()
    at.text_input(key="sweep_strengths").input("0, 1").run()
    at.selectbox(key="sweep_attribute").select("gender")
    at.button(key="run_sweep").click().run()
    assert not at.exception and not at.error, texts(at.error)
    table = at.dataframe[-1].value
    assert list(table["strength"]) == [0.0, 1.0] and table["target_improvement"].iloc[0] == 0.0
