"""Implicit-feedback matrix factorisation on the ``implicit`` library: ALS (Hu, Koren & Volinsky 2008) or BPR.

FairAudit keeps only the learned factors (safetensors, like every model); ``implicit``'s own
pickles are never written or read. Folders saved by the earlier hand-written ALS hold the same two
tensors and parameters, so they load and score unchanged.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp
import torch

from fairaudit._choices import ALGORITHMS, Algorithm
from fairaudit.data import Dataset, Split
from fairaudit.models._base import (
    Progress, ProgressCallback, Recommender, carry_rows, compute_threads, register, resolve_device,
)  # fmt: skip
from fairaudit.models._validation import (
    VALIDATION_FRACTION, EarlyStopping, Holdout, check_validation_settings, stopped_message,
)  # fmt: skip

_BAD_ALGORITHM = "algorithm must be one of {0}, got {1!r}"
_WARM_SHAPE = "warm_start has {0} factors per vector ({1}), this model {2} ({3}); warm-start from a model with the same factors and algorithm"


class _Stop(Exception):
    """Raised from the per-iteration callback to end training early."""


@register
class MFRecommender(Recommender):
    """Implicit matrix factorisation: user and item factors learned by ``implicit`` (ALS or BPR).

    Parameters
    ----------
    factors : int
        Latent dimension.
    alpha : float
        ALS: extra confidence of an observed interaction relative to an unobserved one
        (confidence ``1 + alpha``; ``implicit``'s own ``alpha`` is that confidence).
    reg : float
        L2 regularisation of both factor matrices.
    iterations : int
        ALS sweeps or BPR epochs (the most, with ``patience``); reported as epochs.
    cg_steps : int
        ALS conjugate-gradient steps per solve (CPU).
    algorithm : {"als", "bpr"}
        Weighted least squares over all pairs, or Bayesian personalised ranking (SGD on sampled
        pairs; deterministic with one thread only, as its CPU updates run lock-free in parallel).
    learning_rate : float
        BPR step size.
    patience : int or None
        Early stopping: hold out ``validation_fraction`` of each user's training interactions, stop
        when validation NDCG@10 has not improved for ``patience`` iterations, and refit on all the
        training interactions for the best number (recorded in ``validation_``). None: no
        validation, train ``iterations``.
    validation_fraction : float
        Per-user share of the training interactions used for validation.
    device : str
        ``"auto"`` (``implicit``'s CUDA path when CUDA is present), ``"cpu"`` or ``"cuda"``.
    seed : int
        Seeds the factor initialisation (and BPR's sampling).

    Items without training interactions keep zero factors: MF has no signal for them. Threads:
    :func:`fairaudit.models.set_threads` (``--threads``).

    Examples
    --------
    >>> import pandas as pd
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"]}),
    ...                pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]}))
    >>> model = MFRecommender(factors=2, iterations=3).fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> model.score(["a", "b"]).shape
    (2, 3)
    """

    kind = "mf"

    def __init__(
        self,
        factors: int = 16,
        alpha: float = 1.0,
        reg: float = 0.1,
        iterations: int = 15,
        cg_steps: int = 3,
        algorithm: Algorithm = "als",
        learning_rate: float = 0.01,
        patience: int | None = None,
        validation_fraction: float = VALIDATION_FRACTION,
        device: str = "auto",
        seed: int = 0,
    ) -> None:
        self.factors = factors
        self.alpha = alpha
        self.reg = reg
        self.iterations = iterations
        self.cg_steps = cg_steps
        self.algorithm = algorithm
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.seed = seed

    # ---- training ---------------------------------------------------------------------
    def _library_model(self, iterations: int, use_gpu: bool):
        import implicit

        common = {"factors": self.factors, "regularization": self.reg, "iterations": iterations,
                  "use_gpu": use_gpu, "random_state": np.random.default_rng(self.seed)}  # fmt: skip
        if not use_gpu:
            common["num_threads"] = compute_threads()
        if self.algorithm == "bpr":
            return implicit.bpr.BayesianPersonalizedRanking(learning_rate=self.learning_rate, **common)
        model = implicit.als.AlternatingLeastSquares(alpha=1.0 + self.alpha, calculate_training_loss=True, **common)
        if not use_gpu:
            model.cg_steps = self.cg_steps
        return model

    def _train(
        self,
        users: np.ndarray,
        items: np.ndarray,
        iterations: int,
        warm: tuple[torch.Tensor, torch.Tensor] | None,
        on_iteration,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Factors after ``iterations`` on the pairs ``(users, items)``; ``on_iteration(step, loss, factors)``."""
        from threadpoolctl import threadpool_limits

        use_gpu = resolve_device(self.device).type == "cuda"
        if use_gpu:
            import implicit.gpu

            use_gpu = implicit.gpu.HAS_CUDA
        n_users, n_items = len(self.user_ids_), len(self.item_ids_)
        matrix = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
        matrix.data[:] = 1.0
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            # implicit warns about a multi-threaded BLAS when built; its fit runs under the limit above.
            warnings.filterwarnings("ignore", message="OpenBLAS is configured", category=RuntimeWarning)
            model = self._library_model(iterations, use_gpu)
        if warm is not None:
            import implicit.gpu

            to_library = implicit.gpu.Matrix if use_gpu else (lambda array: array)
            model.user_factors = to_library(np.ascontiguousarray(warm[0].numpy(), dtype=np.float32))
            model.item_factors = to_library(np.ascontiguousarray(warm[1].numpy(), dtype=np.float32))
        nnz = max(matrix.nnz, 1)

        def current() -> tuple[torch.Tensor, torch.Tensor]:
            user_f, item_f = model.user_factors, model.item_factors
            if hasattr(user_f, "to_numpy"):  # implicit.gpu.Matrix
                user_f, item_f = user_f.to_numpy(), item_f.to_numpy()
            return torch.from_numpy(np.array(user_f, dtype=np.float32)), torch.from_numpy(np.array(item_f, dtype=np.float32))

        def callback(iteration: int, elapsed: float, *stats: Any) -> None:
            # ALS passes its training loss; BPR the numbers of correctly ordered and skipped samples.
            loss = (1.0 - stats[0] / nnz) if self.algorithm == "bpr" else float(stats[0] if stats[0] is not None else 0.0)
            on_iteration(iteration + 1, loss, current)

        with threadpool_limits(1, "blas"):  # implicit's advice: its own threads, single-threaded BLAS
            try:
                model.fit(matrix, show_progress=False, callback=callback)
            except _Stop:
                pass
        return current()

    def _fit(
        self,
        dataset: Dataset,
        split: Split,
        train_users: np.ndarray,
        train_items: np.ndarray,
        progress: ProgressCallback | None,
    ) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(_BAD_ALGORITHM.format(ALGORITHMS, self.algorithm))
        check_validation_settings(self.patience, self.validation_fraction)
        warm = self._warm_factors()
        start = time.perf_counter()
        total = self.iterations

        def report(step: int, loss: float, note: str = "") -> None:
            if progress is not None:
                progress(Progress(step, total, loss, time.perf_counter() - start, note))

        if self.patience is not None:
            holdout = Holdout.carve(train_users, train_items, len(self.user_ids_), fraction=self.validation_fraction, seed=self.seed)
            stopper = EarlyStopping(self.patience)

            def validate(step: int, loss: float, factors) -> None:
                self.user_factors_, self.item_factors_ = factors()
                with holdout.fit_history(self):
                    stopper.update(step, holdout.ndcg(self))
                report(step, loss, f"validation {stopper.metric} {stopper.curve[-1]['value']:.4f}")
                if stopper.stop:
                    raise _Stop

            self._train(holdout.fit_users, holdout.fit_items, self.iterations, warm, validate)
            best = max(stopper.best_step, 1)
            # Refit on every training interaction for the chosen number of iterations.
            total = len(stopper.curve) + best
            offset = len(stopper.curve)

            def refit(step: int, loss: float, factors) -> None:
                note = stopped_message(stopper) if step == best and stopper.stop else ""
                report(offset + step, loss, note)

            user_f, item_f = self._train(train_users, train_items, best, warm, refit)
            self.validation_ = stopper.record({"iterations": best})
        else:
            user_f, item_f = self._train(train_users, train_items, self.iterations, warm, lambda s, loss, f: report(s, loss))
        # Items (users) without training interactions get no signal: exactly zero factors.
        trained_users = torch.zeros(len(self.user_ids_), dtype=torch.bool)
        trained_items = torch.zeros(len(self.item_ids_), dtype=torch.bool)
        trained_users[torch.as_tensor(train_users)], trained_items[torch.as_tensor(train_items)] = True, True
        self.user_factors_ = user_f * trained_users[:, None]
        self.item_factors_ = item_f * trained_items[:, None]

    def _warm_factors(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Initial factors carried over from ``warm_start`` (matched by id; new ids get ``implicit``'s initialisation)."""
        old = self.warm_start_model
        if old is None:
            return None
        width = self.factors + (1 if self.algorithm == "bpr" else 0)
        old_width = old.user_factors_.shape[1]
        if old_width != width:
            raise ValueError(_WARM_SHAPE.format(old_width, old.algorithm, width, self.algorithm))
        rng = np.random.default_rng(self.seed)
        fresh = [torch.from_numpy(rng.random((n, width), dtype=np.float32) * 0.01)
                 for n in (len(self.user_ids_), len(self.item_ids_))]  # fmt: skip
        if self.algorithm == "bpr":
            for matrix in fresh:
                matrix[:, -1] = 1.0 if matrix is fresh[0] else 0.0  # BPR: users' bias input 1, items' bias 0
        return (carry_rows(fresh[0], old.user_factors_, self.user_ids_, old.user_ids_),
                carry_rows(fresh[1], old.item_factors_, self.item_ids_, old.item_ids_))  # fmt: skip

    # ---- scoring and persistence ------------------------------------------------------
    def _score_indices(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray | None,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        items = self.item_factors_ if item_idx is None else self.item_factors_[torch.as_tensor(item_idx)]
        return self.user_factors_[torch.as_tensor(user_idx)] @ items.T

    def _state(self) -> dict[str, torch.Tensor]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _load_state(self, tensors: dict[str, torch.Tensor], config: dict) -> None:
        self.user_factors_ = tensors["user_factors"]
        self.item_factors_ = tensors["item_factors"]
