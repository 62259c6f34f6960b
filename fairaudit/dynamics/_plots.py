"""Plotly figures of the dynamics tables: quantities over rounds (or periods) with CI bands.

Pure functions, a table in and a ``plotly.graph_objects.Figure`` out, like :mod:`fairaudit.plots`
(a sibling on the same layer, so the shared look is repeated here in two constants rather than imported).
User-supplied text is HTML-escaped before it reaches a figure.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

#: The figures' plotly template and palette (as fairaudit.plots).
TEMPLATE = "plotly_white"
PALETTE = ("#4C78A8", "#D62728", "#54A24B", "#E69F00", "#B279A2", "#72B7B2", "#9D755D", "#BAB0AC")
_NO_ROWS = "no rows for metric '{0}' and attribute '{1}'; metrics present: {2}"


def _band(fig: go.Figure, x, low, high, colour: str, name: str) -> None:
    fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1], y=list(high) + list(low)[::-1], fill="toself",
                             fillcolor=colour, opacity=0.2, line={"width": 0}, hoverinfo="skip",
                             showlegend=False, name=f"{name} CI"))  # fmt: skip


def _lines(rows: pd.DataFrame, x: str, title: str, x_title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    for i, (group, part) in enumerate(rows.groupby("group", sort=True)):
        colour, name = PALETTE[i % len(PALETTE)], html.escape(str(group))
        part = part.sort_values(x)
        _band(fig, part[x], part["ci_low"], part["ci_high"], colour, name)
        fig.add_trace(go.Scatter(x=part[x], y=part["value"], mode="lines+markers", name=name,
                                 line={"color": colour}))  # fmt: skip
    fig.update_layout(template=TEMPLATE, title=html.escape(title), xaxis_title=x_title, yaxis_title=y_title, height=420)
    return fig


def rounds_chart(rounds: pd.DataFrame, metric: str, *, attribute: str = "all") -> go.Figure:
    """``metric`` per round for each group of ``attribute`` (pooled over seeds) with its 95% CI band.

    >>> r = pd.DataFrame({"round": [0, 1], "seed": "all", "attribute": "all", "group": "all",
    ...                   "metric": "gini_exposure", "value": [0.5, 0.6], "ci_low": [0.4, 0.5], "ci_high": [0.6, 0.7]})
    >>> len(rounds_chart(r, "gini_exposure").data)
    2
    """
    rows = rounds[(rounds["seed"] == "all") & (rounds["metric"] == metric) & (rounds["attribute"] == attribute)]
    if rows.empty:
        raise ValueError(_NO_ROWS.format(metric, attribute, sorted(rounds["metric"].unique())))
    where = "" if attribute == "all" else f" by {attribute}"
    fig = _lines(rows, "round", f"{metric}{where} over retraining rounds (95% CI over users and seeds)",
                 "round", metric)  # fmt: skip
    return fig.update_xaxes(dtick=1)


def period_chart(period_metrics: pd.DataFrame, metric: str, *, attribute: str = "all", model: str | None = None) -> go.Figure:
    """``metric`` per time window for each group of ``attribute`` with its 95% bootstrap CI band."""
    rows = period_metrics[(period_metrics["metric"] == metric) & (period_metrics["attribute"] == attribute)]
    if model is not None:
        rows = rows[rows["model"] == model]
    if rows.empty:
        raise ValueError(_NO_ROWS.format(metric, attribute, sorted(period_metrics["metric"].unique())))
    where = "" if attribute == "all" else f" by {attribute}"
    return _lines(rows, "period", f"{metric}{where} per period (95% CI)", "period", metric)


def exposure_drift_chart(exposure: pd.DataFrame, *, item_attribute: str, model: str | None = None) -> go.Figure:
    """Exposure share of each item group per period (all users), the reference period's share dotted."""
    rows = exposure[(exposure["item_attribute"] == item_attribute) & (exposure["user_attribute"] == "all")]
    if model is not None:
        rows = rows[rows["model"] == model]
    fig = go.Figure()
    for i, (group, part) in enumerate(rows.groupby("item_group", sort=True)):
        colour, name = PALETTE[i % len(PALETTE)], html.escape(str(group))
        fig.add_trace(go.Scatter(x=part["period"], y=part["exposure_share"], mode="lines+markers", name=name,
                                 line={"color": colour}))  # fmt: skip
        fig.add_trace(go.Scatter(x=part["period"], y=part["reference_share"], mode="lines", showlegend=False,
                                 line={"color": colour, "dash": "dot"}, name=f"{name} (reference)"))  # fmt: skip
    fig.update_layout(template=TEMPLATE, title=f"Exposure share by {html.escape(item_attribute)} per period "
                      "(dotted: reference period)", xaxis_title="period", yaxis_title="exposure share", height=420)  # fmt: skip
    return fig
