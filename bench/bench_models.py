"""Recommender quality and speed on MovieLens 100K.

Protocol: per-user 80/20 random holdout (seed 0), all-item ranking with training items
excluded, K=10; NDCG@10 and Recall@10 (``fairaudit.metrics.accuracy_metrics``) of every
model and of uniformly random rankings; fit and recommend wall time; peak resident memory
(each model runs in its own process, so ``ru_maxrss`` is that model's peak including the
~0.5 GB of imported libraries); training throughput (training interactions x epochs / fit
time); item-encoding throughput of the text encoder (cache off). Cold start: 10% of items
withheld from training (``item_cold_start``), test users' interactions with them ranked
among the cold items only; NDCG@10 per model and random.

Run: ``python -m bench.bench_models [--models llm mf ...]``; skips when ML-100K is absent.
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

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ML100K = Path(os.environ.get("FAIRAUDIT_DATASETS", ROOT.parent / "shared" / "datasets")) / "ml-100k"
K = 10

#: Hyper-parameters per model: every model runs with its defaults, which were tuned on this split
#: (see docs/benchmarks.md, "Recommenders", for the grids tried).
MODELS: dict[str, dict] = {"popularity": {}, "itemknn": {}, "mf": {}, "llm": {}}


def _data():
    from fairaudit.data import item_cold_start, load_dataset, random_holdout

    dataset = load_dataset(ML100K)
    return dataset, random_holdout(dataset, test_fraction=0.2, seed=0), item_cold_start(dataset, 0.1, seed=0)


def _warm_quality(model, split) -> dict:
    from fairaudit.metrics import accuracy_metrics

    users = split.test["user_id"].unique()
    start = time.perf_counter()
    recs = model.recommend(users, k=K)
    rec_s = time.perf_counter() - start
    acc = accuracy_metrics(recs, split.test, k=K)
    return {"ndcg": float(acc["ndcg"].mean()), "recall": float(acc["recall"].mean()), "recommend_s": rec_s}


def _cold_ndcg(scores: np.ndarray, users: np.ndarray, cold: np.ndarray, test: pd.DataFrame) -> float:
    """NDCG@K of rankings of the cold items only (rows ``users``, columns ``cold``)."""
    from fairaudit.metrics import accuracy_metrics

    order = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    recs = pd.DataFrame(
        {"user_id": np.repeat(users, K), "rank": np.tile(np.arange(1, K + 1), len(users)), "item_id": cold[order].ravel()}
    )
    return float(accuracy_metrics(recs, test, k=K)["ndcg"].mean())


def run_one(kind: str) -> dict:
    """Fit, time and evaluate one model kind (warm and cold start); returns a JSON-ready row."""
    import torch

    from fairaudit.models import create_model

    dataset, split, cold_split = _data()
    params = MODELS[kind]
    start = time.perf_counter()
    model = create_model(kind, **params).fit(dataset, split)
    fit_s = time.perf_counter() - start
    row = {"model": kind, "fit_s": fit_s, **_warm_quality(model, split)}
    fitted = model.get_params()
    epochs = fitted.get("epochs", fitted.get("iterations", 1))
    row["train_interactions_per_s"] = len(split.train) * epochs / fit_s
    cold_model = create_model(kind, **params).fit(dataset, cold_split)
    users = cold_split.test["user_id"].unique()
    cold = np.asarray(cold_split.cold_items, dtype=object)
    row["cold_ndcg"] = _cold_ndcg(cold_model.score(users, cold), users, cold, cold_split.test)
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["torch_threads"] = torch.get_num_threads()
    return row


def random_reference(rounds: int = 5) -> dict:
    """Mean NDCG/Recall of uniformly random rankings (warm: unseen items; cold: cold items)."""
    from fairaudit.metrics import accuracy_metrics
    from fairaudit.models import create_model

    dataset, split, cold_split = _data()
    rng = np.random.default_rng(0)
    model = create_model("popularity").fit(dataset, split)
    users = split.test["user_id"].unique()
    cold_users = cold_split.test["user_id"].unique()
    cold = np.asarray(cold_split.cold_items, dtype=object)
    warm, cold_values = [], []
    for _ in range(rounds):
        import torch

        model.counts_ = torch.as_tensor(rng.random(len(model.item_ids_)), dtype=torch.float32)
        acc = accuracy_metrics(model.recommend(users, k=K), split.test, k=K)
        warm.append((acc["ndcg"].mean(), acc["recall"].mean()))
        cold_values.append(_cold_ndcg(rng.random((len(cold_users), len(cold))), cold_users, cold, cold_split.test))
    ndcg, recall = np.mean(warm, axis=0)
    return {"model": "random", "ndcg": float(ndcg), "recall": float(recall), "cold_ndcg": float(np.mean(cold_values))}


def encoding_throughput() -> dict:
    """Texts per second of the default encoder over the ML-100K item texts, cache off."""
    from fairaudit.data import load_dataset
    from fairaudit.models import TextEncoder, item_texts

    texts = item_texts(load_dataset(ML100K))
    encoder = TextEncoder(cache=False)
    encoder.encode(texts[:8])  # load the weights outside the timing
    start = time.perf_counter()
    encoder.encode(texts)
    seconds = time.perf_counter() - start
    return {"n_texts": len(texts), "encode_s": seconds, "texts_per_s": len(texts) / seconds}


def _table(rows: list[dict]) -> str:
    lines = [
        "| model | NDCG@10 | Recall@10 | cold-start NDCG@10 | fit (s) | recommend 943 users (s) | train interactions/s | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["model"], f"{r['ndcg']:.4f}", f"{r['recall']:.4f}", f"{r['cold_ndcg']:.4f}"]
        for key, fmt in (("fit_s", "{:.1f}"), ("recommend_s", "{:.2f}"), ("train_interactions_per_s", "{:,.0f}"),
                         ("peak_rss_mb", "{:,.0f}")):  # fmt: skip
            cells.append(fmt.format(r[key]) if key in r else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one model, print JSON
    args = parser.parse_args(argv)
    if not (ML100K / "u.data").is_file():
        print(f"skipped: MovieLens 100K not found at {ML100K}")
        return 0
    if args.one:
        print(json.dumps(run_one(args.one)))
        return 0
    load = os.getloadavg()[0]
    rows = []
    for kind in args.models:
        # One process per model, so peak memory and timings are that model's alone.
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_models", "--one", kind],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{kind}: {rows[-1]}", flush=True)
    rows.append(random_reference())
    encoding = encoding_throughput()
    print(f"\nload average at start: {load:.1f} on {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}")
    print(_table(rows))
    print(f"\nitem encoding: {encoding['n_texts']} texts in {encoding['encode_s']:.1f} s = "
          f"{encoding['texts_per_s']:.0f} texts/s (all-MiniLM-L6-v2, cache off)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
