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

Re-run an audit exactly:  python -m fairaudit audit --config OLD_DIR/audit.json --out NEW_DIR

Example:
  python -m fairaudit audit --data sample_data --model models/pop --model models/mf --k 10 \\
      --out audits/first --attributes gender,age_band,region,gender*age_band
"""

_NEEDS_INPUT = "audit needs --data and at least one --model (or --config with a previous audit.json)"
_BAD_PREVIOUS = "--config '{0}': {1}; expected the audit.json of an earlier audit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit.cli._options import audit_default, audit_option, positive_int
    from fairaudit.service import ExplainOptions

    parser.add_argument("--data", help="dataset folder or file (as for `validate`)")
    parser.add_argument("--model", action="append", default=[], metavar="DIR", help="saved model folder (repeatable)")
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
        "--probe-users", type=positive_int, default=ExplainOptions().probe_users,
        help="users probed per model and attribute (%(default)s)",
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


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from fairaudit.audit import AuditConfig, plain_attributes
    from fairaudit.cli._options import UsageError, check_values, text_list
    from fairaudit.models import load_model
    from fairaudit.service import DataSource, ExplainOptions, audit_models

    if args.config:
        previous = previous_config(args.config)
        config = AuditConfig.from_dict(previous)
        recorded = previous.get("data") or {}
        source = DataSource.from_dict(recorded)
        if args.data:  # the same config on data found elsewhere: the recorded column mapping still applies
            source = DataSource("folder", path=args.data, mapping=source.mapping)
        model_dirs = dict(zip(_display_names(args.model), args.model)) if args.model else recorded.get("models")
        if not model_dirs:
            raise UsageError(_NEEDS_INPUT)
    else:
        if not args.data or not args.model:
            raise UsageError(_NEEDS_INPUT)
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
    config = AuditConfig.from_dict({**config.to_dict(), "data": record})
    out = Path(args.out)
    result = audit_models(
        dataset, models, config, explain=ExplainOptions(args.probe_users) if args.explain else None, out=out,
        overwrite=args.overwrite, progress=lambda line: print(line, file=sys.stderr),
    )  # fmt: skip
    gaps = result.gaps
    significant = gaps[gaps["p_adjusted"] < config.alpha]
    print(f"Audit {result.meta['audit_id']} written to {out}")
    print(f"{len(gaps)} gaps tested, {len(significant)} significant after Benjamini-Hochberg (alpha {config.alpha})")
    relative = (significant["ratio"] - 1).abs().replace(np.inf, np.nan).sort_values(ascending=False, na_position="last")
    for _, row in significant.loc[relative.index[:5]].iterrows():  # largest relative gaps first
        print(f"  [{row['model']}] {row['direction']}")
    return 0
