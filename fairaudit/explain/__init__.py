"""Explanations: counterfactual attribute probes, SHAP drivers of group gaps, local SHAP explanations."""

from fairaudit.explain._audit import DEFAULT_PROBE_USERS, EXPLANATION_FILES, add_explanations_to_audit, explain_audit
from fairaudit.explain._features import BEHAVIOUR_FEATURES, user_features
from fairaudit.explain._listsim import group_share, jaccard_at_k, prag_at_k, serp_at_k
from fairaudit.explain._local import (
    LOCAL_COLUMNS,
    explain_item_text,
    explain_recommendation,
    explain_score,
    top_item,
    warm_up,
)
from fairaudit.explain._probe import (
    PROBE_COLUMNS,
    exposure_metric,
    probe_attribute,
    probe_users,
    summarise_probe,
    top_k_codes,
)
from fairaudit.explain._surrogate import DECOMPOSITION_COLUMNS, DRIVER_COLUMNS, GapDrivers, explain_gaps

__all__ = [
    "BEHAVIOUR_FEATURES",
    "DECOMPOSITION_COLUMNS",
    "DRIVER_COLUMNS",
    "EXPLANATION_FILES",
    "GapDrivers",
    "LOCAL_COLUMNS",
    "PROBE_COLUMNS",
    "add_explanations_to_audit",
    "explain_audit",
    "DEFAULT_PROBE_USERS",
    "explain_gaps",
    "explain_item_text",
    "explain_recommendation",
    "explain_score",
    "exposure_metric",
    "group_share",
    "jaccard_at_k",
    "prag_at_k",
    "probe_attribute",
    "probe_users",
    "serp_at_k",
    "summarise_probe",
    "top_item",
    "top_k_codes",
    "user_features",
    "warm_up",
]
