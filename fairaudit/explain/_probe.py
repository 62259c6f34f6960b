"""Counterfactual attribute probes: does the top-K list change when only a user attribute changes?

For every probed user and every other value ``v`` of a sensitive attribute, the model re-ranks the
catalogue with ``attribute_overrides={attribute: v}`` (everything else fixed) and the counterfactual
list is compared with the user's original list: Jaccard@K, SERP*@K, PRAG*@K (FaiRLLM conventions,
see :mod:`fairaudit.explain._listsim`) and the change in each item group's share of the list.
A model that does not read attributes gives exactly Jaccard 1, PRAG* 1, SERP* at its
identical-list value and zero exposure change.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from fairaudit.audit import TABLES
from fairaudit.data import UNKNOWN, Dataset
from fairaudit.explain._listsim import EMPTY, group_share, jaccard_at_k, prag_at_k, serp_at_k
from fairaudit.metrics import DEFAULT_ROUNDS, bootstrap_sums, seeded_rng
from fairaudit.models import Recommender

#: Columns of the probe table (``probes.csv`` adds ``model`` in front; schema: ``fairaudit.audit.TABLES["probes"]``).
#: ``group`` repeats ``original_value`` in the audit tables' word for the users a row describes.
PROBE_COLUMNS = tuple(c for c in TABLES["probes"].columns if c != "model")
#: List-similarity metrics of a probe, in output order.
LIST_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "jaccard": jaccard_at_k,
    "serp": serp_at_k,
    "prag": prag_at_k,
}
#: ``original_value``/``counterfactual_value`` of pooled rows.
ALL = "all"
#: Prefix of exposure-change metric names: ``exposure_change:provider=indie``.
EXPOSURE_PREFIX = "exposure_change"

_MISSING_ATTRIBUTE = "User attribute '{0}' is not a column of the users table; expected one of {1}"
_MISSING_ITEM_ATTRIBUTE = "Item attribute '{0}' is not a column of the items table; expected one of {1}"
_TOO_FEW_VALUES = "Attribute '{0}' needs at least two known values to probe; found {1}"
_NO_USERS = "No probed user is known to both the model and the dataset's users table"
NOT_PROBEABLE = (
    "Model '{0}' cannot be probed: FairAudit cannot re-score it as if a user attribute were different "
    "(e.g. an external model whose score function does not receive user attributes), so a probe could "
    "only report a zero change it cannot vouch for; wrap it as attribute-aware to probe it"
)


def exposure_metric(item_attribute: str, group: str) -> str:
    """Metric name of the change in ``group``'s exposure share.

    >>> exposure_metric("provider", "indie")
    'exposure_change:provider=indie'
    """
    return f"{EXPOSURE_PREFIX}:{item_attribute}={group}"


def top_k_codes(
    model: Recommender, user_ids: Sequence[str], k: int, attribute_overrides: dict[str, str] | None = None
) -> np.ndarray:
    """Top-K item positions (in ``model.item_ids_``) as a ``len(user_ids) x k`` matrix, ``-1`` padded.

    >>> from fairaudit.models import create_model
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a", "b", "b"], "item_id": ["x", "x", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"]}),
    ...                pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]}))
    >>> model = create_model("popularity").fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> top_k_codes(model, ["a", "b"], 2).tolist()
    [[1, 2], [2, -1]]
    """
    recs = model.recommend(list(user_ids), k=k, attribute_overrides=attribute_overrides)
    out = np.full((len(user_ids), k), EMPTY, dtype=np.int64)
    rows = pd.Index(pd.Series(list(user_ids), dtype=object).astype(str)).get_indexer(recs["user_id"].astype(str))
    out[rows, recs["rank"].to_numpy() - 1] = model.item_positions(recs["item_id"])
    return out


def _probe_users_ids(model: Recommender, dataset: Dataset, users: int | Sequence[str] | None, seed: int) -> np.ndarray:
    known = pd.Index(dataset.users["user_id"].astype(str)).intersection(pd.Index(model.user_ids_), sort=False)
    if users is None:
        chosen = known.to_numpy(dtype=object)
    elif isinstance(users, (int, np.integer)):
        rng = np.random.default_rng(seed)
        chosen = known.to_numpy(dtype=object)[np.sort(rng.permutation(len(known))[: int(users)])]
    else:
        chosen = pd.Index(pd.Series(list(users), dtype=object).astype(str)).intersection(known, sort=False).to_numpy()
    if len(chosen) == 0:
        raise ValueError(_NO_USERS)
    return chosen


def probe_users(
    model: Recommender,
    dataset: Dataset,
    attribute: str,
    *,
    users: int | Sequence[str] | None = None,
    k: int = 10,
    values: Sequence[str] | None = None,
    item_attributes: Sequence[str] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Per-user probe results: one row per (user, counterfactual value other than the user's own).

    The model is asked once per value for all probed users (``recommend`` with
    ``attribute_overrides={attribute: value}``), never once per user.

    Parameters
    ----------
    model : Recommender
        A fitted model; models that ignore ``attribute_overrides`` give zero change.
    dataset : Dataset
        Supplies the users' original attribute values and the item groups.
    attribute : str
        User attribute column to swap (e.g. ``"gender"``).
    users : int, sequence of str or None
        All users known to model and data (None), a seeded random sample of that many users (int),
        or these ids (ids unknown to the model or the users table are skipped).
    k : int
        List length K.
    values : sequence of str, optional
        Counterfactual values; default every known value of the attribute (``"unknown"`` excluded).
    item_attributes : sequence of str, optional
        Item columns whose groups' exposure change is measured; default ``dataset.item_attributes``.
    seed : int
        Seed of the user sample.
    progress : callable, optional
        ``progress(done, total)`` after each counterfactual value (``total``: the values).

    Returns
    -------
    DataFrame
        Ordered by counterfactual value, then user: ``user_id, original_value, counterfactual_value``
        + one column per :data:`LIST_METRICS` and per exposure-change metric (see :func:`exposure_metric`).
        Users whose original value is ``"unknown"`` are included, with ``original_value="unknown"``.

    Examples
    --------
    >>> from fairaudit.models import create_model
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"], "gender": ["F", "M"]}),
    ...                pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]}))
    >>> model = create_model("popularity").fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> probe_users(model, data, "gender", k=2)[["user_id", "counterfactual_value", "jaccard"]].values.tolist()
    [['b', 'F', 1.0], ['a', 'M', 1.0]]
    """
    if attribute not in dataset.users.columns:
        raise ValueError(_MISSING_ATTRIBUTE.format(attribute, dataset.user_attributes))
    item_attributes = list(dataset.item_attributes if item_attributes is None else item_attributes)
    for column in item_attributes:
        if column not in dataset.items.columns:
            raise ValueError(_MISSING_ITEM_ATTRIBUTE.format(column, dataset.item_attributes))
    user_table = dataset.users.assign(user_id=dataset.users["user_id"].astype(str)).set_index("user_id")
    if values is None:
        values = sorted(set(user_table[attribute].astype(str)) - {UNKNOWN})
    values = [str(v) for v in values]
    if len(values) < 2:
        raise ValueError(_TOO_FEW_VALUES.format(attribute, values))

    user_ids = _probe_users_ids(model, dataset, users, seed)
    original_value = user_table[attribute].astype(str).reindex(user_ids).to_numpy(dtype=object)
    original = top_k_codes(model, user_ids, k)

    items = dataset.items.assign(item_id=dataset.items["item_id"].astype(str)).set_index("item_id")
    group_codes = {}
    for column in item_attributes:
        labels = items[column].astype(str).reindex(model.item_ids_).fillna(UNKNOWN)
        codes, uniques = pd.factorize(labels, sort=True)
        group_codes[column] = (codes, list(uniques), group_share(original, codes, len(uniques)))

    frames = []
    for done, value in enumerate(values):
        if progress is not None:
            progress(done, len(values))
        keep = original_value != value
        ids = user_ids[keep]
        x, y = top_k_codes(model, ids, k, {attribute: value}), original[keep]
        columns = {name: fn(x, y) for name, fn in LIST_METRICS.items()}
        for column, (codes, groups, base_share) in group_codes.items():
            delta = group_share(x, codes, len(groups)) - base_share[keep]
            columns.update({exposure_metric(column, g): delta[:, j] for j, g in enumerate(groups)})
        frames.append(
            pd.DataFrame(
                {"user_id": ids, "original_value": original_value[keep], "counterfactual_value": value, **columns}
            )
        )
    if progress is not None:
        progress(len(values), len(values))
    return pd.concat(frames, ignore_index=True)


def _bootstrap_means(values: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """``rounds x m`` NaN-skipping column means over users resampled with replacement."""
    defined = ~np.isnan(values)
    sums, counts = bootstrap_sums(np.where(defined, values, 0.0), defined, rounds, rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def _rows(attribute, original, counterfactual, metrics, estimate, boots, n_users, confidence) -> pd.DataFrame:
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():  # all-NaN columns (no user) give NaN quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(boots, [alpha, 1.0 - alpha], axis=0) if len(boots) else (estimate, estimate)
    return pd.DataFrame(
        {
            "attribute": attribute,
            "original_value": original,
            "counterfactual_value": counterfactual,
            "metric": metrics,
            "estimate": estimate,
            "ci_low": low,
            "ci_high": high,
            "n_users": n_users,
            "group": original,
        }
    )


def summarise_probe(
    per_user: pd.DataFrame,
    attribute: str,
    *,
    bootstrap_rounds: int = DEFAULT_ROUNDS,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Aggregate :func:`probe_users` output into the long probe table with bootstrap CIs over users.

    Rows, each with a percentile bootstrap CI (users resampled with replacement):

    - one per (``original_value``, ``counterfactual_value``, metric): the mean over users holding
      ``original_value`` — including ``original_value="unknown"``, reported separately;
    - one per (``original_value="all"``, ``counterfactual_value``, metric): the mean over all users
      with a *known* original value other than ``counterfactual_value`` (unknown users excluded);
    - for each list metric ``m``, FaiRLLM's spread across counterfactual values of those pooled
      means (known users only): ``m_snsr`` = max - min and ``m_snsv`` = population std (ddof 0),
      with ``original_value = counterfactual_value = "all"``. 0 means every value is treated alike.

    Parameters
    ----------
    per_user : DataFrame
        Output of :func:`probe_users`.
    attribute : str
        Name written to the ``attribute`` column.
    bootstrap_rounds : int
        Resamples (0 gives point estimates with CI = estimate).
    confidence : float
        CI level.
    seed : int
        Seed of the resampling.

    Returns
    -------
    DataFrame
        Columns :data:`PROBE_COLUMNS`.

    Examples
    --------
    >>> per_user = pd.DataFrame({"user_id": ["a", "b"], "original_value": ["F", "M"],
    ...                          "counterfactual_value": ["M", "F"], "jaccard": [1.0, 0.5]})
    >>> table = summarise_probe(per_user, "gender", bootstrap_rounds=0)
    >>> table.loc[table["metric"] == "jaccard_snsr", "estimate"].tolist()
    [0.5]
    """
    metrics = [c for c in per_user.columns if c not in ("user_id", "original_value", "counterfactual_value")]
    list_metrics = [m for m in metrics if m in LIST_METRICS]
    rng = seeded_rng(seed, "probe", attribute)
    out = []
    for (original, value), group in per_user.groupby(["original_value", "counterfactual_value"], sort=True):
        data = group[metrics].to_numpy(dtype=float)
        boots = _bootstrap_means(data, bootstrap_rounds, rng)
        out.append(_rows(attribute, original, value, metrics, data.mean(axis=0), boots, len(group), confidence))

    known = per_user[per_user["original_value"] != UNKNOWN]
    wide = known.pivot(index="user_id", columns="counterfactual_value", values=metrics)
    values = list(wide.columns.get_level_values(1).unique())
    matrix = wide.to_numpy(dtype=float)  # users x (metric, value), NaN where value == own value
    estimate = np.nanmean(matrix, axis=0)
    boots = _bootstrap_means(matrix, bootstrap_rounds, rng)
    n_users = (~np.isnan(matrix)).sum(axis=0)
    names = wide.columns.get_level_values(0)
    out.append(
        _rows(attribute, ALL, wide.columns.get_level_values(1), names, estimate, boots, n_users, confidence)
    )
    if list_metrics:
        mask = names.isin(list_metrics)
        per_value = estimate[mask].reshape(len(list_metrics), len(values))
        boot_values = boots[:, mask].reshape(len(boots), len(list_metrics), len(values))
        for stat, fn in (("snsr", lambda a: a.max(axis=-1) - a.min(axis=-1)), ("snsv", lambda a: a.std(axis=-1))):
            out.append(
                _rows(attribute, ALL, ALL, [f"{m}_{stat}" for m in list_metrics], fn(per_value), fn(boot_values),
                      len(wide), confidence)
            )
    return pd.concat(out, ignore_index=True)[list(PROBE_COLUMNS)]


def probe_attribute(
    model: Recommender,
    dataset: Dataset,
    attribute: str,
    *,
    users: int | Sequence[str] | None = None,
    k: int = 10,
    values: Sequence[str] | None = None,
    item_attributes: Sequence[str] | None = None,
    seed: int = 0,
    bootstrap_rounds: int = DEFAULT_ROUNDS,
    confidence: float = 0.95,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Counterfactual probe of one sensitive attribute: :func:`probe_users` then :func:`summarise_probe`.

    Parameters are those of the two functions. A model that is not ``probeable`` raises
    ``ValueError`` (:data:`NOT_PROBEABLE`) instead of reporting zero change. Users whose original value is ``"unknown"`` are
    probed with every value and reported under ``original_value="unknown"``, but left out of the
    pooled (``"all"``) rows and of the SNSR/SNSV spread, whose meaning needs a known original.

    Returns
    -------
    DataFrame
        Columns :data:`PROBE_COLUMNS` (the ``probes.csv`` schema).

    Examples
    --------
    >>> from fairaudit.models import create_model
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"], "gender": ["F", "M"]}),
    ...                pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]}))
    >>> model = create_model("popularity").fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> table = probe_attribute(model, data, "gender", k=2, bootstrap_rounds=10)
    >>> table.query("metric == 'prag'")[["original_value", "counterfactual_value", "estimate"]].values.tolist()
    [['F', 'M', 1.0], ['M', 'F', 1.0], ['all', 'F', 1.0], ['all', 'M', 1.0]]
    """
    if not model.probeable:
        reason = getattr(model, "not_probeable_reason", NOT_PROBEABLE)  # a kind may say why in its words
        raise ValueError(reason.format(getattr(model, "name", None) or getattr(model, "system", None) or model.kind))
    per_user = probe_users(
        model, dataset, attribute, users=users, k=k, values=values, item_attributes=item_attributes, seed=seed,
        progress=progress,
    )
    return summarise_probe(per_user, attribute, bootstrap_rounds=bootstrap_rounds, confidence=confidence, seed=seed)
