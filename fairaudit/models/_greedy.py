"""Greedy list construction shared by the re-rankers (pure torch, vectorised over users).

Each function receives, for a chunk of ``U`` users, the ``N`` candidates of the wrapped model
(in the wrapped model's rank order) and fills ``k`` positions one at a time: at every
position it scores all remaining candidates of all users at once and takes the best
(``argmax`` returns the first maximum, so ties keep the wrapped model's order). The loop runs
over the ``k`` positions, never over users. With ``strength=0`` the objective is the
relevance alone and the result is exactly the candidates' original order.
"""

from __future__ import annotations

import torch

#: Steck's smoothing of the recommended distribution, ``q~ = (1 - alpha) q + alpha p``.
KL_SMOOTHING = 0.01

_BAD_STRENGTH = "strength must be within [0, 1], got {0}"


def check_strength(strength: float) -> float:
    """Return ``strength`` as a float, refusing values outside ``[0, 1]``.

    >>> check_strength(0.5)
    0.5
    """
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(_BAD_STRENGTH.format(strength))
    return strength


def normalise_relevance(scores: torch.Tensor) -> torch.Tensor:
    """Min-max scale each row's finite scores to ``[0, 1]`` (float32); ``-inf`` stays ``-inf``.

    A row whose finite scores are all equal becomes 0. The scaling is monotone, so the order
    of the scores is kept (distinct scores may tie after rounding; the greedy steps then keep
    the given order, since ``argmax`` returns the first maximum).

    >>> normalise_relevance(torch.tensor([[3.0, 1.0, 2.0, float("-inf")]])).tolist()
    [[1.0, 0.0, 0.5, -inf]]
    """
    scores = scores.float()
    finite = torch.isfinite(scores)
    low = torch.where(finite, scores, torch.inf).amin(dim=1, keepdim=True)
    high = torch.where(finite, scores, -torch.inf).amax(dim=1, keepdim=True)
    span = high - low
    scaled = torch.where(span > 0, (scores - low) / span, 0.0)
    return torch.where(finite, scaled, -torch.inf)


def _pick(gain: torch.Tensor, available: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best available candidate per row and whether one was left."""
    gain = gain.masked_fill(~available, -torch.inf)
    best = gain.argmax(dim=1)
    rows = torch.arange(gain.shape[0], device=gain.device)
    return best, available[rows, best]


def greedy_kl_rerank(
    relevance: torch.Tensor,
    item_dist: torch.Tensor,
    target: torch.Tensor,
    *,
    strength: float,
    k: int,
    weights: torch.Tensor | None = None,
    alpha: float = KL_SMOOTHING,
) -> torch.Tensor:
    """Calibration-style greedy re-ranking (Steck, RecSys 2018, eq. 4).

    At each position the candidate ``i`` maximising
    ``(1 - strength) * rel(i) - strength * KL(p || q~(S + i))`` is appended to the list ``S``, where
    ``q(g) = sum_{j in S} w_r(j) d_j(g) / sum_{j in S} w_r(j)`` is the position-weighted group
    distribution of the list, ``q~ = (1 - alpha) q + alpha p`` and ``KL(p||q~) = sum_g p log(p/q~)``.

    Parameters
    ----------
    relevance : Tensor (U, N)
        Candidate relevance in the wrapped model's order; ``-inf`` marks padding.
    item_dist : Tensor (U, N, G)
        Group distribution ``d_i`` of each candidate (one-hot for a categorical attribute,
        ``1/|genres(i)|`` per genre for genres); zeros for padding.
    target : Tensor (U, G) or (G,)
        Target distribution ``p`` per user (e.g. the genre mix of their history, or the
        catalogue share of each item group).
    strength : float
        Trade-off ``lambda`` in ``[0, 1]``; 0 keeps the original order exactly.
    k : int
        Positions to fill.
    weights : Tensor (k,), optional
        Position weights ``w_r`` (uniform by default; DCG weights ``1/log2(r+1)`` match the
        audit's position-weighted exposure).
    alpha : float
        Smoothing of ``q``.

    Returns
    -------
    Tensor (U, min(k, N)) of int64
        Chosen candidate positions, ``-1`` where no candidate was left.

    Examples
    --------
    One user, two groups, the target asks for half of each; the top two are both group 0:

    >>> rel = torch.tensor([[1.0, 0.9, 0.1]])
    >>> dist = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    >>> greedy_kl_rerank(rel, dist, torch.tensor([0.5, 0.5]), strength=0.0, k=2).tolist()
    [[0, 1]]
    >>> greedy_kl_rerank(rel, dist, torch.tensor([0.5, 0.5]), strength=0.5, k=2).tolist()
    [[0, 2]]
    """
    strength = check_strength(strength)
    n_users, n_cand, n_groups = item_dist.shape
    k = min(int(k), n_cand)
    dtype = relevance.dtype  # float32 from normalise_relevance; float64 inputs stay float64
    item_dist = item_dist.to(dtype)
    target = target.to(dtype).expand(n_users, n_groups)
    weights = torch.ones(k, dtype=dtype) if weights is None else weights.to(dtype)
    available = torch.isfinite(relevance)
    rows = torch.arange(n_users, device=relevance.device)
    mass = torch.zeros(n_users, n_groups, dtype=dtype, device=relevance.device)
    total = 0.0
    neg_entropy = torch.special.xlogy(target, target).sum(dim=1, keepdim=True)
    chosen = torch.full((n_users, k), -1, dtype=torch.int64, device=relevance.device)
    tiny = torch.finfo(dtype).tiny  # q~ is 0 only where p is 0, whose term p log q~ must stay 0
    for pos in range(k):
        w = float(weights[pos])
        # q~ = (1 - alpha) (mass + w d_i) / (total + w) + alpha p, in place on one (U, N, G) buffer.
        q = torch.addcmul(mass[:, None, :], item_dist, torch.tensor(w, dtype=dtype))
        q.mul_((1.0 - alpha) / (total + w)).add_(alpha * target[:, None, :]).clamp_min_(tiny).log_()
        kl = neg_entropy - torch.bmm(q, target[:, :, None]).squeeze(2)
        best, found = _pick((1.0 - strength) * relevance - strength * kl, available)
        chosen[:, pos] = torch.where(found, best, -1)
        mass += torch.where(found[:, None], w * item_dist[rows, best], 0.0)
        available[rows, best] = False
        total += w
    return chosen


def greedy_mmr_rerank(
    relevance: torch.Tensor,
    embeddings: torch.Tensor,
    *,
    strength: float,
    k: int,
) -> torch.Tensor:
    """Maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998).

    At each position the candidate maximising ``(1 - strength) * rel(i) - strength * max_{j in S} sim(i, j)``
    is appended to ``S`` (the similarity term is 0 while ``S`` is empty); ``sim`` is the dot
    product of the (L2-normalised) ``embeddings``, i.e. cosine similarity.

    Parameters
    ----------
    relevance : Tensor (U, N)
        Candidate relevance in the wrapped model's order; ``-inf`` marks padding.
    embeddings : Tensor (U, N, D)
        Unit-length item vectors of the candidates.
    strength : float
        Trade-off ``lambda`` in ``[0, 1]``; 0 keeps the original order exactly.
    k : int
        Positions to fill.

    Returns
    -------
    Tensor (U, min(k, N)) of int64
        Chosen candidate positions, ``-1`` where no candidate was left.

    Examples
    --------
    Candidates 0 and 1 are near-duplicates; diversity promotes candidate 2:

    >>> rel = torch.tensor([[1.0, 0.95, 0.5]])
    >>> emb = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    >>> greedy_mmr_rerank(rel, emb, strength=0.0, k=2).tolist()
    [[0, 1]]
    >>> greedy_mmr_rerank(rel, emb, strength=0.5, k=2).tolist()
    [[0, 2]]
    """
    strength = check_strength(strength)
    n_users, n_cand, _ = embeddings.shape
    k = min(int(k), n_cand)
    embeddings = embeddings.to(relevance.dtype)
    similarity = embeddings @ embeddings.transpose(1, 2)
    available = torch.isfinite(relevance)
    rows = torch.arange(n_users, device=relevance.device)
    # Similarity to the closest chosen item; 0 while nothing is chosen.
    max_sim = torch.zeros(n_users, n_cand, dtype=relevance.dtype, device=relevance.device)
    chosen = torch.full((n_users, k), -1, dtype=torch.int64, device=relevance.device)
    for pos in range(k):
        best, found = _pick((1.0 - strength) * relevance - strength * max_sim, available)
        chosen[:, pos] = torch.where(found, best, -1)
        new_sim = similarity[rows, :, best]
        max_sim = new_sim if pos == 0 else torch.maximum(max_sim, new_sim)
        available[rows, best] = False
    return chosen
