"""The Explain page's probes and the Privacy page's analyses as worker jobs (issue 17): each job's result
folder reads back to exactly the numbers of the fairaudit function it runs, a bad spec ends as a plain
failure, and the pages start the jobs with buttons and draw the folders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairaudit.audit import AuditConfig, AuditResult, split_for_model
from fairaudit.data import make_split, write_sample
from fairaudit.explain import fairllm_probe, probe_attribute, probe_users, read_probe_table
from fairaudit.models import create_model, load_model
from fairaudit.privacy import membership_inference, privacy_cost, read_membership, read_privacy_cost
from fairaudit.service import DataSource
from fairaudit.workspace import start_job

ROUNDS = 30
#: The two-tower LLM recommender at its smallest (as in tests/test_privacy_dp.py).
SMALL_LLM = dict(dim=8, epochs=2, batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small dataset folder, its data, and a saved popularity model trained on a random split."""
    root = tmp_path_factory.mktemp("tiny")
    write_sample(root / "data", seed=2, n_users=90, n_items=40, n_interactions=1_800)
    source = DataSource("folder", path=str(root / "data"))
    data = source.load()
    model = create_model("popularity").fit(data, make_split(data, "random", seed=0))
    model.save(root / "pop")
    return root, source, data


def _run(root, kind: str, spec: dict, name: str):
    """Run a job of ``kind`` (inline: tests/conftest.py) and return it with its result folder."""
    out = root / "results" / name
    job = start_job(root / "ws", kind, spec, out_dir=out)
    return job, out


def test_probe_job_writes_the_probe_table(tiny):
    root, source, data = tiny
    spec = {"data": source.to_dict(), "model": str(root / "pop"), "attribute": "gender", "k": 5, "users": 40,
            "rounds": ROUNDS}  # fmt: skip
    job, out = _run(root, "probe", spec, "probe")
    assert job.status == "done", job.error
    model = load_model(root / "pop", data)
    expected = probe_attribute(model, data, "gender", users=40, k=5, bootstrap_rounds=ROUNDS)
    pd.testing.assert_frame_equal(read_probe_table(out), expected)
    # popularity ignores attributes: every list is unchanged (the control is not flagged)
    assert (expected.loc[expected["metric"] == "jaccard", "estimate"] == 1.0).all()
    # A table that no longer reads is still the job's own earlier result: a rerun replaces it (recognising the
    # folder by reading the table would call it foreign now that the reader checks the schema).
    (out / "probes.csv").write_text("damaged")
    again, _ = _run(root, "probe", spec, "probe")
    assert again.status == "done", again.error
    pd.testing.assert_frame_equal(read_probe_table(out), expected)


def test_probe_reports_progress_per_counterfactual_value(tiny):
    _, _, data = tiny
    calls = []
    model = create_model("popularity").fit(data, make_split(data, "random", seed=0))
    probe_users(model, data, "gender", users=10, k=3, progress=lambda done, total: calls.append((done, total)))
    values = sorted(set(data.users["gender"].astype(str)) - {"unknown"})
    assert calls == [(n, len(values)) for n in range(len(values) + 1)]


def test_fairllm_job_and_its_prompt_count(tiny):
    root, source, data = tiny
    spec = {"data": source.to_dict(), "model": str(root / "pop"), "name": "pop", "attribute": "gender", "k": 5,
            "users": 12, "rounds": ROUNDS, "split": {"method": "random", "seed": 0}}  # fmt: skip
    job, out = _run(root, "fairllm", spec, "fairllm")
    assert job.status == "done", job.error
    model = load_model(root / "pop", data)
    split = make_split(data, "random", seed=0)
    calls = []
    expected = fairllm_probe({"pop": model}, data, split, ["gender"], users=12, k=5, bootstrap_rounds=ROUNDS,
                             progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    pd.testing.assert_frame_equal(read_probe_table(out, "fairllm"), expected)
    n_values = len(set(data.users["gender"].astype(str)) - {"unknown"})
    total = 12 * (2 + n_values)  # the neutral list, its re-ask, one list per stated value: one prompt per user each
    assert calls == [(n * 12, total) for n in range(2 + n_values + 1)]
    state = json.loads((job.folder / "state.json").read_text())
    assert state["status"] == "done"


def test_membership_job_writes_mia_and_records(tiny):
    root, source, data = tiny
    spec = {"data": source.to_dict(), "model": str(root / "pop"), "name": "pop", "attributes": ["gender"],
            "attack": "rank", "rounds": ROUNDS}  # fmt: skip
    job, out = _run(root, "membership", spec, "mia")
    assert job.status == "done", job.error
    model = load_model(root / "pop", data)
    calls = []
    expected = membership_inference(model, data, split_for_model(data, model), name="pop", attributes=["gender"],
                                    attack="rank", rounds=ROUNDS, progress=lambda d, t: calls.append((d, t)))
    table, records = read_membership(out)
    pd.testing.assert_frame_equal(table, expected)
    assert calls == [(0, 2), (1, 2), (2, 2)]  # the overall row, then gender
    assert records["models"]["pop"]["exchangeable"] is True and records["models"]["pop"]["privacy"] is None
    assert records["settings"] == {"attack": "rank", "rounds": ROUNDS, "attributes": ["gender"]}


@pytest.mark.parametrize("kind, spec, message", [
    ("probe", {"model": "no/such/model", "attribute": "gender", "k": 5, "users": 10, "rounds": 10}, "no/such/model"),
    ("probe", {"attribute": "shoe_size", "k": 5, "users": 10, "rounds": 10}, "shoe_size"),
    ("membership", {"attributes": ["gender"], "attack": "guess", "rounds": 10, "name": "p"}, "Unknown attack 'guess'"),
])  # fmt: skip
def test_a_bad_spec_fails_with_a_plain_message(tiny, kind, spec, message):
    root, source, _ = tiny
    job, out = _run(root, kind, {"data": source.to_dict(), "model": str(root / "pop"), **spec}, f"bad-{kind}")
    assert job.status == "failed" and message in job.error and "Error:" not in job.error
    assert not out.exists()


# Slow (~15 s): trains a DP two-tower LLM and its twin, then the job audits both and prices DP.
@pytest.mark.slow
def test_privacy_cost_job_audits_both_and_prices_dp(tiny, tmp_path):
    root, source, data = tiny
    split = make_split(data, "random", seed=0)
    create_model("llm", **SMALL_LLM).fit(data, split).save(tmp_path / "base")
    create_model("llm", **SMALL_LLM, dp_epsilon=2.0).fit(data, split).save(tmp_path / "dp")
    config = AuditConfig(attributes=("gender",), bootstrap_rounds=ROUNDS).to_dict()
    spec = {"data": source.to_dict(), "model": str(tmp_path / "dp"), "name": "dp", "twin": str(tmp_path / "base"),
            "twin_name": "base", "config": json.loads(json.dumps(config))}  # fmt: skip
    job, out = _run(root, "privacy_cost", spec, "cost")
    assert job.status == "done", job.error
    audit = AuditResult.read(out / "audit")
    assert audit.models == ["dp", "base"]
    expected = privacy_cost(out / "audit", model_dp="dp", model_base="base", dataset=data)
    table = read_privacy_cost(out)
    pd.testing.assert_frame_equal(table, expected)
    assert set(table["model_dp"]) == {"dp"} and 1.0 < table["epsilon"].iloc[0] <= 2.0
    items = table[table["side"] == "item"]
    assert abs(items["cost"].sum()) < 1e-9  # exposure shares sum to one in every list: the costs cancel
    # the sidebar's model without DP: a plain failure naming it
    job, _ = _run(root, "privacy_cost", {**spec, "model": str(tmp_path / "base"), "twin": str(tmp_path / "dp"),
                                         "name": "base", "twin_name": "dp"}, "cost-not-dp")  # fmt: skip
    assert job.status == "failed" and "Model 'base'" in job.error and "differential privacy" in job.error


# Slow (~15 s): the bundled sample's model on the Privacy and Explain pages.
@pytest.mark.slow
def test_pages_start_the_jobs_with_buttons_and_draw_the_results(tmp_path, monkeypatch):
    """The bundled sample: the probe and membership inference run as jobs (inline here) from their buttons;
    the DP cost of a model trained without DP says why, as a message."""
    from streamlit.testing.v1 import AppTest

    from tests.test_app import ROOT, WAIT_CEILING_S, texts

    monkeypatch.setenv("FAIRAUDIT_WORKSPACE", str(tmp_path / "ws"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=WAIT_CEILING_S)
    at.session_state["audit_rounds"] = ROUNDS
    at.switch_page("pages/privacy.py").run()
    assert not at.exception
    at.button(key="privacy_mia_run").click().run()
    assert not at.exception and not at.error, texts(at.error)
    overall = at.metric[-1]
    assert overall.label == "AUC, all users" and 0.0 <= float(overall.value) <= 1.0
    mia = at.dataframe[0].value
    assert mia["attribute"].iloc[0] == "all" and f"{mia['auc'].iloc[0]:.3f}" == overall.value
    results = list((tmp_path / "ws" / "results").glob("membership-*"))
    assert len(results) == 1 and (results[0] / "mia.csv").is_file()
    at.run()  # a new run without the click still shows the folder's result
    assert at.dataframe[0].value.equals(mia)
    # The sidebar model has no DP record: the page says so and offers no comparison (the job would refuse it).
    assert not [b for b in at.button if b.key == "privacy_cost_run"]
    assert any("trained without DP" in i.value for i in at.info)

    at.switch_page("pages/explain.py").run()
    at.session_state["explain_tab"] = "Counterfactual probes"
    at.run()
    at.selectbox(key="probe_attribute").select("gender").run()
    at.button(key="probe_run").click().run()
    assert not at.exception and not at.error, texts(at.error)
    probe = at.dataframe[-1].value
    assert set(probe["attribute"]) == {"gender"} and np.isfinite(probe["estimate"]).all()


class _Counts:
    """A stand-in for the worker's reporter that keeps every n/N it is given."""

    def __init__(self) -> None:
        self.counts: list[tuple[int, int]] = []

    def phase(self, name: str, **fields) -> None:
        pass

    def count(self, done: int, total: int) -> None:
        self.counts.append((done, total))


# Slow (~10 s): a tiny generative model answering planted lists, saved and loaded as the worker does.
@pytest.mark.slow
def test_fairllm_job_of_a_generative_model_counts_prompts_within_each_list(tmp_path, monkeypatch):
    from fairaudit.models import LanguageModel
    from fairaudit.workspace._run_explain import run_fairllm
    from tests.conftest import make_tiny_dataset
    from tests.tiny_lm import build_tiny_lm

    monkeypatch.setenv("FAIRAUDIT_CACHE", str(tmp_path / "cache"))
    def answer(self, prompts, *, progress=None, batch_size=4, **kw):  # planted answers, reported per batch
        for done in range(0, len(prompts) + 1, batch_size):
            progress(done, len(prompts))
        return ["1. Item 0\n2. Item 4"] * len(prompts)

    monkeypatch.setattr(LanguageModel, "generate", answer)
    tiny = make_tiny_dataset()
    source = DataSource("folder", path=str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    for name, table in (("interactions", tiny.interactions), ("users", tiny.users), ("items", tiny.items)):
        table.to_csv(tmp_path / "data" / f"{name}.csv", index=False)
    data = source.load()
    split = make_split(data, "random", seed=0)
    model = create_model("generative", lm=str(build_tiny_lm(tmp_path / "lm")), mode="generate", n_generate=3,
                         match_threshold=1.0, device="cpu", history_items=2, batch_size=4).fit(data, split)
    model.save(tmp_path / "gen")
    spec = {"data": source.to_dict(), "model": str(tmp_path / "gen"),
            "name": "gen", "attribute": "gender", "k": 3, "users": 8, "rounds": ROUNDS,
            "split": {"method": "random", "seed": 0}, "out_dir": str(tmp_path / "out")}  # fmt: skip
    report = _Counts()
    run_fairllm(spec, report)
    total = report.counts[-1][1]
    assert report.counts[-1] == (total, total) and total == 8 * (2 + 2)
    done = [d for d, _ in report.counts]
    assert done == sorted(done) and any(d % 8 for d in done)  # also between two lists
    assert set(read_probe_table(tmp_path / "out", "fairllm")["model"]) == {"gen"}
