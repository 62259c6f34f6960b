"""The PDF's privacy section (epsilon spent, membership-inference AUC by group, DP cost by group) and the PDF
of a privately released group table — both drawn from what the folders hold (never recomputed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import plotly.graph_objects as go

from fairaudit.audit import ALL, AuditResult
from fairaudit.data import check_pdf_target, write_bytes_atomic
from fairaudit.models import privacy_summary
from fairaudit.plots import GAP_FLAG, MODEL_COLOURS, OVERALL, SMALL_GROUP, natural_order, safe_label
from fairaudit.privacy import read_release
from fairaudit.report._document import Paper, ReportPDF

#: Rows of ``mia.csv`` tabulated in the PDF (the overall rows and the groups of the plain attributes first).
MIA_TABLE_ROWS = 60
#: Said about the membership-inference attack wherever its AUC is shown.
MIA_NOTE = (
    "Membership inference: the model scores each audited user's training interactions (members) and held-out "
    "interactions (non-members); the attacker ranks them by a statistic of the score. AUC = probability that a "
    "member outranks a non-member: 0.5 = the scores tell nothing about what the model was trained on (under a "
    "random hold-out split), 1 = every training interaction is recognisable; below 0.5 leaks as well. 95% CIs "
    "resample users. Groups under the minimum size are marked n<30 (docs/privacy.md)."
)


def _ci(value: float, low: float, high: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def model_privacy(audit: AuditResult) -> dict[str, dict | None]:
    """Each audited model's DP record from ``audit.json`` (``None``: trained without DP).

    >>> model_privacy(AuditResult(None, None, pd.DataFrame({"model": ["m"]}), None, None, meta={}))
    {'m': None}
    """
    return {name: audit.model_meta(name).get("privacy") or None for name in audit.models}


def has_privacy(audit: AuditResult) -> bool:
    """Whether the audit holds anything for the privacy section (``mia.csv``, a DP cost table or a DP model)."""
    return (audit.mia is not None or getattr(audit, "privacy_cost", None) is not None
            or any(model_privacy(audit).values()))  # fmt: skip


def mia_chart(mia: pd.DataFrame, *, attribute: str, attack: str | None = None,
              min_group_size: int = 30) -> go.Figure:  # fmt: skip
    """Membership-inference AUC by group of one attribute, one bar colour per model, 95% CI bars, 0.5 dashed.

    >>> mia = pd.DataFrame({"model": "m", "attack": "rank", "attribute": "g", "group": ["a", "b"],
    ...     "auc": [.6, .5], "ci_low": [.55, .4], "ci_high": [.65, .6], "n_users": [50, 10],
    ...     "flagged": [False, True]})
    >>> mia_chart(mia, attribute="g").data[0].text
    ('', 'n<30')
    """
    rows = mia[mia["attribute"] == attribute]
    attack = attack or str(rows["attack"].iloc[0])
    rows = rows[rows["attack"] == attack]
    order = natural_order(rows["group"])
    fig = go.Figure()
    for index, name in enumerate(dict.fromkeys(rows["model"])):
        part = rows[rows["model"] == name].set_index("group").reindex([g for g in order if g in set(
            rows.loc[rows["model"] == name, "group"])]).reset_index()  # fmt: skip
        flagged = part["flagged"].astype(bool).to_numpy()
        colour = MODEL_COLOURS[index % len(MODEL_COLOURS)]
        fig.add_trace(go.Bar(
            name=safe_label(name), x=[safe_label(g) for g in part["group"]], y=part["auc"],
            error_y=dict(type="data", symmetric=False, array=part["ci_high"] - part["auc"],
                         arrayminus=part["auc"] - part["ci_low"], color=OVERALL, thickness=1.2),
            marker=dict(color=[SMALL_GROUP if f else colour for f in flagged], line=dict(color=colour, width=1.5)),
            text=[f"n<{min_group_size}" if f else "" for f in flagged], textposition="inside",
            customdata=part["n_users"], hovertemplate="%{x}: AUC %{y:.3f} (n=%{customdata})<extra></extra>",
        ))  # fmt: skip
    fig.add_hline(y=0.5, line_dash="dash", line_color=GAP_FLAG, line_width=1, annotation_text="0.5: no leak")
    low = float(min(0.45, rows["ci_low"].min())) if len(rows) else 0.45
    fig.update_layout(barmode="group", title=f"Membership-inference AUC by {safe_label(attribute)} ({attack} attack, "
                      "95% CI over users)", xaxis_title=safe_label(attribute), yaxis_title="AUC", height=420,
                      yaxis=dict(range=[low, 1.0]))  # fmt: skip
    return fig


def privacy_section(pdf: Any, audit: AuditResult, chart: Callable[..., None] | None = None) -> None:
    """Heading, each model's DP guarantee, MIA AUC by group (table and charts), DP cost by group when stored."""
    pdf.heading("Privacy")
    records = model_privacy(audit)
    pdf.paragraph("Differential privacy of each audited model (recorded when it was trained; the guarantee "
                  "covers a user's whole interaction history):", size=9)  # fmt: skip
    pdf.data_table(("Model", "Guarantee"), [(name, privacy_summary(r)) for name, r in records.items()],
                   widths=(40, 134), size=8)  # fmt: skip
    if audit.mia is not None:
        pdf.paragraph(MIA_NOTE, size=9)
        mia = audit.mia
        ordered = pd.concat([mia[mia["attribute"] == ALL], mia[(mia["attribute"] != ALL)
                                                               & ~mia["attribute"].str.contains("*", regex=False)],
                             mia[mia["attribute"].str.contains("*", regex=False)]])  # fmt: skip
        shown = ordered.head(MIA_TABLE_ROWS)
        pdf.data_table(
            ("Model", "Attack", "Attribute", "Group", "Users", "AUC [95% CI]", "Small"),
            [(r.model, r.attack, r.attribute, r.group, int(r.n_users), _ci(r.auc, r.ci_low, r.ci_high),
              "n<min" if r.flagged else "") for r in shown.itertuples()],
            widths=(32, 16, 32, 30, 16, 38, 12), size=7,
        )  # fmt: skip
        if len(ordered) > len(shown):
            pdf.paragraph(f"{len(ordered) - len(shown)} more rows (intersections) are in mia.csv.", style="I", size=8)
        if chart is not None:
            for attribute in [a for a in dict.fromkeys(mia["attribute"]) if a != ALL and "*" not in a][:3]:
                chart(lambda a=attribute: mia_chart(mia, attribute=a, min_group_size=audit.config.min_group_size))
    cost = getattr(audit, "privacy_cost", None)
    if cost is not None and len(cost):
        pdf.paragraph("Who pays for privacy: accuracy (and exposure) lost by each group when the model is trained "
                      "with DP, paired bootstrap 95% CIs; 'pays more' = the group's loss exceeds the rest's.", size=9)
        pdf.data_table(
            ("DP model", "Side", "Attribute", "Group", "Metric", "Cost [95% CI]", "Pays more"),
            [(r.model_dp, r.side, r.attribute, r.group, r.metric, _ci(r.cost, r.cost_ci_low, r.cost_ci_high),
              "yes" if bool(r.pays_more) else "") for r in cost.itertuples()],
            widths=(28, 12, 28, 28, 24, 40, 14), size=7,
        )  # fmt: skip


def build_release_report(
    release_dir: str | Path, out_pdf: str | Path, *, paper: Paper = "A4", date: dt.date | None = None
) -> Path:
    """PDF of a private release folder (:func:`fairaudit.privacy.export_private`), marked as such on every page.

    It prints the manifest (budget, mechanism, sensitivity, suppression) and the released table; the
    numbers are the noisy ones in the folder. Same folder, paper and ``date``: the same bytes.
    """
    check_pdf_target(out_pdf)
    release = read_release(release_dir)
    manifest, table = release.manifest, release.table
    date = date or dt.datetime.now(dt.timezone.utc).date()
    mark = f"DIFFERENTIALLY PRIVATE RELEASE (epsilon {manifest['epsilon']:g})"
    pdf = ReportPDF(paper=paper, running_title="Private release of audit group metrics",
                    footer_note=f"{mark} - {date.isoformat()}",
                    creation_date=dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc))  # fmt: skip
    pdf.add_page()
    pdf.heading("Group metrics released under differential privacy")
    pdf.paragraph(mark, style="B", size=11)
    pdf.paragraph(
        f"These numbers are NOT the audit's exact values. Every count and sum was perturbed with Laplace noise of "
        f"scale {manifest['laplace_scale']:g} (L1 sensitivity {manifest['sensitivity_l1']:g} of the released vector "
        f"when one user is added or removed, over {manifest['families']} model x attribute x metric families; "
        f"epsilon {manifest['epsilon']:g} in total, {manifest['epsilon_per_family']:.3g} per family, delta 0). "
        f"Values are noisy sums over noisy counts, clipped to [0, 1]; noise sd is the noise's own spread "
        f"(sampling uncertainty is not released). Groups whose noisy count is below {manifest['min_group_size']} "
        f"are suppressed ({manifest['n_suppressed']} rows). Source audit: {manifest.get('source_audit', 'n/a')}; "
        f"K = {manifest.get('k', 'n/a')}. The noise seed is withheld.", size=9,
    )  # fmt: skip
    pdf.bullets([f"Not released: {item}" for item in manifest.get("not_released", [])], size=8)
    pdf.data_table(
        ("Model", "Attribute", "Group", "Metric", "Value (noisy)", "Users (noisy)", "Noise sd"),
        [(r.model, r.attribute, r.group, r.metric, "suppressed" if r.suppressed else f"{r.value:.3f}",
          f"{r.n_users:.0f}", "" if r.suppressed else f"{r.noise_sd:.3f}") for r in table.itertuples()],
        widths=(28, 30, 30, 18, 26, 22, 20), size=7.5,
    )  # fmt: skip
    return write_bytes_atomic(out_pdf, bytes(pdf.output()))
