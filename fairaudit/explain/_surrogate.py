"""What drives per-user quality, and how much of a group gap is the attribute itself?

A seeded scikit-learn gradient-boosting surrogate learns a per-user metric (e.g. NDCG@10) from
user features (:func:`fairaudit.explain.user_features`); ``shap.TreeExplainer`` attributes each
user's prediction to the features. One-hot columns of an attribute are summed back into one
feature (``gender``), which keeps SHAP's additivity.

Gap decomposition. For a group ``g`` of attribute ``A`` against the rest of the users,
``mean(pred | g) - mean(pred | rest) = sum_f [mean(phi_f | g) - mean(phi_f | rest)]`` exactly,
because every prediction is ``base + sum_f phi_f`` and the base cancels. Each term is the part
of the (predicted) gap carried by feature ``f``: the row with ``feature == A`` is what the
attribute itself carries, the others what activity, taste and other attributes carry. The
split is only as good as the surrogate, so its cross-validated R² is reported with it.

Caveats: this is association, not causation. ``TreeExplainer`` (tree-path-dependent) shares
credit between correlated features as the surrogate's trees happen to split on them, and a
mechanism that no feature measures (e.g. noisier choices by one group) stays with the attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from fairaudit.audit import TABLES
from fairaudit.explain._features import ONE_HOT_SEP, feature_source

#: Columns of the drivers table (``shap_drivers.csv`` adds ``model`` in front; schema: ``fairaudit.audit.TABLES``).
DRIVER_COLUMNS = tuple(c for c in TABLES["shap_drivers"].columns if c != "model")
#: Columns of the gap decomposition table (``gap_decomposition.csv`` adds ``model`` in front).
DECOMPOSITION_COLUMNS = tuple(c for c in TABLES["gap_decomposition"].columns if c != "model")
#: ``role`` of a feature in a gap decomposition.
ROLES = ("own attribute", "other attribute", "behaviour")
#: Reference of every decomposed gap: all users outside the group.
REST = "rest"

_NO_OVERLAP = "Per-user metric '{0}' and the user features share no user_id; compute both for the same users"
_TOO_FEW_USERS = "The surrogate needs at least {0} users with a value of '{1}'; got {2}"
_NOT_A_FEATURE = "Attribute '{0}' is not among the features' one-hot attributes {1}"


@dataclass(frozen=True)
class GapDrivers:
    """Surrogate explanation of one per-user metric.

    Attributes
    ----------
    drivers : DataFrame
        :data:`DRIVER_COLUMNS`, one row per (grouped) feature, largest ``mean_abs_shap`` first.
    decomposition : DataFrame
        :data:`DECOMPOSITION_COLUMNS`, per (attribute, group, feature).
    shap_values : DataFrame
        Users x grouped features, SHAP values of the surrogate's predictions.
    base_value : float
        The surrogate's expected value (``prediction = base_value + row sum``).
    r2 : float
        Mean held-out R² of the surrogate over the cross-validation folds.
    """

    drivers: pd.DataFrame
    decomposition: pd.DataFrame
    shap_values: pd.DataFrame
    base_value: float
    r2: float


#: Hyper-parameters of the surrogate (``sklearn.ensemble.GradientBoostingRegressor``), recorded with results.
SURROGATE_PARAMS = {"n_estimators": 100, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8}


def _surrogate(seed: int):
    """The surrogate model (scikit-learn is imported here, not at start-up: the CLI imports this package)."""
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(**SURROGATE_PARAMS, random_state=seed)


def explain_gaps(
    metric: pd.Series,
    features: pd.DataFrame,
    *,
    attributes: Sequence[str] | None = None,
    seed: int = 0,
    cv_folds: int = 5,
) -> GapDrivers:
    """Fit the surrogate, explain it with SHAP, and decompose each group's gap.

    Parameters
    ----------
    metric : Series
        Per-user metric values indexed by ``user_id``, named after the metric (NaN rows dropped).
    features : DataFrame
        Output of :func:`fairaudit.explain.user_features` (indexed by ``user_id``).
    attributes : sequence of str, optional
        Attributes whose groups' gaps to decompose; default every one-hot attribute in ``features``.
    seed : int
        Seed of the surrogate and of the cross-validation folds.
    cv_folds : int
        Folds of the held-out R².

    Returns
    -------
    GapDrivers

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> feats = pd.DataFrame({"gender=F": np.arange(200) % 2, "gender=M": 1 - np.arange(200) % 2,
    ...                       "n_interactions": rng.integers(1, 100, 200)}, dtype=float)
    >>> y = pd.Series(feats["n_interactions"] / 100, name="ndcg")
    >>> result = explain_gaps(y, feats, cv_folds=2)
    >>> result.drivers["feature"].iloc[0], result.r2 > 0.9
    ('n_interactions', True)
    """
    import shap  # heavy imports happen on first use, not when the CLI starts
    from sklearn.model_selection import KFold, cross_val_score

    name = str(metric.name)
    metric = metric.dropna()
    common = features.index.intersection(metric.index)
    if len(common) == 0:
        raise ValueError(_NO_OVERLAP.format(name))
    if len(common) < 2 * cv_folds:
        raise ValueError(_TOO_FEW_USERS.format(2 * cv_folds, name, len(common)))
    x = features.loc[common].astype(float)
    y = metric.loc[common].to_numpy(dtype=float)
    folds = KFold(cv_folds, shuffle=True, random_state=seed)
    r2 = float(np.mean(cross_val_score(_surrogate(seed), x, y, cv=folds, scoring="r2")))
    model = _surrogate(seed).fit(x, y)
    explainer = shap.TreeExplainer(model)
    phi = pd.DataFrame(explainer.shap_values(x), index=x.index, columns=x.columns)
    grouped = phi.T.groupby([feature_source(c) for c in x.columns], sort=False).sum().T
    base = float(np.ravel(explainer.expected_value)[0])

    drivers = pd.DataFrame(
        {
            "metric": name,
            "feature": grouped.columns,
            "mean_abs_shap": grouped.abs().mean().to_numpy(),
            "mean_shap": grouped.mean().to_numpy(),
            "r2": r2,
            "n_users": len(x),
        }
    ).sort_values("mean_abs_shap", ascending=False, kind="stable", ignore_index=True)

    one_hot = sorted({feature_source(c) for c in x.columns if c != feature_source(c)})
    attributes = one_hot if attributes is None else list(attributes)
    decomposition = [_decompose(name, a, x, y, grouped, one_hot) for a in attributes]
    return GapDrivers(
        drivers=drivers[list(DRIVER_COLUMNS)],
        decomposition=pd.concat(decomposition, ignore_index=True)[list(DECOMPOSITION_COLUMNS)],
        shap_values=grouped,
        base_value=base,
        r2=r2,
    )


def _decompose(
    name: str, attribute: str, x: pd.DataFrame, y: np.ndarray, grouped: pd.DataFrame, one_hot: list[str]
) -> pd.DataFrame:
    """Per group of ``attribute``: mean SHAP difference (group - rest) of every grouped feature."""
    columns = [c for c in x.columns if feature_source(c) == attribute and c != attribute]
    if not columns:
        raise ValueError(_NOT_A_FEATURE.format(attribute, one_hot))
    member = x[columns].to_numpy() > 0.5  # users x groups
    counts = member.sum(axis=0)
    rest = len(x) - counts
    phi = grouped.to_numpy()
    # Mean SHAP per group and over the rest, for all groups at once (groups x features).
    in_mean = member.T @ phi / np.maximum(counts, 1)[:, None]
    out_mean = (~member).T @ phi / np.maximum(rest, 1)[:, None]
    contribution = in_mean - out_mean
    observed = member.T @ y / np.maximum(counts, 1) - (~member).T @ y / np.maximum(rest, 1)
    features = grouped.columns.to_numpy()
    role = np.where(features == attribute, ROLES[0], np.where(np.isin(features, one_hot), ROLES[1], ROLES[2]))
    n_groups, n_features = contribution.shape
    valid = np.repeat((counts > 0) & (rest > 0), n_features)
    frame = pd.DataFrame(
        {
            "metric": name,
            "attribute": attribute,
            "group": np.repeat([c.split(ONE_HOT_SEP, 1)[1] for c in columns], n_features),
            "reference": REST,
            "feature": np.tile(features, n_groups),
            "role": np.tile(role, n_groups),
            "contribution": contribution.ravel(),
            "predicted_gap": np.repeat(contribution.sum(axis=1), n_features),
            "observed_gap": np.repeat(observed, n_features),
            "n_users": np.repeat(counts, n_features),
        }
    )
    return frame[valid].reset_index(drop=True)
