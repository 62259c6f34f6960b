"""The PDF's FaiRLLM section, drawn from the audit folder's ``fairllm.csv`` alone (never recomputed)."""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from fairaudit.explain import fairllm_figure, fairllm_summary

#: Generation-quality metrics shown per user group.
_GENERATION = ("hallucination_share", "duplicate_share")


def _ci(value: float, low: float, high: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def fairllm_section(pdf: Any, table: pd.DataFrame, chart: Callable[[Callable[[], Any]], None] | None = None) -> None:
    """Heading, protocol, one row per model and attribute (SNSR/SNSV, change beyond re-asking), generation quality.

    ``chart`` (the report's chart planner) receives the per-value Jaccard bar chart.
    """
    pdf.heading("LLM recommenders: the FaiRLLM probe")
    pdf.paragraph(
        "Each sampled user is recommended K items from a neutral prompt (no attribute stated), from one prompt per "
        "attribute value (and per combination of an intersection), and from the neutral prompt asked again with "
        "another seed (the decoding noise; none for greedy decoding). Jaccard@K against the neutral list is "
        "averaged over users per value; SNSR (max - min over values) and SNSV (their standard deviation) have "
        "bootstrap 95% CIs over users. 'Change vs re-ask' is the mean over users of (re-ask similarity - "
        "similarity of the attribute's lists), with a one-sided sign-flip permutation p-value: a small p means "
        "stating the attribute changes the list more than asking again does. FaiRLLM code conventions: SERP* and "
        "PRAG* are in fairllm.csv.", size=9,
    )  # fmt: skip
    summary = fairllm_summary(table)
    pdf.data_table(
        ("Model", "Attribute", "Jaccard SNSR [95% CI]", "SNSV", "Change vs re-ask", "p"),
        [(r.model, r.attribute, _ci(r.snsr, r.snsr_ci_low, r.snsr_ci_high),
          "n/a" if pd.isna(r.snsv) else f"{r.snsv:.3f}",
          "n/a" if pd.isna(r.change_vs_noise) else f"{r.change_vs_noise:+.3f}",
          "n/a" if pd.isna(r.p_value) else f"{r.p_value:.3f}") for r in summary.itertuples()],
        widths=(26, 30, 44, 18, 28, 14), size=7.5,
    )  # fmt: skip
    truth = table[(table["reference"] == "held_out") & (table["metric"] == "jaccard") & (table["group"] != "all")]
    if not truth.empty:
        pdf.paragraph("CFaiRLLM's view: Jaccard@K of each prompt's list with the user's held-out items "
                      "(the neutral prompt's row first).", size=9)  # fmt: skip
        pdf.data_table(("Model", "Attribute", "Stated value", "Jaccard@K [95% CI]", "Users"),
                       [(r.model, r.attribute, r.group, _ci(r.estimate, r.ci_low, r.ci_high), int(r.n_users))
                        for r in truth.itertuples()], widths=(26, 30, 30, 44, 16), size=7.5)  # fmt: skip
    generation = table[(table["reference"] == "generation") & table["metric"].isin(_GENERATION)]
    if not generation.empty:
        pdf.paragraph("Generated titles that match no catalogue item (hallucinations) and repeated titles, per "
                      "user group, from the neutral prompt.", size=9)  # fmt: skip
        pdf.data_table(("Model", "Attribute", "Group", "Metric", "Share [95% CI]", "Users"),
                       [(r.model, r.attribute, r.group, r.metric, _ci(r.estimate, r.ci_low, r.ci_high),
                         int(r.n_users)) for r in generation.itertuples()],
                       widths=(24, 26, 22, 32, 40, 14), size=7.5)  # fmt: skip
    if chart is not None:
        chart(lambda: fairllm_figure(table))
