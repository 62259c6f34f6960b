"""Pure, vectorised metric functions (DataFrame in, DataFrame/array out) and group statistics."""

from fairaudit.metrics._accuracy import ACCURACY_METRICS, accuracy_metrics
from fairaudit.metrics._calibration import CALIBRATION_ALPHA, miscalibration
from fairaudit.metrics._diversity import genre_coverage, intra_list_diversity, novelty
from fairaudit.metrics._exposure import (
    BROWSING_MODELS,
    GENRE_ATTRIBUTE,
    RBP_GAMMA,
    Browsing,
    avg_popularity,
    catalogue_coverage,
    exposure_shares,
    gini,
    group_shares,
    item_exposure,
    item_groups,
    long_tail_share,
    position_weights,
)
from fairaudit.metrics._labels import METRIC_LABELS, metric_label
from fairaudit.metrics._pareto import GAP_GOALS, GapGoal, pareto_front
from fairaudit.metrics._stats import (
    DEFAULT_ROUNDS,
    MIN_GROUP_SIZE,
    REFERENCES,
    Reference,
    SliceReport,
    benjamini_hochberg,
    bootstrap_counts,
    bootstrap_sums,
    permutation_sums,
    seeded_rng,
)

__all__ = [
    "ACCURACY_METRICS",
    "BROWSING_MODELS",
    "CALIBRATION_ALPHA",
    "DEFAULT_ROUNDS",
    "GAP_GOALS",
    "GapGoal",
    "GENRE_ATTRIBUTE",
    "METRIC_LABELS",
    "MIN_GROUP_SIZE",
    "RBP_GAMMA",
    "REFERENCES",
    "Browsing",
    "Reference",
    "SliceReport",
    "accuracy_metrics",
    "avg_popularity",
    "benjamini_hochberg",
    "bootstrap_counts",
    "bootstrap_sums",
    "catalogue_coverage",
    "exposure_shares",
    "genre_coverage",
    "gini",
    "group_shares",
    "intra_list_diversity",
    "item_exposure",
    "item_groups",
    "long_tail_share",
    "metric_label",
    "miscalibration",
    "novelty",
    "pareto_front",
    "permutation_sums",
    "seeded_rng",
    "position_weights",
]
