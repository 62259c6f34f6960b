"""Base-class mechanics: seen-item masking, tie-breaking, device choice, safe loading."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairaudit.data import Split, random_holdout
from fairaudit.models import ModelFolderError, config_checksum, create_model, load_model, model_kinds, resolve_device
from fairaudit.data import file_sha256
from fairaudit.models._base import _UNKNOWN_TRAIN_IDS, CONFIG_FILE, WEIGHTS_FILE, _top_k
from tests.conftest import make_tiny_dataset


@pytest.fixture(scope="module")
def data_split():
    data = make_tiny_dataset()
    return data, random_holdout(data, test_fraction=0.25, seed=1)


@pytest.fixture
def saved(data_split, tmp_path):
    data, split = data_split
    folder = tmp_path / "model"
    create_model("itemknn").fit(data, split).save(folder)
    return folder


def test_all_kinds_registered():
    assert set(model_kinds()) >= {"llm", "popularity", "itemknn", "mf"}


def test_history_and_mask_match_training_pairs(data_split):
    data, split = data_split
    model = create_model("popularity").fit(data, split)
    users = np.array([5, 0, 17])
    history = model.history_matrix(users).numpy()
    expected = np.zeros_like(history)
    for row, u in enumerate(users):  # reference by loop (test only)
        items = split.train.loc[split.train["user_id"] == f"u{u}", "item_id"]
        expected[row, model.item_positions(items)] = 1.0
    np.testing.assert_array_equal(history, expected)
    masked = model._mask_seen(torch.zeros(3, len(data.items)), users).numpy()
    np.testing.assert_array_equal(np.isinf(masked), expected > 0)


def test_ties_broken_by_catalogue_position(data_split):
    data, split = data_split
    model = create_model("popularity").fit(data, split)
    model.counts_ = torch.tensor([1.0, 2.0] * (len(data.items) // 2))  # items 1, 3, 5 ... tie at the top
    recs = model.recommend(["u0"], k=4, exclude_seen=False)
    assert recs["item_id"].tolist() == ["i1", "i3", "i5", "i7"]


def test_recommend_drops_nothing_but_seen(data_split):
    data, split = data_split
    model = create_model("popularity").fit(data, split)
    recs = model.recommend(["u0"], k=len(data.items))
    n_seen = (split.train["user_id"] == "u0").sum()
    assert len(recs) == len(data.items) - n_seen


def test_resolve_device():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_fit_refuses_split_from_other_data(data_split):
    data, split = data_split
    bad = Split(pd.concat([split.train, pd.DataFrame({"user_id": ["zz"], "item_id": ["i0"]})]), split.test, "x", 0)
    with pytest.raises(ValueError, match=re.escape(_UNKNOWN_TRAIN_IDS.format("user", ["zz"]))):
        create_model("popularity").fit(data, bad)


def test_load_round_trip(saved, data_split):
    assert load_model(saved, dataset=data_split[0]).kind == "itemknn"


def test_refuses_missing_config(saved):
    (saved / CONFIG_FILE).unlink()
    with pytest.raises(ModelFolderError, match="config.json is missing"):
        load_model(saved)


def test_refuses_missing_folder(tmp_path):
    with pytest.raises(ModelFolderError, match="not a folder"):
        load_model(tmp_path / "nothing")


def test_refuses_edited_weights(saved):
    raw = bytearray((saved / WEIGHTS_FILE).read_bytes())
    raw[-1] ^= 0xFF
    (saved / WEIGHTS_FILE).write_bytes(bytes(raw))
    with pytest.raises(ModelFolderError, match="does not match the checksum"):
        load_model(saved)


def test_refuses_pickle_even_with_matching_checksum(saved):
    """A pickle renamed to model.safetensors (checksum forged too) is never unpickled."""
    (saved / WEIGHTS_FILE).write_bytes(pickle.dumps({"similarity": np.eye(3)}))
    config = json.loads((saved / CONFIG_FILE).read_text())
    config["weights_sha256"] = file_sha256(saved / WEIGHTS_FILE)
    config["config_sha256"] = config_checksum(config)  # the config checksum forged as well
    (saved / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="is not a safetensors file"):
        load_model(saved)


def test_refuses_other_data(saved):
    other = make_tiny_dataset(seed=1)
    with pytest.raises(ModelFolderError, match="was trained on data with fingerprint"):
        load_model(saved, dataset=other)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.pop("data_fingerprint"), "lacks required key"),
        (lambda c: c.update(kind="bogus"), "unknown model kind 'bogus'"),
        (lambda c: c.update(format_version=99), "format_version 99"),
    ],
)
def test_refuses_bad_config(saved, edit, message):
    """Each check holds on its own: the config checksum is forged so that only the edit is wrong."""
    config = json.loads((saved / CONFIG_FILE).read_text())
    edit(config)
    config["config_sha256"] = config_checksum(config)
    (saved / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match=message):
        load_model(saved)


def test_refuses_non_json_config(saved):
    (saved / CONFIG_FILE).write_bytes(pickle.dumps({"kind": "itemknn"}))
    with pytest.raises(ModelFolderError, match="not valid JSON"):
        load_model(saved)


@settings(max_examples=80)
@given(
    st.integers(1, 12).flatmap(
        lambda cols: st.tuples(
            st.lists(st.lists(st.sampled_from([0.0, 1.0, 2.0, float("-inf")]), min_size=cols, max_size=cols),
                     min_size=1, max_size=8),
            st.integers(0, cols),
        )
    )
)
def test_top_k_equals_a_stable_full_sort(case):
    """Same items, scores and tie order as sorting every row (score desc, then catalogue position)."""
    rows, k = case
    scores = torch.tensor(rows)
    values, idx = torch.sort(scores, dim=1, descending=True, stable=True)
    got_values, got_idx = _top_k(scores, k)
    assert torch.equal(got_idx, idx[:, :k]) and torch.equal(got_values, values[:, :k])
