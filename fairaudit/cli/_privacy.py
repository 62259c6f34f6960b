"""``python -m fairaudit privacy``: membership-inference audit by user group, or a privacy-safe release of an audit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "membership-inference risk by user group (mia.csv), or an epsilon-DP release of an audit's group table"
DESCRIPTION = """\
Membership inference (--model ... --data ... --out OUT):
  For each --model, its training interactions (members) and held-out interactions (non-members) of
  the same users are scored by the model; an attacker thresholds a statistic of the score
  (--attack rank: the item's percentile in the user's ranking, default; score: the raw score;
  loss: log-softmax of the user's scores). AUC = probability that a member outranks a non-member
  (0.5: the scores tell nothing about membership, under a random split; docs/privacy.md), overall
  and per user group, with bootstrap 95% CIs over users; groups under --min-group-size are flagged.
  Writes OUT/mia.csv (model, attack, attribute, group, n_users, n_members, n_non_members, auc,
  ci_low, ci_high, flagged) and OUT/privacy.json (each model's DP record: epsilon spent, delta, ...).
  When OUT is an audit folder, mia.csv is added to it (and to its PDF) under the audit's model
  names (rows of models not in this run are kept); the models' DP records are already in its audit.json.

Private release (--export AUDIT_DIR --epsilon E --out RELEASE_DIR):
  Releases the audit's per-group means of accuracy metrics (--metrics, default ndcg) under
  epsilon-differential privacy (user level, Laplace noise on counts and sums, budget split over
  every released model x attribute x metric), suppresses groups whose noisy count is under the
  audit's minimum group size, and writes RELEASE_DIR/group_metrics.csv, RELEASE_DIR/release.json
  (the budget, mechanism and sensitivity) and, with --pdf, RELEASE_DIR/release.pdf. The audit
  folder is not changed. The noise seed (--seed) is never written: keep it secret.

Examples:
  python -m fairaudit privacy --model models/llm --model models/llm-dp1 --data sample_data --out audits/run1
  python -m fairaudit privacy --export audits/run1 --epsilon 1 --attributes gender,activity --out release --pdf
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fairaudit._choices import MEMBERSHIP_ATTACKS as ATTACKS
    from fairaudit.cli._options import bounded_float, positive_int, seed

    parser.add_argument("--model", action="append", metavar="DIR", help="saved model folder (repeat for several)")
    parser.add_argument("--name", action="append", metavar="NAME",
                        help="display name of each --model, in order (default: the folder names); with --export: "
                             "the audit's models to release (default: all)")  # fmt: skip
    parser.add_argument("--data", metavar="PATH", help="dataset folder or file the models were trained on")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (an audit folder gets mia.csv)")
    parser.add_argument("--attributes", metavar="SPECS",
                        help="comma-separated user attribute specs, e.g. gender,activity,gender*age_band "
                             "(default: the data's categorical attributes and default intersections)")  # fmt: skip
    parser.add_argument("--attack", choices=ATTACKS, default="rank", help="attack statistic (default rank)")
    parser.add_argument("--bootstrap", type=positive_int, default=200, help="bootstrap rounds (default 200)")
    parser.add_argument("--seed", type=seed, help="resampling seed (default: an audit folder's, else 0); with "
                        "--export: the noise seed (default: a fresh one, never recorded)")  # fmt: skip
    parser.add_argument("--min-group-size", type=positive_int, help="smaller groups are flagged / suppressed "
                        "(default: the audit folder's, else 30)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier mia.csv or release")
    parser.add_argument("--export", metavar="AUDIT_DIR", help="release AUDIT_DIR's group table privately instead")
    parser.add_argument("--epsilon", type=bounded_float(gt=0), help="--export: the release's privacy budget")
    parser.add_argument("--metrics", default="ndcg", help="--export: comma-separated accuracy metrics (default ndcg)")
    parser.add_argument("--pdf", action="store_true", help="--export: also write RELEASE_DIR/release.pdf")


def run(args: argparse.Namespace) -> int:
    from fairaudit.cli._options import UsageError

    if args.export:
        if args.model or args.data:
            raise UsageError("--export releases an audit folder; give it without --model/--data")
        if args.epsilon is None:
            raise UsageError("--export needs --epsilon (the privacy budget of the release)")
        return _run_export(args)
    if not args.model or not args.data:
        raise UsageError("membership inference needs --model and --data (or use --export AUDIT_DIR)")
    return _run_mia(args)


def _run_mia(args: argparse.Namespace) -> int:
    import dataclasses

    import pandas as pd

    from fairaudit.audit import TABLES, AuditResult, is_audit_folder, split_for_model
    from fairaudit.cli._options import UsageError, check_values, text_list
    from fairaudit.data import check_file_target, load_dataset
    from fairaudit.metrics import MIN_GROUP_SIZE
    from fairaudit.models import load_model
    from fairaudit.privacy import (
        MIA_RECORDS,
        NOT_EXCHANGEABLE,
        membership_inference,
        membership_record,
        split_is_exchangeable,
        write_membership,
    )

    out = Path(args.out)
    audit_folder = is_audit_folder(out)
    path, record_path = out / TABLES["mia"].file, out / MIA_RECORDS
    if not audit_folder:
        check_file_target(path, overwrite=args.overwrite)
        check_file_target(record_path, overwrite=args.overwrite)
    elif path.is_file() and not args.overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")
    names = list(args.name or [Path(m).name for m in args.model])
    if len(names) != len(args.model) or len(set(names)) != len(names):
        raise UsageError(f"--name must give one distinct name per --model ({len(args.model)}); got {names}")
    dataset = load_dataset(args.data)
    specs = text_list(args.attributes)
    if specs is not None:
        check_values("--attributes", [p for s in specs for p in s.split("*")],
                     [c for c in dataset.users.columns if c != "user_id"], "user attributes")  # fmt: skip
    audited = {}  # fingerprint -> the audit's name of that model: mia.csv speaks the audit's model names
    seed, min_size = args.seed, args.min_group_size
    if audit_folder:  # the audit's seed and minimum group size unless given
        existing = AuditResult.read(out)
        seed = existing.config.seed if seed is None else seed
        min_size = existing.config.min_group_size if min_size is None else min_size
        if not args.name:
            audited = {info.get("fingerprint"): key for key, info in (existing.meta.get("models") or {}).items()}
    tables, records = [], {}
    for name, folder in zip(names, args.model):
        model = load_model(folder, dataset)
        name = audited.get(model.fingerprint(), name)
        split = split_for_model(dataset, model)
        exchangeable = split_is_exchangeable(split.describe())
        if not exchangeable:
            print(f"warning: {name}: " + NOT_EXCHANGEABLE.format(split.describe()["method"]), file=sys.stderr)
        print(f"{name}: membership inference ({args.attack} attack)", file=sys.stderr)
        tables.append(membership_inference(
            model, dataset, split, name=name, attributes=specs, attack=args.attack, rounds=args.bootstrap,
            seed=seed or 0, min_group_size=min_size or MIN_GROUP_SIZE,
        ))  # fmt: skip
        records[name] = membership_record(model, folder, split.describe())
    table = pd.concat(tables, ignore_index=True)
    if audit_folder:
        result = AuditResult.read(out)
        if result.mia is not None:  # other models' rows stay; this run's models are replaced
            table = pd.concat([result.mia[~result.mia["model"].isin(table["model"])], table], ignore_index=True)
        dataclasses.replace(result, mia=table).write(out, overwrite=True)
    else:
        out.mkdir(parents=True, exist_ok=True)
        settings = {k: args.__dict__[k] for k in ("attack", "bootstrap", "seed", "min_group_size", "attributes")}
        write_membership(out, table, records, settings, overwrite=args.overwrite)
    print(f"Membership inference ({args.attack} attack): AUC 0.5 = members and held-out interactions look alike")
    for name, info in records.items():
        overall = table[(table["model"] == name) & (table["attribute"] == "all")].iloc[0]
        print(f"  {name}: AUC {overall.auc:.3f} [{overall.ci_low:.3f}, {overall.ci_high:.3f}] over "
              f"{overall.n_users} users; {info['summary']}")  # fmt: skip
        rows = table[(table["model"] == name) & (table["attribute"] != "all") & ~table["flagged"]]
        if len(rows):
            top = rows.loc[rows["auc"].idxmax()]
            print(f"    highest-risk group: {top.attribute}={top.group} AUC {top.auc:.3f} "
                  f"[{top.ci_low:.3f}, {top.ci_high:.3f}]")  # fmt: skip
    print(f"wrote {path}")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from fairaudit.cli._options import UsageError, text_list
    from fairaudit.privacy import MANIFEST, RELEASE_TABLE, export_private

    out = Path(args.out)
    try:
        release = export_private(
            args.export, out, epsilon=args.epsilon, metrics=text_list(args.metrics) or ["ndcg"],
            attributes=text_list(args.attributes), models=args.name, min_group_size=args.min_group_size,
            seed=args.seed, overwrite=args.overwrite,
        )  # fmt: skip
    except ValueError as err:
        if type(err) is ValueError:  # a bad metric, attribute or model name; folder errors keep their own type
            raise UsageError(str(err)) from None
        raise
    manifest = release.manifest
    print(f"Private release of {args.export}: epsilon {manifest['epsilon']:g} (pure DP, user level), Laplace "
          f"scale {manifest['laplace_scale']:g} on every count and sum; {manifest['n_suppressed']} of "
          f"{len(release.table)} rows suppressed (noisy count < {manifest['min_group_size']})")  # fmt: skip
    if args.pdf:
        from fairaudit.report import build_release_report

        build_release_report(out, out / "release.pdf")
        print(f"wrote {out / 'release.pdf'}")
    print(f"wrote {out / RELEASE_TABLE} and {out / MANIFEST}")
    return 0
