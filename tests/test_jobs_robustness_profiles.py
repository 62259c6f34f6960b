"""The Robustness and Profiles pages' computations as worker jobs (kinds ``robustness`` and ``profiles``).

Each runner's folder reads back to exactly what the fairaudit function computes in this process with the
same settings; phases report n/N; a bad spec ends as a plain failure the page shows as an error.
"""

from __future__ import annotations

import pandas as pd
import pytest

from fairaudit.audit import AuditResult, split_for_model
from fairaudit.data import make_split, write_sample
from fairaudit.models import create_model, load_model, set_threads
from fairaudit.robustness import (
    ShillingAttack,
    is_robustness_folder,
    read_robustness,
    robustness_steps,
    run_robustness,
    write_robustness,
)
from fairaudit.service import DataSource
from fairaudit.workspace import Workspace, list_jobs, start_job
from fairaudit.workspace._worker import _Reporter
from tests.conftest import ROOT, WAIT_CEILING_S


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A small planted-bias sample with user texts on disk, and saved models on the dashboard's split."""
    set_threads(1)
    root = tmp_path_factory.mktemp("jobs")
    write_sample(root / "data", seed=2, n_users=150, n_items=60, n_interactions=3000)
    source = DataSource("folder", path=str(root / "data")).to_dict()
    dataset = DataSource.from_dict(source).load()
    split = make_split(dataset, "random", seed=0)
    create_model("mf", factors=8, iterations=5, device="cpu").fit(dataset, split).save(root / "models" / "mf")
    return {"root": root, "source": source, "dataset": dataset, "mf": str(root / "models" / "mf")}


@pytest.fixture(scope="module")
def llms(tiny) -> dict:
    """Two saved LLMs on the same split: without texts, and reading text profiles (1 epoch each)."""
    dataset, models = tiny["dataset"], tiny["root"] / "models"
    split = make_split(dataset, "random", seed=0)
    create_model("llm", epochs=1, seed=0).fit(dataset, split).save(models / "llm-plain")
    create_model("llm", epochs=1, seed=0, use_texts=True).fit(dataset, split).save(models / "llm-texts")
    return {"without": str(models / "llm-plain"), "with": str(models / "llm-texts")}


class _Recorder(_Reporter):
    """The worker's reporter, keeping a copy of every state it writes (phases, n/N)."""

    def __init__(self, folder) -> None:
        self.seen: list[dict] = []
        super().__init__(folder, control_threads=False)

    def write(self, *, force: bool = False) -> None:
        self.seen.append(dict(self.state))
        super().write(force=force)

    def phases(self) -> list[str]:
        names = [state["phase"] for state in self.seen]
        return [name for i, name in enumerate(names) if i == 0 or names[i - 1] != name]

    def last(self, phase: str) -> dict:
        return [state for state in self.seen if state["phase"] == phase][-1]


def _robustness_spec(tiny, out, **settings) -> dict:
    spec = {"data": tiny["source"], "model": tiny["mf"], "attack": "pgd", "strengths": [0.0, 0.2], "shilling": None,
            "attributes": ["gender"], "k": 10, "rounds": 30, "item_attribute": "popularity_tier", "out_dir": str(out)}
    return {**spec, **settings}


def _direct_robustness(tiny, spec):
    dataset = tiny["dataset"]
    model = load_model(spec["model"], dataset)
    return run_robustness(
        dataset, split_for_model(dataset, model), model, attack=spec["attack"], strengths=spec["strengths"],
        attributes=spec["attributes"], k=spec["k"], rounds=spec["rounds"], item_attribute=spec["item_attribute"],
        shilling=ShillingAttack(kind=spec["shilling"]) if spec["shilling"] else None,
    )  # fmt: skip


def _same_run(back, direct) -> None:
    pd.testing.assert_frame_equal(back.summary, direct.summary, check_exact=True)
    pd.testing.assert_frame_equal(back.audit.robustness, direct.audit.robustness, check_exact=True)
    assert back.targets == direct.targets


# ---- robustness ------------------------------------------------------------------------------------
def test_robustness_job_reads_back_the_direct_run_with_every_step_counted(tiny, tmp_path, monkeypatch):
    from fairaudit.workspace._run_robustness import run_robustness_job

    monkeypatch.setenv("FAIRAUDIT_INLINE_JOBS", "robustness")
    spec = _robustness_spec(tiny, tmp_path / "unused")
    direct = _direct_robustness(tiny, spec)
    root = tmp_path / "ws"
    job = start_job(root, "robustness", spec, out_dir=tmp_path / "out", key="r1", threads=1)
    assert job.status == "done", job.error
    back = read_robustness(tmp_path / "out")
    _same_run(back, direct)
    assert set(back.summary["model"]) == {"pgd@0", "gaussian@0", "pgd@0.2", "gaussian@0.2"}
    assert back.summary.set_index("model").loc["pgd@0", "drop"] == 0  # epsilon 0 leaves the model as it is
    # The phases, with n/N: 4 attacked models built and compared, 1 audit = robustness_steps.
    recorder = _Recorder(tmp_path / "recorded")
    run_robustness_job(_robustness_spec(tiny, tmp_path / "out2"), recorder)
    assert recorder.phases() == ["starting", "loading", "attacking", "saving"]
    attacking = recorder.last("attacking")
    assert attacking["total"] == robustness_steps("pgd", [0, 0.2]) == 9
    assert attacking["done"] == 8  # each line announces a step: the last one's line, after 8 steps done
    assert attacking["unit"] == "steps" and "comparing with the clean model" in attacking["message"]
    _same_run(read_robustness(tmp_path / "out2"), direct)


def test_robustness_folder_round_trips_the_fake_profiles(tiny, tmp_path):
    spec = _robustness_spec(tiny, tmp_path, attack="shilling", strengths=[0.1], shilling="bandwagon")
    direct = _direct_robustness(tiny, spec)
    assert list(direct.profiles) == ["bandwagon@0.1"] and len(direct.targets) == 1
    write_robustness(direct, tmp_path / "run")
    assert is_robustness_folder(tmp_path / "run") and (tmp_path / "run" / "summary.csv").is_file()
    back = read_robustness(tmp_path / "run")
    _same_run(back, direct)
    assert list(back.profiles) == ["bandwagon@0.1"]
    pd.testing.assert_frame_equal(back.profiles["bandwagon@0.1"], direct.profiles["bandwagon@0.1"], check_exact=True)
    # round(10% of 150 users) fake users, each rating the target item.
    profiles = back.profiles["bandwagon@0.1"]
    assert profiles["user_id"].nunique() == profiles.loc[profiles["item_id"].isin(direct.targets), "user_id"].nunique() == 15
    # A rewrite replaces what the run owns (no stale fake profiles of another attack) and keeps other files.
    (tmp_path / "run" / "robustness.json").write_text("{}")
    pgd = _direct_robustness(tiny, _robustness_spec(tiny, tmp_path, strengths=[0.1]))
    with pytest.raises(ValueError, match="already holds a FairAudit robustness folder"):
        write_robustness(pgd, tmp_path / "run")
    write_robustness(pgd, tmp_path / "run", overwrite=True)
    assert read_robustness(tmp_path / "run").profiles == {} and (tmp_path / "run" / "robustness.json").is_file()
    with pytest.raises(FileNotFoundError, match="holds no robustness run"):
        read_robustness(tmp_path / "elsewhere")


def test_bad_specs_fail_with_a_plain_message(tiny, llms, tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRAUDIT_INLINE_JOBS", "robustness,profiles")
    root = tmp_path / "ws"
    cases = [
        ("robustness", _robustness_spec(tiny, "", model=str(tmp_path / "gone")), "gone"),
        ("robustness", _robustness_spec(tiny, "", attack="shilling", strengths=[0, 2], shilling="bandwagon"),
         "a shilling strength is the share of fake users, in [0, 1]; got 2"),
        ("profiles", {"data": tiny["source"], "model": llms["without"], "model_without": llms["with"], "k": 10,
                      "rounds": 10, "attributes": ["gender"], "users": 20}, "does not read user texts"),
        ("profiles", {"data": tiny["source"], "model": llms["with"], "model_without": str(tmp_path / "gone"),
                      "k": 10, "rounds": 10}, "gone"),
    ]  # fmt: skip
    for n, (kind, spec, words) in enumerate(cases):
        out = tmp_path / f"out{n}"
        job = start_job(root, kind, {k: v for k, v in spec.items() if k != "out_dir"}, out_dir=out, threads=1)
        assert job.status == "failed" and words in job.error, (kind, job.error)
        assert "Traceback" not in job.error and not job.error.startswith(("ValueError", "ModelFolderError"))
        assert not out.exists()


def _app(tiny, ws, monkeypatch):
    """An AppTest of the dashboard with the tiny data chosen in the sidebar."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FAIRAUDIT_WORKSPACE", str(ws))
    monkeypatch.setenv("FAIRAUDIT_INLINE_JOBS", "robustness,profiles")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=WAIT_CEILING_S)
    at.run()
    at.session_state["datasets"] = {**at.session_state["datasets"], "tiny": DataSource.from_dict(tiny["source"])}
    at.session_state["select_dataset"] = "tiny"
    return at


def test_robustness_page_runs_the_attack_as_a_job_and_shows_failures(tiny, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    dataset = tiny["dataset"]
    load_model(tiny["mf"], dataset).save(ws / "models" / "mf-tiny")
    at = _app(tiny, ws, monkeypatch)
    at.switch_page("pages/robustness.py").run()
    assert not at.exception and at.title[0].value == "Robustness"
    assert not list((ws / "results").glob("robustness-*"))  # nothing runs before the button
    at.selectbox(key="robustness_attack").select("pgd").run()
    at.text_input(key="robustness_strengths_pgd").set_value("0.2, 0").run()
    at.button(key="robustness_run").click().run()
    assert not at.exception and not at.error
    shown = at.dataframe[1].value
    spec = _robustness_spec(tiny, "", model=str(ws / "models" / "mf-tiny"), attributes=at.session_state["attributes"],
                            k=at.session_state["k"], rounds=200)  # the page's settings
    direct = _direct_robustness(tiny, spec)
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), direct.summary, check_dtype=False)
    (folder,) = (ws / "results").glob("robustness-*")
    _same_run(read_robustness(folder), direct)
    at.run()  # a rerun (another session, a reload) reads the shared folder: no second job
    assert not at.error and len([job for job in list_jobs(ws) if job.spec["job"] == "robustness"]) == 1
    at.text_input(key="robustness_strengths_pgd").set_value("0, x").run()
    assert "Strengths must be numbers" in at.error[0].value and not at.exception
    at.selectbox(key="robustness_attack").select("shilling").run()
    at.text_input(key="robustness_strengths_shilling").set_value("0,2").run()
    at.button(key="robustness_run").click().run()
    assert not at.exception
    assert "The attack failed" in at.error[0].value and "share of fake users" in at.error[0].value


# ---- profiles --------------------------------------------------------------------------------------
def _fresh_encoder(model, monkeypatch, cache) -> None:
    """Nothing encoded yet: an empty disk cache and an empty in-memory cache of the model's (shared) encoder."""
    monkeypatch.setenv("FAIRAUDIT_CACHE", str(cache))
    monkeypatch.setattr(model.encoder, "_memory", {})


@pytest.mark.slow
def test_profiles_job_writes_the_direct_audit_and_reports_encoding(tiny, llms, tmp_path, monkeypatch):
    from fairaudit.profiles import PROFILE_AUDIT_STEPS, rewritten_texts, run_profile_audit
    from fairaudit.workspace._run_profiles import run_profiles_job

    dataset = tiny["dataset"]
    model_with, model_without = load_model(llms["with"], dataset), load_model(llms["without"], dataset)
    settings = {"attributes": ["gender"], "k": 10, "rounds": 30, "users": None}  # every writer: N known below
    _fresh_encoder(model_with, monkeypatch, tmp_path / "cache1")  # with_texts encodes the rewritten texts itself
    direct = run_profile_audit(dataset, split_for_model(dataset, model_without), model_without, model_with,
                               attributes=settings["attributes"], k=10, rounds=30)  # fmt: skip
    _fresh_encoder(model_with, monkeypatch, tmp_path / "cache2")  # the job encodes them first, with progress
    spec = {"data": tiny["source"], "model": llms["with"], "model_without": llms["without"], **settings,
            "out_dir": str(tmp_path / "out")}  # fmt: skip
    recorder = _Recorder(tmp_path / "recorded")
    run_profiles_job(spec, recorder)
    back = AuditResult.read(tmp_path / "out")
    for name in ("profile_accuracy", "profile_leakage", "text_counterfactual", "group_metrics"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(direct, name), check_exact=True, obj=name)
    assert back.meta["profiles"]["settings"]["bootstrap"] == 30 and back.meta["audit_id"] == direct.meta["audit_id"]
    assert recorder.phases() == ["starting", "loading", "auditing", "encoding", "saving"]
    auditing, encoding = recorder.last("auditing"), recorder.last("encoding")
    assert auditing["done"] + 1 == auditing["total"] == PROFILE_AUDIT_STEPS and "rewriting" in auditing["message"]
    # n/N over the distinct rewritten texts of the users with texts (every one the model knows)
    texts = dataset.texts[dataset.texts["user_id"].astype(str).isin(pd.Index(model_with.user_ids_))]
    assert encoding["done"] == encoding["total"] == rewritten_texts(texts)[0]["text"].nunique() > 0
    assert encoding["unit"] == "rewritten texts"


@pytest.mark.slow
def test_profiles_page_runs_the_audit_of_two_models_as_a_job(tiny, llms, tmp_path, monkeypatch):
    from fairaudit.profiles import accuracy_summary

    ws = tmp_path / "ws"
    dataset = tiny["dataset"]
    for name, folder in (("llm-plain", llms["without"]), ("llm-texts", llms["with"])):
        load_model(folder, dataset).save(ws / "models" / name)
    labels = {m.path.name: m.label for m in Workspace(ws).saved_models(dataset.fingerprint())}
    at = _app(tiny, ws, monkeypatch)
    at.session_state["audit_rounds"] = 30
    at.switch_page("pages/profiles.py").run()
    assert not at.exception and at.title[0].value == "Profiles"
    at.selectbox(key="profiles_with").select(labels["llm-texts"]).run()
    at.selectbox(key="profiles_without").select(labels["llm-plain"]).run()
    at.button(key="profiles_run").click().run()
    assert not at.exception and not at.error
    (folder,) = (ws / "results").glob("profiles-*")
    result = AuditResult.read(folder)
    shown = [frame.value for frame in at.dataframe]
    assert any(frame.reset_index(drop=True).equals(accuracy_summary(result.profile_accuracy).reset_index(drop=True))
               for frame in shown)  # fmt: skip
    assert any("leaks" in frame.columns for frame in shown) and any("changed" in frame.columns for frame in shown)
    settings = result.meta["profiles"]["settings"]
    assert settings["bootstrap"] == 30 and settings["model_with"] == str(ws / "models" / "llm-texts")
    # The same two models the other way round: refused in plain words, shown as an error.
    at.selectbox(key="profiles_with").select(labels["llm-plain"]).run()
    at.selectbox(key="profiles_without").select(labels["llm-texts"]).run()
    at.button(key="profiles_run").click().run()
    assert not at.exception and "The audit of profiles failed" in at.error[0].value
