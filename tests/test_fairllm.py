"""The FaiRLLM / CFaiRLLM probe: hand-computed similarities, null controls, a planted genre swap, the table.

Stub models return fixed lists that depend (or not) on the stated attribute, so every number is
known in advance; one test runs the generative model (tiny random LM, planted answers) and the
two-tower LLM side by side, and one the CLI into an audit folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Mapping

import numpy as np
import pandas as pd
import pytest
import torch

from fairaudit.audit import AuditResult
from fairaudit.cli import main
from fairaudit.data import UNKNOWN, Dataset, Split, random_holdout
from fairaudit.explain import (
    FAIRLLM_COLUMNS,
    attribute_settings,
    fairllm_figure,
    fairllm_probe,
    fairllm_summary,
    fairllm_users,
    held_out_codes,
    sign_flip_p_values,
)
from fairaudit.models import LanguageModel, Recommender, create_model
from tests.conftest import make_tiny_dataset
from tests.tiny_lm import build_tiny_lm


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    old = os.environ.get("FAIRAUDIT_CACHE")
    os.environ["FAIRAUDIT_CACHE"] = str(tmp_path_factory.mktemp("fairllm-cache"))
    yield
    if old is None:
        os.environ.pop("FAIRAUDIT_CACHE", None)
    else:
        os.environ["FAIRAUDIT_CACHE"] = old


N_ITEMS = 12


def stub_data(n_users: int = 60) -> tuple[Dataset, Split]:
    """Users half F / half M, items 0-5 comedies and 6-11 action films; each user saw item 11 only."""
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(n_users)],
                          "gender": np.where(np.arange(n_users) % 2 == 0, "F", "M"),
                          "age_band": np.where(np.arange(n_users) % 3 == 0, "18-24", "25-34")})
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(N_ITEMS)], "title": [f"Film {j}" for j in range(N_ITEMS)],
                          "genres": ["Comedy"] * 6 + ["Action"] * 6})
    train = pd.DataFrame({"user_id": users["user_id"], "item_id": "i11"})
    test = pd.DataFrame({"user_id": users["user_id"], "item_id": np.where(users["gender"] == "F", "i0", "i6"),
                         "rating": 5.0})
    data = Dataset(pd.concat([train, test], ignore_index=True), users, items)
    return data, Split(train, test, "stub", 0)


class ListStub(Recommender):
    """Scores from a table: ``lists[gender value]`` ranks items (``unknown`` = the neutral prompt).

    ``noise`` > 0 adds fresh random scores on every call (a sampling model asked again)."""

    kind = "list_stub"

    def __init__(self, lists: Mapping[str, list[int]], noise: float = 0.0, seed: int = 0) -> None:
        self.lists, self.noise, self.seed = dict(lists), noise, seed
        self._rng = np.random.default_rng(seed)

    def _fit(self, *args) -> None:
        self.fitted_ = True

    def _score_indices(self, user_idx, item_idx, attribute_overrides=None):
        value = (attribute_overrides or {}).get("gender", UNKNOWN)
        order = self.lists.get(value, self.lists[UNKNOWN])
        scores = np.full((len(user_idx), N_ITEMS), -100.0)
        scores[:, order] = np.arange(len(order), 0, -1, dtype=float)
        scores += self.noise * self._rng.random(scores.shape)
        scores = torch.as_tensor(scores, dtype=torch.float32)
        return scores if item_idx is None else scores[:, torch.as_tensor(item_idx)]

    def _state(self):
        return {}


def fitted(stub: ListStub) -> ListStub:
    data, split = stub_data()
    return stub.fit(data, split)


def rows(table: pd.DataFrame, **where) -> pd.DataFrame:
    keep = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        keep &= (table[column] == value).to_numpy()
    return table[keep]


# ---- hand-computed numbers --------------------------------------------------------------------------


def test_hand_computed_jaccard_serp_prag_and_spread():
    """neutral [0 1 2], F [2 0 5], M [0 1 2]: F's Jaccard 2/4, SERP* (4+3)/24, PRAG* 2/3; M identical."""
    data, split = stub_data()
    model = fitted(ListStub({UNKNOWN: [0, 1, 2], "F": [2, 0, 5], "M": [0, 1, 2]}))
    per_user = fairllm_users(model, data, split, ["gender"], users=None, k=3)
    first = per_user[per_user["user_id"] == "u0"].set_index(["group", "reference", "metric"])["value"]
    assert first[("F", "neutral", "jaccard")] == pytest.approx(0.5)
    assert first[("F", "neutral", "serp")] == pytest.approx(7 / 24)
    assert first[("F", "neutral", "prag")] == pytest.approx(2 / 3)
    assert first[("M", "neutral", "jaccard")] == 1.0 and first[("M", "neutral", "prag")] == 1.0
    assert first[("M", "neutral", "serp")] == pytest.approx((3 + 3) / (4 * (3 + 1)))
    # held-out: u0 (F) holds i0. neutral [0 1 2] vs [0]: Jaccard 1/3; F's list [2 0 5] too.
    assert first[("neutral", "held_out", "jaccard")] == pytest.approx(1 / 3)
    assert first[("F", "held_out", "jaccard")] == pytest.approx(1 / 3)
    table = fairllm_probe({"stub": model}, data, split, ["gender"], users=None, k=3, bootstrap_rounds=50)
    snsr = rows(table, attribute="gender", reference="neutral", metric="jaccard_snsr").iloc[0]
    snsv = rows(table, attribute="gender", reference="neutral", metric="jaccard_snsv").iloc[0]
    assert snsr["estimate"] == pytest.approx(0.5) and snsv["estimate"] == pytest.approx(0.25)
    assert snsr["ci_low"] == snsr["ci_high"] == pytest.approx(0.5)  # every user answers alike
    test = rows(table, metric="jaccard_change_vs_noise").iloc[0]
    assert test["estimate"] == pytest.approx(1 - 0.75) and test["p_value"] < 0.01
    assert list(table.columns) == list(FAIRLLM_COLUMNS)


def test_sign_flip_p_values_null_and_shift():
    rng = np.random.default_rng(0)
    null = sign_flip_p_values(rng.normal(size=(200, 40)), 499, np.random.default_rng(1))
    assert 0.3 < null.mean() < 0.7 and (null < 0.05).mean() < 0.15
    shifted = sign_flip_p_values(rng.normal(0.5, 1, size=(200, 3)), 499, np.random.default_rng(1))
    assert (shifted < 0.01).all()


def test_attribute_settings_intersections_and_values():
    data, _ = stub_data()
    labels = [label for label, _ in attribute_settings(data, "gender*age_band")]
    assert labels == ["F*18-24", "F*25-34", "M*18-24", "M*25-34"]
    assert attribute_settings(data, "gender*age_band", ["F*18-24", "M*18-24"])[1] == (
        "M*18-24", {"gender": "M", "age_band": "18-24"})
    with pytest.raises(ValueError, match="not in the users table"):
        attribute_settings(data, "gender", ["X"])
    with pytest.raises(ValueError, match="at least two known values"):
        attribute_settings(data, "gender", ["F"])
    with pytest.raises(ValueError, match="nope"):
        attribute_settings(data, "nope")


def test_held_out_codes_best_rating_first():
    data, split = stub_data()
    model = fitted(ListStub({UNKNOWN: [0, 1]}))
    assert held_out_codes(model, split, ["u1", "u0"], 2).tolist() == [[6, -1], [0, -1]]


# ---- null controls and a planted bias ---------------------------------------------------------------


def test_a_model_that_ignores_attributes_has_snsr_and_snsv_with_zero_in_their_ci():
    data, split = stub_data()
    model = fitted(ListStub({UNKNOWN: [0, 6, 1, 7, 2]}))
    table = fairllm_probe({"stub": model}, data, split, ["gender", "gender*age_band"], users=None, k=5,
                          bootstrap_rounds=200)
    spread = table[table["metric"].str.endswith(("_snsr", "_snsv"))]
    assert len(spread) == 2 * 2 * 3 * 2  # 2 specs x 2 references x 3 metrics x (SNSR, SNSV)
    assert ((spread["ci_low"] <= 0) & (spread["ci_high"] >= 0)).all()
    assert (rows(table, reference="repeat", metric="jaccard_change_vs_noise")["p_value"] == 1.0).all()


def test_decoding_noise_alone_is_not_taken_for_an_attribute_effect():
    """Sampling noise changes every list, the re-asked neutral one too: the permutation test stays quiet.

    Under this null the p-values are uniform: over 6 noisy models x 3 metrics about 1 in 20 falls below 0.05.
    """
    data, split = stub_data(120)
    p_values = []
    for seed in range(6):
        model = ListStub({UNKNOWN: list(range(N_ITEMS))}, noise=20.0, seed=seed).fit(data, split)
        table = fairllm_probe({"noisy": model}, data, split, ["gender"], users=None, k=4, bootstrap_rounds=200)
        p_values += rows(table, reference="repeat")["p_value"].dropna().tolist()
    assert len(p_values) == 18 and sum(p < 0.05 for p in p_values) <= 3, p_values
    noisy_swap = ListStub({UNKNOWN: list(range(N_ITEMS)), "F": [0, 1, 2, 3], "M": [6, 7, 8, 9]}, noise=2.0)
    table = fairllm_probe({"swap": noisy_swap.fit(data, split)}, data, split, ["gender"], users=None, k=4,
                          bootstrap_rounds=200)
    assert (rows(table, reference="repeat")["p_value"].dropna() < 0.01).all()


def test_a_model_that_swaps_genres_by_gender_is_detected():
    data, split = stub_data()
    comedies, action = [0, 1, 2, 3, 4], [6, 7, 8, 9, 10]
    model = fitted(ListStub({UNKNOWN: [0, 6, 1, 7, 2], "F": comedies, "M": action}))
    table = fairllm_probe({"swap": model}, data, split, ["gender"], users=None, k=5, bootstrap_rounds=200)
    summary = fairllm_summary(table).iloc[0]
    assert summary["snsr_ci_low"] > 0 and summary["p_value"] < 0.01 and summary["change_vs_noise"] > 0.5
    # CFaiRLLM's view: F's comedy list finds F users' held-out comedy, M's list M users' action film.
    f_truth = rows(table, group="F", reference="held_out", metric="jaccard")["estimate"].iloc[0]
    neutral_truth = rows(table, group="neutral", reference="held_out", metric="jaccard")["estimate"].iloc[0]
    assert f_truth == pytest.approx(0.5 * (1 / 5)) and neutral_truth == pytest.approx(1 / 5)
    figure = fairllm_figure(table)
    assert [trace.name for trace in figure.data] == ["swap"] and len(figure.data[0].x) == 2


# ---- both LLM kinds on one table, and the CLI --------------------------------------------------------


@pytest.mark.slow
def test_generative_and_two_tower_llm_on_one_table(tmp_path, monkeypatch):
    data = make_tiny_dataset()
    split = random_holdout(data, test_fraction=0.2, seed=0)
    lm = str(build_tiny_lm(tmp_path / "lm"))

    def answer(self, prompts, **kw):  # women are offered comedies' titles, men the rest, neutral a mix
        return ["1. Item 0\n2. Item 3\n3. Imaginary Film" if "gender F" in p else
                "1. Item 1\n2. Item 1\n3. Item 4" if "gender M" in p else "1. Item 0\n2. Item 4" for p in prompts]

    monkeypatch.setattr(LanguageModel, "generate", answer)
    generative = create_model("generative", lm=lm, mode="generate", n_generate=3, match_threshold=1.0,
                              device="cpu", history_items=2).fit(data, split)
    two_tower = create_model("llm", epochs=2, use_profile=True, device="cpu").fit(data, split)
    table = fairllm_probe({"generative": generative, "llm": two_tower}, data, split, ["gender"], users=16, k=3,
                          bootstrap_rounds=50)
    assert set(table["model"]) == {"generative", "llm"}
    assert set(rows(table, model="generative")["reference"]) == {"neutral", "held_out", "repeat", "generation"}
    generation = rows(table, model="generative", reference="generation", attribute="all")
    shares = generation.set_index("metric")["estimate"]
    assert shares["hallucination_share"] == 0.0 and shares["duplicate_share"] == 0.0  # the neutral answer
    assert set(rows(table, model="generative", reference="generation", attribute="gender")["group"]) == {"F", "M"}
    gen_summary = fairllm_summary(table).set_index("model").loc["generative"]
    assert gen_summary["snsr"] > 0  # F and M answers differ from the neutral one by different amounts
    assert "unknown" not in "".join(generative.prompts(["u0"], attribute_overrides={"gender": UNKNOWN}))


@pytest.mark.slow
def test_cli_fairllm_into_a_plain_folder_and_an_audit_folder(tmp_path):
    data_dir = tmp_path / "data"
    assert main(["sample", "--out", str(data_dir), "--users", "80", "--items", "40", "--interactions", "1600"]) == 0
    assert main(["train", "--data", str(data_dir), "--model", "popularity", "--out", str(tmp_path / "pop")]) == 0
    common = ["probe", "--protocol", "fairllm", "--model", str(tmp_path / "pop"), "--data", str(data_dir),
              "--attribute", "gender,gender*age_band", "--users", "20", "--bootstrap", "50"]
    assert main([*common, "--out", str(tmp_path / "plain")]) == 0
    table = pd.read_csv(tmp_path / "plain" / "fairllm.csv")
    assert list(table.columns) == list(FAIRLLM_COLUMNS) and set(table["attribute"]) >= {"gender", "gender*age_band"}
    assert main([*common, "--out", str(tmp_path / "plain")]) == 2  # exists: refused without --overwrite
    audit = tmp_path / "audit"
    assert main(["audit", "--data", str(data_dir), "--model", str(tmp_path / "pop"), "--out", str(audit),
                 "--bootstrap", "20"]) == 0
    assert main([*common, "--out", str(audit)]) == 0
    result = AuditResult.read(audit)
    assert result.fairllm is not None and len(result.fairllm) == len(table)
    assert (result.rows("fairllm", metric="jaccard_snsr")["estimate"] == 0).all()  # popularity reads no attribute
    assert main([*common, "--out", str(audit)]) == 2 and main([*common, "--out", str(audit), "--overwrite"]) == 0
    if shutil.which("pdftotext"):
        assert main(["report", "--audit", str(audit), "--out", str(tmp_path / "audit.pdf"), "--no-charts"]) == 0
        text = subprocess.run(["pdftotext", str(tmp_path / "audit.pdf"), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "FaiRLLM probe" in text and "gender*age_band" in text
    assert main(["probe", "--model", "a", "--model", "b", "--data", str(data_dir), "--attribute", "gender",
                 "--out", str(tmp_path / "x")]) == 2
