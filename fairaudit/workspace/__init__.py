"""The dashboard's workspace: folders on disk, uploads, and model training in a background thread.

Modules by concern: ``_folders`` (:class:`Workspace`: saved models, sweeps, per-session uploads
and audits, pruning of idle sessions; :class:`SavedModel`), ``_uploads`` (unpacking an uploaded
zip safely, zipping a folder for download) and ``_training`` (:class:`TrainingJob`). Nothing here
imports Streamlit: the pages call it.
"""

from fairaudit.workspace._folders import (
    BAD_SESSION_DAYS,
    BAD_SESSION_ID,
    DEFAULT_ROOT,
    DEFAULT_SESSION_DAYS,
    ENV_VAR,
    NOT_A_MODEL_FOLDER,
    SESSION_DAYS_VAR,
    SavedModel,
    Workspace,
    new_session_id,
    params_hash,
    safe_filename,
)
from fairaudit.workspace._training import TRAINING_CANCELLED, JobStatus, TrainingJob
from fairaudit.workspace._uploads import (
    MAX_UNZIPPED_BYTES,
    MAX_ZIP_MEMBERS,
    ZIP_CORRUPT,
    ZIP_ENCRYPTED,
    ZIP_LYING_SIZE,
    ZIP_METHOD,
    ZIP_TOO_LARGE,
    ZIP_TOO_MANY,
    ZIP_UNREADABLE,
    ZIP_UNSAFE_LINK,
    ZIP_UNSAFE_PATH,
    unpack_zip,
    zip_folder,
)

__all__ = [
    "BAD_SESSION_DAYS",
    "BAD_SESSION_ID",
    "DEFAULT_ROOT",
    "DEFAULT_SESSION_DAYS",
    "ENV_VAR",
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIP_MEMBERS",
    "NOT_A_MODEL_FOLDER",
    "SESSION_DAYS_VAR",
    "TRAINING_CANCELLED",
    "ZIP_CORRUPT",
    "ZIP_ENCRYPTED",
    "ZIP_LYING_SIZE",
    "ZIP_METHOD",
    "ZIP_TOO_LARGE",
    "ZIP_TOO_MANY",
    "ZIP_UNREADABLE",
    "ZIP_UNSAFE_LINK",
    "ZIP_UNSAFE_PATH",
    "JobStatus",
    "SavedModel",
    "TrainingJob",
    "Workspace",
    "new_session_id",
    "params_hash",
    "safe_filename",
    "unpack_zip",
    "zip_folder",
]
