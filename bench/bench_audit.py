"""Audit-engine benchmark: an ML-1M-sized synthetic dataset, then 10x the users.

Times ``run_audit`` end to end — top-K recommendation for every evaluated user, every per-user
metric, 1,000 bootstrap rounds and permutations for every group and gap, item exposure tables —
for a fitted popularity model (its scoring is trivial, so the time is the audit's own), and
reports wall time, CPU time (all threads), the 1-minute load average when the audit started (the
machine may be shared) and peak memory before and after the audit (the dataset itself is most of
it). Run: ``python -m bench.bench_audit [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import pandas as pd

from fairaudit.audit import AuditConfig, run_audit
from fairaudit.data import Dataset, activity_level, make_split, popularity_tier
from fairaudit.models import create_model

#: MovieLens 1M shape.
ML1M = {"n_users": 6040, "n_items": 3706, "n_interactions": 1_000_209}
GENRES = ("Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Fantasy", "Horror",
          "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western", "Children's", "Film-Noir")  # fmt: skip
AGE_BANDS = ("Under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
REGIONS = ("Northeast", "Midwest", "South", "West")


def synthetic_dataset(n_users: int, n_items: int, n_interactions: int, seed: int = 0) -> Dataset:
    """A MovieLens-shaped dataset drawn with numpy: Zipf item popularity, log-normal user activity.

    Users carry ``gender, age_band, region, occupation`` (21 values) and derived ``activity``;
    items carry 1-3 genres, a ``provider`` and derived ``popularity_tier``. Pairs are unique.
    """
    rng = np.random.default_rng(seed)
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item_p /= item_p.sum()
    user_w = rng.lognormal(0.0, 1.0, n_users)
    per_user = np.minimum(n_items, np.maximum(20, np.round(user_w / user_w.sum() * n_interactions * 1.6)))
    users = np.repeat(np.arange(n_users), per_user.astype(np.int64))
    items = rng.choice(n_items, size=users.size, p=item_p)
    keys = np.unique(users * n_items + items)  # unique pairs, then exactly n_interactions of them
    keys = np.sort(rng.choice(keys, size=min(n_interactions, keys.size), replace=False))
    users, items = keys // n_items, keys % n_items
    uid = np.char.add("u", np.arange(n_users).astype(str)).astype(object)
    iid = np.char.add("i", np.arange(n_items).astype(str)).astype(object)
    interactions = pd.DataFrame({"user_id": uid[users], "item_id": iid[items], "rating": 4.0})
    user_table = pd.DataFrame(
        {
            "user_id": uid,
            "gender": rng.choice(np.array(["F", "M"], dtype=object), n_users, p=[0.28, 0.72]),
            "age_band": rng.choice(np.array(AGE_BANDS, dtype=object), n_users),
            "region": rng.choice(np.array(REGIONS, dtype=object), n_users),
            "occupation": rng.integers(0, 21, n_users).astype(str).astype(object),
        }
    )
    user_table["activity"] = activity_level(interactions, user_table["user_id"]).to_numpy()
    genre_ids = rng.integers(0, len(GENRES), (n_items, 3))
    n_genres = rng.integers(1, 4, n_items)
    names = np.array(GENRES, dtype=object)
    genres = ["|".join(dict.fromkeys(names[row[:m]])) for row, m in zip(genre_ids, n_genres)]
    item_table = pd.DataFrame(
        {
            "item_id": iid,
            "title": iid,
            "genres": genres,
            "provider": rng.choice(np.array(["indie", "studio"], dtype=object), n_items, p=[0.3, 0.7]),
        }
    )
    item_table["popularity_tier"] = popularity_tier(interactions, item_table["item_id"]).to_numpy()
    return Dataset(interactions=interactions, users=user_table, items=item_table, name="synthetic")


def run_one(scale: float, rounds: int, seed: int = 0) -> dict:
    """Generate, split, fit popularity, and time one audit at ``scale`` x ML-1M users and interactions."""
    t0 = time.perf_counter()
    dataset = synthetic_dataset(
        int(ML1M["n_users"] * scale), ML1M["n_items"], int(ML1M["n_interactions"] * scale), seed=seed
    )
    split = make_split(dataset, "random", seed=seed)
    model = create_model("popularity").fit(dataset, split)
    setup = time.perf_counter() - t0
    vectors = pd.DataFrame(
        np.random.default_rng(seed).normal(size=(ML1M["n_items"], 384)), index=dataset.items["item_id"]
    )
    config = AuditConfig(bootstrap_rounds=rounds, seed=seed)
    rss_before = _peak_rss_mb()
    load = os.getloadavg()[0]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = run_audit(dataset, split, {"popularity": model}, config, item_vectors=vectors)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "users": dataset.summary()["n_users"],
        "interactions": dataset.summary()["n_interactions"],
        "evaluated_users": result.meta["n_evaluated_users"]["popularity"],
        "attributes": len({a for a in result.group_metrics["attribute"] if a != "all"}),
        "group_rows": len(result.group_metrics),
        "gap_rows": len(result.gaps),
        "setup_s": round(setup, 1),
        "audit_wall_s": round(wall, 2),
        "audit_cpu_s": round(cpu, 2),
        "load_avg": round(load, 1),
        "peak_rss_before_audit_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="only the ML-1M-sized run")
    args = parser.parse_args(argv)
    rows = [run_one(1.0, args.rounds)]
    print(rows[-1], flush=True)
    if not args.quick:
        rows.append(run_one(10.0, args.rounds))
        print(rows[-1], flush=True)
        base, big = rows
        print(
            f"x{big['users'] / base['users']:.0f} users -> x{big['audit_wall_s'] / base['audit_wall_s']:.1f} wall time, "
            f"{big['evaluated_users'] / big['audit_wall_s']:.0f} vs {base['evaluated_users'] / base['audit_wall_s']:.0f} "
            "evaluated users/s"
        )
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
