"""CLI start-up: ``--help`` and usage errors never import the heavy libraries (issue 18).

Each sub-command runs in a fresh interpreter and the test reads ``sys.modules`` afterwards, a property
that holds on any machine however loaded (the wall time is measured in bench/bench_cli.py). Every
command listed in ``fairaudit.cli.COMMANDS`` is covered, so a new one is checked without editing
this file.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fairaudit import _choices
from fairaudit.cli import COMMANDS

#: Libraries a parser must never import: only a command that runs may need them.
FORBIDDEN = ("torch", "transformers", "shap", "sklearn", "pyspark", "streamlit", "plotly", "implicit", "safetensors")
#: Data libraries that parsers avoid too (start-up under 1 s).
DATA_LIBRARIES = ("numpy", "pandas", "scipy", "pyarrow")

#: Usage errors per command beyond the ``--threads 0`` every command gets: (arguments, option named).
USAGE_ERRORS = {
    "validate": [(["x.csv", "--encoding", "klingon"], "--encoding")],
    "sample": [(["--out", "o", "--users", "1"], "--users")],
    "train": [
        (["--out", "o", "--epochs", "0"], "--epochs"),
        (["--out", "o", "--device", "banana"], "--device"),
        (["--out", "o", "--model", "rerank_mmr"], "--model"),
        (["--out", "o", "--pooling", "max"], "--pooling"),
    ],
    "recommend": [(["--model", "m", "--out", "o.csv", "--k", "0"], "--k")],
    "audit": [
        (["--out", "o", "--alpha", "1.5"], "--alpha"),
        (["--out", "o", "--by-period", "fortnight"], "--by-period"),
        (["--out", "o", "--split", "sideways"], "--split"),
    ],
    "explain": [(["--model", "m", "--data", "d", "--user", "u", "--top", "0"], "--top")],
    "probe": [(["--model", "m", "--data", "d", "--seed", "-1"], "--seed")],
    "report": [(["--audit", "a", "--out", "o.pdf", "--paper", "A5"], "--paper")],
    "compare": [(["--seed", "-1"], "--seed")],
    "run": [(["config.yaml", "--date", "2026-13-40"], "--date")],
    "sweep": [(["--data", "d", "--out", "o", "--mitigation", "magic"], "--mitigation")],
    "robustness": [(["--data", "d", "--model", "m", "--out", "o", "--attack", "meteor"], "--attack")],
    "simulate": [(["--data", "d", "--model-kind", "rerank_mmr", "--out", "o"], "--model-kind")],
    "privacy": [(["--out", "o", "--attack", "guess"], "--attack")],
}

#: Runs ``main`` on each argument list in this interpreter; prints the exit codes, stderr and imports.
_PROBE = """
import contextlib, io, json, sys
from fairaudit.cli import main
runs = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as done:
            code = done.code
    runs.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps({"runs": runs, "modules": sorted({m.split('.')[0] for m in sys.modules}),
                  "fairaudit": sorted(m for m in sys.modules if m.startswith("fairaudit"))}))
"""


def _probe(argvs: list[list[str]]) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argvs)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_and_usage_errors_import_no_heavy_library(command):
    errors = [(["--threads", "0"], "--threads"), *USAGE_ERRORS.get(command, [])]
    result = _probe([[command, "--help"], *([command, *args] for args, _ in errors)])
    help_run, *error_runs = result["runs"]
    assert help_run["code"] == 0 and f"python -m fairaudit {command}" in help_run["stdout"]
    for (args, option), run in zip(errors, error_runs):
        assert run["code"] == 2, (args, run)
        assert f"argument {option}" in run["stderr"], (args, run["stderr"])
    loaded = set(result["modules"])
    assert not loaded & set(FORBIDDEN), f"{command}: {sorted(loaded & set(FORBIDDEN))} imported"
    assert not loaded & set(DATA_LIBRARIES), f"{command}: {sorted(loaded & set(DATA_LIBRARIES))} imported"
    light = ("fairaudit", "fairaudit._choices")
    heavy = [m for m in result["fairaudit"] if not m.startswith("fairaudit.cli") and m not in light]
    assert not heavy, f"{command}: the parser imported {heavy}"


def test_top_level_help_and_import_fairaudit_stay_light():
    result = _probe([["--help"], ["no-such-command"]])
    assert [run["code"] for run in result["runs"]] == [0, 2]
    assert not set(result["modules"]) & {*FORBIDDEN, *DATA_LIBRARIES}
    code = "import sys, fairaudit, fairaudit._choices; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert not set(json.loads(loaded.replace("'", '"'))) & {*FORBIDDEN, *DATA_LIBRARIES}


def test_usage_error_raised_by_a_command_is_classified_without_importing_the_models():
    """A ``UsageError`` found in a command's own checks exits 2 without importing what classifying it used to."""
    code = (
        "import sys; from fairaudit.cli import exit_status, one_line; from fairaudit.cli._options import UsageError;"
        "err = UsageError('--k: bad'); print(exit_status(err), one_line(err));"
        "print(any(m.split('.')[0] in ('torch', 'pandas') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["2 --k: bad", "False"]


def test_the_packages_take_their_choices_from_one_place():
    """The models, audit config, report thresholds and subpackages use ``fairaudit._choices`` (no twin)."""
    import inspect

    from fairaudit import audit, data, dynamics, metrics, models, report, robustness, service, sweep
    from fairaudit.audit import AuditConfig

    assert models.model_kinds() == _choices.MODEL_KINDS
    assert service.trainable_kinds() == _choices.TRAINABLE_KINDS
    signature = inspect.signature(models.LLMRecommender.__init__).parameters
    assert {name: signature[name].default for name in _choices.LLM_DEFAULTS} == _choices.LLM_DEFAULTS
    config = AuditConfig()
    assert {name: getattr(config, name) for name in _choices.AUDIT_DEFAULTS} == _choices.AUDIT_DEFAULTS
    assert report.Thresholds().__dict__ == _choices.THRESHOLD_DEFAULTS
    assert data.SPLIT_METHODS is _choices.SPLIT_METHODS and audit.AUDIT_BOUNDS is _choices.AUDIT_BOUNDS
    assert models.RERANK_KINDS is _choices.RERANK_KINDS and robustness.ATTACKS is _choices.ATTACKS
    assert dynamics.CHOICE_MODELS is _choices.CHOICE_MODELS and report.PAPERS is _choices.PAPERS
    assert sweep.MITIGATIONS is _choices.MITIGATIONS and dynamics.check_period is _choices.check_period
    assert metrics.METRICS.names(family="accuracy") == metrics.ACCURACY_METRICS == _choices.ACCURACY_METRICS


def test_an_undeclared_model_kind_is_refused():
    from fairaudit.models import PopularityRecommender, register

    class Stray(PopularityRecommender):
        kind = "stray"

    with pytest.raises(ValueError, match="not declared; add it to fairaudit._choices.MODEL_KINDS"):
        register(Stray)
