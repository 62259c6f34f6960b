"""Findings: the audit's threshold checks ranked, merged and said in one sentence each.

The Audit page and the PDF's executive summary both open with :func:`audit_findings`, so they
show the same findings with the same verdicts: every verdict is the ``status`` of a check of
:func:`fairaudit.report.evaluate_thresholds` (the PDF's pass / attention / fail rules), never a
second judgement. What this module adds is reading order:

- one finding per affected group and family: the accuracy metrics of one group (NDCG, Recall, ...)
  become one finding led by the most severe, the others named in ``also``;
- mirror pairs merged: with two groups compared against the rest, or an item attribute with two
  groups, "F lower by 0.049" and "M higher by 0.049" are one finding about the group that loses;
- exposure read under one browsing model (the first of the audit, ``dcg``), said in the scope;
- ranked fail, attention, pass, then by how far the estimate lies beyond its limit
  (``excess``: 1 at the limit, 0 at parity), so the headline is the clearest failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from fairaudit.audit import AuditResult
from fairaudit.metrics import METRICS, metric_label
from fairaudit.report._rules import (
    CATALOGUE_CHECK,
    COVERAGE_METRIC,
    EXPOSURE_CHECK,
    RATIO_CHECK,
    RELATIVE_CHECK,
    SEVERITY,
    STATUSES,
    Thresholds,
    evaluate_thresholds,
    format_number as fmt,
)

#: The four families findings are sorted into (the registry's families, grouped for readers).
FINDING_FAMILIES = ("accuracy", "exposure", "diversity", "calibration")
_FAMILY_OF = {"accuracy": "accuracy", "diversity": "diversity", "coverage": "diversity", "novelty": "diversity",
              "popularity": "exposure", "exposure": "exposure", "calibration": "calibration"}
FINDING_COLUMNS = ("rank", "model", "family", "verdict", "affected", "attribute", "group", "reference_group", "metric",
                   "value",
                   "reference_value", "estimate", "ci_low", "ci_high", "threshold", "effect", "excess", "also",
                   "sentence", "check", "subject")
#: Differences summing to at most this (relative to their size) are mirrors of each other.
_MIRROR_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Findings:
    """The ranked findings of an audit and the checks they come from.

    Attributes
    ----------
    table : DataFrame
        :data:`FINDING_COLUMNS`, ranked (``rank`` 1 = the headline).
    checks : DataFrame
        Every check of :func:`fairaudit.report.evaluate_thresholds` (the PDF's counts and appendix).
    attributes, item_attributes : tuple of str
        The user and item attributes the checks cover.
    browsing : str
        The browsing model exposure findings are read under ("" when the audit has no exposure).
    """

    table: pd.DataFrame
    checks: pd.DataFrame
    attributes: tuple[str, ...]
    item_attributes: tuple[str, ...]
    browsing: str

    @property
    def headline(self) -> str:
        """The first finding as one sentence naming its model and verdict ("" without findings).

        >>> empty = Findings(pd.DataFrame(columns=FINDING_COLUMNS), pd.DataFrame(), (), (), "")
        >>> empty.headline
        ''
        """
        if self.table.empty:
            return ""
        top = self.table.iloc[0]
        return f"{top['verdict'].upper()} · model {top['model']}: {top['sentence']}"

    def counts(self) -> dict[str, int]:
        """Checks per status (``pass``, ``attention``, ``fail``), as the PDF's summary counts them."""
        totals = self.checks["status"].value_counts() if len(self.checks) else pd.Series(dtype=int)
        return {status: int(totals.get(status, 0)) for status in STATUSES}

    def scope(self) -> str:
        """Which attributes the findings (and the PDF's checks) cover, in one sentence."""
        users = ", ".join(self.attributes) or "no user attribute"
        items = ", ".join(self.item_attributes) or "no item attribute"
        browsing = f" (exposure under the {self.browsing} browsing model)" if self.browsing else ""
        return (f"Covers every audited attribute: users by {users}; items by {items}{browsing}; "
                "and the catalogue's exposure Gini and coverage.")

    def cue(self, model: str, metric: str) -> tuple[str, str] | None:
        """Good/bad cue of a headline number: the worst status of ``model``'s checks on ``metric`` and a short
        text (the limit of a catalogue metric; for a per-group metric, how many group checks have that
        status); ``None`` without checks.

        >>> checks = pd.DataFrame({"model": "m", "metric": "ndcg", "threshold": ">= 0.8",
        ...                        "status": ["pass", "fail", "attention"]})
        >>> Findings(pd.DataFrame(columns=FINDING_COLUMNS), checks, (), (), "").cue("m", "ndcg")
        ('fail', 'FAIL: 1 of 3 groups fail')
        """
        rows = self.checks[(self.checks["model"] == model) & (self.checks["metric"] == metric)]
        if rows.empty:
            return None
        status = min(rows["status"], key=SEVERITY.__getitem__)
        threshold = rows["threshold"].iloc[0]
        if len(rows) == 1:
            return status, f"{status.upper()} (limit {threshold})"
        counts = rows["status"].value_counts()
        worst = "fail" if status == "fail" else "need attention" if status == "attention" else "pass"
        return status, f"{status.upper()}: {counts.get(status, 0)} of {len(rows)} groups {worst}"

    def for_model(self, model: str) -> "Findings":
        """The findings and checks of one model, re-ranked."""
        table = self.table[self.table["model"] == model].reset_index(drop=True)
        return Findings(table.assign(rank=np.arange(1, len(table) + 1)), self.checks[self.checks["model"] == model],
                        self.attributes, self.item_attributes, self.browsing)


def audit_findings(result: AuditResult, thresholds: Thresholds | Mapping[str, float] | None = None) -> Findings:
    """The ranked findings of an audit (every model and audited attribute).

    Parameters
    ----------
    result : AuditResult
        An audit (``AuditResult.read(folder)`` or the service's result).
    thresholds : Thresholds or mapping, optional
        The limits of the checks; the same as the PDF's (default :class:`Thresholds`).

    Examples
    --------
    >>> gm = pd.DataFrame({"model": "m", "attribute": "g", "group": ["F", "M"], "metric": "ndcg",
    ...     "value": [.2, .3], "ci_low": np.nan, "ci_high": np.nan})
    >>> gaps = pd.DataFrame({"model": "m", "attribute": "g", "group": ["F", "M"], "reference": "rest",
    ...     "reference_group": "rest", "metric": "ndcg", "difference": [-.1, .1], "ci_low": [-.15, .05],
    ...     "ci_high": [-.05, .15]})
    >>> ie = pd.DataFrame(columns=["model", "user_attribute", "user_group", "item_attribute", "item_group",
    ...     "browsing", "exposure_share", "catalogue_share", "relevance_share"])
    >>> found = findings_from_tables(gm, gaps, ie, attributes=("g",))
    >>> found.table[["verdict", "group", "reference_group", "effect"]].values.tolist()
    [['attention', 'F', 'M', 'ratio 0.67 [0.50, 0.83]']]
    """
    return findings_from_tables(result.group_metrics, result.gaps, result.item_exposure,
                                attributes=tuple(result.attributes), thresholds=thresholds, k=result.config.k)


def findings_from_tables(group_metrics: pd.DataFrame, gaps: pd.DataFrame, item_exposure: pd.DataFrame, *,
                         attributes: tuple[str, ...],
                         thresholds: Thresholds | Mapping[str, float] | None = None, k: int = 10) -> Findings:
    """:func:`audit_findings` from the audit's three tables (``attributes``: the audited user attributes,
    ``k``: the audit's list length, for metric labels)."""
    if not isinstance(thresholds, Thresholds):
        thresholds = Thresholds.from_mapping(thresholds)
    checks = evaluate_thresholds(group_metrics, gaps, item_exposure, thresholds)
    browsing = sorted(set(checks.loc[checks["check"] == EXPOSURE_CHECK, "browsing"]))
    browsing = browsing[0] if browsing else ""
    shown = checks[(checks["check"] != EXPOSURE_CHECK) | (checks["browsing"] == browsing)]
    merged = _merge_mirrors(shown)
    merged["family"] = [_family(c, m) for c, m in zip(merged["check"], merged["metric"])]
    merged["excess"] = _excess(merged, thresholds)
    table = _collapse(merged, k)
    table["effect"] = [_effect(r) for r in table.itertuples()]
    table["affected"] = [_affected(r) for r in table.itertuples()]
    table["sentence"] = [_sentence(r, thresholds, k) for r in table.itertuples()]
    table = (table.assign(_severity=table["status"].map(SEVERITY))
             .sort_values(["_severity", "excess"], ascending=[True, False], kind="stable")
             .reset_index(drop=True))
    table["rank"] = np.arange(1, len(table) + 1)
    table = table.rename(columns={"status": "verdict"})[list(FINDING_COLUMNS)]
    item_attributes = tuple(dict.fromkeys(item_exposure["item_attribute"])) if len(item_exposure) else ()
    return Findings(table, checks, tuple(attributes), item_attributes, browsing)


def _family(check: str, metric: str) -> str:
    if check == RATIO_CHECK:
        return "accuracy"
    if check in (EXPOSURE_CHECK, CATALOGUE_CHECK):
        return "exposure"
    return _FAMILY_OF[METRICS[metric].family]


def _difference(checks: pd.DataFrame) -> np.ndarray:
    return (checks["value"] - checks["reference_value"]).to_numpy(dtype=float)


def _merge_mirrors(checks: pd.DataFrame) -> pd.DataFrame:
    """Merge two checks that say the same thing from both sides (differences summing to 0) into the one
    about the losing group (worse status, else the negative difference); ``reference_group`` names the other.

    >>> checks = pd.DataFrame({"model": "m", "check": "exposure share", "attribute": "provider",
    ...     "metric": "x", "browsing": "dcg", "group": ["indie", "studio"], "reference_group": "catalogue share",
    ...     "value": [.05, .95], "reference_value": [.3, .7], "status": "fail"})
    >>> _merge_mirrors(checks)[["group", "reference_group"]].values.tolist()
    [['indie', 'studio']]
    """
    checks = checks.reset_index(drop=True).assign(_difference=lambda f: _difference(f))
    keys = ["model", "check", "attribute", "metric", "browsing"]
    sizes = checks.groupby(keys, sort=False)["group"].transform("size")
    pairs = checks[sizes == 2]
    total = pairs.groupby(keys, sort=False)["_difference"].transform("sum").abs()
    scale = pairs.groupby(keys, sort=False)["_difference"].transform(lambda d: d.abs().max())
    mirrored = pairs[(total <= _MIRROR_TOLERANCE * scale) & (scale > 0)]
    if mirrored.empty:
        return checks.drop(columns="_difference")
    order = mirrored.assign(_severity=mirrored["status"].map(SEVERITY)).sort_values(
        ["_severity", "_difference"], kind="stable")
    other = order.groupby(keys, sort=False)["group"].transform("last")
    keep = order.index[order.groupby(keys, sort=False).cumcount() == 0]
    checks.loc[keep, "reference_group"] = other.loc[keep]
    drop = mirrored.index.difference(keep)
    return checks.drop(index=drop).drop(columns="_difference")


def _excess(checks: pd.DataFrame, t: Thresholds) -> np.ndarray:
    """How far each estimate lies from parity, in units of the distance from parity to its limit."""
    estimate = checks["estimate"].to_numpy(dtype=float)
    check, metric = checks["check"].to_numpy(), checks["metric"].to_numpy()
    coverage = (check == CATALOGUE_CHECK) & (metric == COVERAGE_METRIC)
    gini = (check == CATALOGUE_CHECK) & ~coverage
    out = np.select(
        [check == RATIO_CHECK, check == EXPOSURE_CHECK, check == RELATIVE_CHECK, gini, coverage],
        [(1 - estimate) / (1 - t.min_ratio), np.abs(estimate) / t.max_exposure_diff,
         np.abs(estimate) / t.max_relative_gap, estimate / t.max_gini, (1 - estimate) / (1 - t.min_coverage)],
        default=0.0)
    return np.nan_to_num(out, nan=0.0, posinf=1e9, neginf=-1e9)


def _collapse(checks: pd.DataFrame, k: int) -> pd.DataFrame:
    """One finding per model, family, check and group: the most severe row, the other non-passing
    metrics of the group named in ``also``."""
    checks = checks.assign(
        _severity=checks["status"].map(SEVERITY),
        _key=np.where(checks["check"].isin([RATIO_CHECK, RELATIVE_CHECK]), "", checks["metric"]))
    keys = ["model", "family", "check", "attribute", "group", "_key"]
    ordered = checks.sort_values(["_severity", "excess"], ascending=[True, False], kind="stable")
    first = ordered.groupby(keys, sort=False).cumcount() == 0
    label = {m: metric_label(m, k) for m in ordered["metric"].unique() if m in METRICS}
    words = ordered["metric"].map(label).fillna(ordered["metric"]) + " " + ordered["status"]
    rest = ordered[~first & (ordered["status"] != "pass")].assign(_word=words)
    also = rest.groupby(keys, sort=False)["_word"].agg(lambda w: "also " + ", ".join(w))
    lead = ordered[first].join(also, on=keys).rename(columns={"_word": "also"})
    lead["also"] = lead["also"].fillna("")
    return lead.drop(columns=["_severity", "_key"]).reset_index(drop=True)


def _reference_words(row) -> str:
    if row.reference_group in ("rest", ""):
        return "the rest of users"
    return f"{row.attribute} = {row.reference_group}"


def _affected(row) -> str:
    """Who the finding is about: a user group, an item group or the whole catalogue."""
    if row.check == CATALOGUE_CHECK:
        return "whole catalogue"
    if row.check == EXPOSURE_CHECK:
        return f"items: {row.attribute} = {row.group}"
    return f"users: {row.attribute} = {row.group}"


def _effect(row) -> str:
    """The effect size with its 95% CI, as the page and the PDF print it."""
    interval = f"[{row.ci_low:.2f}, {row.ci_high:.2f}]"
    if row.check == RATIO_CHECK:
        return f"ratio {row.estimate:.2f} {interval}"
    if row.check == RELATIVE_CHECK:
        return f"relative gap {row.estimate:+.2f} {interval}"
    if row.check == EXPOSURE_CHECK:
        return f"{100 * row.estimate:+.1f} points of exposure"
    if row.metric == COVERAGE_METRIC:
        return f"coverage {fmt(row.estimate)}"
    return f"Gini {fmt(row.estimate)} [{fmt(row.ci_low)}, {fmt(row.ci_high)}]"


def _sentence(row, t: Thresholds, k: int) -> str:
    """One plain sentence per finding (numbers from the check's row)."""
    if row.check == EXPOSURE_CHECK:
        mirror = "" if row.reference_group == "catalogue share" else f"; {row.attribute} = {row.reference_group} the reverse"
        return (f"Items with {row.attribute} = {row.group} get {row.value:.1%} of the exposure but are "
                f"{row.reference_value:.1%} of the catalogue ({100 * row.estimate:+.1f} points; the rule allows "
                f"+/-{100 * t.max_exposure_diff:g}){mirror}.")
    if row.check == CATALOGUE_CHECK and row.metric == COVERAGE_METRIC:
        return (f"{row.value:.1%} of the catalogue is recommended to anyone; the rule asks for at least "
                f"{t.min_coverage:.0%}.")
    if row.check == CATALOGUE_CHECK:
        return (f"Exposure concentration: Gini {fmt(row.value)} [{fmt(row.ci_low)}, {fmt(row.ci_high)}] "
                f"(0 = every item equally exposed, 1 = one item gets all); the rule allows at most {t.max_gini:g}.")
    label = metric_label(row.metric, k)
    change = row.value / row.reference_value - 1 if row.reference_value else 0.0
    side = "lower" if change < 0 else "higher"
    also = f" ({row.also})" if row.also else ""
    size = f"{abs(change):.0%} {side}" if np.isfinite(change) else side
    rule = (f"ratio {row.estimate:.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}]; the four-fifths rule asks at least "
            f"{t.min_ratio:g}" if row.check == RATIO_CHECK else
            f"relative gap {row.estimate:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}]; the rule allows "
            f"+/-{t.max_relative_gap:g}")
    return (f"{label} for {row.attribute} = {row.group} is {size} than for {_reference_words(row)}: "
            f"{fmt(row.value)} vs {fmt(row.reference_value)} ({rule}){also}.")
