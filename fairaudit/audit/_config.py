"""What determines an audit's numbers: :class:`AuditConfig`, plus the names every audit table shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from fairaudit._choices import AUDIT_DEFAULTS
from fairaudit.metrics import CALIBRATION_ALPHA, DEFAULT_ROUNDS, MIN_GROUP_SIZE, RBP_GAMMA

#: Group name (and attribute name) of the rows that cover every evaluated user.
ALL = "all"
#: Separator of intersection specs (``gender*age_band``) and of their group values (``F*25-34``).
INTERSECTION_SEP = "*"
#: Default intersections, used when both columns exist.
DEFAULT_INTERSECTIONS = ("gender*age_band",)
FdrFamily = Literal["attribute", "model", "audit"]
FDR_FAMILIES: tuple[str, ...] = ("attribute", "model", "audit")


@dataclass(frozen=True)
class AuditConfig:
    """Everything that determines an audit's numbers (stored in ``audit.json``).

    Attributes
    ----------
    k : int
        List length K.
    attributes : tuple of str, optional
        User attribute specs (``"gender"``, ``"gender*age_band"``). ``None``: every categorical
        user column with at most ``max_groups`` values, plus :data:`DEFAULT_INTERSECTIONS`
        (:func:`run_audit` records the resolved specs in ``audit.json``).
    item_attributes : tuple of str, optional
        Item groupings for exposure; ``None``: ``popularity_tier``, ``genre`` (from ``genres``)
        and every other categorical item column.
    bootstrap_rounds : int
        Bootstrap resamples (CIs) and permutations (p-values).
    seed : int
        Seed of every resample and permutation.
    min_group_size : int
        Groups with fewer users are flagged and left out of gap tests ...
    include_small_groups : bool
        ... unless this is True.
    alpha : float
        Significance level: CIs are ``1 - alpha`` percentile intervals; gaps with
        ``p_adjusted < alpha`` are called significant.
    fdr_family : {"attribute", "model", "audit"}
        The family within which Benjamini-Hochberg controls the false discovery rate.
        ``"attribute"`` (default): all gaps of one user attribute (every model, group, metric and
        reference) — one family per question an audit answers ("does the system treat <attribute>
        groups differently?"). ``"model"``: one family per model x attribute (each model's audit
        stands alone, as if audited by itself; more discoveries, the FDR holds per model).
        ``"audit"``: every gap pooled — strong real effects (e.g. activity) then raise the BH
        threshold so that an attribute with no effect at all gets flagged. Per attribute (or per
        model x attribute), an attribute without any effect is flagged with probability at most
        ``alpha`` (under a family's complete null, FDR = family-wise error rate).
    browsing : tuple of str
        Browsing models for item exposure (``"dcg"``, ``"rbp"``, ``"uniform"``).
    rbp_gamma : float
        RBP patience.
    embedding_diversity : bool
        Compute ``ild_embedding`` from the LLM item text embeddings.
    calibration_alpha : float
        Steck's smoothing weight.
    max_groups : int
        Default attributes skip columns with more distinct values (ZIP codes, raw ages).
    split : dict, optional
        The split's ``describe()`` (filled in by :func:`run_audit`).
    data : dict, optional
        Where the data came from (path, mapping), filled in by the caller.

    Examples
    --------
    >>> AuditConfig.from_dict(AuditConfig(k=5).to_dict()) == AuditConfig(k=5)
    True
    """

    k: int = AUDIT_DEFAULTS["k"]
    attributes: tuple[str, ...] | None = None
    item_attributes: tuple[str, ...] | None = None
    bootstrap_rounds: int = DEFAULT_ROUNDS
    seed: int = AUDIT_DEFAULTS["seed"]
    min_group_size: int = MIN_GROUP_SIZE
    include_small_groups: bool = False
    alpha: float = AUDIT_DEFAULTS["alpha"]
    fdr_family: FdrFamily = "attribute"
    browsing: tuple[str, ...] = ("dcg", "rbp")
    rbp_gamma: float = RBP_GAMMA
    embedding_diversity: bool = True
    calibration_alpha: float = CALIBRATION_ALPHA
    max_groups: int = 25
    split: dict | None = None
    data: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AuditConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        return cls(**values)
