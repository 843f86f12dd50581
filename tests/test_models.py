"""The model contract, run over every model and backend present (as implicit's RecommenderBaseTestMixin).

A class per model inherits ``RecommenderContract`` and says how to make a
small, fast instance of it. ``SparseCooccurrence`` is a test double of a
family that is not a dense items x items matrix: it passes the same tests
without any change to the package beyond its registry entry.
"""

import importlib.util
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from jukebox_fast import runtime
from jukebox_fast.errors import ModelFileError
from jukebox_fast.memory import MemoryPlan
from jukebox_fast.models import EASE, EDLAE, MODELS, LinearAutoencoder, Popularity, Recommender, SparseEDLAE, make_model
from jukebox_fast.models.itemitem import select_best


def random_plays(n_users=80, n_items=30, density=0.15, seed=0):
    """Counts with rows without plays, an item nobody played, and popularity ties."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density) * rng.integers(1, 9, (n_users, n_items))
    dense[:3] = 0  # rows without plays
    dense[:, n_items - 1] = 0  # an item nobody played
    return sp.csr_array(dense.astype(np.int64))


def popularity_order(plays):
    listeners = np.bincount(plays.indices, minlength=plays.shape[1])
    return np.argsort(-listeners, kind="stable")


class RecommenderContract:
    """The tests every model passes. Subclasses define ``make()``: an unfitted, small and fast model."""

    def make(self) -> Recommender:
        raise NotImplementedError

    @pytest.fixture
    def plays(self):
        return random_plays()

    @pytest.fixture
    def fitted(self, plays):
        return self.make().fit(plays)

    def test_fit_returns_self_and_recommend_gives_shapes_and_dtypes(self, plays):
        model = self.make()
        assert model.fit(plays) is model and model.is_fitted() and model.n_items == plays.shape[1]
        indices, scores = model.recommend(plays, k=7)
        assert indices.shape == scores.shape == (plays.shape[0], 7)
        assert indices.dtype == np.int32 and scores.dtype == np.float32
        assert ((indices >= -1) & (indices < plays.shape[1])).all()
        assert (np.diff(scores, axis=1) <= 0).all()  # best first
        assert np.array_equal(indices < 0, np.isneginf(scores))

    def test_an_unfitted_model_says_so(self, plays):
        with pytest.raises(RuntimeError, match="not fitted"):
            self.make().recommend(plays)

    def test_rows_without_plays_get_the_most_popular_items(self, fitted, plays):
        indices, _ = fitted.recommend(plays[:3], k=5)
        assert (indices == popularity_order(plays)[:5]).all()

    def test_played_items_are_left_out_unless_asked(self, fitted, plays):
        n = plays.shape[1]
        indices, _ = fitted.recommend(plays, k=10**11)  # k above the catalogue: every item, no more
        assert indices.shape == (plays.shape[0], n)
        for u in range(plays.shape[0]):
            played = set(plays.indices[plays.indptr[u] : plays.indptr[u + 1]].tolist())
            row = indices[u]
            assert sorted(row[row >= 0].tolist()) == sorted(set(range(n)) - played)
            assert (row[n - len(played) :] == -1).all()
        everything, _ = fitted.recommend(plays, k=n, filter_seen=False)
        assert (np.sort(everything, axis=1) == np.arange(n)).all()

    def test_items_restricts_the_ranking_to_them(self, fitted, plays):
        n = plays.shape[1]
        subset = np.array([n - 1, 2, 11, 5, 17, 23])
        full, _ = fitted.recommend(plays, k=n)
        some, _ = fitted.recommend(plays, k=len(subset), items=subset)
        for u in range(plays.shape[0]):
            expected = [i for i in full[u].tolist() if i in set(subset.tolist())]
            assert some[u][: len(expected)].tolist() == expected
        with pytest.raises(ValueError, match="items"):
            fitted.recommend(plays, items=[1, 1])
        with pytest.raises(ValueError, match="items"):
            fitted.recommend(plays, items=[n])

    def test_bad_arguments_are_value_errors(self, fitted, plays):
        for k in (0, -1, 2.5, True):
            with pytest.raises(ValueError, match="k must be"):
                fitted.recommend(plays, k=k)
        with pytest.raises(ValueError, match="items"):
            fitted.recommend(plays[:, :-1])
        with pytest.raises(TypeError):
            fitted.fit(plays.toarray())
        with pytest.raises(TypeError, match="takes \\(user_items, k\\)"):
            fitted.recommend(5, plays[[5]])  # implicit's order
        for bad in (np.nan, np.inf):
            broken = plays.astype(np.float64)
            broken.data[0] = bad
            with pytest.raises(ValueError, match="positive, finite play counts"):
                fitted.recommend(broken)

    def test_similar_items(self, fitted):
        n = fitted.n_items
        indices, scores = fitted.similar_items([0, 4, n - 1], k=5)
        assert indices.shape == scores.shape == (3, 5)
        assert indices.dtype == np.int32 and scores.dtype == np.float32
        for item, row in zip([0, 4, n - 1], indices):
            assert item not in row.tolist() and len(set(row.tolist())) == 5
        one, one_scores = fitted.similar_items(4, k=5)
        assert (one == indices[1]).all() and (one_scores == scores[1]).all()
        everything, _ = fitted.similar_items([3], k=n + 2)
        assert everything.shape == (1, n)
        assert sorted(everything[0][: n - 1].tolist()) == sorted(set(range(n)) - {3}) and (everything[0][n - 1 :] == -1).all()
        with pytest.raises(ValueError, match="items"):
            fitted.similar_items([n])

    def test_params_clone_and_repr(self):
        model = self.make()
        params = model.get_params()
        assert list(params) == list(type(model).parameters())
        clone = type(model)(**params)
        assert repr(clone) == repr(model) and clone.get_params() == params
        for name, value in params.items():
            assert model.set_params(**{name: value}) is model
        with pytest.raises(ValueError, match="no parameter"):
            model.set_params(no_such_parameter=1)

    def test_defaults_live_in_the_signature(self):
        cls = type(self.make())
        assert cls().get_params() == {name: p.default for name, p in cls.parameters().items()}
        assert set(cls.parameter_docs()) == set(cls.parameters())  # every parameter is documented
        assert cls.parameters()["num_threads"].default == 0  # every model takes its thread count

    def test_save_and_load_round_trip(self, fitted, plays, tmp_path):
        fitted.save(tmp_path / "model.jbx")
        loaded = type(fitted).load(tmp_path / "model.jbx")
        assert type(loaded) is type(fitted) and repr(loaded) == repr(fitted)
        for got, want in zip(loaded.recommend(plays, k=6), fitted.recommend(plays, k=6)):
            np.testing.assert_array_equal(got, want)
        other = Popularity if not isinstance(fitted, Popularity) else EASE
        with pytest.raises(ModelFileError, match="not a"):
            other.load(tmp_path / "model.jbx")

    def test_the_thread_count_does_not_change_the_answer(self, plays):
        answers = []
        for threads in (1, 2):
            answers.append(self.make().set_params(num_threads=threads).fit(plays).recommend(plays, k=8))
        with runtime.limit_threads(1):
            answers.append(self.make().fit(plays).recommend(plays, k=8))
        for answer in answers[1:]:
            for got, want in zip(answer, answers[0]):
                np.testing.assert_array_equal(got, want)
        with pytest.raises(ValueError, match="num_threads"):
            self.make().set_params(num_threads=-1).fit(plays)

    def test_input_from_a_file_arrays_or_a_dataframe_is_the_same(self, tmp_path):
        import pandas as pd

        from jukebox_fast import Interactions, read_listens
        from jukebox_fast.example import generate_listens

        listens, _ = generate_listens(n_users=150, n_songs=40, seed=11)
        (tmp_path / "log.txt").write_bytes(listens)
        rows = [line.split() for line in listens.decode().splitlines()]
        frame = pd.DataFrame({"user": [r[0] for r in rows], "item": [r[1] for r in rows], "count": [int(r[2]) for r in rows]})
        answers = []
        for plays in (read_listens(tmp_path / "log.txt"), Interactions.from_pandas(frame),
                      Interactions.from_arrays(frame["user"], frame["item"], frame["count"])):
            answers.append(self.make().fit(plays.user_items).recommend(plays.user_items, k=5))
        for answer in answers[1:]:
            for got, want in zip(answer, answers[0]):
                np.testing.assert_array_equal(got, want)

    def test_recommend_by_ids_and_fold_in_of_new_plays(self, tmp_path):
        from jukebox_fast import Interactions, recommend_ids

        ids = random_plays()
        plays = Interactions.from_arrays(
            [f"u{u}" for u in np.repeat(np.arange(ids.shape[0]), np.diff(ids.indptr))],
            [f"s{i}" for i in ids.indices], ids.data,
        )
        model = self.make().fit(plays.user_items)
        stored = recommend_ids(model, plays, users=["u5", "u9", "nobody"], k=6)
        u5 = plays.users.lookup(["u5"])[0]
        row = plays.user_items[[u5]]
        mapping = {plays.songs[int(i)]: int(c) for i, c in zip(row.indices, row.data)}
        folded = recommend_ids(model, plays, plays=[mapping, {}], k=6)
        assert folded[0] == stored[0]  # a new user with u5's plays is u5
        assert [song for song, _ in folded[1]] == [song for song, _ in stored[2]]  # no plays: the most popular
        indices, _ = model.recommend(plays.user_items[[u5]], k=6)
        assert [song for song, _ in stored[0]] == [plays.songs[int(i)] for i in indices[0] if i >= 0]
        from jukebox_fast import JukeboxWarning

        with pytest.warns(JukeboxWarning, match="1 play of songs the model does not know was left out"):
            recommend_ids(model, plays, plays=[{"never heard": 3, **mapping}], k=6)

    def test_progress_goes_to_the_callback(self, plays):
        # Short fits say nothing; the callback takes what the logger gets.
        calls = []
        self.make().fit(plays, progress=lambda *call: calls.append(call))
        assert all(isinstance(done, (int, float)) and isinstance(message, str) for done, _, message in calls)

    def test_the_memory_plan_holds_the_measured_peak(self):
        plays = random_plays(n_users=3000, n_items=500, density=0.04, seed=3)
        model = self.make()
        plan = model.memory_plan(plays.shape[0], plays.shape[1], plays.nnz, k=100)
        assert isinstance(plan, MemoryPlan)
        tracemalloc.start()  # NumPy reports its allocations here
        try:
            model.fit(plays)
            fit_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            held = tracemalloc.get_traced_memory()[0]
            model.recommend(plays, k=100)
            recommend_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        slack = 2**20  # Python objects and small arrays the plan does not list
        assert fit_peak <= 1.1 * sum(plan.fit.values()) + slack, (fit_peak, plan.fit)
        assert recommend_peak <= 1.1 * sum(plan.recommend.values()) + slack, (recommend_peak, held, plan.recommend)


class TestEASE(RecommenderContract):
    def make(self):
        return EASE(regularization=10.0)


class TestEDLAE(RecommenderContract):
    def make(self):
        return EDLAE()


class TestEDLAEWithTargets(RecommenderContract):
    def make(self):
        return EDLAE(target_weight=0.1)


class TestSGD(RecommenderContract):
    def make(self):
        return LinearAutoencoder(epochs=2, batch_size=32)


class TestSGDNumpyReference(RecommenderContract):
    def make(self):
        return LinearAutoencoder(epochs=2, batch_size=32, backend="numpy")


@pytest.mark.jax
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
class TestSGDJax(RecommenderContract):
    def make(self):
        return LinearAutoencoder(epochs=2, batch_size=32, backend="jax")

    def test_the_memory_plan_holds_the_measured_peak(self):
        pytest.skip("JAX's buffers are not NumPy's: tracemalloc does not see them")


class TestSparseEDLAE(RecommenderContract):
    def make(self):
        return SparseEDLAE(links=8)


class TestPopularity(RecommenderContract):
    def make(self):
        return Popularity()


class SparseCooccurrence(Recommender):
    """A sparse item-item model: each item's ``neighbours`` most co-played items, scores summed over a user's plays.

    Parameters
    ----------
    neighbours : int
        Links kept per item (>= 1).
    num_threads : int
        Threads (0: every core).
    """

    summary = "a test double: the sparse family's slot"

    def __init__(self, neighbours: int = 5, num_threads: int = 0) -> None:
        self.neighbours = neighbours
        self.num_threads = num_threads

    def _check_params(self):
        if not isinstance(self.neighbours, int) or self.neighbours < 1:
            raise ValueError(f"neighbours must be a positive integer, got {self.neighbours!r}")

    def _fit(self, user_items):
        binary = user_items.astype(bool).astype(np.float32)
        counts = sp.csr_array(binary.T @ binary)
        counts.setdiag(0)
        counts.eliminate_zeros()
        rows, cols, vals = [], [], []
        for i in range(counts.shape[0]):
            segment = slice(counts.indptr[i], counts.indptr[i + 1])
            top = np.argsort(-counts.data[segment], kind="stable")[: self.neighbours]
            rows += [i] * top.size
            cols += counts.indices[segment][top].tolist()
            vals += counts.data[segment][top].tolist()
        links = sp.csr_array((np.array(vals, np.float32), (rows, cols)), shape=counts.shape)
        links.sort_indices()
        self.item_popularity_ = np.bincount(user_items.indices, minlength=user_items.shape[1]).astype(np.float32)
        self.link_indptr_, self.link_indices_, self.link_data_ = links.indptr, links.indices, links.data

    def _links(self):
        return sp.csr_array((self.link_data_, self.link_indices_, self.link_indptr_), shape=(self.n_items,) * 2)

    def _recommend(self, user_items, k, filter_seen, candidates):
        scores = np.ascontiguousarray((user_items.astype(np.float32) @ self._links()).toarray(), np.float32)
        cold = np.diff(user_items.indptr) == 0
        scores[cold] = self.item_popularity_
        indices, out = np.empty((user_items.shape[0], k), np.int32), np.empty((user_items.shape[0], k), np.float32)
        select_best(scores, user_items.indptr.astype(np.int64), user_items.indices.astype(np.int32), filter_seen, candidates,
                    indices, out)
        return indices, out

    def _similar_items(self, items, k):
        rows = np.ascontiguousarray(self._links()[items].toarray(), np.float32)
        indices, scores = np.empty((items.size, k), np.int32), np.empty((items.size, k), np.float32)
        select_best(rows, np.arange(items.size + 1, dtype=np.int64), items.astype(np.int32), True, None, indices, scores)
        return indices, scores

    def memory_plan(self, n_users, n_items, nnz, *, answered=None, k=100):
        plan = MemoryPlan(n_items)
        plan.fit["the co-occurrences"] = 12 * n_items * n_items + 40 * nnz
        plan.recommend["the scores"] = 8 * n_users * n_items + 8 * n_users * k
        return plan


class TestSparseDouble(RecommenderContract):
    @pytest.fixture(autouse=True)
    def registered(self, monkeypatch):
        monkeypatch.setitem(MODELS, "cooccurrence", SparseCooccurrence)

    def make(self):
        return SparseCooccurrence()


def test_every_registered_model_has_a_contract_test():
    tested = {cls().make().__class__ for cls in RecommenderContract.__subclasses__()}
    assert set(MODELS.values()) <= tested


def test_make_model_checks_names_parameters_and_values():
    assert repr(make_model("ease", regularization=200.0)) == "EASE(regularization=200.0, weighting='binary', num_threads=0, device='cpu')"
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        make_model("nope")
    with pytest.raises(ValueError, match="ease has no parameter 'dropout'"):
        make_model("ease", dropout=0.5)
    with pytest.raises(ValueError, match="regularization must be a positive number, got -1"):
        make_model("ease", regularization=-1)
