"""The dashboard under ``streamlit.testing.v1.AppTest``: every page, the sample-data happy path,
bad uploads, column mapping, private sessions, cancelling training and small-group flags."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from fairaudit.data import load_sample, make_split
from fairaudit.data._validate import DUPLICATE_PAIRS, MISSING_COLUMN
from fairaudit.metrics import accuracy_metrics
from fairaudit.models import load_model
from fairaudit.workspace import UPLOAD_NO_ROWS, ZIP_UNSAFE_PATH
from tests.conftest import WAIT_CEILING_S, zip_bytes

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("data", "model", "audit", "explain", "compare", "report", "robustness", "dynamics", "privacy", "profiles")
NEEDS_MODEL = ("audit", "explain", "report")
#: Bootstrap rounds for tests (the page's minimum): enough for CIs to exist, fast to compute.
ROUNDS = 50

TINY_INTERACTIONS = "user_id,item_id,rating\n" + "".join(
    f"u{u},i{(u * 3 + j) % 12},4\n" for u in range(12) for j in range(5)
)
TINY_USERS = "user_id,gender\n" + "".join(f"u{u},{'FM'[u % 2]}\n" for u in range(12))


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FAIRAUDIT_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws"


def start() -> AppTest:
    """A fresh session on the Data page (the app opens on the Audit page of the bundled sample)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=WAIT_CEILING_S)
    at.switch_page("pages/data.py").run()
    assert not at.exception
    at.session_state["audit_rounds"] = ROUNDS
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


#: A backslash escape of ``pages._state.md`` (what the pages write so data shows literally in markdown).
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def texts(elements) -> list[str]:
    """What the user reads in these elements: their markdown without ``md``'s escapes and hard breaks."""
    return [_MD_ESCAPE.sub(r"\1", e.value).replace("  \n", "\n") for e in elements]


def train(at: AppTest, kind: str, **params) -> None:
    goto(at, "model")
    at.selectbox(key="train_kind").select(kind).run()
    for name, value in params.items():
        at.number_input(key=f"param_{kind}_{name}").set_value(value)
    at.button(key="train").click().run()
    assert not at.exception and not at.error, texts(at.error)
    finish_training(at)
    assert any("Trained and saved" in s for s in texts(at.success))


def finish_training(at: AppTest) -> None:
    """Wait for the Model page's training job, then draw the page once more. A tiny model can finish
    before the click's rerun ends, when the page has already collected the job (no ``job`` left)."""
    if "job" in at.session_state:
        job = at.session_state["job"]
        assert job.wait(WAIT_CEILING_S) == "done", job.error
    at.run()


def upload(at: AppTest, **files: tuple[str, bytes]) -> AppTest:
    """Drop ``files`` (any keyword: role, ``zip``) together on the Data page's one drop zone."""
    goto(at, "data")
    dropped = [(name, content, "application/octet-stream") for name, content in files.values()]
    at.file_uploader(key="upload_files").set_value(dropped)
    at.run()
    assert not at.exception
    return at


#: Libraries the first screen must not import: it reads the bundled audit, it loads no model and builds no PDF.
FIRST_SCREEN_UNUSED = ("torch", "transformers", "shap", "sklearn", "safetensors", "fpdf", "scipy.stats", "pyspark")
#: The first screen of a fresh server, in a fresh interpreter: what it drew and which libraries it imported.
_FIRST_SCREEN = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=float(sys.argv[2]))
at.run()
shown = {"exceptions": [str(e.value) for e in at.exception], "subheaders": [s.value for s in at.subheader]}
others = at.selectbox(key="_w_model").options[1:]
for label in others:  # each other bundled model, picked in the sidebar: its own audit is bundled too
    at.selectbox(key="_w_model").select(label).run()
    shown["exceptions"] += [str(e.value) for e in at.exception]
    shown[label] = [s.value for s in at.subheader]
shown.update(others=others, imported=sorted(m for m in json.loads(sys.argv[3]) if m in sys.modules))
print(json.dumps(shown))
"""


def test_first_screen_reads_the_bundled_audit_without_model_libraries(workspace):
    """``make dashboard`` on a fresh machine: the Audit page of the sample shows its findings from
    ``sample_data/audits`` (nothing computed), also for each other bundled model picked in the sidebar, and
    the server imports no torch, PDF or model library for it."""
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_SCREEN, str(ROOT / "app.py"), str(WAIT_CEILING_S), json.dumps(FIRST_SCREEN_UNUSED)],
        capture_output=True, text=True, timeout=WAIT_CEILING_S + 60, env={**os.environ, "FAIRAUDIT_WORKSPACE": str(workspace)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout.splitlines()[-1])
    assert not shown["exceptions"] and "Findings" in shown["subheaders"], shown
    assert shown["others"] and all("Findings" in shown[label] for label in shown["others"]), shown
    computed = sorted(p.name for p in (workspace / "audit_cache").glob("*"))
    assert not computed, ("sample_data/audits does not match the auditing code, so the first screen computed its "
                          "audit: refresh the bundle with the commands in sample_data/README.md")  # fmt: skip
    assert shown["imported"] == [], shown["imported"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_a_fresh_session(workspace, page):
    at = goto(start(), page)
    assert at.title[0].value == page.capitalize()
    assert not at.error
    if page in NEEDS_MODEL:  # the bundled sample comes with ready models: nothing to train first
        assert not any("No model yet" in t for t in texts(at.info))


# Slow (~10 s): the one end-to-end walk through every page (train two models, audit, compare, explain, PDF).
@pytest.mark.slow
def test_sample_happy_path_train_audit_compare_explain_report(workspace, monkeypatch):
    from fairaudit import service

    calls = []  # the pages' cached audit runs fairaudit.service.audit_models -> run_audit
    real_audit = service.run_audit
    monkeypatch.setattr(service, "run_audit", lambda *a, **kw: calls.append(a[2].keys()) or real_audit(*a, **kw))

    # Data: the bundled sample with its sizes, validation and a profile with small groups marked.
    at = start()
    sample = load_sample()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Users"] == f"{sample.summary()['n_users']:,}"
    assert metrics["Interactions"] == f"{sample.summary()['n_interactions']:,}"
    at.selectbox(key="profile_attribute").select("gender*age_band").run()
    assert any("Small groups (under 30 users)" in w for w in texts(at.warning))

    # Model: two quick baselines, trained in the background and saved in the workspace.
    train(at, "popularity")
    train(at, "itemknn")
    saved = sorted(p.name.split("-")[0] for p in (workspace / "models").iterdir())
    assert saved == ["itemknn", "popularity"]
    at.selectbox(key="train_kind").select("popularity").run()
    at.button(key="train").click().run()  # same configuration, same data: reused, not retrained
    assert any("already trained on this data" in i for i in texts(at.info)) and "job" not in at.session_state
    assert at.session_state["model"].startswith("popularity-")
    at.session_state["model"] = next(m for m in _labels(at) if m.startswith("popularity"))
    goto(at, "model")
    holdout = at.dataframe[0].value
    pop_dir = next((workspace / "models").glob("popularity-*"))
    model, split = load_model(pop_dir, sample), make_split(sample, "random", seed=0)
    users = split.test["user_id"].unique()
    expected = accuracy_metrics(model.recommend(users, k=10), split.test, k=10).mean()
    assert holdout["ndcg"].iloc[0] == pytest.approx(round(expected["ndcg"], 4))

    # Audit: cards, charts with CSVs, small groups flagged; a slice change filters, never re-audits.
    goto(at, "audit")
    cards = {m.label: m.value for m in at.metric}
    assert cards["NDCG@10"] == f"{expected['ndcg']:.3f}"
    assert [s.value for s in at.subheader][:1] == ["Findings"]  # the findings open the page
    assert len(calls) == 1
    at.session_state["attributes"] = ["gender"]
    at.run()
    n_one = len(at.get("plotly_chart"))
    at.session_state["attributes"] = ["gender", "age_band", "gender*age_band"]
    at.run()
    assert not at.exception and len(calls) == 1
    assert len(at.get("plotly_chart")) > n_one
    assert any("Small groups (under 30 users)" in w and "gender*age_band=" in w for w in texts(at.warning))
    assert any(b.label.startswith("Data as CSV") for b in at.get("download_button"))
    # Every tab draws from the same cached audit (tabs are lazy: only the open one is built).
    for tab, n_charts in (("Gaps", 1), ("Exposure", 4), ("Diversity & calibration", 3), ("Tables", 0)):
        at.session_state["audit_tab"] = tab
        at.run()
        assert not at.exception and not at.error, (tab, texts(at.error))
        assert len(at.get("plotly_chart")) == n_charts, tab
    assert len(calls) == 1
    at.session_state["audit_tab"] = "Accuracy by group"

    # Compare: paired differences, verdict sentences and the trade-off chart for both models.
    goto(at, "compare")
    assert len(calls) == 2 and len(calls[-1]) == 2
    verdict = at.dataframe[0].value
    candidate = next(m for m in _labels(at) if m.startswith("itemknn"))
    assert set(verdict["model_b"]) == {candidate}
    assert set(verdict["attribute"]) == {"gender", "age_band", "gender*age_band"}
    for row in verdict.itertuples():
        assert row.verdict.startswith(f"{candidate} ") and f"the {row.attribute} NDCG@10 gap" in row.verdict
        assert f"{abs(row.gap_reduction):.3f}" in row.verdict
    assert len(at.get("plotly_chart")) == 3

    # Explain: one user's history and recommendations; popularity ignores attributes, so a
    # counterfactual probe must find exactly no change.
    goto(at, "explain")
    recs = at.dataframe[1].value
    assert len(recs) == 10 and list(recs["rank"]) == list(range(1, 11))
    assert any("cannot. Train an **llm** model" in i for i in texts(at.info))
    at.session_state["explain_tab"] = "Counterfactual probes"
    at.run()
    at.selectbox(key="probe_attribute").select("gender").run()
    at.button(key="probe_run").click().run()  # a probe job (inline under the tests)
    assert not at.exception and not at.error
    probe = at.dataframe[-1].value
    assert (probe.loc[probe["metric"] == "jaccard", "estimate"] == 1.0).all()
    assert any("No change: re-scoring the probed users as if gender were" in t for t in texts(at.markdown))
    at.session_state["explain_tab"] = "Gap drivers"
    at.run()
    at.toggle(key="drivers_on").set_value(True).run()
    assert not at.exception and not at.error, texts(at.error)
    assert any(m.startswith("Surrogate fit: held-out R² = ") for m in texts(at.success) + texts(at.warning))
    assert len(at.get("plotly_chart")) == 2 and len(calls) == 2  # drivers + gap breakdown; the cached audit

    # Report: the audit folder and its PDF, downloadable.
    goto(at, "report")
    at.checkbox(key="report_charts").uncheck()
    at.button(key="build_pdf").click().run()
    assert not at.exception and not at.error, texts(at.error)
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download the PDF", "Download the audit folder (.zip)"]
    assert list((workspace / "sessions").glob("*/audits/*/audit.pdf"))

    # Adding an intersection is a new audit configuration (one more audit), then a slice like any other.
    goto(at, "audit")
    at.selectbox(key="new_intersection").select("gender*region")
    at.button(key="add_intersection").click().run()
    assert not at.exception and "gender*region" in at.session_state["attributes"]
    assert len(calls) == 3
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert len(titles) == len(at.session_state["attributes"]) and any("by gender*region" in t for t in titles)


def _labels(at: AppTest) -> list[str]:
    from pages import _state

    return [m.label for m in _state.workspace().saved_models()]


BAD_UPLOADS = {
    "missing item_id": ({"interactions": ("plays.csv", b"user_id,rating\n1,5\n")},
                        MISSING_COLUMN.split(";")[0].format(column="item_id")),
    "empty table": ({"interactions": ("plays.csv", b"user_id,item_id\n")},
                    UPLOAD_NO_ROWS.format("plays.csv", "user_id, item_id")),
    "corrupt parquet": ({"interactions": ("plays.parquet", b"PAR1 not really")}, "could not be read as Parquet"),
    "unsafe zip": ({"zip": ("evil.zip", zip_bytes({"../x.csv": b"a"}))}, ZIP_UNSAFE_PATH.format("evil.zip", "../x.csv")),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_give_their_message_and_the_app_stays_usable(workspace, case):
    files, message = BAD_UPLOADS[case]
    at = upload(start(), **files)  # the drop zone checks every file at once, before a Load button
    assert not at.exception
    assert any(message in e for e in texts(at.error)), texts(at.error)
    assert list(at.session_state["datasets"]) == ["Sample data (bundled)"]
    goto(at, "audit")  # still usable: other pages render normally
    assert at.session_state["dataset"] == "Sample data (bundled)"


def test_upload_with_column_mapping_and_warnings(workspace):
    inter = TINY_INTERACTIONS.replace("user_id,item_id", "uid,product") + "u0,i0,4\n"  # one duplicate pair
    at = upload(start(), interactions=("plays.csv", inter.encode()), users=("people.csv", TINY_USERS.encode()))
    assert any(MISSING_COLUMN.split(";")[0].format(column="item_id") in e for e in texts(at.error))
    at.selectbox(key="map_interactions_product").select("item_id").run()
    at.button(key="load_upload").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.session_state["dataset"] == "upload · plays.csv"
    assert {m.label: m.value for m in at.metric}["Users"] == "12"
    assert any(DUPLICATE_PAIRS in w for w in texts(at.warning))


def _movielens_100k_zip() -> bytes:
    """A 6-user, 5-item folder in the MovieLens 100K layout (Latin-1, ``|`` and tab separated)."""
    data = "".join(
        f"{u}\t{i}\t{1 + (u + i) % 5}\t{880000000 + 10 * u + i}\n" for u in range(1, 7) for i in range(1, 5)
    )
    users = "".join(f"{u}|{20 + 5 * u}|{'MF'[u % 2]}|writer|{10001 + u}\n" for u in range(1, 7))
    items = "".join(f"{i}|Film {i} (1995)|01-Jan-1995||http://x|{'0|1|0' + '|0' * 16}\n" for i in range(1, 6))
    return zip_bytes({"ml-100k/u.data": data.encode(), "ml-100k/u.user": users.encode("latin-1"),
                 "ml-100k/u.item": items.encode("latin-1")})


def test_movielens_zip_upload(workspace):
    at = upload(start(), zip=("ml-100k.zip", _movielens_100k_zip()))
    at.button(key="load_upload").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.session_state["dataset"] == "upload · ml-100k.zip"
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Users"], metrics["Items"], metrics["Interactions"]) == ("6", "5", "24")
    assert at.session_state["attributes"] == ["gender"]  # the sidebar now offers the upload's attributes


def test_sessions_do_not_see_each_others_uploads(workspace):
    alice = upload(start(), interactions=("mine.csv", TINY_INTERACTIONS.encode()))
    alice.button(key="load_upload").click().run()
    assert "upload · mine.csv" in alice.session_state["datasets"]
    bob = start()
    assert list(bob.session_state["datasets"]) == ["Sample data (bundled)"]
    assert alice.session_state["session_id"] != bob.session_state["session_id"]
    files = list((workspace / "sessions").rglob("*mine.csv"))
    assert len(files) == 1 and alice.session_state["session_id"] in str(files[0])


def test_training_can_be_cancelled_and_saves_nothing(workspace):
    at = upload(start(), interactions=("plays.csv", TINY_INTERACTIONS.encode()), users=("u.csv", TINY_USERS.encode()))
    at.button(key="load_upload").click().run()
    goto(at, "model")
    at.selectbox(key="train_kind").select("mf").run()
    at.number_input(key="param_mf_iterations").set_value(100_000)
    at.button(key="train").click().run()
    job = at.session_state["job"]
    deadline = time.monotonic() + WAIT_CEILING_S
    while (job.latest is None or job.latest.epoch < 2) and job.status == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.status == "running" and job.latest is not None and job.latest.epoch >= 2, (job.status, job.error)
    at.run()  # live progress: epoch, loss, time left, while the page stays interactive
    progress = at.get("progress")[0].proto.text
    assert progress.startswith("Training mf: epoch ") and progress.endswith("/100000")
    shown = {m.label: m.value for m in at.metric}
    assert shown["Loss"] != "—" and shown["Time left"].startswith("~")
    at.button(key="cancel_training").click().run()  # its callback ends the worker; the same run says so
    assert job.status == "cancelled"
    assert any("Training stopped" in w for w in texts(at.warning))
    assert not (workspace / "models").exists() or not any((workspace / "models").iterdir())
    assert "job" not in at.session_state


def test_model_folder_errors_are_messages(workspace, tmp_path):
    at = goto(start(), "model")
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "config.json").write_text("{}")
    at.text_input(key="load_path").input(str(tmp_path / "fake"))
    at.button(key="load_folder").click().run()
    assert not at.exception
    assert any("model.safetensors is missing" in e for e in texts(at.error))
    assert pd.Series(at.session_state["loaded_models"]).empty


def test_a_new_browser_session_prunes_long_idle_session_folders(workspace):
    import os

    from fairaudit.workspace import Workspace, new_session_id

    idle = Workspace(workspace).save_upload(new_session_id(), "users.csv", b"user_id\n1\n").parents[1]
    month_ago = time.time() - 30 * 86_400
    for path in (idle, idle / "uploads", idle / "uploads" / "users.csv"):
        os.utime(path, (month_ago, month_ago))
    start()
    assert not idle.exists()


def test_adversarial_sweep_of_a_sqrt_pooled_llm_trains_with_mean_pooling(workspace):
    at = start()
    goto(at, "model")
    at.selectbox(key="train_kind").select("llm").run()
    assert at.selectbox(key="param_llm_pooling").options == ["sqrt", "mean"]  # Literal parameters are select boxes
    assert at.selectbox(key="param_llm_fairness").value == "none"
    train(at, "llm", epochs=1)
    goto(at, "compare")
    at.selectbox(key="sweep_mitigation").select("adversarial").run()
    assert at.checkbox(key="sweep_mean_pooling").value  # offered, and on, for a sqrt-pooled model
    assert not any("pools histories" in w for w in texts(at.warning))
    at.checkbox(key="sweep_mean_pooling").uncheck().run()
    assert any("pools histories with `sqrt`" in w for w in texts(at.warning))
    at.checkbox(key="sweep_mean_pooling").check().run()
    at.text_input(key="sweep_strengths").input("0, 1").run()
    at.selectbox(key="sweep_attribute").select("gender")
    at.button(key="run_sweep").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert list(at.dataframe[-1].value["target_metric"]) == ["attribute_recovered"] * 2
    configs = sorted(workspace.rglob("adversarial@*/config.json"))
    assert len(configs) == 2 and all(json.loads(c.read_text())["params"]["pooling"] == "mean" for c in configs)
    at.selectbox(key="sweep_mitigation").select("difference").run()
    assert not at.get("checkbox") or "sweep_mean_pooling" not in [c.key for c in at.checkbox]


def test_compare_sweep_draws_a_pareto_plot_and_saves_a_point_as_candidate(workspace):
    from fairaudit.models import RERANK_KINDS

    at = start()
    train(at, "popularity")
    assert not set(at.selectbox(key="train_kind").options) & set(RERANK_KINDS)  # re-rankers need a base model
    goto(at, "compare")
    at.selectbox(key="sweep_mitigation").select("difference").run()
    assert any("training term of the LLM recommender" in t for t in texts(at.info))
    assert not [c for c in at.get("plotly_chart") if c.key == "fig_sweep"]  # only the bundled models' trade-offs

    at.selectbox(key="sweep_mitigation").select("rerank_exposure").run()
    at.text_input(key="sweep_strengths").input("0, x").run()
    assert any(e.startswith("Strengths must be numbers separated by commas") for e in texts(at.error))
    at.text_input(key="sweep_strengths").input("1, 0").run()
    at.selectbox(key="sweep_attribute").select("gender")
    at.button(key="run_sweep").click().run()
    assert not at.exception and not at.error, texts(at.error)
    (chart,) = [c for c in at.get("plotly_chart") if c.key == "fig_sweep"]
    spec = json.loads(chart.proto.spec)
    assert spec["layout"]["title"]["text"].startswith("rerank_exposure sweep: NDCG@10 vs exposure_gap")
    assert sorted(label for trace in spec["data"] for label in trace["text"]) == ["λ=0", "λ=1"]  # one per strength
    table = at.dataframe[-1].value
    assert list(table["strength"]) == [0.0, 1.0] and list(table["model"]) == ["rerank_exposure@0", "rerank_exposure@1"]
    assert table["target_improvement"].iloc[0] == 0.0
    assert any(b.label == "Data as CSV (sweep_rerank_exposure.csv)" for b in at.get("download_button"))

    at.selectbox(key="sweep_point").select("rerank_exposure@1").run()
    at.button(key="save_candidate").click().run()
    assert not at.exception and not at.error, texts(at.error)
    saved = [m for m in _labels(at) if m.startswith("rerank_exposure-")]
    assert len(saved) == 1 and any(f"as candidate model **{saved[0]}**" in s for s in texts(at.success))
    assert saved[0] in at.sidebar.selectbox(key="_w_model").options
    assert load_model(workspace / "models" / next(p.name for p in (workspace / "models").glob("rerank_exposure-*")),
                      load_sample()).strength == 1.0
