"""Differentially private training (DP-SGD) of a model's trainable parameters, with Opacus.

The privacy unit is the **user**: one sample is a user's whole row of training interactions, so
the guarantee bounds how much the learned weights can change when one user (all of their
interactions) is added or removed. Each step draws a Poisson sample of the users (each user
independently with probability ``sample_rate``, the sampling the RDP accountant assumes), computes
every sampled user's gradient separately (``torch.func.vmap`` over ``torch.func.grad``: the item
tower is shared by the whole batch, so Opacus' per-layer hooks cannot attribute its gradient to
users), and hands the per-user gradients to Opacus' ``DPOptimizer``, which clips each to
``max_grad_norm``, adds Gaussian noise of standard deviation ``noise_multiplier x max_grad_norm``
from a seeded generator and averages over the expected batch size. The noise multiplier is
calibrated before training so that Opacus' RDP accountant spends at most ``epsilon`` (at ``delta``)
over all the steps; the accountant then records every step taken, and its epsilon is what the
model reports as spent.

What is not covered: the saved model folder also holds each user's training history (the model
needs it to recommend and to exclude seen items) and per-user parameters that DP training leaves
at their initial value; the guarantee covers the learned weights only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from fairaudit._choices import LLM_DEFAULTS

#: Opacus accountant calibrating the noise and measuring the epsilon spent.
ACCOUNTANT = "rdp"
#: Bytes of per-user gradients held at once; users are processed in chunks that fit.
PER_SAMPLE_BYTES = 256 * 2**20
#: Per-user clipping norm: median per-user gradient norm of the LLM on the sample at the start of training ~0.8.
DEFAULT_MAX_GRAD_NORM = float(LLM_DEFAULTS["dp_max_grad_norm"])

BAD_EPSILON = "dp_epsilon must be a number > 0 (None or inf: no differential privacy), got {0!r}"
BAD_DELTA = "dp_delta must be in (0, 1) (None: 1 / n_users^1.1), got {0!r}"
BAD_CLIP = "dp_max_grad_norm must be a number > 0, got {0!r}"
#: Raised when DP training is asked of a setting it cannot protect; never a silent non-private fallback.
DP_UNSUPPORTED = (
    "Differentially private training (dp_epsilon={0}) does not support {1}: {2}; remove that setting "
    "or train without dp_epsilon"
)
DP_KIND_UNSUPPORTED = (
    "Differentially private training is not available for model kind '{0}': {1}; "
    "use the LLM recommender (kind 'llm') with dp_epsilon, or train '{0}' without it"
)
#: Why each model kind has no DP training (the CLI and pages show it).
NO_DP_REASON = {
    "mf": "its factors are fitted by implicit's alternating least squares, which has no per-user gradients "
    "to clip (a DP variant would need a different solver)",
}
NO_DP_DEFAULT = "it has no gradient-trained parameters to clip and noise"


def dp_enabled(epsilon: float | None) -> bool:
    """Whether ``epsilon`` asks for DP training (None and inf do not).

    >>> dp_enabled(None), dp_enabled(float("inf")), dp_enabled(3)
    (False, False, True)
    """
    return epsilon is not None and not math.isinf(float(epsilon))


def check_dp_settings(epsilon: float | None, delta: float | None, max_grad_norm: float) -> None:
    """Refuse impossible DP parameters with a message naming the parameter.

    >>> check_dp_settings(3.0, None, 1.0)
    >>> check_dp_settings(0.0, None, 1.0)
    Traceback (most recent call last):
    ...
    ValueError: dp_epsilon must be a number > 0 (None or inf: no differential privacy), got 0.0
    """
    if epsilon is not None and (isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0):
        raise ValueError(BAD_EPSILON.format(epsilon))
    if delta is not None and (isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 < delta < 1):
        raise ValueError(BAD_DELTA.format(delta))
    if isinstance(max_grad_norm, bool) or not isinstance(max_grad_norm, (int, float)) or not max_grad_norm > 0:
        raise ValueError(BAD_CLIP.format(max_grad_norm))


def default_delta(n_units: int) -> float:
    """Default delta: ``1 / n^1.1`` for ``n`` privacy units (users), below the ``1/n`` at which an
    (epsilon, delta) guarantee would allow releasing one user's data outright.

    >>> f"{default_delta(1000):.2e}"
    '5.01e-04'
    """
    return 1.0 / max(int(n_units), 2) ** 1.1


def refuse_dp_kind(kind: str) -> ValueError:
    """The error for a model kind that cannot be trained with DP (``raise refuse_dp_kind("mf")``).

    >>> str(refuse_dp_kind("mf")).split(":")[0]
    "Differentially private training is not available for model kind 'mf'"
    """
    return ValueError(DP_KIND_UNSUPPORTED.format(kind, NO_DP_REASON.get(kind, NO_DP_DEFAULT)))


def privacy_record(model_or_config: Any) -> dict | None:
    """The DP record of a fitted model or of its ``config.json`` dict (``None``: no DP guarantee).

    >>> privacy_record({"kind": "llm", "privacy": {"epsilon_spent": 2.9}})
    {'epsilon_spent': 2.9}
    >>> privacy_record({"kind": "mf"}) is None
    True
    """
    if isinstance(model_or_config, Mapping):
        record = model_or_config.get("privacy")
    else:
        record = getattr(model_or_config, "privacy_", None)
    return dict(record) if record else None


def epsilon_spent(model_or_config: Any) -> float:
    """The epsilon a model spent (:func:`privacy_record`); ``inf`` for a model trained without DP.

    >>> epsilon_spent({"privacy": {"epsilon_spent": 2.5}}), epsilon_spent({"kind": "mf"})
    (2.5, inf)
    """
    record = privacy_record(model_or_config)
    return float(record["epsilon_spent"]) if record else math.inf


def privacy_summary(record: Mapping | None) -> str:
    """One line on a model's privacy, for printouts, pages and reports.

    >>> privacy_summary({"epsilon_spent": 2.97, "epsilon_target": 3, "delta": 2.3e-4, "max_grad_norm": 1.0})
    'DP-SGD, user-level: epsilon 2.970 spent (target 3), delta 2.3e-04, clipping norm 1'
    >>> privacy_summary(None)
    'no differential-privacy guarantee (trained without DP)'
    """
    if not record:
        return "no differential-privacy guarantee (trained without DP)"
    return (
        f"DP-SGD, user-level: epsilon {record['epsilon_spent']:.3f} spent (target {record['epsilon_target']:g}), "
        f"delta {record['delta']:.1e}, clipping norm {record['max_grad_norm']:g}"
    )


class DPSGD:
    """DP-SGD driver: Poisson batches of users, per-user clipped gradients, seeded noise, RDP accounting.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimiser of ``net``'s trainable parameters (wrapped in Opacus' ``DPOptimizer``).
    net : nn.Module
        The network; every parameter with ``requires_grad`` is trained privately (gets noise), the
        others are frozen.
    n_units : int
        Users with training interactions (the privacy units sampled from).
    batch_size, epochs : int
        Expected users per step and passes over the users: ``sample_rate = batch_size / n_units``,
        ``steps = epochs x round(1 / sample_rate)``.
    epsilon, delta, max_grad_norm : float
        Target epsilon, delta and per-user clipping norm.
    seed : int
        Seeds the noise (the batches are drawn from the caller's generator).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        net: nn.Module,
        *,
        n_units: int,
        batch_size: int,
        epochs: int,
        epsilon: float,
        delta: float | None,
        max_grad_norm: float,
        seed: int,
    ) -> None:
        from opacus.accountants import RDPAccountant
        from opacus.accountants.utils import get_noise_multiplier
        from opacus.optimizers import DPOptimizer

        self.net = net
        self.params = {name: p for name, p in net.named_parameters() if p.requires_grad}
        self.n_units = int(n_units)
        self.sample_rate = min(1.0, batch_size / max(self.n_units, 1))
        self.steps_per_epoch = max(1, round(1.0 / self.sample_rate))
        self.epochs = int(epochs)
        self.steps = self.epochs * self.steps_per_epoch
        self.epsilon_target = float(epsilon)
        self.delta = float(delta) if delta is not None else default_delta(self.n_units)
        self.max_grad_norm = float(max_grad_norm)
        self.noise_multiplier = float(
            get_noise_multiplier(
                target_epsilon=self.epsilon_target, target_delta=self.delta, sample_rate=self.sample_rate,
                steps=self.steps, accountant=ACCOUNTANT,
            )
        )  # fmt: skip
        device = next(iter(self.params.values())).device
        self.optimizer = DPOptimizer(
            optimizer, noise_multiplier=self.noise_multiplier, max_grad_norm=self.max_grad_norm,
            expected_batch_size=max(1, round(self.sample_rate * self.n_units)), loss_reduction="mean",
            generator=torch.Generator(device=device).manual_seed(int(seed)),
        )  # fmt: skip
        self.accountant = RDPAccountant()
        self.steps_taken = 0
        n_values = sum(p.numel() for p in self.params.values())
        self.chunk = max(1, PER_SAMPLE_BYTES // (4 * n_values))

    def batches(self, units: np.ndarray, generator: torch.Generator) -> list[np.ndarray]:
        """One epoch of Poisson-sampled batches of ``units`` (each unit in each batch with ``sample_rate``)."""
        draws = torch.rand(self.steps_per_epoch, len(units), generator=generator).numpy() < self.sample_rate
        return [units[row] for row in draws]

    def step(self, user_loss: Callable[..., torch.Tensor], rows: Sequence[torch.Tensor]) -> None:
        """One private step: the gradient of ``user_loss(*row)`` (one user's loss computed with ``net``) for
        each row of ``rows`` (tensors whose first dimension is the batch's users), clipped, summed, noised
        and applied."""
        from torch.func import functional_call, grad, vmap

        call = _Call(self.net, user_loss)

        def loss_of(params: dict[str, torch.Tensor], *row: torch.Tensor) -> torch.Tensor:
            return functional_call(call, {f"net.{name}": value for name, value in params.items()}, row)

        per_user = vmap(grad(loss_of), in_dims=(None, *[0] * len(rows)))
        n = len(rows[0])
        starts = list(range(0, n, self.chunk)) or [0]  # an empty Poisson batch still takes a (pure-noise) step
        detached = {name: p.detach() for name, p in self.params.items()}
        for i, start in enumerate(starts):
            self.optimizer.zero_grad(set_to_none=True)
            part = [r[start : start + self.chunk] for r in rows]
            grads = per_user(detached, *part) if n else {k: v.new_zeros((0, *v.shape)) for k, v in detached.items()}
            for name, p in self.params.items():
                p.grad_sample = grads[name]
            self.optimizer.signal_skip_step(do_skip=i < len(starts) - 1)
            self.optimizer.step()
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        self.steps_taken += 1

    def epsilon_spent(self) -> float:
        """Epsilon the accountant has recorded for the steps taken so far, at ``delta``."""
        return float(self.accountant.get_epsilon(delta=self.delta)) if self.steps_taken else 0.0

    def record(self, frozen: Sequence[str] = ()) -> dict:
        """The ``privacy`` record saved in ``config.json`` (see docs/privacy.md)."""
        from importlib.metadata import version

        return {
            "mechanism": "dp-sgd", "unit": "user", "epsilon_target": self.epsilon_target,
            "epsilon_spent": self.epsilon_spent(), "delta": self.delta, "max_grad_norm": self.max_grad_norm,
            "noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate,
            "steps": self.steps_taken, "epochs": self.epochs, "n_units": self.n_units,
            "accountant": ACCOUNTANT, "sampling": "poisson", "library": f"opacus {version('opacus')}",
            "dp_parameters": sorted(self.params), "frozen": sorted(frozen),
        }  # fmt: skip


class _Call(nn.Module):
    """``fn(*args)`` as the forward of a module holding ``net``, so ``functional_call`` can swap ``net``'s parameters."""

    def __init__(self, net: nn.Module, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.net = net
        self.fn = fn

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)
