"""The audit: top-K lists for every evaluated user, every metric per user group, gaps, exposure.

``run_audit(dataset, split, models, config)`` returns an :class:`AuditResult` holding the tidy
tables of the audit-folder contract (``docs/architecture.md``); ``write_audit`` / ``read_audit``
(= ``AuditResult.write`` / ``AuditResult.read``) move it, with its optional tables, to and from
disk. Modules: ``_config`` (:class:`AuditConfig`), ``_groups`` (attribute specs, the models' and
the audit's split), ``_engine`` (:func:`run_audit`), ``_tables`` (every table's columns and the
:func:`select_rows` query helper), ``_folder`` (the folder on disk).
"""

from fairaudit._choices import AUDIT_BOUNDS, MAX_SEED
from fairaudit.audit._config import (
    ALL,
    DEFAULT_INTERSECTIONS,
    FDR_FAMILIES,
    INTERSECTION_SEP,
    AuditConfig,
    FdrFamily,
)
from fairaudit.audit._engine import (
    GLOBAL_METRICS,
    LOWER_IS_BETTER,
    USER_METRICS,
    adjust_p_values,
    describe_gap,
    run_audit,
    train_derived_users,
    user_metrics_frame,
)
from fairaudit.audit._folder import (
    FILES,
    OPTIONAL_FILES,
    AuditFolderError,
    AuditResult,
    MissingAuditFileError,
    is_audit_folder,
    read_audit,
    read_table,
    write_audit,
)
from fairaudit.audit._groups import (
    attribute_groups,
    audit_split,
    common_split,
    default_attributes,
    plain_attributes,
    split_for_model,
)
from fairaudit.audit._tables import TABLES, TableSchema, select_rows

__all__ = [
    "ALL",
    "AUDIT_BOUNDS",
    "MAX_SEED",
    "DEFAULT_INTERSECTIONS",
    "FDR_FAMILIES",
    "FILES",
    "GLOBAL_METRICS",
    "INTERSECTION_SEP",
    "LOWER_IS_BETTER",
    "OPTIONAL_FILES",
    "TABLES",
    "USER_METRICS",
    "AuditConfig",
    "AuditFolderError",
    "AuditResult",
    "FdrFamily",
    "MissingAuditFileError",
    "TableSchema",
    "attribute_groups",
    "audit_split",
    "common_split",
    "adjust_p_values",
    "default_attributes",
    "describe_gap",
    "is_audit_folder",
    "plain_attributes",
    "read_audit",
    "read_table",
    "run_audit",
    "select_rows",
    "split_for_model",
    "train_derived_users",
    "user_metrics_frame",
    "write_audit",
]
