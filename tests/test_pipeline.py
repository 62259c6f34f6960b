"""The audit configuration file: parsing, errors, and run-twice reproducibility."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import datetime as dt
import pandas as pd
import pytest
import yaml
from pypdf import PdfReader

from fairaudit.cli import main
from fairaudit.pipeline import RunConfig, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00")


def _text_without_timestamps(pdf: bytes) -> str:
    """The PDF's text with the audit run time masked: it is the one thing a re-run may change."""
    reader = PdfReader(io.BytesIO(pdf))
    return _TIMESTAMP.sub("<time>", "\n".join(page.extract_text() for page in reader.pages))

CONFIG = {
    "data": {"path": "data"},
    "split": {"method": "random", "seed": 3, "params": {"test_fraction": 0.2}},
    "models": [{"name": "pop", "kind": "popularity"}, {"name": "knn", "kind": "itemknn"}],
    "audit": {"k": 10, "bootstrap_rounds": 60, "attributes": ["gender", "region"], "embedding_diversity": False},
    "explain": {"probe_users": 50},
    "report": {"title": "Test audit", "organisation": "Org <b>", "thresholds": {"min_ratio": 0.8}},
    "output": "out",
}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "sample_data", tmp_path / "data")
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def test_config_round_trips_through_its_mapping(config_file: Path):
    config = RunConfig.from_file(config_file)
    again = RunConfig.from_mapping(config.to_mapping(), base_dir=config.base_dir)
    assert again == config
    assert [m.name for m in config.models] == ["pop", "knn"]
    assert config.audit.k == 10 and config.audit.bootstrap_rounds == 60


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown key(s) ['colour'] in 'top level'"),
        ({"models": [{"name": "x"}]}, "missing required key 'models[0].kind'"),
        ({"models": [{"kind": "popularity"}, {"kind": "popularity"}]}, "model names must be unique"),
    ],
)
def test_bad_configs_name_the_key(change: dict, message: str):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        RunConfig.from_mapping({**CONFIG, **change})


def test_cli_run_reports_a_bad_config_as_an_error(tmp_path: Path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "colour": "red"}))
    assert main(["run", str(path)]) == 2
    assert "unknown key(s) ['colour']" in capsys.readouterr().err


@pytest.mark.slow
def test_running_twice_gives_identical_numbers_and_pdf(config_file: Path, tmp_path: Path):
    date = dt.date(2026, 1, 2)
    first = run_pipeline(RunConfig.from_file(config_file), date=date)
    assert first.trained == ("pop", "knn")
    metrics_first = pd.read_csv(first.audit_dir / "group_metrics.csv")
    gaps_first = pd.read_csv(first.audit_dir / "gaps.csv")
    pdf_first = first.report_pdf.read_bytes()
    meta_first = json.loads((first.audit_dir / "audit.json").read_text())

    second = run_pipeline(RunConfig.from_file(config_file), date=date, overwrite=True)  # same output on purpose
    assert second.reused == ("pop", "knn") and second.trained == ()
    second_dir = second.audit_dir
    pd.testing.assert_frame_equal(pd.read_csv(second_dir / "group_metrics.csv"), metrics_first)
    pd.testing.assert_frame_equal(pd.read_csv(second_dir / "gaps.csv"), gaps_first)
    assert _text_without_timestamps(second.report_pdf.read_bytes()) == _text_without_timestamps(pdf_first)
    meta_second = json.loads((second_dir / "audit.json").read_text())
    assert meta_second["audit_id"] == meta_first["audit_id"], "the audit id identifies content, not the run time"
    saved = yaml.safe_load((second_dir / "run_config.yaml").read_text())
    assert saved["models"][0]["kind"] == "popularity"
    assert set(metrics_first["model"]) == {"pop", "knn"}
    probes = pd.read_csv(second_dir / "probes.csv")
    assert set(probes["model"]) == {"pop", "knn"} and set(probes["attribute"]) == {"gender", "region"}


def test_the_documented_example_configuration_is_valid():
    config = RunConfig.from_file(ROOT / "docs" / "sample_audit.yaml")
    assert config.resolve(config.data_path) == (ROOT / "sample_data").resolve()
    assert [m.kind for m in config.models] == ["popularity", "mf", "llm"]
