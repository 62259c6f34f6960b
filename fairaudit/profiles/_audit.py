"""The audit of text profiles: whom they serve, what they leak, and what gender markers change.

Three tables, each with bootstrap CIs over users, added to an ordinary audit folder of the model
without texts and the model with texts (audited together on the same test users):

- ``profile_accuracy.csv`` - accuracy with minus without texts, overall, per user group, per
  activity level and for users with / without texts (``has_texts``): the paired comparison of
  :func:`fairaudit.compare.compare_models` ("who gains?").
- ``profile_leakage.csv`` - how well each sensitive attribute is recovered from a representation
  of the user: the text profile (the pooled text embeddings the model reads), the interaction-only
  user vector (model without texts) and the full user vector of the model with texts. Out-of-fold
  logistic regression (:func:`fairaudit.models.attribute_scores`, the recovery measure of the
  adversarial mitigation): accuracy against the majority-class rate and macro one-vs-rest AUC against
  0.5, each with a percentile bootstrap CI, plus the paired difference to the interaction-only
  vector (same users, same resamples).
- ``text_counterfactual.csv`` - every gender marker of :data:`fairaudit.data.GENDER_MARKER_PAIRS`
  in a user's texts swapped (:func:`fairaudit.profiles.rewrite_texts`), the profile re-encoded,
  and the new top-K compared with the original: Jaccard@K, SERP*@K, PRAG*@K (FaiRLLM conventions,
  :mod:`fairaudit.explain`), the share of changed lists and of users with a rewritten marker, and
  each item group's exposure change, per user group (:class:`fairaudit.metrics.SliceReport`).

No text is written anywhere: the tables hold counts and statistics only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.audit import (
    ALL, TABLES, AuditConfig, AuditResult, attribute_groups, plain_attributes, run_audit, train_derived_users,
)  # fmt: skip
from fairaudit.compare import add_comparison, compare_models
from fairaudit.data import GENDER_MARKER_PAIRS, UNKNOWN, Dataset, Split, text_summary, texts_per_user
from fairaudit.explain import exposure_metric, group_share, top_k_codes
from fairaudit.explain._probe import LIST_METRICS
from fairaudit.metrics import ACCURACY_METRICS, DEFAULT_ROUNDS, MIN_GROUP_SIZE, SliceReport, bootstrap_counts
from fairaudit.metrics import seeded_rng
from fairaudit.models import Recommender, TextEncoder, attribute_auc, attribute_scores
from fairaudit.profiles._rewrite import rewrite_texts, swap_map

#: Model names in the audit folder of :func:`run_profile_audit`.
WITHOUT_TEXTS, WITH_TEXTS = "without_texts", "with_texts"
#: Representations whose attribute leakage is measured.
TEXT_PROFILE, INTERACTIONS = "text_profile", "interactions"
#: Slice of users by whether they wrote any text (groups ``yes`` / ``no``).
HAS_TEXTS = "has_texts"
#: ``reference`` of the leakage rows measured against chance (majority rate, AUC 0.5).
CHANCE = "chance"
#: Status lines :func:`run_profile_audit` reports: both audits, accuracy, leakage, text counterfactual.
PROFILE_AUDIT_STEPS = 4
#: Per-user columns of the text counterfactual besides the list similarities and exposure changes.
CHANGED, REWRITTEN, MARKERS = "changed", "rewritten", "markers"
PROFILE_ACCURACY_COLUMNS = TABLES["profile_accuracy"].columns
PROFILE_LEAKAGE_COLUMNS = TABLES["profile_leakage"].columns
TEXT_COUNTERFACTUAL_COLUMNS = TABLES["text_counterfactual"].columns

_NO_TEXTS = "The dataset has no user texts (user_texts.csv); the audit of text profiles needs them"
_NOT_TEXT_MODEL = "Model '{0}' does not read user texts (train it with use_texts=True / --use-texts)"
_READS_TEXTS = "Model '{0}' reads user texts; the baseline of the audit must be trained without them"
_FEW_USERS = "Attribute '{0}': fewer than {1} users with texts in each of two known groups; leakage not measured"
_NO_VECTORS = "Model kind '{0}' exposes no user_vectors(user_ids); its leakage is not measured"


def text_groups(dataset: Dataset, user_ids: Sequence[str]) -> pd.Series:
    """``user_id -> "yes"/"no"``: whether the user wrote any text (the :data:`HAS_TEXTS` slice).

    >>> from fairaudit.data import Dataset
    >>> data = Dataset(pd.DataFrame(columns=["user_id", "item_id"]), pd.DataFrame({"user_id": ["a", "b"]}),
    ...                pd.DataFrame(), texts=pd.DataFrame({"user_id": ["b"], "text": ["Hi"]}))
    >>> text_groups(data, ["a", "b"]).tolist()
    ['no', 'yes']
    """
    index = pd.Index(pd.Series(list(user_ids), dtype=object).astype(str), name="user_id")
    counts = texts_per_user(dataset).reindex(index).fillna(0).to_numpy()
    return pd.Series(np.where(counts > 0, "yes", "no"), index=index, name=HAS_TEXTS)


def text_coverage(dataset: Dataset, attributes: Sequence[str]) -> pd.DataFrame:
    """Who has texts: per group of each attribute spec (and ``all``), users, users with texts and their share.

    >>> from fairaudit.data import Dataset
    >>> users = pd.DataFrame({"user_id": ["a", "b", "c"], "gender": ["F", "F", "M"]})
    >>> data = Dataset(pd.DataFrame(columns=["user_id", "item_id"]), users, pd.DataFrame(),
    ...                texts=pd.DataFrame({"user_id": ["a", "a", "c"], "text": ["x", "y", "z"]}))
    >>> text_coverage(data, ["gender"]).values.tolist()
    [['all', 'all', 3, 2, 0.6666666666666666, 1.5], ['gender', 'F', 2, 1, 0.5, 2.0], ['gender', 'M', 1, 1, 1.0, 1.0]]
    """
    counts = texts_per_user(dataset)
    counts.index = counts.index.astype(str)
    frames = []
    for spec in (ALL, *attributes):
        labels = pd.Series(ALL, index=counts.index) if spec == ALL else attribute_groups(dataset.users, spec)
        grouped = pd.DataFrame({"n": counts.to_numpy(), "group": labels.reindex(counts.index).to_numpy()})
        summary = grouped.groupby("group", sort=True)["n"].agg(
            n_users="size", n_with_texts=lambda n: int((n > 0).sum()), texts_per_writer=lambda n: n[n > 0].mean()
        )  # fmt: skip
        frames.append(summary.reset_index().assign(attribute=spec))
    out = pd.concat(frames, ignore_index=True)
    out["share_with_texts"] = out["n_with_texts"] / out["n_users"]
    return out[["attribute", "group", "n_users", "n_with_texts", "share_with_texts", "texts_per_writer"]]


def profile_accuracy(
    user_metrics: pd.DataFrame,
    groups: Mapping[str, pd.Series],
    *,
    model_without: str = WITHOUT_TEXTS,
    model_with: str = WITH_TEXTS,
    metrics: Sequence[str] = ACCURACY_METRICS,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    confidence: float = 0.95,
    min_group_size: int = MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Accuracy with minus without text profiles per group: :func:`fairaudit.compare.compare_models` rows.

    ``groups`` maps attribute specs (``gender``, ``activity``, :data:`HAS_TEXTS` ...) to ``user_id ->
    group``; ``difference = b - a`` (with - without) with a paired-bootstrap CI over the users both
    models were audited on. Columns :data:`PROFILE_ACCURACY_COLUMNS` (those of ``comparison.csv``).

    >>> um = pd.DataFrame({"model": ["without_texts"] * 3 + ["with_texts"] * 3, "user_id": ["a", "b", "c"] * 2,
    ...                    "ndcg": [0.1, 0.2, 0.3, 0.3, 0.2, 0.3]})
    >>> profile_accuracy(um, {}, metrics=["ndcg"], rounds=20)[["group", "difference"]].round(3).values.tolist()
    [['all', 0.067]]
    """
    metrics = [m for m in metrics if m in user_metrics.columns]
    table = compare_models(
        user_metrics, model_a=model_without, model_b=model_with, groups=dict(groups), metrics=metrics, rounds=rounds,
        seed=seed, confidence=confidence, min_group_size=min_group_size,
    )  # fmt: skip
    return table[list(PROFILE_ACCURACY_COLUMNS)]


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    kept = replicates[~np.isnan(replicates)]
    if not len(kept):
        return np.nan, np.nan
    low, high = np.quantile(kept, [tail, 1.0 - tail])
    return float(low), float(high)


def profile_leakage(
    vectors: Mapping[str, np.ndarray],
    labels: Mapping[str, pd.Series],
    *,
    reference: str | None = INTERACTIONS,
    folds: int = 3,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    confidence: float = 0.95,
    min_group_size: int = MIN_GROUP_SIZE,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """How well each attribute is recovered from each representation, against chance and against ``reference``.

    Parameters
    ----------
    vectors : mapping
        Representation name -> users x dims matrix, rows in the order of every ``labels`` Series.
    labels : mapping
        Attribute -> Series of the users' groups (index: user ids, one per row of the matrices).
        Users of group ``"unknown"`` and groups of fewer than ``max(min_group_size, folds)`` users
        are left out; an attribute with fewer than two groups left is skipped (a note says so).
    reference : str, optional
        Representation the others are compared with (paired: the same users and resamples); skipped
        when absent from ``vectors``.
    folds, rounds, seed, confidence
        Cross-validation folds of the classifier, bootstrap resamples over users, seed, CI level.
    min_group_size : int
        Smallest group kept.
    notes : list, optional
        Receives a sentence per attribute skipped.

    Returns
    -------
    DataFrame
        Columns :data:`PROFILE_LEAKAGE_COLUMNS`. Per representation and attribute (``reference =
        "chance"``): ``accuracy`` (out-of-fold recovery; ``chance`` = majority-class rate),
        ``accuracy_over_chance`` (accuracy minus that rate; chance 0) and ``auc`` (macro one-vs-rest;
        chance 0.5). Per other representation (``reference`` = its name): ``accuracy_difference`` and
        ``auc_difference`` (this minus the reference). ``significant``: against chance, the CI lies above
        it (recovery below chance, e.g. an out-of-fold classifier on noise, is no leak); a difference, its CI
        excludes 0.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> users = pd.Index([f"u{i}" for i in range(120)])
    >>> gender = pd.Series(np.repeat(["F", "M"], 60), index=users)
    >>> marked = rng.normal(size=(120, 4)) + (gender == "F").to_numpy()[:, None] * 2.0
    >>> table = profile_leakage({"text_profile": marked, "interactions": rng.normal(size=(120, 4))},
    ...                         {"gender": gender}, rounds=100)
    >>> auc = table.set_index(["representation", "metric"]).loc[("text_profile", "auc")]
    >>> bool(auc["estimate"] > 0.9 and auc["significant"])
    True
    """
    rows = []
    smallest = max(int(min_group_size), int(folds))
    for attribute, series in labels.items():
        values = series.astype(str).to_numpy()
        sizes = pd.Series(values).value_counts()
        kept_groups = sizes[(sizes.index != UNKNOWN) & (sizes >= smallest)].index
        keep = np.isin(values, kept_groups)
        if len(kept_groups) < 2:
            if notes is not None:
                notes.append(_FEW_USERS.format(attribute, smallest))
            continue
        y, n = values[keep], int(keep.sum())
        majority = (y == sizes[kept_groups].idxmax()).astype(float)
        chance = float(majority.mean())
        # Out-of-fold probabilities per representation, then per user: recovered (0/1).
        scores = {name: attribute_scores(np.asarray(matrix)[keep], y, folds=folds, seed=seed)
                  for name, matrix in vectors.items()}  # fmt: skip
        recovered = {name: (classes[p.argmax(axis=1)] == y).astype(float) for name, (p, classes) in scores.items()}
        # One set of resamples for every representation (paired), in chunks of rounds (bounded memory).
        boot_chance = np.empty(rounds)
        found: dict[str, tuple[np.ndarray, np.ndarray]] = {  # name -> ((accuracy, auc), rounds x 2 replicates)
            name: (np.array([recovered[name].mean(), attribute_auc(p, classes, y)[0]]), np.empty((rounds, 2)))
            for name, (p, classes) in scores.items()
        }
        for chunk, counts in bootstrap_counts(n, rounds, seeded_rng(seed, "leakage", attribute)):
            boot_chance[chunk] = counts @ majority / n
            for name, (p, classes) in scores.items():
                found[name][1][chunk] = np.column_stack([counts @ recovered[name] / n,
                                                         attribute_auc(p, classes, y, counts)])  # fmt: skip
        for name, (point, boots) in found.items():
            for metric, estimate, replicates, level in (
                ("accuracy", point[0], boots[:, 0], chance),
                ("accuracy_over_chance", point[0] - chance, boots[:, 0] - boot_chance, 0.0),
                ("auc", point[1], boots[:, 1], 0.5),
            ):
                rows.append((name, CHANCE, attribute, metric, float(estimate), *_interval(replicates, confidence),
                             level, n))  # fmt: skip
        if reference in found:
            base_point, base_boots = found[reference]
            for name, (point, boots) in found.items():
                if name == reference:
                    continue
                for j, metric in enumerate(("accuracy_difference", "auc_difference")):
                    low, high = _interval(boots[:, j] - base_boots[:, j], confidence)
                    rows.append((name, reference, attribute, metric, float(point[j] - base_point[j]), low, high, 0.0,
                                 n))  # fmt: skip
    frame = pd.DataFrame(rows, columns=[c for c in PROFILE_LEAKAGE_COLUMNS if c != "significant"])
    frame["n_users"] = frame["n_users"].astype(int)
    against_chance = (frame["reference"] == CHANCE).to_numpy()  # a leak is recovery above chance, never below
    frame["significant"] = (frame["ci_low"] > frame["chance"]) | (~against_chance & (frame["ci_high"] < frame["chance"]))
    return frame[list(PROFILE_LEAKAGE_COLUMNS)]


def rewritten_texts(texts: pd.DataFrame, swaps: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """The texts of every user with at least one marker, markers swapped; and the markers replaced per user.

    Only users with a marker are returned (all their rows, other columns kept), so a model given
    them (``model.with_texts``) keeps every other user's profile as it was. ``swaps`` defaults to
    both directions of :data:`fairaudit.data.GENDER_MARKER_PAIRS` (:func:`swap_map`).

    >>> texts = pd.DataFrame({"user_id": ["a", "a", "b"], "text": ["My wife loves it.", "Great.", "Great."]})
    >>> new, markers = rewritten_texts(texts)
    >>> new["text"].tolist(), markers.to_dict()
    (['My husband loves it.', 'Great.'], {'a': 1, 'b': 0})
    """
    swaps = swap_map(GENDER_MARKER_PAIRS) if swaps is None else swaps
    new, counts = rewrite_texts(texts["text"], swaps)
    markers = counts.groupby(texts["user_id"].astype(str).to_numpy(), sort=False).sum().rename(MARKERS)
    marked = texts["user_id"].astype(str).isin(markers.index[markers > 0]).to_numpy()
    return texts.assign(text=new)[marked].reset_index(drop=True), markers.rename_axis("user_id")


def text_counterfactual_users(
    model: Recommender,
    dataset: Dataset,
    *,
    users: int | Sequence[str] | None = None,
    k: int = 10,
    swaps: Mapping[str, str] | None = None,
    item_attributes: Sequence[str] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Per user with texts: markers rewritten, and how their top-K changed (one row per user).

    Parameters
    ----------
    model : Recommender
        A fitted model reading texts (``with_texts``, e.g. ``LLMRecommender(use_texts=True)``).
    dataset : Dataset
        Its data, with ``texts``.
    users : int, sequence of str or None
        Every user with texts known to the model (None), a seeded sample of that many, or these ids.
    k : int
        List length K.
    swaps : mapping, optional
        Marker -> replacement (default: :data:`fairaudit.data.GENDER_MARKER_PAIRS` both ways).
    item_attributes : sequence of str, optional
        Item columns whose groups' exposure change is measured (default ``dataset.item_attributes``).
    seed : int
        Seed of the user sample.
    progress : callable, optional
        ``progress(done, total)`` while the rewritten texts are encoded (the model's
        :class:`~fairaudit.models.TextEncoder`, batch by batch; never for texts encoded before).

    Returns
    -------
    DataFrame
        Index ``user_id``; columns :data:`MARKERS` (markers replaced), :data:`REWRITTEN` (1 if any),
        :data:`CHANGED` (1 if the top-K differs in any position), ``jaccard``, ``serp``, ``prag`` and
        one exposure-change column per item group (:func:`fairaudit.explain.exposure_metric`).
        A user without markers has exactly Jaccard 1, PRAG* 1 and no change.
    """
    if dataset.texts is None:
        raise ValueError(_NO_TEXTS)
    if not hasattr(model, "with_texts"):
        raise ValueError(_NOT_TEXT_MODEL.format(model.kind))
    known = pd.Index(model.user_ids_)
    writers = pd.Index(dataset.texts["user_id"].astype(str).unique()).intersection(known, sort=False)
    if users is None:
        chosen = writers.to_numpy(dtype=object)
    elif isinstance(users, (int, np.integer)):
        order = np.sort(seeded_rng(seed, "text-counterfactual").permutation(len(writers))[: int(users)])
        chosen = writers.to_numpy(dtype=object)[order]
    else:
        chosen = pd.Index(pd.Series(list(users), dtype=object).astype(str)).intersection(writers, sort=False).to_numpy()
    texts = dataset.texts[dataset.texts["user_id"].astype(str).isin(pd.Index(chosen))]
    new, markers = rewritten_texts(texts, swaps)
    encoder = getattr(model, "encoder", None)
    if progress is not None and len(new) and isinstance(encoder, TextEncoder):
        # The same texts with_texts encodes, once, with progress; with_texts then finds them encoded.
        encoder.encode(list(pd.unique(new["text"].astype(str))), progress=progress)
    counterfactual = model.with_texts(new) if len(new) else model
    original = top_k_codes(model, chosen, k)
    x = top_k_codes(counterfactual, chosen, k)
    columns = {name: fn(x, original) for name, fn in LIST_METRICS.items()}
    n_markers = markers.reindex(chosen).fillna(0).to_numpy(dtype=float)
    columns = {MARKERS: n_markers, REWRITTEN: (n_markers > 0).astype(float),
               CHANGED: (x != original).any(axis=1).astype(float), **columns}  # fmt: skip
    items = dataset.items.assign(item_id=dataset.items["item_id"].astype(str)).set_index("item_id")
    for column in dataset.item_attributes if item_attributes is None else item_attributes:
        codes, groups = pd.factorize(items[column].astype(str).reindex(model.item_ids_).fillna(UNKNOWN), sort=True)
        delta = group_share(x, codes, len(groups)) - group_share(original, codes, len(groups))
        columns.update({exposure_metric(column, g): delta[:, j] for j, g in enumerate(groups)})
    return pd.DataFrame(columns, index=pd.Index(chosen, name="user_id"))


def summarise_counterfactual(
    per_user: pd.DataFrame,
    groups: Mapping[str, pd.Series],
    *,
    model: str = WITH_TEXTS,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    confidence: float = 0.95,
    min_group_size: int = MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Means of :func:`text_counterfactual_users` columns per group, with bootstrap CIs (:class:`SliceReport`).

    One block per attribute spec of ``groups`` plus ``attribute = group = "all"``. Columns
    :data:`TEXT_COUNTERFACTUAL_COLUMNS`; ``flagged`` marks groups smaller than ``min_group_size``.

    >>> per_user = pd.DataFrame({"jaccard": [0.5, 0.7, 1.0, 1.0]}, index=pd.Index(list("abcd"), name="user_id"))
    >>> gender = pd.Series(["F", "F", "M", "M"], index=list("abcd"))
    >>> out = summarise_counterfactual(per_user, {"gender": gender}, rounds=20, min_group_size=1)
    >>> out[["attribute", "group", "value"]].values.tolist()
    [['all', 'all', 0.8], ['gender', 'F', 0.6], ['gender', 'M', 1.0]]
    """
    frames = []
    slices = {ALL: pd.Series(ALL, index=per_user.index), **groups}
    for spec, labels in slices.items():
        labels = labels.reindex(per_user.index).fillna(UNKNOWN).astype(str)
        report = SliceReport(per_user, labels, rounds=rounds, seed=seed, key=f"text-counterfactual:{spec}",
                             confidence=confidence, min_group_size=min_group_size)  # fmt: skip
        frames.append(report.by_group.assign(attribute=spec, model=model))
    return pd.concat(frames, ignore_index=True)[list(TEXT_COUNTERFACTUAL_COLUMNS)]


def leakage_vectors(
    model_with: Recommender, model_without: Recommender | None, user_ids: Sequence[str], notes: list[str] | None = None
) -> dict[str, np.ndarray]:
    """The representations :func:`profile_leakage` compares, rows in ``user_ids`` order.

    :data:`TEXT_PROFILE`: the pooled text embeddings ``model_with`` reads
    (``text_profiles(user_ids).vectors``); :data:`INTERACTIONS`: ``model_without``'s user vectors;
    :data:`WITH_TEXTS`: ``model_with``'s user vectors (history, ID and text terms together).
    """
    out = {TEXT_PROFILE: np.asarray(model_with.text_profiles(list(user_ids)).vectors, dtype=float)}
    for name, model in ((INTERACTIONS, model_without), (WITH_TEXTS, model_with)):
        if model is None:
            continue
        if not hasattr(model, "user_vectors"):
            if notes is not None:
                notes.append(_NO_VECTORS.format(model.kind))
            continue
        out[name] = np.asarray(model.user_vectors(list(user_ids)), dtype=float)
    return out


def run_profile_audit(
    dataset: Dataset,
    split: Split,
    model_without: Recommender,
    model_with: Recommender,
    *,
    attributes: Sequence[str] | None = None,
    leakage_attributes: Sequence[str] | None = None,
    k: int = 10,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    users: int | Sequence[str] | None = None,
    swaps: Mapping[str, str] | None = None,
    folds: int = 3,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    encode_progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Audit a model with text profiles against the same model without them; see the module docstring.

    Parameters
    ----------
    dataset, split : Dataset, Split
        Data with ``texts`` and the split both models were trained on.
    model_without, model_with : Recommender
        Fitted; ``model_with`` reads texts (``with_texts`` and ``text_profiles``), ``model_without`` not.
    attributes : sequence of str, optional
        User attribute specs of the audit (default: the audit's defaults, with ``activity``).
    leakage_attributes : sequence of str, optional
        Attributes whose leakage is measured (default: the plain audited attributes but ``activity``).
    k, rounds, seed : int
        List length, bootstrap rounds, seed (audit, comparisons, classifier folds, user sample).
    users : int, sequence of str or None
        Users of the text counterfactual (default: every user with texts).
    swaps : mapping, optional
        Marker rewriting (default: :data:`fairaudit.data.GENDER_MARKER_PAIRS` both ways).
    folds : int
        Cross-validation folds of the leakage classifier.
    out : path, optional
        Write the audit folder there (``overwrite`` to replace an earlier audit folder).
    progress : callable, optional
        Receives a status line per step (:data:`PROFILE_AUDIT_STEPS` of them).
    encode_progress : callable, optional
        ``encode_progress(done, total)`` while the rewritten texts are encoded
        (:func:`text_counterfactual_users`).

    Returns
    -------
    AuditResult
        The audit of both models (names :data:`WITHOUT_TEXTS`, :data:`WITH_TEXTS`) with its
        comparison and the three tables ``profile_accuracy``, ``profile_leakage``,
        ``text_counterfactual``; ``meta["profiles"]`` holds the settings, text coverage and notes.
    """
    say = progress or (lambda _line: None)
    if dataset.texts is None:
        raise ValueError(_NO_TEXTS)
    if not getattr(model_with, "use_texts", False):
        raise ValueError(_NOT_TEXT_MODEL.format(model_with.kind))
    if getattr(model_without, "use_texts", False):
        raise ValueError(_READS_TEXTS.format(model_without.kind))
    config = AuditConfig(k=k, attributes=tuple(attributes) if attributes is not None else None,
                         bootstrap_rounds=rounds, seed=seed)  # fmt: skip
    say("auditing both models on the same test users")
    audit = add_comparison(run_audit(dataset, split, {WITHOUT_TEXTS: model_without, WITH_TEXTS: model_with}, config),
                           baseline=WITHOUT_TEXTS)  # fmt: skip
    users_table = train_derived_users(dataset, split)[0]
    groups = {spec: attribute_groups(users_table, spec) for spec in audit.attributes}
    evaluated = audit.user_metrics["user_id"].astype(str).unique()
    groups[HAS_TEXTS] = text_groups(dataset, users_table["user_id"].astype(str))
    say("comparing accuracy with and without texts")
    accuracy = profile_accuracy(
        audit.user_metrics, groups, rounds=rounds, seed=seed, confidence=1 - config.alpha,
        min_group_size=config.min_group_size,
    )  # fmt: skip
    notes: list[str] = []
    say("measuring attribute leakage")
    writers = pd.Index(dataset.texts["user_id"].astype(str).unique())
    writers = writers.intersection(pd.Index(model_with.user_ids_), sort=False)
    writers = writers.intersection(pd.Index(model_without.user_ids_), sort=False).sort_values()
    plain = [a for a in plain_attributes(audit.attributes) if a != "activity"]
    leak_specs = list(leakage_attributes) if leakage_attributes is not None else plain
    vectors = leakage_vectors(model_with, model_without, writers, notes)
    labels = {spec: attribute_groups(users_table, spec).reindex(writers).fillna(UNKNOWN) for spec in leak_specs}
    leakage = profile_leakage(vectors, labels, folds=folds, rounds=rounds, seed=seed, confidence=1 - config.alpha,
                              min_group_size=config.min_group_size, notes=notes)  # fmt: skip
    say("rewriting gender markers and re-ranking")
    per_user = text_counterfactual_users(model_with, dataset, users=users, k=k, swaps=swaps, seed=seed,
                                         progress=encode_progress)  # fmt: skip
    counterfactual = summarise_counterfactual(
        per_user, {spec: groups[spec] for spec in audit.attributes},
        rounds=rounds, seed=seed, confidence=1 - config.alpha, min_group_size=config.min_group_size,
    )  # fmt: skip
    audit.meta["profiles"] = {
        "models": {WITHOUT_TEXTS: model_without.kind, WITH_TEXTS: model_with.kind},
        "coverage": text_summary(dataset),
        "evaluated_users_with_texts": int(pd.Index(evaluated).isin(writers).sum()),
        "leakage_users": len(writers),
        "leakage_attributes": leak_specs,
        "folds": folds,
        "counterfactual_users": len(per_user),
        "marker_words": "fairaudit.data.GENDER_MARKER_PAIRS" if swaps is None else f"{len(swaps)} custom markers",
        "notes": notes,
    }
    result = dataclasses.replace(audit, profile_accuracy=accuracy, profile_leakage=leakage,
                                 text_counterfactual=counterfactual)  # fmt: skip
    if out is not None:
        result.write(out, overwrite=overwrite)
    return result


def _wide(table: pd.DataFrame, keys: list[str], metrics: Sequence[str], number: str) -> pd.DataFrame:
    """One row per ``keys``, columns ``<metric>``, ``<metric>_ci_low``, ``<metric>_ci_high`` (NaN when absent)."""
    rows = table[table["metric"].isin(list(metrics))]
    wide = rows.pivot_table(index=keys, columns="metric", values=[number, "ci_low", "ci_high"], sort=False)
    out = pd.DataFrame(index=wide.index)
    for metric in metrics:
        for column, suffix in ((number, ""), ("ci_low", "_ci_low"), ("ci_high", "_ci_high")):
            out[f"{metric}{suffix}"] = wide[(column, metric)] if (column, metric) in wide.columns else np.nan
    return out.reset_index()


def accuracy_summary(table: pd.DataFrame, *, metric: str = "ndcg") -> pd.DataFrame:
    """Who gains: per group, ``metric`` without and with texts and the paired difference (from ``profile_accuracy``).

    >>> t = pd.DataFrame({"model_a": "without_texts", "model_b": "with_texts", "attribute": ["all", "gender"],
    ...     "group": ["all", "F"], "quantity": "value", "metric": "ndcg", "n_users": [9, 4], "a": [0.2, 0.1],
    ...     "b": [0.25, 0.2], "difference": [0.05, 0.1], "ci_low": [0.01, 0.02], "ci_high": [0.09, 0.2],
    ...     "significant": True})
    >>> accuracy_summary(t)[["attribute", "group", "without", "with", "difference"]].values.tolist()
    [['all', 'all', 0.2, 0.25, 0.05], ['gender', 'F', 0.1, 0.2, 0.1]]
    """
    rows = table[(table["quantity"] == "value") & (table["metric"] == metric)]
    return rows.rename(columns={"a": "without", "b": "with"})[
        ["attribute", "group", "n_users", "without", "with", "difference", "ci_low", "ci_high", "significant"]
    ].reset_index(drop=True)


def leakage_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per attribute and representation: recovery accuracy and AUC with CIs, the chance rate, and whether it leaks.

    ``leaks``: the AUC's CI lies above 0.5 (``significant`` of the ``auc`` row).

    >>> t = pd.DataFrame({"representation": "text_profile", "reference": "chance", "attribute": "gender",
    ...     "metric": ["accuracy", "auc"], "estimate": [0.9, 0.95], "ci_low": [0.85, 0.9], "ci_high": [0.95, 0.99],
    ...     "chance": [0.5, 0.5], "n_users": 80, "significant": True})
    >>> leakage_summary(t)[["attribute", "representation", "accuracy", "chance", "auc", "leaks"]].values.tolist()
    [['gender', 'text_profile', 0.9, 0.5, 0.95, True]]
    """
    rows = table[table["reference"] == CHANCE]
    out = _wide(rows, ["attribute", "representation"], ("accuracy", "auc"), "estimate")
    keyed = rows.set_index(["attribute", "representation", "metric"])
    index = pd.MultiIndex.from_frame(out[["attribute", "representation"]])
    accuracy = keyed.xs("accuracy", level="metric").reindex(index)
    auc = keyed.xs("auc", level="metric").reindex(index)
    out.insert(5, "chance", accuracy["chance"].to_numpy())
    out["n_users"] = accuracy["n_users"].to_numpy()
    out["leaks"] = auc["significant"].fillna(False).astype(bool).to_numpy()
    return out


def counterfactual_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per group: Jaccard@K of the rewritten user's list with the original (CI), share of changed lists, share of
    users with a marker (from ``text_counterfactual``).

    >>> t = pd.DataFrame({"model": "with_texts", "attribute": "gender", "group": "F", "metric": ["jaccard", "changed",
    ...     "rewritten"], "value": [0.6, 0.7, 0.8], "ci_low": [0.5, 0.6, 0.7], "ci_high": [0.7, 0.8, 0.9],
    ...     "n_users": 50, "flagged": False})
    >>> counterfactual_summary(t)[["group", "jaccard", "changed", "rewritten", "n_users"]].values.tolist()
    [['F', 0.6, 0.7, 0.8, 50]]
    """
    out = _wide(table, ["attribute", "group"], ("jaccard", CHANGED, REWRITTEN), "value")
    sizes = table.drop_duplicates(["attribute", "group"]).set_index(["attribute", "group"])["n_users"]
    out["n_users"] = sizes.reindex(pd.MultiIndex.from_frame(out[["attribute", "group"]])).to_numpy()
    return out
