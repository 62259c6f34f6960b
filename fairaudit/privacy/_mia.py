"""Membership-inference audit: can an attacker tell the interactions a model was trained on from held-out ones?

The attack
----------
Members are the training interactions (``split.train``) of the audited users, non-members their
held-out interactions (``split.test``): real interactions of the **same users**, so the only
systematic difference between the two sets is whether the model saw them. Every pair gets one
attack statistic from the model's scores (any kind: :meth:`~fairaudit.models.Recommender.score`,
so external models and imported lists work too):

- ``score``: the raw score ``s(u, i)`` (a global score-threshold attack, Yeom et al. 2018);
- ``rank``: the item's percentile rank among the whole catalogue in the user's own scores
  (``(#items scored lower + 0.5 #ties) / (#items - 1)``), which removes per-user score scales;
- ``loss``: ``log softmax`` of the user's scores at the item (minus the sampled-softmax /
  cross-entropy loss of the pair), a loss-threshold attack.

The attacker guesses "member" above a threshold; the threshold-free summary is the ROC AUC:
the probability that a random member pair gets a higher statistic than a random non-member pair
(ties count one half), pooled over the pairs of a group's users.

What AUC = 0.5 means here
-------------------------
Under a **random** hold-out (``random_holdout``) a user's training and held-out interactions are
exchangeable before training. A model whose scores do not depend on which interactions it was
trained on (scores from a fixed random seed, popularity counted on all data) then gives members and
non-members the same distribution: AUC = 0.5 in expectation. AUC above 0.5 means the scores leak
training membership (memorisation); below 0.5 leaks too (an attacker flips the rule), e.g. lists
that exclude training items. Under a temporal or cold-item split the held-out interactions differ
in kind (later, or new items), so 0.5 is *not* the no-leak baseline there: the result records the
split method and :data:`NOT_EXCHANGEABLE` says so.

Uncertainty: percentile-bootstrap CIs **over users** (users resampled with replacement within
their group, each resampled user bringing all their member and non-member pairs), with the
seeded resampling of :func:`fairaudit.metrics.seeded_rng` (same seed, users and groups: the same
resamples for two models, e.g. a DP model and its non-DP twin). Groups with fewer users than
``min_group_size`` are ``flagged``, as in ``group_metrics.csv``.

A shadow-model attack (Shokri et al. 2017) trains models on data the attacker owns to learn a
threshold or an attack classifier. With a single attack statistic the AUC is threshold-free, so a
shadow model could only pick a point on the same ROC curve; it is not built (it would cost one
extra training of the audited kind per shadow).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_softmax
from scipy.stats import rankdata

from fairaudit._choices import MEMBERSHIP_ATTACKS, MembershipAttack
from fairaudit.audit import ALL, TABLES, attribute_groups, default_attributes, read_table
from fairaudit.data import Dataset, Split, write_bytes_atomic, write_csv
from fairaudit.metrics import MIN_GROUP_SIZE, bootstrap_counts, seeded_rng
from fairaudit.metrics._stats import CHUNK_ELEMENTS
from fairaudit.models import Recommender, privacy_record, privacy_summary, rank_auc

Attack = MembershipAttack
ATTACKS: tuple[str, ...] = MEMBERSHIP_ATTACKS
#: Columns of ``mia.csv`` (one row per model, attack, attribute and group).
MIA_COLUMNS = (
    "model", "attack", "attribute", "group", "n_users", "n_members", "n_non_members", "auc", "ci_low", "ci_high",
    "flagged",
)  # fmt: skip
#: The models' records beside ``mia.csv`` (``privacy --out``): ``{"models": {name: record}, "settings": {...}}``.
MIA_RECORDS = "privacy.json"
#: Split methods under which members and non-members are exchangeable (AUC 0.5 = no leak).
EXCHANGEABLE_SPLITS = ("random",)
NOT_EXCHANGEABLE = (
    "The model's split ({0}) is not a random hold-out: held-out interactions differ from training ones in kind "
    "(time or item), so AUC 0.5 is not the no-leak baseline; audit membership on a model trained on a random split"
)
_BAD_ATTACK = "Unknown attack '{0}'; expected one of {1}"
_NO_MEMBERSHIP = "Folder '{0}' holds no {1}; write it with `python -m fairaudit privacy --model ... --out {0}`"
_NO_PAIRS = (
    "No user has both training and held-out interactions the model can score; membership inference needs the "
    "model's split with a non-empty test set"
)


def pair_auc(values: np.ndarray, member: np.ndarray) -> float:
    """ROC AUC of ``values`` for telling ``member`` (True) from non-member rows, ties counted one half.

    Equals ``sklearn.metrics.roc_auc_score(member, values)``; NaN without both classes.

    >>> pair_auc(np.array([0.9, 0.4, 0.4, 0.1]), np.array([True, True, False, False]))
    0.875
    """
    return float(rank_auc(values, member)[0])


def _statistic(scores: np.ndarray, attack: str) -> np.ndarray:
    """Attack statistic of every (user row, catalogue item) of a score block."""
    if attack == "score":
        return scores.astype(float)
    if attack == "rank":
        ranks = rankdata(np.nan_to_num(scores, nan=-np.inf), method="average", axis=1)
        return (ranks - 1.0) / max(scores.shape[1] - 1, 1)
    with np.errstate(invalid="ignore"):
        return log_softmax(scores.astype(float), axis=1)


def membership_pairs(
    model: Recommender, split: Split, *, attack: Attack = "rank", batch_size: int = 512
) -> pd.DataFrame:
    """Member and non-member pairs of the audited users, with the attack statistic.

    Users: those the model evaluates (``model.evaluated_users()``) with at least one training and
    one held-out interaction; items outside the model's catalogue are left out. Returns
    ``user_id, item_id, member, statistic`` (pairs whose statistic is NaN, e.g. a user every item
    of whose row is ``-inf``, are dropped). Scoring runs in user chunks of ``batch_size``.
    """
    if attack not in ATTACKS:
        raise ValueError(_BAD_ATTACK.format(attack, ATTACKS))
    pairs = pd.concat([split.train[["user_id", "item_id"]].assign(member=True),
                       split.test[["user_id", "item_id"]].assign(member=False)], ignore_index=True)  # fmt: skip
    pairs = pairs.astype({"user_id": str, "item_id": str}).drop_duplicates(["user_id", "item_id"], keep="first")
    known = pd.Index(model.evaluated_users()).astype(str)
    pairs = pairs[pairs["user_id"].isin(known) & pairs["item_id"].isin(pd.Index(model.item_ids_))]
    both = pairs.groupby("user_id")["member"].agg(["min", "max"])
    users = both.index[(both["min"] == False) & (both["max"] == True)]  # noqa: E712 - boolean columns
    pairs = pairs[pairs["user_id"].isin(users)].reset_index(drop=True)
    if pairs.empty:
        raise ValueError(_NO_PAIRS)
    user_pos = pd.Index(users).get_indexer(pairs["user_id"])
    item_pos = model.item_positions(pairs["item_id"])
    statistic = np.empty(len(pairs))
    order = np.argsort(user_pos, kind="stable")
    bounds = np.searchsorted(user_pos[order], np.arange(0, len(users) + batch_size, batch_size))
    for chunk, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        if lo == hi:
            continue
        first = chunk * batch_size
        block = _statistic(model.score(users[first : first + batch_size]), attack)
        rows = order[lo:hi]
        statistic[rows] = block[user_pos[rows] - first, item_pos[rows]]
    pairs["statistic"] = statistic
    return pairs[~np.isnan(statistic)].reset_index(drop=True)


def _group_rows(pairs: pd.DataFrame, group_of: pd.Series, *, rounds: int, seed: int, key: str,
                confidence: float) -> pd.DataFrame:  # fmt: skip
    """AUC and percentile-bootstrap CI (users resampled within each group) for every group of one attribute."""
    labels = group_of.reindex(pairs["user_id"]).to_numpy(dtype=object)
    rows = []
    tail = (1 - confidence) / 2
    for group in sorted(set(labels)):
        inside = labels == group
        values, member = pairs["statistic"].to_numpy()[inside], pairs["member"].to_numpy()[inside]
        codes, users = pd.factorize(pairs["user_id"].to_numpy()[inside])
        estimate = rank_auc(values, member, np.ones((1, len(users))), codes)[0]
        replicates = np.empty(rounds)
        for chunk, counts in bootstrap_counts(len(users), rounds, seeded_rng(seed, key, "mia", str(group))):
            replicates[chunk] = rank_auc(values, member, counts, codes, max_elements=CHUNK_ELEMENTS)
        low, high = (np.nanquantile(replicates, [tail, 1 - tail]) if np.isfinite(replicates).any()
                     else (np.nan, np.nan))  # fmt: skip
        rows.append((str(group), len(users), int(member.sum()), int((~member).sum()), estimate, low, high))
    return pd.DataFrame(rows, columns=["group", "n_users", "n_members", "n_non_members", "auc", "ci_low", "ci_high"])


def membership_inference(
    model: Recommender,
    dataset: Dataset,
    split: Split,
    *,
    name: str | None = None,
    attributes: Sequence[str] | None = None,
    attack: Attack = "rank",
    rounds: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    min_group_size: int = MIN_GROUP_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Membership-inference AUC overall and per user group, with bootstrap CIs over users (:data:`MIA_COLUMNS`).

    Parameters
    ----------
    model : Recommender
        Any fitted model (saved, external or imported lists) that ``split`` is the split of.
    dataset, split : Dataset, Split
        The data and the model's split (members = ``split.train``, non-members = ``split.test``).
    name : str, optional
        The ``model`` column (default: the model's kind).
    attributes : sequence of str, optional
        User attribute specs (intersections with ``*``); default: :func:`fairaudit.audit.default_attributes`.
        The overall row (``attribute = group = "all"``) always comes first.
    attack : {"score", "rank", "loss"}
        The attack statistic (module docstring).
    rounds, seed, confidence : int, int, float
        Bootstrap resamples of users, their seed, and the CI level.
    min_group_size : int
        Groups with fewer users are ``flagged``.
    progress : callable, optional
        ``progress(done, total)`` over the attribute specs (the overall row first) once the pairs are scored.

    Examples
    --------
    >>> from fairaudit.data import generate_sample, random_holdout
    >>> from fairaudit.models import create_model
    >>> data, _ = generate_sample(n_users=80, n_items=40, n_interactions=1600)
    >>> split = random_holdout(data, seed=0)
    >>> model = create_model("popularity").fit(data, split)
    >>> table = membership_inference(model, data, split, attributes=["gender"], rounds=20)
    >>> table[["attribute", "group"]].values.tolist()[:2]
    [['all', 'all'], ['gender', 'F']]
    """
    pairs = membership_pairs(model, split, attack=attack)
    users = dataset.users.astype({"user_id": str})
    specs = list(default_attributes(dataset) if attributes is None else attributes)
    frames = []
    everyone = pd.Series(ALL, index=pd.Index(pairs["user_id"].unique()))
    for done, (spec, groups) in enumerate([(ALL, everyone), *((s, attribute_groups(users, s)) for s in specs)]):
        if progress is not None:
            progress(done, 1 + len(specs))
        table = _group_rows(pairs, groups, rounds=rounds, seed=seed, key=spec, confidence=confidence)
        frames.append(table.assign(attribute=spec))
    if progress is not None:
        progress(1 + len(specs), 1 + len(specs))
    out = pd.concat(frames, ignore_index=True)
    out["model"], out["attack"] = name or model.kind, attack
    out["flagged"] = out["n_users"] < min_group_size
    return out[list(MIA_COLUMNS)]


def split_is_exchangeable(split_info: dict) -> bool:
    """Whether members and non-members of a split (``Split.describe()``) are exchangeable (a random hold-out).

    >>> split_is_exchangeable({"method": "random"}), split_is_exchangeable({"method": "temporal"})
    (True, False)
    """
    return str(split_info.get("method")) in EXCHANGEABLE_SPLITS


def membership_record(model: Recommender, folder: str | Path, split_info: Mapping[str, Any]) -> dict:
    """A model's entry in ``privacy.json``: its folder, DP record and summary, split method and exchangeability."""
    record = privacy_record(model)
    return {"folder": str(folder), "privacy": record, "summary": privacy_summary(record),
            "split": split_info.get("method"), "exchangeable": split_is_exchangeable(split_info)}  # fmt: skip


def write_membership(folder: str | Path, table: pd.DataFrame, records: Mapping[str, dict],
                     settings: Mapping[str, Any], *, overwrite: bool = True) -> Path:  # fmt: skip
    """Write ``mia.csv`` (:func:`membership_inference`) and ``privacy.json`` (``records``: model name ->
    :func:`membership_record`; the run's ``settings``) into ``folder``, as ``privacy --out`` does. Returns ``folder``.
    """
    folder = Path(folder)
    write_csv(table, folder / TABLES["mia"].file, overwrite=overwrite)
    document = {"models": dict(records), "settings": dict(settings)}
    write_bytes_atomic(folder / MIA_RECORDS, json.dumps(document, indent=1, default=str).encode())
    return folder


def read_membership(folder: str | Path) -> tuple[pd.DataFrame, dict]:
    """``mia.csv`` and ``privacy.json`` of a folder written by :func:`write_membership` (or ``privacy --out``).

    >>> import tempfile
    >>> table = pd.DataFrame({"model": ["m"], "attack": "rank", "attribute": "all", "group": "NA", "n_users": 3,
    ...                       "n_members": 5, "n_non_members": 4, "auc": 0.1 + 0.2, "ci_low": 0.2, "ci_high": 0.4,
    ...                       "flagged": True})
    >>> folder = write_membership(tempfile.mkdtemp(), table, {"m": {"split": "random"}}, {"attack": "rank"})
    >>> back, records = read_membership(folder)
    >>> back.equals(table), records["models"]["m"]["split"]
    (True, 'random')
    """
    schema, folder = TABLES["mia"], Path(folder)
    if not (folder / schema.file).is_file():
        raise FileNotFoundError(_NO_MEMBERSHIP.format(folder, schema.file))
    table = read_table(folder, schema)
    records = json.loads((folder / MIA_RECORDS).read_text(encoding="utf-8")) if (folder / MIA_RECORDS).is_file() else {}
    return table, records
