"""Data layer: loading, validation, derived attributes, splits and sample data."""

from fairaudit.data._schema import (
    GENRE_SEP,
    UNKNOWN,
    DataError,
    Dataset,
    Split,
    ValidationIssue,
    frame_fingerprint,
)

__all__ = [
    "GENRE_SEP",
    "UNKNOWN",
    "DataError",
    "Dataset",
    "Split",
    "ValidationIssue",
    "frame_fingerprint",
]
