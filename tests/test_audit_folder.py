"""The audit folder object: exact round trip of every table, stale optional tables removed on
re-write, named errors for tampered folders, and the row query helper."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pandas as pd
import pytest

from audit_fixture import analysis_tables, write_audit_folder, write_optional_explanations
from fairaudit.audit import (
    FILES,
    OPTIONAL_FILES,
    TABLES,
    AuditFolderError,
    AuditResult,
    MissingAuditFileError,
    read_audit,
    select_rows,
    write_audit,
)
from fairaudit.audit._folder import (
    _MISSING_COLUMN,
    _MISSING_FILE,
    _NO_CONFIG,
    _NO_TABLE,
    _NOT_AN_OBJECT,
    _NOT_FLAG,
    _NOT_NUMERIC,
    _UNKNOWN_TABLE,
)
from fairaudit.audit._tables import _UNKNOWN_COLUMN
from fairaudit.compare import COLUMNS, VERDICT_COLUMNS, add_comparison

#: Group names a CSV reader would turn into NaN or numbers unless told they are text.
NAMES = {"F": "NA", "Northeast": "007", "South": "", "West": "-1"}
SETTINGS = {"metrics": ["ndcg"], "attributes": ["gender"], "seed": 0, "bootstrap_rounds": 50, "k": 10}


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> AuditResult:
    """A two-model audit with every optional table: comparison, verdicts, probes, drivers, decomposition, settings."""
    folder = write_audit_folder(tmp_path_factory.mktemp("fixture"), n_users=120, names=NAMES)
    write_optional_explanations(folder)
    result = add_comparison(read_audit(folder))
    decomposition = pd.DataFrame({
        "model": "llm", "metric": "ndcg", "attribute": "gender", "group": ["NA", "M"], "reference": "rest",
        "feature": ["gender=NA", "n_interactions"], "role": ["own attribute", "behaviour"],
        "contribution": [-0.1 / 3, 0.2 / 7], "predicted_gap": -0.05, "observed_gap": -0.0612345678901234,
        "n_users": 60,
    })
    result = dataclasses.replace(result, **analysis_tables())
    return dataclasses.replace(result, gap_decomposition=decomposition, explanations=SETTINGS)


def test_every_table_round_trips_exactly(full, tmp_path):
    assert {name for name, s in TABLES.items() if s.optional} <= {f.name for f in dataclasses.fields(AuditResult)}
    assert list(full.comparison.columns) == list(COLUMNS) and list(full.verdicts.columns) == list(VERDICT_COLUMNS)
    back = read_audit(write_audit(full, tmp_path / "audit"))
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(back, name), getattr(full, name), check_exact=True, obj=name)
    assert back.meta == full.meta and back.explanations == SETTINGS
    assert back.config == full.config and back.config.bootstrap_rounds == 200  # typed, from audit.json
    assert set(back.group_metrics["group"]) >= {"NA", "007", "", "-1"}  # text stays text
    assert sorted(p.name for p in (tmp_path / "audit").iterdir()) == sorted([*FILES.values(), *OPTIONAL_FILES.values()])


def test_rewriting_removes_stale_optional_tables(full, tmp_path):
    folder = write_audit(full, tmp_path / "audit")
    (folder / "audit.pdf").write_bytes(b"%PDF")  # not an audit table: left alone
    bare = dataclasses.replace(full, probes=None, shap_drivers=None, gap_decomposition=None, explanations=None,
                               comparison=None, verdicts=None)
    bare = dataclasses.replace(bare, fairllm=None)
    bare = dataclasses.replace(bare, robustness=None)
    bare = dataclasses.replace(bare, period_metrics=None, period_trends=None, exposure_drift=None)
    bare = dataclasses.replace(bare, profile_accuracy=None, profile_leakage=None, text_counterfactual=None)
    bare = dataclasses.replace(bare, mia=None, privacy_cost=None)
    write_audit(bare, folder, overwrite=True)  # e.g. a re-audit of another model into the same folder
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES.values(), "audit.pdf"])
    back = read_audit(folder)
    assert all(getattr(back, name) is None for name in OPTIONAL_FILES)


def test_probes_written_before_the_group_column_get_it_on_reading(full, tmp_path):
    folder = write_audit(full, tmp_path / "audit")
    full.probes.drop(columns="group").to_csv(folder / "probes.csv", index=False)
    probes = read_audit(folder).probes
    assert probes["group"].tolist() == probes["original_value"].tolist()


def _tamper(folder, file, edit):
    path = folder / file
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(path, index=False)


def _set(column, value):
    def edit(frame):
        frame.loc[1, column] = value
    return edit


TAMPERED = {
    "audit.json is a list": (lambda f: (f / "audit.json").write_text("[1, 2]"),
                             lambda f: _NOT_AN_OBJECT.format(f, "audit.json", "list")),
    "audit.json without config": (lambda f: (f / "audit.json").write_text(json.dumps({"data": {}})),
                                  lambda f: _NO_CONFIG.format(f, "audit.json", "NoneType")),
    "column missing": (lambda f: _tamper(f, "gaps.csv", lambda t: t.drop(columns="p_adjusted", inplace=True)),
                       lambda f: _MISSING_COLUMN.format(f, "gaps.csv", "p_adjusted",
                                                        list(TABLES["gaps"].required_columns))),
    "text in a numeric column": (lambda f: _tamper(f, "group_metrics.csv", _set("value", "0.3 (approx)")),
                                 lambda f: _NOT_NUMERIC.format(f, "group_metrics.csv", "value", "0.3 (approx)")),
    "text in an optional table": (lambda f: _tamper(f, "comparison.csv", _set("ci_low", "low")),
                                  lambda f: _NOT_NUMERIC.format(f, "comparison.csv", "ci_low", "low")),
    "optional column missing": (lambda f: _tamper(f, "probes.csv", lambda t: t.drop(columns="estimate", inplace=True)),
                                lambda f: _MISSING_COLUMN.format(f, "probes.csv", "estimate",
                                                                 list(TABLES["probes"].required_columns))),
    "flag not True/False": (lambda f: _tamper(f, "group_metrics.csv", _set("flagged", "maybe")),
                            lambda f: _NOT_FLAG.format(f, "group_metrics.csv", "flagged", "maybe")),
}


@pytest.mark.parametrize("case", TAMPERED)
def test_tampered_folders_give_the_named_error(full, tmp_path, case):
    folder = write_audit(full, tmp_path / "audit")
    tamper, message = TAMPERED[case]
    tamper(folder)
    with pytest.raises(AuditFolderError, match=re.escape(message(folder))):
        read_audit(folder)


def test_missing_required_file_is_named(full, tmp_path):
    folder = write_audit(full, tmp_path / "audit")
    (folder / "item_exposure.csv").unlink()
    with pytest.raises(MissingAuditFileError, match=re.escape(_MISSING_FILE.format(folder, "item_exposure.csv"))) as err:
        AuditResult.read(folder)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)


def test_convenience_properties(full):
    assert full.models == ["llm", "popularity"]
    assert full.attributes == ["gender", "age_band", "region", "gender*age_band"]
    assert full.data_fingerprint == "d41d8cd98f00b204" and full.model_meta("llm")["kind"] == "llm"
    assert re.fullmatch(r"[0-9a-f]{16}", full.config_fingerprint)


def test_rows_asks_for_rows_instead_of_filtering_by_hand(full):
    gaps = full.gaps
    by_hand = gaps[(gaps["model"] == "llm") & gaps["attribute"].isin(["gender", "region"]) & (gaps["reference"] == "rest")]
    pd.testing.assert_frame_equal(full.rows("gaps", model="llm", attribute=["gender", "region"], reference="rest"),
                                  by_hand)
    pd.testing.assert_frame_equal(select_rows(gaps, model="llm", attribute=("gender", "region"), reference="rest"),
                                  by_hand)
    assert len(full.rows("group_metrics", flagged=True)) > 0
    with pytest.raises(ValueError, match=re.escape(_UNKNOWN_COLUMN.format("modle", "gaps.csv", list(gaps.columns)))):
        full.rows("gaps", modle="llm")
    with pytest.raises(ValueError, match=re.escape(_UNKNOWN_TABLE.format("gap", list(TABLES)))):
        full.rows("gap")
    with pytest.raises(ValueError, match=re.escape(_NO_TABLE.format("probes", "probes.csv"))):
        dataclasses.replace(full, probes=None).rows("probes")


def test_copying_a_folder_by_hand_reads_the_same(full, tmp_path):
    """The object reads what other tools copy around (a zip, the CLI): the files are the whole state."""
    folder = write_audit(full, tmp_path / "a")
    copy = shutil.copytree(folder, tmp_path / "b")
    pd.testing.assert_frame_equal(read_audit(copy).comparison, full.comparison, check_exact=True)
