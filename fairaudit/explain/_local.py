"""Local SHAP explanations: why does the model give this user this score for this item?

Two cooperative games, each explained with the ``shap`` library over the model's real scoring
function, batched:

History and profile (:func:`explain_score`)
    Players are the user's history items (present / removed from the pooled history) and, for a
    model that reads a profile text, each stated attribute (its value / ``"unknown"``). The game
    is the item's score from ``model.score_with_history`` with masked items weighted 0 and masked
    attributes overridden to ``"unknown"``. Item embeddings are precomputed by the model, so no
    text is re-encoded (the few distinct profile texts are encoded once). The base value is the
    score with no history and an all-unknown profile; ``base + sum(shap) = score`` exactly.
    Heavy users: the ``max_history`` items whose single removal changes the score most are players
    of their own; the rest play as one block ("other history"), which keeps the sum exact.
Item text (:func:`explain_item_text`)
    Players are the words of the item's text (``shap.maskers.Text`` over the encoder's tokenizer);
    each masked variant is re-encoded with the model's encoder in batches and scored with
    ``model.score_text_variants``. The base value is the score of the fully masked text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import pandas as pd
import torch

from fairaudit.data import UNKNOWN, Dataset
from fairaudit.models import Recommender, item_texts

#: Columns of a local explanation frame (one row per player).
LOCAL_COLUMNS = ("user_id", "item_id", "kind", "feature", "feature_value", "shap_value", "base_value", "prediction")
#: ``kind`` of a player.
HISTORY, PROFILE, TEXT = "history", "profile", "text"
#: Name of the block of history items that are not players of their own.
OTHER_HISTORY = "other history"
#: Games with at most this many players are solved exactly (2^M evaluations), larger ones by permutation sampling.
EXACT_MAX_PLAYERS = 12

_NO_HISTORY_HOOK = (
    "Model kind '{0}' cannot re-score an edited history (it has no score_with_history); "
    "history and profile explanations need a model such as 'llm' or 'itemknn'"
)
_NO_TEXT_HOOK = (
    "Model kind '{0}' does not read item texts (it has no encoder/score_text_variants); "
    "item-text explanations need the 'llm' model"
)
_UNKNOWN_USER = "User '{0}' is not in the users table (column 'user_id') or not known to the model"
_UNKNOWN_ITEM = "Item '{0}' is not in the items table (column 'item_id') or not in the model's catalogue"


def top_item(model: Recommender, user_id: str) -> str:
    """The user's top recommendation (seen items excluded), the default item to explain.

    >>> from fairaudit.models import create_model
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a", "b", "b"], "item_id": ["x", "x", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"]}),
    ...                pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]}))
    >>> top_item(create_model("popularity").fit(data, Split(inter, inter.iloc[:0], "all", 0)), "a")
    'y'
    """
    return str(model.recommend([user_id], k=1)["item_id"].iloc[0])


def _positions(model: Recommender, user_id: str, item_id: str | None) -> tuple[int, str, int]:
    """Row of the user, the item id (default: the top recommendation) and its column."""
    try:
        user = int(model.user_positions([user_id])[0])
    except KeyError:
        raise KeyError(_UNKNOWN_USER.format(user_id)) from None
    item_id = top_item(model, user_id) if item_id is None else str(item_id)
    try:
        item = int(model.item_positions([item_id])[0])
    except KeyError:
        raise KeyError(_UNKNOWN_ITEM.format(item_id)) from None
    return user, item_id, item


def warm_up(model: Recommender | None = None) -> None:
    """Compile shap's numba code now, so the first explanation in a process is as fast as the next.

    shap compiles its masking code on first use (about 5 s on two idle CPU cores, once per process).
    Call this where the wait does not matter, e.g. when the dashboard starts. With a model that has
    an ``encoder``, its tokenizer is loaded and the text-masker path is compiled too.

    >>> warm_up()
    """
    import shap

    def total(z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=float).sum(axis=1)

    def lengths(texts) -> np.ndarray:
        return np.array([len(str(t)) for t in texts], dtype=float)

    masker = shap.maskers.Independent(np.zeros((1, 2)), max_samples=1)
    shap.explainers.Exact(total, masker)(np.ones((1, 2)), silent=True)
    encoder = getattr(model, "encoder", None)
    if encoder is not None:
        text_masker = shap.maskers.Text(_tokenizer(str(encoder.path)))
        shap.explainers.Partition(lengths, text_masker)(["warm up"], max_evals=10, silent=True)


def _shapley(game: Callable[[np.ndarray], np.ndarray], n_players: int, max_evals: int, batch_size: int, seed: int):
    """SHAP values of ``game`` at "all players present" against "all absent" (exact when small)."""
    import shap

    masker = shap.maskers.Independent(np.zeros((1, n_players)), max_samples=1)
    everyone = np.ones((1, n_players))
    if n_players <= EXACT_MAX_PLAYERS:
        result = shap.explainers.Exact(game, masker)(everyone, batch_size=batch_size, silent=True)
    else:
        explainer = shap.explainers.Permutation(game, masker, seed=seed)
        evals = max(max_evals, 2 * n_players + 2)
        result = explainer(everyone, max_evals=evals, batch_size=batch_size, silent=True)
    return np.asarray(result.values[0], dtype=float), float(np.ravel(result.base_values)[0])


def explain_score(
    model: Recommender,
    dataset: Dataset,
    user_id: str,
    item_id: str | None = None,
    *,
    max_history: int = 8,
    max_evals: int = 2000,
    batch_size: int = 2048,
    seed: int = 0,
) -> pd.DataFrame:
    """SHAP attribution of one score to the user's history items and profile attributes.

    Parameters
    ----------
    model : Recommender
        A model with ``score_with_history(user_idx, history_weights, attribute_overrides)``.
        Profile attributes are players when the model has ``use_profile=True``.
    dataset : Dataset
        Item titles (``feature_value`` of history rows) and the user's attribute values.
    user_id, item_id : str
        The user and the item; default item: the user's top recommendation.
    max_history : int
        History items that are players of their own (the rest form one block). With the
        default 8 (+ the block + up to 3 profile attributes) the game has at most
        :data:`EXACT_MAX_PLAYERS` players and is solved exactly in a few batched model calls;
        larger games use permutation sampling, one model call per permutation (slower).
    max_evals : int
        Game evaluations for permutation sampling.
    batch_size : int
        Game rows per model call.
    seed : int
        Seed of the permutation sampling.

    Returns
    -------
    DataFrame
        :data:`LOCAL_COLUMNS`; ``kind`` is ``"history"`` (``feature`` = item id, ``feature_value`` =
        title) or ``"profile"`` (``feature`` = attribute, ``feature_value`` = the user's value).
        Sorted by ``|shap_value|``; ``base_value + shap_value.sum() == prediction``.

    Examples
    --------
    >>> from fairaudit.models import create_model
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a"], "item_id": ["x"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a"]}),
    ...                pd.DataFrame({"item_id": ["x", "y"], "title": ["X", "Y"]}))
    >>> model = create_model("popularity").fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> explain_score(model, data, "a")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: Model kind 'popularity' cannot re-score an edited history (it has no score_with_history); ...
    """
    if not hasattr(model, "score_with_history"):
        raise TypeError(_NO_HISTORY_HOOK.format(model.kind))
    user, item_id, item = _positions(model, user_id, item_id)
    n_items = len(model.item_ids_)
    history = np.flatnonzero(model.history_matrix(np.array([user]))[0].numpy())
    attributes = list(getattr(model, "profile_attributes", ())) if getattr(model, "use_profile", False) else []
    users = dataset.users.assign(user_id=dataset.users["user_id"].astype(str)).set_index("user_id")
    if attributes and str(user_id) not in users.index:
        raise KeyError(_UNKNOWN_USER.format(user_id))
    profile_values = [str(users.at[str(user_id), a]) if a in users.columns else UNKNOWN for a in attributes]

    def scores(weights: torch.Tensor, overrides: dict[str, str] | None = None) -> np.ndarray:
        rows = np.full(weights.shape[0], user)
        with torch.no_grad():
            return model.score_with_history(rows, weights, overrides)[:, item].float().numpy().astype(float)

    # Choose the history players: the items whose single removal changes the score most.
    full = torch.zeros(1, n_items)
    full[0, history] = 1.0
    if len(history) > max_history:
        leave_one_out = full.repeat(len(history), 1)
        leave_one_out[torch.arange(len(history)), torch.as_tensor(history)] = 0.0
        effect = np.abs(scores(full)[0] - scores(leave_one_out))
        order = np.argsort(-effect, kind="stable")
        solo, rest = history[np.sort(order[:max_history])], history[order[max_history:]]
    else:
        solo, rest = history, history[:0]
    n_blocks = len(solo) + int(len(rest) > 0)
    membership = torch.zeros(n_blocks, n_items)  # block x item: which items a history player switches
    membership[torch.arange(len(solo)), torch.as_tensor(solo, dtype=torch.long)] = 1.0
    if len(rest):
        membership[-1, torch.as_tensor(rest, dtype=torch.long)] = 1.0

    def game(z: np.ndarray) -> np.ndarray:
        weights = torch.as_tensor(z[:, :n_blocks], dtype=torch.float32) @ membership
        if not attributes:
            return scores(weights)
        patterns, inverse = np.unique(z[:, n_blocks:] > 0.5, axis=0, return_inverse=True)
        out = np.empty(len(z))
        for p, pattern in enumerate(patterns):  # at most 2^len(attributes) profile patterns
            rows = np.flatnonzero(inverse.ravel() == p)
            overrides = {a: UNKNOWN for a, keep in zip(attributes, pattern) if not keep}
            out[rows] = scores(weights[torch.as_tensor(rows)], overrides or None)
        return out

    n_players = n_blocks + len(attributes)
    if n_players == 0:
        values, base = np.zeros(0), float(game(np.zeros((1, 0)))[0])
    else:
        values, base = _shapley(game, n_players, max_evals, batch_size, seed)
    titles = dataset.items.assign(item_id=dataset.items["item_id"].astype(str)).set_index("item_id")["title"]
    solo_ids = model.item_ids_[solo].astype(str)
    features = list(solo_ids) + ([OTHER_HISTORY] if len(rest) else []) + attributes
    feature_values = (
        list(titles.reindex(solo_ids).fillna("").astype(str))
        + ([f"{len(rest)} items"] if len(rest) else [])
        + profile_values
    )
    kinds = [HISTORY] * n_blocks + [PROFILE] * len(attributes)
    return _frame(user_id, item_id, kinds, features, feature_values, values, base)


def _frame(user_id, item_id, kinds, features, feature_values, values, base) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user_id": str(user_id),
            "item_id": str(item_id),
            "kind": kinds,
            "feature": features,
            "feature_value": feature_values,
            "shap_value": values,
            "base_value": base,
            "prediction": base + float(np.sum(values)),
        }
    )
    order = np.argsort(-np.abs(frame["shap_value"].to_numpy()), kind="stable")
    return frame.iloc[order].reset_index(drop=True)[list(LOCAL_COLUMNS)]


@lru_cache(maxsize=4)
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def explain_item_text(
    model: Recommender,
    dataset: Dataset,
    user_id: str,
    item_id: str | None = None,
    *,
    max_evals: int = 200,
    batch_size: int = 64,
) -> pd.DataFrame:
    """SHAP attribution of one score to the words of the item's text (``shap.maskers.Text``).

    The text is :func:`fairaudit.models.item_texts` of the item; masked variants are re-encoded
    with ``model.encoder`` in batches of ``batch_size`` and scored with
    ``model.score_text_variants``; ``max_evals`` bounds the encoder calls (about 1 s per 300
    texts on two CPU cores). The explainer is shap's partition explainer over the text's
    token hierarchy (deterministic); ``base_value + shap_value.sum()`` equals the score of the full text as the
    model reads it now (which differs from ``model.score`` only by encoder round-off).

    Returns
    -------
    DataFrame
        :data:`LOCAL_COLUMNS` with ``kind="text"``, ``feature`` = the token's position and
        ``feature_value`` = the token text; sorted by ``|shap_value|``.

    Examples
    --------
    >>> from fairaudit.models import create_model
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a"], "item_id": ["x"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a"]}),
    ...                pd.DataFrame({"item_id": ["x", "y"], "title": ["X", "Y"]}))
    >>> model = create_model("popularity").fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> explain_item_text(model, data, "a")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: Model kind 'popularity' does not read item texts (it has no encoder/score_text_variants); ...
    """
    import shap

    if not (hasattr(model, "score_text_variants") and hasattr(model, "encoder")):
        raise TypeError(_NO_TEXT_HOOK.format(model.kind))
    user, item_id, item = _positions(model, user_id, item_id)
    position = pd.Index(dataset.items["item_id"].astype(str)).get_indexer([item_id])[0]
    if position < 0:
        raise KeyError(_UNKNOWN_ITEM.format(item_id))
    text = item_texts(dataset)[position]
    encoder = model.encoder

    def game(texts) -> np.ndarray:
        embeddings = torch.from_numpy(encoder.encode([str(t) for t in texts], cache=False))
        with torch.no_grad():
            return model.score_text_variants(np.array([user]), item, embeddings)[0].float().numpy().astype(float)

    explainer = shap.explainers.Partition(game, shap.maskers.Text(_tokenizer(str(encoder.path))))
    result = explainer([text], max_evals=max_evals, batch_size=batch_size, silent=True)
    tokens = [str(t) for t in result.data[0]]
    values = np.asarray(result.values[0], dtype=float)
    base = float(np.ravel(result.base_values)[0])
    return _frame(user_id, item_id, [TEXT] * len(tokens), [str(i) for i in range(len(tokens))], tokens, values, base)


def explain_recommendation(
    model: Recommender,
    dataset: Dataset,
    user_id: str,
    item_id: str | None = None,
    *,
    text: bool = True,
    max_history: int = 8,
    max_evals: int = 2000,
    text_max_evals: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Both games for one (user, item): :func:`explain_score` rows, then :func:`explain_item_text` rows.

    The two games have their own ``base_value`` (no history / fully masked text) and the same
    ``prediction`` up to encoder round-off. ``text=False`` (or a model without an encoder) skips
    the text game.

    Examples
    --------
    >>> from fairaudit.models import create_model
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a"], "item_id": ["x"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a"]}),
    ...                pd.DataFrame({"item_id": ["x", "y"], "title": ["X", "Y"]}))
    >>> model = create_model("popularity").fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> explain_recommendation(model, data, "a")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: Model kind 'popularity' cannot re-score an edited history (it has no score_with_history); ...
    """
    _, item_id, _ = _positions(model, user_id, item_id)
    frames = [
        explain_score(model, dataset, user_id, item_id, max_history=max_history, max_evals=max_evals, seed=seed)
    ]
    if text and hasattr(model, "score_text_variants"):
        frames.append(explain_item_text(model, dataset, user_id, item_id, max_evals=text_max_evals))
    return pd.concat(frames, ignore_index=True)
