"""User groups of an audit (attribute specs and intersections) and the split the models were trained on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from fairaudit.audit._config import DEFAULT_INTERSECTIONS, INTERSECTION_SEP
from fairaudit.data import Dataset, Split, make_split
from fairaudit.models import Recommender

_UNKNOWN_ATTRIBUTE = "User attribute '{0}' is not a column of the users table; available: {1}"
_SPLIT_MISMATCH = (
    "Split recreated from the model's config ({0}) has fingerprint {1}, but the model was trained on {2}; "
    "the data changed since training — retrain the model on this data"
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
def split_for_model(dataset: Dataset, model: Recommender) -> Split:
    """Re-create the split ``model`` was trained on from its saved description; verify its fingerprint.

    Raises ``ValueError`` (:data:`_SPLIT_MISMATCH`) when the recreated split differs, e.g. because
    the data changed since training.
    """
    info = model.split_
    split = make_split(dataset, info["method"], seed=info["seed"], **info.get("params", {}))
    got = split.describe()["fingerprint"]
    if got != info["fingerprint"]:
        raise ValueError(_SPLIT_MISMATCH.format(f"method={info['method']}, seed={info['seed']}", got, info["fingerprint"]))
    return split


def common_split(dataset: Dataset, models: Mapping[str, Recommender]) -> Split:
    """The one split all ``models`` were trained on (refuses models trained on different splits)."""
    prints = {name: m.split_["fingerprint"] for name, m in models.items()}
    if len(set(prints.values())) > 1:
        raise ValueError(_DIFFERENT_SPLITS.format(prints))
    return split_for_model(dataset, next(iter(models.values())))
