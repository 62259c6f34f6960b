"""Mitigation benchmark: the trade-off sweep's time per point and its gap/accuracy figures at 3 points.

For each re-ranker (wrapping item-kNN; strengths 0, 0.5, 1) and each in-training term of the LLM
recommender (the lambda grids of ``TRAINING_STRENGTHS``, plus the adversarial term with its gradient-reversal
objective at lambda 0 and 1 for comparison), :func:`fairaudit.sweep.run_sweep`
runs on the planted-bias sample (``sample_data/``) and on MovieLens 100K (skipped when
``../shared/datasets/ml-100k`` is absent; its exposure gap is by ``popularity_tier``, since it has
no provider). Prints one table per dataset. Run:
``python -m bench.bench_mitigation [--quick] [--part rerank|training|all] [--epochs N] [--threads N]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
import torch

from fairaudit.data import load_dataset, load_sample, make_split
from fairaudit.models import RERANK_KINDS
from fairaudit.sweep import TRAINING_MITIGATIONS, run_sweep
from fairaudit.models import create_model

DATASETS = Path(os.environ.get("FAIRAUDIT_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
ML100K = DATASETS / "ml-100k"
RERANK_STRENGTHS = (0.0, 0.5, 1.0)
#: lambda grid of the in-training terms (their scales differ: a loss gap, a KL, a cross-entropy).
TRAINING_STRENGTHS = {"difference": (0.0, 2.0, 8.0), "exposure": (0.0, 1.0, 4.0), "adversarial": (0.0, 1.0, 10.0)}
COLUMNS = [
    "mitigation", "strength", "accuracy", "accuracy_cost", "gap", "exposure_gap", "target_metric", "target",
    "target_improvement", "target_improvement_ci_low", "target_improvement_ci_high", "fit_s", "audit_s",
]  # fmt: skip


def bench_dataset(name: str, dataset, item_attribute: str, rounds: int, part: str, epochs: int | None) -> pd.DataFrame:
    """The sweeps of ``part`` on one dataset, stacked."""
    split = make_split(dataset, "random", seed=0)
    start = time.perf_counter()
    base = create_model("itemknn").fit(dataset, split)
    print(f"[{name}] item-kNN base fitted in {time.perf_counter() - start:.2f}s", flush=True)
    frames = []
    if part in ("rerank", "all"):
        users = dataset.users["user_id"].tolist()
        for kind in ("base", *RERANK_KINDS):
            extra = {"attribute": item_attribute} if kind == "rerank_exposure" else {}
            model = base if kind == "base" else create_model(kind, base=base, strength=0.5, **extra).fit(dataset, split)
            start = time.perf_counter()
            model.recommend(users, k=10)
            print(f"[{name}] recommend top-10 for {len(users)} users, {kind}: {time.perf_counter() - start:.2f}s")
    for mitigation in RERANK_KINDS if part in ("rerank", "all") else ():
        frames.append(
            run_sweep(
                dataset, split, mitigation=mitigation, strengths=RERANK_STRENGTHS, model=base,
                item_attribute=item_attribute, rounds=rounds,
            )
        )  # fmt: skip
        print(f"[{name}] {mitigation} done", flush=True)
    if part in ("training", "all"):
        # The sweep's own default LLM template, as `python -m fairaudit sweep` builds it (mean pooling
        # for the adversarial term).
        params = {"seed": 0} if epochs is None else {"seed": 0, "epochs": epochs}
        for mitigation in TRAINING_MITIGATIONS:
            frames.append(
                run_sweep(
                    dataset, split, mitigation=mitigation, strengths=TRAINING_STRENGTHS[mitigation],
                    model_params=params, item_attribute=item_attribute, rounds=rounds,
                )
            )  # fmt: skip
            print(f"[{name}] {mitigation} done", flush=True)
        # The gradient-reversal objective, for comparison with the default mean-matching objective.
        frames.append(
            run_sweep(
                dataset, split, mitigation="adversarial", strengths=(0.0, 1.0), rounds=rounds,
                model_params={**params, "adversary_objective": "reversal"}, item_attribute=item_attribute,
            ).assign(mitigation="adversarial (reversal)")
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True).assign(dataset=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 bootstrap rounds instead of 1000")
    parser.add_argument("--part", choices=("rerank", "training", "all"), default="all", help="which sweeps to run")
    parser.add_argument("--epochs", type=int, help="LLM epochs per training point (default: the model's, 120)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = 200 if args.quick else 1000
    runs = [("sample", load_sample(), "provider")]
    if (ML100K / "u.data").is_file():
        runs.append(("ml-100k", load_dataset(ML100K), "popularity_tier"))
    else:
        print(f"MovieLens 100K not found at {ML100K}; skipped")
    for name, dataset, item_attribute in runs:
        frame = bench_dataset(name, dataset, item_attribute, rounds, args.part, args.epochs)
        print(f"\n### {name} ({dataset.summary()}, {rounds} bootstrap rounds)\n")
        print(frame[COLUMNS].to_string(index=False, float_format="{:.4f}".format))
        per_point = frame.groupby("mitigation", sort=False)[["fit_s", "audit_s", "time_s"]].mean()
        print("\nmean seconds per point:\n")
        print(per_point.to_string(float_format="{:.2f}".format))


if __name__ == "__main__":
    main()
