"""Pass / attention / fail rules of the executive summary, and the plain-sentence gap summary."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, Mapping

import numpy as np
import pandas as pd

from fairaudit.metrics import METRICS, metric_label

Status = Literal["pass", "attention", "fail"]
STATUSES: tuple[str, ...] = ("pass", "attention", "fail")
#: Per-user metrics where higher is better and a group/reference ratio is meaningful (four-fifths rule):
#: the registry's higher-is-better accuracy metrics.
RATIO_METRICS = METRICS.names(level="user", family="accuracy", higher_is_better=True)

_BAD_THRESHOLD = "Threshold {0}={1!r} is out of range; expected {2}"
_UNKNOWN_THRESHOLD = "Unknown threshold(s) {0}; expected some of {1}"


@dataclass(frozen=True)
class Thresholds:
    """Limits of the compliance checks.

    Attributes
    ----------
    min_ratio : float
        A group's accuracy divided by the reference's must be at least this (0.8 = four-fifths rule).
    max_exposure_diff : float
        An item group's exposure share may differ from its catalogue share by at most this.
    alpha : float
        Level at which a BH-adjusted gap p-value counts as significant.

    >>> Thresholds.from_mapping({"min_ratio": 0.9}).min_ratio
    0.9
    """

    min_ratio: float = 0.8
    max_exposure_diff: float = 0.1
    alpha: float = 0.05

    def __post_init__(self) -> None:
        for name, value, low, high in (("min_ratio", self.min_ratio, 0.0, 1.0),
                                       ("max_exposure_diff", self.max_exposure_diff, 0.0, 1.0),
                                       ("alpha", self.alpha, 0.0, 1.0)):
            if not low < float(value) <= high:
                raise ValueError(_BAD_THRESHOLD.format(name, value, f"a number in ({low:g}, {high:g}]"))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "Thresholds":
        """Thresholds from a mapping (e.g. the ``thresholds`` of an audit config); missing keys keep defaults."""
        known = {f.name for f in fields(cls)}
        values = dict(values or {})
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(_UNKNOWN_THRESHOLD.format(unknown, sorted(known)))
        return cls(**{k: float(v) for k, v in values.items()})

    def rules(self) -> list[str]:
        """The rules in words, as printed in the report."""
        return [
            f"Accuracy ratio (NDCG, Recall, Precision, HitRate, MRR): ratio = group value / reference value. "
            f"PASS when the whole 95% CI of the ratio is at least {self.min_ratio:g}; FAIL when the whole CI "
            f"is below {self.min_ratio:g}; ATTENTION when the CI contains {self.min_ratio:g}. The ratio CI is "
            f"1 + (CI of the difference) / reference value, treating the reference value as fixed.",
            f"Exposure: difference = exposure share - catalogue share of an item group (all users). PASS when "
            f"the difference (or its whole CI, where the audit gives one) lies within +/-{self.max_exposure_diff:g}; "
            f"FAIL when it (or its whole CI) lies outside; ATTENTION when the CI crosses +/-{self.max_exposure_diff:g}.",
            f"Groups flagged as small are not assessed. Gaps are called significant when the "
            f"Benjamini-Hochberg adjusted p-value is below {self.alpha:g}.",
        ]


def interval_status(low: np.ndarray, high: np.ndarray, lower: float, upper: float = np.inf) -> np.ndarray:
    """Status of intervals ``[low, high]`` against the allowed range ``[lower, upper]``.

    ``pass`` when inside, ``fail`` when entirely outside, ``attention`` when crossing a bound.

    >>> interval_status(np.array([.85, .7, .75]), np.array([.9, .78, .85]), 0.8).tolist()
    ['pass', 'fail', 'attention']
    """
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    inside = (low >= lower) & (high <= upper)
    outside = (high < lower) | (low > upper)
    return np.where(inside, "pass", np.where(outside, "fail", "attention"))


def format_number(value: float) -> str:
    """How the report prints a number: 3 decimals, 1 decimal from 100 on, "n/a" for NaN.

    >>> format_number(0.28917), format_number(-0.05), format_number(123.456), format_number(float("nan"))
    ('0.289', '-0.050', '123.5', 'n/a')
    """
    value = float(value)
    if np.isnan(value):
        return "n/a"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


CHECK_COLUMNS = ("model", "check", "attribute", "subject", "metric", "estimate", "ci_low", "ci_high", "threshold",
                 "status")
#: Order of statuses from most to least severe (appendix sort order).
SEVERITY = {"fail": 0, "attention": 1, "pass": 2}


def ratio_checks(group_metrics: pd.DataFrame, gaps: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """Accuracy-ratio checks, one row per model x tested group x ratio metric.

    Uses the ``best`` reference where the audit has it, else ``rest``.

    >>> gm = pd.DataFrame({"model": "m", "attribute": "g", "group": ["F", "M"], "metric": "ndcg",
    ...     "value": [.2, .3]})
    >>> gaps = pd.DataFrame({"model": "m", "attribute": "g", "group": "F", "reference": "best",
    ...     "metric": "ndcg", "difference": [-.1], "ci_low": [-.15], "ci_high": [-.05]})
    >>> ratio_checks(gm, gaps, Thresholds())[["estimate", "ci_low", "ci_high", "status"]].round(3).values.tolist()
    [[0.667, 0.5, 0.833, 'attention']]
    """
    reference = "best" if (gaps["reference"] == "best").any() else "rest"
    rows = gaps[(gaps["reference"] == reference) & gaps["metric"].isin(RATIO_METRICS)]
    values = group_metrics.set_index(["model", "attribute", "group", "metric"])["value"]
    keys = pd.MultiIndex.from_frame(rows[["model", "attribute", "group", "metric"]])
    group_value = values.reindex(keys).to_numpy()
    ref_value = group_value - rows["difference"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = group_value / ref_value
        low = 1 + rows["ci_low"].to_numpy() / ref_value
        high = 1 + rows["ci_high"].to_numpy() / ref_value
    out = pd.DataFrame({
        "model": rows["model"].to_numpy(), "check": "accuracy ratio", "attribute": rows["attribute"].to_numpy(),
        "subject": (rows["attribute"] + " = " + rows["group"] + " vs " + reference).to_numpy(),
        "metric": rows["metric"].to_numpy(), "estimate": ratio, "ci_low": low, "ci_high": high,
        "threshold": f">= {thresholds.min_ratio:g}",
    })
    out["status"] = interval_status(out["ci_low"], out["ci_high"], thresholds.min_ratio)
    return out[list(CHECK_COLUMNS)]


def exposure_checks(item_exposure: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """Exposure-share checks for every model x item group x browsing model (all users).

    >>> ie = pd.DataFrame({"model": "m", "user_attribute": "all", "user_group": "all", "item_attribute": "tier",
    ...     "item_group": ["head", "tail"], "browsing": "dcg", "exposure_share": [.7, .3],
    ...     "catalogue_share": [.5, .5], "relevance_share": .5})
    >>> exposure_checks(ie, Thresholds())["status"].tolist()
    ['fail', 'fail']
    """
    rows = item_exposure[item_exposure["user_attribute"] == "all"]
    diff = (rows["exposure_share"] - rows["catalogue_share"]).to_numpy()
    has_ci = {"ci_low", "ci_high"} <= set(rows.columns)
    low = (rows["ci_low"] - rows["catalogue_share"]).to_numpy() if has_ci else diff
    high = (rows["ci_high"] - rows["catalogue_share"]).to_numpy() if has_ci else diff
    out = pd.DataFrame({
        "model": rows["model"].to_numpy(), "check": "exposure share", "attribute": rows["item_attribute"].to_numpy(),
        "subject": (rows["item_attribute"] + " = " + rows["item_group"] + " (" + rows["browsing"] + ")").to_numpy(),
        "metric": "exposure - catalogue share", "estimate": diff, "ci_low": low, "ci_high": high,
        "threshold": f"within +/-{thresholds.max_exposure_diff:g}",
    })
    limit = thresholds.max_exposure_diff
    out["status"] = interval_status(out["ci_low"], out["ci_high"], -limit, limit)
    return out[list(CHECK_COLUMNS)]


def evaluate_thresholds(group_metrics: pd.DataFrame, gaps: pd.DataFrame, item_exposure: pd.DataFrame,
                        thresholds: Thresholds = Thresholds()) -> pd.DataFrame:
    """All checks of the executive summary: :func:`ratio_checks` then :func:`exposure_checks`.

    >>> evaluate_thresholds(pd.DataFrame(columns=["model", "attribute", "group", "metric", "value"]),
    ...     pd.DataFrame(columns=["model", "attribute", "group", "reference", "metric", "difference", "ci_low",
    ...     "ci_high"]), pd.DataFrame(columns=["model", "user_attribute", "item_attribute", "item_group",
    ...     "browsing", "exposure_share", "catalogue_share"])).shape
    (0, 10)
    """
    return pd.concat([ratio_checks(group_metrics, gaps, thresholds), exposure_checks(item_exposure, thresholds)],
                     ignore_index=True)


def check_counts(checks: pd.DataFrame) -> pd.DataFrame:
    """Pass / attention / fail counts per model, check and attribute (user attribute for accuracy
    ratios, item attribute for exposure shares), in the checks' order.

    >>> checks = pd.DataFrame({"model": "m", "check": "accuracy ratio", "attribute": ["g", "g", "a"],
    ...                        "status": ["pass", "fail", "fail"]})
    >>> check_counts(checks).values.tolist()
    [['m', 'accuracy ratio', 'g', 1, 0, 1], ['m', 'accuracy ratio', 'a', 0, 0, 1]]
    """
    keys = ["model", "check", "attribute"]
    counts = checks.groupby(keys, sort=False)["status"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=list(STATUSES), fill_value=0).astype(int)
    counts.columns.name = None
    return counts.reset_index()


def by_severity(checks: pd.DataFrame) -> pd.DataFrame:
    """Checks sorted fail, attention, pass; within a status by model, check and attribute (stable).

    >>> checks = pd.DataFrame({"model": ["b", "a", "a"], "check": "c", "attribute": "g",
    ...                        "status": ["fail", "pass", "fail"]})
    >>> by_severity(checks)[["model", "status"]].values.tolist()
    [['a', 'fail'], ['b', 'fail'], ['a', 'pass']]
    """
    order = checks["status"].map(SEVERITY)
    return (checks.assign(_severity=order).sort_values(["_severity", "model", "check", "attribute"], kind="stable")
            .drop(columns="_severity").reset_index(drop=True))


def largest_gap_sentences(group_metrics: pd.DataFrame, gaps: pd.DataFrame, *, k: int = 10, top: int = 5,
                          alpha: float = 0.05, metrics: tuple[str, ...] = RATIO_METRICS) -> list[str]:
    """The ``top`` largest accuracy gaps vs the rest of users, as plain sentences with their CIs.

    Significant gaps (BH-adjusted p < alpha) come first, then by absolute difference. A non-significant gap
    smaller than its minimum detectable gap (``mdg`` of ``gaps.csv``, 80 % power) says it is too small to tell.

    >>> gm = pd.DataFrame({"model": "m", "attribute": "g", "group": ["F"], "metric": "ndcg", "value": [.2]})
    >>> gaps = pd.DataFrame({"model": "m", "attribute": "g", "group": "F", "reference": "rest",
    ...     "metric": "ndcg", "difference": [-.1], "ci_low": [-.15], "ci_high": [-.05], "p_adjusted": [.01]})
    >>> print(largest_gap_sentences(gm, gaps)[0])
    Model m: NDCG@10 for g = F is 0.200, 0.100 lower than for the rest of users (difference -0.100, 95% CI [-0.150, -0.050]; BH-adjusted p = 0.01, significant).
    """
    rows = gaps[(gaps["reference"] == "rest") & gaps["metric"].isin(metrics)].copy()
    if rows.empty:
        return []
    rows["significant"] = rows["p_adjusted"] < alpha
    rows["size"] = rows["difference"].abs()
    rows = rows.sort_values(["significant", "size"], ascending=False, kind="stable").head(top)
    values = group_metrics.set_index(["model", "attribute", "group", "metric"])["value"]
    sentences = []
    for row in rows.itertuples(index=False):
        value = values.get((row.model, row.attribute, row.group, row.metric), np.nan)
        side = "lower" if row.difference < 0 else "higher"
        verdict = "significant" if row.significant else "not significant"
        mdg = getattr(row, "mdg", np.nan)  # folders written before gaps.csv had mdg: no power statement
        if not row.significant and np.isfinite(mdg) and abs(row.difference) < mdg:
            verdict += f"; too small to tell: gaps under {format_number(mdg)} are not detectable at this group size"
        sentences.append(
            f"Model {row.model}: {metric_label(row.metric, k)} for {row.attribute} = {row.group} is "
            f"{format_number(value)}, {format_number(abs(row.difference))} {side} than for the rest of users "
            f"(difference {format_number(row.difference)}, 95% CI [{format_number(row.ci_low)}, "
            f"{format_number(row.ci_high)}]; BH-adjusted p = {row.p_adjusted:.2g}, {verdict})."
        )
    return sentences
