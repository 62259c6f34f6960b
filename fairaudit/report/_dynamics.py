"""PDF sections of fairaudit.dynamics: audits over time (in the audit PDF) and the simulation report.

Both draw only what the folders hold (``period_*.csv``/``exposure_drift.csv`` of an audit folder;
``rounds.csv``, ``drift.csv`` and ``simulation.json`` of a simulation folder); nothing is recomputed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from fairaudit.audit import AuditResult
from fairaudit.data import check_pdf_target, write_bytes_atomic
from fairaudit.dynamics import period_chart, read_simulation, rounds_chart
from fairaudit.report._charts import ChartRenderer
from fairaudit.report._document import ReportPDF

#: Rows of the trend and drift tables printed (smallest p-values / largest changes first).
TOP_ROWS = 12


def _ci(value: float, low: float, high: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:+.4f} [{low:+.4f}, {high:+.4f}]"


def periods_section(pdf: Any, audit: AuditResult, chart: Callable[..., None]) -> None:
    """Audits over time: the scheme, the gap trends with the smallest p-values, the exposure drift."""
    pdf.heading("Fairness over time")
    metrics, trends, drift = audit.period_metrics, audit.period_trends, audit.exposure_drift
    periods = metrics["period"].unique()
    pdf.paragraph(
        f"{len(periods)} time windows ({periods[0]} to {periods[-1]}). For each window a fresh model of each "
        "audited kind was trained on everything before the window and audited on the window's interactions "
        "(rolling origin). A gap's trend is the weighted least-squares slope of its per-window values (weights: "
        "one over each window's bootstrap variance), tested against zero and Benjamini-Hochberg adjusted over "
        "all series.", size=9,
    )  # fmt: skip
    if trends is not None and not trends.empty:
        top = trends.dropna(subset=["p_value"]).sort_values(["p_adjusted", "p_value"]).head(TOP_ROWS)
        pdf.data_table(
            ("Model", "Gap", "Metric", "First", "Last", "Slope per window [95% CI]", "p (BH)"),
            [(r.model, f"{r.attribute}={r.group} vs {r.reference}", r.metric, f"{r.first:+.4f}", f"{r.last:+.4f}",
              _ci(r.slope, r.slope_ci_low, r.slope_ci_high), f"{r.p_adjusted:.3g}") for r in top.itertuples()],
            widths=(22, 40, 24, 16, 16, 40, 16), size=7,
        )  # fmt: skip
    attribute = next((a for a in metrics["attribute"].unique() if a != "all"), "all")
    chart(lambda: period_chart(metrics, "ndcg", attribute=attribute),
          f"NDCG per window by {attribute}, 95% bootstrap CIs.")  # fmt: skip
    if drift is not None and not drift.empty:
        overall = drift[drift["user_attribute"] == "all"]
        shifts = overall.loc[overall.groupby(["model", "item_attribute"])["total_variation"].idxmax()]
        pdf.paragraph("Largest shift of the exposure mix against the first window (total variation distance, "
                      "0 = same mix): " + "; ".join(f"{r.model}, {r.item_attribute}: {r.total_variation:.3f} in "
                                                    f"{r.period}" for r in shifts.itertuples()) + ".", size=9)  # fmt: skip


def build_simulation_report(
    simulation_dir: str | Path, out_pdf: str | Path, *, title: str | None = None, date: dt.date | None = None,
    charts: bool = True,
) -> Path:  # fmt: skip
    """Write the PDF of a simulation folder: settings, the change of every tracked quantity, charts over rounds."""
    check_pdf_target(out_pdf)
    result = read_simulation(simulation_dir)
    settings, meta = result.settings, result.meta
    date = date or dt.datetime.now(dt.timezone.utc).date()
    title = title or "Feedback-loop simulation"
    pdf = ReportPDF(paper="A4", running_title=title, footer_note=f"Simulation {meta['model']['name']} - {date}",
                    creation_date=dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc))  # fmt: skip
    pdf.add_page()
    pdf.heading(title)
    pdf.paragraph(
        f"Model {meta['model']['name']} on {meta['data']['name']} ({meta['data']['n_users']} users, "
        f"{meta['data']['n_items']} items), {settings.rounds} retraining rounds ({settings.retrain}), "
        f"{settings.seeds} simulations. Clicks: {settings.choice} click model, no-click rate {settings.no_click}, "
        f"popularity bias {settings.popularity_bias}, consumption {settings.consumption}. True relevance: "
        f"{settings.truth_kind} fitted on all interactions. CIs: two-stage bootstrap over simulations and users "
        "(docs/dynamics.md).", size=9,
    )  # fmt: skip
    final = result.drift[(result.drift["round"] == settings.rounds) & (result.drift["attribute"] == "all")]
    gaps = result.drift[(result.drift["round"] == settings.rounds) & result.drift["metric"].str.startswith("gap:")]
    rows = [(r.metric if r.attribute == "all" else f"{r.metric} {r.attribute}={r.group}", f"{r.reference_value:.4f}",
             f"{r.value:.4f}", _ci(r.change, r.ci_low, r.ci_high), "yes" if r.significant else "no")
            for r in pd.concat([final, gaps]).itertuples()]  # fmt: skip
    pdf.heading(f"Change by round {settings.rounds}", level=1)
    pdf.data_table(("Quantity", "Round 0", f"Round {settings.rounds}", "Change [95% CI]", "Significant"), rows,
                   widths=(64, 22, 22, 46, 20), size=7)  # fmt: skip
    figures = [rounds_chart(result.rounds, "gini_exposure")]
    shares = [m for m in result.rounds["metric"].unique() if m.startswith("exposure_share:")]
    figures += [rounds_chart(result.rounds, shares[0])] if shares else []
    figures += [rounds_chart(result.rounds, "gap:ndcg_true", attribute=a) for a in settings.attributes]
    pdf.heading("Over rounds", level=1)
    with ChartRenderer(figures, enabled=charts) as renderer:
        for index in range(len(figures)):
            data = renderer.png(index)
            if data is None:
                pdf.paragraph(f"Chart not included: {renderer.error}.", style="I", size=8)
                break
            pdf.png(data)
    return write_bytes_atomic(out_pdf, bytes(pdf.output()))
