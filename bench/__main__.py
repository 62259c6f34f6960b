"""Run every benchmark module ``bench/bench_*.py`` (its ``main()``), in name order."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main() -> int:
    status = 0
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        print(f"== {path.stem} ==", flush=True)
        status |= int(importlib.import_module(f"bench.{path.stem}").main() or 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
