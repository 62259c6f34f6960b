"""Mitigation: fairness-aware training terms, re-rankers that wrap any model, and trade-off sweeps."""

from fairaudit.mitigation._greedy import greedy_kl_rerank, greedy_mmr_rerank, normalise_relevance
from fairaudit.mitigation._losses import (
    ADVERSARY_OBJECTIVES,
    FAIRNESS_KINDS,
    AdversaryObjective,
    AttributeAdversary,
    FairnessKind,
    FairnessRegulariser,
    attribute_leakage,
    attribute_recovery,
    exposure_divergence,
    grad_reverse,
    group_difference,
    group_mean_gap,
)
from fairaudit.mitigation._rerank import (
    RERANK_KINDS,
    CalibratedReranker,
    ExposureReranker,
    MMRReranker,
    Reranker,
    RerankKind,
)

#: Sweep names, imported on first use: the sweep needs ``fairaudit.audit``, which imports
#: ``fairaudit.models``, which imports this package to register the re-ranker kinds.
_SWEEP_NAMES = (
    "DEFAULT_STRENGTHS",
    "MITIGATIONS",
    "SWEEP_COLUMNS",
    "TRAINING_MITIGATIONS",
    "Mitigation",
    "build_point",
    "pareto_front",
    "point_name",
    "run_sweep",
)


def __getattr__(name: str):
    if name in _SWEEP_NAMES:
        from fairaudit.mitigation import _sweep

        return getattr(_sweep, name)
    raise AttributeError(f"module 'fairaudit.mitigation' has no attribute '{name}'")


__all__ = [
    *_SWEEP_NAMES,
    "ADVERSARY_OBJECTIVES",
    "FAIRNESS_KINDS",
    "RERANK_KINDS",
    "AdversaryObjective",
    "AttributeAdversary",
    "CalibratedReranker",
    "ExposureReranker",
    "FairnessKind",
    "FairnessRegulariser",
    "MMRReranker",
    "RerankKind",
    "Reranker",
    "attribute_leakage",
    "attribute_recovery",
    "exposure_divergence",
    "grad_reverse",
    "greedy_kl_rerank",
    "greedy_mmr_rerank",
    "group_difference",
    "group_mean_gap",
    "normalise_relevance",
]
