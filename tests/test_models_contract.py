"""Interface contract every recommender honours, plus planted-signal recovery.

``RecommenderContract`` is a mixin: each model's test class inherits it and sets ``kind``
and small, fast ``params`` (wrappers, i.e. the re-rankers, also the model they wrap).
Data are tiny so the whole file runs in seconds.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
import torch

from fairaudit.data import Dataset, Split, random_holdout
from fairaudit.metrics import accuracy_metrics
from fairaudit.models import ExternalRecommender, Progress, TrainingCancelled, create_model, load_model
from fairaudit.models._base import _NOT_FITTED, _UNKNOWN_USERS
from tests.conftest import make_tiny_dataset


@pytest.fixture(scope="session", autouse=True)
def _embedding_cache(tmp_path_factory):
    """Keep the text-embedding cache of these tests out of the user's home."""
    old = os.environ.get("FAIRAUDIT_CACHE")
    os.environ["FAIRAUDIT_CACHE"] = str(tmp_path_factory.mktemp("fairaudit-cache"))
    yield
    if old is None:
        os.environ.pop("FAIRAUDIT_CACHE", None)
    else:
        os.environ["FAIRAUDIT_CACHE"] = old


GENRES = ("Comedy", "Action")
PLOTS = {
    "Comedy": "A hilarious comedy full of jokes, pranks and laughter.",
    "Action": "An explosive action thriller with car chases, fights and explosions.",
}


def planted_dataset(n_users: int = 120, n_items: int = 40, per_user: int = 10, seed: int = 0) -> Dataset:
    """Synthetic data with planted structure.

    Even items are comedies, odd items action films (said in their text). F users pick
    comedies with probability 0.9, M users action films; within a genre, item ``j`` is
    chosen with Zipf weight ``1 / (1 + j // 2)`` (a popularity skew).
    """
    rng = np.random.default_rng(seed)
    genre = np.array([GENRES[j % 2] for j in range(n_items)])
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"{g} film number {j}" for j, g in enumerate(genre)],
            "genres": genre,
            "description": [PLOTS[g] for g in genre],
        }
    )
    gender = np.where(np.arange(n_users) % 2 == 0, "F", "M")
    users = pd.DataFrame(
        {"user_id": [f"u{u}" for u in range(n_users)], "gender": gender, "age_band": "25-34", "region": "South"}
    )
    zipf = 1.0 / (1.0 + np.arange(n_items) // 2)
    rows = []
    for u in range(n_users):  # test-data generation only
        liked = np.where(genre == ("Comedy" if gender[u] == "F" else "Action"), 0.9, 0.1)
        p = zipf * liked / (zipf * liked).sum()
        rows += [(f"u{u}", f"i{j}") for j in rng.choice(n_items, size=per_user, replace=False, p=p)]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id"])
    return Dataset(interactions=interactions, users=users, items=items, name="planted")


def split_of(dataset: Dataset) -> Split:
    return random_holdout(dataset, test_fraction=0.2, seed=0)


@pytest.fixture(scope="module")
def tiny():
    data = make_tiny_dataset()
    return data, split_of(data)


@pytest.fixture(scope="module")
def planted():
    data = planted_dataset()
    return data, split_of(data)


def random_ndcg(dataset: Dataset, split: Split, k: int = 5, rounds: int = 20) -> float:
    """Mean NDCG@k of uniformly random rankings of the unseen items (the chance level)."""
    rng = np.random.default_rng(0)
    model = create_model("popularity").fit(dataset, split)
    values = []
    for _ in range(rounds):
        model.counts_ = torch.as_tensor(rng.random(len(model.item_ids_)), dtype=torch.float32)
        recs = model.recommend(split.test["user_id"].unique(), k=k)
        values.append(accuracy_metrics(recs, split.test, k=k)["ndcg"].mean())
    return float(np.mean(values))


class RecommenderContract:
    """Mixin: the interface contract; subclasses set ``kind`` and ``params``."""

    kind: str
    params: dict = {}
    #: Required margin of planted-signal NDCG@5 over random rankings.
    planted_factor: float = 1.5
    #: Wrappers (re-rankers): ``(kind, params)`` of the model to wrap. ``make()`` then passes a
    #: fresh, unfitted one as ``base=`` each time, so no two models under test share a base.
    base: tuple[str, dict] | None = None
    #: Whether ``recommend`` lists are the top-k of ``score`` (score column decreasing with rank).
    #: Re-rankers reorder the base model's candidates by more than relevance and report the base
    #: model's score of each item, so for them the lists are checked only against ``score``.
    ranked_by_score: bool = True
    #: Whether the model is saved as a model folder. External models (``ExternalRecommender``) are code,
    #: not data: ``save`` refuses them (``TypeError``), which is what the contract checks for them instead.
    saveable: bool = True

    def make(self, **overrides):
        wrapped = {} if self.base is None else {"base": create_model(self.base[0], **self.base[1])}
        return create_model(self.kind, **{**wrapped, **self.params, **overrides})

    @pytest.fixture(scope="class")
    def fitted(self, tiny):
        data, split = tiny
        return self.make().fit(data, split)

    def test_fit_returns_self(self, tiny):
        model = self.make()
        assert model.fit(*tiny) is model

    def test_unfitted_raises(self):
        model = self.make()
        with pytest.raises(RuntimeError, match=re.escape(_NOT_FITTED.format(type(model).__name__))):
            model.recommend(["u0"])
        with pytest.raises(RuntimeError, match="not fitted yet"):
            model.save("unused")

    def test_recommend_frame(self, fitted, tiny):
        data, split = tiny
        recs = fitted.recommend(k=5)
        assert list(recs.columns) == ["user_id", "rank", "item_id", "score"]
        assert len(recs) == 5 * len(data.users)
        np.testing.assert_array_equal(recs["rank"].to_numpy().reshape(-1, 5), np.tile(np.arange(1, 6), (len(data.users), 1)))
        scores = fitted.score(data.users["user_id"])
        rows, cols = fitted.user_positions(recs["user_id"]), fitted.item_positions(recs["item_id"])
        np.testing.assert_allclose(recs["score"], scores[rows, cols], rtol=1e-6)
        if self.ranked_by_score:
            diffs = recs.groupby("user_id")["score"].diff().dropna()
            assert (diffs <= 0).all()
        seen = set(zip(split.train["user_id"], split.train["item_id"]))
        assert not any(pair in seen for pair in zip(recs["user_id"], recs["item_id"]))
        with_seen = fitted.recommend(k=len(data.items), exclude_seen=False)
        assert len(with_seen) == len(data.items) * len(data.users)

    def test_recommend_matches_score(self, fitted):
        recs = fitted.recommend(["u3"], k=3, exclude_seen=False)
        scores = fitted.score(["u3"])[0]
        np.testing.assert_allclose(recs["score"], scores[fitted.item_positions(recs["item_id"])], rtol=1e-6)
        if self.ranked_by_score:
            expected = np.argsort(-scores, kind="stable")[:3]
            assert recs["item_id"].tolist() == fitted.item_ids_[expected].tolist()

    def test_score_shape(self, fitted, tiny):
        data, _ = tiny
        full = fitted.score(["u0", "u1", "u2"])
        assert full.shape == (3, len(data.items)) and full.dtype == np.float32
        part = fitted.score(["u1"], ["i5", "i2"])
        np.testing.assert_allclose(part, full[1:2, [5, 2]], rtol=1e-6)

    def test_save_load_identical(self, fitted, tiny, tmp_path):
        data, _ = tiny
        if not self.saveable:
            with pytest.raises(TypeError, match="cannot be saved"):
                fitted.save(tmp_path / "m")
            assert not (tmp_path / "m").exists()
            return
        fitted.save(tmp_path / "m")
        loaded = load_model(tmp_path / "m", dataset=data)
        assert type(loaded) is type(fitted) and loaded.get_params() == fitted.get_params()
        np.testing.assert_array_equal(loaded.score(["u0", "u7"]), fitted.score(["u0", "u7"]))
        pd.testing.assert_frame_equal(loaded.recommend(k=4), fitted.recommend(k=4))
        assert loaded.fingerprint() == fitted.fingerprint()

    def test_deterministic(self, fitted, tiny):
        again = self.make().fit(*tiny)
        np.testing.assert_array_equal(again.score(["u0", "u5"]), fitted.score(["u0", "u5"]))

    def test_unknown_user(self, fitted):
        with pytest.raises(KeyError, match=re.escape(_UNKNOWN_USERS.format(["nobody"], 40))):
            fitted.score(["nobody"])

    def test_progress_and_cancel(self, tiny):
        events: list[Progress] = []
        self.make().fit(*tiny, progress=events.append)
        assert events and events[-1].epoch == events[-1].n_epochs
        assert all(np.isfinite(e.loss) for e in events)

        def cancel(event: Progress) -> None:
            raise TrainingCancelled()

        model = self.make()
        with pytest.raises(TrainingCancelled):
            model.fit(*tiny, progress=cancel)
        with pytest.raises(RuntimeError, match="not fitted yet"):
            model.score(["u0"])

    def test_attribute_overrides(self, fitted):
        """Models without a profile ignore overrides exactly; with one, only changed users move."""
        base = fitted.score(["u0", "u1"])  # u0 is F, u1 is M
        flipped = fitted.score(["u0", "u1"], attribute_overrides={"gender": "M"})
        if not self.params.get("use_profile"):
            np.testing.assert_array_equal(flipped, base)
            return
        assert np.abs(flipped[0] - base[0]).max() > 1e-4
        np.testing.assert_allclose(flipped[1], base[1], rtol=1e-5, atol=1e-6)

    def test_planted_signal(self, planted):
        data, split = planted
        model = self.make().fit(data, split)
        recs = model.recommend(split.test["user_id"].unique(), k=5)
        ndcg = accuracy_metrics(recs, split.test, k=5)["ndcg"].mean()
        chance = random_ndcg(data, split)
        assert ndcg > self.planted_factor * chance, (ndcg, chance)


class TestPopularity(RecommenderContract):
    kind = "popularity"


class TestItemKNN(RecommenderContract):
    kind = "itemknn"
    params = {"n_neighbors": 10}
    planted_factor = 2.0


class TestMF(RecommenderContract):
    kind = "mf"
    params = {"factors": 8, "iterations": 5, "device": "cpu"}
    planted_factor = 2.0


class TestMFBPR(RecommenderContract):
    """``implicit``'s BPR (deterministic here: one thread)."""

    kind = "mf"
    params = {"factors": 8, "iterations": 30, "algorithm": "bpr", "learning_rate": 0.05, "reg": 0.01, "device": "cpu"}


class TestMFEarlyStopping(RecommenderContract):
    """Validation carved from training, early stopping, refit: the contract holds and the choice is saved."""

    kind = "mf"
    params = {**TestMF.params, "iterations": 8, "patience": 2}
    planted_factor = 2.0

    def test_validation_record(self, fitted):
        record = fitted.validation_
        assert record["metric"] == "ndcg@10" and 1 <= record["best_step"] <= len(record["curve"]) <= 8
        assert record["chosen"] == {"iterations": record["best_step"]}


class TestLLM(RecommenderContract):
    kind = "llm"
    params = {"dim": 16, "epochs": 8, "batch_size": 32, "lr": 0.02, "device": "cpu"}
    planted_factor = 2.0


class TestLLMWithProfile(RecommenderContract):
    kind = "llm"
    params = {**TestLLM.params, "use_profile": True}


class RerankerContract(RecommenderContract):
    """A re-ranker around a fresh matrix-factorisation model, at a strength that reorders lists.

    Through the shared contract, ``fit`` fits the unfitted base on the same data (progress and
    cancelling are the base's epochs); the tests below add the usual case, a base already
    fitted on this split, and check that the re-ranking under test is not a no-op.
    """

    base = ("mf", TestMF.params)
    ranked_by_score = False
    planted_factor = TestMF.planted_factor  # re-ranking at strength 0.5 keeps ~3x chance here

    def test_reranking_changes_the_base_lists(self, fitted):
        recs, base_recs = fitted.recommend(k=5), fitted.base.recommend(k=5)
        assert not recs[["user_id", "item_id"]].equals(base_recs[["user_id", "item_id"]])

    def test_fitted_base_is_reused_with_progress_and_cancel(self, tiny):
        data, split = tiny
        base = create_model(self.base[0], **self.base[1]).fit(data, split)
        before = base.fingerprint()
        events: list[Progress] = []
        model = self.make(base=base).fit(data, split, progress=events.append)
        assert model.base is base and base.fingerprint() == before
        # The base is not trained again: one event for the re-ranker's own (non-iterative) step.
        assert [(e.epoch, e.n_epochs) for e in events] == [(1, 1)] and np.isfinite(events[0].loss)

        def cancel(event: Progress) -> None:
            raise TrainingCancelled()

        cancelled = self.make(base=base)
        with pytest.raises(TrainingCancelled):
            cancelled.fit(data, split, progress=cancel)
        with pytest.raises(RuntimeError, match="not fitted yet"):
            cancelled.score(["u0"])
        assert base.fingerprint() == before  # the caller's base stays fitted and unchanged


class TestExposureReranker(RerankerContract):
    kind = "rerank_exposure"
    #: ``genres``: the planted catalogue has no ``provider`` column (the default attribute).
    params = {"strength": 0.5, "attribute": "genres"}


class TestCalibratedReranker(RerankerContract):
    kind = "rerank_calibrated"
    params = {"strength": 0.5}


class TestMMRReranker(RerankerContract):
    kind = "rerank_mmr"
    params = {"strength": 0.5}


def _ids_to_int(ids) -> np.ndarray:
    return np.array([int(str(i)[1:]) for i in ids], dtype=np.float32)


def parity_scores(user_ids, item_ids):
    """Stands for a system trained elsewhere: users prefer items of their id's parity, then lower ids.

    On the planted data even users are F and even items comedies, so the planted signal is found.
    """
    users, items = _ids_to_int(user_ids), _ids_to_int(item_ids)
    same = (users[:, None] % 2) == (items[None, :] % 2)
    return same + 1.0 / (1.0 + items[None, :] // 2)


def gender_scores(user_ids, item_ids, attributes):
    """As :func:`parity_scores`, but the preference is read from the ``gender`` attribute (F: even items)."""
    items = _ids_to_int(item_ids)
    female = (attributes["gender"].to_numpy() == "F")[:, None]
    return (female == (items[None, :] % 2 == 0)) + 1.0 / (1.0 + items[None, :] // 2)


class TestExternal(RecommenderContract):
    """``ExternalRecommender`` (not a registered kind: ``make`` builds it directly). It is code, not data:
    ``save`` is refused (``saveable``); it trains nothing, so progress is one step; without
    ``attribute_aware`` overrides are refused plainly instead of being ignored."""

    kind = "external"
    saveable = False
    score_fn = staticmethod(parity_scores)
    aware = False

    def make(self, **overrides):
        return ExternalRecommender(score=self.score_fn, attribute_aware=self.aware, name="contract", **overrides)

    def test_attribute_overrides(self, fitted):
        with pytest.raises(ValueError, match="cannot be probed"):
            fitted.score(["u0", "u1"], attribute_overrides={"gender": "M"})
        assert not fitted.probeable


class TestExternalAttributeAware(TestExternal):
    score_fn = staticmethod(gender_scores)
    aware = True

    def test_attribute_overrides(self, fitted):
        """Only the users whose attribute changes move."""
        base = fitted.score(["u0", "u1"])  # u0 is F, u1 is M
        flipped = fitted.score(["u0", "u1"], attribute_overrides={"gender": "M"})
        assert np.abs(flipped[0] - base[0]).max() > 1e-4
        np.testing.assert_array_equal(flipped[1], base[1])
        assert fitted.probeable
