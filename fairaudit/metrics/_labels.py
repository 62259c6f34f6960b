"""Display names of the audit's metrics: one table for chart axes, tables and plain-words sentences."""

from __future__ import annotations

#: Human name of each metric; ``{k}`` is the list length.
METRIC_LABELS = {
    "ndcg": "NDCG@{k}", "recall": "Recall@{k}", "precision": "Precision@{k}", "hit_rate": "HitRate@{k}",
    "mrr": "MRR@{k}", "ild_embedding": "ILD (embeddings)@{k}", "ild_genre": "ILD (genres)@{k}",
    "genre_coverage": "Genre coverage@{k}", "novelty": "Novelty@{k} (bits)", "avg_popularity": "Average popularity@{k}",
    "long_tail_share": "Long-tail share@{k}", "miscalibration": "Miscalibration (KL)@{k}",
    "gini_exposure": "Gini of item exposure@{k}", "catalogue_coverage": "Catalogue coverage@{k}",
}  # fmt: skip


def metric_label(metric: str, k: int | None = 10) -> str:
    """Display name of a metric, with its cut-off K (none when ``k`` is None); unknown names pass through.

    >>> metric_label("ndcg", 10)
    'NDCG@10'
    >>> metric_label("novelty", None)
    'Novelty (bits)'
    >>> metric_label("custom", 5)
    'custom@5'
    """
    template = METRIC_LABELS.get(metric, f"{metric}@{{k}}")
    if k is None:
        return template.replace("@{k}", "")
    return template.format(k=k)
