"""Privacy-safe release of an audit's group table: small groups suppressed, counts and means noised under ε-DP.

An audit folder holds per-user data (``user_metrics.parquet``, ``recommendations.parquet``) and exact
group statistics; a small group's mean can reveal its members. :func:`private_group_metrics`
releases the per-group means of bounded per-user metrics under ε-differential privacy instead, and
:func:`export_private` writes them, with a manifest stating the budget, into a **new release folder**
that holds nothing else (the audit folder itself is never changed).

Mechanism (documented in ``release.json`` and docs/privacy.md)
-------------------------------------------------------------
- Neighbouring datasets differ by **one user** (added or removed, with all their data).
- Released per row (model x attribute x group x metric): the number of users defining the metric
  (count) and the sum of their per-user values; the metrics are the accuracy family of the registry
  (:data:`PRIVATE_METRICS`), each in ``[0, 1]``. Within one model, attribute spec and metric the groups
  partition the users, so one user changes one group's count by at most 1 and its sum by at most 1:
  that family's vector of counts and sums has L1 sensitivity 2. Over ``F = models x attribute specs
  (the "all" row included) x metrics`` families the released vector has L1 sensitivity ``2 F``.
- The Laplace mechanism adds independent ``Laplace(0, b)`` noise, ``b = 2 F / ε``, to every count and
  sum: ε-DP for the whole release (sequential composition over families, parallel over groups;
  equivalently each family spends ``ε / F``). δ = 0.
- Published values are post-processing of the noisy pair (free under DP): ``n_users`` = the noisy
  count rounded, ``value = clip(noisy sum / max(noisy count, 1), 0, 1)``, and ``noise_sd`` ≈
  ``sqrt(2) b sqrt(1 + value²) / max(n_users, 1)`` (delta method: the noise's own spread; sampling
  uncertainty is not released, since bootstrap intervals read the private per-user data).
- **Suppression** on the *noisy* count: a row whose noisy count is below ``min_group_size`` shows no
  value (``suppressed``). Suppressing on the exact count (the audit's ``flagged``) would itself reveal
  that a group is small, outside the guarantee. The group names (attribute values) are treated as
  public.
- The noise is seeded (reproducible); the seed is **never written**: whoever holds it can subtract the
  noise. Without a seed a fresh one is drawn from the operating system and discarded.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.audit import ALL, AuditResult
from fairaudit.data import csv_bytes, read_csv, replacing_folder
from fairaudit.metrics import METRICS, MIN_GROUP_SIZE

#: Per-user metrics that may be released: the accuracy family, every value in [0, 1].
PRIVATE_METRICS: tuple[str, ...] = tuple(METRICS.names(family="accuracy"))
#: Columns of the released ``group_metrics.csv``.
EXPORT_COLUMNS = ("model", "attribute", "group", "metric", "value", "n_users", "noise_sd", "suppressed")
RELEASE_TABLE = "group_metrics.csv"
MANIFEST = "release.json"
#: ``release.json``'s ``kind``: how a release folder is recognised.
RELEASE_KIND = "fairaudit private release"
_BAD_EPSILON = "epsilon must be a positive finite number, got {0!r}"
_BAD_METRIC = "Metric '{0}' cannot be released privately; expected per-user metrics bounded in [0, 1]: {1}"
_UNKNOWN = "{0} {1} are not in the audit; expected some of {2}"
_NOT_RELEASE = "'{0}' is not a private release folder (no {1} of kind '{2}')"


@dataclass(frozen=True)
class PrivateRelease:
    """A privately released group table (:data:`EXPORT_COLUMNS`) and its manifest (what was spent, how)."""

    table: pd.DataFrame
    manifest: dict


def _choose(available: Sequence[str], wanted: Sequence[str] | None, what: str) -> list[str]:
    if wanted is None:
        return list(available)
    missing = [w for w in wanted if w not in available]
    if missing:
        raise ValueError(_UNKNOWN.format(what, missing, list(available)))
    return list(wanted)


def private_group_metrics(
    group_metrics: pd.DataFrame,
    *,
    epsilon: float,
    metrics: Sequence[str] = ("ndcg",),
    attributes: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    min_group_size: int = MIN_GROUP_SIZE,
    seed: int | None = None,
) -> PrivateRelease:
    """ε-DP release of group means of bounded per-user metrics (module docstring: mechanism and guarantee).

    Parameters
    ----------
    group_metrics : DataFrame
        An audit's ``group_metrics.csv`` (exact ``value`` = mean and ``n_users`` = count per group;
        their product is the group's sum).
    epsilon : float
        The whole release's privacy budget (pure ε-DP, δ = 0).
    metrics, attributes, models : sequences of str, optional
        What to release (default: NDCG; every audited attribute plus the overall row; every model).
        Each one more splits the budget: the noise scale grows with their product.
    min_group_size : int
        Rows whose noisy count is below it are suppressed.
    seed : int, optional
        Seed of the noise (reproducible runs; keep it secret). ``None``: a fresh, unrecorded seed.

    Examples
    --------
    >>> gm = pd.DataFrame({"model": "m", "attribute": ["all", "g", "g"], "group": ["all", "a", "b"],
    ...                    "metric": "ndcg", "value": [0.3, 0.2, 0.4], "n_users": [2000, 1000, 1000]})
    >>> release = private_group_metrics(gm, epsilon=1.0, seed=0)
    >>> release.manifest["laplace_scale"], release.table["suppressed"].tolist()
    (4.0, [False, False, False])
    """
    if not (isinstance(epsilon, (int, float)) and np.isfinite(epsilon) and epsilon > 0):
        raise ValueError(_BAD_EPSILON.format(epsilon))
    for metric in metrics:
        if metric not in PRIVATE_METRICS:
            raise ValueError(_BAD_METRIC.format(metric, PRIVATE_METRICS))
    models = _choose(list(dict.fromkeys(group_metrics["model"].astype(str))), models, "Models")
    audited = [a for a in dict.fromkeys(group_metrics["attribute"].astype(str)) if a != ALL]
    specs = [ALL, *_choose(audited, attributes, "Attributes")]
    rows = group_metrics[group_metrics["model"].isin(models) & group_metrics["attribute"].isin(specs)
                         & group_metrics["metric"].isin(list(metrics))]  # fmt: skip
    rows = rows.sort_values(["model", "attribute", "group", "metric"], kind="stable").reset_index(drop=True)
    families = len(models) * len(specs) * len(metrics)
    scale = 2.0 * families / float(epsilon)
    rng = np.random.default_rng(secrets.randbits(63) if seed is None else int(seed))
    counts = rows["n_users"].to_numpy(dtype=float)
    sums = rows["value"].to_numpy(dtype=float).clip(0, 1) * counts
    noisy_counts = counts + rng.laplace(0.0, scale, len(rows))
    noisy_sums = np.nan_to_num(sums) + rng.laplace(0.0, scale, len(rows))
    value = np.clip(noisy_sums / np.maximum(noisy_counts, 1.0), 0.0, 1.0)
    n_users = np.maximum(np.round(noisy_counts), 0.0)
    suppressed = noisy_counts < min_group_size
    table = pd.DataFrame({
        "model": rows["model"].astype(str), "attribute": rows["attribute"].astype(str),
        "group": rows["group"].astype(str), "metric": rows["metric"].astype(str),
        "value": np.where(suppressed, np.nan, value), "n_users": n_users,
        "noise_sd": np.where(suppressed, np.nan, np.sqrt(2.0) * scale * np.sqrt(1 + value**2) / np.maximum(n_users, 1)),
        "suppressed": suppressed,
    })  # fmt: skip
    manifest = {
        "kind": RELEASE_KIND,
        "mechanism": "laplace",
        "guarantee": "pure epsilon-differential privacy, user level (add/remove one user with all their data)",
        "epsilon": float(epsilon),
        "delta": 0.0,
        "families": families,
        "sensitivity_l1": 2.0 * families,
        "laplace_scale": scale,
        "epsilon_per_family": float(epsilon) / families,
        "released_numbers": int(2 * len(rows)),
        "models": models,
        "attributes": specs,
        "metrics": list(metrics),
        "metric_bound": [0.0, 1.0],
        "min_group_size": int(min_group_size),
        "suppression": "rows whose noisy count is below min_group_size show no value",
        "n_suppressed": int(suppressed.sum()),
        "seed": "withheld" if seed is not None else "fresh, not recorded",
        "not_released": ["confidence intervals (they read per-user data)", "gaps and p-values",
                         "per-user tables", "catalogue metrics", "membership-inference and other optional tables"],
    }  # fmt: skip
    return PrivateRelease(table, manifest)


def is_release_folder(directory: str | Path) -> bool:
    """Whether ``directory`` holds a private release (its ``release.json`` says so).

    >>> import tempfile
    >>> is_release_folder(tempfile.mkdtemp())
    False
    """
    try:
        manifest = json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("kind") == RELEASE_KIND


def export_private(
    audit_dir: str | Path,
    out_dir: str | Path,
    *,
    epsilon: float,
    metrics: Sequence[str] = ("ndcg",),
    attributes: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    min_group_size: int | None = None,
    seed: int | None = None,
    overwrite: bool = False,
) -> PrivateRelease:
    """Write the private release of an audit folder into ``out_dir``: ``group_metrics.csv`` and ``release.json`` only.

    ``min_group_size`` defaults to the audit's. The manifest also names the source audit (its id).
    The folder is written atomically; an existing release needs ``overwrite=True``, and any other
    non-empty folder is refused.
    """
    audit = AuditResult.read(audit_dir)
    release = private_group_metrics(
        audit.group_metrics, epsilon=epsilon, metrics=metrics, attributes=attributes, models=models,
        min_group_size=audit.config.min_group_size if min_group_size is None else min_group_size, seed=seed,
    )  # fmt: skip
    release.manifest["source_audit"] = str(audit.meta.get("audit_id", "not recorded"))
    release.manifest["k"] = audit.config.k
    with replacing_folder(out_dir, overwrite=overwrite, is_ours=is_release_folder, kind="private release folder",
                          replaced=(RELEASE_TABLE, MANIFEST)) as temporary:  # fmt: skip
        (temporary / RELEASE_TABLE).write_bytes(csv_bytes(release.table))
        (temporary / MANIFEST).write_text(json.dumps(release.manifest, indent=1))
    return release


def read_release(directory: str | Path) -> PrivateRelease:
    """Read a release folder written by :func:`export_private` (refuses other folders)."""
    directory = Path(directory)
    if not is_release_folder(directory):
        raise ValueError(_NOT_RELEASE.format(directory, MANIFEST, RELEASE_KIND))
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    table = read_csv(directory / RELEASE_TABLE, dtype={c: str for c in ("model", "attribute", "group", "metric")},
                     keep_default_na=False, na_values={c: [""] for c in ("value", "n_users", "noise_sd")})  # fmt: skip
    table["suppressed"] = table["suppressed"].astype(str).eq("True")
    return PrivateRelease(table, manifest)
