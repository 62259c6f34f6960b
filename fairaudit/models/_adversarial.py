"""Perturbations of learned user and item vectors: FGSM/PGD attacks, noise baselines and APR training.

A model with learned vectors scores ``s_ui = u . v_i + b_i``: the LLM two-tower model (``u`` the user
tower's output, ``v_i``/``b_i`` the item tower's) and matrix factorisation (factors, no bias).
:func:`model_vectors` reads them without touching the model; :func:`perturb_vectors` moves them
inside an L2 ball of radius ``epsilon x`` (mean norm of the perturbed side's vectors), per vector:

- ``"fgsm"``: one step to the ball's surface along the normalised gradient of the ranking loss
  (the L2 fast gradient method used by APR, He et al. SIGIR 2018);
- ``"pgd"``: ``steps`` normalised gradient steps of size ``2.5 epsilon / steps`` (Madry et al. 2018),
  each projected back into the ball;
- ``"gaussian"`` / ``"sign"``: random directions (Gaussian, or uniform random signs per coordinate)
  scaled to the ball's surface, i.e. noise of the same norm as FGSM (and at least PGD's).

The loss the attacker maximises is the model's softmax ranking loss (:func:`softmax_ranking_loss`)
with each user's clean top-``k`` list as the positives and their training items masked, as at
recommendation time: an untargeted white-box attack that pushes what the model would show out of
the list. (Training items as positives move little: recommendations exclude them, and the loss's
gradient then pulls the user toward the items already on top.) It never sees the test items. :func:`attacked_model` wraps the perturbed
vectors as a model the audit engine can audit; its scores are the clean model's plus the exact
correction ``du . (v + dv) + u . dv``, so a zero perturbation gives bit-identical scores.

Adversarial Personalized Ranking (APR) training adds ``weight x loss(u + du, v + dv)`` with ``du, dv``
the FGSM perturbations of the current batch (treated as constants): :func:`apr_loss`, called by the
LLM recommender where it composes its loss (``adv_epsilon``, ``adv_weight``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
import torch

from fairaudit._choices import PGD_STEPS, SIDES, Side
from fairaudit.models._base import Recommender
from fairaudit.models._external import ExternalRecommender

Perturbation = Literal["fgsm", "pgd", "gaussian", "sign"]
PERTURBATIONS: tuple[str, ...] = get_args(Perturbation)
#: PGD's total travel (step size = PGD_TRAVEL x epsilon / PGD_STEPS), as in Madry et al.'s 2.5 rule.
PGD_TRAVEL = 2.5
#: Length of the clean list whose items the attack pushes down.
ATTACK_K = 10
#: Users per chunk when the attack's gradients are computed (memory: chunk x items floats).
ATTACK_CHUNK = 1024

_NO_VECTORS = (
    "Model kind '{0}' has no learned user and item vectors FairAudit can perturb; representation attacks need "
    "the LLM recommender ('llm') or matrix factorisation ('mf'); shilling attacks work on every kind"
)
_BAD_PERTURBATION = "perturbation must be one of {0}, got {1!r}"
_BAD_SIDE = "side must be one of {0}, got {1!r}"
_BAD_EPSILON = "epsilon must be a finite number >= 0, got {0!r}"


@dataclass(frozen=True)
class Vectors:
    """Learned vectors of a model: ``users`` (n_users x d), ``items`` (n_items x d), item ``bias`` (n_items)."""

    users: torch.Tensor
    items: torch.Tensor
    bias: torch.Tensor


def model_vectors(model: Recommender) -> Vectors:
    """The user and item vectors whose dot product (plus item bias) is ``model``'s score.

    >>> import pandas as pd
    >>> from fairaudit.data import Dataset, Split
    >>> from fairaudit.models import create_model
    >>> inter = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"]}), pd.DataFrame({"item_id": ["x", "y"], "title": ["X", "Y"]}))
    >>> model = create_model("mf", factors=2, iterations=2, device="cpu").fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> tuple(model_vectors(model).users.shape)
    (2, 2)
    """
    model._check_fitted()
    if model.kind == "llm":
        with torch.no_grad():
            items, bias, _ = model._item_side()
            users = torch.from_numpy(model.user_vectors(model.user_ids_.tolist()))
        return Vectors(users.float(), items.float(), bias.float())
    users, items = getattr(model, "user_factors_", None), getattr(model, "item_factors_", None)
    if users is None or items is None:
        raise ValueError(_NO_VECTORS.format(model.kind))
    users, items = torch.as_tensor(np.asarray(users)).float(), torch.as_tensor(np.asarray(items)).float()
    return Vectors(users, items, torch.zeros(len(items)))


def softmax_user_losses(
    logits: torch.Tensor, targets: torch.Tensor, excluded: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities and per-user losses ``-mean_{i in targets} log softmax(logits)_i`` (0 without targets).

    Free of data-dependent control flow, so ``torch.func.vmap`` can take per-user gradients of it (DP-SGD).

    >>> round(float(softmax_user_losses(torch.zeros(1, 4), torch.tensor([[1.0, 0, 0, 0]]))[1][0]), 4)
    1.3863
    """
    logits = logits.float()
    if excluded is not None:
        logits = logits.masked_fill(excluded, -1e9)
    logp = torch.log_softmax(logits, dim=1)
    return logp, -(logp * targets).sum(1) / targets.sum(1).clamp_min(1)


def softmax_ranking_terms(
    logits: torch.Tensor, targets: torch.Tensor, excluded: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The softmax ranking loss and its parts: ``(loss, log-probabilities, per-user losses)``.

    Per user, ``-mean_{i in targets} log softmax(logits)_i`` with excluded items masked; the loss is the
    mean over users with targets (a zero that keeps the graph when none has). The LLM recommender
    trains on it (its fairness terms read the parts) and the attacks maximise it.

    >>> loss, logp, per_user = softmax_ranking_terms(torch.zeros(1, 4), torch.tensor([[1.0, 0, 0, 0]]))
    >>> round(float(loss), 4), tuple(logp.shape), round(float(per_user[0]), 4)  # log 4
    (1.3863, (1, 4), 1.3863)
    """
    logp, per_user = softmax_user_losses(logits, targets, excluded)
    rows = targets.sum(1) > 0
    loss = per_user[rows].mean() if bool(rows.any()) else logp.sum() * 0.0
    return loss, logp, per_user


def softmax_ranking_loss(logits: torch.Tensor, targets: torch.Tensor, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over users with targets of ``-mean_{i in targets} log softmax(logits)_i`` (excluded items masked).

    >>> round(float(softmax_ranking_loss(torch.zeros(1, 4), torch.tensor([[1.0, 0, 0, 0]]))), 4)  # log 4
    1.3863
    """
    return softmax_ranking_terms(logits, targets, excluded)[0]


def _unit_rows(gradient: torch.Tensor) -> torch.Tensor:
    """Each row scaled to norm 1 (zero rows stay zero)."""
    return gradient / gradient.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _radius(vectors: torch.Tensor, epsilon: float) -> float:
    """The ball's radius: ``epsilon`` times the mean L2 norm of ``vectors``."""
    return float(epsilon) * float(vectors.detach().norm(dim=1).mean()) if len(vectors) else 0.0


def apr_loss(
    user: torch.Tensor,
    items: torch.Tensor,
    logits: torch.Tensor,
    targets: torch.Tensor,
    excluded: torch.Tensor | None,
    epsilon: float,
) -> torch.Tensor:
    """APR's adversarial term: the ranking loss at the batch's FGSM-perturbed vectors.

    ``logits = user @ items.T + rest`` (``rest``: biases, logQ corrections). The loss gradient with
    respect to ``logits`` (``G``) gives the vectors' gradients ``G items`` and ``G^T user``; each row
    moves ``epsilon x`` (mean norm of its side) along its normalised gradient, the perturbation is a
    constant, and the returned loss is differentiable in the model's parameters:
    ``loss(logits + du (items + dv)^T + user dv^T)``.

    >>> user, items = torch.ones(2, 3, requires_grad=True), torch.eye(3, requires_grad=True)
    >>> targets = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    >>> logits = user @ items.T
    >>> bool(apr_loss(user, items, logits, targets, None, 0.5) > softmax_ranking_loss(logits, targets))
    True
    """
    clean = softmax_ranking_loss(logits, targets, excluded)
    (grad,) = torch.autograd.grad(clean, logits, retain_graph=True)
    grad = grad.float()
    with torch.no_grad():
        d_user = _radius(user, epsilon) * _unit_rows(grad @ items.detach().float())
        d_items = _radius(items, epsilon) * _unit_rows(grad.T @ user.detach().float())
    shifted = logits.float() + d_user @ (items.float() + d_items).T + user.float() @ d_items.T
    return softmax_ranking_loss(shifted, targets, excluded)


def _gradients(
    model: Recommender, base: Vectors, d_user: torch.Tensor, d_items: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of the summed per-user attack loss w.r.t. the user and item perturbations (chunked over users).

    Each user's positives are the ``k`` items the clean model recommends them (their training items
    masked, as at recommendation time); the loss is the softmax ranking loss of those items.
    """
    d_user = d_user.clone().requires_grad_(True)
    d_items = d_items.clone().requires_grad_(True)
    items = base.items + d_items
    n_users = len(base.users)
    for start in range(0, n_users, ATTACK_CHUNK):
        rows = np.arange(start, min(start + ATTACK_CHUNK, n_users))
        seen = model.history_matrix(rows) > 0
        clean = (base.users[rows] @ base.items.T + base.bias).masked_fill(seen, float("-inf"))
        top = torch.topk(clean, min(k, clean.shape[1]), dim=1).indices
        targets = torch.zeros_like(clean).scatter_(1, top, 1.0) * ~seen
        logits = (base.users[rows] + d_user[rows]) @ items.T + base.bias
        # Sum over users (not mean): each user's perturbation follows its own loss, items follow all users.
        loss = softmax_ranking_loss(logits, targets, seen) * float((targets.sum(1) > 0).sum())
        loss.backward()
    return d_user.grad.detach(), d_items.grad.detach()


def perturb_vectors(
    model: Recommender,
    *,
    perturbation: Perturbation,
    epsilon: float,
    side: Side = "both",
    steps: int = PGD_STEPS,
    k: int = ATTACK_K,
    seed: int = 0,
) -> tuple[Vectors, Vectors]:
    """The clean vectors and the perturbations ``(du, dv)`` (as a :class:`Vectors` with zero bias).

    ``epsilon`` is relative: each perturbed vector moves at most ``epsilon x`` the mean L2 norm of
    its side's vectors (users or items); ``epsilon = 0`` gives exact zeros. ``side`` picks which
    vectors move. Random perturbations are seeded; FGSM and PGD are deterministic.

    >>> import pandas as pd
    >>> from fairaudit.data import Dataset, Split
    >>> from fairaudit.models import create_model
    >>> inter = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"]}), pd.DataFrame({"item_id": ["x", "y"], "title": ["X", "Y"]}))
    >>> model = create_model("mf", factors=2, iterations=2, device="cpu").fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> clean, delta = perturb_vectors(model, perturbation="sign", epsilon=0.0)
    >>> float(delta.users.abs().sum()), float(delta.items.abs().sum())
    (0.0, 0.0)
    """
    if perturbation not in PERTURBATIONS:
        raise ValueError(_BAD_PERTURBATION.format(PERTURBATIONS, perturbation))
    if side not in SIDES:
        raise ValueError(_BAD_SIDE.format(SIDES, side))
    if not (isinstance(epsilon, (int, float)) and np.isfinite(epsilon) and epsilon >= 0):
        raise ValueError(_BAD_EPSILON.format(epsilon))
    base = model_vectors(model)
    radius_u = _radius(base.users, epsilon) if side in ("user", "both") else 0.0
    radius_v = _radius(base.items, epsilon) if side in ("item", "both") else 0.0
    d_user, d_items = torch.zeros_like(base.users), torch.zeros_like(base.items)
    if radius_u > 0 or radius_v > 0:
        if perturbation in ("gaussian", "sign"):
            gen = torch.Generator().manual_seed(seed)
            draw_u = torch.randn(base.users.shape, generator=gen)
            draw_v = torch.randn(base.items.shape, generator=gen)
            if perturbation == "sign":
                draw_u, draw_v = torch.sign(draw_u), torch.sign(draw_v)
            d_user, d_items = radius_u * _unit_rows(draw_u), radius_v * _unit_rows(draw_v)
        else:
            n_steps = 1 if perturbation == "fgsm" else int(steps)
            travel = 1.0 if perturbation == "fgsm" else PGD_TRAVEL / n_steps
            for _ in range(n_steps):
                grad_u, grad_v = _gradients(model, base, d_user, d_items, k)
                d_user = _project(d_user + travel * radius_u * _unit_rows(grad_u), radius_u)
                d_items = _project(d_items + travel * radius_v * _unit_rows(grad_v), radius_v)
    return base, Vectors(d_user, d_items, torch.zeros_like(base.bias))


def _project(delta: torch.Tensor, radius: float) -> torch.Tensor:
    """Each row of ``delta`` pulled back into the L2 ball of ``radius``."""
    norms = delta.norm(dim=1, keepdim=True)
    return delta * torch.clamp(radius / norms.clamp_min(1e-12), max=1.0)


def attacked_model(
    model: Recommender,
    *,
    perturbation: Perturbation,
    epsilon: float,
    side: Side = "both",
    steps: int = PGD_STEPS,
    k: int = ATTACK_K,
    seed: int = 0,
    name: str | None = None,
) -> ExternalRecommender:
    """``model`` with perturbed vectors, as an (unfitted) model to ``fit(dataset, split)`` and audit.

    Scores are ``model.score`` plus ``du (v + dv)^T + u dv^T``: the dot products of the perturbed
    vectors, bit-identical to the clean scores when the perturbation is zero (``epsilon = 0``).
    Fitting it records the same data and split as ``model`` (nothing is trained).
    """
    base, delta = perturb_vectors(
        model, perturbation=perturbation, epsilon=epsilon, side=side, steps=steps, k=k, seed=seed
    )
    moved_items = base.items + delta.items
    user_index, item_index = pd.Index(model.user_ids_), pd.Index(model.item_ids_)

    def score(user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        users, items = user_index.get_indexer(user_ids), item_index.get_indexer(item_ids)
        clean = torch.as_tensor(model.score(list(user_ids), list(item_ids)))
        u, du = base.users[users], delta.users[users]
        correction = du @ moved_items[items].T + u @ delta.items[items].T
        return (clean + correction).numpy()

    label = name or f"{perturbation}@{epsilon:g}"
    return ExternalRecommender(
        score, users=model.user_ids_.tolist(), items=model.item_ids_.tolist(), name=label,
        description=f"{model.kind} with {perturbation} perturbation of {side} vectors, epsilon {epsilon:g}",
    )  # fmt: skip
