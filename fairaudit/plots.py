"""Plotly figures drawn from the tidy audit tables (used by the dashboard and, as PNG, by the PDF).

Every function is pure: a table in, a ``plotly.graph_objects.Figure`` out. Colours are named by
meaning (:data:`GAP_OK`, :data:`GAP_FLAG`, :data:`SMALL_GROUP`, ...), every figure shares
:data:`TEMPLATE`, and every figure has a title and axis labels naming the metric and K.

User-supplied text (group values, model names, features) is HTML-escaped before it reaches a figure,
because plotly renders a few HTML tags (``<b>``, ``<a href>``) in labels; a group called ``<b>x</b>``
is shown literally. Labels longer than :data:`MAX_LABEL` characters are shortened with an ellipsis.
"""

from __future__ import annotations

import html
import re
from typing import Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fairaudit.metrics import METRICS, MIN_GROUP_SIZE, metric_label, pareto_front

__all__ = [
    "GAP_OK", "GAP_FLAG", "SMALL_GROUP", "OVERALL", "EXPOSURE", "CATALOGUE", "RELEVANCE", "MODEL_COLOURS",
    "TEMPLATE", "MAX_LABEL", "DIVERSITY_METRICS", "metric_label", "safe_label",
    "group_metric_chart", "gap_forest_chart", "exposure_share_chart", "exposure_by_user_group_chart",
    "diversity_calibration_chart", "tradeoff_chart", "pareto_chart", "DOMINATED", "probe_summary", "probe_chart",
    "shap_bar_chart", "local_shap_chart", "natural_order", "DEFAULT_METRIC", "DEFAULT_ITEM_ATTRIBUTE", "GAP_NOMINAL",
    "SHAP_UP", "SHAP_DOWN", "gap_breakdown_chart", "default_index",
]

#: A gap whose BH-adjusted p-value is not below alpha (no evidence of a difference).
GAP_OK = "#4C78A8"
#: A gap significant after Benjamini-Hochberg correction.
GAP_FLAG = "#D62728"
#: A gap whose uncorrected 95% CI excludes zero but that is not significant after BH correction (open marker).
GAP_NOMINAL = "#E69F00"
#: Groups smaller than the audit's minimum group size (drawn hatched grey and labelled ``n<30``).
SMALL_GROUP = "#A0A0A0"
#: Reference lines for the overall value / zero difference.
OVERALL = "#333333"
#: Item-exposure bars: share of exposure, of the catalogue and of relevant items.
EXPOSURE = "#F58518"
CATALOGUE = "#72B7B2"
RELEVANCE = "#54A24B"
#: One colour per model (Okabe-Ito, colour-blind safe), in the audit's model order.
MODEL_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
#: Longest label drawn in a chart before it is shortened with "…".
MAX_LABEL = 40
#: Local SHAP bars: a feature that raises the score / lowers it (Okabe-Ito orange and blue).
SHAP_UP = "#D55E00"
SHAP_DOWN = "#0072B2"
#: The metric every metric picker starts on (the first headline metric of the registry: NDCG).
DEFAULT_METRIC = METRICS.names(headline=True)[0]
#: The item grouping exposure views start on: popularity tiers, the grouping popularity bias shows in.
DEFAULT_ITEM_ATTRIBUTE = "popularity_tier"
#: Ordered vocabularies of group values (derived tiers and activity levels, and common scales).
_ORDERED_WORDS = (("head", "mid", "tail"), ("light", "medium", "heavy"), ("low", "medium", "high"))
_LEADING_NUMBER = re.compile(r"^(under|below|<)?\s*(\d+(?:\.\d+)?)")

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font=dict(family="DejaVu Sans, Arial, sans-serif", size=13, color="#222222"),
        title=dict(x=0.01, xanchor="left", font=dict(size=16)),
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=dict(showgrid=True, gridcolor="#E5E5E5", zeroline=False, linecolor="#888888", automargin=True),
        yaxis=dict(showgrid=True, gridcolor="#E5E5E5", zeroline=False, linecolor="#888888", automargin=True),
        legend=dict(bgcolor="rgba(255,255,255,0.8)"),
        margin=dict(l=70, r=30, t=60, b=60),
        colorway=list(MODEL_COLOURS),
    )
)

#: Per-user metrics drawn by :func:`diversity_calibration_chart` by default: the registry's diversity,
#: novelty and calibration families (``ild_embedding, ild_genre, novelty, miscalibration``).
DIVERSITY_METRICS = METRICS.names(level="user", family=("diversity", "novelty", "calibration"))

_NO_ROWS = "No rows in {0} for {1}; check the model, attribute and metric names against the audit folder."
_MISSING_COLUMNS = "Table {0} lacks column(s) {1}; expected the audit-folder schema (docs/architecture.md)."


def safe_label(value: object, max_len: int = MAX_LABEL) -> str:
    """Escape a user-supplied value for a plotly label and shorten it to ``max_len`` characters.

    >>> safe_label("<b>x</b>")
    '&lt;b&gt;x&lt;/b&gt;'
    >>> safe_label("a" * 50, 10)
    'aaaaaaaaa…'
    """
    text = str(value)
    if len(text) > max_len:
        text = text[: max_len - 1] + "…"
    return html.escape(text, quote=False)


def default_index(choices: list[str] | tuple[str, ...], default: str) -> int:
    """Position of ``default`` among a picker's ``choices`` (0 when absent), so every picker of a metric or an
    item grouping starts on the same one (:data:`DEFAULT_METRIC`, :data:`DEFAULT_ITEM_ATTRIBUTE`).

    >>> default_index(["hit_rate", "ndcg"], DEFAULT_METRIC), default_index(["genre"], DEFAULT_ITEM_ATTRIBUTE)
    (1, 0)
    """
    return list(choices).index(default) if default in choices else 0


def _part_key(part: str) -> tuple[int, float, str]:
    text = part.strip().lower()
    if text in ("unknown", "all", ""):
        return (3, 0.0, text)
    for words in _ORDERED_WORDS:
        if text in words:
            return (0, float(words.index(text)), text)
    number = _LEADING_NUMBER.match(text)
    if number:
        return (1, float(number.group(2)) - (0.5 if number.group(1) else 0.0), text)
    return (2, 0.0, text)


def natural_order(values: Iterable[object]) -> list[str]:
    """Group values in reading order: tiers and activity levels in their order, numeric bands by their
    number ("Under 18" before "18-24", "55+" last), other names alphabetically, "unknown" last;
    intersections (``F*25-34``) part by part.

    >>> natural_order(["55+", "Under 18", "18-24", "unknown", "25-34"])
    ['Under 18', '18-24', '25-34', '55+', 'unknown']
    >>> natural_order(["tail", "head", "mid"]), natural_order(["M*18-24", "F*55+", "F*Under 18"])
    (['head', 'mid', 'tail'], ['F*Under 18', 'F*55+', 'M*18-24'])
    """
    unique = list(dict.fromkeys(str(v) for v in values))
    return sorted(unique, key=lambda v: tuple(_part_key(p) for p in v.split("*")))


def _in_natural_order(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """``rows`` sorted by :func:`natural_order` of ``column`` (stable within a value)."""
    rank = {v: i for i, v in enumerate(natural_order(rows[column]))}
    return rows.iloc[np.argsort(rows[column].astype(str).map(rank).to_numpy(), kind="stable")]


def _require(table: pd.DataFrame, name: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(_MISSING_COLUMNS.format(name, missing))


def _nonempty(rows: pd.DataFrame, name: str, what: str) -> pd.DataFrame:
    if rows.empty:
        raise ValueError(_NO_ROWS.format(name, what))
    return rows


def _finish(fig: go.Figure, title: str, x_title: str, y_title: str, *, height: int = 450) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=dict(text=safe_label(title, 120)), height=height, width=900)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


def _models(table: pd.DataFrame, model: str | None) -> list[str]:
    models = list(dict.fromkeys(table["model"])) if "model" in table else []
    return [model] if model is not None else models


def group_metric_chart(
    group_metrics: pd.DataFrame,
    *,
    metric: str,
    attribute: str,
    model: str | None = None,
    k: int = 10,
    show_flagged: bool = True,
    min_group_size: int = MIN_GROUP_SIZE,
) -> go.Figure:
    """Per-group value of one metric with bootstrap CI error bars, one bar colour per model.

    Groups flagged as small are drawn grey and hatched with an ``n<30`` label (or left out with
    ``show_flagged=False``); the overall value of each model is a dashed line.

    >>> gm = pd.DataFrame({"model": "m", "attribute": ["all", "g", "g"], "group": ["all", "F", "M"],
    ...     "metric": "ndcg", "value": [.3, .2, .4], "ci_low": [.25, .1, .3], "ci_high": [.35, .3, .5],
    ...     "n_users": [60, 40, 20], "flagged": [False, False, True]})
    >>> group_metric_chart(gm, metric="ndcg", attribute="g").data[0].text
    ('', 'n<30')
    """
    _require(group_metrics, "group_metrics.csv", ("model", "attribute", "group", "metric", "value", "ci_low",
                                                  "ci_high", "n_users", "flagged"))
    rows = group_metrics[(group_metrics["metric"] == metric) & (group_metrics["attribute"] == attribute)]
    if model is not None:
        rows = rows[rows["model"] == model]
    if not show_flagged:
        rows = rows[~rows["flagged"].astype(bool)]
    _nonempty(rows, "group_metrics.csv", f"metric={metric!r}, attribute={attribute!r}, model={model!r}")
    rows = _in_natural_order(rows, "group")
    fig = go.Figure()
    label = metric_label(metric, k)
    for index, name in enumerate(_models(rows, model)):
        part = rows[rows["model"] == name]
        flagged = part["flagged"].astype(bool).to_numpy()
        colour = MODEL_COLOURS[index % len(MODEL_COLOURS)]
        fig.add_trace(go.Bar(
            name=safe_label(name),
            x=[safe_label(g) for g in part["group"]],
            y=part["value"],
            error_y=dict(type="data", symmetric=False, array=part["ci_high"] - part["value"],
                         arrayminus=part["value"] - part["ci_low"], color=OVERALL, thickness=1.2),
            marker=dict(color=[SMALL_GROUP if f else colour for f in flagged],
                        pattern=dict(shape=["/" if f else "" for f in flagged], fgcolor="#FFFFFF"),
                        line=dict(color=colour, width=1.5)),
            # At the foot of the bar, clear of the error bar at its top.
            text=[f"n<{min_group_size}" if f else "" for f in flagged],
            textposition="inside", textangle=0, insidetextanchor="start", textfont=dict(color=OVERALL),
            customdata=part["n_users"],
            hovertemplate="%{x}: %{y:.4f} (n=%{customdata})<extra>" + safe_label(name) + "</extra>",
        ))
        overall = group_metrics[(group_metrics["model"] == name) & (group_metrics["attribute"] == "all")
                                & (group_metrics["metric"] == metric)]
        if not overall.empty:
            value = float(overall["value"].iloc[0])
            fig.add_hline(y=value, line_dash="dash", line_color=colour, line_width=1,
                          annotation_text=f"all users{' (' + safe_label(name, 20) + ')' if model is None else ''}: "
                                          f"{value:.3f}",
                          annotation_position="top right", annotation_font=dict(size=11, color=colour))
    fig.update_layout(barmode="group")
    return _finish(fig, f"{label} by {attribute} (95% bootstrap CI; dashed: all users; grey hatched: "
                        f"n<{min_group_size}, not tested)", safe_label(attribute), label)


def gap_forest_chart(
    gaps: pd.DataFrame,
    *,
    metric: str,
    model: str,
    reference: str = "rest",
    alpha: float = 0.05,
    k: int = 10,
) -> go.Figure:
    """Forest plot of group-minus-reference differences with their 95% bootstrap CIs (uncorrected).

    Markers follow the interval drawn and the corrected test: :data:`GAP_FLAG` (filled) when the
    BH-adjusted p-value is below ``alpha``; :data:`GAP_NOMINAL` (open) when the drawn, uncorrected CI
    excludes 0 but the gap is not significant after correction; :data:`GAP_OK` when the CI includes 0.
    Groups are in natural order within each attribute; a legend names the three markers.

    >>> gaps = pd.DataFrame({"model": "m", "attribute": "g", "group": ["F", "M"], "reference": "rest",
    ...     "metric": "ndcg", "difference": [-.1, .1], "ratio": [.7, 1.4], "ci_low": [-.2, 0.],
    ...     "ci_high": [0., .2], "p_value": [.01, .01], "p_adjusted": [.02, .6]})
    >>> gap_forest_chart(gaps, metric="ndcg", model="m").data[0].marker.color
    ('#D62728', '#4C78A8')
    """
    _require(gaps, "gaps.csv", ("model", "attribute", "group", "reference", "metric", "difference", "ci_low",
                                "ci_high", "p_adjusted"))
    rows = gaps[(gaps["metric"] == metric) & (gaps["model"] == model) & (gaps["reference"] == reference)]
    _nonempty(rows, "gaps.csv", f"metric={metric!r}, model={model!r}, reference={reference!r}")
    order = {a: i for i, a in enumerate(dict.fromkeys(rows["attribute"]))}
    rows = pd.concat([_in_natural_order(part, "group") for _, part in
                      sorted(rows.groupby("attribute", sort=False), key=lambda item: order[item[0]])])
    significant = (rows["p_adjusted"] < alpha).to_numpy()
    nominal = ~significant & ((rows["ci_low"] > 0) | (rows["ci_high"] < 0)).to_numpy()
    kinds = [(f"BH-adjusted p < {alpha:g}", GAP_FLAG, "diamond"),
             ("CI excludes 0, not significant after BH correction", GAP_NOMINAL, "diamond-open"),
             ("CI includes 0", GAP_OK, "diamond")]
    kind = np.where(significant, 0, np.where(nominal, 1, 2))
    labels = [f"{safe_label(a, 20)} = {safe_label(g)}" for a, g in zip(rows["attribute"], rows["group"])]
    fig = go.Figure(go.Scatter(
        x=rows["difference"], y=labels, mode="markers",
        marker=dict(color=[kinds[i][1] for i in kind], size=10, symbol=[kinds[i][2] for i in kind],
                    line=dict(width=2, color=[kinds[i][1] for i in kind])),
        error_x=dict(type="data", symmetric=False, array=rows["ci_high"] - rows["difference"],
                     arrayminus=rows["difference"] - rows["ci_low"], color=OVERALL, thickness=1.2),
        customdata=rows["p_adjusted"],
        hovertemplate="%{y}: %{x:.4f} (BH p=%{customdata:.3g})<extra></extra>",
        showlegend=False,
    ))
    for name, colour, symbol in kinds:  # legend entries only
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker=dict(color=colour, symbol=symbol, size=10, line=dict(width=2, color=colour))))
    fig.add_vline(x=0, line_color=OVERALL, line_width=1, annotation_text="no gap", annotation_position="top",
                  annotation_font=dict(size=11))
    fig.update_yaxes(autorange="reversed")
    label = metric_label(metric, k)
    height = max(340, 120 + 26 * len(rows))
    fig = _finish(fig, f"{label} gap vs {reference} — {model}",
                   f"{label}: group − {reference}, 95% bootstrap CI (uncorrected)", "Group", height=height + 50)
    return fig.update_layout(legend=dict(orientation="h", yref="container", yanchor="bottom", y=0.0, xanchor="left",
                                         x=0), margin=dict(b=110))


def _exposure_rows(item_exposure: pd.DataFrame, **equal: object) -> pd.DataFrame:
    _require(item_exposure, "item_exposure.csv", ("model", "user_attribute", "user_group", "item_attribute",
                                                  "item_group", "browsing", "exposure_share", "catalogue_share",
                                                  "relevance_share"))
    mask = np.ones(len(item_exposure), dtype=bool)
    for column, value in equal.items():
        if value is not None:
            mask &= (item_exposure[column] == value).to_numpy()
    return _nonempty(item_exposure[mask], "item_exposure.csv", ", ".join(f"{c}={v!r}" for c, v in equal.items()))


def _browsing(table: pd.DataFrame, browsing: str | None) -> str:
    return browsing if browsing is not None else sorted(table["browsing"].unique())[0]


def exposure_share_chart(
    item_exposure: pd.DataFrame,
    *,
    item_attribute: str,
    model: str,
    browsing: str | None = None,
    k: int = 10,
) -> go.Figure:
    """Exposure share of each item group next to its catalogue share and relevance share (all users).

    >>> ie = pd.DataFrame({"model": "m", "user_attribute": "all", "user_group": "all",
    ...     "item_attribute": "tier", "item_group": ["head", "tail"], "browsing": "dcg",
    ...     "exposure_share": [.8, .2], "catalogue_share": [.2, .8], "relevance_share": [.5, .5]})
    >>> [t.name for t in exposure_share_chart(ie, item_attribute="tier", model="m").data]
    ['Exposure share', 'Catalogue share', 'Relevance share']
    """
    browsing = _browsing(item_exposure, browsing)
    rows = _exposure_rows(item_exposure, model=model, user_attribute="all", item_attribute=item_attribute,
                          browsing=browsing)
    groups = [safe_label(g) for g in rows["item_group"]]
    fig = go.Figure()
    for column, name, colour in (("exposure_share", "Exposure share", EXPOSURE),
                                 ("catalogue_share", "Catalogue share", CATALOGUE),
                                 ("relevance_share", "Relevance share", RELEVANCE)):
        fig.add_trace(go.Bar(name=name, x=groups, y=rows[column], marker_color=colour,
                             hovertemplate="%{x}: %{y:.3f}<extra>" + name + "</extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(tickformat=".0%")
    return _finish(fig, f"Exposure@{k} of {item_attribute} groups vs catalogue and relevance — {model} ({browsing})",
                   safe_label(item_attribute), f"Share of exposure@{k} ({browsing} browsing model)")


def exposure_by_user_group_chart(
    item_exposure: pd.DataFrame,
    *,
    user_attribute: str,
    item_attribute: str,
    model: str,
    browsing: str | None = None,
    k: int = 10,
) -> go.Figure:
    """Heatmap of each item group's exposure share within each user group's lists, coloured by its
    deviation from the item group's catalogue share (diverging scale centred on 0, spanning the largest
    deviation, so small differences stay visible); cells read "share (deviation)".

    >>> ie = pd.DataFrame({"model": "m", "user_attribute": "g", "user_group": ["F", "F", "M", "M"],
    ...     "item_attribute": "tier", "item_group": ["head", "tail"] * 2, "browsing": "dcg",
    ...     "exposure_share": [.8, .2, .6, .4], "catalogue_share": .5, "relevance_share": .5})
    >>> heat = exposure_by_user_group_chart(ie, user_attribute="g", item_attribute="tier", model="m").data[0]
    >>> heat.z.round(2).tolist(), heat.zmid
    ([[0.3, -0.3], [0.1, -0.1]], 0)
    """
    browsing = _browsing(item_exposure, browsing)
    rows = _exposure_rows(item_exposure, model=model, user_attribute=user_attribute, item_attribute=item_attribute,
                          browsing=browsing)
    rows = rows.assign(deviation=rows["exposure_share"] - rows["catalogue_share"])
    users, items = natural_order(rows["user_group"]), natural_order(rows["item_group"])
    share = rows.pivot_table(index="user_group", columns="item_group", values="exposure_share").reindex(
        index=users, columns=items)
    deviation = rows.pivot_table(index="user_group", columns="item_group", values="deviation").reindex(
        index=users, columns=items)
    span = max(float(np.nanmax(np.abs(deviation.to_numpy()))), 0.01)
    text = [[f"{a:.1%} ({100 * d:+.1f})" for a, d in zip(a_row, d_row)]
            for a_row, d_row in zip(share.to_numpy(), deviation.to_numpy())]
    fig = go.Figure(go.Heatmap(
        z=deviation.to_numpy(), x=[safe_label(c) for c in items], y=[safe_label(i) for i in users],
        customdata=share.to_numpy(), text=text, texttemplate="%{text}", colorscale="RdBu_r", zmid=0,
        zmin=-span, zmax=span, colorbar=dict(title="Share −<br>catalogue", tickformat="+.0%"),
        hovertemplate="%{y} → %{x}: share %{customdata:.3f}, %{z:+.3f} vs the catalogue share<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")  # first group on top
    height = max(300, 120 + 40 * len(users))
    return _finish(fig, f"Exposure@{k} of {item_attribute} by {user_attribute} — {model} ({browsing}); "
                        "colour: points above/below the catalogue share",
                   safe_label(item_attribute), safe_label(user_attribute), height=height)


def diversity_calibration_chart(
    group_metrics: pd.DataFrame,
    *,
    attribute: str,
    model: str | None = None,
    metrics: tuple[str, ...] = DIVERSITY_METRICS,
    k: int = 10,
) -> go.Figure:
    """Diversity, novelty and miscalibration by group: one panel per metric, CI bars, small groups grey.

    >>> gm = pd.DataFrame({"model": "m", "attribute": "g", "group": ["F", "M"], "metric": "novelty",
    ...     "value": [7., 8.], "ci_low": [6., 7.], "ci_high": [8., 9.], "n_users": [40, 40], "flagged": False})
    >>> len(diversity_calibration_chart(gm, attribute="g", metrics=("novelty",)).data)
    1
    """
    _require(group_metrics, "group_metrics.csv", ("model", "attribute", "group", "metric", "value", "ci_low",
                                                  "ci_high", "flagged"))
    rows = group_metrics[(group_metrics["attribute"] == attribute) & group_metrics["metric"].isin(metrics)]
    if model is not None:
        rows = rows[rows["model"] == model]
    _nonempty(rows, "group_metrics.csv", f"attribute={attribute!r}, metrics={list(metrics)}, model={model!r}")
    rows = _in_natural_order(rows, "group")
    present = [m for m in metrics if (rows["metric"] == m).any()]
    n_cols = min(2, len(present))
    n_rows = -(-len(present) // n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[metric_label(m, k) for m in present],
                        vertical_spacing=0.18)
    for index, name in enumerate(_models(rows, model)):
        colour = MODEL_COLOURS[index % len(MODEL_COLOURS)]
        for position, metric in enumerate(present):
            part = rows[(rows["model"] == name) & (rows["metric"] == metric)]
            flagged = part["flagged"].astype(bool).to_numpy()
            fig.add_trace(go.Scatter(
                x=[safe_label(g, 20) for g in part["group"]], y=part["value"], mode="markers", name=safe_label(name),
                legendgroup=str(index), showlegend=position == 0,
                marker=dict(color=[SMALL_GROUP if f else colour for f in flagged], size=9),
                error_y=dict(type="data", symmetric=False, array=part["ci_high"] - part["value"],
                             arrayminus=part["value"] - part["ci_low"], color=colour, thickness=1.2),
            ), row=position // n_cols + 1, col=position % n_cols + 1)
    fig.update_layout(scattermode="group")
    fig = _finish(fig, f"Diversity and calibration@{k} by {attribute} (95% CI; grey: small group)",
                  "", "", height=300 * n_rows + 80)
    fig.update_xaxes(title_text=safe_label(attribute, 20))
    for position, metric in enumerate(present):  # each axis spans its groups' intervals, not 0..max
        part = rows[rows["metric"] == metric]
        low, high = float(np.nanmin(part["ci_low"])), float(np.nanmax(part["ci_high"]))
        pad = max(high - low, 1e-9) * 0.15
        fig.update_yaxes(range=[low - pad, high + pad], row=position // n_cols + 1, col=position % n_cols + 1)
    return fig


def tradeoff_chart(
    group_metrics: pd.DataFrame,
    gaps: pd.DataFrame,
    *,
    metric: str,
    attribute: str,
    reference: str = "rest",
    k: int = 10,
) -> go.Figure:
    """Accuracy-vs-gap trade-off: each model's overall metric against its largest absolute group gap.

    The gap is the largest ``|difference|`` among the attribute's tested groups, with its CI (both
    bounds in absolute value, sorted). Down-right is better for higher-is-better metrics.

    >>> gm = pd.DataFrame({"model": ["a", "b"], "attribute": "all", "group": "all", "metric": "ndcg",
    ...     "value": [.3, .28], "ci_low": [.28, .26], "ci_high": [.32, .3], "n_users": 80, "flagged": False})
    >>> gaps = pd.DataFrame({"model": ["a", "b"], "attribute": "g", "group": "F", "reference": "rest",
    ...     "metric": "ndcg", "difference": [-.05, -.01], "ci_low": [-.08, -.03], "ci_high": [-.02, .01]})
    >>> tradeoff_chart(gm, gaps, metric="ndcg", attribute="g").data[0].y
    (0.05,)
    """
    _require(gaps, "gaps.csv", ("model", "attribute", "group", "reference", "metric", "difference", "ci_low", "ci_high"))
    overall = group_metrics[(group_metrics["attribute"] == "all") & (group_metrics["metric"] == metric)]
    rows = gaps[(gaps["attribute"] == attribute) & (gaps["metric"] == metric) & (gaps["reference"] == reference)]
    _nonempty(rows, "gaps.csv", f"attribute={attribute!r}, metric={metric!r}, reference={reference!r}")
    largest = rows.loc[rows["difference"].abs().groupby(rows["model"], sort=False).idxmax()]
    fig = go.Figure()
    label = metric_label(metric, k)
    for index, (_, gap) in enumerate(largest.iterrows()):
        point = overall[overall["model"] == gap["model"]]
        if point.empty:
            continue
        bounds = np.sort(np.abs([gap["ci_low"], gap["ci_high"]]))
        if gap["ci_low"] <= 0 <= gap["ci_high"]:
            bounds[0] = 0.0
        x = float(point["value"].iloc[0])
        y = abs(float(gap["difference"]))
        fig.add_trace(go.Scatter(
            x=[x], y=[y], mode="markers+text", name=safe_label(gap["model"]), text=[safe_label(gap["model"], 20)],
            textposition="top center", marker=dict(size=12, color=MODEL_COLOURS[index % len(MODEL_COLOURS)]),
            error_x=dict(type="data", symmetric=False, array=[float(point["ci_high"].iloc[0]) - x],
                         arrayminus=[x - float(point["ci_low"].iloc[0])]),
            error_y=dict(type="data", symmetric=False, array=[bounds[1] - y], arrayminus=[y - bounds[0]]),
        ))
    return _finish(fig, f"Accuracy vs {attribute} gap trade-off ({label})",
                   f"Overall {label} (95% CI)", f"Largest |{label} gap| by {attribute} vs {reference} (95% CI)")


#: Sweep points that another point dominates (drawn grey, without the front's line).
DOMINATED = "#A0A0A0"
_SWEEP_COLUMNS = ("mitigation", "strength", "accuracy_metric", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
                  "target_metric", "target_goal", "target", "target_ci_low", "target_ci_high")
_GOAL_WORDS = {"zero": "closer to 0 is better", "low": "lower is better", "high": "higher is better"}


def pareto_chart(sweep: pd.DataFrame, *, k: int = 10) -> go.Figure:
    """A mitigation sweep's accuracy against its target metric, the Pareto front highlighted.

    One marker per strength (labelled ``λ=<strength>``, ``ε=<epsilon>`` for a privacy sweep) with 95% CI bars on both axes; the points
    no other point beats on both accuracy and the target (:func:`fairaudit.metrics.pareto_front`
    with the sweep's ``target_goal``) are coloured and joined, the dominated ones are grey.

    >>> sweep = pd.DataFrame({"mitigation": "rerank_mmr", "strength": [0.0, 0.5, 1.0], "accuracy_metric": "ndcg",
    ...     "accuracy": [.30, .25, .29], "accuracy_ci_low": [.28, .23, .27], "accuracy_ci_high": [.32, .27, .31],
    ...     "target_metric": "ild_genre", "target_goal": "high", "target": [.5, .6, .7],
    ...     "target_ci_low": [.45, .55, .65], "target_ci_high": [.55, .65, .75]})
    >>> [(t.name, t.text) for t in pareto_chart(sweep).data]
    [('Pareto front', ('λ=0', 'λ=1')), ('dominated', ('λ=0.5',))]
    """

    _require(sweep, "sweep.csv", _SWEEP_COLUMNS)
    _nonempty(sweep, "sweep.csv", "any strength")
    first = sweep.iloc[0]
    goal = str(first["target_goal"])
    front = pareto_front(sweep, "accuracy", "target", gap_goal=goal)
    symbol = "ε" if first["mitigation"] == "privacy" else "λ"  # a privacy sweep's strength is the target epsilon
    fig = go.Figure()
    for name, rows, colour in (("Pareto front", sweep[front].sort_values("target"), MODEL_COLOURS[0]),
                               ("dominated", sweep[~front], DOMINATED)):
        if rows.empty:
            continue
        fig.add_trace(go.Scatter(
            x=rows["target"], y=rows["accuracy"], name=name, mode="lines+markers+text" if colour != DOMINATED
            else "markers+text", text=[f"{symbol}={s:g}" for s in rows["strength"]], textposition="top center",
            marker=dict(size=11, color=colour), line=dict(color=colour, dash="dot"),
            error_x=dict(type="data", symmetric=False, array=rows["target_ci_high"] - rows["target"],
                         arrayminus=rows["target"] - rows["target_ci_low"], color=colour),
            error_y=dict(type="data", symmetric=False, array=rows["accuracy_ci_high"] - rows["accuracy"],
                         arrayminus=rows["accuracy"] - rows["accuracy_ci_low"], color=colour),
        ))
    label, target = metric_label(str(first["accuracy_metric"]), k), safe_label(first["target_metric"])
    return _finish(fig, f"{safe_label(first['mitigation'])} sweep: {label} vs {target}",
                   f"{target} ({_GOAL_WORDS.get(goal, goal)}; 95% CI)", f"Overall {label} (95% CI)")


def _first(table: pd.DataFrame, column: str, value: str | None) -> pd.DataFrame:
    """Rows of ``table`` where ``column == value`` (default: its first value); all rows without the column."""
    if column not in table.columns:
        return table
    value = value if value is not None else str(table[column].iloc[0])
    return table[table[column] == value]


def probe_summary(probes: pd.DataFrame) -> pd.DataFrame:
    """Probe rows in the long ``attribute, value, metric, estimate, ci_low, ci_high`` schema.

    A ``probes.csv`` from ``fairaudit.explain`` (``original_value``, ``counterfactual_value``) is
    reduced to its pooled rows: every user with a known other value, re-scored as if they held
    ``value = counterfactual_value``; the per-original-value rows and the SNSR/SNSV spread rows
    (``original_value = counterfactual_value = "all"``) are left out.

    >>> raw = pd.DataFrame({"attribute": "gender", "original_value": ["F", "all", "all"],
    ...     "counterfactual_value": ["M", "M", "all"], "metric": ["jaccard", "jaccard", "jaccard_snsr"],
    ...     "estimate": [.7, .8, .1], "ci_low": [.6, .7, .0], "ci_high": [.8, .9, .2]})
    >>> probe_summary(raw)[["value", "metric", "estimate"]].values.tolist()
    [['M', 'jaccard', 0.8]]
    """
    if "value" in probes.columns:
        return probes
    _require(probes, "probes.csv", ("attribute", "original_value", "counterfactual_value", "metric"))
    pooled = probes[(probes["original_value"] == "all") & (probes["counterfactual_value"] != "all")]
    return pooled.assign(value=pooled["counterfactual_value"])


def probe_chart(probes: pd.DataFrame, *, metric: str | None = None, model: str | None = None,
                k: int = 10) -> go.Figure:
    """Counterfactual probe summary: estimate with CI per attribute value (see :func:`probe_summary`).

    ``probes`` has columns ``attribute, value, metric, estimate, ci_low, ci_high`` (or the
    ``original_value``/``counterfactual_value`` form of ``probes.csv``); ``metric`` and ``model``
    (when the table has a ``model`` column) default to the first in the table.

    >>> pr = pd.DataFrame({"attribute": "gender", "value": ["F", "M"], "metric": "jaccard",
    ...     "estimate": [.8, .9], "ci_low": [.7, .85], "ci_high": [.9, .95]})
    >>> probe_chart(pr).layout.xaxis.title.text
    'jaccard@10 with the list for the original profile (95% CI)'
    """
    rows = probe_summary(probes)
    _require(rows, "probes.csv", ("attribute", "value", "metric", "estimate", "ci_low", "ci_high"))
    rows = _first(_nonempty(rows, "probes.csv", "pooled probe rows"), "model", model)
    metric = metric if metric is not None else str(rows["metric"].iloc[0])
    rows = _nonempty(rows[rows["metric"] == metric], "probes.csv", f"metric={metric!r}, model={model!r}")
    label = metric_label(metric, k)
    fig = go.Figure()
    for index, (attribute, part) in enumerate(rows.groupby("attribute", sort=False)):
        fig.add_trace(go.Scatter(
            x=part["estimate"], y=[f"{safe_label(attribute, 20)} = {safe_label(v)}" for v in part["value"]],
            mode="markers", name=safe_label(attribute), marker=dict(size=9, color=MODEL_COLOURS[index % len(MODEL_COLOURS)]),
            error_x=dict(type="data", symmetric=False, array=part["ci_high"] - part["estimate"],
                         arrayminus=part["estimate"] - part["ci_low"]),
        ))
    fig.update_yaxes(autorange="reversed")
    where = f" — {rows['model'].iloc[0]}" if "model" in rows.columns else ""
    return _finish(fig, f"Counterfactual attribute probes: {label}{where}",
                   f"{label} with the list for the original profile (95% CI)", "Attribute value set",
                   height=max(300, 80 + 28 * len(rows)))


def shap_bar_chart(drivers: pd.DataFrame, *, top: int = 15, model: str | None = None, metric: str | None = None,
                   target: str | None = None, k: int = 10) -> go.Figure:
    """Horizontal bars of mean |SHAP| per feature (the largest ``top``), largest first: how much each
    feature moves the surrogate's prediction, whatever the direction (unsigned magnitude).

    ``model`` and ``metric`` select rows when ``shap_drivers.csv`` has those columns (default: the
    first); ``target`` names what is explained in the title (default: the metric, else "gap").

    >>> d = pd.DataFrame({"feature": ["a", "b"], "mean_abs_shap": [.1, .3]})
    >>> shap_bar_chart(d).data[0].y
    ('b', 'a')
    """
    _require(drivers, "shap_drivers.csv", ("feature", "mean_abs_shap"))
    rows = _first(_first(_nonempty(drivers, "shap_drivers.csv", "any feature"), "model", model), "metric", metric)
    rows = rows.nlargest(top, "mean_abs_shap")
    if target is None:
        target = f"per-user {metric_label(str(rows['metric'].iloc[0]), k)}" if "metric" in rows.columns else "the gap"
    where = f" — {rows['model'].iloc[0]}" if "model" in rows.columns else ""
    fig = go.Figure(go.Bar(x=rows["mean_abs_shap"], y=[safe_label(f, 60) for f in rows["feature"]],
                           orientation="h", marker_color=GAP_OK, hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _finish(fig, f"Drivers of {target}: mean |SHAP value| (top {len(rows)}){where}",
                   "Mean |SHAP value| (size of the effect, either direction)", "Feature",
                   height=max(300, 80 + 26 * len(rows)))


def local_shap_chart(explanation: pd.DataFrame, *, title: str = "Why this score") -> go.Figure:
    """Signed SHAP bars of one score: features that raise it (:data:`SHAP_UP`) or lower it
    (:data:`SHAP_DOWN`), largest magnitude at the top, labels in full up to 60 characters.

    ``explanation`` has ``label`` and ``shap_value`` columns (e.g.
    :func:`fairaudit.explain.readable_explanation`); rows are drawn sorted by ``|shap_value|``, a row of
    ``kind == "other"`` (the folded rest) last.

    >>> e = pd.DataFrame({"label": ["history: A", "word: comedy", "profile: gender = F"],
    ...                   "shap_value": [0.02, -0.3, 0.1]})
    >>> bar = local_shap_chart(e).data[0]
    >>> list(bar.y), bar.marker.color
    (['word: comedy', 'profile: gender = F', 'history: A'], ('#0072B2', '#D55E00', '#D55E00'))
    """
    _require(explanation, "the explanation", ("label", "shap_value"))
    rows = _nonempty(explanation, "the explanation", "any feature")
    folded = (rows["kind"] == "other").to_numpy() if "kind" in rows.columns else np.zeros(len(rows), dtype=bool)
    rows = rows.iloc[np.lexsort((-rows["shap_value"].abs().to_numpy(), folded))]
    values = rows["shap_value"].to_numpy(dtype=float)
    low, high = min(0.0, float(values.min())), max(0.0, float(values.max()))
    pad = 0.18 * max(high - low, 1e-9)  # room for the value labels outside the bars
    fig = go.Figure(go.Bar(
        x=values, y=[safe_label(label, 60) for label in rows["label"]], orientation="h",
        marker_color=[SHAP_UP if v >= 0 else SHAP_DOWN for v in values],
        text=[f"{v:+.3f}" for v in values], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:+.4f}<extra></extra>",
    ))
    fig.add_vline(x=0, line_color=OVERALL, line_width=1)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(range=[low - (pad if low < 0 else 0), high + (pad if high > 0 else 0)])
    return _finish(fig, f"{title}: SHAP value of each feature (orange raises the score, blue lowers it)",
                   "SHAP value (change in the score)", "Feature", height=max(300, 90 + 26 * len(rows)))


#: Colours of the parts of a gap breakdown, by the ``role`` of ``gap_decomposition.csv``.
_ROLE_COLOURS = {"own attribute": "#D55E00", "other attribute": "#E69F00", "behaviour": "#0072B2"}


def gap_breakdown_chart(decomposition: pd.DataFrame, *, attribute: str, model: str | None = None,
                        k: int = 10) -> go.Figure:
    """What carries each group's gap vs the rest: one stacked horizontal bar per group, summing the SHAP
    contributions of the attribute itself, of the other attributes and of behaviour (``role``), with the
    observed gap as a black mark; groups in natural order.

    >>> d = pd.DataFrame({"metric": "ndcg", "attribute": "g", "group": ["M", "M", "F", "F"], "reference": "rest",
    ...     "feature": ["g", "activity"] * 2, "role": ["own attribute", "behaviour"] * 2,
    ...     "contribution": [.02, .01, -.02, -.01], "observed_gap": [.035, .035, -.035, -.035]})
    >>> fig = gap_breakdown_chart(d, attribute="g")
    >>> [(t.name, list(t.y), list(t.x)) for t in fig.data][:2]
    [('own attribute', ['F', 'M'], [-0.02, 0.02]), ('behaviour', ['F', 'M'], [-0.01, 0.01])]
    """
    _require(decomposition, "gap_decomposition.csv", ("metric", "attribute", "group", "role", "contribution",
                                                      "observed_gap"))
    rows = _first(decomposition, "model", model)
    rows = _nonempty(rows[rows["attribute"] == attribute], "gap_decomposition.csv", f"attribute={attribute!r}")
    groups = natural_order(rows["group"])
    parts = rows.pivot_table(index="group", columns="role", values="contribution", aggfunc="sum").reindex(groups)
    fig = go.Figure()
    for index, role in enumerate(dict.fromkeys(rows["role"])):
        fig.add_trace(go.Bar(
            x=parts[role].fillna(0.0).tolist(), y=[safe_label(g) for g in groups], orientation="h",
            name=safe_label(role), marker_color=_ROLE_COLOURS.get(role, MODEL_COLOURS[index % len(MODEL_COLOURS)]),
            hovertemplate="%{y}: %{x:+.4f}<extra>" + safe_label(role) + "</extra>"))
    observed = rows.groupby("group")["observed_gap"].first().reindex(groups)
    fig.add_trace(go.Scatter(x=observed.tolist(), y=[safe_label(g) for g in groups], mode="markers",
                             name="observed gap", marker=dict(symbol="line-ns", size=22, color=OVERALL,
                                                              line=dict(width=3, color=OVERALL)),
                             hovertemplate="%{y}: observed %{x:+.4f}<extra></extra>"))
    fig.add_vline(x=0, line_color=OVERALL, line_width=1)
    fig.update_layout(barmode="relative")
    fig.update_yaxes(autorange="reversed")
    label = metric_label(str(rows["metric"].iloc[0]), k)
    return _finish(fig, f"What carries each {attribute} group's {label} gap vs the rest (surrogate SHAP)",
                   f"Gap in {label} (group − rest) carried by each part", safe_label(attribute),
                   height=max(300, 120 + 34 * len(groups)))
