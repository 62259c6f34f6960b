"""Robustness benchmark: shilling lift, PGD vs same-norm noise, and APR adversarial training, with CIs.

On the planted-bias sample (``sample_data/``) and MovieLens 100K (skipped when
``../shared/datasets/ml-100k`` is absent), random split, seed 0:

1. a bandwagon attack of 3 % fake users pushing the default target (the item at the 75th percentile of
   training popularity) against MF and the LLM recommender: target exposure lift with its CI, hit ratio;
   detector precision/recall for each attack model;
2. PGD (10 steps) and Gaussian noise of the same norm on the LLM's user and item vectors at epsilon 0.1
   and 0.3 (relative to the vectors' mean norm): NDCG@10 drop with CIs and their ratio;
3. APR training of the LLM (``adv_epsilon`` 0.5, ``adv_weight`` 0.1 and 1) vs the plain model: the PGD damage of each
   and the paired difference (``defence_gain``), and the clean-accuracy cost.

Run: ``python -m bench.bench_robustness [--epochs N] [--rounds N] [--threads N]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from fairaudit.data import load_dataset, load_sample, make_split
from fairaudit.models import create_model
from fairaudit.robustness import (
    SHILLING_KINDS, ShillingAttack, choose_targets, defence_gain, detection_quality, inject_profiles, run_robustness,
    shilling_scores,
)  # fmt: skip

DATASETS = Path(os.environ.get("FAIRAUDIT_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
ML100K = DATASETS / "ml-100k"
EPSILONS = (0.1, 0.3)
#: APR settings compared with the plain LLM (adv_epsilon 0.5; adv_weight 0.1 and 1).
APR_WEIGHTS = (0.1, 1.0)
APR_EPSILON = 0.5


def bench(name: str, dataset, epochs: int, rounds: int) -> None:
    split = make_split(dataset, "random", seed=0)
    item_attribute = "provider" if "provider" in dataset.items.columns else "popularity_tier"
    common = {"rounds": rounds, "attributes": ["gender"], "item_attribute": item_attribute}
    target = choose_targets(dataset, split)
    for kind in SHILLING_KINDS:
        poisoned = inject_profiles(dataset, split, ShillingAttack(kind=kind, share=0.03, targets=target))
        start = time.perf_counter()
        quality = detection_quality(shilling_scores(poisoned.split.train), poisoned.fake_users)
        print(f"[{name}] detector on {kind} 3%: precision {quality['precision']:.2f} recall {quality['recall']:.2f} "
              f"({quality['flagged']} flagged of {len(dataset.users) + quality['fake']}; {time.perf_counter() - start:.1f}s)")
    models = {}
    apr = {f"llm+apr{w:g}": {"epochs": epochs, "adv_epsilon": APR_EPSILON, "adv_weight": w} for w in APR_WEIGHTS}
    for kind, params in (("mf", {}), ("llm", {"epochs": epochs}), *apr.items()):
        start = time.perf_counter()
        models[kind] = create_model(kind.split("+")[0], device="cpu", **params).fit(dataset, split)
        print(f"[{name}] {kind} fitted in {time.perf_counter() - start:.1f}s", flush=True)
    for kind in ("mf", "llm"):
        start = time.perf_counter()
        row = run_robustness(dataset, split, models[kind], attack="shilling", strengths=[0.03], **common).summary.iloc[0]
        print(f"[{name}] {kind} bandwagon 3% ({target[0]}): target exposure lift {row.target_exposure_lift:+.4f} "
              f"[{row.target_exposure_lift_ci_low:+.4f}, {row.target_exposure_lift_ci_high:+.4f}], hit ratio "
              f"{row.hit_ratio_clean:.3f} -> {row.hit_ratio_attacked:.3f}, NDCG@10 drop {row['drop']:+.4f} "
              f"[{row.drop_ci_low:+.4f}, {row.drop_ci_high:+.4f}]; {time.perf_counter() - start:.1f}s", flush=True)
    runs = {}
    for kind in ("llm", *apr):
        start = time.perf_counter()
        runs[kind] = run_robustness(dataset, split, models[kind], attack="pgd", strengths=EPSILONS, **common)
        s = runs[kind].summary.set_index("model")
        for eps in EPSILONS:
            pgd, noise = s.loc[f"pgd@{eps:g}"], s.loc[f"gaussian@{eps:g}"]
            print(f"[{name}] {kind} eps {eps:g}: NDCG@10 {pgd.clean:.4f}; PGD drop {pgd['drop']:+.4f} "
                  f"[{pgd.drop_ci_low:+.4f}, {pgd.drop_ci_high:+.4f}] vs noise {noise['drop']:+.4f} "
                  f"[{noise.drop_ci_low:+.4f}, {noise.drop_ci_high:+.4f}]; ratio {pgd['drop'] / max(abs(noise['drop']), 1e-4):.1f}; "
                  f"worst group {pgd.worst_attribute}={pgd.worst_group} {pgd.worst_group_drop:+.4f}; largest gap change "
                  f"{pgd.largest_gap_change_attribute}={pgd.largest_gap_change_group} {pgd.largest_gap_change:+.4f} "
                  f"[{pgd.largest_gap_change_ci_low:+.4f}, {pgd.largest_gap_change_ci_high:+.4f}]", flush=True)
        print(f"[{name}] {kind} pgd run {time.perf_counter() - start:.1f}s")
    for (kind, params), eps in ((k, e) for k in apr.items() for e in EPSILONS):
        gain = defence_gain(runs["llm"], runs[kind], f"pgd@{eps:g}", rounds=rounds)
        overall = gain[(gain["attribute"] == "all") & (gain["quantity"] == "value")].set_index("metric")
        d, c = overall.loc["damage:ndcg"], overall.loc["clean:ndcg"]
        print(f"[{name}] APR eps {params['adv_epsilon']:g} weight {params['adv_weight']:g} vs plain at PGD eps {eps:g}: damage {d.a:.4f} -> {d.b:.4f} (change {d.difference:+.4f} "
              f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}]); clean NDCG@10 {c.a:.4f} -> {c.b:.4f} (cost {-c.difference:+.4f} "
              f"[{-c.ci_high:+.4f}, {-c.ci_low:+.4f}])", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench("sample", load_sample(), args.epochs, args.rounds)
    if (ML100K / "u.data").is_file():
        bench("ml-100k", load_dataset(ML100K), args.epochs, args.rounds)
    else:
        print(f"[ml-100k] skipped: {ML100K} not found")


if __name__ == "__main__":
    main()
