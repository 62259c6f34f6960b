"""Fairness terms for in-training mitigation, as pure torch functions and small modules.

- :func:`group_difference` - the user-side "difference loss" ``F(theta)``: the mean absolute
  difference between user groups' mean of a per-example quantity (training loss or
  predicted relevance of positives), after Yao & Huang (NeurIPS 2017) and Li et al.
  (WWW 2021, user-oriented fairness).
- :func:`exposure_divergence` - the item-side term: ``KL(target || share)`` between target
  shares of item groups and their expected exposure under the model's softmax over the
  candidates (Singh & Joachims 2018; Diaz et al. 2020, expected exposure).
- :class:`AttributeAdversary` and :func:`group_mean_gap` - adversarial removal of a
  sensitive attribute from user representations (Beutel et al. 2017). A classifier learns to
  predict the attribute from the vectors, and the encoder is trained against the adversary
  with one of two objectives. ``"mean_matching"`` (default) closes the gap between the
  groups' mean vectors, which is zero exactly when no *linear* classifier (the audit's
  probe) can recover the attribute better than its base rate (linear guardedness; Belrose
  et al. 2023, LEACE). ``"reversal"`` maximises the classifier's cross-entropy through a
  gradient-reversal layer (:func:`grad_reverse`; Ganin & Lempitsky 2015). Reversal is kept
  for comparison: its gradient carries each user's label, and an encoder with per-item
  parameters (the LLM recommender's history tower) turns that into a *stronger*, flipped
  encoding of the attribute, which a fresh classifier reads at once (cf. Elazar & Goldberg
  2018; docs/benchmarks.md). Measure with :func:`attribute_leakage` or the sweep.
- :class:`FairnessRegulariser` bundles one of them with its weight ``lambda`` for a training
  loop, and :func:`attribute_leakage` measures, after training, how well a fresh classifier
  still recovers the attribute from the user vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from fairaudit._choices import ADVERSARY_OBJECTIVES, FAIRNESS_KINDS, AdversaryObjective, FairnessKind
from fairaudit.data import UNKNOWN, Dataset

_BAD_KIND = "fairness must be one of {0}, got '{1}'"
_BAD_OBJECTIVE = "adversary_objective must be one of {0}, got '{1}'"
_BAD_WEIGHT = "fairness_weight must be a finite number >= 0, got {0}"
_NEEDS = "fairness='{0}' needs {1}"
_NO_COLUMN = "The {0} table has no column '{1}' to group by for the fairness term; available columns: {2}"


def group_difference(values: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean absolute difference between the group means of ``values`` (the difference loss F).

    ``F = 1/(m(m-1)) sum_{a != b} |mean_a - mean_b|`` over the ``m`` groups present in the batch
    (for two groups simply ``|mean_a - mean_b|``). Entries with a negative group code are
    ignored; with fewer than two groups present the result is 0 (still differentiable).

    Parameters
    ----------
    values : Tensor (B,)
        Per-example quantity, e.g. training loss or predicted relevance of the positive.
    groups : Tensor (B,) of int64
        Group code of each example's user (``-1`` = not in any compared group).
    n_groups : int
        Number of group codes.

    Examples
    --------
    >>> group_difference(torch.tensor([1.0, 3.0, 6.0]), torch.tensor([0, 0, 1]), 2)
    tensor(4.)
    >>> group_difference(torch.tensor([1.0, 2.0]), torch.tensor([0, 0]), 2)
    tensor(0.)
    """
    keep = groups >= 0
    values, groups = values[keep], groups[keep]
    sums = torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add(0, groups, values)
    counts = torch.bincount(groups, minlength=n_groups).to(values.dtype)
    present = counts > 0
    means = sums[present] / counts[present]
    m = means.shape[0]
    if m < 2:
        return values.sum() * 0.0
    return (means[:, None] - means[None, :]).abs().sum() / (m * (m - 1))


def exposure_divergence(
    logits: torch.Tensor, item_groups: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-8
) -> torch.Tensor:
    """``KL(target || share)`` of item groups' expected exposure under a softmax over candidates.

    ``share_g = mean_b sum_{c in g} softmax(logits_b)_c`` is the probability mass the model puts
    on group ``g`` averaged over the batch's users (the expected exposure of a stochastic
    ranking of length one); ``KL = sum_g t_g log(t_g / share_g)``. It is 0 when the shares
    match the targets and grows as a target group is starved.

    Parameters
    ----------
    logits : Tensor (B, C)
        Scores of the batch's users for the candidates (e.g. the in-batch items).
    item_groups : Tensor (C,) of int64
        Group code of each candidate item.
    target : Tensor (G,)
        Target share of each group (sums to 1), e.g. the catalogue share.
    eps : float
        Floor on the shares, keeping the log finite.

    Examples
    --------
    >>> logits = torch.zeros(1, 4)
    >>> round(float(exposure_divergence(logits, torch.tensor([0, 0, 1, 1]), torch.tensor([0.5, 0.5]))), 6)
    0.0
    >>> round(float(exposure_divergence(logits, torch.tensor([0, 0, 0, 1]), torch.tensor([0.5, 0.5]))), 4)
    0.1438
    """
    probs = torch.softmax(logits, dim=1).mean(dim=0)
    share = torch.zeros(target.shape[0], dtype=probs.dtype, device=probs.device).index_add(0, item_groups, probs)
    target = target.to(probs.dtype)
    return (torch.special.xlogy(target, target) - torch.special.xlogy(target, share.clamp_min(eps))).sum()


def group_mean_gap(vectors: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Share of the vectors' mean square held by the spread of their group means.

    ``sum_g pi_g ||mu_g - mu||^2 / mean_u ||z_u||^2`` with ``pi_g`` the groups' shares,
    ``mu_g`` their mean vectors and ``mu`` the overall mean; entries with a negative group
    code are ignored. It lies in [0, 1] whatever the vectors' scale, and is 0 exactly when
    every group has the same mean, i.e. when no linear classifier can recover the group better
    than its base rate (Belrose et al. 2023).

    >>> z = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    >>> float(group_mean_gap(z, torch.tensor([0, 0, 1, 1]), 2))  # (0.5*0.25 + 0.5*0.25) / 2
    0.125
    >>> float(group_mean_gap(z[[0, 1, 1, 0]], torch.tensor([0, 0, 1, 1]), 2))  # same means: nothing to recover
    0.0
    """
    keep = groups >= 0
    vectors, groups = vectors[keep], groups[keep]
    sums = torch.zeros(n_groups, vectors.shape[1], dtype=vectors.dtype, device=vectors.device)
    sums = sums.index_add(0, groups, vectors)
    counts = torch.bincount(groups, minlength=n_groups).to(vectors.dtype)
    present = counts > 0
    means, shares = sums[present] / counts[present, None], counts[present] / counts.sum()
    overall = shares @ means
    spread = (shares * (means - overall).pow(2).sum(1)).sum()
    return spread / vectors.detach().pow(2).sum(1).mean().clamp_min(torch.finfo(vectors.dtype).tiny)


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``-scale`` in the backward pass.

    >>> x = torch.ones(2, requires_grad=True)
    >>> grad_reverse(x, 0.5).sum().backward()
    >>> x.grad.tolist()
    [-0.5, -0.5]
    """
    return _GradReverse.apply(x, scale)


class AttributeAdversary(nn.Module):
    """Small classifier predicting a sensitive attribute from user vectors, and the encoder's term against it.

    :meth:`loss` returns two parts whose sum is minimised by one optimiser: the classifier's
    cross-entropy on *detached* vectors (only the classifier learns from it; its accuracy
    shows how much of the attribute an adversary finds during training), and the encoder's
    term on the live vectors (only the encoder learns from it):

    - ``"mean_matching"``: :func:`group_mean_gap`, the gap a linear adversary exploits;
    - ``"reversal"``: the cross-entropy of a frozen copy of the classifier behind
      :func:`grad_reverse`, so the encoder climbs it (the classic gradient-reversal adversary).

    Parameters
    ----------
    dim : int
        Size of the user vectors.
    n_classes : int
        Number of attribute groups.
    objective : {"mean_matching", "reversal"}
        The encoder's objective.
    hidden : int
        Hidden units of the classifier.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> adv = AttributeAdversary(4, 2)
    >>> classifier, encoder, acc = adv.loss(torch.randn(6, 4), torch.tensor([0, 1, 0, 1, 0, -1]))
    >>> classifier.ndim, encoder.ndim, 0.0 <= acc <= 1.0
    (0, 0, True)
    """

    def __init__(
        self, dim: int, n_classes: int, objective: AdversaryObjective = "mean_matching", hidden: int = 64
    ) -> None:
        super().__init__()
        if objective not in ADVERSARY_OBJECTIVES:
            raise ValueError(_BAD_OBJECTIVE.format(ADVERSARY_OBJECTIVES, objective))
        self.objective, self.n_classes = objective, n_classes
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.net(vectors)

    def loss(self, vectors: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(classifier loss, encoder term, batch accuracy)`` over the examples with a label >= 0."""
        keep = labels >= 0
        vectors, labels = vectors[keep], labels[keep]
        if vectors.shape[0] == 0:
            zero = vectors.sum() * 0.0
            return zero, zero, float("nan")
        detached_logits = self(vectors.detach())
        classifier = nn.functional.cross_entropy(detached_logits, labels)
        if self.objective == "reversal":
            frozen = {name: p.detach() for name, p in self.named_parameters()}
            logits = torch.func.functional_call(self, frozen, grad_reverse(vectors))
            encoder = nn.functional.cross_entropy(logits, labels)
        else:
            encoder = group_mean_gap(vectors, labels, self.n_classes)
        accuracy = float((detached_logits.argmax(dim=1) == labels).float().mean())
        return classifier, encoder, accuracy


class FairnessRegulariser(nn.Module):
    """The optional fairness term ``lambda * F`` of a recommender's training loss.

    Build it with :meth:`build`, which returns ``None`` when mitigation is off
    (``kind="none"`` or ``weight == 0``) so that an unmitigated training run creates no extra
    parameters and draws no random numbers. Call it on every batch and add the result to
    the loss; its parameters (the adversary's) must join the optimiser. For ``adversarial``
    the result also contains the classifier's own loss, which trains only the classifier.

    Parameters
    ----------
    kind : {"difference", "exposure", "adversarial"}
        Which term.
    weight : float
        ``lambda``.
    user_groups : Tensor (n_users,) of int64, optional
        Group code of every user of the model (``-1`` = excluded); for ``difference`` and
        ``adversarial``.
    item_groups : Tensor (n_items,) of int64, optional
        Group code of every catalogue item; for ``exposure``.
    item_target : Tensor (G,), optional
        Target exposure share per item group; for ``exposure``.
    dim : int, optional
        Size of the user vectors; for ``adversarial``.
    adversary_objective : {"mean_matching", "reversal"}
        The encoder's objective against the adversary (:class:`AttributeAdversary`).

    Examples
    --------
    >>> FairnessRegulariser.build("none", 1.0) is None
    True
    >>> reg = FairnessRegulariser.build("difference", 0.5, user_groups=torch.tensor([0, 1]))
    >>> float(reg(users=torch.tensor([0, 1]), losses=torch.tensor([1.0, 3.0])))
    1.0
    """

    def __init__(
        self,
        kind: FairnessKind,
        weight: float,
        *,
        user_groups: torch.Tensor | None = None,
        item_groups: torch.Tensor | None = None,
        item_target: torch.Tensor | None = None,
        dim: int | None = None,
        adversary_objective: AdversaryObjective = "mean_matching",
    ) -> None:
        super().__init__()
        self.kind, self.weight = kind, float(weight)
        needs = {
            "difference": ("user_groups", user_groups),
            "adversarial": ("user_groups and dim", None if dim is None else user_groups),
            "exposure": ("item_groups and item_target", None if item_target is None else item_groups),
        }
        if kind not in needs:
            raise ValueError(_BAD_KIND.format(FAIRNESS_KINDS, kind))
        if needs[kind][1] is None:
            raise ValueError(_NEEDS.format(kind, needs[kind][0]))
        self.register_buffer("user_groups", user_groups)
        self.register_buffer("item_groups", item_groups)
        self.register_buffer("item_target", item_target)
        self.n_user_groups = 0 if user_groups is None else int(user_groups.max()) + 1
        self.adversary = (
            AttributeAdversary(dim, self.n_user_groups, adversary_objective) if kind == "adversarial" else None
        )
        self.last_adversary_accuracy = float("nan")

    @classmethod
    def build(
        cls, kind: FairnessKind, weight: float, *, adversary_objective: AdversaryObjective = "mean_matching", **tensors
    ) -> "FairnessRegulariser | None":
        """The regulariser, or ``None`` when ``kind="none"`` or ``weight == 0`` (checks all three settings)."""
        if kind not in FAIRNESS_KINDS:
            raise ValueError(_BAD_KIND.format(FAIRNESS_KINDS, kind))
        if not (np.isfinite(weight) and weight >= 0):
            raise ValueError(_BAD_WEIGHT.format(weight))
        if adversary_objective not in ADVERSARY_OBJECTIVES:
            raise ValueError(_BAD_OBJECTIVE.format(ADVERSARY_OBJECTIVES, adversary_objective))
        if kind == "none" or weight == 0:
            return None
        return cls(kind, weight, adversary_objective=adversary_objective, **tensors)

    @classmethod
    def for_dataset(
        cls,
        kind: FairnessKind,
        weight: float,
        dataset: Dataset,
        *,
        user_attribute: str = "gender",
        item_attribute: str = "provider",
        dim: int | None = None,
        adversary_objective: AdversaryObjective = "mean_matching",
    ) -> "FairnessRegulariser | None":
        """:meth:`build` with group codes read from ``dataset`` (rows in ``dataset.users`` / ``.items`` order).

        User groups are the values of ``user_attribute`` (``"unknown"`` is left out of the
        comparison); item groups the values of ``item_attribute``, with their catalogue shares
        as exposure targets. Columns are read only for the term that needs them.

        >>> from fairaudit.data import Dataset
        >>> users = pd.DataFrame({"user_id": ["a", "b", "c"], "gender": ["F", "M", "unknown"]})
        >>> data = Dataset(pd.DataFrame(columns=["user_id", "item_id"]), users, pd.DataFrame())
        >>> FairnessRegulariser.for_dataset("difference", 1.0, data).user_groups.tolist()
        [0, 1, -1]
        """
        if kind not in FAIRNESS_KINDS:
            raise ValueError(_BAD_KIND.format(FAIRNESS_KINDS, kind))
        if kind == "none" or weight == 0:
            return cls.build(kind, weight, adversary_objective=adversary_objective)
        tensors: dict[str, Any] = {}
        if kind in ("difference", "adversarial"):
            values = _column(dataset.users, user_attribute, "users")
            codes, _ = pd.factorize(values.where(values != UNKNOWN), sort=True)
            tensors.update(user_groups=torch.as_tensor(codes, dtype=torch.int64), dim=dim)
        else:
            codes, groups = pd.factorize(_column(dataset.items, item_attribute, "items"), sort=True)
            shares = np.bincount(codes, minlength=len(groups)) / len(codes)
            tensors.update(item_groups=torch.as_tensor(codes, dtype=torch.int64), item_target=torch.as_tensor(shares))
        return cls.build(kind, weight, adversary_objective=adversary_objective, **tensors)

    def forward(
        self,
        *,
        users: torch.Tensor,
        items: torch.Tensor | None = None,
        logits: torch.Tensor | None = None,
        losses: torch.Tensor | None = None,
        user_vectors: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``lambda * F`` for one batch (plus the adversary's own classifier loss for ``adversarial``).

        Parameters
        ----------
        users : Tensor (B,)
            Model positions of the batch's users.
        items : Tensor (C,)
            Model positions of the candidate items (columns of ``logits``); ``exposure``.
        logits : Tensor (B, C)
            Scores of users for candidates; ``exposure``.
        losses : Tensor (B,)
            Per-example training loss; ``difference``.
        user_vectors : Tensor (B, D)
            User representations; ``adversarial``.
        """
        if self.kind == "difference":
            term = group_difference(losses, self.user_groups[users], self.n_user_groups)
        elif self.kind == "exposure":
            term = exposure_divergence(logits, self.item_groups[items], self.item_target)
        else:
            classifier, term, self.last_adversary_accuracy = self.adversary.loss(user_vectors, self.user_groups[users])
            return classifier + self.weight * term
        return self.weight * term


def _column(table: pd.DataFrame, column: str, name: str) -> pd.Series:
    if column not in table.columns:
        raise ValueError(_NO_COLUMN.format(name, column, [c for c in table.columns if not c.endswith("_id")]))
    return table[column].astype(str)


def attribute_scores(
    vectors: np.ndarray, labels: np.ndarray, *, folds: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold class probabilities of a logistic regression predicting ``labels`` from ``vectors``.

    Stratified ``folds``: every user is scored by a classifier that never saw them. Returns the
    probabilities (users x classes) and the classes (sorted, the columns' order).

    >>> p, classes = attribute_scores(np.r_[np.zeros((6, 1)), np.ones((6, 1))], np.repeat(["F", "M"], 6))
    >>> classes.tolist(), bool((p.argmax(1) == np.repeat([0, 1], 6)).all())
    (['F', 'M'], True)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    labels = np.asarray(labels)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probabilities = cross_val_predict(
        LogisticRegression(max_iter=1000), np.asarray(vectors, dtype=float), labels, cv=cv, method="predict_proba"
    )  # fmt: skip
    return probabilities, np.unique(labels)


def attribute_recovery(vectors: np.ndarray, labels: np.ndarray, *, folds: int = 3, seed: int = 0) -> np.ndarray:
    """Per user: 1.0 when a classifier that never saw the user recovers their attribute from their vector, else 0.0.

    The most probable class of :func:`attribute_scores` (out-of-fold logistic regression), so the
    mean is the cross-validated accuracy and per-user values can be bootstrapped and compared in pairs.

    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 30)
    >>> float(attribute_recovery(rng.normal(size=(60, 2)) + labels[:, None] * 4, labels).mean())
    1.0
    """
    probabilities, classes = attribute_scores(vectors, labels, folds=folds, seed=seed)
    return (classes[probabilities.argmax(axis=1)] == np.asarray(labels)).astype(float)


def rank_auc(
    scores: np.ndarray,
    positive: np.ndarray,
    weights: np.ndarray | None = None,
    units: np.ndarray | None = None,
    *,
    max_elements: int | None = None,
) -> np.ndarray:
    """Area under the ROC curve of ``scores`` for the ``positive`` rows (Mann-Whitney, ties count 1/2).

    ``weights`` (rounds x units, e.g. bootstrap count rows) gives one AUC per row. Row ``i`` of
    ``scores`` belongs to unit ``units[i]`` (default: every row its own unit) and counts
    ``weights[r, units[i]]`` times, so a resampled user brings all their rows. Without ``weights``,
    one AUC over the rows as they are. NaN where a round has no positive or no negative weight.
    ``AUC = sum_v P_v (N_{<v} + N_v / 2) / (sum P sum N)`` over the distinct scores ``v``, with
    ``P_v``/``N_v`` the weighted positive and negative counts at ``v`` (a units x values histogram
    times the weights); at most ``max_elements`` (rounds x distinct values) entries at a time.

    >>> float(rank_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True]))[0])
    0.75
    >>> rank_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True]),
    ...          np.array([[1, 0, 1, 1], [0, 1, 1, 0]])).tolist()
    [1.0, 0.0]
    >>> rank_auc(np.array([2.0, 1.0, 0.0]), np.array([True, False, False]), np.array([[1, 2]]), np.array([0, 1, 1]))
    array([1.])
    """
    import scipy.sparse as sp

    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    units = np.arange(len(scores)) if units is None else np.asarray(units)
    weights = np.ones((1, len(scores))) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    uniques, bins = np.unique(scores, return_inverse=True)
    shape = (weights.shape[1], len(uniques))
    pos_hist = sp.csc_matrix((positive.astype(float), (units, bins)), shape=shape)
    neg_hist = sp.csc_matrix(((~positive).astype(float), (units, bins)), shape=shape)
    out = np.empty(weights.shape[0])
    step = weights.shape[0] if max_elements is None else max(1, max_elements // max(len(uniques), 1))
    for lo in range(0, weights.shape[0], step):
        w = weights[lo : lo + step]
        pos, neg = (pos_hist.T @ w.T).T, (neg_hist.T @ w.T).T  # (rounds, distinct scores)
        below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each score
        total = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo : lo + step] = np.where(total > 0, (pos * (below + 0.5 * neg)).sum(axis=1) / total, np.nan)
    return out


def attribute_auc(
    probabilities: np.ndarray, classes: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Macro one-vs-rest AUC of :func:`attribute_scores`' probabilities (0.5 = no better than chance).

    For two classes this is the ordinary AUC; for more, the unweighted mean over classes of each
    class's AUC against the rest (scikit-learn's ``roc_auc_score(multi_class="ovr")``). ``weights``
    as in :func:`rank_auc` (one AUC per row).

    >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    >>> float(attribute_auc(p, np.array(["F", "M"]), np.array(["F", "F", "M", "M"]))[0])
    0.75
    """
    labels = np.asarray(labels)
    per_class = [rank_auc(probabilities[:, j], labels == c, weights) for j, c in enumerate(classes)]
    return np.mean(per_class, axis=0)


def attribute_leakage(vectors: np.ndarray, labels: np.ndarray, *, folds: int = 3, seed: int = 0) -> dict[str, float]:
    """How well a fresh classifier recovers an attribute from user vectors, vs. always guessing the majority.

    ``accuracy`` is the mean of :func:`attribute_recovery`, ``majority`` the majority-class rate,
    and ``leakage = accuracy - majority`` is near 0 when the vectors carry no information about
    the attribute; ``auc`` (:func:`attribute_auc` of the same out-of-fold probabilities) is near 0.5 then.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 50)
    >>> out = attribute_leakage(rng.normal(size=(100, 3)) + labels[:, None] * 3, labels)
    >>> out["accuracy"] > 0.9, out["majority"], out["auc"] > 0.95
    (True, 0.5, True)
    """
    labels = np.asarray(labels)
    majority = float(np.unique(labels, return_counts=True)[1].max() / len(labels))
    probabilities, classes = attribute_scores(vectors, labels, folds=folds, seed=seed)
    accuracy = float((classes[probabilities.argmax(axis=1)] == labels).mean())
    auc = float(attribute_auc(probabilities, classes, labels)[0])
    return {"accuracy": accuracy, "majority": majority, "leakage": accuracy - majority, "auc": auc}
