"""Run an attack at several strengths, audit every attacked model against the clean one, by group.

Every number comes from the audit engine (:func:`fairaudit.audit.run_audit`: the clean and the
attacked models audited together on the same test users) and the paired comparison
(:func:`fairaudit.compare.compare_models`: attacked minus clean, per user group, with bootstrap CIs,
and the change of each group's gap vs the rest). Per-user columns added for the attack:

- ``target_exposure``: DCG exposure share of the target items in the user's list (shilling);
- ``target_hit``: 1 when a target item is in the user's top-K (the mean is the hit ratio);
- ``exposure:<item group>``: DCG exposure share of each group of ``item_attribute``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit._choices import ATTACKS, ROBUSTNESS_ROUNDS, AttackKind, Noise
from fairaudit.audit import ALL, AuditConfig, AuditResult, attribute_groups, run_audit, train_derived_users
from fairaudit.compare import add_comparison, compare_models
from fairaudit.data import Dataset, Split, check_folder_target, read_csv, replacing_folder, write_csv
from fairaudit.metrics import ACCURACY_METRICS, MIN_GROUP_SIZE, exposure_shares, item_groups, position_weights
from fairaudit.models import PGD_STEPS, Recommender, Side, attacked_model, create_model
from fairaudit.robustness._detect import detection_quality, shilling_scores
from fairaudit.robustness._shilling import ShillingAttack, choose_targets, inject_profiles

CLEAN = "clean"
TARGET_EXPOSURE, TARGET_HIT = "target_exposure", "target_hit"
EXPOSURE_PREFIX = "exposure:"
#: The long result table (``robustness.csv`` in the audit folder), one row per attacked model x slice x metric.
ROBUSTNESS_COLUMNS = (
    "attack", "strength", "model", "attribute", "group", "quantity", "metric", "n_users", "clean", "attacked",
    "difference", "ci_low", "ci_high", "significant",
)  # fmt: skip
#: One row per attacked model: the headline figures (:func:`summarise`).
SUMMARY_COLUMNS = (
    "attack", "strength", "model", "metric", "clean", "attacked", "drop", "drop_ci_low", "drop_ci_high",
    "worst_attribute", "worst_group", "worst_group_drop", "worst_group_drop_ci_low", "worst_group_drop_ci_high",
    "target_exposure_lift", "target_exposure_lift_ci_low", "target_exposure_lift_ci_high",
    "hit_ratio_clean", "hit_ratio_attacked", "largest_gap_change_attribute", "largest_gap_change_group",
    "largest_gap_change", "largest_gap_change_ci_low", "largest_gap_change_ci_high",
    "exposure_shift_group", "exposure_shift", "exposure_shift_ci_low", "exposure_shift_ci_high",
    "detector_precision", "detector_recall",
)  # fmt: skip
SUMMARY_FILE = "summary.csv"
#: Metrics of the ``quantity="detection"`` rows: the shilling detector's precision and recall on the fake users.
DETECTOR_METRICS = ("detector_precision", "detector_recall")
AUDIT_FOLDER = "audit"
POISONED_FOLDER = "poisoned"
#: Each attacked model's injected profiles (shilling), under ``poisoned/<model>/``.
PROFILES_FILE = "fake_profiles.csv"

_BAD_ATTACK = "attack must be one of {0}, got {1!r}"
_NO_STRENGTHS = "strengths must list at least one value >= 0, e.g. 0,0.01,0.03"
_SHARE_ABOVE_ONE = "a shilling strength is the share of fake users, in [0, 1]; got {0}"
_NOT_A_RUN = "'{0}' holds no robustness run (no {1}/ folder); write one with `python -m fairaudit robustness --out`"
_NO_ROBUSTNESS = "'{0}' is an audit folder without robustness.csv; it was not written by a robustness run"


@dataclasses.dataclass(frozen=True)
class RobustnessResult:
    """An audit of the clean and attacked models (its ``robustness`` field = the long table), plus the summary,
    the shilling targets and each attacked model's injected profiles (``profiles``: model name -> interactions)."""

    audit: AuditResult
    summary: pd.DataFrame
    targets: tuple[str, ...]
    profiles: Mapping[str, pd.DataFrame] = dataclasses.field(default_factory=dict)


def attack_name(attack: str, strength: float) -> str:
    """Display name of one attacked model.

    >>> attack_name("pgd", 0.1)
    'pgd@0.1'
    """
    return f"{attack}@{strength:g}"


def _target_columns(recs: pd.DataFrame, targets: Sequence[str], k: int) -> pd.DataFrame:
    """Per user: DCG exposure share of the targets in the list and whether one is in the top-K."""
    recs = recs[recs["rank"] <= k]
    weight = position_weights(recs["rank"].to_numpy(), browsing="dcg")
    is_target = recs["item_id"].astype(str).isin(pd.Index(targets)).to_numpy()
    frame = pd.DataFrame({"user_id": recs["user_id"].astype(str).to_numpy(), "w": weight, "t": weight * is_target,
                          "hit": is_target.astype(float)})  # fmt: skip
    sums = frame.groupby("user_id").agg(w=("w", "sum"), t=("t", "sum"), hit=("hit", "max"))
    return pd.DataFrame({TARGET_EXPOSURE: sums["t"] / sums["w"], TARGET_HIT: sums["hit"]})


def _exposure_columns(recs: pd.DataFrame, test: pd.DataFrame, membership: pd.DataFrame) -> pd.DataFrame:
    """Per user: DCG exposure share of each item group (one column per group)."""
    users = pd.Index(recs["user_id"].astype(str).unique())
    shares = exposure_shares(recs, test, membership, user_groups=pd.Series(users, index=users), browsing="dcg")
    wide = shares.pivot(index="user_group", columns="item_group", values="exposure_share")
    wide.columns = [f"{EXPOSURE_PREFIX}{c}" for c in wide.columns]
    return wide.rename_axis("user_id")


def _attacked_models(
    dataset: Dataset, split: Split, model: Recommender, attack: AttackKind, strengths: Sequence[float], *,
    shilling: ShillingAttack, side: Side, noise: Noise, steps: int, k: int, seed: int, say: Callable[[str], None],
) -> tuple[dict[str, Recommender], dict[str, tuple[str, float]], dict[str, dict], dict[str, pd.DataFrame]]:
    """The attacked models by name, each name's (attack, strength), detector figures and fake profiles."""
    models, labels, detection, profiles = {}, {}, {}, {}
    for strength in strengths:
        if attack == "shilling":
            name = attack_name(f"{shilling.kind}", strength)
            poisoning = inject_profiles(dataset, split, dataclasses.replace(shilling, share=strength))
            say(f"{name}: {len(poisoning.fake_users)} fake users; retraining {model.kind}")
            fitted = create_model(model.kind, **model.get_params()).fit(poisoning.dataset, poisoning.split)
            models[name], labels[name] = fitted, ("shilling", strength)
            if len(poisoning.fake_users):
                detection[name] = detection_quality(shilling_scores(poisoning.split.train), poisoning.fake_users)
            if len(poisoning.profiles):
                profiles[name] = poisoning.profiles
            continue
        kinds = [attack, noise] if attack in ("fgsm", "pgd") else [noise]
        for kind in kinds:
            name = attack_name(kind, strength)
            say(f"{name}: perturbing {side} vectors")
            models[name] = attacked_model(
                model, perturbation=kind, epsilon=strength, side=side, steps=steps, k=k, seed=seed, name=name
            ).fit(dataset, split)
            labels[name] = (kind if attack != "noise" else "noise", strength)
    return models, labels, detection, profiles


def run_robustness(
    dataset: Dataset,
    split: Split,
    model: Recommender,
    *,
    attack: AttackKind,
    strengths: Sequence[float],
    shilling: ShillingAttack | None = None,
    side: Side = "both",
    noise: Noise = "gaussian",
    steps: int = PGD_STEPS,
    k: int = 10,
    attributes: Sequence[str] | None = None,
    item_attribute: str = "popularity_tier",
    rounds: int = ROBUSTNESS_ROUNDS,
    seed: int = 0,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RobustnessResult:
    """Attack ``model`` at each strength and measure success and side effects by user and item group.

    Parameters
    ----------
    dataset, split : Dataset, Split
        Clean data; never modified (poisoned copies live in memory and, with ``out``, as the fake
        profiles under ``out/poisoned/``).
    model : Recommender
        The clean model, fitted on ``split`` (fitted here if not). Shilling re-trains its kind and
        parameters on the poisoned data; representation attacks need learned vectors (LLM, MF).
    attack : {"shilling", "fgsm", "pgd", "noise"}
        ``fgsm``/``pgd`` also audit ``noise`` at the same epsilon (the same-norm baseline).
    strengths : sequence of float
        Share of fake users (shilling) or relative epsilon (the others); 0 leaves the model as it is.
    shilling : ShillingAttack, optional
        Attack model and targets (default: bandwagon, :func:`choose_targets`).
    side, noise, steps, k
        Vectors perturbed (``user``, ``item``, ``both``), noise kind, PGD steps, list length K (also
        the attack's list length).
    attributes, item_attribute : optional
        User attribute specs of the audit (default: the audit's defaults) and item attribute of the
        exposure shares.
    rounds, seed : int
        Bootstrap rounds and seed (audit and paired comparisons).
    out : path, optional
        Writes ``out/audit/`` (audit folder with ``robustness.csv`` and the clean-vs-attacked
        comparison), ``out/summary.csv`` and ``out/poisoned/<model>/fake_profiles.csv``
        (:func:`write_robustness`; checked before any work).
    progress : callable, optional
        Receives a status line per step (:func:`robustness_steps` of them for a fitted model).
    """
    if attack not in ATTACKS:
        raise ValueError(_BAD_ATTACK.format(ATTACKS, attack))
    strengths = sorted(float(s) for s in strengths)
    if not strengths or min(strengths) < 0:
        raise ValueError(_NO_STRENGTHS)
    if attack == "shilling" and max(strengths) > 1:
        raise ValueError(_SHARE_ABOVE_ONE.format(max(strengths)))
    say = progress or (lambda _line: None)
    if out is not None:
        check_folder_target(out, overwrite=overwrite, is_ours=is_robustness_folder, kind="robustness folder")
    if not hasattr(model, "item_ids_"):
        say(f"fitting the clean model ({model.kind})")
        model.fit(dataset, split)
    targets: tuple[str, ...] = ()
    if attack == "shilling":
        shilling = shilling or ShillingAttack()
        if not shilling.targets:
            shilling = dataclasses.replace(shilling, targets=choose_targets(dataset, split))
        targets = shilling.targets
    start = time.perf_counter()
    attacked, labels, detection, profiles = _attacked_models(
        dataset, split, model, attack, strengths, shilling=shilling or ShillingAttack(), side=side, noise=noise,
        steps=steps, k=k, seed=seed, say=say,
    )  # fmt: skip
    say(f"attacks built in {time.perf_counter() - start:.1f}s; auditing")
    config = AuditConfig(
        k=k, attributes=tuple(attributes) if attributes is not None else None, item_attributes=(item_attribute,),
        bootstrap_rounds=rounds, seed=seed, browsing=("dcg",), embedding_diversity=False,
    )  # fmt: skip
    audit = run_audit(dataset, split, {CLEAN: model, **attacked}, config)
    membership = item_groups(dataset.items, item_attribute)
    frames = []
    for name in audit.models:
        recs = audit.recommendations[audit.recommendations["model"] == name]
        extra = _exposure_columns(recs, split.test, membership)
        if targets:
            extra = extra.join(_target_columns(recs, targets, k))
        frames.append(audit.user_metrics[audit.user_metrics["model"] == name].join(extra, on="user_id"))
    user_metrics = pd.concat(frames, ignore_index=True)
    users_table = train_derived_users(dataset, split)[0]
    groups = {spec: attribute_groups(users_table, spec) for spec in audit.attributes}
    metrics = [*ACCURACY_METRICS, *([TARGET_EXPOSURE, TARGET_HIT] if targets else []),
               *[c for c in user_metrics.columns if c.startswith(EXPOSURE_PREFIX)]]  # fmt: skip
    tables = []
    for name, (kind, strength) in labels.items():
        say(f"{name}: comparing with the clean model")
        table = compare_models(
            user_metrics, model_a=CLEAN, model_b=name, groups=groups, metrics=metrics, rounds=rounds, seed=seed,
            confidence=1 - config.alpha, min_group_size=config.min_group_size,
        )  # fmt: skip
        table = table.rename(columns={"model_b": "model", "a": "clean", "b": "attacked"})
        tables.append(table.assign(attack=kind, strength=strength))
        if name in detection:
            found = detection[name]
            tables.append(pd.DataFrame({
                "attack": kind, "strength": strength, "model": name, "attribute": ALL, "group": ALL,
                "quantity": "detection", "metric": list(DETECTOR_METRICS), "n_users": found["fake"],
                "clean": np.nan, "attacked": [found["precision"], found["recall"]], "difference": np.nan,
                "ci_low": np.nan, "ci_high": np.nan, "significant": False,
            }))  # fmt: skip
    robustness = pd.concat(tables, ignore_index=True)[list(ROBUSTNESS_COLUMNS)]
    robustness["n_users"] = robustness["n_users"].astype(int)
    audit = add_comparison(dataclasses.replace(audit, user_metrics=user_metrics), baseline=CLEAN)
    audit = dataclasses.replace(audit, robustness=robustness)
    audit.meta["robustness"] = {
        "attack": attack, "strengths": strengths, "targets": list(targets), "side": side, "noise": noise,
        "steps": steps, "item_attribute": item_attribute, "min_group_size": config.min_group_size,
        "shilling": dataclasses.asdict(shilling) if shilling is not None else None,
    }  # fmt: skip
    result = RobustnessResult(audit, summarise(robustness, min_group_size=config.min_group_size), targets, profiles)
    if out is not None:
        write_robustness(result, out, overwrite=overwrite)
    return result


def robustness_steps(attack: AttackKind, strengths: Sequence[float]) -> int:
    """Status lines :func:`run_robustness` reports for a fitted model and distinct ``strengths``: per attacked
    model one when it is built and one when it is compared with the clean model, and one for the audit.

    >>> robustness_steps("pgd", [0, 0.1])  # pgd and same-norm noise at each strength
    9
    """
    return 2 * len(strengths) * (2 if attack in ("fgsm", "pgd") else 1) + 1


def write_robustness(result: RobustnessResult, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write a robustness run to the folder ``out`` atomically (:func:`fairaudit.data.replacing_folder`).

    ``out/audit/`` (the audit folder, with ``robustness.csv``), ``out/summary.csv`` and
    ``out/poisoned/<model>/fake_profiles.csv``; other files already in ``out`` (the CLI's
    ``robustness.json``) are kept. :func:`read_robustness` reads it back.
    """
    with replacing_folder(out, overwrite=overwrite, is_ours=is_robustness_folder, kind="robustness folder",
                          replaced=(AUDIT_FOLDER, SUMMARY_FILE, POISONED_FOLDER)) as temporary:  # fmt: skip
        result.audit.write(temporary / AUDIT_FOLDER)
        write_csv(result.summary, temporary / SUMMARY_FILE)
        for name, frame in result.profiles.items():
            write_csv(frame, temporary / POISONED_FOLDER / name / PROFILES_FILE)
    return Path(out)


def read_robustness(folder: str | Path) -> RobustnessResult:
    """The robustness run in ``folder`` (written by :func:`write_robustness`, ``run_robustness(out=...)`` or
    ``python -m fairaudit robustness --out``).

    The summary is :func:`summarise` of the audit folder's ``robustness.csv`` (the table ``summary.csv``
    was written from), so its numbers and types are those :func:`run_robustness` returned.
    """
    folder = Path(folder)
    if not (folder / AUDIT_FOLDER).is_dir():
        raise FileNotFoundError(_NOT_A_RUN.format(folder, AUDIT_FOLDER))
    audit = AuditResult.read(folder / AUDIT_FOLDER)
    if audit.robustness is None:
        raise ValueError(_NO_ROBUSTNESS.format(folder / AUDIT_FOLDER))
    settings = audit.meta.get("robustness") or {}
    summary = summarise(audit.robustness, min_group_size=settings.get("min_group_size", MIN_GROUP_SIZE))
    profiles = {path.parent.name: read_csv(path, dtype={"user_id": str, "item_id": str})
                for path in sorted((folder / POISONED_FOLDER).glob(f"*/{PROFILES_FILE}"))}  # fmt: skip
    return RobustnessResult(audit, summary, tuple(settings.get("targets") or ()), profiles)


def is_robustness_folder(directory: str | Path) -> bool:
    """Whether ``directory`` holds a robustness run (its ``summary.csv`` or ``audit/``).

    >>> import tempfile
    >>> is_robustness_folder(tempfile.mkdtemp())
    False
    """
    directory = Path(directory)
    return (directory / SUMMARY_FILE).is_file() or (directory / AUDIT_FOLDER).is_dir()


def summarise(robustness: pd.DataFrame, metric: str = "ndcg", *, min_group_size: int = MIN_GROUP_SIZE) -> pd.DataFrame:
    """One row per attacked model (:data:`SUMMARY_COLUMNS`) from the long table.

    ``drop`` = clean - attacked ``metric`` (positive = accuracy lost) with its paired CI; the worst
    group is the one with the largest drop among groups of at least ``min_group_size`` users; ``target_exposure_lift`` = attacked - clean target
    exposure share; the largest gap change is the group gap (vs the rest) on ``metric`` that moved
    most; the exposure shift is the item group whose DCG exposure share moved most (attacked - clean);
    detector precision/recall only for shilling.
    """
    rows = []
    for (attack, strength, name), part in robustness.groupby(["attack", "strength", "model"], sort=False):
        def pick(**where):
            mask = np.ones(len(part), dtype=bool)
            for column, value in where.items():
                mask &= (part[column] == value).to_numpy()
            return part[mask]

        overall = pick(attribute=ALL, quantity="value", metric=metric).iloc[0]
        groups = pick(quantity="value", metric=metric)
        groups = groups[(groups["attribute"] != ALL) & (groups["n_users"] >= min_group_size)]
        worst = groups.loc[groups["difference"].idxmin()] if len(groups) else None
        lift = pick(attribute=ALL, quantity="value", metric=TARGET_EXPOSURE)
        hit = pick(attribute=ALL, quantity="value", metric=TARGET_HIT)
        gaps = pick(quantity="gap", metric=metric)
        moved = gaps.loc[gaps["difference"].abs().idxmax()] if len(gaps) else None
        shifts = pick(attribute=ALL, quantity="value")
        shifts = shifts[shifts["metric"].str.startswith(EXPOSURE_PREFIX)]
        shifted = shifts.loc[shifts["difference"].abs().idxmax()] if len(shifts) else None
        found = pick(quantity="detection").set_index("metric")["attacked"]
        nan3 = (np.nan, np.nan, np.nan)
        rows.append((
            attack, strength, name, metric, overall["clean"], overall["attacked"], -overall["difference"],
            -overall["ci_high"], -overall["ci_low"],
            *((worst["attribute"], worst["group"], -worst["difference"], -worst["ci_high"], -worst["ci_low"])
              if worst is not None else ("", "", *nan3)),
            *(tuple(lift[["difference", "ci_low", "ci_high"]].iloc[0]) if len(lift) else nan3),
            *((hit["clean"].iloc[0], hit["attacked"].iloc[0]) if len(hit) else (np.nan, np.nan)),
            *((moved["attribute"], moved["group"], moved["difference"], moved["ci_low"], moved["ci_high"])
              if moved is not None else ("", "", *nan3)),
            *((shifted["metric"].removeprefix(EXPOSURE_PREFIX), shifted["difference"], shifted["ci_low"],
               shifted["ci_high"]) if shifted is not None else ("", *nan3)),
            *(found.get(name, np.nan) for name in DETECTOR_METRICS),
        ))  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    numeric = frame.select_dtypes("number").columns
    frame[numeric] = frame[numeric] + 0.0  # -0.0 -> 0.0
    return frame


def defence_gain(
    plain: RobustnessResult, defended: RobustnessResult, model: str, *, metric: str = "ndcg", rounds: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """How much a defence shrinks an attack's damage: paired bootstrap over the users both runs audited.

    Per user, the damage is clean minus attacked ``metric`` under ``model`` (e.g. ``pgd@0.1``) in each
    run; the returned :func:`~fairaudit.compare.compare_models` table (overall rows) holds the
    undefended damage ``a``, the defended ``b`` and ``difference = b - a`` with its CI (negative:
    less damage), plus the clean accuracy of both (metric ``clean:<metric>``: the defence's cost).
    """
    frames = []
    for label, run in (("plain", plain), ("defended", defended)):
        um = run.audit.user_metrics.set_index("user_id")
        clean = um.loc[um["model"] == CLEAN, metric]
        hit = um.loc[um["model"] == model, metric]
        frames.append(pd.DataFrame({"model": label, "user_id": clean.index, f"damage:{metric}": (clean - hit.reindex(clean.index)).to_numpy(),
                                    f"clean:{metric}": clean.to_numpy()}))  # fmt: skip
    return compare_models(pd.concat(frames, ignore_index=True), model_a="plain", model_b="defended", rounds=rounds,
                          seed=seed)  # fmt: skip
