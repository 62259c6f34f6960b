"""Privacy benchmark (issue 23): what DP-SGD costs on this CPU, and who pays for it.

On the planted-bias sample (``sample_data/``) and MovieLens 100K (skipped when
``../shared/datasets/ml-100k`` is absent), random split, seed 0, the LLM recommender (dim 64,
batch 512, ``--epochs`` epochs):

1. training time and peak memory (resident set of a fresh process) of DP-SGD at epsilon 3 vs plain
   training, and their ratios;
2. a privacy sweep over epsilon = inf, 8, 3, 1 (:func:`fairaudit.sweep.run_sweep`): NDCG@10 with its CI,
   the epsilon spent, and the paired accuracy cost vs the non-private twin;
3. who pays (:func:`fairaudit.privacy.privacy_cost`): the NDCG@10 cost of light and heavy users (and
   their excess over the rest) and the exposure-share cost of tail items, with 95% CIs;
4. membership inference (:func:`fairaudit.privacy.membership_inference`, rank attack): AUC of the plain
   LLM and its DP twin at epsilon 1, overall and by activity, with 95% CIs over users, and the MIA audit's time.

Run: ``python -m bench.bench_privacy [--epochs N] [--rounds N] [--threads N] [--skip-ml100k] [--only mia]``.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

DATASETS = Path(os.environ.get("FAIRAUDIT_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
ML100K = DATASETS / "ml-100k"
EPSILONS = (math.inf, 8.0, 3.0, 1.0)


def _load(name: str):
    from fairaudit.data import load_dataset, load_sample

    return load_sample() if name == "sample" else load_dataset(ML100K)


def _rss_mib() -> float:
    """Resident set size of this process now, MiB (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _fit_once(name: str, epochs: int, epsilon: float | None, threads: int, queue) -> None:
    """Child process: fit one LLM, report (fit seconds, peak RSS MiB during the fit - RSS before it), RSS sampled
    every 20 ms by a thread (ru_maxrss would hide a fit whose peak stays below the data loading's)."""
    import threading

    from fairaudit.data import make_split
    from fairaudit.models import create_model, set_threads

    set_threads(threads)
    dataset = _load(name)
    split = make_split(dataset, "random", seed=0)
    model = create_model("llm", epochs=epochs, dp_epsilon=epsilon, device="cpu")
    model.encoder.encode(["warm up"])  # the encoder's load is not training
    before, peak, done = _rss_mib(), [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _rss_mib())

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    start = time.perf_counter()
    model.fit(dataset, split)
    took = time.perf_counter() - start
    done.set()
    watcher.join()
    queue.put((took, max(peak[0], _rss_mib()) - before))


def overhead(name: str, epochs: int, threads: int) -> None:
    context = mp.get_context("spawn")
    result = {}
    for label, epsilon in (("plain", None), ("dp eps=3", 3.0)):
        queue = context.Queue()
        child = context.Process(target=_fit_once, args=(name, epochs, epsilon, threads, queue))
        child.start()
        result[label] = queue.get()
        child.join()
    (t0, m0), (t1, m1) = result["plain"], result["dp eps=3"]
    print(f"[{name}] {epochs} epochs: plain {t0:.1f}s, +{m0:.0f} MiB peak; DP-SGD {t1:.1f}s, +{m1:.0f} MiB peak; "
          f"time ratio {t1 / t0:.1f}x, peak-memory ratio {m1 / max(m0, 1):.1f}x", flush=True)  # fmt: skip


def who_pays(name: str, epochs: int, rounds: int) -> None:
    from fairaudit.audit import AuditConfig
    from fairaudit.data import make_split
    from fairaudit.models import create_model, load_model
    from fairaudit.privacy import privacy_cost
    from fairaudit.service import audit_models
    from fairaudit.sweep import run_sweep

    dataset = _load(name)
    split = make_split(dataset, "random", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        item_attribute = "provider" if "provider" in dataset.items.columns else "popularity_tier"
        frame = run_sweep(dataset, split, mitigation="privacy", strengths=EPSILONS, item_attribute=item_attribute,
                          model=create_model("llm", epochs=epochs, device="cpu"), attribute="activity", rounds=rounds,
                          out=Path(tmp) / "sweep")  # fmt: skip
        print(f"[{name}] privacy sweep in {time.perf_counter() - start:.0f}s", flush=True)
        for row in frame.itertuples():
            print(f"[{name}] eps target {row.strength:g} spent {row.epsilon:.3f}: NDCG@10 {row.accuracy:.4f} "
                  f"[{row.accuracy_ci_low:.4f}, {row.accuracy_ci_high:.4f}], cost {row.accuracy_cost:+.4f} "
                  f"[{row.accuracy_cost_ci_low:+.4f}, {row.accuracy_cost_ci_high:+.4f}], activity gap ({row.gap_group}) "
                  f"{row.gap:+.4f}, fit {row.fit_s:.0f}s")  # fmt: skip
        models = {m: load_model(Path(tmp) / "sweep" / d, dataset) for m, d in zip(frame["model"], frame["model_dir"])}
        config = AuditConfig(attributes=("activity", "gender"), bootstrap_rounds=rounds)
        audit_models(dataset, models, config, split=split, out=Path(tmp) / "audit")
        base = frame["model"].iloc[0]
        for dp in frame["model"].iloc[1:]:
            table = privacy_cost(Path(tmp) / "audit", model_dp=dp, model_base=base, dataset=dataset, rounds=rounds)
            rows = table.set_index(["side", "attribute", "group"])
            parts = []
            for key, label in ((("user", "activity", "light"), "light"), (("user", "activity", "heavy"), "heavy"),
                               (("item", "popularity_tier", "tail"), "tail-item exposure")):  # fmt: skip
                if key in rows.index:
                    r = rows.loc[key]
                    excess = "" if math.isnan(r["excess_cost"]) else (
                        f" (excess {r['excess_cost']:+.4f} [{r['excess_cost_ci_low']:+.4f}, {r['excess_cost_ci_high']:+.4f}])")
                    relative = f", {r['cost'] / r['base']:.0%} of its {r['base']:.4f}" if key[0] == "user" else ""
                    parts.append(f"{label} {r['cost']:+.4f} [{r['cost_ci_low']:+.4f}, {r['cost_ci_high']:+.4f}]"
                                 f"{relative}{excess}")
            payers = ", ".join(f"{a}={g}" for (s, a, g) in rows.index[rows["pays_more"]]) or "none"
            print(f"[{name}] {dp} (eps {table['epsilon'].iloc[0]:.2f}) cost: " + "; ".join(parts)
                  + f"; pays significantly more: {payers}", flush=True)


def membership(name: str, epochs: int, rounds: int) -> None:
    """Membership-inference AUC (rank attack) of the plain LLM and its DP twin (epsilon 1), overall and for light and
    heavy users, with 95% CIs over users, and the time of the MIA audit itself (scoring + bootstrap)."""
    from fairaudit.data import make_split
    from fairaudit.models import create_model
    from fairaudit.privacy import membership_inference

    dataset = _load(name)
    split = make_split(dataset, "random", seed=0)
    for label, epsilon in (("plain", None), ("dp eps=1", 1.0)):
        model = create_model("llm", epochs=epochs, dp_epsilon=epsilon, device="cpu").fit(dataset, split)
        start = time.perf_counter()
        table = membership_inference(model, dataset, split, name=label, attributes=["activity", "gender"],
                                     rounds=rounds)  # fmt: skip
        took = time.perf_counter() - start
        rows = table[table["attribute"].isin(["all", "activity"])]
        parts = "; ".join(f"{r.group} {r.auc:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" for r in rows.itertuples())
        overall = table.iloc[0]
        print(f"[{name}] MIA {label}: {parts} ({overall.n_members} member / {overall.n_non_members} held-out pairs "
              f"of {overall.n_users} users, {len(table)} groups, {rounds} rounds: {took:.1f}s)", flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-ml100k", action="store_true")
    parser.add_argument("--datasets", default="sample,ml-100k", help="comma-separated: sample, ml-100k")
    parser.add_argument("--only", choices=("mia",), help="run one part only (mia: membership inference)")
    args = parser.parse_args(argv)
    from fairaudit.models import set_threads

    set_threads(args.threads)
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f}", flush=True)
    names = [n for n in args.datasets.split(",") if n == "sample"
             or (n == "ml-100k" and not args.skip_ml100k and (ML100K / "u.data").is_file())]  # fmt: skip
    for name in names:
        if args.only is None:
            overhead(name, min(args.epochs, 5), args.threads)
            who_pays(name, args.epochs, args.rounds)
        membership(name, args.epochs, args.rounds)
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
