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
)

__all__ = [
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
