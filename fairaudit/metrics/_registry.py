"""The metric registry: every metric of an audit declared once, and every list of metrics derived from it.

A :class:`Metric` holds what the rest of the package needs to know about a metric: its name (the
``user_metrics.parquet`` column / ``metric`` value of the tables), display label, level (per user or
per catalogue), direction, family, the inputs it needs and the function that computes it. :data:`METRICS`
lists them in output order; the audit engine iterates it, and the audit's, plots', report's and pages'
lists of metrics (``USER_METRICS``, ``ACCURACY_METRICS``, ``RATIO_METRICS``, ...) are queries on it.

Adding a metric is one :class:`Metric` entry here, plus its function (in the ``_<family>.py`` module)
and its tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairaudit import _choices
from fairaudit.metrics._accuracy import accuracy_metrics
from fairaudit.metrics._calibration import CALIBRATION_ALPHA, miscalibration
from fairaudit.metrics._diversity import genre_coverage, intra_list_diversity, novelty
from fairaudit.metrics._exposure import avg_popularity, gini, long_tail_share

Level = Literal["user", "catalogue"]
#: ``user``: one value per evaluated user (group values are means); ``catalogue``: one value per model.
LEVELS: tuple[Level, ...] = ("user", "catalogue")
Family = Literal["accuracy", "diversity", "coverage", "novelty", "popularity", "calibration", "exposure"]
#: What a metric measures (the beyond-accuracy families of Kaminskas & Bridge 2016, plus popularity bias,
#: calibration and exposure concentration).
FAMILIES: tuple[Family, ...] = ("accuracy", "diversity", "coverage", "novelty", "popularity", "calibration", "exposure")
Need = Literal["genres", "genre_weights", "item_vectors"]
#: Optional inputs (fields of :class:`MetricInputs`) a per-user metric may need; it applies when all are given.
NEEDS: tuple[Need, ...] = ("genres", "genre_weights", "item_vectors")

_BAD_OPTION = "Metric '{0}': unknown {1} {2!r}; expected one of {3}"
_BAD_LABEL = "Metric '{0}': label template {1!r} must contain '@{{k}}' (the cut-off K, dropped when k is None)"
_CATALOGUE_NEEDS = "Metric '{0}': a catalogue-level metric reads item recommendation counts only; drop needs={1}"
_USER_CI = "Metric '{0}': per-user metrics always get a bootstrap CI; ci=False is for catalogue-level metrics"
_DUPLICATE = "Metric '{0}' is registered twice; metric names must be unique"
_UNDECLARED_ACCURACY = "The registry's accuracy metrics {0} differ from fairaudit._choices.ACCURACY_METRICS {1}; declare them there"
_BAD_FILTER = "Unknown {0} {1!r} in a registry query; expected one of {2}"


@dataclass(frozen=True)
class MetricInputs:
    """What a per-user metric function reads: the top-K lists and the data around them.

    ``genres``, ``genre_weights`` and ``item_vectors`` are optional (:data:`NEEDS`); a metric that
    needs one that is None is left out.

    Attributes
    ----------
    recs : DataFrame
        ``user_id, rank, item_id``: the top-K lists.
    train, test : DataFrame
        ``user_id, item_id``: training and held-out interactions (relevance = in ``test``).
    k : int
        List length K.
    catalogue : Index
        Every item id.
    tiers : Series
        ``popularity_tier`` (``head``/``mid``/``tail``) indexed by item id.
    genres, genre_weights : DataFrame, optional
        Multi-hot and row-normalised item x genre matrices (:func:`fairaudit.data.genre_matrix`).
    item_vectors : DataFrame, optional
        Item embeddings indexed by item id.
    calibration_alpha : float
        Steck's smoothing weight for ``miscalibration``.

    Examples
    --------
    >>> recs = pd.DataFrame({"user_id": ["a", "a"], "rank": [1, 2], "item_id": ["x", "y"]})
    >>> inputs = MetricInputs(recs=recs, train=recs, test=recs, k=2, catalogue=pd.Index(["x", "y"]),
    ...                       tiers=pd.Series(["head", "tail"], index=["x", "y"]))
    >>> inputs.has("genres"), METRICS["long_tail_share"].compute(inputs).tolist()
    (False, [0.5])
    """

    recs: pd.DataFrame
    train: pd.DataFrame
    test: pd.DataFrame
    k: int
    catalogue: pd.Index
    tiers: pd.Series
    genres: pd.DataFrame | None = None
    genre_weights: pd.DataFrame | None = None
    item_vectors: pd.DataFrame | None = None
    calibration_alpha: float = CALIBRATION_ALPHA

    def has(self, need: Need) -> bool:
        """Whether the optional input ``need`` was given.

        >>> MetricInputs(None, None, None, 10, pd.Index([]), pd.Series(dtype=str)).has("item_vectors")
        False
        """
        if need not in NEEDS:
            raise ValueError(_BAD_FILTER.format("need", need, NEEDS))
        return getattr(self, need) is not None


#: A per-user metric function: inputs -> Series indexed by ``user_id``, or a DataFrame holding a column
#: per metric when one function computes several (``accuracy_metrics``).
UserCompute = Callable[[MetricInputs], "pd.Series | pd.DataFrame"]
#: A catalogue-level metric function: how often each catalogue item was recommended (``n_items``, or
#: ``rounds x n_items`` bootstrap replicates) -> the value (one per row for replicates).
CatalogueCompute = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class Metric:
    """One metric of the audit, declared once.

    Attributes
    ----------
    name : str
        Column of ``user_metrics.parquet`` / ``metric`` value of ``group_metrics.csv`` and ``gaps.csv``.
    label : str
        Display template with the cut-off as ``@{k}`` (``"NDCG@{k}"``); see :func:`metric_label`.
    level : {"user", "catalogue"}
        One value per evaluated user, or one per model (``attribute="all"`` rows only).
    higher_is_better : bool
        Direction: picks the ``best`` reference group and the sign of a comparison's cost.
    family : str
        One of :data:`FAMILIES`.
    compute : callable
        ``level="user"``: :data:`UserCompute`, called once per model (entries sharing one function,
        like the five accuracy metrics, share the call). ``level="catalogue"``: :data:`CatalogueCompute`
        on item recommendation counts, called on the observed counts and, when ``ci``, on each
        user-bootstrap replicate.
    needs : tuple of str
        Optional inputs (:data:`NEEDS`) the function reads; without them the metric is left out.
    headline : bool
        Shown first where space is short: the audit page's cards and the report's full gap tables.
    ci : bool
        Catalogue level only: whether the value gets a user-bootstrap CI (False for a union over users,
        such as coverage, which resampling biases downwards).

    Examples
    --------
    >>> toy = Metric("list_length", "List length@{k}", "user", True, "coverage",
    ...              lambda inputs: inputs.recs.groupby("user_id").size().astype(float))
    >>> toy.level, toy.needs
    ('user', ())
    """

    name: str
    label: str
    level: Level
    higher_is_better: bool
    family: Family
    compute: UserCompute | CatalogueCompute
    needs: tuple[Need, ...] = ()
    headline: bool = False
    ci: bool = True

    def __post_init__(self) -> None:
        for option, value, allowed in (("level", self.level, LEVELS), ("family", self.family, FAMILIES)):
            if value not in allowed:
                raise ValueError(_BAD_OPTION.format(self.name, option, value, allowed))
        for need in self.needs:
            if need not in NEEDS:
                raise ValueError(_BAD_OPTION.format(self.name, "need", need, NEEDS))
        if "@{k}" not in self.label:
            raise ValueError(_BAD_LABEL.format(self.name, self.label))
        if self.level == "catalogue" and self.needs:
            raise ValueError(_CATALOGUE_NEEDS.format(self.name, self.needs))
        if self.level == "user" and not self.ci:
            raise ValueError(_USER_CI.format(self.name))

    def applies(self, inputs: MetricInputs) -> bool:
        """Whether every input the metric needs is in ``inputs``.

        >>> METRICS["ild_genre"].applies(MetricInputs(None, None, None, 10, pd.Index([]), pd.Series(dtype=str)))
        False
        """
        return all(inputs.has(need) for need in self.needs)


class MetricRegistry(Mapping[str, Metric]):
    """Metrics by name, in output order, with small queries.

    Parameters
    ----------
    metrics : iterable of Metric
        In the order of ``user_metrics.parquet`` columns and ``group_metrics.csv`` rows; names unique.

    Examples
    --------
    >>> METRICS["ndcg"].higher_is_better, METRICS["gini_exposure"].level
    (True, 'catalogue')
    >>> METRICS.names(level="user", higher_is_better=False)
    ('avg_popularity', 'miscalibration')
    >>> toy = Metric("list_length", "List length@{k}", "user", True, "coverage", len)
    >>> MetricRegistry([*METRICS.values(), toy]).names(family="coverage")
    ('genre_coverage', 'catalogue_coverage', 'list_length')
    """

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics: dict[str, Metric] = {}
        for metric in metrics:
            if metric.name in self._metrics:
                raise ValueError(_DUPLICATE.format(metric.name))
            self._metrics[metric.name] = metric

    def __getitem__(self, name: str) -> Metric:
        return self._metrics[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._metrics)

    def __len__(self) -> int:
        return len(self._metrics)

    def __repr__(self) -> str:
        return f"MetricRegistry({list(self._metrics)})"

    def where(
        self,
        *,
        level: Level | None = None,
        family: Family | Iterable[Family] | None = None,
        higher_is_better: bool | None = None,
        headline: bool | None = None,
    ) -> tuple[Metric, ...]:
        """The metrics matching every given condition, in registry order (``family`` may be several).

        >>> [m.name for m in METRICS.where(level="catalogue")]
        ['gini_exposure', 'catalogue_coverage']
        """
        families = None if family is None else (family,) if isinstance(family, str) else tuple(family)
        if level is not None and level not in LEVELS:
            raise ValueError(_BAD_FILTER.format("level", level, LEVELS))
        for name in families or ():
            if name not in FAMILIES:
                raise ValueError(_BAD_FILTER.format("family", name, FAMILIES))
        return tuple(
            m for m in self._metrics.values()
            if (level is None or m.level == level) and (families is None or m.family in families)
            and (higher_is_better is None or m.higher_is_better == higher_is_better)
            and (headline is None or m.headline == headline)
        )  # fmt: skip

    def names(
        self,
        *,
        level: Level | None = None,
        family: Family | Iterable[Family] | None = None,
        higher_is_better: bool | None = None,
        headline: bool | None = None,
    ) -> tuple[str, ...]:
        """Names of :meth:`where`'s metrics.

        >>> METRICS.names(family=("diversity", "novelty", "calibration"))
        ('ild_embedding', 'ild_genre', 'novelty', 'miscalibration')
        """
        return tuple(m.name for m in self.where(level=level, family=family, higher_is_better=higher_is_better,
                                                headline=headline))


# ---- compute functions: MetricInputs -> the metric functions' own arguments ----------------------
def _accuracy(x: MetricInputs) -> pd.DataFrame:
    return accuracy_metrics(x.recs, x.test, k=x.k)


def _ild_embedding(x: MetricInputs) -> pd.Series:
    return intra_list_diversity(x.recs, x.item_vectors)


def _ild_genre(x: MetricInputs) -> pd.Series:
    return intra_list_diversity(x.recs, x.genres)


def _genre_coverage(x: MetricInputs) -> pd.Series:
    return genre_coverage(x.recs, x.genres)


def _novelty(x: MetricInputs) -> pd.Series:
    return novelty(x.recs, x.train, x.catalogue)


def _avg_popularity(x: MetricInputs) -> pd.Series:
    return avg_popularity(x.recs, x.train, x.catalogue)


def _long_tail_share(x: MetricInputs) -> pd.Series:
    return long_tail_share(x.recs, x.tiers)


def _miscalibration(x: MetricInputs) -> pd.Series:
    return miscalibration(x.recs, x.train, x.genre_weights, alpha=x.calibration_alpha)


def _recommended_share(counts: np.ndarray) -> Any:
    """Share of catalogue items recommended at least once (catalogue coverage) from recommendation counts."""
    return (np.asarray(counts) > 0).mean(axis=-1)


#: Every metric of the audit, in ``user_metrics.parquet`` column order, then ``group_metrics.csv``'s
#: catalogue rows. Formulas and conventions: ``docs/metrics.md``.
METRICS = MetricRegistry([
    Metric("ndcg", "NDCG@{k}", "user", True, "accuracy", _accuracy, headline=True),
    Metric("recall", "Recall@{k}", "user", True, "accuracy", _accuracy, headline=True),
    Metric("precision", "Precision@{k}", "user", True, "accuracy", _accuracy),
    Metric("hit_rate", "HitRate@{k}", "user", True, "accuracy", _accuracy),
    Metric("mrr", "MRR@{k}", "user", True, "accuracy", _accuracy),
    Metric("ild_embedding", "ILD (embeddings)@{k}", "user", True, "diversity", _ild_embedding, ("item_vectors",)),
    Metric("ild_genre", "ILD (genres)@{k}", "user", True, "diversity", _ild_genre, ("genres",)),
    Metric("genre_coverage", "Genre coverage@{k}", "user", True, "coverage", _genre_coverage, ("genres",)),
    Metric("novelty", "Novelty@{k} (bits)", "user", True, "novelty", _novelty),
    Metric("avg_popularity", "Average popularity@{k}", "user", False, "popularity", _avg_popularity),
    Metric("long_tail_share", "Long-tail share@{k}", "user", True, "popularity", _long_tail_share),
    Metric("miscalibration", "Miscalibration (KL)@{k}", "user", False, "calibration", _miscalibration,
           ("genre_weights",)),
    Metric("gini_exposure", "Gini of item exposure@{k}", "catalogue", False, "exposure", gini, headline=True),
    Metric("catalogue_coverage", "Catalogue coverage@{k}", "catalogue", True, "coverage", _recommended_share,
           headline=True, ci=False),
])  # fmt: skip

#: Per-user accuracy metrics, in ``accuracy_metrics``' column order: declared in :mod:`fairaudit._choices`, so
#: that ``sweep --metric`` lists them without importing the metrics; the registry must agree.
ACCURACY_METRICS = _choices.ACCURACY_METRICS
if METRICS.names(family="accuracy") != ACCURACY_METRICS:
    raise ImportError(_UNDECLARED_ACCURACY.format(METRICS.names(family="accuracy"), ACCURACY_METRICS))
#: Display template of each metric (``{k}`` is the list length), read by :func:`metric_label`.
METRIC_LABELS = {name: metric.label for name, metric in METRICS.items()}


def metric_label(metric: str, k: int | None = 10) -> str:
    """Display name of a metric, with its cut-off K (none when ``k`` is None); unknown names pass through.

    One table (:data:`METRICS`' labels) for chart axes, tables, the PDF and plain-words sentences.

    >>> metric_label("ndcg", 10)
    'NDCG@10'
    >>> metric_label("novelty", None)
    'Novelty (bits)'
    >>> metric_label("custom", 5)
    'custom@5'
    """
    template = METRICS[metric].label if metric in METRICS else f"{metric}@{{k}}"
    if k is None:
        return template.replace("@{k}", "")
    return template.format(k=k)
