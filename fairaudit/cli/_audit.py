"""``python -m fairaudit audit``: audit saved models by user group and write an audit folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "audit saved models by user group and write an audit folder"
DESCRIPTION = """\
Recommend top-K for every user with test interactions (the split each model was trained on is
re-created from its config and verified), compute accuracy, exposure, diversity and calibration
per user group and intersection, with bootstrap CIs, permutation-test gaps and Benjamini-Hochberg
correction, and write AUDIT_DIR/: recommendations.parquet, user_metrics.parquet,
group_metrics.csv, gaps.csv, item_exposure.csv and audit.json. With --explain, also the SHAP
gap drivers of per-user NDCG (shap_drivers.csv, gap_decomposition.csv) and counterfactual
attribute probes of every model (probes.csv), which the report then includes.

Recommendation lists made by another system (--recommendations FILE: CSV or Parquet with user_id,
item_id and rank or score, optionally model) are audited like a model, on held-out interactions
(--test FILE) or on a split of --data (--split, --split-seed, --test-fraction: the defaults of
`train`); with --model too, on that model's split. audit.json records each file's SHA-256.

With --engine spark the imported lists are audited in Apache Spark (--spark-master local[*],
spark://HOST:7077 or yarn): per-user metrics stay in Spark (a partitioned user_metrics.parquet),
CIs come from a Poisson bootstrap and gap p-values from null-imposed bootstrap tests (docs/spark.md).

Re-run an audit exactly:  python -m fairaudit audit --config OLD_DIR/audit.json --out NEW_DIR

Example:
  python -m fairaudit audit --data sample_data --model models/pop --model models/mf --k 10 \\
      --out audits/first --attributes gender,age_band,region,gender*age_band
  python -m fairaudit audit --data sample_data --recommendations their_lists.csv --split random \\
      --model models/pop --k 10 --out audits/side-by-side
  python -m fairaudit audit --engine spark --spark-master local[2] --data lake/ \
      --recommendations lake/lists.parquet --test lake/test.parquet --out audits/at-scale
"""

_NEEDS_INPUT = (
    "audit needs --data and at least one --model or --recommendations (or --config with a previous audit.json)"
)
_NEEDS_TRUTH = (
    "--recommendations needs the ground truth: --test FILE (held-out interactions) or --split METHOD "
    "(the split of --data the other system was trained on), or a --model whose split is used"
)
_SPLIT_OPTION_ALONE = "{0} needs --split (it sets a parameter of the split)"
_FRACTION_FOR = "--test-fraction applies to --split random or cold_items, not {0}"
_NAMES_COUNT = "--name given {0} time(s) for {1} --recommendations file(s); give one name per file, or none"
_CHANGED = "{0} '{1}' has SHA-256 {2}, but the audit recorded {3}; the file changed since that audit"
_TRUTH_FILE = "test_file"
_BAD_PREVIOUS = "--config '{0}': {1}; expected the audit.json of an earlier audit"
_SPARK_NEEDS = (
    "--engine spark needs --data (a folder with interactions, users and items as Parquet or CSV), one "
    "--recommendations file or Parquet dataset and --test FILE"
)
_SPARK_ONLY_IMPORTED = "--engine spark audits imported lists only; {0} is not available with it"
_BAD_SPARK_CONF = "--spark-conf '{0}': expected KEY=VALUE, e.g. spark.executor.memory=4g"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit._choices import DEFAULT_PROBE_USERS, SPLIT_METHODS
    from fairaudit.cli._options import audit_default, audit_option, positive_int, probability, seed

    parser.add_argument("--data", help="dataset folder or file (as for `validate`)")
    parser.add_argument("--model", action="append", default=[], metavar="DIR", help="saved model folder (repeatable)")
    parser.add_argument(
        "--recommendations", action="append", default=[], metavar="FILE",
        help="recommendation lists made by another system (CSV/Parquet: user_id, item_id, rank or score, "
        "optional model); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--name", action="append", default=[], help="system name of each --recommendations file without a model "
        "column (default: the file's stem); repeatable, one per file",
    )  # fmt: skip
    truth = parser.add_mutually_exclusive_group()
    truth.add_argument("--test", metavar="FILE", help="held-out interactions the imported lists are judged on")
    truth.add_argument("--split", choices=SPLIT_METHODS, help="split of --data the imported lists are judged on")
    parser.add_argument("--split-seed", type=seed, help="seed of --split (default 0, as `train`)")
    parser.add_argument(
        "--test-fraction", type=probability, help="test share of --split random (default 0.2, as `train`) or "
        "cold-item share of cold_items (default 0.1)",
    )  # fmt: skip
    parser.add_argument("--out", required=True, metavar="AUDIT_DIR", help="folder to write the audit to")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing audit folder --out (refused otherwise)")
    parser.add_argument("--config", metavar="AUDIT_JSON", help="re-use the config, data and models of an earlier audit")
    parser.add_argument("--k", type=audit_option("k"), default=audit_default("k"), help="list length K (default %(default)s)")
    parser.add_argument(
        "--attributes",
        help="comma-separated user attributes and intersections, e.g. gender,age_band,gender*age_band "
        "(default: every categorical user attribute plus gender*age_band)",
    )
    parser.add_argument(
        "--bootstrap", type=audit_option("bootstrap_rounds"), default=audit_default("bootstrap_rounds"),
        help="bootstrap rounds and permutations (default %(default)s)",
    )  # fmt: skip
    parser.add_argument("--seed", type=audit_option("seed"), default=audit_default("seed"), help="resampling seed (default %(default)s)")
    parser.add_argument(
        "--min-group-size", type=audit_option("min_group_size"), default=audit_default("min_group_size"),
        help="flag groups smaller than this (default %(default)s)",
    )  # fmt: skip
    parser.add_argument("--include-small-groups", action="store_true", help="test gaps of flagged groups too")
    parser.add_argument(
        "--alpha", type=audit_option("alpha"), default=audit_default("alpha"),
        help="significance level and 1 - CI level (default %(default)s)",
    )  # fmt: skip
    parser.add_argument("--no-embeddings", action="store_true", help="skip intra-list diversity from LLM embeddings")
    parser.add_argument("--explain", action="store_true", help="add SHAP gap drivers and counterfactual probes")
    parser.add_argument(
        "--by-period", metavar="PERIOD", type=period_option,
        help="also audit per time window (month, week or N-days; models re-trained on the past of each window): "
        "period_metrics.csv, period_trends.csv, exposure_drift.csv (docs/dynamics.md)",
    )  # fmt: skip
    parser.add_argument(
        "--probe-users", type=positive_int, default=DEFAULT_PROBE_USERS,
        help="users probed per model and attribute (%(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--engine", choices=("pandas", "spark"), default="pandas",
        help="pandas: in this process (default); spark: imported lists audited in Apache Spark, for logs too "
        "large for one machine (needs --data with interactions/users/items Parquet, one --recommendations "
        "and --test; see docs/spark.md)",
    )  # fmt: skip
    parser.add_argument(
        "--spark-master", default="local[*]", metavar="URL",
        help="Spark master of --engine spark: local[*], local[N], spark://HOST:7077, yarn (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--spark-conf", action="append", default=[], metavar="KEY=VALUE",
        help="a Spark setting of --engine spark, e.g. spark.executor.memory=4g (repeatable)",
    )  # fmt: skip


def _display_names(dirs: list[str]) -> list[str]:
    """Folder names, made unique with ``-2``, ``-3`` suffixes.

    >>> _display_names(["a/pop", "b/pop", "c/mf"])
    ['pop', 'pop-2', 'mf']
    """
    names: list[str] = []
    for path in dirs:
        base = Path(path).resolve().name or "model"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def _unique(name: str, taken) -> str:
    """``name``, or ``name-2``, ``name-3`` ... when taken.

    >>> _unique("pop", ["pop"])
    'pop-2'
    """
    out, n = name, 1
    while out in taken:
        n += 1
        out = f"{name}-{n}"
    return out


def previous_config(path: str) -> dict:
    """The ``config`` mapping of an earlier audit's ``audit.json``, checked against the audit schema.

    Raises ``ValueError`` naming the file and the bad keys (a file that cannot be used: exit status 1).
    """
    from fairaudit.pipeline import audit_problems

    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(_BAD_PREVIOUS.format(path, f"not valid JSON ({err})")) from err
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise ValueError(_BAD_PREVIOUS.format(path, "expected a JSON object with a 'config' mapping"))
    previous = meta["config"]
    problems = audit_problems({k: v for k, v in previous.items() if k not in ("split", "data")}, where="config")
    if problems:
        raise ValueError(_BAD_PREVIOUS.format(path, "; ".join(problems)))
    if not isinstance(previous.get("data") or {}, dict):
        raise ValueError(_BAD_PREVIOUS.format(path, "config.data: expected a mapping"))
    return previous


def _check_split_options(args: argparse.Namespace) -> None:
    """Option combinations refused before anything is loaded (exit status 2)."""
    from fairaudit.cli._options import UsageError

    for option, value in (("--split-seed", args.split_seed), ("--test-fraction", args.test_fraction)):
        if value is not None and not args.split:
            raise UsageError(_SPLIT_OPTION_ALONE.format(option))
    if args.test_fraction is not None and args.split == "temporal":
        raise UsageError(_FRACTION_FOR.format(args.split))
    if args.name and len(args.name) != len(args.recommendations):
        raise UsageError(_NAMES_COUNT.format(len(args.name), len(args.recommendations)))


def ground_truth(args: argparse.Namespace, dataset, models: dict, say) -> tuple[object | None, dict | None]:
    """The split imported lists are judged on, and its ``audit.json`` record (``config.data.ground_truth``).

    ``--test FILE``; ``--split`` (defaults of ``train``); else the models' split (``None``: the service
    finds it). Warnings of the test file are printed through ``say``.
    """
    from fairaudit.data import file_sha256, load_test_split, make_split

    if args.test:
        split, warnings = load_test_split(args.test, dataset)
        for issue in warnings:
            say(str(issue))
        path = str(Path(args.test).resolve())
        return split, {"kind": _TRUTH_FILE, "path": path, "sha256": file_sha256(args.test)}
    if args.split:
        fraction = {"random": "test_fraction", "cold_items": "cold_fraction"}.get(args.split)
        params = {fraction: args.test_fraction} if fraction and args.test_fraction is not None else {}
        split = make_split(dataset, args.split, seed=args.split_seed or 0, **params)
        info = split.describe()
        return split, {"kind": "split", "method": info["method"], "seed": info["seed"], "params": info["params"]}
    if models:
        return None, {"kind": "model_split"}
    return None, None


def imported_models(files: list[str], names: list[str], dataset, split, k: int, taken, say) -> tuple[dict, list]:
    """An :class:`~fairaudit.models.ImportedRecommender` per system of every recommendations file, and their records.

    Display names are the systems' names (``model`` column, ``--name`` or the file stem), made
    unique against ``taken`` with ``-2``, ``-3``. Each file's warnings are printed through ``say``.
    """
    from fairaudit.data import file_sha256, load_recommendations
    from fairaudit.models import ImportedRecommender

    models, records, taken = {}, [], list(taken)
    for i, path in enumerate(files):
        name = names[i] if names else None
        frame, warnings = load_recommendations(path, dataset, split=split, k=k, name=name)
        for issue in warnings:
            say(str(issue))
        sha256, source = file_sha256(path), str(Path(path).resolve())
        systems = {}
        for system in dict.fromkeys(frame["model"]):
            display = _unique(str(system), taken)
            taken.append(display)
            systems[display] = str(system)
            models[display] = ImportedRecommender.from_recommendations(
                frame, dataset, split, system=system, source=source, sha256=sha256
            )
        records.append({"path": source, "sha256": sha256, "name": name, "systems": systems})
    return models, records


def _verify_recorded(records: list[dict], truth: dict | None) -> None:
    """Refuse (``ValueError``, exit 1) recorded imported files whose SHA-256 changed since the audit."""
    from fairaudit.data import file_sha256

    files = [("recommendations file", r["path"], r["sha256"]) for r in records]
    if truth and truth.get("kind") == _TRUTH_FILE:
        files.append(("test file", truth["path"], truth["sha256"]))
    for what, path, recorded in files:
        got = file_sha256(path)
        if got != recorded:
            raise ValueError(_CHANGED.format(what, path, got, recorded))


def _spark_conf(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as a mapping (``UsageError`` naming a malformed one).

    >>> _spark_conf(["spark.executor.memory=4g"])
    {'spark.executor.memory': '4g'}
    """
    from fairaudit.cli._options import UsageError

    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(_BAD_SPARK_CONF.format(pair))
        conf[key.strip()] = value.strip()
    return conf


def _run_spark(args: argparse.Namespace, say) -> int:
    """``audit --engine spark``: imported lists on a Spark cluster (``fairaudit.spark``)."""
    from fairaudit.audit import AuditConfig
    from fairaudit.cli._options import UsageError, text_list

    for option, given in (("--model", args.model), ("--split", args.split), ("--config", args.config),
                          ("--explain", args.explain)):  # fmt: skip
        if given:
            raise UsageError(_SPARK_ONLY_IMPORTED.format(option))
    if not args.data or len(args.recommendations) != 1 or not args.test:
        raise UsageError(_SPARK_NEEDS)
    conf = _spark_conf(args.spark_conf)
    from fairaudit.spark import load_inputs, run_spark_audit, spark_session

    config = AuditConfig(
        k=args.k, attributes=tuple(text_list(args.attributes)) or None if args.attributes else None,
        bootstrap_rounds=args.bootstrap, seed=args.seed, min_group_size=args.min_group_size,
        include_small_groups=args.include_small_groups, alpha=args.alpha, embedding_diversity=False,
    )  # fmt: skip
    from pyspark.sql import SparkSession

    running = SparkSession.getActiveSession()  # a session of the caller (tests, notebooks) is used and left running
    spark = spark_session(args.spark_master, conf=conf)
    try:
        inputs = load_inputs(spark, args.data, args.recommendations[0], args.test,
                             name=args.name[0] if args.name else None)  # fmt: skip
        result = run_spark_audit(inputs, config, args.out, overwrite=args.overwrite, progress=say)
    finally:
        if running is None:
            spark.stop()
    _print_summary(result, result.config, Path(args.out))
    return 0


def _print_summary(result, config, out: Path) -> None:
    """The audit id, the number of significant gaps and the five largest relative ones."""
    import numpy as np

    gaps = result.gaps
    significant = gaps[gaps["p_adjusted"] < config.alpha]
    print(f"Audit {result.meta['audit_id']} written to {out}")
    print(f"{len(gaps)} gaps tested, {len(significant)} significant after Benjamini-Hochberg (alpha {config.alpha})")
    relative = (significant["ratio"] - 1).abs().replace(np.inf, np.nan).sort_values(ascending=False, na_position="last")
    for _, row in significant.loc[relative.index[:5]].iterrows():  # largest relative gaps first
        print(f"  [{row['model']}] {row['direction']}")


def run(args: argparse.Namespace) -> int:
    from fairaudit.audit import AuditConfig, audit_split, plain_attributes
    from fairaudit.cli._options import UsageError, check_values, text_list
    from fairaudit.models import load_model
    from fairaudit.service import DataSource, ExplainOptions, audit_models

    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    _check_split_options(args)
    if getattr(args, "engine", "pandas") == "spark":
        return _run_spark(args, say)
    recorded_files, recorded_truth = [], None
    if args.config:
        previous = previous_config(args.config)
        config = AuditConfig.from_dict(previous)
        recorded = previous.get("data") or {}
        source = DataSource.from_dict(recorded)
        if args.data:  # the same config on data found elsewhere: the recorded column mapping still applies
            source = DataSource("folder", path=args.data, mapping=source.mapping)
        model_dirs = dict(zip(_display_names(args.model), args.model)) if args.model else recorded.get("models") or {}
        if not args.recommendations:
            recorded_files = list(recorded.get("recommendations") or [])
            recorded_truth = recorded.get("ground_truth")
        if not model_dirs and not recorded_files and not args.recommendations:
            raise UsageError(_NEEDS_INPUT)
    else:
        if not args.data or not (args.model or args.recommendations):
            raise UsageError(_NEEDS_INPUT)
        if args.recommendations and not (args.model or args.test or args.split):
            raise UsageError(_NEEDS_TRUTH)
        attributes = tuple(text_list(args.attributes)) or None if args.attributes else None
        config = AuditConfig(
            k=args.k, attributes=attributes, bootstrap_rounds=args.bootstrap, seed=args.seed,
            min_group_size=args.min_group_size, include_small_groups=args.include_small_groups, alpha=args.alpha,
            embedding_diversity=not args.no_embeddings,
        )  # fmt: skip
        source, model_dirs = DataSource("folder", path=args.data), dict(zip(_display_names(args.model), args.model))
    dataset = source.load()
    if not args.config and config.attributes:
        columns = [c for c in dataset.users.columns if c != "user_id"]
        check_values("--attributes", plain_attributes(config.attributes), columns, "user attributes")
    models = {name: load_model(path, dataset) for name, path in model_dirs.items()}
    record = {**source.to_dict(), "models": {name: str(path) for name, path in model_dirs.items()}}
    split = None
    if recorded_files:
        # A re-run of imported lists: the same files (fingerprints verified) on the recorded split.
        _verify_recorded(recorded_files, recorded_truth)
        split = audit_split(dataset, config)
        files, names = [r["path"] for r in recorded_files], [r.get("name") for r in recorded_files]
        truth = recorded_truth
    else:
        split, truth = ground_truth(args, dataset, models, say) if args.recommendations else (None, None)
        files, names = args.recommendations, args.name
    if files:
        if split is None and not models:
            raise UsageError(_NEEDS_TRUTH)
        if split is None:  # lists judged on the split of the --model(s) they are audited with
            from fairaudit.audit import common_split

            split = common_split(dataset, models)
        imported, records = imported_models(files, names, dataset, split, config.k, models, say)
        models.update(imported)
        record.update(recommendations=records, ground_truth=truth)
    config = AuditConfig.from_dict({**config.to_dict(), "data": record})
    out = Path(args.out)
    result = audit_models(
        dataset, models, config, explain=ExplainOptions(args.probe_users) if args.explain else None, out=out,
        overwrite=args.overwrite, progress=say, split=split,
    )  # fmt: skip
    for name, reason in ((result.explanations or {}).get("not_probed") or {}).items():
        say(f"note: {reason}")
    _print_summary(result, config, out)
    if args.by_period:
        from fairaudit.dynamics import add_periods_to_audit

        add_periods_to_audit(out, dataset, models, period=args.by_period, progress=say)
        say(f"audit by {args.by_period} written to {out} (period_metrics.csv, period_trends.csv, exposure_drift.csv)")
    return 0


def period_option(text: str) -> str:
    """An argparse type: ``month``, ``week`` or ``N-days`` (``fairaudit.dynamics.check_period``)."""
    from fairaudit._choices import check_period

    try:
        return check_period(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
