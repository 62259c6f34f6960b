"""Feedback-loop simulation (fairaudit.dynamics): hand-computed round metrics, click models, the
planted provider bias amplified by a popularity-leaning loop, the exposure re-ranker holding it, a
null control without any bias source, and determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairaudit.audit import AuditResult
from fairaudit.cli import main
from fairaudit.data import Dataset, generate_sample, write_sample
from fairaudit.dynamics import (
    ROUND_COLUMNS,
    TREND_COLUMNS,
    check_period,
    gap_trends,
    period_windows,
    read_simulation,
    SimulationSettings,
    pooled_changes,
    share_metric,
    simulate,
    simulate_clicks,
    true_relevance,
)
from fairaudit.dynamics._rounds import RoundLists, user_metrics
from fairaudit.models import ExternalRecommender, create_model
from fairaudit.report import build_report

INDIE = share_metric("provider", "indie")
#: The planted-bias loop of the tests: MF retrained from scratch, users clicking with herding.
LOOP = dict(rounds=10, seeds=3, bootstrap=100, popularity_bias=2.0, no_click=0.5, min_group_size=20)


@pytest.fixture(scope="module")
def sample() -> Dataset:
    """A small planted-bias sample (indie items' popularity x 0.3, as in sample_data/ground_truth.json)."""
    return generate_sample(seed=0, n_users=400, n_items=200, n_interactions=10_000)[0]


@pytest.fixture(scope="module")
def relevance(sample: Dataset) -> np.ndarray:
    return true_relevance(sample, params={"factors": 32})


def final_change(result, metric: str, attribute: str = "all", group: str = "all") -> pd.Series:
    drift = result.drift
    rows = drift[(drift["metric"] == metric) & (drift["attribute"] == attribute) & (drift["group"] == group)]
    return rows[rows["round"] == result.settings.rounds].iloc[0]


def test_round_metrics_by_hand():
    # Two users, K = 2, three items. User 0 clicked rank 1; user 1 clicked nothing.
    lists = RoundLists(np.array([[0, 1], [1, 2]]), np.array([[True, False], [False, False]]),
                       np.array([[1.0, 0.5], [0.5, 0.0]]))  # fmt: skip
    m = user_metrics(lists, ideal_dcg=np.array([1.5, 1.0]), popularity=np.array([4.0, 2.0, 0.0]), n_items=3)
    # DCG user 0 = 1 + 0.5 / log2(3); user 1 = 0.5.
    assert m["ndcg_true"].tolist() == pytest.approx([(1 + 0.5 / np.log2(3)) / 1.5, 0.5])
    assert m["ndcg_logged"].iloc[0] == 1.0 and np.isnan(m["ndcg_logged"].iloc[1])
    assert m["logged_minus_true"].iloc[0] == pytest.approx(1.0 - m["ndcg_true"].iloc[0])
    # The lists share item 1: Jaccard 1 / 3 for the only pair.
    assert m["homogenisation"].tolist() == pytest.approx([1 / 3, 1 / 3])
    assert m["avg_popularity"].tolist() == [3.0, 1.0]
    assert m["clicks"].tolist() == [1.0, 0.0]


def test_click_models():
    rng = np.random.default_rng(0)
    relevance = np.full((20_000, 5), 0.6)
    cascade = simulate_clicks(relevance, choice="cascade", no_click=0.0, rng=rng)
    assert cascade.sum(axis=1).max() == 1  # one click at most, then the user stops
    # First attractive item: rank 1 clicked with p = 0.6, rank 2 with 0.4 * 0.6.
    assert cascade[:, 0].mean() == pytest.approx(0.6, abs=0.02)
    assert cascade[:, 1].mean() == pytest.approx(0.24, abs=0.02)
    position = simulate_clicks(relevance, choice="position", no_click=0.5, rng=rng)
    # Rank 3 examined with p = 1 / log2(4) = 0.5; half the users skip the round.
    assert position[:, 2].mean() == pytest.approx(0.5 * 0.5 * 0.6, abs=0.02)
    assert not simulate_clicks(np.zeros((10, 3)), rng=rng).any()


def test_pooled_change_is_paired_over_rounds():
    # Seeds differ by a constant offset; each seed's round 1 is its round 0 plus 1: the change is 1, exactly.
    base = np.random.default_rng(1).normal(size=(4, 1, 3, 50))
    replicates = np.concatenate([base, base + 1.0], axis=1)
    values = replicates.mean(axis=-1)
    change, low, high = pooled_changes(values, replicates, seed=0)
    assert change[1] == pytest.approx([1.0] * 3) and low[1] == pytest.approx([1.0] * 3)
    assert high[1] == pytest.approx([1.0] * 3)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="choice must be one of"):
        SimulationSettings(choice="random").check()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no_click must be in"):
        SimulationSettings(no_click=1.0).check()


@pytest.mark.slow
def test_popularity_leaning_loop_amplifies_the_planted_provider_bias(sample, relevance):
    result = simulate(sample, create_model("mf", iterations=5), SimulationSettings(**LOOP), relevance=relevance)
    gini = final_change(result, "gini_exposure")
    assert gini["change"] > 0 and gini["ci_low"] > 0, gini
    indie = final_change(result, INDIE)
    assert indie["change"] < 0 and indie["ci_high"] < 0, indie
    assert set(result.rounds.columns) == set(ROUND_COLUMNS)
    assert sorted(result.rounds["seed"].unique()) == ["0", "1", "2", "all"]


@pytest.mark.slow
def test_exposure_reranker_every_round_holds_the_share(sample, relevance):
    settings = SimulationSettings(**LOOP, mitigation="rerank_exposure", strength=1.0)
    result = simulate(sample, create_model("mf", iterations=5), settings, relevance=relevance)
    pooled = result.pooled()
    share = pooled[(pooled["metric"] == INDIE) & (pooled["attribute"] == "all")].set_index("round")
    start, end = share.loc[0], share.loc[settings.rounds]
    # Full strength meets the catalogue share whenever the candidates allow, round after round
    # (weaker strengths let the loop push the indie share *up*: the re-ranked lists feed indie clicks).
    tolerance = 1e-9
    assert start["ci_low"] - tolerance <= end["value"] <= start["ci_high"] + tolerance, share[["value", "ci_low", "ci_high"]]
    # ... near the catalogue share, far above the unmitigated one (planted: indie ~5% of exposure, 30% of items).
    assert end["value"] > 0.25


def null_dataset(n_users: int = 300, n_items: int = 150) -> Dataset:
    """Uniform popularity and identical groups: every user picks 15 items uniformly at random."""
    rng = np.random.default_rng(7)
    picks = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :15]
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(n_users)], "gender": np.tile(["F", "M"], n_users // 2)})
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(n_items)], "title": [f"T{j}" for j in range(n_items)],
                          "provider": np.tile(["indie", "studio"], n_items // 2)})  # fmt: skip
    interactions = pd.DataFrame({"user_id": np.repeat(users["user_id"].to_numpy(), 15),
                                 "item_id": items["item_id"].to_numpy()[picks.ravel()]})  # fmt: skip
    return Dataset(interactions, users, items, name="null")


def test_null_control_shows_no_drift():
    """No bias source: random scores, random true relevance, no herding. Exposure, Gini, coverage
    and the gender gap must not drift (users drain their own random lists: consumption once)."""
    data = null_dataset()
    rng = np.random.default_rng(3)
    scores = pd.DataFrame(rng.random((len(data.users), len(data.items))),
                          index=data.users["user_id"], columns=data.items["item_id"])  # fmt: skip
    model = ExternalRecommender(score=lambda u, i: scores.loc[list(u), list(i)].to_numpy(), name="random")
    settings = SimulationSettings(rounds=5, seeds=3, bootstrap=100, consumption="once", min_group_size=20)
    result = simulate(data, model, settings, relevance=rng.random((len(data.users), len(data.items))))
    for metric, attribute, group in ((INDIE, "all", "all"), ("gini_exposure", "all", "all"),
                                     ("catalogue_coverage", "all", "all"), ("gap:ndcg_true", "gender", "F")):  # fmt: skip
        row = final_change(result, metric, attribute, group)
        assert row["ci_low"] <= 0 <= row["ci_high"], (metric, row)


def test_same_seed_same_rounds(sample, relevance, tmp_path):
    settings = SimulationSettings(rounds=2, seeds=2, bootstrap=30, save_rounds=(0, 2))
    model = create_model("mf", iterations=3)
    first = simulate(sample, model, settings, relevance=relevance, out=tmp_path / "a")
    second = simulate(sample, model, settings, relevance=relevance, out=tmp_path / "b")
    assert (tmp_path / "a" / "rounds.csv").read_bytes() == (tmp_path / "b" / "rounds.csv").read_bytes()
    pd.testing.assert_frame_equal(first.lists, second.lists)
    assert (tmp_path / "a" / "models" / "round_02" / "model.safetensors").is_file()
    other = simulate(sample, model, SimulationSettings(rounds=2, seeds=2, bootstrap=30, seed=5), relevance=relevance)
    assert not other.lists["clicked"].equals(first.lists["clicked"])


# ---- audits over time ---------------------------------------------------------------------------
def test_gap_trend_recovers_a_planted_slope_and_not_a_flat_one():
    rng = np.random.default_rng(0)
    x = np.arange(8)
    rows = []
    for group, slope in (("trend", -0.02), ("flat", 0.0)):
        y = slope * x + rng.normal(0, 0.005, size=8)
        rows.append(pd.DataFrame({"model": "m", "attribute": "gender", "group": group, "reference": "rest",
                                  "metric": "ndcg", "start": x, "difference": y, "ci_low": y - 0.0098,
                                  "ci_high": y + 0.0098}))  # fmt: skip
    trends = gap_trends(pd.concat(rows)).set_index("group")
    assert trends.loc["trend", "slope"] == pytest.approx(-0.02, abs=0.003)
    assert trends.loc["trend", "p_adjusted"] < 0.001
    assert trends.loc["flat", "slope_ci_low"] <= 0 <= trends.loc["flat", "slope_ci_high"]


def test_period_windows():
    day = 86_400
    stamps = pd.Series([0, 5 * day, 31 * day + 10, 70 * day])
    months = period_windows(stamps, "month")
    assert months["period"].tolist() == ["1970-01", "1970-02", "1970-03"]
    assert months["start"].iloc[1] == 31 * day and months["end"].iloc[1] == 59 * day
    assert period_windows(stamps, "30-days")["start"].tolist() == [0, 30 * day, 60 * day]
    assert period_windows(stamps, "week")["period"].iloc[0] == "1969-12-29"  # ISO weeks start on Monday
    with pytest.raises(ValueError, match="period must be"):
        check_period("fortnight")


@pytest.mark.slow
def test_audit_by_period_cli_writes_the_optional_tables_and_the_report_section(tmp_path, capsys):
    write_sample(tmp_path / "data", n_users=200, n_items=100, n_interactions=4000)
    assert main(["train", "--data", str(tmp_path / "data"), "--model", "popularity", "--out", str(tmp_path / "pop"),
                 "--threads", "1"]) == 0  # fmt: skip
    audit = tmp_path / "audit"
    argv = ["audit", "--data", str(tmp_path / "data"), "--model", str(tmp_path / "pop"), "--out", str(audit),
            "--bootstrap", "50", "--no-embeddings", "--attributes", "gender", "--min-group-size", "5",
            "--by-period", "120-days", "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    result = AuditResult.read(audit)
    assert result.period_metrics["period"].nunique() >= 2
    assert list(result.period_trends.columns) == list(TREND_COLUMNS)
    first = result.exposure_drift[result.exposure_drift["start"] == result.exposure_drift["start"].min()]
    assert (first["difference"] == 0).all() and (first["total_variation"] == 0).all()
    # Re-writing the folder keeps the tables (they are registered optional tables).
    result.write(audit, overwrite=True)
    assert AuditResult.read(audit).period_trends is not None
    pdf = build_report(audit, tmp_path / "audit.pdf", charts=False)
    assert b"Fairness over time" in _pdf_text(pdf)
    assert main(["audit", "--data", "x", "--model", "y", "--out", "z", "--by-period", "fortnight"]) == 2


def _pdf_text(path) -> bytes:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(path).pages).encode()


@pytest.mark.slow
def test_simulate_cli(tmp_path, capsys):
    write_sample(tmp_path / "data", n_users=150, n_items=80, n_interactions=3000)
    out = tmp_path / "sim"
    argv = ["simulate", "--data", str(tmp_path / "data"), "--model-kind", "popularity", "--rounds", "2",
            "--seeds", "2", "--bootstrap", "30", "--out", str(out), "--mitigation", "rerank_exposure",
            "--strength", "1", "--pdf", "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    assert "exposure_share:provider=indie" in capsys.readouterr().out
    result = read_simulation(out)
    assert set(result.rounds["round"]) == {0, 1, 2}
    assert (out / "models" / "round_02" / "config.json").is_file()
    assert b"Change by round 2" in _pdf_text(out / "simulation.pdf")
    assert main(argv) == 2  # an existing simulation is not replaced without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    argv[argv.index(str(out))] = str(tmp_path / "other")
    assert main([*argv, "--save-rounds", "7"]) == 2
    assert "--save-rounds" in capsys.readouterr().err and not (tmp_path / "other").exists()


def test_finetuning_starts_each_round_from_the_previous_weights(sample, relevance, monkeypatch):
    from fairaudit.models import MFRecommender

    seen = []
    real_fit = MFRecommender.fit

    def spy(self, dataset, split, *, progress=None, warm_start=None):
        seen.append((self.iterations, warm_start is not None))
        return real_fit(self, dataset, split, progress=progress, warm_start=warm_start)

    monkeypatch.setattr(MFRecommender, "fit", spy)
    settings = SimulationSettings(rounds=2, seeds=1, bootstrap=20, retrain="finetune", finetune_epochs=1)
    tuned = simulate(sample, create_model("mf", iterations=5), settings, relevance=relevance)
    # Round 0 trains from scratch with the model's own iterations; rounds 1-2 warm-start for 1 iteration.
    assert seen == [(5, False), (1, True), (1, True)]
    scratch = simulate(sample, create_model("mf", iterations=5), SimulationSettings(rounds=2, seeds=1, bootstrap=20),
                       relevance=relevance)  # fmt: skip
    first = tuned.lists["round"] == 0
    pd.testing.assert_frame_equal(tuned.lists[first], scratch.lists[first])
    assert not tuned.lists[~first]["item_id"].reset_index(drop=True).equals(
        scratch.lists[~first]["item_id"].reset_index(drop=True))


@pytest.mark.slow
def test_dynamics_page_runs_a_simulation(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT, WAIT_CEILING_S

    monkeypatch.setenv("FAIRAUDIT_WORKSPACE", str(tmp_path / "ws"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=WAIT_CEILING_S)
    at.switch_page("pages/dynamics.py").run()
    at.session_state["audit_rounds"] = 50
    popularity = next(label for label in at.selectbox(key="_w_model").options if "popularity" in label)
    at.selectbox(key="_w_model").select(popularity).run()
    at.number_input(key="dyn_rounds").set_value(1)
    at.number_input(key="dyn_seeds").set_value(1)
    at.button(key="dyn_run").click().run()  # a "simulate" job: inline under the tests (tests/conftest.py)
    assert not at.exception and not at.error, (at.exception, at.error)
    assert at.selectbox(key="dyn_metric").options  # the result is drawn: a quantity to pick
    assert any("Change by round 1" in m.value for m in at.markdown)
    # A bad period: the "periods" job fails with a plain message, drawn as an error; the simulation stays.
    at.text_input(key="dyn_period").input("fortnight")
    at.button(key="dyn_period_run").click().run()
    assert not at.exception and len(at.error) == 1, (at.exception, at.error)
    assert at.error[0].value.startswith("The audit by period failed: ") and "period must be" in at.error[0].value
    assert any("Change by round 1" in m.value for m in at.markdown)
    # Yearly windows (two audited): the folder the "periods" job wrote is read back and drawn.
    at.text_input(key="dyn_period").input("365-days")
    at.button(key="dyn_period_run").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert at.selectbox(key="dyn_period_metric").options and any("Trend of every gap" in m.value for m in at.markdown)


@pytest.mark.slow
def test_trend_tests_on_the_sample_find_no_trend_for_the_null_attribute():
    """sample_data/ground_truth.json: region is the planted null (ZIP codes drawn independently of
    everything). Monthly rolling-origin audits of the popularity model: no region gap trends after
    Benjamini-Hochberg, while gender (the planted activity gap) shows trends."""
    from fairaudit.audit import AuditConfig
    from fairaudit.data import load_sample
    from fairaudit.dynamics import audit_by_period

    config = AuditConfig(attributes=("gender", "region"), embedding_diversity=False, bootstrap_rounds=100)
    periods = audit_by_period(load_sample(), {"pop": create_model("popularity")}, config, period="month")
    trends = periods.trends[periods.trends["reference"] == "rest"]
    significant = trends[trends["p_adjusted"] < 0.05]
    assert (significant["attribute"] == "gender").any()
    assert not (significant["attribute"] == "region").any(), significant
