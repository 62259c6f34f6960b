"""The audit of text profiles (issue 22): rewriting, leakage, text counterfactuals, CLI, no texts in audits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fairaudit.audit import attribute_groups
from fairaudit.data import GENDER_MARKER_PAIRS, generate_sample
from fairaudit.models import attribute_auc, attribute_scores, rank_auc
from fairaudit.profiles import (
    CHANCE,
    INTERACTIONS,
    TEXT_PROFILE,
    encode_profiles,
    profile_leakage,
    rewrite_texts,
    rewritten_texts,
    swap_map,
)

SWAPS = swap_map(GENDER_MARKER_PAIRS)
#: A small planted-bias sample with texts (the control: same draws, no markers).
SMALL = dict(seed=1, n_users=400, n_items=150, n_interactions=12000)


# ---- rewriting ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected", "count"),
    [
        ("She loves it.", "He loves it.", 1),  # capitalised
        ("SHE LOVES IT", "HE LOVES IT", 1),  # upper case
        ("ask her mother", "ask his father", 2),  # lower case, two markers
        ("My husband and I", "My wife and I", 1),  # masculine -> feminine too
        ("Anna's favourite", "Adam's favourite", 1),  # a name before an apostrophe
        ("the theme, the hero, shepherds, heroine", "the theme, the hero, shepherds, heroine", 0),  # no word inside words
        ("Mrs. Smith, Ms Jones", "Mr. Smith, Mr Jones", 2),
        ("grandmother-to-be", "grandfather-to-be", 1),  # hyphens are word boundaries
        ("", "", 0),
    ],
)
def test_rewrite_hand_checked(text, expected, count):
    new, n = rewrite_texts(pd.Series([text]), SWAPS)
    assert new.iloc[0] == expected and n.iloc[0] == count


def test_swap_map_keeps_the_first_pair_of_an_ambiguous_word():
    # "her" is both "his" and "him" in English; the documented list pairs her/his, so his -> her and her -> his.
    assert SWAPS["her"] == "his" and SWAPS["his"] == "her" and SWAPS["he"] == "she" and SWAPS["she"] == "he"
    assert SWAPS["dad"] == "mom" and SWAPS["mum"] == "dad"  # mom/dad listed before mum/dad


def test_rewritten_texts_returns_marked_users_only_and_keeps_other_columns():
    texts = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "text": ["Her pick.", "Fine.", "Fine film.", "My mom too"],
                          "item_id": ["i1", "", "i2", ""], "timestamp": [1, 2, 3, 4]})
    new, markers = rewritten_texts(texts, SWAPS)
    assert new["user_id"].tolist() == ["a", "a", "c"]  # every row of a marked user, no row of b
    assert new["text"].tolist() == ["His pick.", "Fine.", "My dad too"]
    assert new["item_id"].tolist() == ["i1", "", ""] and new["timestamp"].tolist() == [1, 2, 4]
    assert markers.to_dict() == {"a": 1, "b": 0, "c": 1}


# ---- leakage -----------------------------------------------------------------------------------
def test_rank_auc_matches_scikit_learn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 200).astype(float)  # many ties
    positive = rng.random(200) < 0.4
    assert rank_auc(scores, positive)[0] == pytest.approx(roc_auc_score(positive, scores), abs=1e-12)
    counts = rng.integers(0, 3, size=(4, 200))  # a weight row = the users repeated that often
    for row in counts:
        repeated = np.repeat(np.arange(200), row)
        expected = roc_auc_score(positive[repeated], scores[repeated])
        assert rank_auc(scores, positive, row[None, :])[0] == pytest.approx(expected, abs=1e-12)


def test_attribute_auc_is_scikit_learns_macro_one_vs_rest():
    rng = np.random.default_rng(1)
    labels = rng.choice(["a", "b", "c"], 300)
    vectors = rng.normal(size=(300, 3)) + (labels == "a")[:, None] * 1.0
    probabilities, classes = attribute_scores(vectors, labels)
    expected = roc_auc_score(labels, probabilities, multi_class="ovr", labels=classes)
    assert attribute_auc(probabilities, classes, labels)[0] == pytest.approx(expected, abs=1e-12)


def test_profile_leakage_planted_vector_leaks_noise_does_not():
    rng = np.random.default_rng(2)
    users = pd.Index([f"u{i}" for i in range(300)])
    gender = pd.Series(rng.choice(["F", "M"], 300, p=[0.4, 0.6]), index=users)
    gender.iloc[:5] = "unknown"  # left out
    planted = rng.normal(size=(300, 8)) + (gender == "F").to_numpy()[:, None] * 1.5
    noise = rng.normal(size=(300, 8))
    table = profile_leakage({TEXT_PROFILE: planted, INTERACTIONS: noise}, {"gender": gender}, rounds=300)
    row = table.set_index(["representation", "reference", "metric"])
    known = (gender != "unknown").to_numpy()
    majority = float((gender[known] == "M").mean())
    assert (row["n_users"] == known.sum()).all()
    assert row.loc[(TEXT_PROFILE, CHANCE, "accuracy"), "chance"] == pytest.approx(majority)
    for metric in ("accuracy", "accuracy_over_chance", "auc"):  # recovered above chance, CI excluding it
        assert row.loc[(TEXT_PROFILE, CHANCE, metric), "significant"]
        assert row.loc[(TEXT_PROFILE, CHANCE, metric), "ci_low"] > row.loc[(TEXT_PROFILE, CHANCE, metric), "chance"]
        assert not row.loc[(INTERACTIONS, CHANCE, metric), "significant"]  # pure noise: CI covers chance
    assert row.loc[(TEXT_PROFILE, CHANCE, "auc"), "estimate"] > 0.85
    difference = row.loc[(TEXT_PROFILE, INTERACTIONS, "auc_difference")]
    assert difference["ci_low"] > 0 and difference["significant"]
    # The point estimates are exactly the out-of-fold measure the adversarial mitigation reports.
    probabilities, classes = attribute_scores(planted[known], gender[known].to_numpy())
    assert row.loc[(TEXT_PROFILE, CHANCE, "auc"), "estimate"] == pytest.approx(
        attribute_auc(probabilities, classes, gender[known].to_numpy())[0])


def test_profile_leakage_skips_an_attribute_with_one_group():
    notes: list[str] = []
    users = pd.Index([f"u{i}" for i in range(40)])
    table = profile_leakage({TEXT_PROFILE: np.zeros((40, 2))}, {"gender": pd.Series("F", index=users)}, notes=notes)
    assert table.empty and "gender" in notes[0]


@pytest.mark.slow
def test_leakage_detects_markers_and_not_the_control():
    """The planted gender markers are recovered from text profiles; on the control texts (same draws, no
    markers) gender is not recovered better than chance."""
    out = {}
    for markers in (True, False):
        dataset, _ = generate_sample(**SMALL, gender_markers=markers)
        profiles = encode_profiles(dataset.texts, dataset.users["user_id"])
        ids = dataset.users["user_id"].astype(str)[profiles.has_text]
        labels = {"gender": attribute_groups(dataset.users, "gender").reindex(ids)}
        table = profile_leakage({TEXT_PROFILE: profiles.vectors[profiles.has_text]}, labels, reference=None,
                                rounds=300)
        out[markers] = table.set_index("metric").loc["auc"]
    assert out[True]["ci_low"] > 0.5 and out[True]["estimate"] > 0.7
    assert out[False]["ci_low"] <= 0.5 <= out[False]["ci_high"]


# ---- with the LLM recommender (trained once, small) ----------------------------------------------
@pytest.fixture(scope="module")
def trained():
    """The small sample and two LLMs on one split: without texts, and with text profiles (2 epochs)."""
    from fairaudit.data import make_split
    from fairaudit.models import create_model, set_threads

    set_threads(1)
    dataset, _ = generate_sample(**SMALL)
    split = make_split(dataset, "random", seed=0)
    without = create_model("llm", epochs=2, seed=0).fit(dataset, split)
    with_texts = create_model("llm", epochs=2, seed=0, use_texts=True).fit(dataset, split)
    return dataset, split, without, with_texts


@pytest.mark.slow
def test_text_counterfactual_changes_the_marked_group_only(trained):
    from fairaudit.profiles import summarise_counterfactual, text_counterfactual_users

    dataset, _, _, model = trained
    per_user = text_counterfactual_users(model, dataset, k=10)
    gender = attribute_groups(dataset.users, "gender").reindex(per_user.index)
    marked, others = per_user[gender == "F"], per_user[gender != "F"]
    assert len(marked) > 100 and len(others) > 100
    # The unmarked groups' texts hold no marker, so nothing is rewritten and their lists are exactly the same.
    assert others["markers"].sum() == 0 and others["changed"].sum() == 0
    assert (others["jaccard"] == 1.0).all() and (others["prag"] == 1.0).all()
    assert marked["rewritten"].mean() > 0.8  # 70% of F texts end in a marker; 1-5 texts per user
    table = summarise_counterfactual(per_user, {"gender": gender}, rounds=200).set_index(["group", "metric"])
    assert table.loc[("F", "changed"), "ci_low"] > 0  # rewriting the markers changes F users' lists
    assert table.loc[("F", "jaccard"), "ci_high"] < 1.0
    assert table.loc[("M", "changed"), "value"] == 0.0 and table.loc[("M", "jaccard"), "ci_low"] == 1.0


@pytest.fixture(scope="module")
def profile_audit(trained, tmp_path_factory):
    """``run_profile_audit`` of the small sample, written to an audit folder: (result, folder)."""
    from fairaudit.profiles import run_profile_audit

    dataset, split, without, model = trained
    folder = tmp_path_factory.mktemp("profiles") / "audit"
    result = run_profile_audit(dataset, split, without, model, attributes=["gender", "activity"], rounds=100,
                               users=150, out=folder)
    return result, folder


@pytest.mark.slow
def test_run_profile_audit_tables_and_no_text_in_the_folder(trained, profile_audit):
    from fairaudit.audit import read_audit
    from fairaudit.profiles import HAS_TEXTS, WITH_TEXTS

    dataset = trained[0]
    result, folder = profile_audit
    back = read_audit(folder)
    for name in ("profile_accuracy", "profile_leakage", "text_counterfactual"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(result, name), check_exact=True, obj=name)
    accuracy = back.profile_accuracy
    assert {"all", "gender", "activity", HAS_TEXTS} <= set(accuracy["attribute"])
    assert set(accuracy["model_b"]) == {WITH_TEXTS}
    leakage = back.profile_leakage.set_index(["representation", "reference", "metric"])
    assert leakage.loc[(TEXT_PROFILE, CHANCE, "auc"), "ci_low"] > 0.5  # the planted markers leak
    assert {TEXT_PROFILE, INTERACTIONS, WITH_TEXTS} <= set(back.profile_leakage["representation"])
    assert back.text_counterfactual["n_users"].max() <= 150
    # No raw text anywhere in the folder: every file's bytes are searched for every distinct text.
    texts = dataset.texts["text"].astype(str).unique()
    blobs = [p.read_bytes() for p in folder.rglob("*") if p.is_file()]
    assert not [t for t in texts if any(t.encode() in blob for blob in blobs)]
    assert not any(b"Speaking as a" in blob or b"film night" in blob for blob in blobs)  # nor a fragment


@pytest.mark.slow
def test_cli_profiles_end_to_end(tmp_path):
    from fairaudit.audit import read_audit
    from fairaudit.cli import main
    from fairaudit.data import write_sample

    write_sample(tmp_path / "data", seed=2, n_users=150, n_items=60, n_interactions=3000)
    out = tmp_path / "audit"
    code = main(["profiles", "--data", str(tmp_path / "data"), "--epochs", "1", "--bootstrap", "30",
                 "--attributes", "gender", "--users", "60", "--threads", "1", "--out", str(out)])
    assert code == 0
    result = read_audit(out)
    assert all(getattr(result, name) is not None for name in ("profile_accuracy", "profile_leakage",
                                                               "text_counterfactual"))
    assert (out / "models" / "with_texts" / "config.json").is_file()
    assert result.meta["profiles"]["settings"]["epochs"] == 1
    texts = pd.read_csv(tmp_path / "data" / "user_texts.csv")["text"].unique()
    blobs = [p.read_bytes() for p in out.rglob("*") if p.is_file()]  # the audit and the saved models
    assert not [t for t in texts if any(t.encode() in blob for blob in blobs)]
    assert main(["profiles", "--data", str(tmp_path / "data"), "--epochs", "1", "--out", str(out)]) == 2  # in the way
    assert main(["profiles", "--data", str(tmp_path / "data"), "--model-with", str(out / "models" / "with_texts"),
                 "--out", str(tmp_path / "other")]) == 2  # --model-with needs --model-without


@pytest.mark.slow
def test_profiles_page_opens_an_audit_folder(profile_audit, tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FAIRAUDIT_WORKSPACE", str(tmp_path / "ws"))
    at = AppTest.from_file(str(Path(__file__).parents[1] / "app.py"), default_timeout=120)
    at.switch_page("pages/profiles.py").run()
    assert not at.exception and at.title[0].value == "Profiles"
    at.radio(key="profiles_source").set_value("Open an audit folder").run()
    at.text_input(key="profiles_folder").set_value(str(profile_audit[1])).run()
    assert not at.exception and not at.error
    shown = [frame.value for frame in at.dataframe]
    assert any("leaks" in frame.columns for frame in shown) and any("changed" in frame.columns for frame in shown)
    assert any("difference" in frame.columns for frame in shown)


def test_sweep_use_texts_option_reaches_the_template(monkeypatch, tmp_path):
    """``sweep --use-texts`` trains every in-training point with the text input (the adversarial term then acts on
    the user vector with its text term; the recovery the sweep reports is measured from those vectors)."""
    import fairaudit.sweep as sweep_module
    from fairaudit.cli import main

    seen = {}

    def fake_run_sweep(dataset, split, **kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")  # a data error: exit status 1

    monkeypatch.setattr(sweep_module, "run_sweep", fake_run_sweep)
    args = ["sweep", "--data", str(Path(__file__).parents[1] / "sample_data"), "--mitigation", "adversarial", "--strengths", "0,1", "--use-texts",
            "--epochs", "1", "--threads", "1", "--out", str(tmp_path / "sweep")]
    assert main(args) == 1
    assert seen["template_params"] == {"epochs": 1, "use_texts": True}


def test_cli_profiles_refuses_data_without_texts(tmp_path):
    from fairaudit.cli import main

    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("interactions.csv", "users.csv", "items.csv"):
        (folder / name).write_bytes((Path(__file__).parents[1] / "sample_data" / name).read_bytes())
    assert main(["profiles", "--data", str(folder), "--epochs", "1", "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_report_has_a_text_profiles_section(profile_audit, tmp_path):
    from pypdf import PdfReader

    from fairaudit.report import build_report

    pdf = build_report(profile_audit[1], tmp_path / "audit.pdf", charts=False)
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(pdf).pages).split())
    assert "Text profiles" in text and "Attribute leakage" in text and "Text counterfactual" in text
    assert "text_profile" in text and "has_texts" in text
