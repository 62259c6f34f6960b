"""The Spark audit engine: the audit of imported recommendation lists where the lists live, in Spark.

:func:`run_spark_audit` writes the same audit folder as :func:`fairaudit.audit.run_audit` (the
pandas engine) from Spark DataFrames of recommendation lists, training and test interactions and
users, plus the items table (the catalogue: the one table the driver holds whole). Per-user rows
never reach the driver:

1. **Per-user metrics** run the registry's own per-user functions (``fairaudit.audit.user_metrics_frame``)
   inside Spark, on buckets of users (every row of a user — list, test items, training history — in one
   bucket, ``applyInPandas``). The two metrics that read catalogue-wide training statistics (novelty:
   item self-information; ARP: item training counts) get those statistics from the driver's catalogue
   table, so every per-user value is the pandas engine's. They are written as a partitioned Parquet
   dataset (``user_metrics.parquet/part-*.parquet``), with ``recommendations.parquet`` likewise.
2. **Group statistics**: a Poisson bootstrap (:mod:`fairaudit.spark._bootstrap`) sums each
   (model, attribute, group)'s metric values and counts, observed and in every round, per
   partition (``mapInPandas``); Spark adds the partitions up and the driver receives
   groups x rounds x metrics numbers, then builds the same ``group_metrics`` and ``gaps`` rows
   (:class:`~fairaudit.spark._bootstrap.PoissonSliceReport`), Benjamini-Hochberg over the gap families
   and the plain-words sentences.
3. **Catalogue metrics** (Gini of exposure, coverage) from item recommendation counts, observed and
   bootstrapped with the same weights; **item exposure** from sums per (attribute combination, item group).

Where this differs from the pandas engine is written up in ``docs/spark.md``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import math
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fairaudit.audit import (
    ALL,
    DEFAULT_INTERSECTIONS,
    FDR_FAMILIES,
    INTERSECTION_SEP,
    TABLES,
    USER_METRICS,
    AuditConfig,
    AuditResult,
    adjust_p_values,
    describe_gap,
    is_audit_folder,
    plain_attributes,
    user_metrics_frame,
)
from fairaudit.audit._engine import _ItemContext
from fairaudit.data import (
    UNKNOWN,
    Dataset,
    Split,
    age_band,
    check_folder_target,
    genre_matrix,
    popularity_tier_from_counts,
    zip_region,
)
from fairaudit.data._derive import ACTIVITY_LEVELS
from fairaudit.data._schema import MAX_GROUPS
from fairaudit.metrics import (
    METRICS,
    MetricRegistry,
    group_shares,
    item_groups,
    position_weights,
)
from fairaudit.metrics._common import list_mean
from fairaudit.spark._bootstrap import (
    KEY_SEP,
    PoissonSliceReport,
    group_partial_sums,
    item_partial_counts,
)

if TYPE_CHECKING:  # pyspark is imported only when a Spark audit runs
    from pyspark.sql import DataFrame, SparkSession

#: Users per bucket of the per-user stage (one pandas frame per bucket inside an executor).
BUCKET_USERS = 20_000
#: Engines of ``audit --engine``.
ENGINES: tuple[str, ...] = ("pandas", "spark")

_NO_TEST_USERS = "No test user has a list in '{0}'; nothing to evaluate (check the user ids of both files)"
_UNKNOWN_ITEMS = (
    "{0} recommendation row(s) name items that are not in the items table (e.g. {1}); load the items table "
    "that has them, or remove them from the lists"
)
_MISSING_COLUMNS = "{0} lacks column(s) {1}; expected {2}"
_NO_RANK = "{0} has neither a 'rank' nor a 'score' column; expected user_id, item_id and rank or score"
_UNKNOWN_ATTRIBUTE = "User attribute '{0}' is not a column of the users table; available: {1}"
_ATTRIBUTE_CLASH = "User attribute '{0}' has the name of a user_metrics.parquet column ({1}); rename it"
_BAD_FDR_FAMILY = "Unknown fdr_family '{0}'; expected one of {1}"
_NO_TABLE = "Spark input '{0}': no Parquet or CSV table found at {1}"


# ---- the session and the inputs ----------------------------------------------------------------
def spark_session(
    master: str = "local[*]", *, conf: Mapping[str, str] | None = None, app_name: str = "fairaudit"
) -> SparkSession:
    """A Spark session for audits (UI off, this interpreter as the executors' Python).

    ``conf`` adds or overrides Spark settings (``spark.executor.memory``, ``spark.sql.shuffle.partitions``).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master).appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )  # fmt: skip
    for key, value in (conf or {}).items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()


def read_table(spark: SparkSession, path: str | os.PathLike) -> DataFrame:
    """A Parquet file or dataset folder (any file system Spark reads), or a CSV file with a header."""
    text = str(path)
    if text.lower().endswith((".csv", ".tsv")):
        return spark.read.csv(text, header=True, sep="\t" if text.lower().endswith(".tsv") else ",")
    return spark.read.parquet(text)


def find_table(spark: SparkSession, folder: str | os.PathLike, name: str) -> DataFrame | None:
    """``folder/<name>.parquet`` (file or dataset folder), ``folder/<name>/`` or ``folder/<name>.csv``; None if absent."""
    for candidate in (f"{name}.parquet", name, f"{name}.csv"):
        path = Path(folder) / candidate
        if path.exists():
            return read_table(spark, path)
    return None


@dataclasses.dataclass
class SparkAuditInputs:
    """What a Spark audit reads: lists, ground truth and users as Spark DataFrames, the catalogue in pandas.

    Attributes
    ----------
    recommendations : DataFrame
        ``user_id, item_id`` and ``rank`` or ``score``, optional ``model`` and ``score``.
    train, test : DataFrame
        ``user_id, item_id``: training interactions (popularity, history) and held-out interactions.
    users : DataFrame
        ``user_id`` plus attribute columns (``age``/``zip`` derive ``age_band``/``region`` as the loader does).
    items : pandas.DataFrame
        The catalogue: ``item_id`` plus optional ``genres`` and attribute columns.
    name : str
        System name when ``recommendations`` has no ``model`` column.
    record : dict
        Where the data came from (``audit.json``'s ``config.data``).
    """

    recommendations: DataFrame
    train: DataFrame
    test: DataFrame
    users: DataFrame
    items: pd.DataFrame
    name: str = "recommendations"
    record: dict = dataclasses.field(default_factory=dict)


def load_inputs(
    spark: SparkSession,
    data: str | os.PathLike,
    recommendations: str | os.PathLike,
    test: str | os.PathLike,
    *,
    name: str | None = None,
) -> SparkAuditInputs:
    """Inputs from a data folder (``interactions``, ``users``, ``items`` as Parquet or CSV), a lists file and a test file.

    As with ``load_test_split``, the training interactions are the folder's interactions minus the
    test pairs.
    """
    from pyspark.sql import functions as F

    tables = {}
    for table in ("interactions", "users", "items"):
        tables[table] = find_table(spark, data, table)
        if tables[table] is None:
            raise FileNotFoundError(_NO_TABLE.format(table, Path(data) / f"{table}.parquet"))
    ids = [F.col("user_id").cast("string").alias("user_id"), F.col("item_id").cast("string").alias("item_id")]
    test_frame = read_table(spark, test).select(*ids).distinct()
    train = tables["interactions"].select(*ids).join(test_frame, ["user_id", "item_id"], "left_anti")
    items = _collect_pandas(tables["items"])
    return SparkAuditInputs(
        recommendations=read_table(spark, recommendations),
        train=train, test=test_frame, users=tables["users"], items=items,
        name=name or Path(str(recommendations).rstrip("/")).stem,
        record={"path": str(data), "recommendations": [{"path": str(Path(recommendations).resolve()), "name": name}],
                "ground_truth": {"kind": "test_file", "path": str(Path(test).resolve())}},
    )  # fmt: skip


def _collect_pandas(frame: DataFrame) -> pd.DataFrame:
    """A small (catalogue- or group-sized) Spark frame in pandas, through plain rows (no per-user data)."""
    rows = frame.collect()
    return pd.DataFrame([r.asDict() for r in rows], columns=frame.columns)


# ---- the catalogue (driver) -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Catalogue:
    items: pd.DataFrame
    context: _ItemContext
    n_train: int
    registry: MetricRegistry


def _catalogue(inputs: SparkAuditInputs, config: AuditConfig) -> _Catalogue:
    """Items with tiers from the training counts, item groupings, and the per-user registry for buckets."""
    from pyspark.sql import functions as F

    items = inputs.items.copy()
    items["item_id"] = items["item_id"].astype(str)
    counted = _collect_pandas(inputs.train.groupBy("item_id").agg(F.count(F.lit(1)).alias("n")))
    n_train = int(counted["n"].sum()) if len(counted) else 0
    counts = pd.Series(counted["n"].to_numpy(dtype=float), index=counted["item_id"].astype(str))
    counts = counts.reindex(items["item_id"], fill_value=0.0)
    items["popularity_tier"] = popularity_tier_from_counts(counts.to_numpy(), items["item_id"]).to_numpy()
    has_genres = "genres" in items.columns
    names = config.item_attributes
    if names is None:
        catalogue_only = Dataset(pd.DataFrame(columns=["user_id", "item_id"]), pd.DataFrame(columns=["user_id"]), items)
        extra = [c for c in catalogue_only.item_attributes
                 if c != "popularity_tier" and items[c].nunique() <= config.max_groups]  # fmt: skip
        names = ("popularity_tier", *(("genre",) if has_genres else ()), *extra)
    catalogue = pd.Index(items["item_id"])
    context = _ItemContext(
        catalogue=catalogue,
        tiers=pd.Series(items["popularity_tier"].astype(str).to_numpy(), index=items["item_id"]),
        genres=genre_matrix(items) if has_genres else None,
        genre_weights=genre_matrix(items, normalise=True) if has_genres else None,
        vectors=None,
        groupings={name: item_groups(items, name) for name in names},
    )
    # Per-user metrics whose registry function reads catalogue-wide training statistics (novelty and
    # ARP): the registry's formulas with the catalogue's training counts instead of a bucket's
    # training rows, as list means over each user's list.
    information = -np.log2(np.maximum(counts.to_numpy(dtype=float), 1.0) / max(n_train, 1))
    item_values = {"novelty": pd.Series(information, index=catalogue), "avg_popularity": counts.astype(float)}
    registry = MetricRegistry(
        dataclasses.replace(m, compute=functools.partial(_bucket_mean, values=item_values[m.name]))
        if m.name in item_values else m
        for m in METRICS.where(level="user")
    )  # fmt: skip
    return _Catalogue(items, context, n_train, registry)


def _bucket_mean(inputs: Any, *, values: pd.Series) -> pd.Series:
    """A per-user list mean of catalogue-wide item ``values`` (novelty, ARP) on a bucket's lists."""
    return list_mean(inputs.recs, values)


def _applicable(registry: MetricRegistry, context: _ItemContext) -> list[str]:
    have = {"genres": context.genres is not None, "genre_weights": context.genre_weights is not None,
            "item_vectors": context.vectors is not None}  # fmt: skip
    return [m.name for m in registry.where(level="user") if all(have[n] for n in m.needs)]


# ---- users (Spark) --------------------------------------------------------------------------------
def _derive_users(batches, *, age: bool, zips: bool):
    """``mapInPandas`` body: ``age_band`` and ``region`` as the loader derives them (row-wise functions)."""
    for batch in batches:
        if age:
            batch["age_band"] = age_band(batch["age"]).to_numpy()
        if zips:
            batch["region"] = zip_region(batch["zip"].astype("string")).to_numpy()
        yield to_arrow_safe(batch)


def to_arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain object arrays: pyspark 4.3 cannot send pandas 3's Arrow-backed strings back."""
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    return frame.astype({c: object for c in text}) if text else frame


def _quantile_from_histogram(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """``np.quantile`` (linear) of the multiset where ``values[j]`` occurs ``weights[j]`` times (sorted values)."""
    n = int(weights.sum())
    cumulative = np.cumsum(weights)
    position = (n - 1) * q
    below = int(math.floor(position))
    pick = np.searchsorted(cumulative, [below + 1, min(below + 2, n)], side="left")
    return float(np.quantile(values[pick].astype(float), position - below))


def _prepare_users(inputs: SparkAuditInputs) -> DataFrame:
    """Users with string attributes (missing -> ``unknown``), derived ``age_band``/``region`` and ``activity`` from train."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    users = inputs.users.withColumn("user_id", F.col("user_id").cast("string"))
    columns = users.columns
    age, zips = "age" in columns and "age_band" not in columns, "zip" in columns and "region" not in columns
    if age or zips:
        fields = list(users.schema.fields)
        fields += [T.StructField("age_band", T.StringType())] if age else []
        fields += [T.StructField("region", T.StringType())] if zips else []
        users = users.mapInPandas(functools.partial(_derive_users, age=age, zips=zips), T.StructType(fields))
    counts = inputs.train.groupBy("user_id").agg(F.count(F.lit(1)).alias("_n"))
    users = users.drop("activity").join(counts, "user_id", "left").fillna({"_n": 0})
    histogram = _collect_pandas(users.groupBy("_n").agg(F.count(F.lit(1)).alias("users"))).sort_values("_n")
    values, weights = histogram["_n"].to_numpy(dtype=float), histogram["users"].to_numpy(dtype=float)
    cuts = [_quantile_from_histogram(values, weights, q) for q in (1 / 3, 2 / 3)] if len(values) else [0.0, 0.0]
    level = (F.when(F.col("_n") <= cuts[0], ACTIVITY_LEVELS[0]).when(F.col("_n") <= cuts[1], ACTIVITY_LEVELS[1])
             .otherwise(ACTIVITY_LEVELS[2]))  # fmt: skip
    users = users.withColumn("activity", level).drop("_n")
    text = [f.name for f in users.schema.fields if f.name != "user_id" and isinstance(f.dataType, T.StringType)]
    return users.fillna(UNKNOWN, subset=text)


def _default_specs(users: DataFrame, max_groups: int) -> tuple[str, ...]:
    """:func:`fairaudit.audit.default_attributes` on a Spark users table (distinct counts only reach the driver)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    text = [f.name for f in users.schema.fields if f.name != "user_id" and isinstance(f.dataType, T.StringType)]
    if not text:
        return ()
    distinct = users.agg(*(F.countDistinct(F.col(c)).alias(c) for c in text)).collect()[0].asDict()
    plain = [c for c in text if distinct[c] <= min(MAX_GROUPS, max_groups)]
    crossed = [s for s in DEFAULT_INTERSECTIONS if all(p in plain for p in s.split(INTERSECTION_SEP))]
    return tuple(plain + crossed)


# ---- recommendation lists (Spark) -----------------------------------------------------------------
def _prepare_lists(inputs: SparkAuditInputs, catalogue: _Catalogue, users: DataFrame, k: int) -> DataFrame:
    """``model, user_id, rank, item_id, score`` of known users, cut at K; unknown items refused."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    recs = inputs.recommendations
    missing = [c for c in ("user_id", "item_id") if c not in recs.columns]
    if missing:
        raise ValueError(_MISSING_COLUMNS.format("recommendations", missing, ["user_id", "item_id", "rank|score"]))
    if "rank" not in recs.columns and "score" not in recs.columns:
        raise ValueError(_NO_RANK.format("recommendations"))
    model = F.col("model").cast("string") if "model" in recs.columns else F.lit(inputs.name)
    score = F.col("score").cast("double") if "score" in recs.columns else F.lit(None).cast("double")
    recs = recs.select(model.alias("model"), F.col("user_id").cast("string").alias("user_id"),
                       F.col("item_id").cast("string").alias("item_id"), score.alias("score"),
                       *([F.col("rank").cast("long").alias("rank")] if "rank" in recs.columns else []))  # fmt: skip
    if "rank" not in recs.columns:  # rank from score: descending score, ties by item id
        order = Window.partitionBy("model", "user_id").orderBy(F.col("score").desc(), F.col("item_id"))
        recs = recs.withColumn("rank", F.row_number().over(order).cast("long"))
    recs = recs.where(F.col("rank") <= k).join(users.select("user_id"), "user_id", "left_semi")
    known = inputs.recommendations.sparkSession.createDataFrame(
        pd.DataFrame({"item_id": catalogue.context.catalogue.to_numpy(dtype=object).astype(str)})
    )
    unknown = recs.join(F.broadcast(known), "item_id", "left_anti")
    stray = unknown.limit(5).select("item_id").collect()
    if stray:
        raise ValueError(_UNKNOWN_ITEMS.format(unknown.count(), [r.item_id for r in stray]))
    return recs.select("model", "user_id", "rank", "item_id", "score")


# ---- per-user metrics (Spark, registry functions on user buckets) --------------------------------
def _bucket_metrics(
    frame: pd.DataFrame, *, catalogue: _Catalogue, metrics: Sequence[str], k: int, calibration_alpha: float
) -> pd.DataFrame:
    """``applyInPandas`` body: every per-user metric of the bucket's users, per model, by the registry's functions."""
    kind = frame["kind"].to_numpy()
    train = frame.loc[kind == "train", ["user_id", "item_id"]]
    test = frame.loc[kind == "test", ["user_id", "item_id"]]
    lists = frame.loc[kind == "rec"].sort_values(["model", "user_id", "rank"])
    out = []
    for model, recs in lists.groupby("model", sort=True):
        recs = recs[["user_id", "rank", "item_id"]].astype({"rank": np.int64})
        judged = test[test["user_id"].isin(recs["user_id"].unique())]
        if judged.empty:
            continue
        values = user_metrics_frame(
            recs, Split(train, judged, "test_file", 0), catalogue.context, k=k,
            calibration_alpha=calibration_alpha, registry=catalogue.registry,
        )  # fmt: skip
        values = values.reindex(columns=list(metrics)).astype(float)
        out.append(values.reset_index().assign(model=str(model)))
    columns = ["model", "user_id", *metrics]
    if not out:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("model", "user_id") else float) for c in columns})
    result = pd.concat(out, ignore_index=True)[columns]
    result["user_id"] = result["user_id"].astype(str)
    return to_arrow_safe(result)


def _per_user(
    recs: DataFrame, inputs: SparkAuditInputs, catalogue: _Catalogue, metrics: Sequence[str], config: AuditConfig
) -> DataFrame:
    """Per-user metric rows ``model, user_id, <metrics>`` of every listed test user, computed in Spark."""
    from pyspark.sql import functions as F

    listed = recs.select("user_id").distinct()
    test = inputs.test.join(listed, "user_id", "left_semi")
    n_users = test.select("user_id").distinct().count()
    buckets = max(1, math.ceil(n_users / BUCKET_USERS))
    bucket = F.pmod(F.xxhash64(F.col("user_id")), F.lit(buckets)).alias("bucket")
    null_text, null_rank = F.lit(None).cast("string"), F.lit(None).cast("long")
    parts = [
        recs.select(bucket, F.lit("rec").alias("kind"), "model", "user_id", "item_id", "rank"),
        test.select(bucket, F.lit("test").alias("kind"), null_text.alias("model"), "user_id", "item_id",
                    null_rank.alias("rank")),
    ]  # fmt: skip
    if catalogue.context.genre_weights is not None:  # miscalibration reads each user's training history
        history = inputs.train.join(test.select("user_id").distinct(), "user_id", "left_semi")
        parts.append(history.select(bucket, F.lit("train").alias("kind"), null_text.alias("model"), "user_id",
                                    "item_id", null_rank.alias("rank")))  # fmt: skip
    rows = functools.reduce(lambda a, b: a.unionByName(b), parts)
    schema = "model string, user_id string, " + ", ".join(f"`{m}` double" for m in metrics)
    body = functools.partial(_bucket_metrics, catalogue=catalogue, metrics=list(metrics), k=config.k,
                             calibration_alpha=config.calibration_alpha)  # fmt: skip
    return rows.groupBy("bucket").applyInPandas(_plain(body), schema)


def _plain(body: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable:
    """``body`` as a plain function: Spark reads a grouped function's type hints, which a partial lacks."""

    def run(frame):
        return body(frame)

    return run


# ---- group statistics (Spark sums -> driver) -------------------------------------------------------
def _user_hash(seed: int):
    from pyspark.sql import functions as F

    return F.xxhash64(F.lit(str(int(seed))), F.col("user_id")).alias("user_hash")


def _group_sums(per_user: DataFrame, metrics: Sequence[str], specs: Mapping[str, Sequence[str]], config: AuditConfig
                ) -> dict[str, np.ndarray]:  # fmt: skip
    """``model, spec, group`` key -> (rounds + 1, 2 m) observed and bootstrap sums and counts."""
    body = functools.partial(group_partial_sums, metrics=list(metrics), specs=dict(specs),
                             rounds=config.bootstrap_rounds)  # fmt: skip
    columns = ["model", *metrics, *dict.fromkeys(p for parts in specs.values() for p in parts)]
    sums = per_user.select(_user_hash(config.seed), *columns).mapInPandas(body, "key string, data binary")
    shape = (config.bootstrap_rounds + 1, 2 * len(metrics))
    reduced = sums.rdd.map(lambda r: (r.key, np.frombuffer(r.data))).reduceByKey(np.add).collect()
    return {key: np.asarray(data).reshape(shape) for key, data in reduced}


def _slice_tables(
    sums: Mapping[str, np.ndarray], model: str, spec: str, metrics: Sequence[str], config: AuditConfig
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """``group_metrics`` rows and (for attributes) ``gaps`` rows of one model x spec from its group sums."""
    prefix = f"{model}{KEY_SEP}{spec}{KEY_SEP}"
    groups = sorted(key[len(prefix):] for key in sums if key.startswith(prefix))
    stacked = np.stack([sums[prefix + g] for g in groups])  # (groups, rounds + 1, 2 m)
    m = len(metrics)
    report = PoissonSliceReport(
        groups, metrics, stacked[:, 0, :m], stacked[:, 0, m:], stacked[:, 1:, :m], stacked[:, 1:, m:],
        confidence=1 - config.alpha, min_group_size=config.min_group_size,
        include_small_groups=config.include_small_groups,
        higher_is_better={name: METRICS[name].higher_is_better for name in metrics},
    )  # fmt: skip
    by_group = report.by_group.assign(model=model, attribute=spec)
    gaps = [] if spec == ALL else [report.gaps(ref).assign(model=model, attribute=spec) for ref in ("rest", "best")]
    return by_group, gaps


def _catalogue_rows(
    recs: DataFrame, catalogue: _Catalogue, n_evaluated: Mapping[str, int], config: AuditConfig, spark: SparkSession
) -> pd.DataFrame:
    """The registry's catalogue-level rows of every model (Gini with a bootstrap CI, coverage) from item counts per round.

    One Spark pass for all models: a recommendation's key is ``model index x catalogue size + item position``.
    """
    from pyspark.sql import functions as F

    models, n_items = list(n_evaluated), len(catalogue.context.catalogue)
    codes = spark.createDataFrame(pd.DataFrame({
        "item_id": catalogue.context.catalogue.to_numpy(dtype=object).astype(str),
        "item_position": np.arange(n_items, dtype=np.int64),
    }))  # fmt: skip
    model_codes = spark.createDataFrame(pd.DataFrame({"model": np.array(models, dtype=object),
                                                      "model_index": np.arange(len(models), dtype=np.int64)}))  # fmt: skip
    key = (F.col("model_index") * F.lit(n_items) + F.col("item_position")).alias("item_code")
    rows = recs.join(F.broadcast(codes), "item_id").join(F.broadcast(model_codes), "model").select(_user_hash(config.seed), key)
    body = functools.partial(item_partial_counts, rounds=config.bootstrap_rounds)
    partial = rows.mapInPandas(body, "item_code long, data binary")
    reduced = partial.rdd.map(lambda r: (r.item_code, np.frombuffer(r.data))).reduceByKey(np.add).collect()
    counts = np.zeros((len(models) * n_items, config.bootstrap_rounds + 1))
    for code, data in reduced:
        counts[code] = data
    metrics = METRICS.where(level="catalogue")
    tail = config.alpha / 2
    frames = []
    for index, model in enumerate(models):
        block = counts[index * n_items : (index + 1) * n_items]
        observed, replicates = block[:, 0], block[:, 1:].T
        values, low, high = [], [], []
        for m in metrics:
            values.append(m.compute(observed))
            if m.ci:
                draws = np.concatenate([np.atleast_1d(m.compute(replicates[lo:hi]))
                                        for lo, hi in _row_chunks(len(replicates), replicates.shape[1])])  # fmt: skip
                low.append(np.quantile(draws, tail))
                high.append(np.quantile(draws, 1 - tail))
            else:
                low.append(np.nan)
                high.append(np.nan)
        n_users = int(n_evaluated[model])
        frames.append(pd.DataFrame({
            "model": model, "attribute": ALL, "group": ALL, "metric": [m.name for m in metrics], "value": values,
            "ci_low": low, "ci_high": high, "n_users": n_users, "flagged": n_users < config.min_group_size,
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _row_chunks(rows: int, width: int) -> list[tuple[int, int]]:
    step = max(1, 4_000_000 // max(width, 1))
    return [(lo, min(lo + step, rows)) for lo in range(0, rows, step)] or [(0, 0)]


# ---- item exposure (Spark sums per attribute combination -> driver) --------------------------------
def _exposure_rows(
    recs: DataFrame, test: DataFrame, users: DataFrame, plain: Sequence[str], specs: Sequence[str],
    catalogue: _Catalogue, config: AuditConfig, spark: SparkSession,
) -> pd.DataFrame:  # fmt: skip
    """``item_exposure`` rows of every model: shares from sums per (plain attribute values, item group)."""
    from pyspark.sql import functions as F

    membership = []
    for attribute, groups in catalogue.context.groupings.items():
        long = groups.rename_axis("item_id").reset_index().melt("item_id", var_name="item_group", value_name="weight")
        membership.append(long[long["weight"] != 0].assign(item_attribute=attribute))
    members = spark.createDataFrame(pd.concat(membership, ignore_index=True)[["item_id", "item_attribute", "item_group", "weight"]]
                                    .astype({"item_id": str, "item_group": str, "item_attribute": str}))  # fmt: skip
    attrs = users.select("user_id", *plain)
    rank = F.col("rank").cast("double")
    weights = {b: _browsing_weight(b, rank, config.rbp_gamma) for b in config.browsing}
    shown = (recs.join(attrs, "user_id").join(F.broadcast(members), "item_id")
             .groupBy("model", *plain, "item_attribute", "item_group")
             .agg(*(F.sum(w * F.col("weight")).alias(f"w_{b}") for b, w in weights.items())))  # fmt: skip
    judged = test.join(recs.select("model", "user_id").distinct(), "user_id")
    relevant = (judged.join(attrs, "user_id").join(F.broadcast(members), "item_id")
                .groupBy("model", *plain, "item_attribute", "item_group").agg(F.sum("weight").alias("relevant")))  # fmt: skip
    keys = ["model", *plain, "item_attribute", "item_group"]
    table = _collect_pandas(shown.join(relevant, keys, "full_outer")).fillna(
        {**{f"w_{b}": 0.0 for b in weights}, "relevant": 0.0}
    )
    frames = []
    for model in sorted(table["model"].unique()):
        rows = table[table["model"] == model]
        combos = rows[list(plain)].astype(str).drop_duplicates().reset_index(drop=True)
        combo_index = pd.MultiIndex.from_frame(combos) if plain else None
        for spec in [ALL, *specs]:
            labels = _spec_labels(combos, spec)
            names, codes = np.unique(labels.astype(str), return_inverse=True)
            for attribute, groups in catalogue.context.groupings.items():
                sub = rows[rows["item_attribute"] == attribute]
                columns = pd.Index(groups.columns.astype(str))
                r = (combo_index.get_indexer(pd.MultiIndex.from_frame(sub[list(plain)].astype(str)))
                     if plain else np.zeros(len(sub), dtype=int))  # fmt: skip
                c = columns.get_indexer(sub["item_group"].astype(str))
                relevant_matrix = sp.csr_matrix((sub["relevant"].to_numpy(float), (r, c)), shape=(len(combos), len(columns)))
                catalogue_share = groups.to_numpy(dtype=float).sum(axis=0) / len(groups)
                identity = pd.DataFrame(np.eye(len(columns)), columns=columns)
                for browsing in weights:
                    shown_matrix = sp.csr_matrix((sub[f"w_{browsing}"].to_numpy(float), (r, c)),
                                                 shape=(len(combos), len(columns)))  # fmt: skip
                    shares = group_shares(shown_matrix, relevant_matrix, codes, names, identity)
                    shares["catalogue_share"] = np.tile(catalogue_share, len(names))
                    frames.append(shares.assign(model=model, user_attribute=spec, item_attribute=attribute,
                                                browsing=browsing))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _browsing_weight(browsing: str, rank, gamma: float):
    """:func:`fairaudit.metrics.position_weights` as a Spark column expression."""
    from pyspark.sql import functions as F

    position_weights(np.array([1]), browsing=browsing, gamma=gamma)  # refuses unknown models and gammas
    if browsing == "dcg":
        return F.lit(1.0) / F.log2(rank + F.lit(1.0))
    if browsing == "rbp":
        return F.pow(F.lit(float(gamma)), rank - F.lit(1.0))
    return F.lit(1.0)


def _spec_labels(combos: pd.DataFrame, spec: str) -> np.ndarray:
    if spec == ALL:
        return np.full(len(combos), ALL, dtype=object)
    parts = spec.split(INTERSECTION_SEP)
    values = combos[parts[0]].astype(str).to_numpy(dtype=object)
    for part in parts[1:]:
        values = values + INTERSECTION_SEP + combos[part].astype(str).to_numpy(dtype=object)
    return values


# ---- the audit ---------------------------------------------------------------------------------------
def run_spark_audit(
    inputs: SparkAuditInputs,
    config: AuditConfig = AuditConfig(),
    out: str | os.PathLike = "audit",
    *,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> AuditResult:
    """Audit imported recommendation lists in Spark and write the audit folder ``out``.

    Parameters
    ----------
    inputs : SparkAuditInputs
        Lists, training and test interactions and users (Spark DataFrames) and the catalogue (pandas).
    config : AuditConfig
        As for :func:`fairaudit.audit.run_audit`; ``embedding_diversity`` is not available here
        (``ild_embedding`` is left out) and ``bootstrap_rounds`` is the number of Poisson bootstrap rounds.
    out : path
        The audit folder (on a file system the driver writes; executors write its Parquet datasets).
    overwrite : bool
        Replace an existing audit folder.
    progress : callable, optional
        Receives a short status line per step.

    Returns
    -------
    AuditResult
        The small tables in memory; ``recommendations`` and ``user_metrics`` as the paths of their
        Parquet datasets inside ``out``.
    """
    from pyspark.sql import functions as F

    if config.fdr_family not in FDR_FAMILIES:
        raise ValueError(_BAD_FDR_FAMILY.format(config.fdr_family, FDR_FAMILIES))
    spark = inputs.recommendations.sparkSession
    context = spark.sparkContext

    def say(message: str) -> None:
        # Names the step's Spark jobs in Spark's UI and event log ("fairaudit spark: per-user metrics").
        context.setJobDescription(f"fairaudit {message}")
        if progress is not None:
            progress(message)

    out = Path(out)
    # Refuse an existing folder before any Spark work, not after it (the writer checks again when it writes).
    check_folder_target(out, overwrite=overwrite, is_ours=is_audit_folder, kind="audit folder")
    say("spark: catalogue and users")
    catalogue = _catalogue(inputs, config)
    users = _prepare_users(inputs)
    specs = config.attributes if config.attributes is not None else _default_specs(users, config.max_groups)
    plain = plain_attributes(specs)
    for column in plain:
        if column not in users.columns or column == "user_id":
            raise ValueError(_UNKNOWN_ATTRIBUTE.format(column, [c for c in users.columns if c != "user_id"]))
        if column in ("model", *USER_METRICS):
            raise ValueError(_ATTRIBUTE_CLASH.format(column, ["model", "user_id", *USER_METRICS]))
    config = AuditConfig.from_dict({**config.to_dict(), "attributes": list(specs), "embedding_diversity": False,
                                    "split": _split_record(inputs)})  # fmt: skip
    users = users.select("user_id", *(F.col(c).cast("string").alias(c) for c in plain)).persist()
    recs = _prepare_lists(inputs, catalogue, users, config.k)
    recs = recs.join(inputs.test.select("user_id").distinct(), "user_id", "left_semi").persist()
    metrics = _applicable(catalogue.registry, catalogue.context)

    staging = out.parent / f".{out.name}.spark-{uuid.uuid4().hex[:8]}"
    try:
        say("spark: per-user metrics")
        per_user = _per_user(recs, inputs, catalogue, metrics, config)
        per_user.join(users, "user_id", "left").select("model", "user_id", *metrics, *plain) \
            .write.parquet(str(staging / "user_metrics.parquet"))
        recs.write.parquet(str(staging / "recommendations.parquet"))
        stored = spark.read.parquet(str(staging / "user_metrics.parquet"))
        evaluated = _collect_pandas(stored.groupBy("model").agg(F.count(F.lit(1)).alias("n")))
        n_evaluated = dict(sorted(zip(evaluated["model"].astype(str), evaluated["n"].astype(int))))
        models = list(n_evaluated)
        if not models:
            raise ValueError(_NO_TEST_USERS.format(inputs.name))
        say(f"spark: group statistics ({config.bootstrap_rounds} Poisson bootstrap rounds)")
        spec_parts = {ALL: (), **{s: tuple(s.split(INTERSECTION_SEP)) for s in specs}}
        sums = _group_sums(stored, metrics, spec_parts, config)
        group_rows, gap_rows = [], []
        say(f"spark: item counts ({config.bootstrap_rounds} Poisson bootstrap rounds; Gini, coverage)")
        catalogue_rows = _catalogue_rows(recs, catalogue, n_evaluated, config, spark)
        for name in models:
            for spec in spec_parts:
                by_group, gaps = _slice_tables(sums, name, spec, metrics, config)
                group_rows.append(by_group)
                gap_rows.extend(gaps)
            group_rows.append(catalogue_rows[catalogue_rows["model"] == name])
        say("spark: item exposure")
        exposure = _exposure_rows(recs, inputs.test, users, plain, specs, catalogue, config, spark)
        gaps = pd.concat(gap_rows, ignore_index=True)
        gaps["p_adjusted"] = adjust_p_values(gaps, config.fdr_family)
        gaps["direction"] = [describe_gap(r, config.k, config.alpha) for r in gaps.to_dict("records")]
        meta = _meta(inputs, config, catalogue, models, n_evaluated, spark)
        result = AuditResult(
            recommendations=staging / "recommendations.parquet",
            user_metrics=staging / "user_metrics.parquet",
            # Columns in the audit folder's contract order (the table schemas).
            group_metrics=pd.concat(group_rows, ignore_index=True)[list(TABLES["group_metrics"].columns)],
            gaps=gaps[list(TABLES["gaps"].columns)],
            item_exposure=exposure[list(TABLES["item_exposure"].columns)],
            meta=meta,
        )
        result.write(out, overwrite=overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        users.unpersist()
        recs.unpersist()
        context.setJobDescription(None)
    return dataclasses.replace(
        result, recommendations=out / "recommendations.parquet", user_metrics=out / "user_metrics.parquet"
    )


def _split_record(inputs: SparkAuditInputs) -> dict:
    truth = (inputs.record or {}).get("ground_truth") or {}
    return {"method": "test_file", "seed": 0, "params": {"path": truth.get("path")}, "fingerprint": None}


def _meta(inputs, config: AuditConfig, catalogue: _Catalogue, models, n_evaluated, spark) -> dict:
    from importlib.metadata import version

    from fairaudit.models import software_versions

    record = {**(inputs.record or {}), "engine": "spark"}
    config = AuditConfig.from_dict({**config.to_dict(), "data": record})
    meta = {
        "config": config.to_dict(),
        "data": {"name": str(record.get("path", "spark")), "fingerprint": "not computed (spark engine)",
                 "n_items": len(catalogue.items), "n_train_interactions": catalogue.n_train},
        "models": {name: {"kind": "imported", "params": {"system": name}, "fingerprint": None, "split": config.split,
                          "data_fingerprint": None} for name in models},
        "n_evaluated_users": {name: int(n_evaluated[name]) for name in models},
        "versions": {**software_versions(), "pyspark": version("pyspark")},
        "seed": config.seed,
        "engine": {"name": "spark", "master": spark.sparkContext.master, "bootstrap": "poisson",
                   "gap_test": "null-imposed bootstrap"},
        "derived_attributes": {"activity": {"table": "users", "from": "train"},
                               "popularity_tier": {"table": "items", "from": "train"}},
    }  # fmt: skip
    meta["audit_id"] = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:12]
    meta["timestamp"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return meta
