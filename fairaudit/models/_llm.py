"""The LLM recommender: a two-tower model over frozen language-model text embeddings.

Item tower
    ``v_i = W_t e_i + id_i`` and bias ``b_i = w_b . e_i + idb_i``, where ``e_i`` is the
    frozen embedding of the item's text (:func:`item_texts`) and ``id_i`` / ``idb_i`` are
    learned per-item terms. During training the ID terms are dropped at random
    (``id_dropout``) so the text alone must carry signal; items never seen in training
    have no ID terms and are scored from their text alone (cold start).
User tower
    ``u = user_u + pool(history) [+ W_p p_u]``: a learned user embedding, the history
    pooled as ``sum_i h_ui (H_t e_i + hid_i) / sqrt(sum_i h_ui)`` (``pooling="sqrt"``, the
    default) or ``/ sum_i h_ui`` (``pooling="mean"``) with a separate history projection,
    and (with ``use_profile=True``) the projected embedding ``p_u`` of a profile text
    stating the user's attributes, e.g.
    ``"A user. Gender: F. Age band: 25-34. Region: South."``; with ``use_texts=True``, plus
    ``T t_u`` for a user with texts (``t_u`` the pooled embedding of the user's own texts,
    :mod:`fairaudit.models._text_profiles`, standardised over the users with texts) or a learned
    no-text vector ``n`` for a user without.
    A user with texts but no training interactions (cold start) is served from ``T t_u``.
Score
    ``s_ui = u . v_i + b_i``. Trained per batch of users: a random part of each history
    is held out, the rest is pooled as input, and the held-out items are the targets of
    a softmax over the whole catalogue (``loss="full"``) or over the batch's held-out
    items with logQ popularity correction (``loss="in_batch"``, large catalogues); items
    already in the input are excluded, as seen items are at recommendation time.
Fairness (optional)
    ``loss + lambda * F`` with a term from :mod:`fairaudit.models._losses` (``fairness=...``,
    ``fairness_weight=lambda``); off by default, and off it trains exactly the plain model.
    Sqrt pooling writes the history's length into the user vector's norm, so no training
    term can fully hide an attribute that goes with activity; the adversarial term wants
    ``pooling="mean"`` (and warns without it). Every term reads the user tower's output ``u``,
    which includes the text term ``T t_u``, so the adversarial term also trains ``T`` (and the
    no-text vector) against recovering the attribute from the texts.
"""

from __future__ import annotations

import copy
import inspect
import time
import warnings
from typing import Literal, Mapping, Sequence, get_args

import numpy as np
import pandas as pd
import torch
from torch import nn

from fairaudit._choices import LLM_DEFAULTS, POOLINGS, Pooling
from fairaudit.data import UNKNOWN, Dataset, Split
from fairaudit.models._base import Progress, ProgressCallback, Recommender, carry_rows, register, resolve_device
from fairaudit.models._encoder import TextEncoder, get_encoder, item_texts
from fairaudit.models._losses import AdversaryObjective, FairnessKind, FairnessRegulariser
from fairaudit.models._text_profiles import TextProfiles, check_half_life, encode_profiles
from fairaudit.models._adversarial import apr_loss, softmax_ranking_terms, softmax_user_losses
from fairaudit.models._dp import DEFAULT_MAX_GRAD_NORM, DP_UNSUPPORTED, DPSGD, check_dp_settings, dp_enabled
from fairaudit.models._validation import (
    VALIDATION_FRACTION, EarlyStopping, Holdout, check_validation_settings, stopped_message,
)  # fmt: skip

Loss = Literal["auto", "full", "in_batch"]
LOSSES: tuple[str, ...] = get_args(Loss)
#: Catalogue size up to which ``loss="auto"`` uses the exact full softmax.
FULL_SOFTMAX_MAX_ITEMS = 50_000
#: Learning rate of the adversarial term's classifier, as a multiple of the model's ``lr``.
ADVERSARY_LR_FACTOR = 10.0

_BAD_LOSS = "loss must be one of {0}, got {1!r}"
_BAD_POOLING = "pooling must be one of {0}, got {1!r}"
_WARM_MISMATCH = (
    "warm_start's network does not fit this model ({0}); warm-start from an LLM recommender with the same "
    "dim, encoder, use_profile and use_texts"
)
NO_TEXTS = (
    "use_texts=True needs user texts, but dataset '{0}' has none; add a user_texts.csv (user_id, text) "
    "beside the interactions (docs/profiles.md) or train without use_texts"
)
_TEXTS_OFF = "this model was trained without use_texts; train it with use_texts=True to give it texts"
#: Parameters of :class:`_TwoTower` with one row per user or per item (carried over by id on warm starts).
_USER_ROWS = ("user_id.weight",)
_ITEM_ROWS = ("item_id.weight", "item_bias_id.weight", "hist_id.weight")
ACTIVITY_LEAK = (
    "fairness='adversarial' with pooling='sqrt': the user vector's norm grows with the square root of the "
    "history length, so an attribute that goes with activity stays partly recoverable whatever the adversary does; "
    "use pooling='mean'"
)


def pool_history(weights: torch.Tensor, hist: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Pooled history vectors: ``sum_i w_ui hist_i`` over ``sqrt(sum_i w_ui)`` or over ``sum_i w_ui``.

    ``"sqrt"`` lets the vector grow with the history (more evidence, larger scores);
    ``"mean"`` makes it an average, independent of the history's length. An empty
    history pools to zeros.

    >>> hist = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 1.0]])
    >>> pool_history(torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]), hist, "sqrt").tolist()
    [[2.5, 1.5], [0.0, 0.0]]
    >>> pool_history(torch.tensor([[1.0, 1.0, 1.0, 1.0]]), hist, "mean").tolist()
    [[1.25, 0.75]]
    """
    total = weights.sum(1, keepdim=True).clamp_min(1)
    return (weights @ hist) / (total.sqrt() if pooling == "sqrt" else total)


def profile_texts(values: pd.DataFrame) -> list[str]:
    """The profile sentence for each row of ``values`` (one column per attribute).

    >>> profile_texts(pd.DataFrame({"gender": ["F"], "age_band": ["25-34"]}))
    ['A user. Gender: F. Age band: 25-34.']
    """
    text = pd.Series("A user.", index=values.index)
    for column in values.columns:
        text = text + f" {column.replace('_', ' ').capitalize()}: " + values[column].astype(str) + "."
    return text.tolist()


class _TwoTower(nn.Module):
    def __init__(
        self, n_users: int, n_items: int, text_dim: int, dim: int, use_profile: bool, use_texts: bool = False
    ) -> None:
        super().__init__()
        self.item_text = nn.Linear(text_dim, dim)
        self.item_bias_text = nn.Linear(text_dim, 1)
        self.hist_text = nn.Linear(text_dim, dim)
        self.item_id = nn.Embedding(n_items, dim)
        self.item_bias_id = nn.Embedding(n_items, 1)
        self.hist_id = nn.Embedding(n_items, dim)
        self.user_id = nn.Embedding(n_users, dim)
        self.profile = nn.Linear(text_dim, dim) if use_profile else None
        for emb in (self.item_id, self.item_bias_id, self.hist_id, self.user_id):
            nn.init.zeros_(emb.weight)
        # Created last, and only when used: the other layers' initial weights stay those of the plain model.
        self.text_profile = nn.Linear(text_dim, dim) if use_texts else None
        self.no_text = nn.Parameter(torch.zeros(dim)) if use_texts else None

    def texts(self, profiles: torch.Tensor, has_text: torch.Tensor) -> torch.Tensor:
        """Text term of the user tower: ``T t_u`` for users with texts, the learned no-text vector otherwise."""
        return torch.where(has_text[:, None], self.text_profile(profiles), self.no_text)

    def items(self, text: torch.Tensor, id_keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Item vectors, item biases and history vectors; ``id_keep`` (n_items x 1) gates the ID terms."""
        vec = self.item_text(text) + id_keep * self.item_id.weight
        bias = self.item_bias_text(text).squeeze(1) + id_keep.squeeze(1) * self.item_bias_id.weight.squeeze(1)
        hist = self.hist_text(text) + id_keep * self.hist_id.weight
        return vec, bias, hist


@register
class LLMRecommender(Recommender):
    """Two-tower recommender over frozen transformer text embeddings (see module docstring).

    Parameters
    ----------
    encoder : str, optional
        Local Hugging Face model folder; ``None`` = the packaged all-MiniLM-L6-v2.
    dim : int
        Size of the user and item vectors.
    epochs, batch_size, lr, weight_decay
        Adam training settings; one epoch is one pass over the users with training
        interactions, in batches of ``batch_size`` users.
    id_dropout : float
        Probability of dropping an item's (and a user's) ID terms per training step.
    holdout : float
        Share of each user's history held out per step as prediction targets (the rest
        is the pooled input); this is how the history tower learns to generalise.
    pooling : {"sqrt", "mean"}
        History pooling (:func:`pool_history`): ``"sqrt"`` (NDCG@10 0.436 on MovieLens 100K)
        keeps the history's length in the vector; ``"mean"`` (0.417) removes it, which the
        adversarial term needs to hide attributes that go with activity.
    loss : {"auto", "full", "in_batch"}
        Softmax over the whole catalogue, or sampled softmax over the items held out
        in the batch with logQ popularity correction; ``"auto"`` picks full up to
        ``FULL_SOFTMAX_MAX_ITEMS`` items.
    use_profile : bool
        Add the embedding of a profile text stating the user's attributes.
    profile_attributes : sequence of str
        User columns stated in the profile text (missing columns read ``unknown``).
    use_texts : bool
        Add the user's text profile (the mean embedding of their own texts, ``Dataset.texts``;
        :func:`~fairaudit.models.encode_profiles`) through a learned projection, and a learned
        no-text vector for users without texts. Users with texts and no interactions are served
        from it. Needs a dataset with texts.
    text_half_life_days : float or None
        Recency weighting of the texts in the profile: a text one half-life older than the user's
        newest weighs half as much (needs a ``timestamp`` column); None: plain mean.
    fairness : {"none", "difference", "exposure", "adversarial"}
        In-training mitigation added to the loss with weight ``fairness_weight`` (lambda):
        ``"difference"`` penalises the gap in mean training loss between the groups of
        ``fairness_attribute`` (:func:`~fairaudit.models.group_difference`);
        ``"exposure"`` the divergence of the softmax exposure of the groups of
        ``exposure_attribute`` from their catalogue shares
        (:func:`~fairaudit.models.exposure_divergence`); ``"adversarial"`` trains a
        classifier to predict ``fairness_attribute`` from the user vectors and the user
        tower against it (:class:`~fairaudit.models.AttributeAdversary`; its accuracy
        is in the progress message and in ``adversary_accuracy_``). ``"none"`` or
        ``fairness_weight=0`` trains exactly the unmitigated model.
    fairness_weight : float
        lambda >= 0.
    fairness_attribute : str
        User column of the ``difference`` and ``adversarial`` terms.
    exposure_attribute : str
        Item column of the ``exposure`` term.
    adversary_objective : {"mean_matching", "reversal"}
        The user tower's objective against the adversary: close the gap between the groups'
        mean user vectors, which is what a linear adversary reads (default), or maximise the
        classifier's error by gradient reversal (kept for comparison: on this model it makes
        the attribute *easier* to recover; docs/benchmarks.md).
    adv_epsilon, adv_weight : float
        APR adversarial training (He et al. 2018; :func:`fairaudit.models._adversarial.apr_loss`):
        adds ``adv_weight x`` the loss at the batch's user and item vectors moved ``adv_epsilon x``
        their mean norm along the loss gradient; 0 (default) trains exactly the plain model.
    weight_averaging : float
        Decay of an exponential moving average of the weights, updated after every step (0: off);
        the average, which smooths the step-to-step noise of small batches, is what is validated
        and kept.
    patience : int or None
        Early stopping: hold out ``validation_fraction`` of each user's training interactions,
        evaluate validation NDCG@10 after every epoch, stop when it has not improved for
        ``patience`` epochs (``epochs`` is then the most), and refit on all the training
        interactions for the best number of epochs; recorded in ``validation_``. None: no
        validation, train ``epochs``.
    validation_fraction : float
        Per-user share of the training interactions used for validation.
    dp_epsilon, dp_delta, dp_max_grad_norm : float
        Differentially private training (DP-SGD with Opacus, :mod:`fairaudit.models._dp`; docs/privacy.md):
        the target epsilon (None or inf: off, the default), delta (None: ``1 / n_users^1.1``) and the
        per-user clipping norm. The privacy unit is the user (a user's whole history is one sample);
        batches are Poisson samples of ``batch_size`` users on average, each user's gradient is clipped
        and Gaussian noise calibrated by the RDP accountant is added. The per-user embedding is not
        trained (it stays zero). The spent (epsilon, delta) is kept in ``privacy_`` (``"privacy"`` in
        ``config.json``). Settings DP cannot protect (in-batch loss, fairness terms, APR, early stopping,
        warm starts) raise ``ValueError`` naming them.
    device : str
        ``"auto"`` (CUDA when available, mixed precision there) or a torch device.
    seed : int
        Seeds initialisation, shuffling and dropout; CPU results are deterministic.

    Attributes
    ----------
    encoder : TextEncoder
        The text encoder (``encoder.encode(texts)``), loaded lazily; SHAP text
        explanations re-encode modified item texts with it.
    item_text_embeddings_ : Tensor
        Frozen item text embeddings (items x text dim), saved with the model.

    Examples
    --------
    >>> model = LLMRecommender(dim=16, epochs=2)
    >>> model.get_params()["use_profile"]
    False
    """

    kind = "llm"
    supports_cold_items = True

    def __init__(
        self,
        encoder: str | None = None,
        dim: int = 64,
        epochs: int = 120,
        batch_size: int = 512,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        id_dropout: float = 0.1,
        holdout: float = 0.2,
        pooling: Pooling = LLM_DEFAULTS["pooling"],
        loss: Loss = "auto",
        use_profile: bool = False,
        profile_attributes: Sequence[str] = ("gender", "age_band", "region"),
        use_texts: bool = False,
        text_half_life_days: float | None = None,
        fairness: FairnessKind = LLM_DEFAULTS["fairness"],
        fairness_weight: float = LLM_DEFAULTS["fairness_weight"],
        fairness_attribute: str = LLM_DEFAULTS["fairness_attribute"],
        exposure_attribute: str = LLM_DEFAULTS["exposure_attribute"],
        adversary_objective: AdversaryObjective = LLM_DEFAULTS["adversary_objective"],
        adv_epsilon: float = LLM_DEFAULTS["adv_epsilon"],
        adv_weight: float = LLM_DEFAULTS["adv_weight"],
        weight_averaging: float = 0.0,
        patience: int | None = None,
        validation_fraction: float = VALIDATION_FRACTION,
        dp_epsilon: float | None = None,
        dp_delta: float | None = None,
        dp_max_grad_norm: float = DEFAULT_MAX_GRAD_NORM,
        device: str = "auto",
        seed: int = 0,
    ) -> None:
        self.encoder_name = encoder
        self.dim = dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.id_dropout = id_dropout
        self.holdout = holdout
        self.pooling = pooling
        self.loss = loss
        self.use_profile = use_profile
        self.profile_attributes = tuple(profile_attributes)
        self.use_texts = use_texts
        self.text_half_life_days = text_half_life_days
        self.fairness = fairness
        self.fairness_weight = fairness_weight
        self.fairness_attribute = fairness_attribute
        self.exposure_attribute = exposure_attribute
        self.adversary_objective = adversary_objective
        self.adv_epsilon = adv_epsilon
        self.adv_weight = adv_weight
        self.weight_averaging = weight_averaging
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.dp_epsilon = dp_epsilon
        self.dp_delta = dp_delta
        self.dp_max_grad_norm = dp_max_grad_norm
        self.device = device
        self.seed = seed

    def get_params(self) -> dict:
        """Hyper-parameters; ``encoder`` is reported as the folder given (None = default)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: self.encoder_name if name == "encoder" else getattr(self, name) for name in names}

    @property
    def encoder(self) -> TextEncoder:
        """The (shared, lazily loaded) :class:`TextEncoder` this model reads text with."""
        return get_encoder(self.encoder_name, self.device)

    # ---- training ---------------------------------------------------------------------
    def _profile_codes(self, dataset: Dataset) -> None:
        users = dataset.users
        categories, codes = {}, []
        for attr in self.profile_attributes:
            column = users[attr].astype(str) if attr in users else pd.Series(UNKNOWN, index=users.index)
            cat = pd.Categorical(column)
            categories[attr] = [str(c) for c in cat.categories]
            codes.append(cat.codes.astype(np.int64))
        self.profile_categories_ = categories
        self.profile_codes_ = torch.as_tensor(np.stack(codes, axis=1) if codes else np.zeros((len(users), 0), np.int64))

    def _profile_values(self, attribute_overrides: Mapping[str, str] | None, users: np.ndarray) -> pd.DataFrame:
        codes = self.profile_codes_[torch.as_tensor(users)].numpy()
        values = pd.DataFrame(
            {
                attr: np.asarray(self.profile_categories_[attr], dtype=object)[codes[:, j]]
                for j, attr in enumerate(self.profile_attributes)
            }
        )
        # An attribute the profile does not state is not read by the model, so overriding it
        # changes nothing: the counterfactual answer is exactly the original one.
        for attr, value in (attribute_overrides or {}).items():
            if attr in self.profile_attributes:
                values[attr] = str(value)
        return values

    def _profile_embeddings(self, users: np.ndarray, attribute_overrides: Mapping[str, str] | None) -> torch.Tensor:
        """Profile text embeddings of ``users`` (encodes only the few distinct texts)."""
        texts = pd.Series(profile_texts(self._profile_values(attribute_overrides, users)))
        codes, uniques = pd.factorize(texts)
        known = dict(zip(self.profile_texts_, range(len(self.profile_texts_))))
        if all(t in known for t in uniques):
            table = self.profile_embeddings_[torch.as_tensor([known[t] for t in uniques], dtype=torch.long)]
        else:
            table = torch.from_numpy(self.encoder.encode(list(uniques)))
        return table[torch.as_tensor(codes, dtype=torch.long)]

    # ---- text profiles (use_texts) --------------------------------------------------------
    def _set_text_profiles(self, dataset: Dataset) -> None:
        """Pool every model user's texts into ``text_profiles_`` (users x text dim) and ``text_counts_``."""
        if dataset.texts is None:
            raise ValueError(NO_TEXTS.format(dataset.name))
        check_half_life(self.text_half_life_days)
        profiles = encode_profiles(
            dataset.texts, self.user_ids_, encoder=self.encoder, half_life_days=self.text_half_life_days
        )
        self.text_profiles_ = torch.from_numpy(profiles.vectors)
        self.text_counts_ = torch.from_numpy(profiles.n_texts)
        # Standardised input: what all texts share (template, language) dominates sentence embeddings,
        # so the projection reads the profile centred on the mean profile and scaled to unit mean norm.
        present = self.text_profiles_[self.text_counts_ > 0]
        self.text_center_ = present.mean(0) if len(present) else torch.zeros(self.text_profiles_.shape[1])
        spread = float((present - self.text_center_).pow(2).sum(1).mean().sqrt()) if len(present) else 0.0
        self.text_scale_ = torch.tensor([1.0 / spread if spread > 0 else 1.0])
        self.texts_info_ = {
            "fingerprint": dataset.texts_fingerprint(),
            "encoder": profiles.encoder,
            "half_life_days": self.text_half_life_days,
            "n_texts": int(len(dataset.texts)),
            "n_users_with_texts": int(profiles.has_text.sum()),
        }

    def _text_inputs(self, user_idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised text profiles and has-text mask of the users at ``user_idx`` (the text term's inputs)."""
        rows = torch.as_tensor(np.asarray(user_idx, dtype=np.int64))
        return (self.text_profiles_[rows] - self.text_center_) * self.text_scale_, self.text_counts_[rows] > 0

    def _texts_fitted(self) -> None:
        self._check_fitted()
        if not self.use_texts:
            raise ValueError(_TEXTS_OFF)

    def text_profiles(self, user_ids: Sequence) -> TextProfiles:
        """The pooled text profiles (encoder space) the model reads for ``user_ids``, as trained or replaced."""
        self._texts_fitted()
        pos = self.user_positions(user_ids)
        return TextProfiles(
            self.user_ids_[pos], self.text_profiles_[pos].numpy(), self.text_counts_[pos].numpy(),
            self.texts_info_["encoder"], self.text_half_life_days,
        )  # fmt: skip

    def with_texts(self, texts: pd.DataFrame) -> "LLMRecommender":
        """A copy of this fitted model in which each user of ``texts`` has the profile of exactly those texts.

        ``texts`` has ``user_id`` and ``text`` (and ``timestamp`` with ``text_half_life_days``); users
        not in it keep their profile, users the model does not know raise ``KeyError``. The copy shares
        the trained network, so ``copy.recommend(...)`` / ``score`` / ``user_vectors`` answer as if the
        users had written these texts: text counterfactuals (rewritten markers) and new texts for
        cold-start users. The original model is not changed.
        """
        self._texts_fitted()
        users = pd.unique(texts["user_id"].astype(str))
        pos = self.user_positions(users)
        fresh = encode_profiles(texts, users, encoder=self.encoder, half_life_days=self.text_half_life_days)
        return self._replaced_profiles(pos, torch.from_numpy(fresh.vectors), torch.from_numpy(fresh.n_texts))

    def without_texts(self, user_ids: Sequence) -> "LLMRecommender":
        """A copy of this fitted model in which ``user_ids`` have no texts (they get the learned no-text vector)."""
        self._texts_fitted()
        pos = self.user_positions(user_ids)
        return self._replaced_profiles(pos, torch.zeros(len(pos), self.text_profiles_.shape[1]), torch.zeros(len(pos), dtype=torch.int64))

    def _replaced_profiles(self, pos: np.ndarray, vectors: torch.Tensor, counts: torch.Tensor) -> "LLMRecommender":
        model = copy.copy(self)
        model.text_profiles_ = self.text_profiles_.clone()
        model.text_counts_ = self.text_counts_.clone()
        model.text_profiles_[torch.as_tensor(pos)] = vectors
        model.text_counts_[torch.as_tensor(pos)] = counts
        model.texts_info_ = {**self.texts_info_, "replaced_users": int(len(pos))}
        return model

    def _check_dp(self, n_items: int) -> None:
        """Refuse, naming it, every setting DP-SGD cannot protect: DP never silently trains a non-private model."""
        check_dp_settings(self.dp_epsilon, self.dp_delta, self.dp_max_grad_norm)
        if not dp_enabled(self.dp_epsilon):
            return
        in_batch = self.loss == "in_batch" or (self.loss == "auto" and n_items > FULL_SOFTMAX_MAX_ITEMS)
        refused = {
            f"loss={self.loss!r} (in-batch softmax)": (
                in_batch, "it scores each user against the other users' held-out items, so one user's data "
                "enters every other user's gradient; use loss='full'",
            ),
            f"fairness={self.fairness!r}": (
                self.fairness != "none" and self.fairness_weight > 0,
                "the fairness term is computed over the whole batch of users, not per user",
            ),
            "adv_weight > 0 (APR adversarial training)": (
                self.adv_weight > 0 and self.adv_epsilon > 0, "its perturbation is the gradient of the whole batch",
            ),
            f"patience={self.patience!r} (early stopping)": (
                self.patience is not None,
                "choosing the epochs on a validation share of the private interactions is not accounted for",
            ),
            "warm_start": (
                self.warm_start_model is not None, "the starting weights were learned outside this privacy accounting",
            ),
        }  # fmt: skip
        for setting, (present, why) in refused.items():
            if present:
                raise ValueError(DP_UNSUPPORTED.format(self.dp_epsilon, setting, why))

    def _fit(
        self,
        dataset: Dataset,
        split: Split,
        train_users: np.ndarray,
        train_items: np.ndarray,
        progress: ProgressCallback | None,
    ) -> None:
        if self.loss not in LOSSES:
            raise ValueError(_BAD_LOSS.format(LOSSES, self.loss))
        if self.pooling not in POOLINGS:
            raise ValueError(_BAD_POOLING.format(POOLINGS, self.pooling))
        if self.fairness == "adversarial" and self.fairness_weight > 0 and self.pooling == "sqrt":
            warnings.warn(ACTIVITY_LEAK, UserWarning, stacklevel=3)
        check_validation_settings(self.patience, self.validation_fraction)
        if self.use_texts:
            self._set_text_profiles(dataset)
        self._check_dp(len(self.item_ids_))
        if self.patience is None:
            self._train(dataset, train_users, train_items, train_items, progress, None, self.epochs)
            return
        holdout = Holdout.carve(train_users, train_items, len(self.user_ids_),
                                fraction=self.validation_fraction, seed=self.seed)  # fmt: skip
        # Choose the number of epochs on the fit part (the history the batches pool is the fit part too) ...
        with holdout.fit_history(self):
            stopper = self._train(dataset, holdout.fit_users, holdout.fit_items, train_items, progress, holdout, self.epochs)
        # ... then refit on every training interaction for that many (on ML-100K: NDCG@10 0.445 vs 0.436
        # for the best checkpoint of the fit part; docs/benchmarks.md).
        best, offset = max(stopper.best_step, 1), len(stopper.curve)

        def refit_progress(event: Progress) -> None:
            if progress is not None:
                note = f"refit on all training interactions for the best {best} epochs"
                progress(Progress(offset + event.epoch, offset + best, event.loss, event.elapsed_s, note))

        self._train(dataset, train_users, train_items, train_items, refit_progress, None, best)
        self.validation_ = stopper.record({"epochs": best})

    def _train(
        self,
        dataset: Dataset,
        train_users: np.ndarray,
        train_items: np.ndarray,
        all_train_items: np.ndarray,
        progress: ProgressCallback | None,
        holdout: Holdout | None,
        epochs: int,
    ) -> EarlyStopping | None:
        """The training loop over ``(train_users, train_items)`` for at most ``epochs``; with ``holdout``,
        early stopping on it (the validation curve is returned)."""
        device = resolve_device(self.device)
        n_users, n_items = len(self.user_ids_), len(self.item_ids_)
        self.item_text_embeddings_ = torch.from_numpy(self.encoder.encode(item_texts(dataset))).clone()
        self.encoder_identity_ = self.encoder.identity
        if self.use_profile:
            self._profile_codes(dataset)
            all_texts = pd.Series(profile_texts(self._profile_values(None, np.arange(n_users))))
            self.profile_texts_ = sorted(set(all_texts))
            self.profile_embeddings_ = torch.from_numpy(self.encoder.encode(self.profile_texts_)).clone()
        counts = torch.bincount(torch.as_tensor(train_items), minlength=n_items)
        self.item_trained_ = torch.bincount(torch.as_tensor(all_train_items), minlength=n_items) > 0
        if dp_enabled(self.dp_epsilon):  # which items have interactions is private too: under DP every item counts
            self.item_trained_ = torch.ones(n_items, dtype=torch.bool)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _TwoTower(
                n_users, n_items, self.item_text_embeddings_.shape[1], self.dim, self.use_profile, self.use_texts
            )
            if self.warm_start_model is not None:
                net.load_state_dict(self._warm_weights(net.state_dict()))
            # None when off: then no parameter is created and no random number drawn.
            fairness = FairnessRegulariser.for_dataset(
                self.fairness, self.fairness_weight, dataset, user_attribute=self.fairness_attribute,
                item_attribute=self.exposure_attribute, dim=self.dim, adversary_objective=self.adversary_objective,
            )  # fmt: skip
        net = net.to(device)
        fairness = None if fairness is None else fairness.to(device)
        dp_on = dp_enabled(self.dp_epsilon)
        if dp_on:  # one user's signal, noise every step: a per-user row would be noise; it stays zero
            net.user_id.weight.requires_grad_(False)
        groups = [{"params": [p for p in net.parameters() if p.requires_grad]}]
        if fairness is not None and fairness.adversary is not None:
            # Two time-scales: the classifier learns faster than the model it watches, so its
            # accuracy (and, for reversal, its gradient) reflects the current user vectors.
            groups.append({"params": list(fairness.adversary.parameters()), "lr": ADVERSARY_LR_FACTOR * self.lr})
        gen = torch.Generator().manual_seed(self.seed)
        text = self.item_text_embeddings_.to(device)
        trained = self.item_trained_.to(device)
        profile = self._profile_embeddings(np.arange(n_users), None).to(device) if self.use_profile else None
        user_texts = [t.to(device) for t in self._text_inputs(np.arange(n_users))] if self.use_texts else None
        log_q = torch.log(counts.float().clamp_min(1) / counts.sum()).to(device)
        full = self.loss == "full" or (self.loss == "auto" and n_items <= FULL_SOFTMAX_MAX_ITEMS)
        opt = torch.optim.Adam(groups, lr=self.lr, weight_decay=self.weight_decay)
        active = np.unique(train_users)
        dp = None if not dp_on else DPSGD(
            opt, net, n_units=len(active), batch_size=self.batch_size, epochs=epochs, epsilon=float(self.dp_epsilon),
            delta=self.dp_delta, max_grad_norm=self.dp_max_grad_norm, seed=self.seed,
        )  # fmt: skip

        def tower(users: torch.Tensor, inputs: torch.Tensor, hist: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
            """The user tower of a training step (DP-SGD differentiates it per user)."""
            user = keep * net.user_id(users) + pool_history(inputs, hist, self.pooling)
            if profile is not None:
                user = user + net.profile(profile[users])
            if user_texts is not None:
                user = user + net.texts(user_texts[0][users], user_texts[1][users])
            return user

        # A warm start has learned weights but a fresh optimiser: ramp the learning rate up over the
        # first epoch, so Adam's first, unscaled steps do not throw the learned weights away.
        ramp = max(1, -(-len(active) // self.batch_size)) if self.warm_start_model is not None else 0
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / (ramp + 1)) if ramp else 1.0)
        stopper = EarlyStopping(self.patience) if holdout is not None else None
        # Polyak averaging: a running average of the weights is what is validated and kept.
        averaged = [p.detach().clone() for p in net.parameters()] if self.weight_averaging > 0 else None
        start = time.perf_counter()
        for epoch in range(epochs):
            order = active[torch.randperm(len(active), generator=gen).numpy()]
            total, n_batches = 0.0, 0
            steps = range(0, len(order), self.batch_size)
            # DP-SGD: Poisson-sampled batches, as its accountant assumes; else a shuffled pass.
            for bu in dp.batches(active, gen) if dp is not None else (order[b : b + self.batch_size] for b in steps):
                history = self.history_matrix(bu)
                # Hold out part of each history: the model learns to predict it from the rest.
                held = (torch.rand(history.shape, generator=gen) < self.holdout) & (history > 0)
                id_keep = torch.rand(n_items, 1, generator=gen) >= self.id_dropout
                user_keep = torch.rand(len(bu), 1, generator=gen) >= self.id_dropout
                held, id_keep, user_keep = held.to(device), id_keep.to(device), user_keep.to(device)
                inputs = history.to(device) * ~held
                users_t = torch.as_tensor(bu, device=device)
                # Under DP this forward only reports the batch loss; the step differentiates per user below.
                autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
                with autocast, torch.set_grad_enabled(dp is None):
                    vec, bias, hist = net.items(text, id_keep & trained[:, None])
                    user = tower(users_t, inputs, hist, user_keep)
                    if full:
                        candidates, targets = slice(None), held
                        excluded = (inputs > 0) | ~trained
                        logits = user @ vec.T + bias
                    else:  # in-batch: the batch's held-out items are the candidates, logQ-corrected
                        candidates = torch.nonzero(held.any(0)).squeeze(1)
                        targets, excluded = held[:, candidates], inputs[:, candidates] > 0
                        logits = user @ vec[candidates].T + bias[candidates] - log_q[candidates]
                    # The training loss, composed here only: recommendation loss + optional terms.
                    loss, logp, per_user = softmax_ranking_terms(logits, targets, excluded)
                    n_held = targets.sum(1)
                    if self.adv_weight > 0 and self.adv_epsilon > 0:  # APR adversarial training (_adversarial.py)
                        loss = loss + self.adv_weight * apr_loss(
                            user, vec[candidates], logits, targets.float(), excluded, self.adv_epsilon
                        )
                    if fairness is not None:
                        rows = n_held > 0
                        items = torch.arange(n_items, device=device)[candidates]
                        loss = loss + fairness(
                            users=torch.as_tensor(bu, device=device)[rows], items=items, logits=logp[rows],
                            losses=per_user[rows], user_vectors=user[rows],
                        )  # fmt: skip
                if dp is None:
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                else:  # the same loss per user, its gradient clipped and noised (fairaudit.models._dp)
                    keep_items = id_keep & trained[:, None]

                    def user_loss(user: torch.Tensor, row: torch.Tensor, target: torch.Tensor, keep: torch.Tensor):
                        vec, bias, hist = net.items(text, keep_items)
                        logits = tower(user[None], row[None], hist, keep[None]) @ vec.T + bias
                        return softmax_user_losses(logits, target[None], ((row > 0) | ~trained)[None])[1][0]

                    dp.step(user_loss, (users_t, inputs, held, user_keep))
                schedule.step()
                if averaged is not None:
                    torch._foreach_lerp_(averaged, [p.detach() for p in net.parameters()], 1.0 - self.weight_averaging)
                total += float(loss.detach())
                n_batches += 1
            notes = []
            if fairness is not None and fairness.adversary is not None:
                self.adversary_accuracy_ = fairness.last_adversary_accuracy
                notes.append(f"adversary accuracy {self.adversary_accuracy_:.3f}")
            if dp is not None:
                notes.append(f"epsilon spent {dp.epsilon_spent():.3f} of {dp.epsilon_target:g}")
            n_epochs = epochs
            if stopper is not None:
                self._set_net(self._current_weights(net, averaged))
                stopper.update(epoch + 1, holdout.ndcg(self))
                notes.append(f"validation {stopper.metric} {stopper.curve[-1]['value']:.4f}")
                if stopper.stop:
                    notes.append(stopped_message(stopper))
                    n_epochs = epoch + 1
            if progress is not None:
                loss_value = total / max(n_batches, 1)
                progress(Progress(epoch + 1, n_epochs, loss_value, time.perf_counter() - start, "; ".join(notes)))
            if stopper is not None and stopper.stop:
                break
        if dp is not None:
            self.privacy_ = dp.record(frozen=[name for name, p in net.named_parameters() if not p.requires_grad])
        # Rebuild from a detached copy of the weights, exactly as load_model does, so a
        # fitted and a reloaded model compute bit-identical scores.
        self._set_net(self._current_weights(net, averaged))
        return stopper

    @staticmethod
    def _current_weights(net: nn.Module, averaged: list[torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """A detached CPU copy of the weights: the running average when one is kept, else the last step's."""
        if averaged is not None:
            names = [name for name, _ in net.named_parameters()]
            return {name: value.detach().cpu().clone() for name, value in zip(names, averaged)}
        return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}

    def _warm_weights(self, fresh: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``fresh`` initial weights with ``warm_start``'s learned ones: per-user and per-item rows matched by id."""
        old_model = self.warm_start_model
        old = old_model.net_.state_dict()
        if set(old) != set(fresh):
            raise ValueError(_WARM_MISMATCH.format("different layers: use_profile or use_texts differs"))
        out = {}
        for name, value in fresh.items():
            if name in _USER_ROWS or name in _ITEM_ROWS:
                new_ids, old_ids = (
                    (self.user_ids_, old_model.user_ids_) if name in _USER_ROWS else (self.item_ids_, old_model.item_ids_)
                )
                if old[name].shape[1:] != value.shape[1:]:
                    raise ValueError(_WARM_MISMATCH.format(f"{name} has shape {tuple(old[name].shape)}"))
                out[name] = carry_rows(value, old[name], new_ids, old_ids)
            elif old[name].shape != value.shape:
                raise ValueError(_WARM_MISMATCH.format(f"{name} has shape {tuple(old[name].shape)}"))
            else:
                out[name] = old[name].clone()
        return out

    def _set_net(self, weights: dict[str, torch.Tensor]) -> None:
        net = _TwoTower(
            len(self.user_ids_), len(self.item_ids_), self.item_text_embeddings_.shape[1], self.dim, self.use_profile,
            self.use_texts,
        )  # fmt: skip
        net.load_state_dict(weights)
        self.net_ = net.eval()

    # ---- scoring ----------------------------------------------------------------------
    def _item_side(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.net_.items(self.item_text_embeddings_, self.item_trained_[:, None].float())

    def user_vectors(self, user_ids: Sequence) -> np.ndarray:
        """User-tower output (users x ``dim``) from the training histories, e.g. to measure how much
        of a sensitive attribute the user representations carry (:func:`fairaudit.models.attribute_leakage`)."""
        users = self.user_positions(user_ids)
        with torch.no_grad():
            _, _, hist = self._item_side()
            return self._user_vectors(users, self.history_matrix(users), None, hist).numpy()

    def score_with_history(
        self,
        user_idx: np.ndarray,
        history_weights: torch.Tensor,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        """Scores of all items (len(user_idx) x n_items) for arbitrary input histories.

        Parameters
        ----------
        user_idx : array of int
            Row positions of the users (``user_positions(user_ids)``); selects the
            learned user embedding and the profile.
        history_weights : Tensor
            (len(user_idx) x n_items), dense or sparse, the weight of each item in the
            pooled history: the training history is 0/1 rows of ``history_matrix``; for
            SHAP, zero out (mask) items to remove them from a user's history.
        attribute_overrides : mapping, optional
            Profile attributes to replace (e.g. ``{"gender": "M"}``); ignored without
            ``use_profile``.

        Returns
        -------
        Tensor
            float32 scores; equals ``score`` when ``history_weights`` is the training history.
        """
        vec, bias, hist = self._item_side()
        return self._user_vectors(user_idx, history_weights, attribute_overrides, hist) @ vec.T + bias

    def _user_vectors(
        self,
        user_idx: np.ndarray,
        history_weights: torch.Tensor,
        attribute_overrides: Mapping[str, str] | None,
        hist: torch.Tensor,
    ) -> torch.Tensor:
        """User-tower output for arbitrary input histories (see :meth:`score_with_history`)."""
        self._check_fitted()
        user_idx = np.asarray(user_idx, dtype=np.int64)
        weights = history_weights.to_dense() if history_weights.is_sparse else history_weights
        weights = weights.float()
        pooled = pool_history(weights, hist, self.pooling)
        user = self.net_.user_id.weight[torch.as_tensor(user_idx)] + pooled
        if self.use_profile:
            user = user + self.net_.profile(self._profile_embeddings(user_idx, attribute_overrides))
        if self.use_texts:
            user = user + self.net_.texts(*self._text_inputs(user_idx))
        return user

    def score_text_variants(
        self,
        user_idx: np.ndarray,
        item_idx: int,
        text_embeddings: torch.Tensor,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        """Scores (len(user_idx) x len(text_embeddings)) of item ``item_idx`` with its text embedding replaced.

        Only the text part of the item tower changes (its learned ID terms stay), so a row equal
        to the item's own text embedding gives ``score``. Used by SHAP explanations of the words of
        an item's text (``fairaudit.explain.explain_item_text``).
        """
        vec, bias, hist = self._item_side()
        user = self._user_vectors(user_idx, self.history_matrix(np.asarray(user_idx)), attribute_overrides, hist)
        text = torch.as_tensor(text_embeddings, dtype=torch.float32)
        own = self.item_text_embeddings_[item_idx : item_idx + 1].float()
        variant_vec = vec[item_idx] + self.net_.item_text(text) - self.net_.item_text(own)
        variant_bias = bias[item_idx] + (self.net_.item_bias_text(text) - self.net_.item_bias_text(own)).squeeze(1)
        return user @ variant_vec.T + variant_bias

    def _score_indices(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray | None,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        scores = self.score_with_history(user_idx, self.history_matrix(user_idx), attribute_overrides)
        return scores if item_idx is None else scores[:, torch.as_tensor(item_idx)]

    # ---- persistence ------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        state = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        state["item_text_embeddings"] = self.item_text_embeddings_
        state["item_trained"] = self.item_trained_
        if self.use_profile:
            state["profile_codes"] = self.profile_codes_
            state["profile_embeddings"] = self.profile_embeddings_
        if self.use_texts:
            state["text_profiles"] = self.text_profiles_
            state["text_counts"] = self.text_counts_
            state["text_center"] = self.text_center_
            state["text_scale"] = self.text_scale_
        return state

    def _extra_config(self) -> dict:
        extra = {
            "encoder": {
                "name": self.encoder.name,
                "path": str(self.encoder.path),
                "identity": self.encoder_identity_,
            }
        }
        if self.use_profile:
            extra["profile"] = {"categories": self.profile_categories_, "texts": self.profile_texts_}
        if self.use_texts:
            extra["texts"] = self.texts_info_
        return extra

    def _load_state(self, tensors: dict[str, torch.Tensor], config: dict) -> None:
        self.item_text_embeddings_ = tensors["item_text_embeddings"]
        self.item_trained_ = tensors["item_trained"]
        self.encoder_identity_ = config["encoder"]["identity"]
        if self.use_profile:
            self.profile_codes_ = tensors["profile_codes"]
            self.profile_embeddings_ = tensors["profile_embeddings"]
            self.profile_categories_ = config["profile"]["categories"]
            self.profile_texts_ = config["profile"]["texts"]
        if self.use_texts:
            self.text_profiles_ = tensors["text_profiles"]
            self.text_counts_ = tensors["text_counts"]
            self.text_center_ = tensors["text_center"]
            self.text_scale_ = tensors["text_scale"]
            self.texts_info_ = config["texts"]
        self._set_net({k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")})
