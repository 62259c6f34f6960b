"""CLI start-up benchmark (issue 18): wall time of ``--help`` and of a usage error, per sub-command.

Each figure is the median of ``--repeats`` fresh interpreters (``python -m fairaudit ...``); the target
is under 1 s. A usage error is ``--threads 0`` (every command has ``--threads``; argparse refuses it
while parsing, as it does any bad option value). For scale it also times a bare interpreter and
``import torch``, what a parser used to pay. Which modules a parser imports is asserted by
tests/test_cli_startup.py; this measures the time. Run: ``python -m bench.bench_cli [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from fairaudit.cli import COMMANDS

TARGET_S = 1.0


def wall(argv: list[str], repeats: int) -> float:
    """Median wall seconds of ``argv`` over ``repeats`` runs (its output discarded)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (median; default 5)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "fairaudit"]
    load_before = os.getloadavg()[0]
    python_s = wall([sys.executable, "-c", "pass"], args.repeats)
    torch_s = wall([sys.executable, "-c", "import torch"], args.repeats)
    rows = [("(none)", wall([*cli, "--help"], args.repeats), wall([*cli, "no-such-command"], args.repeats))]
    for command in COMMANDS:
        rows.append((command, wall([*cli, command, "--help"], args.repeats),
                     wall([*cli, command, "--threads", "0"], args.repeats)))  # fmt: skip
    load_after = os.getloadavg()[0]
    print(f"bare interpreter {python_s:.2f} s; import torch {torch_s:.2f} s (medians of {args.repeats})")
    print("| command | --help | usage error |")
    print("|---|---|---|")
    for command, help_s, error_s in rows:
        print(f"| {command} | {help_s:.2f} s | {error_s:.2f} s |")
    slowest = max(max(help_s, error_s) for _, help_s, error_s in rows)
    print(f"slowest {slowest:.2f} s (target < {TARGET_S:g} s); 1-min load average {load_before:.1f} -> {load_after:.1f}")
    return 0 if slowest < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
