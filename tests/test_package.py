"""Package-level promises: importable without Streamlit, CLI help works."""

import subprocess
import sys


def test_fairaudit_imports_without_streamlit():
    code = (
        "import sys, fairaudit, fairaudit.data, fairaudit.models, fairaudit.cli; "
        "import fairaudit.cli as c; c.build_parser(); "
        "assert 'streamlit' not in sys.modules, 'fairaudit pulled in streamlit'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "fairaudit", "--help"], check=True, capture_output=True, text=True
    ).stdout
    assert "COMMAND" in out


def test_layer_contract_holds():
    """The import-linter contracts of pyproject.toml: layers point one way, no Streamlit in the package."""
    from pathlib import Path

    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=Path(__file__).parent.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
