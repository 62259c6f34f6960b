"""Audits over time on real logs: the same group metrics per time window, trend tests, exposure drift.

Scheme (rolling origin, docs/dynamics.md): the log's timestamps are cut into windows (calendar
months, ISO weeks starting on Monday, or ``N``-day windows from the first timestamp). For every window
but the first, a fresh model of each audited kind is trained on everything *before* the window and
audited (:func:`fairaudit.audit.run_audit`, the audit's own config) on the window's interactions of
users it has history for: what the model retrained at the start of that window would have served.
A trend test per gap fits a weighted least-squares line through the windows' gaps (weights = one over
each gap's bootstrap variance, from its CI; standard error inflated by the residual dispersion) and tests
the slope against zero (two-sided t test, Benjamini-Hochberg over all tested series). The exposure drift view compares each window's exposure
shares of the item groups with the first audited (reference) window.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats import t as student_t

from fairaudit._choices import N_DAYS_PERIOD, check_period
from fairaudit.audit import TABLES, AuditConfig, AuditResult, TableSchema, read_table, run_audit
from fairaudit.data import Dataset, Split, csv_bytes, replacing_folder
from fairaudit.metrics import benjamini_hochberg
from fairaudit.dynamics._simulate import fresh_model
from fairaudit.models import ImportedRecommender, Recommender, Reranker, create_model

#: Columns of the three optional audit tables this module adds (contract: fairaudit.audit.TABLES).
PERIOD_COLUMNS = TABLES["period_metrics"].columns
TREND_COLUMNS = TABLES["period_trends"].columns
DRIFT_VIEW_COLUMNS = TABLES["exposure_drift"].columns
#: Files of a period-audit folder (:func:`write_period_audit`): the three audit tables under their audit-folder
#: names and schemas, the windows' gap rows (``gaps.csv``'s schema plus ``period, start, end``), and a record.
PERIOD_TABLES: dict[str, TableSchema] = {
    "metrics": TABLES["period_metrics"],
    "trends": TABLES["period_trends"],
    "exposure": TABLES["exposure_drift"],
    "gaps": TableSchema("period_gaps", "period_gaps.csv", (*TABLES["gaps"].columns, "period", "start", "end"),
                        required=(*TABLES["gaps"].required_columns, "period", "start", "end"),
                        text=(*TABLES["gaps"].text, "period")),
}  # fmt: skip
PERIODS_FILE = "periods.json"

_NO_TIMESTAMPS = "the interactions have no 'timestamp' column; audits by period need one (seconds since 1970)"
_TOO_FEW = "the log spans {0} {1} window(s); an audit by period needs at least 2 (the first only trains)"
_NO_WINDOWS = "no window after the first has interactions of users with earlier history; use longer periods than {0!r}"
_NOT_PERIODS = "'{0}' is not a period-audit folder: it has no {1} (write one with write_period_audit)"
_NOTHING_TO_RETRAIN = "audits by period re-train the models per window; imported lists ({0}) cannot be re-trained"


def period_windows(timestamps: pd.Series, period: str) -> pd.DataFrame:
    """Windows ``period, start, end`` (seconds, end exclusive) covering ``timestamps``, in time order.

    >>> period_windows(pd.Series([0, 86_400 * 3, 86_400 * 9]), "7-days")["period"].tolist()
    ['1970-01-01', '1970-01-08']
    """
    check_period(period)
    times = pd.to_datetime(timestamps.astype("int64"), unit="s")
    if period in ("month", "week"):
        freq = "M" if period == "month" else "W-SUN"
        spans = times.dt.to_period(freq).drop_duplicates().sort_values()
        starts = spans.dt.start_time
        ends = (spans + 1).dt.start_time
        labels = spans.astype(str).str.split("/").str[0]
    else:
        days = int(N_DAYS_PERIOD.match(period).group(1))
        origin = times.min().normalize()
        index = np.unique(((times - origin).dt.days // days).to_numpy())
        starts = pd.Series(origin + pd.to_timedelta(index * days, unit="D"))
        ends = starts + pd.Timedelta(days=days)
        labels = starts.dt.strftime("%Y-%m-%d")
    seconds = lambda stamps: pd.Series(stamps).to_numpy(dtype="datetime64[s]").astype("int64")  # noqa: E731
    return pd.DataFrame(
        {"period": np.asarray(labels, dtype=object), "start": seconds(starts), "end": seconds(ends)}
    )


@dataclass
class PeriodAudit:
    """``metrics`` (period_metrics.csv), ``trends`` (period_trends.csv), ``exposure`` (exposure_drift.csv),
    plus ``gaps`` (the windows' gap rows, with ``period, start, end``) and ``skipped`` (model -> why it
    was not re-trained)."""

    metrics: pd.DataFrame
    gaps: pd.DataFrame
    trends: pd.DataFrame
    exposure: pd.DataFrame
    skipped: dict[str, str]

    def add_to(self, result: AuditResult) -> AuditResult:
        """A copy of the audit ``result`` holding the three tables (``period_metrics``, ...)."""
        return dataclasses.replace(result, period_metrics=self.metrics, period_trends=self.trends,
                                   exposure_drift=self.exposure)  # fmt: skip


def write_period_audit(periods: PeriodAudit, directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``periods`` to the folder ``directory`` atomically (files: :data:`PERIOD_TABLES`, ``periods.json``).

    The tables keep the audit folder's file names and schemas (``period_metrics.csv``,
    ``period_trends.csv``, ``exposure_drift.csv``); ``period_gaps.csv`` holds the windows' gap rows.
    An existing period-audit folder is replaced only with ``overwrite=True``. Example in
    :func:`read_period_audit`.
    """
    with replacing_folder(directory, overwrite=overwrite, is_ours=_is_period_folder, kind="period-audit folder") as tmp:
        for name, schema in PERIOD_TABLES.items():
            (tmp / schema.file).write_bytes(csv_bytes(getattr(periods, name)))
        (tmp / PERIODS_FILE).write_text(json.dumps({"skipped": periods.skipped}, indent=1))
    return Path(directory)


def read_period_audit(directory: str | Path) -> PeriodAudit:
    """The :class:`PeriodAudit` written by :func:`write_period_audit` (text columns stay text, floats exact).

    >>> import tempfile
    >>> frames = {name: pd.DataFrame(columns=list(s.columns)) for name, s in PERIOD_TABLES.items()}
    >>> folder = write_period_audit(PeriodAudit(**frames, skipped={"lists": "imported"}), Path(tempfile.mkdtemp()) / "p")
    >>> read_period_audit(folder).skipped
    {'lists': 'imported'}
    """
    directory = Path(directory)
    if not _is_period_folder(directory):
        raise FileNotFoundError(_NOT_PERIODS.format(directory, PERIODS_FILE))
    record = json.loads((directory / PERIODS_FILE).read_text(encoding="utf-8"))
    tables = {name: read_table(directory, schema) for name, schema in PERIOD_TABLES.items()}
    return PeriodAudit(**tables, skipped=dict(record.get("skipped", {})))


def _is_period_folder(directory: Path) -> bool:
    return (Path(directory) / PERIODS_FILE).is_file()


def add_periods_to_audit(
    audit_dir: str | Path,
    dataset: Dataset,
    models: Mapping[str, Recommender],
    *,
    period: str = "month",
    progress: Callable[[str], None] | None = None,
) -> PeriodAudit:
    """Audit ``models`` per ``period`` with the folder's own config, and add the tables to the folder."""
    result = AuditResult.read(audit_dir)
    periods = audit_by_period(dataset, models, result.config, period=period, progress=progress)
    periods.add_to(result).write(audit_dir, overwrite=True)
    return periods


def _refit(model: Recommender, dataset: Dataset, split: Split) -> Recommender:
    """A fresh model like ``model`` (a re-ranker with a fresh base) fitted on ``split``."""
    if isinstance(model, Reranker):
        params = {**model.get_params(), "base": fresh_model(model.base)}
        return create_model(model.kind, **params).fit(dataset, split)
    return fresh_model(model).fit(dataset, split)


def audit_by_period(
    dataset: Dataset,
    models: Mapping[str, Recommender],
    config: AuditConfig = AuditConfig(),
    *,
    period: str = "month",
    progress: Callable[[str], None] | None = None,
) -> PeriodAudit:
    """Rolling-origin audits of ``models`` (their kinds and settings, re-trained per window); see the module."""
    if "timestamp" not in dataset.interactions.columns:
        raise ValueError(_NO_TIMESTAMPS)
    say = progress or (lambda line: None)
    windows = period_windows(dataset.interactions["timestamp"], period)
    if len(windows) < 2:
        raise ValueError(_TOO_FEW.format(len(windows), period))
    skipped = {name: "imported lists cannot be re-trained per window" for name, m in models.items()
               if isinstance(m, ImportedRecommender)}  # fmt: skip
    trainable = {name: m for name, m in models.items() if name not in skipped}
    if not trainable:
        raise ValueError(_NOTHING_TO_RETRAIN.format(", ".join(skipped)))
    times = dataset.interactions["timestamp"].to_numpy()
    metrics, gaps, exposure = [], [], []
    for window in windows.iloc[1:].itertuples(index=False):
        before = dataset.interactions[times < window.start]
        inside = dataset.interactions[(times >= window.start) & (times < window.end)]
        test = inside[inside["user_id"].isin(before["user_id"])]
        if test.empty or before.empty:
            say(f"period {window.period}: no test users with history, skipped")
            continue
        split = Split(before, test, "period", config.seed, {"period": period, "start": int(window.start),
                                                             "end": int(window.end)})  # fmt: skip
        fitted = {name: _refit(model, dataset, split) for name, model in trainable.items()}
        result = run_audit(dataset, split, fitted, config)
        keys = {"period": window.period, "start": int(window.start), "end": int(window.end)}
        metrics.append(result.group_metrics.assign(**keys))
        gaps.append(result.gaps.assign(**keys))
        exposure.append(result.item_exposure.assign(**keys))
        say(f"period {window.period}: {test['user_id'].nunique()} users audited")
    if not metrics:
        raise ValueError(_NO_WINDOWS.format(period))
    metrics_frame = pd.concat(metrics, ignore_index=True)[list(PERIOD_COLUMNS)]
    gaps_frame = pd.concat(gaps, ignore_index=True)
    return PeriodAudit(
        metrics=metrics_frame,
        gaps=gaps_frame,
        trends=gap_trends(gaps_frame),
        exposure=exposure_drift(pd.concat(exposure, ignore_index=True), browsing=config.browsing[0]),
        skipped=skipped,
    )


def gap_trends(gaps: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Weighted least-squares trend of every gap series over the periods (see the module docstring).

    Weights are one over each window's bootstrap variance (from its CI). When the windows scatter
    around the line more than their CIs say (small groups, heterogeneous windows), the slope's standard
    error is inflated by the dispersion ``sqrt(chi2 / (n - 2))`` (the Birge ratio of meta-regression,
    never below 1), and the test uses Student's t with ``n - 2`` degrees of freedom. ``slope`` is the
    change of the gap per period; series with fewer than three periods with a CI get NaN.
    ``p_adjusted``: Benjamini-Hochberg over all series.

    >>> g = pd.DataFrame({"model": "m", "attribute": "gender", "group": "F", "reference": "rest",
    ...                   "metric": "ndcg", "start": range(6), "difference": [0.0, -0.1, -0.2, -0.3, -0.4, -0.5],
    ...                   "ci_low": -0.05 - np.arange(6) / 10, "ci_high": 0.05 - np.arange(6) / 10})
    >>> row = gap_trends(g).iloc[0]
    >>> round(float(row["slope"]), 3), bool(row["p_value"] < 0.001)
    (-0.1, True)
    """
    z = norm.ppf(0.5 + confidence / 2)
    keys = ["model", "attribute", "group", "reference", "metric"]
    rows = []
    for key, series in gaps.sort_values("start").groupby(keys, sort=True):
        se = (series["ci_high"] - series["ci_low"]).to_numpy(dtype=float) / (2 * z)
        y = series["difference"].to_numpy(dtype=float)
        ok = np.isfinite(y) & np.isfinite(se) & (se > 0)
        slope = slope_se = p_value = np.nan
        t_crit = np.nan
        if ok.sum() >= 3:
            x, y, w = np.arange(len(series))[ok].astype(float), y[ok], 1.0 / se[ok] ** 2
            xc = x - np.average(x, weights=w)
            slope = float(np.sum(w * xc * y) / np.sum(w * xc**2))
            intercept = np.average(y, weights=w) - slope * np.average(x, weights=w)
            dof = len(y) - 2
            dispersion = max(1.0, float(np.sum(w * (y - intercept - slope * x) ** 2)) / dof) if dof > 0 else 1.0
            slope_se = float(np.sqrt(dispersion / np.sum(w * xc**2)))
            t_crit = student_t.ppf(0.5 + confidence / 2, dof) if dof > 0 else np.inf
            p_value = float(2 * student_t.sf(abs(slope / slope_se), dof)) if dof > 0 else 1.0
        rows.append((*key, int(ok.sum()), y[0] if len(y) else np.nan, y[-1] if len(y) else np.nan, slope,
                     slope - t_crit * slope_se, slope + t_crit * slope_se, p_value))  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(TREND_COLUMNS[:-1]))
    frame["p_adjusted"] = benjamini_hochberg(frame["p_value"].to_numpy())
    return frame


def exposure_drift(item_exposure: pd.DataFrame, *, browsing: str = "dcg") -> pd.DataFrame:
    """Each window's exposure shares against the first (reference) window, per user group and item group.

    ``difference = exposure_share - reference_share``; ``total_variation`` = half the sum of the absolute
    differences over the item groups of that window (0 = same mix, 1 = disjoint).

    >>> e = pd.DataFrame({"model": "m", "period": ["a", "a", "b", "b"], "start": [0, 0, 1, 1],
    ...                   "user_attribute": "all", "user_group": "all", "item_attribute": "provider",
    ...                   "item_group": ["indie", "studio"] * 2, "browsing": "dcg",
    ...                   "exposure_share": [0.2, 0.8, 0.1, 0.9]})
    >>> exposure_drift(e)["total_variation"].round(3).tolist()
    [0.0, 0.0, 0.1, 0.1]
    """
    frame = item_exposure[item_exposure["browsing"] == browsing].copy()
    keys = ["model", "user_attribute", "user_group", "item_attribute", "item_group"]
    first = frame["start"] == frame.groupby(keys)["start"].transform("min")
    reference = frame[first].set_index(keys)["exposure_share"]
    frame["reference_share"] = reference.reindex(pd.MultiIndex.from_frame(frame[keys])).to_numpy()
    frame["difference"] = frame["exposure_share"] - frame["reference_share"]
    window = ["model", "period", "user_attribute", "user_group", "item_attribute"]
    frame["total_variation"] = frame.groupby(window)["difference"].transform(lambda d: 0.5 * d.abs().sum())
    return frame.sort_values(["model", "start", "user_attribute", "user_group", "item_attribute", "item_group"])[
        list(DRIFT_VIEW_COLUMNS)
    ].reset_index(drop=True)
