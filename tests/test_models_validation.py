"""Validation split, early stopping, warm starts, thread control and old ``mf`` folders."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from fairaudit.cli import main
from fairaudit.data import generate_sample, random_holdout
from fairaudit.metrics import accuracy_metrics
from fairaudit.models import create_model, load_model, set_threads, validation_split
from fairaudit.models._base import BAD_THREADS, CONFIG_CHECKSUM, CONFIG_FILE, WARM_START_KIND, WARM_START_UNFITTED, config_checksum
from fairaudit.models._validation import EarlyStopping, Holdout, ndcg_at_k, validation_mask
from tests.test_models_contract import _embedding_cache, planted_dataset  # noqa: F401  (fixture reuse)

LLM = {"dim": 16, "epochs": 8, "batch_size": 32, "lr": 0.02, "device": "cpu"}
MF = {"factors": 8, "iterations": 10, "device": "cpu"}


@pytest.fixture(scope="module")
def planted():
    data = planted_dataset()
    return data, random_holdout(data, test_fraction=0.2, seed=0)


@pytest.fixture(scope="module")
def medium():
    """A few hundred users: enough signal for warm-start comparisons to be stable."""
    data, _ = generate_sample(seed=0, n_users=300, n_items=120, n_interactions=9000)
    return data, random_holdout(data, test_fraction=0.2, seed=0)


# ---- the validation split ---------------------------------------------------------------------------
def test_validation_mask_takes_a_seeded_share_per_user_never_all():
    users = np.repeat(np.arange(5), [1, 2, 10, 20, 3])
    mask = validation_mask(users, fraction=0.1, seed=3)
    per_user = pd.Series(mask).groupby(users).sum().tolist()
    assert per_user == [0, 1, 1, 2, 1]  # one-interaction users keep it; at least one, never all
    np.testing.assert_array_equal(mask, validation_mask(users, fraction=0.1, seed=3))
    assert not np.array_equal(mask, validation_mask(users, fraction=0.1, seed=4))


def test_validation_split_reads_only_the_training_part(planted):
    data, split = planted
    val = validation_split(split, fraction=0.1, seed=0)
    assert len(val.train) + len(val.test) == len(split.train)
    together = pd.concat([val.train, val.test]).sort_values(["user_id", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, split.train.sort_values(["user_id", "item_id"]).reset_index(drop=True))
    poisoned = type(split)(split.train, split.test.iloc[:0], split.method, split.seed)
    pd.testing.assert_frame_equal(validation_split(poisoned).test, val.test)


def test_ndcg_at_k_agrees_with_the_metrics_module():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 30, 25, 5
    top = np.stack([rng.permutation(n_items)[:k] for _ in range(n_users)])
    truth = [rng.choice(n_items, size=rng.integers(1, 8), replace=False) for _ in range(n_users)]
    indptr = np.r_[0, np.cumsum([len(t) for t in truth])]
    ours = ndcg_at_k(top, indptr, np.concatenate(truth), k)
    recs = pd.DataFrame({"user_id": np.repeat(np.arange(n_users), k).astype(str),
                         "rank": np.tile(np.arange(1, k + 1), n_users), "item_id": top.ravel().astype(str)})  # fmt: skip
    test = pd.DataFrame({"user_id": np.repeat(np.arange(n_users), [len(t) for t in truth]).astype(str),
                         "item_id": np.concatenate(truth).astype(str)})  # fmt: skip
    assert ours == pytest.approx(accuracy_metrics(recs, test, k=k)["ndcg"].mean(), abs=1e-12)


def test_holdout_carve_matches_validation_split(planted):
    data, split = planted
    model = create_model("popularity").fit(data, split)
    holdout = Holdout.carve(model.user_positions(split.train["user_id"]), model.item_positions(split.train["item_id"]),
                            len(model.user_ids_), fraction=0.1, seed=0)  # fmt: skip
    val = validation_split(split, fraction=0.1, seed=0)
    assert len(holdout.fit_users) == len(val.train) and len(holdout.truth_indices) == len(val.test)


# ---- early stopping -------------------------------------------------------------------------------
def test_early_stopping_record_shape():
    stopper = EarlyStopping(patience=2)
    for step, value in enumerate([0.1, 0.3, 0.3, 0.2], start=1):
        stopper.update(step, value)
    assert stopper.stop and stopper.best_step == 2
    record = json.loads(json.dumps(stopper.record({"epochs": 2})))
    assert record == {"metric": "ndcg@10", "curve": [{"step": i, "value": v} for i, v in enumerate([0.1, 0.3, 0.3, 0.2], 1)],
                      "best_step": 2, "chosen": {"epochs": 2}}  # fmt: skip


@pytest.fixture
def planted_plateau(monkeypatch):
    """Validation NDCG rises for three epochs, then stays flat: early stopping must end at the plateau."""
    curve = [0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    calls = iter(curve)
    monkeypatch.setattr(Holdout, "ndcg", lambda self, model, **kw: next(calls))
    return curve


def test_llm_stops_on_a_planted_plateau_and_refits_the_best_epochs(planted, planted_plateau):
    data, split = planted
    events = []
    model = create_model("llm", **{**LLM, "epochs": 12}, patience=2).fit(data, split, progress=events.append)
    # Epoch 3 is best, 4 and 5 show no gain: stop after 5, then refit for 3 epochs on all training interactions.
    assert [e.epoch for e in events] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert "stopped early" in events[4].message and events[-1].epoch == events[-1].n_epochs == 8
    assert model.validation_["best_step"] == 3 and model.validation_["chosen"] == {"epochs": 3}
    assert [p["step"] for p in model.validation_["curve"]] == [1, 2, 3, 4, 5]
    three = create_model("llm", **{**LLM, "epochs": 3}).fit(data, split)
    np.testing.assert_array_equal(model.score(["u0", "u5"]), three.score(["u0", "u5"]))


def test_mf_stops_on_a_planted_plateau_and_refits_the_best_iterations(planted, planted_plateau):
    data, split = planted
    model = create_model("mf", **{**MF, "iterations": 12}, patience=2).fit(data, split)
    assert model.validation_["best_step"] == 3 and len(model.validation_["curve"]) == 5
    plain = create_model("mf", **{**MF, "iterations": 3}).fit(data, split)
    np.testing.assert_allclose(model.score(["u0", "u5"]), plain.score(["u0", "u5"]), rtol=1e-5, atol=1e-6)


def test_validation_record_is_saved_and_loaded(planted, tmp_path):
    data, split = planted
    model = create_model("mf", **MF, patience=2).fit(data, split)
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    assert config["validation"] == json.loads(json.dumps(model.validation_))
    assert load_model(tmp_path / "m").validation_ == config["validation"]


def test_bad_patience_is_refused(planted):
    with pytest.raises(ValueError, match="patience must be"):
        create_model("mf", **MF, patience=0).fit(*planted)


# ---- warm starts --------------------------------------------------------------------------------------
def _distance(a, b) -> float:
    return float(np.abs(a - b).mean())


@pytest.mark.parametrize("kind, params", [("mf", {**MF, "iterations": 10}), ("mf", {**MF, "algorithm": "bpr", "iterations": 30}),
                                          ("llm", {**LLM, "lr": 3e-3, "epochs": 8})])  # fmt: skip
def test_warm_start_stays_closer_to_the_previous_model_than_a_cold_fit(medium, kind, params):
    data, split = medium
    users = data.users["user_id"][:100]
    old = create_model(kind, **params).fit(data, split)
    one = {**params, ("iterations" if kind == "mf" else "epochs"): 1, "seed": 1}
    cold = create_model(kind, **one).fit(data, split)
    warm = create_model(kind, **one).fit(data, split, warm_start=old)
    reference = old.score(users)
    assert _distance(warm.score(users), reference) < 0.7 * _distance(cold.score(users), reference)
    assert old.fingerprint() == create_model(kind, **params).fit(data, split).fingerprint()  # old left as it was


def test_warm_start_carries_vectors_by_id_and_initialises_new_users(planted):
    data, split = planted
    fewer = split.train[split.train["user_id"] != "u0"]
    smaller = create_model("mf", **MF).fit(data, type(split)(fewer, split.test, split.method, split.seed))
    assert not smaller.user_factors_[0].any()  # u0 has no training interactions there
    warm = create_model("mf", **{**MF, "iterations": 1}).fit(data, split, warm_start=smaller)
    assert warm.user_factors_[0].any()


def test_warm_start_refuses_other_kinds_and_unfitted_models(planted):
    data, split = planted
    with pytest.raises(ValueError, match=re.escape(WARM_START_KIND.format("mf", "popularity"))):
        create_model("mf", **MF).fit(data, split, warm_start=create_model("popularity").fit(data, split))
    with pytest.raises(ValueError, match=re.escape(WARM_START_UNFITTED.format("mf"))):
        create_model("mf", **MF).fit(data, split, warm_start=create_model("mf"))
    with pytest.raises(ValueError, match="same factors"):
        create_model("mf", **{**MF, "factors": 4}).fit(data, split, warm_start=create_model("mf", **MF).fit(data, split))


def test_kinds_without_iterative_training_simply_refit(planted):
    data, split = planted
    old = create_model("itemknn").fit(data, split)
    again = create_model("itemknn").fit(data, split, warm_start=old)
    assert again.fingerprint() == old.fingerprint()


def test_warm_start_from_itself(planted):
    data, split = planted
    model = create_model("mf", **MF).fit(data, split)
    before = model.score(["u0"])
    model.fit(data, split, warm_start=model)
    assert np.isfinite(model.score(["u0"])).all() and model.score(["u0"]).shape == before.shape


# ---- old mf folders, threads -------------------------------------------------------------------------
def test_mf_folder_of_the_hand_written_als_still_loads(planted, tmp_path):
    """Folders saved before the move to ``implicit`` hold params without the new keys; they load and score alike."""
    data, split = planted
    model = create_model("mf", **MF).fit(data, split)
    model.save(tmp_path / "old")
    config_path = tmp_path / "old" / CONFIG_FILE
    config = json.loads(config_path.read_text())
    config["params"] = {key: config["params"][key] for key in ("factors", "alpha", "reg", "iterations", "cg_steps", "device", "seed")}
    config[CONFIG_CHECKSUM] = config_checksum(config)
    config_path.write_text(json.dumps(config))
    loaded = load_model(tmp_path / "old", dataset=data)
    np.testing.assert_array_equal(loaded.score(["u0", "u3"]), model.score(["u0", "u3"]))
    assert loaded.get_params()["algorithm"] == "als"


def test_set_threads_is_honoured_and_checked():
    before = torch.get_num_threads()
    try:
        assert set_threads(2) == 2 and torch.get_num_threads() == 2
        assert set_threads(None) == 2
        with pytest.raises(ValueError, match=re.escape(BAD_THREADS.format(0))):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_cli_threads_option(tmp_path, capsys, monkeypatch):
    """The command runs with --threads N threads; afterwards the process has its own setting back."""
    import fairaudit.cli._train as train_command

    seen, run = [], train_command.run
    monkeypatch.setattr(train_command, "run", lambda args: seen.append(torch.get_num_threads()) or run(args))
    before = torch.get_num_threads()
    assert main(["train", "--model", "popularity", "--out", str(tmp_path / "m"), "--threads", "2"]) == 0
    assert seen == [2] and torch.get_num_threads() == before
    assert "holdout: all unseen catalogue items ranked" in capsys.readouterr().out
    assert main(["train", "--model", "popularity", "--out", str(tmp_path / "n"), "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err


def test_weight_averaging_keeps_a_running_average_of_the_weights(planted):
    """With a decay of almost 1 the average never leaves the initial weights (ID embeddings start at zero)."""
    data, split = planted
    plain = create_model("llm", **LLM).fit(data, split)
    frozen = create_model("llm", **LLM, weight_averaging=1 - 1e-9).fit(data, split)
    assert plain.net_.item_id.weight.abs().max() > 1e-3
    assert frozen.net_.item_id.weight.abs().max() < 1e-6
    assert create_model("llm", **LLM, weight_averaging=0.0).fit(data, split).fingerprint() == plain.fingerprint()


def test_train_names_the_cold_start_convention_of_its_holdout_figure():
    from fairaudit.cli._train import holdout_convention
    from fairaudit.data import Split

    empty = pd.DataFrame(columns=["user_id", "item_id"])
    assert "no cold-start items" in holdout_convention(Split(empty, empty, "random", 0))
    cold = holdout_convention(Split(empty, empty, "cold_items", 0, cold_items=("i1", "i2")))
    assert cold.startswith("cold-start convention: the 2 withheld items are ranked against the whole catalogue")
