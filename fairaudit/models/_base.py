"""The one interface every recommender implements, plus safe save/load.

A model knows the catalogue (``item_ids_``) and the training users (``user_ids_``) it was
fitted on, and the training interactions as a CSR matrix (``seen_``) so that
``recommend(exclude_seen=True)`` works after a reload. Subclasses implement four hooks:
``_fit``, ``_score_indices``, ``_state`` and ``_load_state``.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fairaudit._choices import ALWAYS_AVAILABLE_DEVICES, BAD_THREADS, MODEL_KINDS
from fairaudit.data import Dataset, Split, file_sha256, replacing_folder

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: Version 2 adds ``config_sha256``, the checksum of the whole ``config.json`` (version 1 checksummed the weights only).
FORMAT_VERSION = 2
#: Key of ``config.json`` holding the SHA-256 of the canonical JSON of every other key (:func:`config_checksum`).
CONFIG_CHECKSUM = "config_sha256"

_NOT_FITTED = "{0} is not fitted yet; call fit(dataset, split) first"
_NOT_A_MODEL = "'{0}' is not a FairAudit model folder: {1}"
_WRONG_DATA = (
    "Model in '{0}' was trained on data with fingerprint {1}, but this dataset has {2}; "
    "retrain it on this data or load the data it was trained on"
)
_UNKNOWN_USERS = "Unknown user id(s) {0}; the model knows only the {1} users it was trained on"
_UNKNOWN_TRAIN_IDS = (
    "split.train has {0} id(s) not in dataset.{0}s (e.g. {1}); build the split from this dataset"
)
_MISSING_KEYS = "{0} lacks required key(s) {1}"
_BAD_DEVICE = "'{0}' is not an available device; expected one of {1}"
_REQUIRED_KEYS = (
    "format_version", "kind", "params", "data_fingerprint", "split", "user_ids", "item_ids", "weights_sha256",
    CONFIG_CHECKSUM,
)  # fmt: skip
_MODIFIED = (
    "Model folder '{0}' was modified after FairAudit saved it: {1} does not match the checksum recorded "
    "when it was saved; re-train the model (or restore the folder from an unmodified copy)"
)
_OLD_FORMAT = (
    "Model folder '{0}' was saved by an earlier FairAudit (format_version 1) that checksummed only the "
    "weights, so its config.json cannot be verified; re-train it (e.g. python -m fairaudit train ... "
    "--out {0} --overwrite)"
)
_NEWER_FORMAT = "format_version {0!r} is not {1}; it was written by another FairAudit version, re-train it with this one"
WARM_START_KIND = "warm_start must be a fitted model of the same kind ('{0}'), got {1}"
WARM_START_UNFITTED = "warm_start ({0}) is not fitted yet; pass a fitted model or None"
_UNDECLARED_KIND = "model kind {0!r} of {1} is not declared; add it to fairaudit._choices.MODEL_KINDS"
#: Key of ``config.json`` holding how the model was validated (:attr:`Recommender.validation_`).
VALIDATION_KEY = "validation"
#: Key of ``config.json`` holding a DP-trained model's privacy record (``privacy_``; absent: no DP guarantee).
PRIVACY_KEY = "privacy"


@dataclass(frozen=True)
class Progress:
    """A training progress event passed to ``fit(progress=...)`` callbacks."""

    epoch: int
    n_epochs: int
    loss: float
    elapsed_s: float
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.epoch / max(self.n_epochs, 1)


ProgressCallback = Callable[[Progress], None]


class ModelFolderError(ValueError):
    """A saved model folder that is incomplete, tampered with or for other data."""


class TrainingCancelled(Exception):
    """Raise from a ``fit(progress=...)`` callback to stop training.

    ``fit`` then leaves the model unfitted (as before the call) and re-raises, so a
    half-trained model can never be saved or audited by mistake. ``KeyboardInterrupt``
    raised by the callback behaves the same way.
    """


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; any torch device string passes through.

    >>> resolve_device("cpu").type
    'cpu'
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)



def available_devices() -> tuple[str, ...]:
    """Device names a model can train on here: ``auto``, ``cpu``, and ``cuda``/``cuda:N``/``mps`` when present.

    >>> available_devices()[:2]
    ('auto', 'cpu')
    """
    devices = list(ALWAYS_AVAILABLE_DEVICES)
    if torch.cuda.is_available():
        devices += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return tuple(devices)


def check_device(device: str) -> str:
    """``device`` unchanged when a model can run on it here; else ``ValueError`` naming the available ones.

    >>> check_device("cpu")
    'cpu'
    >>> check_device("banana")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: 'banana' is not an available device; expected one of ('auto', 'cpu'...)
    """
    available = available_devices()
    try:
        resolved = resolve_device(device) if isinstance(device, str) else None
    except (RuntimeError, ValueError, TypeError):
        resolved = None
    if resolved is None or (device not in available and str(resolved) not in available):
        raise ValueError(_BAD_DEVICE.format(device, available))
    return device

def set_threads(threads: int | None) -> int:
    """Bound the CPU threads of every compute library (torch, BLAS/OpenMP pools, ``implicit``) to ``threads``.

    ``None`` keeps the current setting. Returns the torch intra-op thread count now in force. The
    matrix-factorisation model reads the same count (:func:`compute_threads`), so one call bounds
    a whole command; call it once at the start of a command or job.

    >>> set_threads(1)
    1
    """
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(BAD_THREADS.format(threads))
        torch.set_num_threads(threads)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=threads)
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            pass
    return torch.get_num_threads()


def compute_threads() -> int:
    """CPU threads a model may use now: torch's intra-op setting (see :func:`set_threads`).

    >>> compute_threads() >= 1
    True
    """
    return max(1, torch.get_num_threads())


def carry_rows(fresh: torch.Tensor, old: torch.Tensor, new_ids: np.ndarray, old_ids: np.ndarray) -> torch.Tensor:
    """``fresh`` (rows keyed by ``new_ids``) with the rows of ids also in ``old_ids`` copied from ``old``.

    Warm starts use it: users and items present in both models keep their learned vectors, new
    ones keep their fresh initialisation.

    >>> carry_rows(torch.zeros(3, 1), torch.tensor([[5.0], [7.0]]), np.array(["a", "b", "c"]), np.array(["c", "a"])).tolist()
    [[7.0], [0.0], [5.0]]
    """
    pos = pd.Index(np.asarray(old_ids, dtype=object)).get_indexer(np.asarray(new_ids, dtype=object))
    keep = pos >= 0
    out = fresh.clone()
    out[torch.as_tensor(keep)] = old[torch.as_tensor(pos[keep])].to(device=out.device, dtype=out.dtype)
    return out


def _csr_from_pairs(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr), cols[order].astype(np.int64)


class Recommender:
    """Base class: scikit-learn style ``__init__`` (hyper-parameters only) and ``fit`` -> self.

    Subclasses set ``kind`` and implement the hooks. Learned state ends in ``_``.

    Warm starts (dynamic fine-tuning): ``fit(dataset, split, warm_start=old)`` with ``old`` a fitted
    model of the same kind starts from ``old``'s learned weights instead of a fresh initialisation:
    users and items present in both keep their vectors (matched by id), new ones are initialised
    as usual, and the model then trains for its own ``epochs`` (``iterations``), so a caller that
    updates a model on new interactions sets few. Kinds without iterative training (popularity,
    item-kNN, re-rankers over a fitted base) simply refit. The old model is never modified.

    Validation: models that carve a validation set from the training interactions record what they
    chose in ``validation_`` (saved under ``"validation"`` in ``config.json``):
    ``{"metric": "ndcg@10", "curve": [{"step": int, "value": float}, ...], "best_step": int,
    "chosen": {param: value}}`` (see :mod:`fairaudit.models._validation`).
    """

    kind: ClassVar[str] = "base"
    #: Whether the model can score items never seen in training from their content.
    supports_cold_items: ClassVar[bool] = False
    #: Whether counterfactual probes can measure the model: ``attribute_overrides`` reach everything
    #: it reads about a user (models that read no attribute ignore them: exactly zero change). False
    #: for systems FairAudit cannot re-score as if an attribute were different (an external model
    #: whose function does not receive attributes); probes then say so instead of reporting zero change.
    probeable: ClassVar[bool] = True

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    # ---- hyper-parameters -------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as given to ``__init__`` (feeds configs and audit.json)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    # ---- fitting ----------------------------------------------------------------------
    def fit(
        self,
        dataset: Dataset,
        split: Split,
        *,
        progress: ProgressCallback | None = None,
        warm_start: "Recommender | None" = None,
    ) -> "Recommender":
        """Learn from ``split.train``; every item of ``dataset.items`` stays rankable.

        ``progress`` is called once per epoch with a :class:`Progress`; if it raises
        (e.g. :class:`TrainingCancelled` or ``KeyboardInterrupt``) training stops, the
        model is left unfitted and the exception propagates. ``warm_start``: a fitted model of
        the same kind whose learned weights this fit starts from (see the class docstring).
        """
        if warm_start is not None:
            if type(warm_start) is not type(self):
                raise ValueError(WARM_START_KIND.format(self.kind, getattr(warm_start, "kind", type(warm_start).__name__)))
            if not hasattr(warm_start, "item_ids_"):
                raise ValueError(WARM_START_UNFITTED.format(warm_start.kind))
            if warm_start is self:  # keep its weights: _unfit below drops this object's own
                warm_start = copy.copy(self)
        self._unfit()
        user_ids = dataset.users["user_id"].astype(str).to_numpy(dtype=object)
        item_ids = dataset.items["item_id"].astype(str).to_numpy(dtype=object)
        user_index, item_index = pd.Index(user_ids), pd.Index(item_ids)
        train_users = split.train["user_id"].astype(str)
        train_items = split.train["item_id"].astype(str)
        users = user_index.get_indexer(train_users)
        items = item_index.get_indexer(train_items)
        for name, pos, ids in (("user", users, train_users), ("item", items, train_items)):
            if (pos < 0).any():
                raise ValueError(_UNKNOWN_TRAIN_IDS.format(name, ids[pos < 0].unique()[:5].tolist()))
        self.user_ids_, self.item_ids_ = user_ids, item_ids
        self._build_index()
        self.seen_indptr_, self.seen_indices_ = _csr_from_pairs(users, items, len(self.user_ids_))
        self.data_fingerprint_ = dataset.fingerprint()
        self.split_ = split.describe()
        self._warm_start = warm_start
        try:
            self._fit(dataset, split, users, items, progress)
        except BaseException:
            self._unfit()
            raise
        finally:
            self._warm_start = None
        return self

    @property
    def warm_start_model(self) -> "Recommender | None":
        """The fitted model the running ``fit`` starts from (``None``: a fresh start; only set during ``fit``)."""
        return getattr(self, "_warm_start", None)

    def _unfit(self) -> None:
        """Drop every learned attribute (names ending in ``_``)."""
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("__")]:
            delattr(self, name)

    def _fit(
        self,
        dataset: Dataset,
        split: Split,
        train_users: np.ndarray,
        train_items: np.ndarray,
        progress: ProgressCallback | None,
    ) -> None:
        raise NotImplementedError

    # ---- scoring ----------------------------------------------------------------------
    def _score_indices(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray | None,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        """Scores as a float32 tensor of shape (len(user_idx), n_items or len(item_idx)).

        ``attribute_overrides`` (e.g. ``{"gender": "F"}``) replaces those user attributes
        for every scored user; models that do not read attributes ignore it, which is
        exactly what counterfactual probes must find.
        """
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_ids_"):
            raise RuntimeError(_NOT_FITTED.format(type(self).__name__))

    def _build_index(self) -> None:
        self._user_index = pd.Index(self.user_ids_)
        self._item_index = pd.Index(self.item_ids_)

    def evaluated_users(self) -> np.ndarray:
        """Users the model has lists for, i.e. whom an audit evaluates (those with test items): every known user.

        Imported recommendation lists narrow it to the users with a list.
        """
        self._check_fitted()
        return self.user_ids_

    def user_positions(self, user_ids: Iterable) -> np.ndarray:
        """Row positions of ``user_ids`` in the model; unknown ids raise ``KeyError``."""
        self._check_fitted()
        ids = pd.Index(pd.Series(list(user_ids), dtype=object).astype(str))
        pos = self._user_index.get_indexer(ids)
        if (pos < 0).any():
            missing = ids[pos < 0][:5].tolist()
            raise KeyError(_UNKNOWN_USERS.format(missing, len(self.user_ids_)))
        return pos

    def item_positions(self, item_ids: Iterable) -> np.ndarray:
        """Column positions of ``item_ids``; unknown ids raise ``KeyError``."""
        self._check_fitted()
        ids = pd.Index(pd.Series(list(item_ids), dtype=object).astype(str))
        pos = self._item_index.get_indexer(ids)
        if (pos < 0).any():
            raise KeyError(f"Unknown item id(s) {ids[pos < 0][:5].tolist()}")
        return pos

    def score(
        self,
        user_ids: Sequence,
        item_ids: Sequence | None = None,
        *,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> np.ndarray:
        """Score matrix (users x items); all catalogue items in ``item_ids_`` order by default."""
        users = self.user_positions(user_ids)
        items = None if item_ids is None else self.item_positions(item_ids)
        with torch.no_grad():
            return self._score_indices(users, items, attribute_overrides).float().cpu().numpy()

    def recommend(
        self,
        user_ids: Sequence | None = None,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        batch_size: int = 1024,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """Top-``k`` items per user as a tidy frame ``user_id, rank, item_id, score``.

        Scores are computed in user chunks of ``batch_size`` (memory linear in users);
        ties are broken by catalogue position so results are deterministic.
        """
        self._check_fitted()
        users = np.arange(len(self.user_ids_)) if user_ids is None else self.user_positions(user_ids)
        k = int(min(k, len(self.item_ids_)))
        top_items, top_scores = [], []
        with torch.no_grad():
            for start in range(0, len(users), batch_size):
                chunk = users[start : start + batch_size]
                scores = self._score_indices(chunk, None, attribute_overrides).float()
                if exclude_seen:
                    scores = self._mask_seen(scores, chunk)
                values, idx = _top_k(scores, k)
                top_items.append(idx.cpu().numpy())
                top_scores.append(values.cpu().numpy())
        items = np.concatenate(top_items) if top_items else np.empty((0, k), dtype=np.int64)
        scores_np = np.concatenate(top_scores) if top_scores else np.empty((0, k), dtype=np.float32)
        frame = pd.DataFrame(
            {
                "user_id": np.repeat(self.user_ids_[users], k),
                "rank": np.tile(np.arange(1, k + 1), len(users)),
                "item_id": self.item_ids_[items.ravel()],
                "score": scores_np.ravel().astype(np.float64),
            }
        )
        # Seen items masked to -inf can surface only when a user has seen nearly everything.
        return frame[np.isfinite(frame["score"])].reset_index(drop=True)

    def _seen_pairs(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row in ``users``, item position) of every training interaction of ``users``."""
        starts, ends = self.seen_indptr_[users], self.seen_indptr_[users + 1]
        lengths = ends - starts
        rows = np.repeat(np.arange(len(users)), lengths)
        # Positions of every seen entry in the CSR arrays, without a loop over users.
        out_starts = np.cumsum(lengths) - lengths
        positions = np.repeat(starts - out_starts, lengths) + np.arange(lengths.sum())
        return rows, self.seen_indices_[positions]

    def history_matrix(self, users: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """Dense 0/1 float32 matrix (len(users) x n_items) of the users' training items.

        >>> import numpy as np
        >>> m = Recommender()
        >>> m.item_ids_ = np.array(["a", "b", "c"], dtype=object)
        >>> m.seen_indptr_, m.seen_indices_ = np.array([0, 2, 3]), np.array([0, 2, 1])
        >>> m.history_matrix(np.array([1, 0])).tolist()
        [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]
        """
        rows, cols = self._seen_pairs(np.asarray(users, dtype=np.int64))
        out = torch.zeros(len(users), len(self.item_ids_), device=device)
        out[torch.as_tensor(rows, device=device), torch.as_tensor(cols, device=device)] = 1.0
        return out

    def _mask_seen(self, scores: torch.Tensor, users: np.ndarray) -> torch.Tensor:
        rows, cols = self._seen_pairs(users)
        scores = scores.clone()
        scores[torch.as_tensor(rows, device=scores.device), torch.as_tensor(cols, device=scores.device)] = float("-inf")
        return scores

    # ---- persistence ------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        """Learned tensors to store in ``model.safetensors``."""
        raise NotImplementedError

    def _load_state(self, tensors: dict[str, torch.Tensor], config: dict) -> None:
        raise NotImplementedError

    def _extra_config(self) -> dict[str, Any]:
        """Extra JSON-ready facts a subclass wants in ``config.json`` (e.g. encoder path)."""
        return {}

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``config.json`` and ``model.safetensors`` atomically; never pickles.

        ``config.json`` records the SHA-256 of the weights and of its own canonical JSON
        (:data:`CONFIG_CHECKSUM`), so :func:`load_model` refuses any edit of either. The folder is
        written into a temporary sibling and renamed into place under a lock beside it
        (:func:`fairaudit.data.replacing_folder`): a concurrent writer, an existing model folder
        without ``overwrite=True``, and a folder that is neither empty nor a model folder are
        refused with :class:`fairaudit.data.OutputError` naming the folder.
        """
        self._check_fitted()
        directory = Path(directory)
        tensors = {f"state.{name}": t.detach().cpu().contiguous() for name, t in self._state().items()}
        tensors["seen_indptr"] = torch.as_tensor(self.seen_indptr_)
        tensors["seen_indices"] = torch.as_tensor(self.seen_indices_)
        with replacing_folder(directory, overwrite=overwrite, is_ours=is_model_folder, kind="model folder",
                              replaced=(CONFIG_FILE, WEIGHTS_FILE)) as temporary:  # fmt: skip
            save_file(tensors, str(temporary / WEIGHTS_FILE))
            config = {
                "format_version": FORMAT_VERSION,
                "kind": self.kind,
                "params": self.get_params(),
                "data_fingerprint": self.data_fingerprint_,
                "split": self.split_,
                "user_ids": self.user_ids_.tolist(),
                "item_ids": self.item_ids_.tolist(),
                "weights_sha256": file_sha256(temporary / WEIGHTS_FILE),
                "versions": software_versions(),
                **self._extra_config(),
            }
            if getattr(self, "validation_", None) is not None:
                config[VALIDATION_KEY] = self.validation_
            if getattr(self, "privacy_", None) is not None:
                config[PRIVACY_KEY] = self.privacy_
            config = json.loads(json.dumps(config))  # exactly what load_model will read back
            config[CONFIG_CHECKSUM] = config_checksum(config)
            (temporary / CONFIG_FILE).write_text(json.dumps(config, indent=1))
        return directory

    @classmethod
    def _from_config(cls, config: dict) -> "Recommender":
        return cls(**config["params"])

    def fingerprint(self) -> str:
        """Identity of the fitted model: its kind and a hash of its learned tensors."""
        self._check_fitted()
        digest = _tensor_digest(self._state())
        return f"{self.kind}-{digest}"


def _top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest ``k`` scores per row, ties broken by column (catalogue) position.

    >>> _top_k(torch.tensor([[1.0, 3.0, 3.0, 2.0]]), 2)[1].tolist()
    [[1, 2]]
    """
    if k == 0 or scores.shape[0] == 0:
        empty = scores[:, :0]
        return empty, empty.long()
    # torch.topk finds the k-th largest score per row; everything above it is in, and ties at
    # it are filled in catalogue order. Only the k chosen items are then sorted (stably, so
    # equal scores keep their catalogue order): O(n_items) per row instead of a full sort.
    kth = torch.topk(scores, k, dim=1).values[:, -1:]
    above = scores > kth
    tied = scores == kth
    slots = k - above.sum(dim=1, keepdim=True)
    keep = above | (tied & (torch.cumsum(tied, dim=1) <= slots))
    idx = keep.nonzero()[:, 1].view(scores.shape[0], k)
    values, order = torch.sort(scores.gather(1, idx), dim=1, descending=True, stable=True)
    return values, idx.gather(1, order)


def config_checksum(config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of ``config`` without :data:`CONFIG_CHECKSUM`.

    Covers every key of ``config.json``: kind, parameters (a re-ranker's nested ``base`` and any
    encoder path included), ids, split, data fingerprint and the weights' checksum.

    >>> config_checksum({"kind": "mf", "params": {"factors": 8}}) == config_checksum(
    ...     {"params": {"factors": 8}, "kind": "mf", "config_sha256": "x"})
    True
    """
    body = {key: value for key, value in config.items() if key != CONFIG_CHECKSUM}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def is_model_folder(directory: str | Path) -> bool:
    """Whether ``directory`` holds a FairAudit model's ``config.json`` (a JSON object with ``kind`` and ``format_version``).

    >>> import tempfile
    >>> is_model_folder(tempfile.mkdtemp())
    False
    """
    try:
        config = json.loads((Path(directory) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "kind" in config and "format_version" in config


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def software_versions() -> dict[str, str]:
    """Versions of the libraries that determine results, recorded for reproducibility."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("fairaudit", "torch", "transformers", "numpy", "pandas", "scikit-learn", "shap"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            if pkg == "fairaudit":
                from fairaudit import __version__

                out[pkg] = __version__
    return out


_REGISTRY: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make a model kind loadable by ``load_model``.

    The kind must be declared in :data:`fairaudit._choices.MODEL_KINDS`, which the command line
    reads without importing the models.
    """
    if cls.kind not in MODEL_KINDS:
        raise ValueError(_UNDECLARED_KIND.format(cls.kind, cls.__name__))
    _REGISTRY[cls.kind] = cls
    return cls


def model_kinds() -> tuple[str, ...]:
    """Registered model kinds, in the order of :data:`fairaudit._choices.MODEL_KINDS`.

    >>> model_kinds()[:3]
    ('imported', 'itemknn', 'llm')
    """
    return tuple(kind for kind in MODEL_KINDS if kind in _REGISTRY)


def create_model(kind: str, **params: Any) -> Recommender:
    """New, unfitted model of ``kind`` with ``params``."""
    if kind not in _REGISTRY:
        raise ValueError(f"Unknown model kind '{kind}'; expected one of {model_kinds()}")
    return _REGISTRY[kind](**params)


def load_model(directory: str | Path, dataset: Dataset | None = None) -> Recommender:
    """Load a saved model folder; refuses pickles, tampering and other data.

    Only ``config.json`` (JSON) and ``model.safetensors`` are read, so loading executes
    no code from the folder. The whole folder is verified: the checksum of ``config.json``'s
    canonical JSON (:func:`config_checksum`) and that of the weights must match the ones recorded
    at saving, else :class:`ModelFolderError` names the folder and says it was modified. Folders
    of format version 1 (weights-only checksum) cannot be verified and are refused with a hint to
    re-train. With ``dataset`` given, its fingerprint must match the one the model was trained on.
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not directory.is_dir():
        raise ModelFolderError(_NOT_A_MODEL.format(directory, "not a folder"))
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ModelFolderError(_NOT_A_MODEL.format(directory, f"{path.name} is missing"))
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise ModelFolderError(_NOT_A_MODEL.format(directory, f"{CONFIG_FILE} is not valid JSON ({err})")) from None
    if isinstance(config, dict) and config.get("format_version") == 1 and CONFIG_CHECKSUM not in config:
        raise ModelFolderError(_OLD_FORMAT.format(directory))
    missing = [key for key in _REQUIRED_KEYS if not isinstance(config, dict) or key not in config]
    if missing:
        raise ModelFolderError(_NOT_A_MODEL.format(directory, _MISSING_KEYS.format(CONFIG_FILE, missing)))
    if config[CONFIG_CHECKSUM] != config_checksum(config):
        raise ModelFolderError(_MODIFIED.format(directory, CONFIG_FILE))
    if config["format_version"] != FORMAT_VERSION:
        raise ModelFolderError(_NOT_A_MODEL.format(directory, _NEWER_FORMAT.format(config["format_version"], FORMAT_VERSION)))
    if config.get("kind") not in _REGISTRY:
        raise ModelFolderError(_NOT_A_MODEL.format(directory, f"unknown model kind {config.get('kind')!r}"))
    if config.get("weights_sha256") != file_sha256(weights_path):
        raise ModelFolderError(_MODIFIED.format(directory, WEIGHTS_FILE))
    if dataset is not None and dataset.fingerprint() != config["data_fingerprint"]:
        raise ModelFolderError(_WRONG_DATA.format(directory, config["data_fingerprint"], dataset.fingerprint()))
    try:
        # Fresh, allocator-aligned copies: tensors in the file buffer may be misaligned,
        # which makes some CPU kernels round differently from the model before saving.
        tensors = {name: t.clone() for name, t in load_file(str(weights_path)).items()}
    except (SafetensorError, OSError) as err:
        raise ModelFolderError(_NOT_A_MODEL.format(directory, f"{WEIGHTS_FILE} is not a safetensors file ({err})"))
    fitted = {
        "user_ids_": np.asarray(config["user_ids"], dtype=object),
        "item_ids_": np.asarray(config["item_ids"], dtype=object),
        "seen_indptr_": tensors.pop("seen_indptr").numpy(),
        "seen_indices_": tensors.pop("seen_indices").numpy(),
        "data_fingerprint_": config["data_fingerprint"],
        "split_": config["split"],
    }
    if VALIDATION_KEY in config:
        fitted["validation_"] = config[VALIDATION_KEY]
    if PRIVACY_KEY in config:
        fitted["privacy_"] = config[PRIVACY_KEY]
    state = {name.removeprefix("state."): t for name, t in tensors.items()}
    return restore_model(config, state, fitted)


#: Fitted attributes every model shares (catalogue, users, training history, provenance).
FITTED_ATTRIBUTES = ("user_ids_", "item_ids_", "seen_indptr_", "seen_indices_", "data_fingerprint_", "split_")


def restore_model(config: Mapping[str, Any], state: dict[str, torch.Tensor], fitted: Mapping[str, Any]) -> Recommender:
    """Rebuild a fitted model of ``config["kind"]`` from its learned tensors.

    ``fitted`` holds the :data:`FITTED_ATTRIBUTES`; wrappers (re-rankers) pass their own so the
    wrapped model shares them. Only registered kinds are built: no code comes from the folder.
    """
    model = _REGISTRY[config["kind"]]._from_config(dict(config))
    for name in (*FITTED_ATTRIBUTES, "validation_", "privacy_"):
        if name in fitted:
            setattr(model, name, fitted[name])
    model._build_index()
    model._load_state(state, dict(config))
    return model
