"""Pareto fronts of trade-offs: which candidates no other candidate beats on accuracy and on a gap."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

#: What "better" means for the gap axis: closer to zero, lower, or higher.
GapGoal = Literal["zero", "low", "high"]
GAP_GOALS: tuple[str, ...] = ("zero", "low", "high")

_BAD_GOAL = "gap_goal must be one of ('zero', 'low', 'high'), got '{0}'"


def pareto_front(
    frame: pd.DataFrame, accuracy_col: str = "accuracy", gap_col: str = "gap", *, gap_goal: GapGoal = "zero"
) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (higher accuracy and a better gap).

    Accuracy is better when higher; the gap is better when closer to zero (``gap_goal="zero"``),
    lower (``"low"``) or higher (``"high"``). A row is dominated when another row is at least as
    good on both and strictly better on one; rows with a missing value are never on the front.

    Examples
    --------
    >>> f = pd.DataFrame({"accuracy": [0.30, 0.28, 0.25, 0.20], "gap": [-0.10, -0.04, -0.05, 0.01]})
    >>> pareto_front(f).tolist()
    [True, True, False, True]
    """
    if gap_goal not in GAP_GOALS:
        raise ValueError(_BAD_GOAL.format(gap_goal))
    acc = frame[accuracy_col].to_numpy(dtype=float)
    gap = frame[gap_col].to_numpy(dtype=float)
    badness = {"zero": np.abs(gap), "low": gap, "high": -gap}[gap_goal]
    valid = ~np.isnan(acc) & ~np.isnan(badness)
    no_worse = (acc[None, :] >= acc[:, None]) & (badness[None, :] <= badness[:, None])
    better = (acc[None, :] > acc[:, None]) | (badness[None, :] < badness[:, None])
    dominated = (no_worse & better & valid[None, :]).any(axis=1)
    return valid & ~dominated
