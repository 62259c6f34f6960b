"""Calibration: how far the genre mix of a user's recommendations is from the mix of their history."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairaudit.metrics._common import user_index, user_item_matrix

#: Steck's smoothing weight: q~ = (1 - alpha) q + alpha p keeps KL finite.
CALIBRATION_ALPHA = 0.01


def miscalibration(
    recs: pd.DataFrame, train: pd.DataFrame, genre_weights: pd.DataFrame, *, alpha: float = CALIBRATION_ALPHA
) -> pd.Series:
    """Steck's miscalibration ``C_KL(p, q) = sum_g p(g|u) ln(p(g|u) / q~(g|u))`` per user.

    ``p(g|u) = mean_{i in H_u} p(g|i)`` over the user's training items, ``q(g|u)`` the same over
    the top-K list (uniform over ranks), ``p(g|i) = 1/|genres(i)|`` (``genre_weights``, i.e.
    :func:`fairaudit.data.genre_matrix` with ``normalise=True``), and ``q~ = (1 - alpha) q + alpha p`` with
    ``alpha = 0.01`` (Steck, *Calibrated recommendations*, RecSys 2018). Natural log; genres with
    ``p = 0`` contribute 0. 0 means perfectly calibrated. Users without training history: NaN.
    (LibRec computes the reversed KL against the test set in log2; we follow the paper.)

    >>> weights = pd.DataFrame({"A": [1.0, 0.0], "B": [0.0, 1.0]}, index=["x", "y"])
    >>> train = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"]})
    >>> recs = pd.DataFrame({"user_id": ["a"], "rank": [1], "item_id": ["x"]})
    >>> round(float(miscalibration(recs, train, weights, alpha=0.01).iloc[0]), 4)  # 0.5 ln(0.5/0.995) + 0.5 ln(0.5/0.005)
    1.9585
    """
    users = user_index(recs)
    catalogue = pd.Index(genre_weights.index.astype(str))
    weights = genre_weights.to_numpy(dtype=float)

    def _mix(frame: pd.DataFrame) -> np.ndarray:
        mass = user_item_matrix(frame, users, catalogue) @ weights
        total = mass.sum(axis=1, keepdims=True)
        return np.divide(mass, total, out=np.full_like(mass, np.nan), where=total > 0)

    p, q = _mix(train), _mix(recs)
    q_smooth = (1.0 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q_smooth), 0.0)
    kl = terms.sum(axis=1)
    kl[np.isnan(p).any(axis=1)] = np.nan
    return pd.Series(kl, index=users)
