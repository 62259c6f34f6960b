"""Recommenders with one interface: fit, score, recommend, save, load."""

from fairaudit.models._base import (
    ModelFolderError,
    Progress,
    ProgressCallback,
    Recommender,
    create_model,
    load_model,
    model_kinds,
    register,
    resolve_device,
    software_versions,
    TrainingCancelled,
)
from fairaudit.models._encoder import TextEncoder, item_text_embeddings, item_texts
from fairaudit.models._itemknn import ItemKNNRecommender
from fairaudit.models._llm import LLMRecommender
from fairaudit.models._mf import MFRecommender
from fairaudit.models._popularity import PopularityRecommender

# Re-rankers (fairaudit.mitigation) are models too: importing them registers their kinds.
from fairaudit.mitigation import _rerank as _rerank  # noqa: E402,F401

__all__ = [
    "ItemKNNRecommender",
    "LLMRecommender",
    "TextEncoder",
    "item_text_embeddings",
    "item_texts",
    "MFRecommender",
    "PopularityRecommender",
    "TrainingCancelled",
    "ModelFolderError",
    "Progress",
    "ProgressCallback",
    "Recommender",
    "create_model",
    "load_model",
    "model_kinds",
    "register",
    "resolve_device",
    "software_versions",
]
