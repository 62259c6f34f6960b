"""Recommender quality and speed, every model tuned by the same validation procedure.

Data: the bundled sample, MovieLens 100K (``../shared/datasets/ml-100k``) and any MovieLens 1M copy
given with ``--ml1m PATH`` or ``$FAIRAUDIT_ML1M`` (each skipped when absent). Protocol: per-user
80/20 random holdout (seed 0); every model is tuned with :func:`fairaudit.models.tune` (its fixed
grid judged on a seeded 10% per-user validation share of the training part, iterative models
early-stopping on it; the test part is never read), then NDCG@10 / Recall@10 on the test part
(all-item ranking, training items excluded). ``implicit`` ALS and BPR are the ``mf`` kind. Fit time
is the whole tuning (every grid fit); "refit" = a plain fit of the chosen settings (chosen epochs) on
all training interactions, which is what the tuned iterative models are (a check: equal to NDCG@10
up to thread-level nondeterminism); throughput = training interactions x chosen epochs / time of
one plain fit with the chosen settings; peak RSS per model (one process each). Cold start: 10% of
items withheld (``item_cold_start``), chosen settings, test interactions with them ranked among the
cold items only. Item encoding: texts/s with the cache off, and the cache-hit path.

Run: ``python -m bench.bench_models [--data sample ml-100k ml-1m] [--models ...] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FAIRAUDIT_DATASETS", ROOT.parent / "shared" / "datasets"))
K = 10

#: Bench name -> (kind, fixed params, grid or None for the kind's own TUNING_GRIDS entry).
MODELS: dict[str, tuple[str, dict, list | None]] = {
    "popularity": ("popularity", {}, None),
    "itemknn": ("itemknn", {}, None),
    "implicit-als": ("mf", {}, None),
    "implicit-bpr": ("mf", {"algorithm": "bpr", "iterations": 200, "reg": 0.01},
                     [{"factors": f, "learning_rate": lr} for f in (32, 64) for lr in (0.01, 0.05)]),  # fmt: skip
    "llm": ("llm", {}, None),
}


def data_paths(ml1m: str | None) -> dict[str, Path | None]:
    """Dataset name -> folder (None: the bundled sample); absent datasets are left out."""
    out: dict[str, Path | None] = {"sample": None}
    if (DATASETS / "ml-100k" / "u.data").is_file():
        out["ml-100k"] = DATASETS / "ml-100k"
    ml1m = ml1m or os.environ.get("FAIRAUDIT_ML1M")
    if ml1m and (Path(ml1m) / "ratings.dat").is_file():
        out["ml-1m"] = Path(ml1m)
    return out


def _load(path: str | None):
    from fairaudit.data import load_dataset, load_sample

    return load_sample() if path is None else load_dataset(path)


def _cold_ndcg(scores: np.ndarray, users: np.ndarray, cold: np.ndarray, test: pd.DataFrame) -> float:
    """NDCG@K of rankings of the cold items only (rows ``users``, columns ``cold``)."""
    from fairaudit.metrics import accuracy_metrics

    order = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    recs = pd.DataFrame(
        {"user_id": np.repeat(users, K), "rank": np.tile(np.arange(1, K + 1), len(users)), "item_id": cold[order].ravel()}
    )
    return float(accuracy_metrics(recs, test, k=K)["ndcg"].mean())


def run_one(name: str, path: str | None) -> dict:
    """Tune, fit, time and evaluate one model on one dataset; a JSON-ready row."""
    import torch

    from fairaudit.data import item_cold_start, random_holdout
    from fairaudit.metrics import accuracy_metrics
    from fairaudit.models import create_model, tune

    kind, fixed, grid = MODELS[name]
    dataset = _load(path)
    split = random_holdout(dataset, test_fraction=0.2, seed=0)
    start = time.perf_counter()
    result = tune(kind, dataset, split, params={**fixed, **({"device": "auto"} if kind in ("mf", "llm") else {})}, grid=grid)
    tune_s = time.perf_counter() - start
    users = split.test["user_id"].unique()
    acc = accuracy_metrics(result.model.recommend(users, k=K), split.test, k=K)
    chosen = {**fixed, **result.params}
    chosen.pop("patience", None)
    epochs = chosen.get("epochs", chosen.get("iterations", 1)) if kind in ("mf", "llm") else 1
    start = time.perf_counter()
    plain = create_model(kind, **chosen).fit(dataset, split)
    plain_s = time.perf_counter() - start
    refit = accuracy_metrics(plain.recommend(users, k=K), split.test, k=K)
    cold_split = item_cold_start(dataset, 0.1, seed=0)
    cold_model = create_model(kind, **chosen).fit(dataset, cold_split)
    cold_users = cold_split.test["user_id"].unique()
    cold = np.asarray(cold_split.cold_items, dtype=object)
    return {
        "model": name, "ndcg": float(acc["ndcg"].mean()), "recall": float(acc["recall"].mean()),
        "validation_ndcg": max(t["value"] for t in result.trials), "chosen": result.params,
        "refit_ndcg": float(refit["ndcg"].mean()),
        "tune_s": tune_s, "fit_s": plain_s, "fits": len(result.trials),
        "train_interactions_per_s": len(split.train) * epochs / max(plain_s, 1e-9),
        "cold_ndcg": _cold_ndcg(cold_model.score(cold_users, cold), cold_users, cold, cold_split.test),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
    }  # fmt: skip


def encoding(path: str | None) -> dict:
    """Item-encoding texts/s with the cache off, and the time of the cache-hit path (a second encode)."""
    from fairaudit.models import TextEncoder, item_texts

    texts = item_texts(_load(path))
    with tempfile.TemporaryDirectory() as cache:
        os.environ["FAIRAUDIT_CACHE"] = cache
        encoder = TextEncoder()
        encoder.encode(texts[:8], cache=False)  # load the weights outside the timing
        start = time.perf_counter()
        encoder.encode(texts)
        miss_s = time.perf_counter() - start
        start = time.perf_counter()
        TextEncoder().encode(texts)  # a fresh encoder: only the disk cache can answer
        hit_s = time.perf_counter() - start
    return {"n_texts": len(texts), "encode_s": miss_s, "texts_per_s": len(texts) / miss_s, "cache_hit_s": hit_s}


def _table(rows: list[dict]) -> str:
    lines = [
        "| model | NDCG@10 | Recall@10 | validation NDCG@10 | NDCG@10 refit on all training | cold-start NDCG@10 "
        "| tuning (s, fits) | plain fit (s) | interactions·epochs/s | peak RSS (MB) | chosen |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['ndcg']:.4f} | {r['recall']:.4f} | {r['validation_ndcg']:.4f} | {r['refit_ndcg']:.4f} "
            f"| {r['cold_ndcg']:.4f} "
            f"| {r['tune_s']:.1f} ({r['fits']}) | {r['fit_s']:.1f} | {r['train_interactions_per_s']:,.0f} "
            f"| {r['peak_rss_mb']:,.0f} | {r['chosen']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="*", default=["sample", "ml-100k", "ml-1m"])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--ml1m", default=None, help="a MovieLens 1M folder (ratings.dat, users.dat, movies.dat)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per model (default 1)")
    parser.add_argument("--one", nargs=2, default=None, help=argparse.SUPPRESS)  # internal: MODEL PATH|-
    args = parser.parse_args(argv)
    from fairaudit.models import set_threads

    set_threads(args.threads)
    if args.one:
        name, path = args.one
        print(json.dumps(run_one(name, None if path == "-" else path)))
        return 0
    paths = data_paths(args.ml1m)
    for wanted in args.data:
        if wanted not in paths:
            print(f"skipped {wanted}: not found (ML-1M: pass --ml1m PATH or set FAIRAUDIT_ML1M)")
    load = os.getloadavg()[0]
    for name in [d for d in args.data if d in paths]:
        path = paths[name]
        rows = []
        for model in args.models:
            # One process per model, so peak memory and timings are that model's alone.
            out = subprocess.run(
                [sys.executable, "-m", "bench.bench_models", "--threads", str(args.threads), "--one", model,
                 "-" if path is None else str(path)],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{name} {model}: {rows[-1]}", flush=True)
        enc = encoding(None if path is None else str(path))
        print(f"\n## {name} (load average at start {load:.1f} on {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')})")
        print(_table(rows))
        print(f"item encoding: {enc['n_texts']} texts in {enc['encode_s']:.1f} s = {enc['texts_per_s']:.0f} texts/s "
              f"(cache off); cache hit {enc['cache_hit_s'] * 1000:.0f} ms", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
