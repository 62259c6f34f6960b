"""A recommender trained outside FairAudit, scored in process through a Python function.

:class:`ExternalRecommender` wraps any scoring function (an ``implicit`` ALS model, a RecBole or
TensorFlow model, a call to an internal service) as a :class:`~fairaudit.models.Recommender`, so
the audit, the comparison, the report, the re-rankers and (for attribute-aware functions) the
counterfactual probes work on it unchanged. FairAudit never trains it: ``fit(dataset, split)``
only records the catalogue, the users, the training interactions (so ``recommend`` excludes seen
items) and the split, as for every other kind. It is code, not data, so it is never saved as a
model folder (FairAudit never pickles): keep the external model's own files and wrap it again.
"""

from __future__ import annotations

import time
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from fairaudit.data import Dataset, Split
from fairaudit.models._base import Progress, ProgressCallback, Recommender, _csr_from_pairs
from fairaudit.models._imported import NotRescorable

#: ``fn(user_ids, item_ids)`` or, attribute-aware, ``fn(user_ids, item_ids, attributes=frame)`` -> scores.
ScoreFunction = Callable[..., Any]

#: Users whose scores make up :meth:`ExternalRecommender.fingerprint` (its weights are not FairAudit's to read).
FINGERPRINT_USERS = 64

_NOT_CALLABLE = "ExternalRecommender needs score=fn, a function fn(user_ids, item_ids, attributes=None) -> scores; got {0!r}"
_CANNOT_SAVE = (
    "External model '{0}' cannot be saved as a FairAudit model folder: it is code (a Python scoring function), "
    "not data, and FairAudit never pickles. Keep the external model's own files (e.g. its factors as safetensors) "
    "and wrap it again with ExternalRecommender after loading them; audit folders record its name and description"
)
_UNKNOWN_IDS = "External model '{0}' knows {1} id(s) that are not in dataset.{1}s (e.g. {2}); wrap it with ids of this dataset"
_NO_KNOWN = "External model '{0}' knows none of the dataset's {1}s; pass {1}s= as the ids its function scores"
_BAD_SHAPE = "The score function of external model '{0}' returned shape {1}; expected (users, items) = {2}"
_NOT_NUMERIC = "The score function of external model '{0}' returned non-numeric scores ({1}); return a float array"
_NAN_SCORES = "The score function of external model '{0}' returned NaN for {1} (user, item) pair(s); return finite scores (or -inf for items it must never recommend)"
_NOT_ATTRIBUTE_AWARE = (
    "External model '{0}' cannot be probed with attribute_overrides {1}: its score function does not receive user "
    "attributes (attribute_aware=False), so FairAudit cannot re-score it as if an attribute were different. "
    "Wrap it with attribute_aware=True and a function fn(user_ids, item_ids, attributes) that reads them"
)
_UNKNOWN_ATTRIBUTE = "attribute_overrides name '{0}', which is not a user column; expected one of {1}"


def _ids(values: Sequence | None) -> pd.Index | None:
    return None if values is None else pd.Index(pd.Series(list(values), dtype=object).astype(str))


class ExternalRecommender(Recommender):
    """A model trained elsewhere, scored by ``score(user_ids, item_ids, attributes=None)``.

    Parameters
    ----------
    score : callable
        ``score(user_ids, item_ids)`` -> scores of shape ``(len(user_ids), len(item_ids))`` (a numpy
        array, torch tensor or anything ``np.asarray`` reads; higher is better, ``-inf`` = never
        recommend). Ids are string arrays; it is called once per chunk of users with every item it
        knows. With ``attribute_aware=True`` it is called as ``score(user_ids, item_ids,
        attributes=frame)``, where ``frame`` (indexed by ``user_id``, one row per requested user)
        holds the users' attribute columns with any ``attribute_overrides`` applied.
    users, items : sequence of str, optional
        Ids the function can score (default: every user / item of the dataset given to ``fit``).
        The model knows only these users; dataset items outside ``items`` get ``-inf`` (never
        recommended, still part of the audited catalogue).
    attribute_aware : bool
        Whether the function receives and uses the user attributes, so counterfactual probes can
        re-score users as if an attribute had another value. Otherwise the model is not probeable:
        ``attribute_overrides`` raise :class:`~fairaudit.models.NotRescorable` (a ``ValueError``) and
        the audit's probes skip it, instead of reporting a zero change FairAudit cannot vouch for.
    name : str
        Shown in audit folders (``audit.json`` model params) and errors.
    description : str
        One line on what the system is (e.g. "implicit ALS, 64 factors, trained 2026-11-30").

    Notes
    -----
    ``fit(dataset, split)`` trains nothing: it records the data, the split and the training
    interactions like every kind (``recommend`` excludes seen items) and checks the function once
    on a few users. ``get_params()`` returns ``name, description, attribute_aware, function,
    n_users, n_items`` (JSON-ready, recorded in ``audit.json``); :meth:`fingerprint` hashes the
    function's scores of the first :data:`FINGERPRINT_USERS` users (computed at ``fit``). :meth:`save`
    raises ``TypeError``, and so does saving a re-ranker that wraps it. It is not a registered kind (``create_model``/``load_model`` cannot build code).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from fairaudit.data import Dataset, Split
    >>> inter = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "y"]})
    >>> data = Dataset(inter, pd.DataFrame({"user_id": ["a", "b"]}),
    ...                pd.DataFrame({"item_id": ["x", "y", "z"], "title": ["X", "Y", "Z"]}))
    >>> def fn(user_ids, item_ids):
    ...     return np.tile([{"x": 3.0, "y": 2.0, "z": 1.0}[i] for i in item_ids], (len(user_ids), 1))
    >>> model = ExternalRecommender(score=fn, name="toy").fit(data, Split(inter, inter.iloc[:0], "all", 0))
    >>> model.recommend(["b"], k=2)["item_id"].tolist()
    ['x', 'z']
    """

    kind: ClassVar[str] = "external"

    def __init__(
        self,
        score: ScoreFunction,
        users: Sequence | None = None,
        items: Sequence | None = None,
        *,
        attribute_aware: bool = False,
        name: str = "external",
        description: str = "",
    ) -> None:
        if not callable(score):
            raise TypeError(_NOT_CALLABLE.format(score))
        # Stored as ``score_fn``: ``score`` is the Recommender's scoring method.
        self.score_fn = score
        self.users = None if users is None else list(_ids(users))
        self.items = None if items is None else list(_ids(items))
        self.attribute_aware = bool(attribute_aware)
        self.name = str(name)
        self.description = str(description)

    @property
    def probeable(self) -> bool:  # type: ignore[override]
        """Counterfactual probes apply only when the function receives the user attributes."""
        return self.attribute_aware

    def get_params(self) -> dict[str, Any]:
        """What the audit folder records: name, description, whether attribute-aware, the function's name, sizes.

        The function and id lists themselves are not JSON; ``n_users``/``n_items`` are ``None``
        for "every id of the dataset".
        """
        fn = self.score_fn
        function = f"{getattr(fn, '__module__', '') or ''}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
        return {
            "name": self.name,
            "description": self.description,
            "attribute_aware": self.attribute_aware,
            "function": function.lstrip("."),
            "n_users": None if self.users is None else len(self.users),
            "n_items": None if self.items is None else len(self.items),
        }

    # ---- fitting ----------------------------------------------------------------------
    def _fit(
        self,
        dataset: Dataset,
        split: Split,
        train_users: np.ndarray,
        train_items: np.ndarray,
        progress: ProgressCallback | None,
    ) -> None:
        start = time.perf_counter()
        if self.users is not None:
            self._restrict_users(pd.Index(self.users), train_users, train_items)
        known_items = self.item_ids_ if self.items is None else pd.Index(self.items)
        missing = known_items.difference(pd.Index(self.item_ids_)) if self.items is not None else []
        if len(missing):
            raise ValueError(_UNKNOWN_IDS.format(self.name, "item", list(missing[:5])))
        self.known_items_ = np.flatnonzero(pd.Index(self.item_ids_).isin(known_items))
        if len(self.known_items_) == 0:
            raise ValueError(_NO_KNOWN.format(self.name, "item"))
        users = dataset.users.assign(user_id=dataset.users["user_id"].astype(str)).set_index("user_id")
        self.attributes_ = users.reindex(self.user_ids_).astype(str)
        # One call on a few users checks the function (shape, numbers) and identifies it.
        first = self._call(np.arange(min(FINGERPRINT_USERS, len(self.user_ids_))), self.known_items_, None)
        self.sample_scores_ = torch.from_numpy(first)
        if progress is not None:
            progress(Progress(1, 1, 0.0, time.perf_counter() - start, "external model: nothing to train"))

    def _restrict_users(self, known: pd.Index, train_users: np.ndarray, train_items: np.ndarray) -> None:
        """Keep only the users the function knows (in dataset order) and their training history."""
        missing = known.difference(pd.Index(self.user_ids_))
        if len(missing):
            raise ValueError(_UNKNOWN_IDS.format(self.name, "user", list(missing[:5])))
        keep = pd.Index(self.user_ids_).isin(known)
        if not keep.any():
            raise ValueError(_NO_KNOWN.format(self.name, "user"))
        new_position = np.cumsum(keep) - 1
        rows = keep[train_users]
        self.user_ids_ = self.user_ids_[keep]
        self._build_index()
        self.seen_indptr_, self.seen_indices_ = _csr_from_pairs(
            new_position[train_users[rows]], train_items[rows], len(self.user_ids_)
        )

    # ---- scoring ----------------------------------------------------------------------
    def _call(self, user_idx: np.ndarray, item_idx: np.ndarray, attribute_overrides: Mapping[str, str] | None) -> np.ndarray:
        user_ids = self.user_ids_[user_idx]
        item_ids = self.item_ids_[item_idx]
        if self.attribute_aware:
            attributes = self.attributes_.iloc[user_idx].copy()
            for column, value in (attribute_overrides or {}).items():
                if column not in attributes.columns:
                    raise ValueError(_UNKNOWN_ATTRIBUTE.format(column, list(attributes.columns)))
                attributes[column] = str(value)
            raw = self.score_fn(user_ids, item_ids, attributes=attributes)
        else:
            if attribute_overrides:
                raise NotRescorable(_NOT_ATTRIBUTE_AWARE.format(self.name, dict(attribute_overrides)))
            raw = self.score_fn(user_ids, item_ids)
        if isinstance(raw, torch.Tensor):
            raw = raw.detach().cpu().numpy()
        try:
            scores = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise ValueError(_NOT_NUMERIC.format(self.name, err)) from None
        expected = (len(user_ids), len(item_ids))
        if scores.shape != expected:
            raise ValueError(_BAD_SHAPE.format(self.name, scores.shape, expected))
        n_nan = int(np.isnan(scores).sum())
        if n_nan:
            raise ValueError(_NAN_SCORES.format(self.name, n_nan))
        return scores

    def _score_indices(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray | None,
        attribute_overrides: Mapping[str, str] | None = None,
    ) -> torch.Tensor:
        n_items = len(self.item_ids_)
        wanted = np.arange(n_items) if item_idx is None else np.asarray(item_idx, dtype=np.int64)
        # Only items the function knows are asked for; the others stay at -inf.
        known = np.zeros(n_items, dtype=bool)
        known[self.known_items_] = True
        asked = known[wanted]
        out = np.full((len(user_idx), len(wanted)), -np.inf, dtype=np.float32)
        if asked.any():
            out[:, asked] = self._call(np.asarray(user_idx), wanted[asked], attribute_overrides)
        return torch.from_numpy(out)

    # ---- identity and persistence -----------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        """What identifies the fitted model: the function's scores of the first users (its weights are not ours).

        :meth:`fingerprint` (and a re-ranker's around it) hashes these.
        """
        return {"sample_scores": self.sample_scores_}

    def _extra_config(self) -> dict[str, Any]:
        # Reached only while writing a model folder (this model's or a re-ranker's around it): refuse.
        raise TypeError(_CANNOT_SAVE.format(self.name))

    def save(self, directory, *, overwrite: bool = False):  # type: ignore[override]
        """Refused: an external model is code, not data (``TypeError`` saying so); unfitted: not fitted yet."""
        self._check_fitted()
        raise TypeError(_CANNOT_SAVE.format(self.name))
