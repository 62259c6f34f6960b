"""Explanations benchmark: one local SHAP explanation, the gap surrogate on 6,000 users, a 1,000-user probe.

Targets, on the CPU:

- one local explanation (history items + profile attributes, and the item's words) of the LLM
  recommender on ``sample_data/`` (2,000 users, 800 items): <= 5 s;
- the SHAP surrogate of per-user NDCG@10 on a 6,000-user planted-bias sample (user features,
  5-fold cross-validated R², fit, TreeExplainer, gap decomposition): <= 30 s;
- a counterfactual probe of 1,000 users x every value of ``age_band`` (7 values, 1,000 bootstrap
  rounds): <= 60 s.

Model training and data generation are set-up, not timed. ``warm_up`` (shap compiling its numba code
and loading the tokenizer, once per process; the dashboard can do it at start) is timed on its own,
then three local explanations of different users follow. The embedding
disk cache is pointed at a fresh temporary folder, so masked item texts are really re-encoded.
Run: ``python -m bench.bench_explain [--epochs N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from fairaudit.data import generate_sample, load_sample, make_split
from fairaudit.explain import (
    explain_gaps,
    explain_item_text,
    explain_score,
    probe_attribute,
    user_features,
    warm_up,
)
from fairaudit.metrics import accuracy_metrics
from fairaudit.models import create_model

TARGETS = {"local": 5.0, "surrogate": 30.0, "probe": 60.0}


def _timed(fn, *args, **kwargs):
    """``fn``'s result, wall seconds and CPU seconds of this process (all threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start, time.process_time() - cpu


def _line(name: str, seconds: float, cpu: float, target: float, detail: str) -> str:
    verdict = "OK" if seconds <= target else "SLOW"
    return f"{name}: {seconds:.2f} s wall, {cpu:.2f} s CPU  [{verdict}: target <= {target:.0f} s wall]  {detail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10, help="LLM training epochs (set-up, not timed)")
    args = parser.parse_args()
    os.environ["FAIRAUDIT_CACHE"] = tempfile.mkdtemp(prefix="bench-explain-cache-")
    print(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    # ---- set-up: the LLM recommender (profile text on) on the sample data -------------------------
    dataset = load_sample()
    split = make_split(dataset, "random", seed=0)
    llm, fit_s, _ = _timed(
        create_model("llm", use_profile=True, epochs=args.epochs, device="cpu").fit, dataset, split
    )
    print(f"set-up: LLM fit on sample data ({args.epochs} epochs): {fit_s:.1f} s")
    users = llm.user_ids_[:3]

    # ---- 1. local explanations ----------------------------------------------------------------------
    _, warm_s, warm_cpu = _timed(warm_up, llm)
    lines = [f"warm_up (once per process, not part of the target): {warm_s:.2f} s wall, {warm_cpu:.2f} s CPU"]
    for label, user in (("first", users[0]), ("second", users[1]), ("third", users[2])):
        history, history_s, history_cpu = _timed(explain_score, llm, dataset, user)
        item = history["item_id"].iloc[0]
        words, text_s, text_cpu = _timed(explain_item_text, llm, dataset, user, item)
        lines.append(
            _line(f"local explanation ({label}, user {user})", history_s + text_s, history_cpu + text_cpu,
                  TARGETS["local"],
                  f"history+profile {history_s:.2f} s ({len(history)} players), "
                  f"item words {text_s:.2f} s ({len(words)} tokens, 200 evals)")
        )  # fmt: skip

    # ---- 2. gap surrogate on 6,000 users -----------------------------------------------------------
    big, truth = generate_sample(seed=0, n_users=6000, n_items=800, n_interactions=300_000)
    big_split = make_split(big, "random", seed=0)
    popularity = create_model("popularity").fit(big, big_split)
    test_users = big_split.test["user_id"].unique().tolist()
    ndcg = accuracy_metrics(popularity.recommend(test_users, k=10), big_split.test, k=10)["ndcg"]
    start, cpu = time.perf_counter(), time.process_time()
    features = user_features(big, big_split.train, attributes=["gender", "age_band", "region"])
    result = explain_gaps(ndcg, features)
    surrogate_s, surrogate_cpu = time.perf_counter() - start, time.process_time() - cpu
    women = result.decomposition.query("attribute == 'gender' and group == 'F'").set_index("feature")
    activity, itself = women.loc["n_interactions", "contribution"], women.loc["gender", "contribution"]
    lines.append(
        _line("gap surrogate (popularity NDCG@10)", surrogate_s, surrogate_cpu, TARGETS["surrogate"],
              f"{len(ndcg)} users x {features.shape[1]} features, CV R2 {result.r2:.3f}; "
              f"F gap {women['predicted_gap'].iloc[0]:+.4f}: activity {activity:+.4f}, gender itself {itself:+.4f}")
    )  # fmt: skip

    # ---- 3. probe: 1,000 users x every age band ---------------------------------------------------
    table, probe_s, probe_cpu = _timed(
        probe_attribute, llm, dataset, "age_band", users=1000, k=10, bootstrap_rounds=1000
    )
    n_values = table.loc[table["original_value"] == "all", "counterfactual_value"].nunique() - 1
    snsr = table.loc[table["metric"] == "jaccard_snsr", "estimate"].iloc[0]
    lines.append(
        _line("probe (LLM, age_band)", probe_s, probe_cpu, TARGETS["probe"],
              f"1000 users x {n_values} values, 1000 bootstrap rounds, Jaccard@10 SNSR {snsr:.3f}")
    )  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
