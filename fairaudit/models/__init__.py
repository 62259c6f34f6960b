"""Recommenders with one interface: fit, score, recommend, save, load.

Every kind registers itself when its module is imported here: the base models, the LLM
recommender (with its in-training fairness terms, ``_losses.py``) and the re-rankers that wrap
any fitted model (``_rerank.py``, greedy list builders in ``_greedy.py``). ``ExternalRecommender``
(``_external.py``) wraps a model trained elsewhere; it is not a registered kind (it is code).
"""

from fairaudit._choices import RERANK_KINDS
from fairaudit.models._base import (
    BAD_THREADS,
    ModelFolderError,
    Progress,
    ProgressCallback,
    Recommender,
    config_checksum,
    create_model,
    is_model_folder,
    load_model,
    model_kinds,
    register,
    resolve_device,
    software_versions,
    TrainingCancelled,
    available_devices,
    check_device,
    compute_threads,
    set_threads,
)
from fairaudit.models._external import FINGERPRINT_USERS, ExternalRecommender, ScoreFunction
from fairaudit.models._adversarial import (
    PERTURBATIONS,
    PGD_STEPS,
    SIDES,
    Perturbation,
    Side,
    Vectors,
    apr_loss,
    attacked_model,
    model_vectors,
    perturb_vectors,
    softmax_ranking_loss,
)
from fairaudit.models._dp import (
    DP_KIND_UNSUPPORTED,
    DP_UNSUPPORTED,
    DPSGD,
    default_delta,
    dp_enabled,
    epsilon_spent,
    privacy_record,
    privacy_summary,
    refuse_dp_kind,
)
from fairaudit.models._encoder import TextEncoder, item_text_embeddings, item_texts
from fairaudit.models._text_profiles import TextProfiles, encode_profiles, pool_profiles, recency_weights
from fairaudit.models._itemknn import ItemKNNRecommender
from fairaudit.models._llm import LLMRecommender
from fairaudit.models._generative import GenerativeRecommender, LanguageModel, TitleMatcher, get_language_model
from fairaudit.models._mf import MFRecommender
from fairaudit.models._greedy import greedy_kl_rerank, greedy_mmr_rerank, normalise_relevance
from fairaudit.models._losses import (
    ADVERSARY_OBJECTIVES,
    FAIRNESS_KINDS,
    AdversaryObjective,
    AttributeAdversary,
    FairnessKind,
    FairnessRegulariser,
    attribute_auc,
    attribute_leakage,
    attribute_recovery,
    attribute_scores,
    exposure_divergence,
    grad_reverse,
    group_difference,
    rank_auc,
    group_mean_gap,
)
from fairaudit.models._popularity import PopularityRecommender
from fairaudit.models._validation import EarlyStopping, validation_split
from fairaudit.models._tuning import TUNING_GRIDS, TuningResult, tune, tunable_kinds
from fairaudit.models._rerank import (
    CalibratedReranker,
    ExposureReranker,
    MMRReranker,
    Reranker,
    RerankKind,
)

# Imported lists register last, so the trained kinds keep their order in choices.
from fairaudit.models._imported import NOT_RESCORABLE, ImportedRecommender, NotRescorable

__all__ = [
    "BAD_THREADS",
    "PERTURBATIONS",
    "PGD_STEPS",
    "SIDES",
    "Perturbation",
    "Side",
    "Vectors",
    "apr_loss",
    "attacked_model",
    "model_vectors",
    "perturb_vectors",
    "softmax_ranking_loss",
    "NOT_RESCORABLE",
    "ImportedRecommender",
    "NotRescorable",
    "ADVERSARY_OBJECTIVES",
    "FAIRNESS_KINDS",
    "FINGERPRINT_USERS",
    "RERANK_KINDS",
    "AdversaryObjective",
    "AttributeAdversary",
    "CalibratedReranker",
    "ExposureReranker",
    "ExternalRecommender",
    "FairnessKind",
    "FairnessRegulariser",
    "MMRReranker",
    "RerankKind",
    "ScoreFunction",
    "Reranker",
    "attribute_auc",
    "attribute_leakage",
    "attribute_recovery",
    "attribute_scores",
    "exposure_divergence",
    "grad_reverse",
    "greedy_kl_rerank",
    "greedy_mmr_rerank",
    "group_difference",
    "rank_auc",
    "group_mean_gap",
    "normalise_relevance",
    "ItemKNNRecommender",
    "LLMRecommender",
    "GenerativeRecommender",
    "LanguageModel",
    "TitleMatcher",
    "get_language_model",
    "TextEncoder",
    "TextProfiles",
    "encode_profiles",
    "pool_profiles",
    "recency_weights",
    "item_text_embeddings",
    "item_texts",
    "MFRecommender",
    "PopularityRecommender",
    "TrainingCancelled",
    "ModelFolderError",
    "Progress",
    "ProgressCallback",
    "Recommender",
    "config_checksum",
    "create_model",
    "is_model_folder",
    "load_model",
    "model_kinds",
    "register",
    "available_devices",
    "check_device",
    "resolve_device",
    "software_versions",
    "compute_threads",
    "set_threads",
    "EarlyStopping",
    "validation_split",
    "DP_KIND_UNSUPPORTED",
    "DP_UNSUPPORTED",
    "DPSGD",
    "default_delta",
    "dp_enabled",
    "epsilon_spent",
    "privacy_record",
    "privacy_summary",
    "refuse_dp_kind",
    "TUNING_GRIDS",
    "TuningResult",
    "tune",
    "tunable_kinds",
]
