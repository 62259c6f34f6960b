"""Who pays for privacy? The audit of a DP-trained model against its non-private twin, per group.

Differential privacy has a known fairness cost: clipping and noise hurt the users and items whose
signal is weakest (Bagdasaryan et al., "Differential privacy has disparate impact on model
accuracy", NeurIPS 2019). :func:`privacy_cost` measures it as a **paired** comparison of the two
models over the same users (:func:`fairaudit.compare.compare_audits` and
:func:`fairaudit.compare.compare_models`: one paired bootstrap, the audit's rounds and seed):

- per user group, the accuracy lost (``cost = base - dp``) and how much more the group loses than
  the rest of the users (``excess_cost = cost(group) - cost(rest)``, from the change of the
  group-vs-rest gap);
- per item group, the exposure share lost (each user's DCG-weighted share of the group in their
  top-K list, averaged over users).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.audit import ALL, LOWER_IS_BETTER, TABLES, AuditResult, read_table
from fairaudit.compare import compare_audits, compare_models
from fairaudit.data import Dataset
from fairaudit.metrics import exposure_shares, item_groups

#: Columns of :func:`privacy_cost` (``privacy_cost.csv`` in an audit folder, ``AuditResult.privacy_cost``).
PRIVACY_COST_COLUMNS = TABLES["privacy_cost"].columns
#: The per-user quantity of the item side: an item group's DCG-weighted share of the user's list.
EXPOSURE_SHARE = "exposure_share"
PRIVACY_COST_FILE = TABLES["privacy_cost"].file

_NO_COST = "Folder '{0}' holds no {1}; write it with `python -m fairaudit privacy-cost --out {0}`"
_NOT_DP = (
    "Model '{0}' in {1} was not trained with differential privacy (its audit records no privacy); "
    "pass the DP model as the DP side (e.g. --model-dp)"
)


def _recommendations(audit: AuditResult, model: str) -> pd.DataFrame:
    recs = audit.recommendations
    recs = pd.read_parquet(recs) if isinstance(recs, Path) else recs
    return recs[recs["model"].astype(str) == model]


def _per_user_shares(recs: pd.DataFrame, membership: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Per user (rows) and item group (columns ``prefix + group``): DCG-weighted share of the group in the list."""
    users = pd.Index(recs["user_id"].astype(str).unique())
    no_test = pd.DataFrame({"user_id": pd.Series(dtype=str), "item_id": pd.Series(dtype=str)})
    shares = exposure_shares(recs, no_test, membership, user_groups=pd.Series(users, index=users), browsing="dcg")
    wide = shares.pivot(index="user_group", columns="item_group", values="exposure_share").fillna(0.0)
    wide.columns = [prefix + str(c) for c in wide.columns]
    return wide.rename_axis("user_id").reset_index()


def privacy_cost(
    audit_dp: str | Path,
    audit_base: str | Path | None = None,
    *,
    model_dp: str | None = None,
    model_base: str | None = None,
    dataset: Dataset | None = None,
    users: pd.DataFrame | None = None,
    metric: str = "ndcg",
    item_attribute: str | None = "popularity_tier",
    rounds: int | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Who pays for privacy: accuracy lost per user group and exposure lost per item group under DP, with CIs.

    Parameters
    ----------
    audit_dp, audit_base : path
        The audit folder of the DP model and that of its non-private twin (same data and split, else
        :func:`~fairaudit.compare.compare_audits` refuses); ``audit_base=None``: one audit holding both.
    model_dp, model_base : str, optional
        Model names in the audits (default: with one folder, the model whose audit records privacy vs
        the first other one; with two, the first model of each).
    dataset : Dataset, optional
        The audited data: its items give the item groups of ``item_attribute`` (no item rows without it).
    users : DataFrame, optional
        The users table for the user groups (default: the attribute columns of ``user_metrics.parquet``).
    metric : str
        Accuracy metric of the user side.
    item_attribute : str or None
        Item column of the item side (``None``: user side only).
    rounds, seed : int, optional
        Bootstrap rounds and seed (default: the audit's).

    Returns
    -------
    DataFrame
        Columns :data:`PRIVACY_COST_COLUMNS`, one row per side, attribute and group (``attribute="all"``:
        everyone). ``cost = base - dp`` (for a lower-is-better metric ``dp - base``): positive = the DP model
        is worse. ``excess_cost`` = the group's cost minus the rest's (user groups of at least the audit's
        minimum size; NaN otherwise and on the item side); ``pays_more`` = its CI lies above 0 (item side:
        the exposure loss's CI lies above 0). ``epsilon`` is the DP model's spent epsilon.
    """
    dp_audit = AuditResult.read(audit_dp)
    base_audit = dp_audit if audit_base is None else AuditResult.read(audit_base)
    if audit_base is None:
        records = {name: (meta or {}).get("privacy") for name, meta in dp_audit.meta.get("models", {}).items()}
        model_dp = model_dp or next((name for name, record in records.items() if record), None) or dp_audit.models[-1]
        model_base = model_base or next(name for name in dp_audit.models if name != model_dp)
    model_dp, model_base = model_dp or dp_audit.models[0], model_base or base_audit.models[0]
    record = ((dp_audit.meta.get("models") or {}).get(model_dp) or {}).get("privacy")
    if not record:
        raise ValueError(_NOT_DP.format(model_dp, audit_dp))
    epsilon = float(record["epsilon_spent"])
    compared = compare_audits(audit_base or audit_dp, None if audit_base is None else audit_dp,
                              model_a=model_base, model_b=model_dp, users=users, rounds=rounds, seed=seed)  # fmt: skip
    table = compared.table[compared.table["metric"] == metric]
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    frames = [_cost_rows(table, "user", sign)]
    if item_attribute is not None and dataset is not None:
        membership = item_groups(dataset.items, item_attribute)
        prefix = f"{EXPOSURE_SHARE}:"
        shares = pd.concat([
            _per_user_shares(_recommendations(base_audit, model_base), membership, prefix).assign(model="base"),
            _per_user_shares(_recommendations(dp_audit, model_dp), membership, prefix).assign(model="dp"),
        ], ignore_index=True).fillna(0.0)  # fmt: skip
        config = dp_audit.config
        items = compare_models(
            shares, model_a="base", model_b="dp", metrics=[c for c in shares.columns if c.startswith(prefix)],
            rounds=int(rounds or config.bootstrap_rounds), seed=int(seed if seed is not None else config.seed),
            min_group_size=int(config.min_group_size),
        )  # fmt: skip
        items = items.assign(attribute=item_attribute, group=items["metric"].str.removeprefix(prefix),
                             metric=EXPOSURE_SHARE)  # fmt: skip
        frames.append(_cost_rows(items, "item", 1.0))
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "epsilon", epsilon)
    out.insert(0, "model_dp", str(table["model_b"].iloc[0]))
    out.insert(0, "model_base", str(table["model_a"].iloc[0]))
    return out[list(PRIVACY_COST_COLUMNS)]


def read_privacy_cost(folder: str | Path) -> pd.DataFrame:
    """``privacy_cost.csv`` of ``folder`` (``privacy-cost --out``, or an audit folder holding it), as written.

    >>> import tempfile
    >>> from fairaudit.data import write_csv
    >>> text = TABLES["privacy_cost"].text
    >>> table = pd.DataFrame({c: ["NA"] if c in text else [1.5] for c in PRIVACY_COST_COLUMNS}).assign(pays_more=False)
    >>> read_privacy_cost(write_csv(table, Path(tempfile.mkdtemp()) / PRIVACY_COST_FILE).parent).equals(table)
    True
    """
    if not (Path(folder) / PRIVACY_COST_FILE).is_file():
        raise FileNotFoundError(_NO_COST.format(folder, PRIVACY_COST_FILE))
    return read_table(Path(folder), TABLES["privacy_cost"])


def _cost_rows(table: pd.DataFrame, side: str, sign: float) -> pd.DataFrame:
    """Cost rows from a :func:`~fairaudit.compare.compare_models` table (A = base, B = DP).

    ``cost = sign x (a - b)``; ``excess_cost`` is minus ``sign x`` the change of the group-vs-rest gap.

    >>> t = pd.DataFrame({"model_a": "A", "model_b": "B", "attribute": ["all", "g", "g"], "group": ["all", "F", "F"],
    ...     "quantity": ["value", "value", "gap"], "metric": "ndcg", "n_users": [90, 40, 40], "a": [.3, .2, -.1],
    ...     "b": [.25, .1, -.2], "difference": [-.05, -.1, -.1], "ci_low": [-.06, -.12, -.14],
    ...     "ci_high": [-.04, -.08, -.06], "significant": True})
    >>> _cost_rows(t, "user", 1.0)[["group", "cost", "excess_cost", "pays_more"]].round(2).values.tolist()
    [['all', 0.05, nan, False], ['F', 0.1, 0.1, True]]
    """
    values = table[table["quantity"] == "value"].copy()
    gaps = table[table["quantity"] == "gap"].set_index(["attribute", "group", "metric"])
    low, high = np.sort(np.stack([-sign * values["ci_low"], -sign * values["ci_high"]]), axis=0)
    out = pd.DataFrame({
        "side": side, "attribute": values["attribute"].astype(str), "group": values["group"].astype(str),
        "metric": values["metric"], "n_users": values["n_users"], "base": values["a"], "dp": values["b"],
        "cost": -sign * values["difference"], "cost_ci_low": low, "cost_ci_high": high,
    }).reset_index(drop=True)  # fmt: skip
    key = pd.MultiIndex.from_frame(out[["attribute", "group", "metric"]])
    gap = gaps.reindex(key)
    out["excess_cost"] = (-sign * gap["difference"]).to_numpy()
    bounds = np.sort(np.stack([-sign * gap["ci_low"].to_numpy(), -sign * gap["ci_high"].to_numpy()]), axis=0)
    out["excess_cost_ci_low"], out["excess_cost_ci_high"] = bounds[0], bounds[1]
    decisive = out["excess_cost_ci_low"] if side == "user" else out["cost_ci_low"]
    out["pays_more"] = (decisive > 0) & (out["attribute"] != ALL if side == "user" else True)
    return out
