"""Statistics calibration benchmark: false-positive rates, CI coverage and power of the audit's tests.

On the committed sample and on MovieLens 100K (skipped when ``../shared/datasets/ml-100k`` is absent)
it audits a popularity and an item-kNN model once, then simulates on their real per-user metric
frames (``bench/_calibration.py``; every figure comes from the package's own ``SliceReport`` and
``compare_models``):

- null audits (attribute labels shuffled among the evaluated users) for every gap test kind — vs rest,
  vs best, an intersection, a many-group attribute, the legacy one-tailed vs-best statistic — and for
  model comparisons and sweep improvements (per-user A/B coin flips): FPR at alpha = 0.05 with its
  95 % Clopper-Pearson interval, before and after Benjamini-Hochberg;
- planted effects (group members drawn from the popularity model's per-user NDCG, one group shifted):
  coverage of the 95 % bootstrap CIs and power of the vs-rest test by group size and effect size, and
  the power at the ``mdg`` the audit reports.

Item-exposure rows carry no CI or p-value (nothing is tested there), so they have no FPR.
Run: ``python -m bench.bench_statistics [--seeds 1000] [--planted-seeds 400] [--rounds 999] [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench._calibration import null_comparison_rates, null_gap_rates, planted_rates, rates_frame
from fairaudit.audit import LOWER_IS_BETTER, AuditConfig, attribute_groups, run_audit, train_derived_users
from fairaudit.data import load_dataset, load_sample, make_split
from fairaudit.models import create_model

ROOT = Path(__file__).resolve().parents[1]
ML100K = Path(os.environ.get("FAIRAUDIT_DATASETS", ROOT.parent / "shared" / "datasets")) / "ml-100k"
METRICS = ["ndcg", "hit_rate"]
#: Attribute specs simulated per dataset: (label, spec); specs absent from a dataset are skipped.
ATTRIBUTES = (("two groups", "gender"), ("intersection", "gender*age_band"), ("many groups", "occupation"),
              ("activity", "activity"))  # fmt: skip

#: Which direction is better for each of METRICS (the gap tests rank groups by it).
HIGHER_IS_BETTER = {m: m not in LOWER_IS_BETTER for m in METRICS}


def attribute_labels(users: pd.DataFrame, index: pd.Index):
    """``(label, spec, group of each user in index)`` for every ATTRIBUTES entry whose columns ``users`` has."""
    for label, spec in ATTRIBUTES:
        if all(part in users.columns for part in spec.split("*")):
            yield label, spec, attribute_groups(users, spec).reindex(index)


def _audited(dataset) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per-user metrics of popularity and item-kNN (one audit), and the users table (train-derived)."""
    split = make_split(dataset, "random", seed=0)
    models = {kind: create_model(kind).fit(dataset, split) for kind in ("popularity", "itemknn")}
    config = AuditConfig(bootstrap_rounds=10, embedding_diversity=False, attributes=("gender",))
    um = run_audit(dataset, split, models, config).user_metrics
    frames = [um[um["model"] == kind].set_index("user_id")[METRICS] for kind in models]
    users, _ = train_derived_users(dataset, split)
    return frames[0], frames[1].reindex(frames[0].index), users


def _null_table(name: str, dataset, seeds: int, rounds: int) -> tuple[pd.DataFrame, np.ndarray]:
    pop, knn, users = _audited(dataset)
    rates = []
    for label, spec, labels in attribute_labels(users, pop.index):
        rates += null_gap_rates(pop, labels, reps=seeds, rounds=rounds, seed=1, name=f"{name} {label} ({spec})",
                                higher_is_better=HIGHER_IS_BETTER, legacy=label == "two groups")  # fmt: skip
    labels = attribute_groups(users, "age_band" if "age_band" in users else "gender").reindex(pop.index)
    rates += null_comparison_rates(pop, knn, labels, reps=seeds // 2, rounds=rounds, seed=2, name=name)
    return rates_frame(rates), pop["ndcg"].dropna().to_numpy()


def _planted_table(pool: np.ndarray, seeds: int, rounds: int, name: str) -> pd.DataFrame:
    sd = float(pool.std())
    rows = []
    for size in (30, 100, 300):
        for effect in (0.0, 0.2, 0.4):
            out = planted_rates(pool, (size, 600), -effect * sd, reps=seeds, rounds=rounds, seed=3 + int(effect * 10))
            rows.append({"pool": name, "n_group": size, "n_rest": 600, "effect_sd": effect,
                         "delta": round(-effect * sd, 4), **_summary(out)})  # fmt: skip
        out = planted_rates(pool, (size, 600), 0.0, reps=seeds, rounds=rounds, seed=4, mdg_delta=True)
        rows.append({"pool": name, "n_group": size, "n_rest": 600, "effect_sd": "= mdg",
                     "delta": round(out["delta"], 4), **_summary(out)})  # fmt: skip
    return pd.DataFrame(rows)


def _summary(out: dict) -> dict:
    def fmt(rate) -> str:
        low, high = rate.interval
        return f"{rate.rate:.3f} [{low:.3f}, {high:.3f}]"

    return {"gap_ci_coverage": fmt(out["coverage"]), "mean_ci_coverage": fmt(out["mean_coverage"]),
            "power": fmt(out["power"]), "mean_mdg": round(out["mdg"], 4)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=1000, help="null replicates per test kind")
    parser.add_argument("--planted-seeds", type=int, default=400, help="replicates per planted-effect design")
    parser.add_argument("--rounds", type=int, default=999,
                        help="bootstrap resamples and permutations per replicate (the audit's default is 1000: "
                             "percentile CIs from ~200 resamples are too narrow, about 6%% non-coverage)")
    parser.add_argument("--quick", action="store_true", help="only the sample, 200 seeds")
    args = parser.parse_args(argv)
    seeds = 200 if args.quick else args.seeds
    start = time.perf_counter()
    print(f"# {_dt.datetime.now():%Y-%m-%d %H:%M} nproc={os.cpu_count()} load={os.getloadavg()[0]:.1f} "
          f"seeds={seeds} rounds={args.rounds}", flush=True)  # fmt: skip
    runs = [("sample", load_sample())]
    if ML100K.exists() and not args.quick:
        runs.append(("ml-100k", load_dataset(ML100K)))
    pools = {}
    for name, dataset in runs:
        table, pools[name] = _null_table(name, dataset, seeds, args.rounds)
        print(f"\n## Null audits, {name}: FPR at alpha = 0.05 (95% Clopper-Pearson)", flush=True)
        print(table.round(4).to_string(index=False), flush=True)
    pool_name = "ml-100k" if "ml-100k" in pools else "sample"
    planted = _planted_table(pools[pool_name], 100 if args.quick else args.planted_seeds, args.rounds,
                             f"{pool_name} popularity NDCG@10")
    print("\n## Planted effects: coverage of 95% CIs, power at alpha = 0.05 (unadjusted)", flush=True)
    print(planted.to_string(index=False), flush=True)
    print(f"\nwall {time.perf_counter() - start:.0f} s, load at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
