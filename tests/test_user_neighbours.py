"""The votes of similar users: the kernels against NumPy, the blend in EDLAE's scores, the search's choice."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast import auto
from jukebox_fast.evaluation import ndcg
from jukebox_fast.models import EDLAE
from jukebox_fast.models.users import UserNeighbours, add_votes, pool_arrays
from jukebox_fast.persist import load_model, save_model


def binary_rows(rng, n_rows, n_items, density):
    dense = rng.random((n_rows, n_items)) < density
    return sp.csr_array(dense.astype(np.float32))


def votes_reference(queries, pool, neighbours):
    """Row r: the summed cosine similarity of its ``neighbours`` most similar pool users (ties: lower index) per song."""
    Q, P = queries.toarray() > 0, pool.toarray() > 0
    out = np.zeros(Q.shape, np.float64)
    for r in range(Q.shape[0]):
        shared = (P & Q[r]).sum(1)
        size_r, sizes = Q[r].sum(), P.sum(1)
        similarity = np.where(shared > 0, shared / np.sqrt(np.maximum(size_r * sizes, 1)), 0.0)
        same = (shared == size_r) & (shared == sizes)
        similarity[same] = 0.0  # the same songs: nothing to add
        candidates = np.flatnonzero(shared > 0)
        order = sorted(candidates, key=lambda v: (-np.float32(similarity[v]), v))[:neighbours]
        for v in order:
            out[r] += np.float32(similarity[v]) * P[v]
    return out


@given(st.integers(0, 2**31 - 1), st.integers(1, 30), st.integers(1, 40), st.integers(1, 12),
       st.floats(0.02, 0.6))
@settings(max_examples=60, deadline=None)
def test_votes_match_numpy(seed, n_pool, n_items, neighbours, density):
    from jukebox_fast.kernels.users import user_neighbour_scores

    rng = np.random.default_rng(seed)
    pool = binary_rows(rng, n_pool, n_items, density)
    queries = sp.csr_array(sp.vstack([binary_rows(rng, 6, n_items, density), pool[: min(3, n_pool)]]))  # own rows too
    users = UserNeighbours(*pool_arrays(pool), n_items, neighbours, 1.0)
    overlap, touched, similarity, bits, keys, _ = users.scratch(1)
    out = np.full(queries.shape, np.nan, np.float32)
    user_neighbour_scores(
        queries.indptr.astype(np.int64), queries.indices.astype(np.int32), users.indptr, users.indices,
        users.listeners_indptr, users.listeners, neighbours, out, overlap, touched, similarity, bits, keys,
    )
    np.testing.assert_allclose(out, votes_reference(queries, pool, neighbours), rtol=1e-5, atol=1e-6)
    assert not overlap.any()  # the scratch is left as it was found


@given(st.integers(0, 2**31 - 1), st.floats(0.0, 3.0))
@settings(max_examples=40, deadline=None)
def test_votes_are_added_at_their_weight_times_the_rows_spread(seed, weight):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(5, 17)).astype(np.float32)
    votes = (rng.random((5, 17)) * (rng.random((5, 17)) < 0.4)).astype(np.float32)
    votes[0] = 0  # no votes: the row stays as it was
    expected = scores.astype(np.float64).copy()
    for r in range(5):
        if votes[r].std() > 0:
            expected[r] += weight * scores[r].std(dtype=np.float64) / votes[r].std(dtype=np.float64) * votes[r]
    add_votes(scores, votes, weight)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def taste_log(n_users=800, n_songs=1500, tastes=40, per_user=12, seed=0, taste_songs=40):
    """Users of a few tastes, each of ``taste_songs`` songs: a user plays ``per_user`` of their taste's songs and 4 popular ones."""
    rng = np.random.default_rng(seed)
    songs_of = [rng.choice(n_songs, taste_songs, replace=False) for _ in range(tastes)]
    popularity = (np.arange(n_songs) + 5.0) ** -0.8
    popularity /= popularity.sum()
    rows = []
    for _ in range(n_users):
        taste = songs_of[rng.integers(tastes)]
        rows.append(np.unique(np.concatenate([rng.choice(taste, per_user, replace=False), rng.choice(n_songs, 4, p=popularity)])))
    indptr = np.concatenate([[0], np.cumsum([r.size for r in rows])])
    indices = np.concatenate(rows)
    return sp.csr_array((np.ones(indices.size, np.float32), indices, indptr), shape=(n_users, n_songs))


def full_scores(model, rows):
    indices, scores = model.recommend(rows, k=rows.shape[1], filter_seen=False)
    out = np.empty(rows.shape, np.float32)
    np.put_along_axis(out, indices, scores, axis=1)
    return out


def test_edlae_adds_the_votes_to_its_scores():
    X = taste_log(n_users=300, n_songs=400, seed=1)
    model = EDLAE(regularization=8.0, user_neighbours=7).fit(X)
    rows = X[np.arange(0, 300, 7)]
    without = full_scores(model, rows)
    model.set_params(user_neighbour_weight=0.5)  # the training users' songs are kept: it can be set after the fit
    votes = votes_reference(rows, X, 7)
    spread = without.std(1, dtype=np.float64) / votes.std(1)
    np.testing.assert_allclose(full_scores(model, rows), without + 0.5 * spread[:, None] * votes, rtol=1e-4, atol=1e-5)


def test_the_model_file_keeps_the_votes(tmp_path):
    X = taste_log(n_users=200, n_songs=300, seed=2)
    model = EDLAE(user_neighbour_weight=0.7).fit(X)
    save_model(tmp_path / "model.jb", model)
    loaded, _ = load_model(tmp_path / "model.jb")
    assert loaded.user_neighbour_weight == 0.7
    for a, b in zip(model.recommend(X[:50]), loaded.recommend(X[:50])):
        np.testing.assert_array_equal(a, b)


def test_a_model_file_without_the_users_songs_says_so():
    model = EDLAE().fit(taste_log(n_users=100, n_songs=200, seed=3))
    del model.user_songs_, model.user_songs_indptr_  # as a model file written before they were kept
    model.user_neighbour_weight = 1.0
    with pytest.raises(RuntimeError, match="fit it again"):
        model.recommend(sp.csr_array(np.ones((1, 200), np.float32)))


def test_the_memory_plan_counts_the_votes():
    plain = EDLAE().memory_plan(1000, 500, 20_000)
    voting = EDLAE(user_neighbour_weight=1.0).memory_plan(1000, 500, 20_000)
    added = set(voting.recommend) - set(plain.recommend)
    assert added and sum(voting.recommend[name] for name in added) >= 10 * 20_000
    assert "the training users' songs" in plain.fit


@pytest.mark.parametrize("seed", [0, 1])
def test_the_search_turns_the_votes_on_where_they_help_and_it_generalises(seed):
    X = taste_log(n_users=600, n_songs=3000, tastes=20, taste_songs=60, per_user=10, seed=seed)
    train, test = auto.hold_out(X, seed=10 + seed)  # the search holds out its own share of train only
    chosen, _ = auto.choose(EDLAE(), train)
    assert chosen.user_neighbour_weight > 0
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    scores = []
    for model in (EDLAE(regularization=chosen.regularization), chosen):
        songs, _ = model.fit(train).recommend(train[users], k=100)
        scores.append(np.mean(ndcg(songs, test[users])))
    assert scores[1] > scores[0]


def test_the_search_leaves_the_votes_off_where_only_popularity_is_learnt():
    rng = np.random.default_rng(5)
    popularity = (np.arange(300) + 5.0) ** -1.0
    plays = (rng.random((1500, 1)) < 1) & (rng.random((1500, 300)) < 12 * popularity / popularity.sum())
    chosen, _ = auto.choose(EDLAE(), sp.csr_array(plays.astype(np.float32)))
    assert chosen.user_neighbour_weight == 0


def test_a_weight_given_is_kept_and_other_models_have_none():
    from jukebox_fast.models import EASE

    X = taste_log(seed=4)
    assert auto.choose(EDLAE(user_neighbour_weight=0.3), X)[0].user_neighbour_weight == 0.3
    assert not hasattr(auto.choose(EASE(), X)[0], "user_neighbour_weight")


def test_the_report_names_the_votes():
    X = taste_log(seed=0)
    model = EDLAE()
    chosen, record = auto.choose(model, X)
    assert f"similar users' votes at weight {chosen.user_neighbour_weight:g}" in auto.report(model, chosen, record)


def test_the_votes_choice_is_deterministic():
    X = taste_log(n_users=600, n_songs=3000, tastes=20, taste_songs=60, per_user=10, seed=2)
    first, again = auto.choose(EDLAE(), X)[0], auto.choose(EDLAE(), X)[0]
    assert first.user_neighbour_weight == again.user_neighbour_weight > 0


def test_a_spent_budget_tries_no_votes():
    X = taste_log(n_users=600, n_songs=3000, tastes=20, taste_songs=60, per_user=10, seed=2)
    assert auto.choose(EDLAE(), X, budget_s=0)[0].user_neighbour_weight == 0


def test_a_weight_on_the_command_line_is_used_and_turns_the_search_off(cli, tmp_path):
    plain = cli("run", "--example", "--no-auto", "-o", tmp_path / "plain.txt")
    voted = cli("run", "--example", "--user-neighbour-weight", "1", "-v", "-o", tmp_path / "voted.txt")
    assert plain.returncode == 0 and voted.returncode == 0, voted.stderr
    assert b"auto:" not in voted.stderr
    assert (tmp_path / "plain.txt").read_bytes() != (tmp_path / "voted.txt").read_bytes()
    lines = (tmp_path / "voted.txt").read_text().splitlines()
    assert len(lines) == len((tmp_path / "plain.txt").read_text().splitlines())
    assert all(len(line.split()) == 101 for line in lines)  # a user and 100 songs, as without votes


def test_votes_that_would_overrun_the_budget_are_not_tried(monkeypatch):
    X = taste_log(n_users=600, n_songs=3000, tastes=20, taste_songs=60, per_user=10, seed=2)
    monkeypatch.setattr(auto, "VOTES_RATE", 1.0)  # a visit a second: the estimate is far past any budget
    assert auto.choose(EDLAE(), X)[0].user_neighbour_weight == 0
