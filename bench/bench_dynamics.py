"""Feedback-loop simulation benchmark: 10 retraining rounds on MovieLens 100K, time per round and memory.

Each configuration runs in its own process (so peak memory is its own): MF retrained from scratch, MF
fine-tuned (warm start, 2 ALS sweeps per round) and the LLM recommender fine-tuned (warm start, 12 of its 120
epochs per round). Every round recommends to all 943 users, draws clicks (position-based model), appends them,
retrains and computes the round's statistics (bootstrap over users). Prints seconds per round (fit, recommend,
statistics and the rest), peak RSS, and the drift of exposure Gini, the gender gap of true NDCG and coverage.
Skips when ``../shared/datasets/ml-100k`` is absent. Run:
``python -m bench.bench_dynamics [--rounds 10] [--seeds 1] [--configs mf_scratch mf_finetune llm_finetune] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

DATASETS = Path(os.environ.get("FAIRAUDIT_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
ML100K = DATASETS / "ml-100k"
#: name -> (model kind, model params, retrain mode, epochs per fine-tuning round)
CONFIGS = {
    "mf_scratch": ("mf", {}, "scratch", 2),
    "mf_finetune": ("mf", {}, "finetune", 2),
    "llm_finetune": ("llm", {}, "finetune", 12),
}


def run_one(name: str, rounds: int, seeds: int, threads: int | None) -> dict:
    """Simulate one configuration in this process; returns its figures."""
    import torch

    from fairaudit.data import load_dataset
    from fairaudit.dynamics import SimulationSettings, simulate, true_relevance
    from fairaudit.models import create_model

    if threads:
        torch.set_num_threads(threads)
    dataset = load_dataset(ML100K)
    start = time.perf_counter()
    relevance = true_relevance(dataset, params={"factors": 32})
    truth_s = time.perf_counter() - start
    kind, params, retrain, epochs = CONFIGS[name]
    settings = SimulationSettings(rounds=rounds, seeds=seeds, retrain=retrain, finetune_epochs=epochs,
                                  attributes=("gender",), item_attribute="popularity_tier", bootstrap=200)  # fmt: skip
    start = time.perf_counter()
    result = simulate(dataset, create_model(kind, **params), settings, relevance=relevance)
    total_s = time.perf_counter() - start
    timings = result.timings
    later = timings[timings["round"] > 0]
    n_rounds = len(timings)
    drift = result.drift[result.drift["round"] == rounds].set_index(["attribute", "group", "metric"])
    pick = lambda key: drift.loc[key, ["change", "ci_low", "ci_high"]].round(4).tolist()  # noqa: E731
    return {
        "config": name,
        "truth_fit_s": round(truth_s, 2),
        "round0_fit_s": round(float(timings.loc[timings["round"] == 0, "fit_s"].mean()), 2),
        "fit_s_per_round": round(float(later["fit_s"].mean()), 2),
        "recommend_s_per_round": round(float(timings["recommend_s"].mean()), 2),
        "wall_s_per_round": round(total_s / n_rounds, 2),
        "stats_and_rest_s_per_round": round((total_s - timings["fit_s"].sum() - timings["recommend_s"].sum())
                                            / n_rounds, 2),  # fmt: skip
        "clicks_per_round": int(timings["clicks"].mean()),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "gini_change": pick(("all", "all", "gini_exposure")),
        "coverage_change": pick(("all", "all", "catalogue_coverage")),
        "gap_ndcg_true_F_change": pick(("gender", "F", "gap:ndcg_true")),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--one", choices=list(CONFIGS), help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if not (ML100K / "u.data").is_file():
        print(f"MovieLens 100K not found at {ML100K}; skipped")
        return
    if args.one:
        print(json.dumps(run_one(args.one, args.rounds, args.seeds, args.threads)))
        return
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds x {args.seeds} seed(s)")
    for name in args.configs:
        command = [sys.executable, "-m", "bench.bench_dynamics", "--one", name, "--rounds", str(args.rounds),
                   "--seeds", str(args.seeds), *(["--threads", str(args.threads)] if args.threads else [])]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-2000:]}")
            continue
        print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
