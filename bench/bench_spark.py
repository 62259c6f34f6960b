"""Spark-engine benchmark: synthetic recommendation logs of 1M and 10M list rows, Spark beside the pandas engine.

For each size (10 list slots per user: 100k and 1M users; ``--sizes`` adds 10M = 100M rows) the logs
are generated inside Spark (``spark.range``: lists, 2 test and 10 training interactions per user,
users with gender/age band/region, a 5,000-item catalogue with genres and providers) and written as
Parquet, as a data lake holds them. Each audit then runs in a fresh process, so peaks are its own:

- **spark**: ``run_spark_audit`` on ``local[2]`` (``--spark-memory``, default 6g; ``--partition-rows`` list rows
  per shuffle partition, default 250,000) from the Parquet files: wall time, CPU seconds (JVM,
  Python workers and driver: the work done, which other jobs on the machine do not inflate), peak RSS of the
  Python driver and of the JVM (in local mode the JVM is the driver *and* the executor, so its peak
  is the executor memory too), the summed peak RSS of the Python workers (``mapInPandas``), and from
  Spark's event log its GC time, spilled bytes and task seconds per audit step (:func:`task_totals`);
- **pandas**: ``run_audit`` on the same files read into memory (``ImportedRecommender``), under an
  address-space limit (``--pandas-memory-gb``) and a time limit (``--pandas-timeout``): its wall time
  and peak RSS, or where it ran out of memory or time.

Then growth per 10x of every figure. Both engines use the same number of bootstrap rounds
(``--rounds``, default 200; the pandas engine also runs that many permutations). The machine is
shared with other jobs: figures carry the 1-minute load average at the start of each run.
``--calibration REPS`` first measures both engines' gap tests' false-positive rates on REPS null
replicates of the sample data (:func:`null_rates`). Run: ``python -m bench.bench_spark [--sizes 1000000
10000000] [--rounds 200] [--calibration 150]`` (``--sizes`` with no value: calibration only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

#: List rows per size (10 slots per user).
SIZES = (1_000_000, 10_000_000)
SLOTS = 10
N_ITEMS = 5_000
GENRES = ("Action", "Comedy", "Drama", "Documentary", "Horror", "Romance", "Sci-Fi", "Thriller")
ROUNDS = 200


# ---- data, generated in Spark --------------------------------------------------------------------
def generate(spark, folder: Path, n_rows: int, seed: int = 0) -> None:
    """Write ``folder/{data/{interactions,users,items}.parquet, lists.parquet, test.parquet}`` for ``n_rows`` list rows."""
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F

    n_users = n_rows // SLOTS
    users = spark.range(n_users).select(
        F.concat(F.lit("u"), F.col("id").cast("string")).alias("user_id"),
        F.when(F.rand(seed) < 0.3, "F").otherwise("M").alias("gender"),
        F.element_at(F.array(*map(F.lit, ("Under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"))),
                     (F.rand(seed + 1) * 7).cast("int") + 1).alias("age_band"),
        F.element_at(F.array(*map(F.lit, ("Northeast", "Midwest", "South", "West"))),
                     (F.rand(seed + 2) * 4).cast("int") + 1).alias("region"),
    )  # fmt: skip
    users.write.mode("overwrite").parquet(str(folder / "data" / "users.parquet"))
    # A user's list starts at a popularity-skewed item and steps by 37 (distinct items); test items lie on
    # the same stride (each is in the list with probability 0.4). No group differs: the p-value of the
    # gender NDCG gap is a null check.
    base = spark.range(n_users).select(
        F.concat(F.lit("u"), F.col("id").cast("string")).alias("user_id"),
        (F.pow(F.rand(seed + 3), 2) * N_ITEMS).cast("long").alias("base"),
    )
    slots = spark.range(SLOTS).select((F.col("id") + 1).alias("rank"))
    lists = base.crossJoin(slots).select(
        "user_id", F.concat(F.lit("i"), ((F.col("base") + (F.col("rank") - 1) * 37) % N_ITEMS).cast("string")).alias("item_id"),
        "rank", (1.0 / F.col("rank")).alias("score"),
    )  # fmt: skip
    lists.write.mode("overwrite").parquet(str(folder / "lists.parquet"))
    test = base.crossJoin(spark.range(2).withColumnRenamed("id", "t")).select(
        "user_id",
        F.concat(F.lit("i"), ((F.col("base") + (F.rand(seed + 4) * 25).cast("long") * 37) % N_ITEMS).cast("string")).alias("item_id"),
    ).distinct()  # fmt: skip
    test.write.mode("overwrite").parquet(str(folder / "test.parquet"))
    history = base.crossJoin(spark.range(10).withColumnRenamed("id", "h")).select(
        "user_id", F.concat(F.lit("i"), (F.pow(F.rand(seed + 5), 2) * N_ITEMS).cast("long").cast("string")).alias("item_id")
    ).distinct()  # fmt: skip
    history.unionByName(test).distinct().write.mode("overwrite").parquet(str(folder / "data" / "interactions.parquet"))
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({
        "item_id": [f"i{j}" for j in range(N_ITEMS)],
        "title": [f"Item {j}" for j in range(N_ITEMS)],
        "genres": ["|".join(sorted(set(rng.choice(GENRES, rng.integers(1, 4))))) for _ in range(N_ITEMS)],
        "provider": np.where(rng.random(N_ITEMS) < 0.3, "indie", "studio"),
    })  # fmt: skip
    items.to_parquet(folder / "data" / "items.parquet")


# ---- one measured run (a fresh process) --------------------------------------------------------------
class _PeakSampler:
    """Peak RSS of the JVM and summed peak RSS of the Python workers (processes below this one), sampled, and
    the CPU seconds they used: the work done, which unlike wall time does not grow when other jobs share the CPUs."""

    def __init__(self) -> None:
        self.jvm_peak_kb, self.workers_peak_kb = 0, 0
        self._cpu_s: dict[int, float] = {}  # pid -> its latest user + system seconds (processes below this one)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            try:
                children = me.children(recursive=True)
                jvm = [p for p in children if p.name() == "java"]
                workers = [p for p in children if p.name().startswith("python")]
                for p in jvm:  # VmHWM: the kernel's own peak, so nothing between samples is missed
                    self.jvm_peak_kb = max(self.jvm_peak_kb, _hwm_kb(p.pid))
                self.workers_peak_kb = max(self.workers_peak_kb, sum(p.memory_info().rss for p in workers) // 1024)
                for p in [*jvm, *workers]:  # a worker's last 0.5 s before it exits is missed: a small undercount
                    times = p.cpu_times()
                    self._cpu_s[p.pid] = times.user + times.system
            except Exception:  # noqa: BLE001 - processes come and go between listing and reading
                pass
            self._stop.wait(0.5)


    @property
    def cpu_s(self) -> float:
        """CPU seconds of the JVM and the Python workers, plus this (driver) process."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        return sum(self._cpu_s.values()) + own.ru_utime + own.ru_stime


def _hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _run_spark(folder: Path, rounds: int, partitions: int, memory: str) -> dict:
    from fairaudit.audit import AuditConfig
    from fairaudit.spark import load_inputs, run_spark_audit, spark_session

    load = os.getloadavg()[0]
    events = folder / "spark-events"
    shutil.rmtree(events, ignore_errors=True)
    events.mkdir(parents=True)
    spark = spark_session("local[2]", conf={"spark.driver.memory": memory, "spark.sql.shuffle.partitions": str(partitions),
                                            "spark.default.parallelism": str(partitions),
                                            "spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(),
                                            "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"})  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    config = AuditConfig(k=SLOTS, bootstrap_rounds=rounds, embedding_diversity=False,
                         attributes=("gender", "age_band", "region", "gender*age_band"))  # fmt: skip
    with _PeakSampler() as sampler:
        start = time.perf_counter()
        inputs = load_inputs(spark, folder / "data", folder / "lists.parquet", folder / "test.parquet", name="synthetic")
        result = run_spark_audit(inputs, config, folder / "audit-spark", overwrite=True)
        wall = time.perf_counter() - start
        cpu = sampler.cpu_s
    spark.stop()
    gap = result.gaps.query("attribute == 'gender' and group == 'F' and reference == 'rest' and metric == 'ndcg'")
    return {"engine": "spark", "wall_s": wall, "cpu_s": cpu, "load": load, "end_load": os.getloadavg()[0],
            "python_driver_peak_mb": _self_peak_mb(), "spark_memory": memory, "partitions": partitions,
            "jvm_peak_mb": sampler.jvm_peak_kb / 1024, "python_workers_peak_mb": sampler.workers_peak_kb / 1024,
            "gender_ndcg_gap_p": float(gap["p_adjusted"].iloc[0]), "n_gaps": len(result.gaps),
            **task_totals(events)}  # fmt: skip


def task_totals(events: Path) -> dict:
    """Spark's own task metrics summed from its event log: where the work went, and what memory pressure cost.

    ``task_run_s``/``task_cpu_s``: executor run and CPU time of all tasks; ``gc_s``: JVM garbage collection
    inside tasks; ``spilled_mb``: shuffle/sort data spilled to disk; ``steps``: task run seconds per step of
    the audit (the job descriptions :func:`fairaudit.spark.run_spark_audit` sets), to find a step that grows
    faster than the data.
    """
    totals = {"task_run_s": 0.0, "task_cpu_s": 0.0, "gc_s": 0.0, "spilled_mb": 0.0}
    steps: dict[str, float] = {}
    step_of_stage: dict[int, str] = {}
    for log in (p for p in events.rglob("*") if p.is_file() and not p.name.startswith(".")):
        for line in log.open():
            event = json.loads(line)
            kind = event.get("Event")
            if kind == "SparkListenerJobStart":
                step = (event.get("Properties") or {}).get("spark.job.description") or "loading the inputs"
                step_of_stage.update(dict.fromkeys(event["Stage IDs"], step.removeprefix("fairaudit spark: ")))
            elif kind == "SparkListenerTaskEnd" and event.get("Task Metrics"):
                m = event["Task Metrics"]
                run_s = m.get("Executor Run Time", 0) / 1e3
                totals["task_run_s"] += run_s
                totals["task_cpu_s"] += m.get("Executor CPU Time", 0) / 1e9
                totals["gc_s"] += m.get("JVM GC Time", 0) / 1e3
                totals["spilled_mb"] += m.get("Disk Bytes Spilled", 0) / 2**20
                step = step_of_stage.get(event["Stage ID"], "other")
                steps[step] = steps.get(step, 0.0) + run_s
    return {**totals, "steps": {step: round(s, 1) for step, s in sorted(steps.items(), key=lambda kv: -kv[1])}}


def _run_pandas(folder: Path, rounds: int) -> dict:
    import pandas as pd

    from fairaudit.audit import AuditConfig, run_audit
    from fairaudit.data import Dataset, Split
    from fairaudit.models import ImportedRecommender

    load = os.getloadavg()[0]
    start = time.perf_counter()
    data = folder / "data"
    users = pd.read_parquet(data / "users.parquet")
    test = pd.read_parquet(folder / "test.parquet")
    interactions = pd.read_parquet(data / "interactions.parquet")
    keys = pd.MultiIndex.from_frame(test[["user_id", "item_id"]])
    train = interactions[~pd.MultiIndex.from_frame(interactions[["user_id", "item_id"]]).isin(keys)]
    dataset = Dataset(interactions, users.assign(activity="light"), pd.read_parquet(data / "items.parquet"))
    split = Split(train.reset_index(drop=True), test, "test_file", 0)
    lists = pd.read_parquet(folder / "lists.parquet").assign(model="synthetic")
    model = ImportedRecommender.from_recommendations(lists[["model", "user_id", "rank", "item_id", "score"]],
                                                     dataset, split, system="synthetic")  # fmt: skip
    config = AuditConfig(k=SLOTS, bootstrap_rounds=rounds, embedding_diversity=False,
                         attributes=("gender", "age_band", "region", "gender*age_band"))  # fmt: skip
    run_audit(dataset, split, {"synthetic": model}, config)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"engine": "pandas", "wall_s": time.perf_counter() - start, "cpu_s": own.ru_utime + own.ru_stime,
            "load": load, "python_driver_peak_mb": _self_peak_mb()}  # fmt: skip


# ---- false-positive rate of the gap tests on null data ---------------------------------------------
def poisson_report(values, labels, *, rounds: int, seed: int, key: str = "", confidence: float = 0.95,
                   min_group_size: int = 30, higher_is_better=None):  # fmt: skip
    """The Spark engine's report (:class:`fairaudit.spark.PoissonSliceReport`) of per-user ``values`` by ``labels``.

    The sums Spark adds up across partitions, computed here in one piece with the same weights
    (``poisson_weights`` of a seeded hash of the user id), so the test measured is the engine's.
    """
    import numpy as np
    import pandas as pd

    from fairaudit.spark import PoissonSliceReport, poisson_weights

    ids = pd.Series(values.index.astype(str))
    hashes = (pd.util.hash_pandas_object(ids + f"|{seed}|{key}", index=False).to_numpy()).view(np.int64)
    weights = poisson_weights(hashes, 0, rounds)
    raw = values.to_numpy(dtype=float)
    both = np.hstack([np.nan_to_num(raw), (~np.isnan(raw)).astype(float)])
    names, codes = np.unique(labels.reindex(values.index).astype(str).to_numpy(), return_inverse=True)
    observed = np.stack([both[codes == g].sum(axis=0) for g in range(len(names))])
    replicates = np.stack([weights[codes == g].T @ both[codes == g] for g in range(len(names))])
    m = raw.shape[1]
    return PoissonSliceReport(names, list(values.columns), observed[:, :m], observed[:, m:], replicates[:, :, :m],
                              replicates[:, :, m:], confidence=confidence, min_group_size=min_group_size,
                              higher_is_better=higher_is_better)  # fmt: skip


def null_rates(reps: int, rounds: int):
    """False-positive rates of both engines' gap tests on label-shuffled sample data (``bench/_calibration.py``)."""
    from bench._calibration import null_gap_rates, rates_frame
    from bench.bench_statistics import HIGHER_IS_BETTER, _audited, attribute_labels
    from fairaudit.data import load_sample
    from fairaudit.metrics import SliceReport

    pop, _, users = _audited(load_sample())
    rates = []
    for label, spec, labels in attribute_labels(users, pop.index):
        for engine, make in (("pandas", SliceReport), ("spark", poisson_report)):
            rates += null_gap_rates(pop, labels, reps=reps, rounds=rounds, seed=1, name=f"{engine}: {label} ({spec})",
                                    higher_is_better=HIGHER_IS_BETTER, make_report=make)  # fmt: skip
    return rates_frame(rates)


def _self_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(args: list[str], timeout: float) -> dict:
    """One run in a fresh interpreter; its JSON line, or why it stopped."""
    try:
        done = subprocess.run([sys.executable, "-m", "bench.bench_spark", *args], capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"failed": f"stopped after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"failed": "out of memory" if "MemoryError" in done.stderr or done.returncode == -9 else tail[:200]}
    return json.loads(lines[-1])


def _row(n_rows: int, engine: str, r: dict) -> str:
    if "failed" in r:
        return f"| {n_rows:,} | {engine} | {r['failed']} | | | | | | | |"
    extra = (f"{r['jvm_peak_mb']:.0f} | {r['python_workers_peak_mb']:.0f} | {r['gc_s']:.0f} | {r['spilled_mb']:.0f}"
             if engine == "spark" else "- | - | - | -")  # fmt: skip
    return (f"| {n_rows:,} | {engine} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | {r['python_driver_peak_mb']:.0f} | "
            f"{extra} | {r['load']:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES), help="list rows per size (none: skip the audits)")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--folder", default=None, help="where the synthetic logs go (default: a temporary folder)")
    parser.add_argument("--spark-timeout", type=float, default=7200.0, help="seconds one Spark audit may take")
    parser.add_argument("--pandas-timeout", type=float, default=1800.0)
    parser.add_argument("--pandas-memory-gb", type=float, default=12.0)
    parser.add_argument("--skip-pandas-above", type=int, default=10_000_000, help="list rows above which pandas is not tried")
    parser.add_argument("--calibration", type=int, default=0, metavar="REPS",
                        help="also the gap tests' false-positive rate on REPS null replicates of sample data")
    parser.add_argument("--spark-memory", default="6g",
                        help="spark.driver.memory, in local mode also the executor's (at 3g the 100M-row audit did 1.8x "
                             "the work per row: docs/benchmarks.md)")
    parser.add_argument("--partition-rows", type=int, default=250_000, help="list rows per shuffle partition")
    parser.add_argument("--one", choices=("generate", "spark", "pandas"), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:  # a measured run in this (fresh) process
        folder = Path(args.folder)
        if args.one == "generate":
            from fairaudit.spark import spark_session

            spark = spark_session("local[2]", conf={"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "8"})
            spark.sparkContext.setLogLevel("ERROR")
            generate(spark, folder, args.rows)
            spark.stop()
            print(json.dumps({"generated": args.rows}))
        elif args.one == "spark":
            print(json.dumps(_run_spark(folder, args.rounds, max(4, args.rows // args.partition_rows), args.spark_memory)))
        else:
            limit = int(args.pandas_memory_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            print(json.dumps(_run_pandas(folder, args.rounds)))
        return 0

    if args.calibration:
        table = null_rates(args.calibration, 199)
        print(f"False-positive rate at alpha 0.05 on null data ({args.calibration} replicates, 199 rounds; 95% CI):")
        print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if not args.sizes:
        return 0
    root = Path(args.folder or tempfile.mkdtemp(prefix="fairaudit-bench-spark-"))
    results = {}
    print(f"Spark engine vs pandas engine, {args.rounds} bootstrap rounds, local[2]; machine shared (load in the table)")
    print(f"Spark: spark.driver.memory={args.spark_memory} (the executor's too), {args.partition_rows:,} list rows per "
          "shuffle partition; task seconds per audit step in each run's JSON line below")
    print("| list rows | engine | wall s | CPU s | Python driver peak MB | JVM peak MB (driver = executor) | "
          "Python workers peak MB | JVM GC s | spilled MB | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n_rows in args.sizes:
        folder = root / f"rows-{n_rows}"
        common = ["--folder", str(folder), "--rows", str(n_rows), "--rounds", str(args.rounds),
                  "--spark-memory", args.spark_memory, "--partition-rows", str(args.partition_rows)]
        generated = _measure(["--one", "generate", *common], timeout=3600)
        if "failed" in generated:
            print(f"| {n_rows:,} | generation failed: {generated['failed']} |")
            continue
        spark = _measure(["--one", "spark", *common], timeout=args.spark_timeout)
        print(_row(n_rows, "spark", spark), flush=True)
        pandas = {"failed": "not tried (above --skip-pandas-above)"}
        if n_rows <= args.skip_pandas_above:
            pandas = _measure(["--one", "pandas", *common, "--pandas-memory-gb", str(args.pandas_memory_gb)],
                              timeout=args.pandas_timeout)  # fmt: skip
        print(_row(n_rows, "pandas", pandas), flush=True)
        results[n_rows] = {"spark": spark, "pandas": pandas}
    sizes = [n for n in args.sizes if n in results]
    for small, large in zip(sizes, sizes[1:]):
        for engine in ("spark", "pandas"):
            a, b = results[small][engine], results[large][engine]
            if "failed" in a or "failed" in b:
                continue
            keys = ["wall_s", "cpu_s", "python_driver_peak_mb"] + (["jvm_peak_mb", "python_workers_peak_mb"] if engine == "spark" else [])
            growth = ", ".join(f"{k} x{b[k] / a[k]:.2f}" for k in keys if a[k])
            print(f"{engine} growth {small:,} -> {large:,} rows ({large / small:.0f}x): {growth}")
    print(json.dumps({str(k): v for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
