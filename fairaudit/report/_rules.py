"""Pass / attention / fail rules of the executive summary, and the plain-sentence gap summary."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, Mapping

import numpy as np
import pandas as pd

from fairaudit._choices import THRESHOLD_DEFAULTS
from fairaudit.metrics import METRICS

Status = Literal["pass", "attention", "fail"]
STATUSES: tuple[str, ...] = ("pass", "attention", "fail")
#: Per-user metrics where higher is better and a group/reference ratio is meaningful (four-fifths rule):
#: the registry's higher-is-better accuracy metrics.
RATIO_METRICS = METRICS.names(level="user", family="accuracy", higher_is_better=True)
#: Per-user metrics beyond accuracy checked by their relative gap between groups: diversity, coverage, novelty and
#: calibration, whose values lie away from zero. The popularity family (average popularity, long-tail share) is
#: left to the exposure-share checks: a long-tail share near 0 for everyone makes any relative gap meaningless.
RELATIVE_GAP_METRICS = METRICS.names(level="user", family=("diversity", "coverage", "novelty", "calibration"))
#: The catalogue-level concentration and coverage metrics with their own limits (``max_gini``, ``min_coverage``).
GINI_METRIC = METRICS.names(level="catalogue", family="exposure")[0]
COVERAGE_METRIC = METRICS.names(level="catalogue", family="coverage")[0]

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
    max_relative_gap : float
        A diversity, coverage, novelty or calibration gap may be at most this share of the reference
        group's value (0.2: the four-fifths rule's 20 % read both ways).
    max_gini : float
        Largest Gini of item exposure over the catalogue (0 = every item equally exposed, 1 = one item gets all).
    min_coverage : float
        Least share of the catalogue recommended to at least one user.

    >>> Thresholds.from_mapping({"min_ratio": 0.9}).min_ratio
    0.9
    """

    min_ratio: float = THRESHOLD_DEFAULTS["min_ratio"]
    max_exposure_diff: float = THRESHOLD_DEFAULTS["max_exposure_diff"]
    alpha: float = THRESHOLD_DEFAULTS["alpha"]
    max_relative_gap: float = THRESHOLD_DEFAULTS["max_relative_gap"]
    max_gini: float = THRESHOLD_DEFAULTS["max_gini"]
    min_coverage: float = THRESHOLD_DEFAULTS["min_coverage"]

    def __post_init__(self) -> None:
        for name, value, low, high in (("min_ratio", self.min_ratio, 0.0, 1.0),
                                       ("max_exposure_diff", self.max_exposure_diff, 0.0, 1.0),
                                       ("alpha", self.alpha, 0.0, 1.0),
                                       ("max_relative_gap", self.max_relative_gap, 0.0, 1.0),
                                       ("max_gini", self.max_gini, 0.0, 1.0),
                                       ("min_coverage", self.min_coverage, 0.0, 1.0)):
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
            f"Diversity, coverage, novelty and calibration: relative gap = (group value - reference value) / "
            f"reference value, with the reference as for accuracy. PASS when its whole 95% CI lies within "
            f"+/-{self.max_relative_gap:g}; FAIL when the whole CI lies outside; ATTENTION when it crosses a bound.",
            f"Catalogue: Gini of item exposure at most {self.max_gini:g} (PASS when its whole CI is at most "
            f"{self.max_gini:g}, FAIL when above, ATTENTION when it crosses); catalogue coverage (share of items "
            f"recommended to anyone, no CI) at least {self.min_coverage:g}.",
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
                 "status", "group", "reference_group", "value", "reference_value", "browsing")
#: Order of statuses from most to least severe (appendix sort order).
SEVERITY = {"fail": 0, "attention": 1, "pass": 2}
#: ``check`` of each kind of row of :func:`evaluate_thresholds`.
RATIO_CHECK, EXPOSURE_CHECK, RELATIVE_CHECK, CATALOGUE_CHECK = (
    "accuracy ratio", "exposure share", "relative gap", "catalogue")


def _reference(gaps: pd.DataFrame) -> str:
    """The reference of the group checks: ``best`` where the audit has it, else ``rest``."""
    return "best" if (gaps["reference"] == "best").any() else "rest"


def _gap_frame(group_metrics: pd.DataFrame, gaps: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """The reference's gap rows of ``metrics`` with the group's and the reference's values (``value`` and
    ``reference_value = value - difference``) and the reference group's name."""
    reference = _reference(gaps)
    rows = gaps[(gaps["reference"] == reference) & gaps["metric"].isin(metrics)]
    values = group_metrics.set_index(["model", "attribute", "group", "metric"])["value"]
    keys = pd.MultiIndex.from_frame(rows[["model", "attribute", "group", "metric"]])
    group_value = values.reindex(keys).to_numpy()
    named = rows["reference_group"].astype(str) if "reference_group" in rows.columns else pd.Series(reference,
                                                                                                   index=rows.index)
    return pd.DataFrame({
        "model": rows["model"].to_numpy(), "attribute": rows["attribute"].to_numpy(),
        "group": rows["group"].to_numpy(), "reference": reference, "reference_group": named.to_numpy(),
        "metric": rows["metric"].to_numpy(), "value": group_value,
        "reference_value": group_value - rows["difference"].to_numpy(),
        "difference": rows["difference"].to_numpy(), "diff_low": rows["ci_low"].to_numpy(),
        "diff_high": rows["ci_high"].to_numpy(),
    })


def _group_checks(frame: pd.DataFrame, check: str, estimate, low, high, threshold: str,
                  status: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "model": frame["model"], "check": check, "attribute": frame["attribute"],
        "subject": frame["attribute"] + " = " + frame["group"] + " vs " + frame["reference"],
        "metric": frame["metric"], "estimate": estimate, "ci_low": low, "ci_high": high, "threshold": threshold,
        "status": status, "group": frame["group"], "reference_group": frame["reference_group"],
        "value": frame["value"], "reference_value": frame["reference_value"], "browsing": "",
    })[list(CHECK_COLUMNS)]


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
    frame = _gap_frame(group_metrics, gaps, RATIO_METRICS)
    ref = frame["reference_value"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = frame["value"].to_numpy() / ref
        low = 1 + frame["diff_low"].to_numpy() / ref
        high = 1 + frame["diff_high"].to_numpy() / ref
    status = interval_status(low, high, thresholds.min_ratio)
    return _group_checks(frame, RATIO_CHECK, ratio, low, high, f">= {thresholds.min_ratio:g}", status)


def relative_gap_checks(group_metrics: pd.DataFrame, gaps: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """Relative-gap checks of the per-user metrics beyond accuracy (:data:`RELATIVE_GAP_METRICS`).

    ``estimate = difference / reference value`` with the difference's CI scaled the same way (reference
    fixed); a zero reference with a zero difference (bound) is no gap. Reference as :func:`ratio_checks`.

    >>> gm = pd.DataFrame({"model": "m", "attribute": "g", "group": ["F", "M"], "metric": "novelty",
    ...     "value": [6., 8.]})
    >>> gaps = pd.DataFrame({"model": "m", "attribute": "g", "group": "F", "reference": "best",
    ...     "metric": "novelty", "difference": [-2.], "ci_low": [-2.4], "ci_high": [-1.6]})
    >>> relative_gap_checks(gm, gaps, Thresholds())[["estimate", "ci_low", "ci_high", "status"]].values.tolist()
    [[-0.25, -0.3, -0.2, 'attention']]
    """
    frame = _gap_frame(group_metrics, gaps, RELATIVE_GAP_METRICS)
    ref = frame["reference_value"].to_numpy()

    def relative(values: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(values == 0, 0.0, values / ref)

    low, high = relative(frame["diff_low"].to_numpy()), relative(frame["diff_high"].to_numpy())
    limit = thresholds.max_relative_gap
    status = interval_status(low, high, -limit, limit)
    return _group_checks(frame, RELATIVE_CHECK, relative(frame["difference"].to_numpy()), low, high,
                         f"within +/-{limit:g}", status)


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
    limit = thresholds.max_exposure_diff
    out = pd.DataFrame({
        "model": rows["model"].to_numpy(), "check": EXPOSURE_CHECK, "attribute": rows["item_attribute"].to_numpy(),
        "subject": (rows["item_attribute"] + " = " + rows["item_group"] + " (" + rows["browsing"] + ")").to_numpy(),
        "metric": "exposure - catalogue share", "estimate": diff, "ci_low": low, "ci_high": high,
        "threshold": f"within +/-{limit:g}", "status": interval_status(low, high, -limit, limit),
        "group": rows["item_group"].to_numpy(), "reference_group": "catalogue share",
        "value": rows["exposure_share"].to_numpy(), "reference_value": rows["catalogue_share"].to_numpy(),
        "browsing": rows["browsing"].to_numpy(),
    })
    return out[list(CHECK_COLUMNS)]


def catalogue_checks(group_metrics: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """Gini of item exposure (at most ``max_gini``) and catalogue coverage (at least ``min_coverage``) per model.

    A metric without a CI (coverage) is judged on its value.

    >>> gm = pd.DataFrame({"model": "m", "attribute": "all", "group": "all", "metric": [GINI_METRIC,
    ...     COVERAGE_METRIC], "value": [.95, .3], "ci_low": [.94, np.nan], "ci_high": [.96, np.nan]})
    >>> catalogue_checks(gm, Thresholds())[["metric", "status"]].values.tolist()
    [['gini_exposure', 'fail'], ['catalogue_coverage', 'pass']]
    """
    rows = group_metrics[(group_metrics["attribute"] == "all")
                         & group_metrics["metric"].isin((GINI_METRIC, COVERAGE_METRIC))]
    value = rows["value"].to_numpy(dtype=float)
    low = rows["ci_low"].fillna(rows["value"]).to_numpy(dtype=float) if "ci_low" in rows else value
    high = rows["ci_high"].fillna(rows["value"]).to_numpy(dtype=float) if "ci_high" in rows else value
    gini = (rows["metric"] == GINI_METRIC).to_numpy()
    status = np.where(gini, interval_status(low, high, -np.inf, thresholds.max_gini),
                      interval_status(low, high, thresholds.min_coverage))
    out = pd.DataFrame({
        "model": rows["model"].to_numpy(), "check": CATALOGUE_CHECK, "attribute": "all",
        "subject": "all items", "metric": rows["metric"].to_numpy(), "estimate": value, "ci_low": low,
        "ci_high": high,
        "threshold": np.where(gini, f"<= {thresholds.max_gini:g}", f">= {thresholds.min_coverage:g}"),
        "status": status, "group": "all", "reference_group": "", "value": value, "reference_value": np.nan,
        "browsing": "",
    })
    return out[list(CHECK_COLUMNS)]


def evaluate_thresholds(group_metrics: pd.DataFrame, gaps: pd.DataFrame, item_exposure: pd.DataFrame,
                        thresholds: Thresholds = Thresholds()) -> pd.DataFrame:
    """All checks of the executive summary: :func:`ratio_checks`, :func:`exposure_checks`,
    :func:`relative_gap_checks` and :func:`catalogue_checks`, in that order.

    >>> evaluate_thresholds(pd.DataFrame(columns=["model", "attribute", "group", "metric", "value"]),
    ...     pd.DataFrame(columns=["model", "attribute", "group", "reference", "metric", "difference", "ci_low",
    ...     "ci_high"]), pd.DataFrame(columns=["model", "user_attribute", "item_attribute", "item_group",
    ...     "browsing", "exposure_share", "catalogue_share"])).shape
    (0, 15)
    """
    parts = [ratio_checks(group_metrics, gaps, thresholds), exposure_checks(item_exposure, thresholds),
             relative_gap_checks(group_metrics, gaps, thresholds), catalogue_checks(group_metrics, thresholds)]
    return pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)


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
