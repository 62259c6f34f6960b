"""Text profiles: each user's own texts (``Dataset.texts``) pooled into one vector in the encoder's space.

Every text is embedded once by a :class:`~fairaudit.models.TextEncoder` (the packaged MiniLM or any
local Hugging Face encoder; embeddings L2-normalised and cached on disk), and a user's profile is the
weighted mean of their texts' embeddings:

``p_u = sum_t w_t e_t / sum_t w_t``, with ``w_t = 1``, or with recency weighting
``w_t = 0.5 ** ((latest_u - time_t) / half_life)``, ``latest_u`` the time of the user's newest text
(so it has weight 1 and a text one half-life older weight 1/2). Users without texts get a zero
vector and ``n_texts = 0``. Pooling is a scatter-add over (text, user) pairs, no loop over users.

Profiles live in the models layer because the LLM recommender computes them (``use_texts=True``);
:mod:`fairaudit.profiles` re-exports them for analyses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from fairaudit.models._encoder import TextEncoder, get_encoder

SECONDS_PER_DAY = 86_400
_BAD_HALF_LIFE = "half_life_days must be a finite number > 0 or None, got {0!r}"
_NO_TIMESTAMPS = "half_life_days needs a 'timestamp' column in the texts; the texts have {0}"


@dataclass(frozen=True)
class TextProfiles:
    """Pooled text profiles of a list of users.

    Attributes
    ----------
    user_ids : ndarray of object
        The users, in the order asked for.
    vectors : ndarray
        float32 (n_users x encoder dim); zeros for users without texts.
    n_texts : ndarray
        int64 texts per user (0: no text).
    encoder : str
        Identity of the encoder (:attr:`TextEncoder.identity`).
    half_life_days : float or None
        Recency half-life used (None: every text weighs the same).
    """

    user_ids: np.ndarray
    vectors: np.ndarray
    n_texts: np.ndarray
    encoder: str
    half_life_days: float | None = None

    @property
    def has_text(self) -> np.ndarray:
        """Boolean mask of the users with at least one text."""
        return self.n_texts > 0


def check_half_life(half_life_days: float | None) -> None:
    """Refuse a half-life that is not a finite positive number (None is allowed: no recency weighting).

    >>> check_half_life(30.0); check_half_life(None)
    >>> check_half_life(0)
    Traceback (most recent call last):
    ValueError: half_life_days must be a finite number > 0 or None, got 0
    """
    if half_life_days is not None and not (np.isfinite(half_life_days) and half_life_days > 0):
        raise ValueError(_BAD_HALF_LIFE.format(half_life_days))


def recency_weights(user_pos: np.ndarray, timestamps: np.ndarray, n_users: int, half_life_days: float) -> np.ndarray:
    """Weight of each text: ``0.5 ** ((newest text of its user - its time) / half-life)``.

    >>> recency_weights(np.array([0, 0, 1]), np.array([0, 86_400, 5]), 2, 1.0).tolist()
    [0.5, 1.0, 1.0]
    """
    check_half_life(half_life_days)
    timestamps = np.asarray(timestamps, dtype=np.float64)
    latest = np.full(n_users, -np.inf)
    np.maximum.at(latest, user_pos, timestamps)
    age_days = (latest[user_pos] - timestamps) / SECONDS_PER_DAY
    return 0.5 ** (age_days / half_life_days)


def pool_profiles(
    embeddings: np.ndarray,
    user_pos: np.ndarray,
    n_users: int,
    *,
    timestamps: np.ndarray | None = None,
    half_life_days: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean of text embeddings per user (scatter-add); returns ``(vectors, counts)``.

    ``embeddings`` (n_texts x dim) row ``t`` belongs to user ``user_pos[t]`` (0 .. n_users-1).
    With ``half_life_days`` each text weighs ``0.5 ** (age / half-life)``, its age counted from
    its user's newest text (:func:`recency_weights`). Users without texts get zeros.

    >>> e = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    >>> vectors, counts = pool_profiles(e, np.array([0, 0, 2]), 3)
    >>> vectors.tolist(), counts.tolist()
    ([[0.5, 0.5], [0.0, 0.0], [2.0, 2.0]], [2, 0, 1])
    >>> pool_profiles(e[:2], np.array([0, 0]), 1, timestamps=np.array([0, 86_400]), half_life_days=1.0)[0] * 3
    array([[1., 2.]], dtype=float32)
    """
    user_pos = np.asarray(user_pos, dtype=np.int64)
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if half_life_days is None:
        weights = np.ones(len(user_pos))
    else:
        if timestamps is None:
            raise ValueError(_NO_TIMESTAMPS.format("no timestamps"))
        weights = recency_weights(user_pos, timestamps, n_users, half_life_days)
    rows = torch.from_numpy(user_pos)
    weighted = torch.from_numpy(weights[:, None] * embeddings)
    sums = torch.zeros(n_users, embeddings.shape[1], dtype=torch.float64).index_add_(0, rows, weighted).numpy()
    total = np.bincount(user_pos, weights=weights, minlength=n_users)
    counts = np.bincount(user_pos, minlength=n_users).astype(np.int64)
    vectors = sums / np.where(total > 0, total, 1.0)[:, None]
    return vectors.astype(np.float32), counts


def encode_profiles(
    texts: pd.DataFrame | None,
    user_ids: Sequence[str],
    *,
    encoder: TextEncoder | str | None = None,
    half_life_days: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TextProfiles:
    """Text profiles of ``user_ids`` from a texts table (``user_id``, ``text`` [, ``timestamp``]).

    Each distinct text is encoded once (disk-cached by the encoder); texts of users not in
    ``user_ids`` are ignored; ``texts=None`` gives every user a zero profile. ``encoder``: a
    :class:`TextEncoder`, a local model folder, or None for the packaged MiniLM.

    >>> t = pd.DataFrame({"user_id": ["a", "a", "c"], "text": ["I love horror.", "I love horror.", "Drama!"]})
    >>> p = encode_profiles(t, ["a", "b"])
    >>> p.vectors.shape, p.n_texts.tolist(), bool(abs(p.vectors[0] @ p.vectors[0] - 1) < 1e-5)
    ((2, 384), [2, 0], True)
    """
    check_half_life(half_life_days)
    if not isinstance(encoder, TextEncoder):
        encoder = get_encoder(None if encoder is None else str(encoder))
    ids = pd.Index(pd.Series(list(user_ids), dtype=object).astype(str))
    if texts is None or texts.empty:
        vectors = np.zeros((len(ids), encoder.dim), dtype=np.float32)
        return TextProfiles(ids.to_numpy(dtype=object), vectors, np.zeros(len(ids), np.int64), encoder.identity, half_life_days)
    if half_life_days is not None and "timestamp" not in texts:
        raise ValueError(_NO_TIMESTAMPS.format(list(texts.columns)))
    pos = ids.get_indexer(texts["user_id"].astype(str))
    kept = texts[pos >= 0]
    pos = pos[pos >= 0]
    codes, uniques = pd.factorize(kept["text"].astype(str))
    embeddings = encoder.encode(list(uniques), progress=progress)[codes] if len(uniques) else np.zeros((0, encoder.dim))
    timestamps = kept["timestamp"].to_numpy() if half_life_days is not None else None
    vectors, counts = pool_profiles(embeddings, pos, len(ids), timestamps=timestamps, half_life_days=half_life_days)
    return TextProfiles(ids.to_numpy(dtype=object), vectors, counts, encoder.identity, half_life_days)
