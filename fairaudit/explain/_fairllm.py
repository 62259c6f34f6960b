"""The FaiRLLM / CFaiRLLM probe of LLM recommenders: does stating a user attribute change the list?

Protocol (Zhang et al., RecSys 2023; Deldjoo & Di Noia 2025), per sampled user and K:

- a **neutral** list: every probed attribute left out of the prompt (``attribute_overrides`` set to
  ``"unknown"``: the generative model then states nothing, the two-tower LLM reads "unknown" in its
  profile text);
- one list per **attribute value** and per value combination of an intersection (``gender*age_band``),
  that attribute stated, everything else as in the neutral prompt;
- the **re-ask** baseline: the neutral prompt asked again with another seed (the decoding noise; zero
  for greedy decoding and for deterministic models).

Each value's list is compared with the neutral list (Jaccard@K, SERP*@K, PRAG*@K, FaiRLLM's code
conventions, :mod:`fairaudit.explain._listsim`) and with the user's held-out items (CFaiRLLM's
true-preference view; the neutral list's own similarity to them is the ``neutral`` row). SNSR (max - min)
and SNSV (population std) across values summarise each attribute, with bootstrap CIs over users (the same
users answer every prompt, so the resampling is paired). A one-sided sign-flip permutation test asks
whether the attribute changes the list more than re-asking does: per user, the re-ask similarity minus
the mean similarity over the attribute's values. For the generative model in ``generate`` mode, the
shares of hallucinated (unmatched) and duplicated titles are reported per user group.

Result: one long table (:data:`FAIRLLM_COLUMNS`, the audit folder's ``fairllm.csv``).
"""

from __future__ import annotations

import itertools
import warnings
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from fairaudit.audit import ALL, INTERSECTION_SEP, TABLES, attribute_groups
from fairaudit.data import UNKNOWN, Dataset, Split
from fairaudit.explain._listsim import EMPTY
from fairaudit.explain._probe import LIST_METRICS, _bootstrap_means, top_k_codes
from fairaudit.metrics import DEFAULT_ROUNDS, seeded_rng
from fairaudit.models import Recommender

#: Columns of the FaiRLLM probe table (``fairllm.csv``; schema ``fairaudit.audit.TABLES["fairllm"]``).
FAIRLLM_COLUMNS = TABLES["fairllm"].columns
#: ``group`` of the neutral prompt's rows.
NEUTRAL = "neutral"
#: What a row's lists are compared with: the neutral list, the held-out items, the neutral list
#: asked again (the decoding-noise baseline), or nothing (generation quality counts).
REFERENCES = ("neutral", "held_out", "repeat", "generation")
#: Generation-quality metrics (per user: share of the generated titles).
GENERATION_METRICS = ("hallucination_share", "duplicate_share", "match_share")
#: Suffix of the permutation-test rows: ``jaccard_change_vs_noise``.
NOISE_SUFFIX = "_change_vs_noise"
#: Users probed by default.
DEFAULT_FAIRLLM_USERS = 200

_TOO_FEW_VALUES = "Attribute '{0}' needs at least two known values to probe; found {1}"
_UNKNOWN_VALUES = "Value(s) {1} of attribute '{0}' are not in the users table; known values: {2}"
_NO_USERS = "No user is known to every probed model and to the dataset's users table"


def attribute_settings(dataset: Dataset, spec: str, values: Sequence[str] | None = None) -> list[tuple[str, dict]]:
    """``(group label, attribute_overrides)`` for every value (or value combination) of an attribute spec.

    Intersections (``gender*age_band``) take the product of the parts' known values; ``values``
    restricts a plain attribute (or lists combination labels such as ``F*25-34``).

    >>> from fairaudit.data import Dataset
    >>> users = pd.DataFrame({"user_id": ["a", "b"], "gender": ["F", "M"], "age": ["1", "unknown"]})
    >>> data = Dataset(pd.DataFrame(columns=["user_id", "item_id"]), users, pd.DataFrame({"item_id": ["x"]}))
    >>> attribute_settings(data, "gender")
    [('F', {'gender': 'F'}), ('M', {'gender': 'M'})]
    """
    parts = spec.split(INTERSECTION_SEP)
    attribute_groups(dataset.users.head(0), spec)  # names the unknown column, if any
    known = [sorted(set(dataset.users[p].astype(str)) - {UNKNOWN}) for p in parts]
    combos = [INTERSECTION_SEP.join(c) for c in itertools.product(*known)]
    settings = [(label, dict(zip(parts, label.split(INTERSECTION_SEP)))) for label in combos]
    if values is not None:
        wanted = [str(v) for v in values]
        missing = [v for v in wanted if v not in combos]
        if missing:
            raise ValueError(_UNKNOWN_VALUES.format(spec, missing, combos))
        settings = [s for s in settings if s[0] in wanted]
    if len(settings) < 2:
        raise ValueError(_TOO_FEW_VALUES.format(spec, [s[0] for s in settings]))
    return settings


def model_lists(model: Recommender, user_ids: Sequence[str], k: int, overrides: Mapping[str, str],
                seed: int) -> np.ndarray:  # fmt: skip
    """Top-K item positions (users x K, ``-1`` padded) the model gives under ``overrides``.

    A generative model gives what it generated itself (never filled from retrieval) and re-asks with
    ``seed``; any other model its ``recommend`` lists (deterministic: every seed gives the same list).
    """
    own = getattr(model, "generated_lists", None)
    if own is not None:
        return own(list(user_ids), k, attribute_overrides=dict(overrides), seed=seed)
    return top_k_codes(model, list(user_ids), k, dict(overrides))


def held_out_codes(model: Recommender, split: Split, user_ids: Sequence[str], k: int) -> np.ndarray:
    """Each user's held-out items (best rating first, then latest), as K item positions, ``-1`` padded.

    >>> from fairaudit.models import create_model
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a", "a", "a"], "item_id": ["x", "y", "z"], "rating": [3.0, 5.0, 4.0]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a"]}), pd.DataFrame({"item_id": ["x", "y", "z"]}))
    >>> split = Split(inter.iloc[:1], inter.iloc[1:], "x", 0)
    >>> held_out_codes(create_model("popularity").fit(data, split), split, ["a"], 3).tolist()
    [[1, 2, -1]]
    """
    test = split.test.assign(user_id=split.test["user_id"].astype(str), item_id=split.test["item_id"].astype(str))
    keys = [c for c in ("rating", "timestamp") if c in test.columns]
    test = test.sort_values(["user_id", *keys], ascending=[True, *[False] * len(keys)], kind="stable")
    test = test[test["item_id"].isin(pd.Index(model.item_ids_))]
    top = test.groupby("user_id", sort=False).head(k)
    rows = pd.Index(pd.Series(list(user_ids), dtype=object).astype(str)).get_indexer(top["user_id"])
    top, rows = top[rows >= 0], rows[rows >= 0]
    out = np.full((len(user_ids), k), EMPTY, dtype=np.int64)
    out[rows, top.groupby("user_id", sort=False).cumcount().to_numpy()] = model.item_positions(top["item_id"])
    return out


def _similarities(x: np.ndarray, y: np.ndarray, defined: np.ndarray | None = None) -> dict[str, np.ndarray]:
    out = {name: fn(x, y) for name, fn in LIST_METRICS.items()}
    if defined is not None:
        out = {name: np.where(defined, v, np.nan) for name, v in out.items()}
    return out


def fairllm_users(
    model: Recommender,
    dataset: Dataset,
    split: Split | None,
    attributes: Sequence[str],
    *,
    users: int | Sequence[str] | None = DEFAULT_FAIRLLM_USERS,
    k: int = 10,
    values: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Per-user similarities of the FaiRLLM protocol (see module docstring), long: one row per user and number.

    Columns ``user_id, attribute, group, reference, metric, value``: ``reference="neutral"`` rows compare
    a value's list with the neutral list, ``"held_out"`` rows a value's (or the neutral, ``group="neutral"``)
    list with the user's held-out items (NaN for users without any; no such rows without ``split``), ``"repeat"`` rows
    (``attribute="all"``, ``group="neutral"``) the re-asked neutral list with the first one, and
    ``"generation"`` rows a generative model's per-user generation counts as shares
    (:data:`GENERATION_METRICS`, grouped later by the user's own group). ``progress(done, total)`` counts
    the prompts (one per user and list) answered, after each list.
    """
    user_ids = _probe_user_ids([model], dataset, split, users, seed)
    plain = list(dict.fromkeys(p for spec in attributes for p in spec.split(INTERSECTION_SEP)))
    neutral_overrides = {p: UNKNOWN for p in plain}
    settings = {spec: attribute_settings(dataset, spec, (values or {}).get(spec)) for spec in attributes}
    total, asked = len(user_ids) * (2 + sum(len(s) for s in settings.values())), 0

    def lists(overrides: Mapping[str, str], list_seed: int) -> np.ndarray:
        nonlocal asked
        out = model_lists(model, user_ids, k, overrides, list_seed)
        asked += len(user_ids)
        if progress is not None:
            progress(asked, total)
        return out

    if progress is not None:
        progress(0, total)
    neutral = lists(neutral_overrides, seed)
    repeat = lists(neutral_overrides, seed + 1)
    truth = held_out_codes(model, split, user_ids, k) if split is not None else np.full((len(user_ids), k), EMPTY)
    has_truth = (truth != EMPTY).any(axis=1)
    frames = []

    def add(attribute: str, group: str, reference: str, numbers: Mapping[str, np.ndarray]) -> None:
        for metric, value in numbers.items():
            frames.append(pd.DataFrame({"user_id": user_ids, "attribute": attribute, "group": group,
                                        "reference": reference, "metric": metric, "value": value}))  # fmt: skip

    add(ALL, NEUTRAL, "repeat", _similarities(repeat, neutral))
    if split is not None:
        add(ALL, NEUTRAL, "held_out", _similarities(neutral, truth, has_truth))
    for spec, spec_settings in settings.items():
        for label, overrides in spec_settings:
            stated = lists({**neutral_overrides, **overrides}, seed)
            add(spec, label, "neutral", _similarities(stated, neutral))
            if split is not None:
                add(spec, label, "held_out", _similarities(stated, truth, has_truth))
    stats = getattr(model, "generation_stats", None)
    if stats is not None and getattr(model, "mode", None) == "generate":
        counts = stats(list(user_ids), attribute_overrides=neutral_overrides, seed=seed)
        generated = counts["n_generated"].to_numpy(dtype=float)
        matched = counts["n_matched"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = {
                "hallucination_share": np.where(generated > 0, counts["n_hallucinated"] / generated, np.nan),
                "duplicate_share": np.where(matched > 0, counts["n_duplicate"] / matched, np.nan),
                "match_share": np.where(generated > 0, matched / generated, np.nan),
            }
        add(ALL, NEUTRAL, "generation", shares)
    return pd.concat(frames, ignore_index=True)


def _probe_user_ids(models: Sequence[Recommender], dataset: Dataset, split: Split | None,
                    users: int | Sequence[str] | None, seed: int) -> np.ndarray:  # fmt: skip
    known = pd.Index(dataset.users["user_id"].astype(str))
    for model in models:
        known = known.intersection(pd.Index(model.user_ids_), sort=False)
    if split is not None and isinstance(users, (int, np.integer)):  # prefer users with held-out items
        with_test = known.intersection(pd.Index(split.test["user_id"].astype(str).unique()), sort=False)
        known = with_test if len(with_test) >= min(int(users), len(known)) else known
    if users is None:
        chosen = known.to_numpy(dtype=object)
    elif isinstance(users, (int, np.integer)):
        rng = seeded_rng(seed, "fairllm-users")
        chosen = known.to_numpy(dtype=object)[np.sort(rng.permutation(len(known))[: int(users)])]
    else:
        chosen = pd.Index(pd.Series(list(users), dtype=object).astype(str)).intersection(known, sort=False).to_numpy()
    if len(chosen) == 0:
        raise ValueError(_NO_USERS)
    return chosen


def _ci(boots: np.ndarray, estimate: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    if not len(boots):
        return estimate, estimate
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return tuple(np.nanquantile(boots, [alpha, 1.0 - alpha], axis=0))


def _frame(attribute, group, reference, metric, estimate, low, high, n_users, p_value=np.nan) -> pd.DataFrame:
    return pd.DataFrame({"attribute": attribute, "group": group, "reference": reference, "metric": metric,
                         "estimate": estimate, "ci_low": low, "ci_high": high, "n_users": n_users,
                         "p_value": p_value})  # fmt: skip


def sign_flip_p_values(differences: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """One-sided p-values of "mean > 0" per column of paired per-user ``differences`` (NaN rows skipped).

    Each round flips the sign of every user's difference at random (the null: the two conditions are
    exchangeable); p = (1 + #rounds with mean >= observed) / (1 + rounds). All-zero columns give 1.

    >>> d = np.column_stack([np.full(30, 0.5), np.zeros(30)])
    >>> sign_flip_p_values(d, 199, np.random.default_rng(0)).round(3).tolist()
    [0.005, 1.0]
    """
    defined = ~np.isnan(differences)
    values = np.where(defined, differences, 0.0)
    n = np.maximum(defined.sum(axis=0), 1)
    observed = values.sum(axis=0) / n
    signs = rng.choice(np.array([-1.0, 1.0]), size=(rounds, values.shape[0]))
    null = signs @ values / n
    return (1.0 + (null >= observed - 1e-12).sum(axis=0)) / (1.0 + rounds)


def summarise_fairllm(
    per_user: pd.DataFrame,
    dataset: Dataset,
    *,
    bootstrap_rounds: int = DEFAULT_ROUNDS,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """The FaiRLLM table from :func:`fairllm_users`: means with bootstrap CIs, SNSR/SNSV, the noise test.

    Rows (columns :data:`FAIRLLM_COLUMNS` without ``model``):

    - per (attribute, group, reference, metric): the mean over users, percentile bootstrap CI;
    - per (attribute, reference, list metric): ``<m>_snsr`` and ``<m>_snsv`` over the attribute's
      values (``group="all"``), the users resampled jointly for every value;
    - per (attribute, list metric): ``<m>_change_vs_noise`` (``reference="repeat"``): the mean over
      users of (re-ask similarity - mean similarity over the attribute's values to the neutral list),
      its CI and the one-sided sign-flip permutation ``p_value`` (:func:`sign_flip_p_values`);
    - generation shares per user group of every probed attribute (and ``all``) for generative models.

    Examples
    --------
    >>> per_user = pd.DataFrame({"user_id": ["a", "b", "a", "b"], "attribute": "gender", "group": ["F", "F", "M", "M"],
    ...                          "reference": "neutral", "metric": "jaccard", "value": [1.0, 1.0, 0.5, 0.5]})
    >>> table = summarise_fairllm(per_user, None, bootstrap_rounds=0)
    >>> table.loc[table["metric"] == "jaccard_snsr", "estimate"].tolist()
    [0.5]
    """
    rng = seeded_rng(seed, "fairllm")
    out = []
    plain = per_user[per_user["reference"] != "generation"]
    keys = ["attribute", "group", "reference", "metric"]
    wide = plain.pivot(index="user_id", columns=keys, values="value")
    wide = wide.reindex(columns=pd.MultiIndex.from_frame(plain[keys].drop_duplicates()))
    matrix = wide.to_numpy(dtype=float)
    boots = _bootstrap_means(matrix, bootstrap_rounds, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        estimate = np.nanmean(matrix, axis=0)
    low, high = _ci(boots, estimate, confidence)
    columns = wide.columns.to_frame(index=False)
    out.append(_frame(columns["attribute"], columns["group"], columns["reference"], columns["metric"], estimate,
                      low, high, (~np.isnan(matrix)).sum(axis=0)))  # fmt: skip

    # SNSR/SNSV across an attribute's values, and the re-ask test, from the same resampled means.
    repeat_cols = (columns["reference"] == "repeat").to_numpy()
    for (attribute, reference), part in columns[columns["attribute"] != ALL].groupby(["attribute", "reference"],
                                                                                      sort=False):  # fmt: skip
        for metric in LIST_METRICS:
            cols = part.index[part["metric"] == metric].to_numpy()
            if len(cols) < 2:
                continue
            point, sampled = estimate[cols], boots[:, cols] if len(boots) else boots
            n_users = int((~np.isnan(matrix[:, cols])).any(axis=1).sum())
            for stat, fn in (("snsr", lambda a: np.nanmax(a, -1) - np.nanmin(a, -1)),
                             ("snsv", lambda a: np.nanstd(a, -1))):  # fmt: skip
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    value = fn(point[None, :])
                    lo, hi = _ci(fn(sampled), value, confidence) if len(sampled) else (value, value)
                out.append(_frame(attribute, ALL, reference, f"{metric}_{stat}", value, lo, hi, n_users))
            if reference != "neutral" or not repeat_cols.any():
                continue
            noise = np.flatnonzero(repeat_cols & (columns["metric"] == metric).to_numpy())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                change = matrix[:, noise[0]] - np.nanmean(matrix[:, cols], axis=1)
            change_boots = _bootstrap_means(change[:, None], bootstrap_rounds, rng)
            value = np.array([np.nanmean(change)])
            lo, hi = _ci(change_boots, value, confidence)
            p = sign_flip_p_values(change[:, None], max(bootstrap_rounds, 199), rng)
            out.append(_frame(attribute, ALL, "repeat", f"{metric}{NOISE_SUFFIX}", value, lo, hi,
                              int((~np.isnan(change)).sum()), p))  # fmt: skip

    generation = per_user[per_user["reference"] == "generation"]
    if len(generation) and dataset is not None:
        shares = generation.pivot(index="user_id", columns="metric", values="value")
        specs = [a for a in dict.fromkeys(plain["attribute"]) if a != ALL]
        users = dataset.users.assign(user_id=dataset.users["user_id"].astype(str))
        for spec in [ALL, *specs]:
            labels = (pd.Series(ALL, index=shares.index) if spec == ALL
                      else attribute_groups(users, spec).reindex(shares.index).fillna(UNKNOWN))  # fmt: skip
            for group, rows in shares.groupby(labels.to_numpy(), sort=True):
                data = rows.to_numpy(dtype=float)
                boots = _bootstrap_means(data, bootstrap_rounds, rng)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    point = np.nanmean(data, axis=0)
                lo, hi = _ci(boots, point, confidence)
                out.append(_frame(spec, group, "generation", list(rows.columns), point, lo, hi,
                                  (~np.isnan(data)).sum(axis=0)))  # fmt: skip
    return pd.concat(out, ignore_index=True)[[c for c in FAIRLLM_COLUMNS if c != "model"]]


def fairllm_probe(
    models: Mapping[str, Recommender],
    dataset: Dataset,
    split: Split | None,
    attributes: Sequence[str],
    *,
    users: int | Sequence[str] | None = DEFAULT_FAIRLLM_USERS,
    k: int = 10,
    values: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    bootstrap_rounds: int = DEFAULT_ROUNDS,
    confidence: float = 0.95,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """The FaiRLLM/CFaiRLLM probe of one or more models on the same users: one table (``fairllm.csv``).

    Parameters
    ----------
    models : mapping
        Display name -> fitted model (e.g. ``{"generative": gen, "llm": two_tower}``); every model
        answers for the same sampled users. Models must be ``probeable``.
    dataset : Dataset
        Users (attribute values) and items.
    split : Split, optional
        The models' split; its test part gives the held-out items (``held_out`` rows), ``None`` skips them.
    attributes : sequence of str
        Attribute specs, plain (``gender``) or intersections (``gender*age_band``).
    users : int, sequence of str or None
        A seeded sample of that many users (those with held-out items first), these ids, or all.
    k : int
        List length K.
    values : mapping, optional
        Spec -> the values (or ``*``-joined combinations) to state; default every known one.
    seed : int
        Seeds the user sample, the re-ask (``seed + 1``) and the bootstrap.
    bootstrap_rounds, confidence
        Bootstrap resamples over users and CI level.
    progress : callable, optional
        ``progress(done, total)``: prompts answered (one per user and list), over all models.

    Returns
    -------
    DataFrame
        Columns :data:`FAIRLLM_COLUMNS`.

    Examples
    --------
    >>> from fairaudit.models import create_model
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"], "gender": ["F", "M"]}),
    ...                pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]}))
    >>> model = create_model("popularity").fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> table = fairllm_probe({"pop": model}, data, None, ["gender"], k=2, bootstrap_rounds=20)
    >>> table.query("metric == 'jaccard_snsr'")["estimate"].tolist()
    [0.0]
    """
    from fairaudit.explain._probe import NOT_PROBEABLE

    for name, model in models.items():
        if not model.probeable:
            raise ValueError(getattr(model, "not_probeable_reason", NOT_PROBEABLE).format(name))
    user_ids = _probe_user_ids(list(models.values()), dataset, split, users, seed)
    frames = []
    for n, (name, model) in enumerate(models.items()):
        counted = None if progress is None else (
            lambda done, total, n=n: progress(n * total + done, len(models) * total))  # fmt: skip
        per_user = fairllm_users(model, dataset, split, attributes, users=user_ids, k=k, values=values, seed=seed,
                                 progress=counted)  # fmt: skip
        table = summarise_fairllm(per_user, dataset, bootstrap_rounds=bootstrap_rounds, confidence=confidence,
                                  seed=seed)  # fmt: skip
        frames.append(table.assign(model=name))
    return pd.concat(frames, ignore_index=True)[list(FAIRLLM_COLUMNS)]


def fairllm_summary(table: pd.DataFrame, *, metric: str = "jaccard") -> pd.DataFrame:
    """The headline rows of a FaiRLLM table for a page or report: one row per model and attribute.

    Columns ``model, attribute, snsr, snsr_ci_low, snsr_ci_high, snsv, change_vs_noise, p_value`` for
    ``metric`` against the neutral list.

    >>> t = pd.DataFrame({"model": "m", "attribute": "gender", "group": "all", "reference": ["neutral", "neutral",
    ...                   "repeat"], "metric": ["jaccard_snsr", "jaccard_snsv", "jaccard_change_vs_noise"],
    ...                   "estimate": [0.2, 0.1, 0.3], "ci_low": 0.0, "ci_high": 0.5, "n_users": 9, "p_value": 0.01})
    >>> fairllm_summary(t)[["snsr", "change_vs_noise", "p_value"]].values.tolist()
    [[0.2, 0.3, 0.01]]
    """
    rows = table[(table["group"] == ALL) & (table["attribute"] != ALL)]
    out = []
    for (model, attribute), part in rows.groupby(["model", "attribute"], sort=False):
        def pick(reference: str, name: str) -> pd.Series:
            found = part[(part["reference"] == reference) & (part["metric"] == name)]
            return found.iloc[0] if len(found) else pd.Series({c: np.nan for c in table.columns})

        snsr, snsv = pick("neutral", f"{metric}_snsr"), pick("neutral", f"{metric}_snsv")
        test = pick("repeat", f"{metric}{NOISE_SUFFIX}")
        out.append({"model": model, "attribute": attribute, "snsr": snsr["estimate"], "snsr_ci_low": snsr["ci_low"],
                    "snsr_ci_high": snsr["ci_high"], "snsv": snsv["estimate"],
                    "change_vs_noise": test["estimate"], "p_value": test["p_value"]})  # fmt: skip
    return pd.DataFrame(out, columns=["model", "attribute", "snsr", "snsr_ci_low", "snsr_ci_high", "snsv",
                                      "change_vs_noise", "p_value"])  # fmt: skip


def fairllm_figure(table: pd.DataFrame, *, metric: str = "jaccard", reference: str = "neutral"):
    """Plotly bar chart: each value's mean ``metric`` against ``reference``, per model and attribute, 95% CIs.

    For the Explain page (and the report's chart): one bar per (attribute value, model).
    """
    import plotly.graph_objects as go

    rows = table[(table["reference"] == reference) & (table["metric"] == metric) & (table["group"] != ALL)]
    figure = go.Figure()
    for model, part in rows.groupby("model", sort=False):
        labels = part["attribute"] + ": " + part["group"]
        figure.add_bar(name=str(model), x=labels, y=part["estimate"],
                       error_y={"type": "data", "symmetric": False, "array": part["ci_high"] - part["estimate"],
                                "arrayminus": part["estimate"] - part["ci_low"]})  # fmt: skip
    figure.update_layout(barmode="group", yaxis_title=f"{metric}@K vs {reference}", xaxis_title="stated value",
                         title=f"FaiRLLM probe: {metric} of each value's list against the {reference} list")  # fmt: skip
    return figure
