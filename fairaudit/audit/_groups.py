"""User groups of an audit (attribute specs and intersections) and the split the models were trained on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from fairaudit.audit._config import DEFAULT_INTERSECTIONS, INTERSECTION_SEP, AuditConfig
from fairaudit.data import Dataset, Split, make_split
if TYPE_CHECKING:  # torch is imported only where a model is used: the dashboard's first screen reads audits
    from fairaudit.models import Recommender

_UNKNOWN_ATTRIBUTE = "User attribute '{0}' is not a column of the users table; available: {1}"
_SPLIT_MISMATCH = (
    "Split recreated from the model's config ({0}) has fingerprint {1}, but the model was trained on {2}; "
    "the data changed since training — retrain the model on this data"
)
_AUDIT_SPLIT_MISMATCH = (
    "Split recreated from the audit's config ({0}) has fingerprint {1}, but the audit was made on {2}; "
    "pass the dataset the audit used (same files and column mapping)"
)
_DIFFERENT_SPLITS = "Models {0} were trained on different splits; audit models trained on the same split together"


def default_attributes(dataset: Dataset, max_groups: int = 25) -> tuple[str, ...]:
    """Categorical user columns with at most ``max_groups`` values, plus present default intersections.

    >>> from fairaudit.data import Dataset
    >>> users = pd.DataFrame({"user_id": ["a", "b"], "gender": ["F", "M"], "age_band": ["18-24", "25-34"]})
    >>> default_attributes(Dataset(pd.DataFrame(columns=["user_id", "item_id"]), users, pd.DataFrame()))
    ('gender', 'age_band', 'gender*age_band')
    """
    users = dataset.users
    plain = [c for c in dataset.user_attributes if users[c].nunique() <= max_groups]
    crossed = [s for s in DEFAULT_INTERSECTIONS if all(p in plain for p in s.split(INTERSECTION_SEP))]
    return tuple(plain + crossed)


def attribute_groups(users: pd.DataFrame, spec: str) -> pd.Series:
    """``user_id -> group`` for an attribute spec; intersections join values with ``*``.

    >>> users = pd.DataFrame({"user_id": ["a"], "gender": ["F"], "age_band": ["25-34"]})
    >>> attribute_groups(users, "gender*age_band").tolist()
    ['F*25-34']
    """
    parts = spec.split(INTERSECTION_SEP)
    for part in parts:
        if part not in users.columns or part == "user_id":
            raise ValueError(_UNKNOWN_ATTRIBUTE.format(part, [c for c in users.columns if c != "user_id"]))
    values = users[parts[0]].astype(str).to_numpy(dtype=object)
    for part in parts[1:]:
        values = values + INTERSECTION_SEP + users[part].astype(str).to_numpy(dtype=object)
    return pd.Series(values, index=pd.Index(users["user_id"].astype(str)), name=spec)


def plain_attributes(specs: Sequence[str]) -> tuple[str, ...]:
    """The plain user columns behind attribute specs, in first-seen order (intersections split at ``*``).

    These are the attribute columns stored in ``user_metrics.parquet``; every spec's groups can be
    re-derived from them with :func:`attribute_groups`.

    >>> plain_attributes(["gender", "gender*age_band", "region"])
    ('gender', 'age_band', 'region')
    """
    return tuple(dict.fromkeys(part for spec in specs for part in spec.split(INTERSECTION_SEP)))


# ---- split provenance -----------------------------------------------------------------------
def _recreate(dataset: Dataset, info: Mapping, mismatch: str) -> Split:
    """The split described by ``info`` (a ``Split.describe()``), its recorded fingerprint verified."""
    split = make_split(dataset, info["method"], seed=info["seed"], **info.get("params", {}))
    got = split.describe()["fingerprint"]
    if got != info["fingerprint"]:
        raise ValueError(mismatch.format(f"method={info['method']}, seed={info['seed']}", got, info["fingerprint"]))
    return split


def split_for_model(dataset: Dataset, model: Recommender) -> Split:
    """Re-create the split ``model`` was trained on from its saved description; verify its fingerprint.

    Raises ``ValueError`` (:data:`_SPLIT_MISMATCH`) when the recreated split differs, e.g. because
    the data changed since training.
    """
    return _recreate(dataset, model.split_, _SPLIT_MISMATCH)


def audit_split(dataset: Dataset, config: AuditConfig) -> Split | None:
    """The split an audit was made on (``config.split``, as :func:`run_audit` records it), re-created on ``dataset``.

    ``None`` when the audit recorded no split. Raises ``ValueError`` (:data:`_AUDIT_SPLIT_MISMATCH`)
    when the recorded fingerprint differs, i.e. ``dataset`` is not the data the audit used.

    >>> from fairaudit.data import Dataset, make_split
    >>> data = Dataset(pd.DataFrame({"user_id": list("aabb"), "item_id": list("xyxy")}),
    ...                pd.DataFrame({"user_id": ["a", "b"]}), pd.DataFrame({"item_id": ["x", "y"]}))
    >>> recorded = make_split(data, "random", seed=0, test_fraction=0.5)
    >>> audit_split(data, AuditConfig(split=recorded.describe())).describe() == recorded.describe()
    True
    """
    if not config.split:
        return None
    info = {"fingerprint": None, **config.split}
    if info["fingerprint"] is None:  # folders that recorded no fingerprint: nothing to verify
        return make_split(dataset, info["method"], seed=info["seed"], **info.get("params", {}))
    return _recreate(dataset, info, _AUDIT_SPLIT_MISMATCH)


def common_split(dataset: Dataset, models: Mapping[str, Recommender]) -> Split:
    """The one split all ``models`` were trained on (refuses models trained on different splits)."""
    prints = {name: m.split_["fingerprint"] for name, m in models.items()}
    if len(set(prints.values())) > 1:
        raise ValueError(_DIFFERENT_SPLITS.format(prints))
    return split_for_model(dataset, next(iter(models.values())))
