"""Explanations: counterfactual attribute probes, SHAP drivers of group gaps, local SHAP explanations."""

from fairaudit.explain._audit import DEFAULT_PROBE_USERS, EXPLANATION_FILES, add_explanations_to_audit, explain_audit
from fairaudit.explain._display import DEFAULT_PROBE_METRIC, READABLE_COLUMNS, probe_sentences, readable_explanation
from fairaudit.explain._features import BEHAVIOUR_FEATURES, user_features
from fairaudit.explain._fairllm import (
    DEFAULT_FAIRLLM_USERS,
    FAIRLLM_COLUMNS,
    attribute_settings,
    fairllm_figure,
    fairllm_probe,
    fairllm_summary,
    fairllm_users,
    held_out_codes,
    sign_flip_p_values,
    summarise_fairllm,
)
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
    "DEFAULT_FAIRLLM_USERS",
    "FAIRLLM_COLUMNS",
    "attribute_settings",
    "fairllm_figure",
    "fairllm_probe",
    "fairllm_summary",
    "fairllm_users",
    "held_out_codes",
    "sign_flip_p_values",
    "summarise_fairllm",
    "BEHAVIOUR_FEATURES",
    "DEFAULT_PROBE_METRIC",
    "READABLE_COLUMNS",
    "probe_sentences",
    "readable_explanation",
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
