"""The PDF's robustness section, drawn from the audit folder's ``robustness.csv`` alone (never recomputed)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fairaudit.metrics import MIN_GROUP_SIZE
from fairaudit.robustness import summarise


def _ci(value: float, low: float, high: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:+.4f} [{low:+.4f}, {high:+.4f}]"


def robustness_section(pdf: Any, robustness: pd.DataFrame, settings: dict | None) -> None:
    """Heading, what was attacked, and one row per attacked model: accuracy drop, worst group, target lift."""
    pdf.heading("Robustness to attacks")
    settings = settings or {}
    pdf.paragraph(
        f"Attack: {settings.get('attack', 'not recorded')}; strengths {settings.get('strengths', 'not recorded')}. "
        "Each attacked model is audited with the clean one on the same test users; changes are attacked minus "
        "clean with paired-bootstrap 95% CIs. Drop = clean - attacked NDCG (positive: accuracy lost). Shilling "
        "strengths are shares of fake users; representation-attack strengths are epsilon relative to the mean "
        "norm of the perturbed vectors, with Gaussian noise of the same norm as the baseline.", size=9,
    )  # fmt: skip
    summary = summarise(robustness, min_group_size=int(settings.get("min_group_size", MIN_GROUP_SIZE)))
    pdf.data_table(
        ("Model", "NDCG drop [95% CI]", "Worst group", "Its drop", "Target exposure lift", "Hit ratio"),
        [(r.model, _ci(r.drop, r.drop_ci_low, r.drop_ci_high), f"{r.worst_attribute}={r.worst_group}",
          "n/a" if pd.isna(r.worst_group_drop) else f"{r.worst_group_drop:+.4f}",
          _ci(r.target_exposure_lift, r.target_exposure_lift_ci_low, r.target_exposure_lift_ci_high),
          "n/a" if pd.isna(r.hit_ratio_clean) else f"{r.hit_ratio_clean:.3f} -> {r.hit_ratio_attacked:.3f}")
         for r in summary.itertuples()],
        widths=(24, 38, 26, 16, 44, 22), size=7,
    )  # fmt: skip
    found = summary.dropna(subset=["detector_recall"])
    if not found.empty:
        pdf.paragraph("Shilling-profile detector on the injected profiles (data-quality check): "
                      + "; ".join(f"{r.model} precision {r.detector_precision:.2f}, recall {r.detector_recall:.2f}"
                                  for r in found.itertuples()), size=9)  # fmt: skip
