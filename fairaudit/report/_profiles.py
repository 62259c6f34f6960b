"""The PDF's "Text profiles" section, drawn from the audit folder's profile tables alone (never recomputed)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fairaudit.audit import INTERSECTION_SEP, AuditResult
from fairaudit.profiles import accuracy_summary, counterfactual_summary, leakage_summary

#: Slices of the who-gains table, in this order (user attributes follow).
_FIRST_SLICES = ("all", "activity", "has_texts")


def _ci(value: float, low: float, high: float, signed: bool = False) -> str:
    if pd.isna(value):
        return "n/a"
    form = "+.4f" if signed else ".3f"
    return f"{value:{form}} [{low:{form}}, {high:{form}}]"


def profiles_section(pdf: Any, audit: AuditResult) -> None:
    """Heading, coverage, who gains accuracy from texts, attribute leakage, and the text counterfactual."""
    pdf.heading("Text profiles")
    meta = audit.meta.get("profiles") or {}
    coverage = meta.get("coverage") or {}
    pdf.paragraph(
        f"The recommender reads each user's own texts (reviews, comments, messages) as a profile vector: "
        f"{coverage.get('n_users_with_texts', 'n/a')} users wrote {coverage.get('n_texts', 'n/a')} texts "
        f"({100 * float(coverage.get('share_users_with_texts', 0)):.0f}% of users). The model with text profiles "
        "('with_texts') is audited with the same model without them ('without_texts') on the same test users; "
        "no text is stored in the audit folder.", size=9,
    )  # fmt: skip
    if audit.profile_accuracy is not None:
        pdf.paragraph("Who gains: NDCG with minus without texts, paired-bootstrap 95% CIs over the same users "
                      "(* the CI excludes 0; intersections of attributes in profile_accuracy.csv).", size=9)
        rows = accuracy_summary(audit.profile_accuracy)
        rows = rows[~rows["attribute"].str.contains(INTERSECTION_SEP, regex=False)]  # intersections: in the CSV
        order = {name: i for i, name in enumerate(_FIRST_SLICES)}
        rows = rows.sort_values("attribute", key=lambda s: s.map(lambda a: order.get(a, len(order))), kind="stable")
        pdf.data_table(
            ("Slice", "Group", "Users", "Without", "With", "Difference [95% CI]"),
            [(r.attribute, r.group, int(r.n_users), f"{r.without:.4f}", f"{r.with_:.4f}",
              _ci(r.difference, r.ci_low, r.ci_high, signed=True) + (" *" if r.significant else ""))
             for r in rows.rename(columns={"with": "with_"}).itertuples()],
            widths=(28, 34, 16, 22, 22, 48), size=7,
        )  # fmt: skip
    if audit.profile_leakage is not None:
        pdf.paragraph(
            "Attribute leakage: how well a logistic regression that never saw a user recovers their attribute from "
            "a representation (out-of-fold), as accuracy against the majority-class rate and as AUC against 0.5, "
            "with bootstrap 95% CIs over users with texts. text_profile = the pooled text embeddings the model "
            "reads; interactions = the user vector of the model without texts; with_texts = the full user vector "
            "of the model with texts. 'Leaks' = the AUC's CI lies above 0.5.", size=9,
        )  # fmt: skip
        rows = leakage_summary(audit.profile_leakage)
        pdf.data_table(
            ("Attribute", "Representation", "Accuracy [95% CI]", "Chance", "AUC [95% CI]", "Leaks"),
            [(r.attribute, r.representation, _ci(r.accuracy, r.accuracy_ci_low, r.accuracy_ci_high),
              f"{r.chance:.3f}", _ci(r.auc, r.auc_ci_low, r.auc_ci_high), "yes" if r.leaks else "no")
             for r in rows.itertuples()],
            widths=(24, 30, 40, 16, 40, 14), size=7,
        )  # fmt: skip
    if audit.text_counterfactual is not None:
        pdf.paragraph(
            "Text counterfactual: every gender marker in a user's texts (pronouns, gendered nouns, names of the "
            "documented list fairaudit.data.GENDER_MARKER_PAIRS) swapped for its counterpart, the profile re-encoded "
            "and the top-K compared with the original list. Jaccard@K 1 = the same items; 'Changed' = share of "
            "users whose list changed; 'Marked' = share of users with a marker. SERP*, PRAG*, exposure changes "
            "and intersections of attributes are in text_counterfactual.csv.", size=9,
        )  # fmt: skip
        rows = counterfactual_summary(audit.text_counterfactual)
        rows = rows[(rows["attribute"] != "activity") & ~rows["attribute"].str.contains(INTERSECTION_SEP, regex=False)]
        pdf.data_table(
            ("Attribute", "Group", "Users", "Jaccard@K [95% CI]", "Changed", "Marked"),
            [(r.attribute, r.group, int(r.n_users), _ci(r.jaccard, r.jaccard_ci_low, r.jaccard_ci_high),
              f"{r.changed:.3f}", f"{r.rewritten:.3f}") for r in rows.itertuples()],
            widths=(28, 36, 16, 46, 22, 22), size=7,
        )  # fmt: skip
    for note in meta.get("notes") or []:
        pdf.paragraph(f"Note: {note}", size=8)
