"""Text profiles (issue 22): encoding throughput, the training cost of the profile input, and what it buys.

On the sample (``sample_data/``, 2,000 users, ~5,400 templated texts), CPU, ``--threads`` (default 1):

1. **Encoding.** Every text embedded by the packaged MiniLM through :func:`fairaudit.models.encode_profiles`
   with the embedding cache in a fresh temporary folder: cold (new encoder, empty cache: tokenise + forward),
   disk-cache hit (a new encoder instance, so nothing in memory), memory hit (same instance, texts in
   another order so the disk file differs), and the pooling alone (:func:`pool_profiles`, scatter-add).
2. **Training cost.** The LLM recommender fitted with and without ``use_texts`` (same seed and settings,
   caches warm), seconds per epoch from the progress callback, and the ratio.
3. **What it buys.** NDCG@10 with and without texts overall, for light users and per gender (paired
   bootstrap CI of the difference, :func:`fairaudit.compare.compare_models`), and for 200 cold-start users
   (all their interactions held out, texts kept) beside popularity and random lists.

Run: ``python -m bench.bench_profiles [--epochs 30] [--threads 1]``. No public dataset with user texts
could be installed from a package registry here, so only the sample is measured (docs/profiles.md).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd
import torch

from fairaudit.compare import compare_models
from fairaudit.data import Split, load_sample, random_holdout
from fairaudit.metrics import accuracy_metrics
from fairaudit.models import LLMRecommender, TextEncoder, create_model, encode_profiles, pool_profiles

N_COLD = 200


def encoding(data) -> list[str]:
    """Throughput of profile encoding: cold, disk-cache hit, memory hit, pooling alone."""
    texts, users = data.texts, data.users["user_id"]
    n = len(texts)
    lines = [f"{n:,} texts of {texts['user_id'].nunique():,} users, {texts['text'].str.len().mean():.0f} characters on average"]
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("FAIRAUDIT_CACHE")
        os.environ["FAIRAUDIT_CACHE"] = cache
        try:
            encoder = TextEncoder()
            encoder._load()  # weights loading is not encoding
            timings = {}
            shuffled = texts.sample(frac=1.0, random_state=0)
            for label, enc, table in (("cold (empty cache)", encoder, texts), ("disk-cache hit", TextEncoder(), texts),
                                      ("memory hit", encoder, shuffled)):  # fmt: skip
                start = time.perf_counter()
                profiles = encode_profiles(table, users, encoder=enc)
                timings[label] = time.perf_counter() - start
            for label, seconds in timings.items():
                lines.append(f"encode_profiles, {label}: {seconds:.2f} s = {n / seconds:,.0f} texts/s")
            lines.append(f"cold / disk hit: {timings['cold (empty cache)'] / timings['disk-cache hit']:.0f}x")
        finally:
            if previous is None:
                os.environ.pop("FAIRAUDIT_CACHE", None)
            else:
                os.environ["FAIRAUDIT_CACHE"] = previous
    embeddings = np.random.default_rng(0).normal(size=(n, profiles.vectors.shape[1])).astype(np.float32)
    pos = pd.Index(users).get_indexer(texts["user_id"])
    start = time.perf_counter()
    pool_profiles(embeddings, pos, len(users), timestamps=texts["timestamp"].to_numpy(), half_life_days=90.0)
    lines.append(f"pool_profiles alone (recency-weighted, {n:,} x {embeddings.shape[1]}): {1000 * (time.perf_counter() - start):.1f} ms")
    return lines


def _fit(data, split, epochs: int, use_texts: bool) -> tuple[LLMRecommender, list[float]]:
    stamps: list[float] = []
    model = LLMRecommender(dim=32, epochs=epochs, device="cpu", seed=0, use_texts=use_texts)
    model.fit(data, split, progress=lambda event: stamps.append(event.elapsed_s))
    return model, np.diff([0.0, *stamps]).tolist()


def training_and_accuracy(data, epochs: int) -> list[str]:
    split = random_holdout(data, 0.2, seed=0)
    users = split.test["user_id"].unique()
    lines, frames, per_epoch = [], [], {}
    for name, use in (("plain", False), ("texts", True)):
        model, epoch_s = _fit(data, split, epochs, use)
        per_epoch[name] = float(np.median(epoch_s))
        frames.append(accuracy_metrics(model.recommend(users, k=10), split.test)[["ndcg"]].assign(model=name))
    lines.append(f"training, {epochs} epochs, dim 32: median epoch {per_epoch['plain']:.3f} s without texts, "
                 f"{per_epoch['texts']:.3f} s with; ratio {per_epoch['texts'] / per_epoch['plain']:.2f}")  # fmt: skip
    users_table = data.users.set_index("user_id")
    table = compare_models(pd.concat(frames).reset_index(), model_a="plain", model_b="texts", rounds=1000,
                           groups={"activity": users_table["activity"], "gender": users_table["gender"]})  # fmt: skip
    values = table[table["quantity"] == "value"]
    for _, row in values.iterrows():
        lines.append(f"NDCG@10 {row['attribute']}={row['group']} (n={row['n_users']}): {row['a']:.4f} -> {row['b']:.4f}, "
                     f"difference {row['difference']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]")  # fmt: skip

    rng = np.random.default_rng(0)
    cold = rng.choice(np.sort(data.texts["user_id"].unique()), N_COLD, replace=False)
    held = data.interactions["user_id"].isin(cold)
    cold_split = Split(data.interactions[~held], data.interactions[held], "cold_users", 0)
    scores = {}
    for name, use in (("texts", True), ("no texts", False)):
        model, _ = _fit(data, cold_split, epochs, use)
        scores[name] = accuracy_metrics(model.recommend(cold, k=10), cold_split.test)["ndcg"].mean()
    popular = create_model("popularity").fit(data, cold_split)
    scores["popularity"] = accuracy_metrics(popular.recommend(cold, k=10), cold_split.test)["ndcg"].mean()
    items = data.items["item_id"].to_numpy()
    lists = pd.DataFrame({"user_id": np.repeat(cold, 10), "rank": np.tile(np.arange(1, 11), len(cold)),
                          "item_id": np.concatenate([rng.permutation(items)[:10] for _ in cold])})  # fmt: skip
    scores["random"] = accuracy_metrics(lists, cold_split.test)["ndcg"].mean()
    lines.append(f"cold-start users ({N_COLD}, texts only) NDCG@10: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return lines


def audit_of_profiles(data, epochs: int) -> list[str]:
    """Timings of the audit of profiles (fairaudit.profiles): marker rewriting, attribute leakage of three
    representations, the text counterfactual (re-encoding the rewritten texts in an empty cache, re-ranking)."""
    from fairaudit.audit import attribute_groups
    from fairaudit.data import GENDER_MARKER_PAIRS
    from fairaudit.profiles import WITH_TEXTS, leakage_vectors, profile_leakage, rewrite_texts, swap_map
    from fairaudit.profiles import text_counterfactual_users

    split = random_holdout(data, 0.2, seed=0)
    without, _ = _fit(data, split, epochs, False)
    with_texts, _ = _fit(data, split, epochs, True)
    lines = []
    start = time.perf_counter()
    _, counts = rewrite_texts(data.texts["text"], swap_map(GENDER_MARKER_PAIRS))
    seconds = time.perf_counter() - start
    lines.append(f"rewrite_texts: {len(counts):,} texts in {seconds:.3f} s = {len(counts) / seconds:,.0f} texts/s "
                 f"({int(counts.sum()):,} markers)")  # fmt: skip
    writers = pd.Index(np.sort(data.texts["user_id"].unique()))
    start = time.perf_counter()
    vectors = leakage_vectors(with_texts, without, writers)
    labels = {a: attribute_groups(data.users, a).reindex(writers) for a in ("gender", "age_band", "region")}
    table = profile_leakage(vectors, labels, rounds=200)
    seconds = time.perf_counter() - start
    lines.append(f"profile_leakage: {len(vectors)} representations x {len(labels)} attributes, {len(writers):,} users, "
                 f"200 bootstrap rounds: {seconds:.2f} s")  # fmt: skip
    auc = table[(table["metric"] == "auc") & (table["reference"] == "chance")]
    lines += [f"  AUC {r.attribute} from {r.representation}: {r.estimate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
              for r in auc.itertuples()]  # fmt: skip
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("FAIRAUDIT_CACHE")
        os.environ["FAIRAUDIT_CACHE"] = cache
        try:
            start = time.perf_counter()
            per_user = text_counterfactual_users(with_texts, data, k=10)
            seconds = time.perf_counter() - start
        finally:
            if previous is None:
                os.environ.pop("FAIRAUDIT_CACHE", None)
            else:
                os.environ["FAIRAUDIT_CACHE"] = previous
    gender = attribute_groups(data.users, "gender").reindex(per_user.index)
    lines.append(f"text counterfactual ({WITH_TEXTS}, empty embedding cache): {len(per_user):,} users in "
                 f"{seconds:.2f} s = {len(per_user) / seconds:,.0f} users/s")  # fmt: skip
    for group, part in per_user.groupby(gender.to_numpy()):
        lines.append(f"  gender={group}: {len(part)} users, marked {part['rewritten'].mean():.3f}, changed "
                     f"{part['changed'].mean():.3f}, Jaccard@10 {part['jaccard'].mean():.4f}")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--audit-epochs", type=int, default=10, help="epochs of the two LLMs of the audit timings")
    parser.add_argument("--audit-only", action="store_true", help="only the audit of profiles")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f}", flush=True)
    data = load_sample()
    if not args.audit_only:
        for line in encoding(data) + training_and_accuracy(data, args.epochs):
            print(line, flush=True)
    for line in audit_of_profiles(data, args.audit_epochs):
        print(line, flush=True)
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
