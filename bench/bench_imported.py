"""Imported recommendation lists benchmark: import and audit another system's top-100 lists.

A MovieLens-1M-shaped synthetic dataset (``bench.bench_audit.synthetic_dataset``: 6,040 users,
3,706 items, 1,000,209 interactions), its default random split (~200k test interactions), and a
6,040-user system's top-100 lists (604,000 rows, written as CSV and as Parquet by a popularity
model standing in for the other system). Times the import — ``load_recommendations`` (read,
validate against the dataset and split, order) plus ``ImportedRecommender.from_recommendations``
— and the audit of the imported system (``run_audit``, K=10, 1,000 bootstrap rounds), with peak
memory (``resource.getrusage``) after each step and the ratio import / audit (the bar: import must
not cost more than the audit). Run: ``python -m bench.bench_imported [--rounds 1000]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.bench_audit import ML1M, synthetic_dataset
from fairaudit.audit import AuditConfig, run_audit
from fairaudit.data import load_recommendations, make_split
from fairaudit.models import ImportedRecommender, create_model

#: List length of the imported system.
LIST_LENGTH = 100


def _peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _timed(step):
    wall0, cpu0 = time.perf_counter(), time.process_time()
    value = step()
    return value, round(time.perf_counter() - wall0, 2), round(time.process_time() - cpu0, 2)


def run(rounds: int = 1000, k: int = 10, seed: int = 0) -> dict:
    """One run: build the data and the lists, then time the imports and the audit."""
    dataset = synthetic_dataset(ML1M["n_users"], ML1M["n_items"], ML1M["n_interactions"], seed=seed)
    split = make_split(dataset, "random", seed=seed)
    lists = create_model("popularity").fit(dataset, split).recommend(k=LIST_LENGTH)
    folder = Path(tempfile.mkdtemp(prefix="bench-imported-"))
    lists.to_csv(folder / "system.csv", index=False)
    lists.to_parquet(folder / "system.parquet", index=False)
    vectors = pd.DataFrame(np.random.default_rng(seed).normal(size=(ML1M["n_items"], 384)), index=dataset.items["item_id"])
    out = {
        "users": len(dataset.users), "list_rows": len(lists), "test_interactions": len(split.test),
        "csv_mb": round((folder / "system.csv").stat().st_size / 2**20, 1), "load_avg": round(os.getloadavg()[0], 1),
        "peak_rss_before_mb": _peak_rss_mb(),
    }  # fmt: skip
    for kind in ("parquet", "csv"):

        def load(kind=kind):
            frame, warnings = load_recommendations(folder / f"system.{kind}", dataset, split=split, k=k)
            return ImportedRecommender.from_recommendations(frame, dataset, split), warnings

        (model, warnings), wall, cpu = _timed(load)
        out[f"import_{kind}_wall_s"], out[f"import_{kind}_cpu_s"] = wall, cpu
        out[f"warnings_{kind}"] = len(warnings)
    out["peak_rss_after_import_mb"] = _peak_rss_mb()
    config = AuditConfig(k=k, bootstrap_rounds=rounds, seed=seed)
    result, wall, cpu = _timed(lambda: run_audit(dataset, split, {"system": model}, config, item_vectors=vectors))
    out["audit_wall_s"], out["audit_cpu_s"] = wall, cpu
    out["evaluated_users"] = result.meta["n_evaluated_users"]["system"]
    out["peak_rss_after_audit_mb"] = _peak_rss_mb()
    out["ratio_csv_import_to_audit"] = round(out["import_csv_wall_s"] / out["audit_wall_s"], 2)
    out["ratio_parquet_import_to_audit"] = round(out["import_parquet_wall_s"] / out["audit_wall_s"], 2)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args(argv)
    row = run(args.rounds)
    for key, value in row.items():
        print(f"{key}: {value}")
    ok = row["ratio_csv_import_to_audit"] <= 1.0
    print("import costs no more than the audit" if ok else "import costs MORE than the audit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
