"""Start the dashboard with its libraries loaded: ``python serve.py [streamlit run options]``.

What ``make dashboard`` runs. It is ``streamlit run app.py`` in this process after importing what the
first page needs (plotly's figure classes, FairAudit's audit, report, workspace and plotting layers)
and reading the ZIP-region tables, so a newcomer's first request does not wait for them: about 1.2 s
of a fresh server's first page on a 2-core machine (docs/benchmarks.md, Dashboard). Only plain
libraries are imported here; the page modules, with their Streamlit caches, load in the app as usual.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().with_name("app.py")


def preload() -> None:
    """Import the first screen's libraries and build the lookup tables its data load derives from."""
    import pandas as pd
    import plotly.graph_objects  # noqa: F401
    import plotly.subplots  # noqa: F401

    import fairaudit.plots  # noqa: F401
    import fairaudit.report  # noqa: F401
    import fairaudit.service  # noqa: F401
    import fairaudit.workspace  # noqa: F401
    from fairaudit.data import zip_region

    zip_region(pd.Series(["10001"]))  # builds the ZIP -> state tables (disk-cached per machine)


def main(argv: list[str]) -> int:
    from streamlit.web import cli

    preload()
    sys.argv = ["streamlit", "run", str(APP), *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
