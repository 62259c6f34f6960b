"""User profiles from text (issue 22): text profiles of users' own texts, and the audit of what they do.

Profiles are computed in the models layer (the LLM recommender reads them with ``use_texts=True``):
:func:`encode_profiles` pools each user's text embeddings (optionally recency-weighted) into one
vector, :class:`TextProfiles` holds them. The user-texts table is ``Dataset.texts``
(:mod:`fairaudit.data._texts`), the gender-marker word list ``fairaudit.data.GENDER_MARKER_PAIRS``.
See docs/profiles.md.
"""

from fairaudit.models._text_profiles import TextProfiles, encode_profiles, pool_profiles, recency_weights
from fairaudit.profiles._audit import (
    CHANCE,
    HAS_TEXTS,
    INTERACTIONS,
    PROFILE_ACCURACY_COLUMNS,
    PROFILE_AUDIT_STEPS,
    PROFILE_LEAKAGE_COLUMNS,
    TEXT_COUNTERFACTUAL_COLUMNS,
    TEXT_PROFILE,
    WITH_TEXTS,
    WITHOUT_TEXTS,
    accuracy_summary,
    counterfactual_summary,
    leakage_summary,
    leakage_vectors,
    profile_accuracy,
    profile_leakage,
    rewritten_texts,
    run_profile_audit,
    summarise_counterfactual,
    text_counterfactual_users,
    text_coverage,
    text_groups,
)
from fairaudit.profiles._rewrite import rewrite_texts, swap_map
from fairaudit.profiles._summary import profile_summaries, summary_prompts

__all__ = [
    "CHANCE",
    "HAS_TEXTS",
    "INTERACTIONS",
    "PROFILE_ACCURACY_COLUMNS",
    "PROFILE_AUDIT_STEPS",
    "PROFILE_LEAKAGE_COLUMNS",
    "TEXT_COUNTERFACTUAL_COLUMNS",
    "TEXT_PROFILE",
    "WITH_TEXTS",
    "WITHOUT_TEXTS",
    "accuracy_summary",
    "counterfactual_summary",
    "leakage_summary",
    "leakage_vectors",
    "profile_accuracy",
    "profile_leakage",
    "rewrite_texts",
    "rewritten_texts",
    "run_profile_audit",
    "summarise_counterfactual",
    "swap_map",
    "text_counterfactual_users",
    "text_coverage",
    "text_groups",
    "TextProfiles",
    "encode_profiles",
    "pool_profiles",
    "recency_weights",
    "profile_summaries",
    "summary_prompts",
]
