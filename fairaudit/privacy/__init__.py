"""Privacy: differentially private training and its cost by group, membership-inference audits and
privacy-safe releases of audit tables. See docs/privacy.md."""

# Differentially private training (fairaudit.models._dp) and its cost by group
from fairaudit.models import (
    DPSGD, default_delta, dp_enabled, epsilon_spent, privacy_record, privacy_summary, refuse_dp_kind,
)  # fmt: skip
from fairaudit.privacy._dp import (
    EXPOSURE_SHARE, PRIVACY_COST_COLUMNS, PRIVACY_COST_FILE, privacy_cost, read_privacy_cost,
)  # fmt: skip

# Membership inference, private releases
from fairaudit.privacy._mia import (
    ATTACKS,
    EXCHANGEABLE_SPLITS,
    MIA_COLUMNS,
    MIA_RECORDS,
    NOT_EXCHANGEABLE,
    Attack,
    membership_inference,
    membership_pairs,
    membership_record,
    pair_auc,
    read_membership,
    split_is_exchangeable,
    write_membership,
)
from fairaudit.privacy._export import (
    EXPORT_COLUMNS,
    MANIFEST,
    PRIVATE_METRICS,
    RELEASE_KIND,
    RELEASE_TABLE,
    PrivateRelease,
    export_private,
    is_release_folder,
    private_group_metrics,
    read_release,
)

__all__ = [
    # differentially private training and its cost
    "DPSGD",
    "EXPOSURE_SHARE",
    "PRIVACY_COST_COLUMNS",
    "PRIVACY_COST_FILE",
    "default_delta",
    "dp_enabled",
    "epsilon_spent",
    "privacy_cost",
    "privacy_record",
    "read_privacy_cost",
    "privacy_summary",
    "refuse_dp_kind",
    # membership inference, private releases
    "ATTACKS",
    "Attack",
    "EXCHANGEABLE_SPLITS",
    "EXPORT_COLUMNS",
    "MANIFEST",
    "MIA_COLUMNS",
    "MIA_RECORDS",
    "NOT_EXCHANGEABLE",
    "PRIVATE_METRICS",
    "PrivateRelease",
    "RELEASE_KIND",
    "RELEASE_TABLE",
    "export_private",
    "is_release_folder",
    "membership_inference",
    "membership_pairs",
    "membership_record",
    "pair_auc",
    "private_group_metrics",
    "read_membership",
    "read_release",
    "split_is_exchangeable",
    "write_membership",
]
