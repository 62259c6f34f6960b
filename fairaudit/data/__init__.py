"""Data layer: loading, validation, derived attributes, splits and sample data."""

from fairaudit.data._derive import activity_level, age_band, genre_matrix, popularity_tier, zip_region
from fairaudit.data._imported import (
    RECOMMENDATION_COLUMNS,
    TEST_FILE_METHOD,
    file_sha256,
    load_recommendations,
    load_test_split,
)
from fairaudit.data._load import apply_mapping, load_dataset, load_tables, read_columns, validate_path
from fairaudit.data._output import (
    FORMULA_PREFIXES,
    OutputError,
    OutputLockedError,
    check_file_target,
    check_folder_target,
    check_pdf_target,
    csv_bytes,
    read_csv,
    replacing_folder,
    write_bytes_atomic,
    write_csv,
)
from fairaudit.data._profile import profile_by_group
from fairaudit.data._schema import (
    GENRE_SEP,
    UNKNOWN,
    DataError,
    Dataset,
    Split,
    ValidationIssue,
    frame_fingerprint,
)
from fairaudit.data._split import (
    SPLIT_FUNCTIONS,
    SPLIT_METHODS,
    item_cold_start,
    make_split,
    random_holdout,
    temporal_leave_last,
)
from fairaudit.data._synth import generate_sample, load_sample, write_sample

__all__ = [
    "RECOMMENDATION_COLUMNS",
    "TEST_FILE_METHOD",
    "file_sha256",
    "load_recommendations",
    "load_test_split",
    "FORMULA_PREFIXES",
    "OutputError",
    "OutputLockedError",
    "check_file_target",
    "check_folder_target",
    "check_pdf_target",
    "csv_bytes",
    "read_csv",
    "replacing_folder",
    "write_bytes_atomic",
    "write_csv",
    "SPLIT_FUNCTIONS",
    "SPLIT_METHODS",
    "GENRE_SEP",
    "UNKNOWN",
    "DataError",
    "Dataset",
    "Split",
    "ValidationIssue",
    "activity_level",
    "age_band",
    "apply_mapping",
    "frame_fingerprint",
    "generate_sample",
    "genre_matrix",
    "item_cold_start",
    "load_dataset",
    "load_sample",
    "load_tables",
    "make_split",
    "popularity_tier",
    "profile_by_group",
    "random_holdout",
    "read_columns",
    "temporal_leave_last",
    "validate_path",
    "write_sample",
    "zip_region",
]
