import numpy as np
import pytest
import scipy.sparse as sp

from jukebox_fast.models import EASE, EDLAE, MODELS


def random_plays(n_users, n_items, density, seed):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density) * rng.integers(1, 20, (n_users, n_items))
    dense[0] = 0  # a user without plays
    return sp.csr_array(dense)


def edlae_reference(
    plays, regularization, dropout, user_exponent, popularity_exponent, penalty_exponent=1.0, target_weight=0.0
):
    """B in float64, straight from the formulas: min ||Y - X B||_W^2 + B^T Lambda B with diag B = 0, Y = X + a log C."""
    counts = plays.toarray().astype(np.float64)
    X = (counts > 0).astype(np.float64)
    Y = X + target_weight * np.log(np.maximum(counts, 1))
    W = np.maximum(X.sum(1), 1)[:, None] ** -user_exponent
    G = X.T @ (W * X)
    g = np.diag(G)
    penalty = regularization * g.mean() + dropout / (1 - dropout) * g.mean() ** (1 - penalty_exponent) * g**penalty_exponent
    P = np.linalg.inv(G + np.diag(penalty))
    unconstrained = P @ (X.T @ (W * Y))
    B = unconstrained - P * (np.diag(unconstrained) / np.diag(P))[None, :]  # the Lagrangian of diag B = 0
    B *= (1 + X.sum(0))[None, :] ** -popularity_exponent
    np.fill_diagonal(B, 0)
    return B


@pytest.mark.parametrize(
    "n_users, n_items, options",
    [
        (300, 37, dict(regularization=4.0, dropout=0.8, penalty_exponent=0.75, user_exponent=0.5, popularity_exponent=0.2)),
        (300, 37, dict(regularization=6.0, dropout=0.5, penalty_exponent=1.0, user_exponent=0.5, popularity_exponent=0.2)),
        (50, 81, dict(regularization=0.3, dropout=0.0, user_exponent=1.0, popularity_exponent=0.0)),
        (120, 1, dict(regularization=2.0, dropout=0.9, penalty_exponent=0.0, user_exponent=-0.5, popularity_exponent=1.0)),
        (90, 23, dict(regularization=0.5, dropout=0.6, penalty_exponent=1.5, user_exponent=0.0, popularity_exponent=0.5)),
        (300, 37, dict(regularization=4.0, dropout=0.8, penalty_exponent=0.75, user_exponent=0.5, target_weight=0.0)),
        (300, 600, dict(regularization=2.0, dropout=0.5, penalty_exponent=0.75, user_exponent=0.5, target_weight=1.0)),
        (70, 300, dict(regularization=1.0, dropout=0.3, penalty_exponent=1.0, user_exponent=0.0, popularity_exponent=0.0, target_weight=0.5)),
    ],
)
def test_edlae_matches_float64_formula(n_users, n_items, options):
    plays = random_plays(n_users, n_items, 0.15, seed=n_items)
    options = {"popularity_exponent": 0.2, **options}
    B = EDLAE(neighbour_weight=0, **options).fit(plays).item_weights_
    assert B.dtype == np.float32 and B.shape == (n_items, n_items)
    expected = edlae_reference(plays, **options)
    np.testing.assert_allclose(B, expected, rtol=2e-3, atol=2e-5 * np.abs(expected).max(initial=1))


def test_edlae_without_its_extras_is_ease():
    plays = random_plays(200, 45, 0.2, seed=3)
    binary = (plays.toarray() > 0).astype(np.float64)
    mean_diagonal = binary.sum() / binary.shape[1]
    ease = EASE(regularization=7.0).fit(plays).item_weights_
    edlae = EDLAE(
        regularization=7.0 / mean_diagonal, dropout=0, user_exponent=0, popularity_exponent=0, target_weight=0,
        neighbour_weight=0,
    )
    edlae = edlae.fit(plays)
    np.testing.assert_allclose(edlae.item_weights_, ease, rtol=1e-4, atol=1e-6)
    # Exponent 0: the denoising term, p / (1 - p) m = 4, is the same for every song: it only adds to lambda.
    dropout = 4.0 / (mean_diagonal + 4.0)
    edlae = EDLAE(
        3.0 / mean_diagonal, dropout, penalty_exponent=0, user_exponent=0, popularity_exponent=0, target_weight=0,
        neighbour_weight=0,
    )
    edlae = edlae.fit(plays)
    np.testing.assert_allclose(edlae.item_weights_, ease, rtol=1e-4, atol=1e-6)


def test_edlae_recommends_unplayed_songs():
    plays = random_plays(100, 30, 0.3, seed=5)
    songs, _ = EDLAE().fit(plays).recommend(plays, k=5)
    for user in range(100):
        assert not set(songs[user].tolist()) & set(plays[[user]].indices.tolist())


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(regularization=0), "regularization"),
        (dict(dropout=1.0), "dropout"),
        (dict(penalty_exponent=-0.5), "penalty_exponent"),
        (dict(penalty_exponent=float("inf")), "penalty_exponent"),
        (dict(popularity_exponent=-0.1), "popularity_exponent"),
        (dict(user_exponent=float("nan")), "user_exponent"),
        (dict(target_weight=-0.1), "target_weight"),
        (dict(target_weight=float("nan")), "target_weight"),
        (dict(neighbour_weight=-0.1), "neighbour_weight"),
        (dict(neighbour_weight=float("nan")), "neighbour_weight"),
        (dict(neighbours=0), "neighbours"),
        (dict(neighbours=2.5), "neighbours"),
        (dict(prior_weight=-1.0), "prior_weight"),
        (dict(prior_weight=float("inf")), "prior_weight"),
        (dict(activity_exponent=float("nan")), "activity_exponent"),
    ],
)
def test_edlae_rejects_bad_options(options, message):
    model = EDLAE(**options)  # stored unchanged, as scikit-learn's estimators do; checked by fit
    with pytest.raises(ValueError, match=message):
        model.check_params()
    with pytest.raises(ValueError, match=message):
        model.fit(sp.csr_array(np.ones((2, 3))))


def test_edlae_is_registered_and_the_default():
    from jukebox_fast.models import DEFAULT_MODEL, make_model

    assert MODELS[DEFAULT_MODEL] is EDLAE
    model = make_model()
    defaults = (
        model.regularization, model.dropout, model.penalty_exponent, model.user_exponent, model.popularity_exponent,
        model.target_weight, model.neighbour_weight, model.neighbours, model.prior_weight, model.activity_exponent,
    )
    assert defaults == (4.0, 0.85, 0.75, 0.4, 0.2, 0.0, 0.03, 10, 1.0, 0.05)


def neighbours_reference(B, neighbours):
    """float64 (n, n) kNN matrix of B: each row's top ``neighbours`` off the diagonal (ties to the lower column), negatives 0, rows summing to 1."""
    n_items = B.shape[0]
    out = np.zeros_like(B, dtype=np.float64)
    for i in range(n_items):
        key = B[i].astype(np.float64)
        key[i] = -np.inf
        keep = np.lexsort((np.arange(n_items), -key))[: min(neighbours, n_items - 1)]
        kept = np.maximum(B[i, keep], 0)
        if kept.sum() > 0:
            out[i, keep] = kept / kept.sum()
    return out


def with_neighbours(B, weight, neighbours):
    """B + weight * mean|B| * n^2 / (rows of W not 0) * W, in float64."""
    W = neighbours_reference(B, neighbours)
    used = max(np.count_nonzero(W.sum(1) > 0), 1)
    return B + weight * np.abs(B).mean() * B.size / used * W


def scores_reference(plays, rows, prior_weight, activity_exponent, neighbour_weight=0.0, neighbours=50, **options):
    """float64 (len(rows), n) scores ``(X_u (B + w' W) + t c) * (1 + pop) ** -(d log(n_u / n_0))``, straight from the formulas."""
    B = edlae_reference(plays, **options)
    X = (plays.toarray() > 0).astype(np.float64)
    if neighbour_weight:
        B = with_neighbours(B, neighbour_weight, neighbours)
    n = X.sum(1)
    pop = X.sum(0)
    users = np.where(n > 0, np.maximum(n, 1) ** -options["user_exponent"], 0)
    mean = users @ X / users.sum()
    offsets = prior_weight * (mean * (1 + pop) ** -options["popularity_exponent"] - mean @ B)
    shift = activity_exponent * np.log(np.maximum(n[rows], 1) / n[n > 0].mean())
    return (X[rows] @ B + offsets) * (1 + pop)[None, :] ** -shift[:, None]


@pytest.mark.parametrize(
    "prior_weight, activity_exponent, user_exponent, neighbour_weight, neighbours",
    [
        (1.0, 0.05, 0.5, 0.03, 10),
        (1.0, 0.05, 0.5, 0.0, 10),
        (0.0, 0.3, 0.5, 0.5, 5),
        (2.5, 0.0, 0.0, 0.2, 1),
        (1.0, -0.2, 1.0, 1.0, 39),
    ],
)
def test_edlae_scores_match_float64_formula(prior_weight, activity_exponent, user_exponent, neighbour_weight, neighbours):
    plays = random_plays(200, 40, 0.2, seed=7)
    plays = sp.csr_array(plays.toarray() * (np.arange(200) % 3 > 0)[:, None])  # a third of the users without plays
    plays = sp.csr_array(plays.toarray() * (np.arange(40) != 17)[None, :])  # a song nobody played
    options = dict(regularization=4.0, dropout=0.8, penalty_exponent=0.75, user_exponent=user_exponent, popularity_exponent=0.2)
    extras = dict(prior_weight=prior_weight, activity_exponent=activity_exponent, neighbour_weight=neighbour_weight, neighbours=neighbours)
    model = EDLAE(**extras, **options).fit(plays)
    rows = np.flatnonzero(np.diff(plays.indptr) > 0)
    songs, scores = model.recommend(plays[rows], k=40)
    expected = scores_reference(plays, rows, **extras, **options)
    expected[plays[rows].toarray() > 0] = -np.inf
    top = np.sort(expected, axis=1)[:, ::-1][:, :40]
    np.testing.assert_allclose(scores, top, rtol=2e-3, atol=2e-4 * np.abs(top[np.isfinite(top)]).max())
    found = np.take_along_axis(expected, np.maximum(songs, 0), 1)
    np.testing.assert_allclose(np.where(songs >= 0, found, -np.inf), scores, rtol=2e-3, atol=2e-4 * np.abs(top[np.isfinite(top)]).max())


def test_edlae_without_prior_and_activity_scores_x_times_b():
    plays = random_plays(150, 30, 0.2, seed=11)
    model = EDLAE(prior_weight=0, activity_exponent=0, neighbour_weight=0).fit(plays)
    _, scores = model.recommend(plays, k=30)
    X = (plays.toarray() > 0).astype(np.float32)
    expected = X @ model.item_weights_
    expected[X > 0] = -np.inf
    expected[0] = -np.inf  # the user without plays gets the popular songs
    top = np.sort(expected, axis=1)[:, ::-1]
    np.testing.assert_allclose(scores[1:], top[1:], rtol=1e-5, atol=1e-6)


def test_edlae_activity_factors_one_row_per_level():
    from jukebox_fast.models.edlae import activity_factors

    n_plays = np.array([0, 3, 12, 3, 1, 40])
    popularity = np.array([0.0, 5.0, 100.0])
    factors, rows = activity_factors(n_plays, 6.0, popularity, 0.05)
    assert factors.shape == (4, 3) and rows.dtype == np.int32
    expected = (1 + popularity)[None, :] ** -(0.05 * np.log(np.maximum(n_plays, 1) / 6.0))[:, None]
    np.testing.assert_allclose(factors[rows], expected, rtol=1e-6)


def test_edlae_model_file_without_prior_scores_as_before():
    """A model fit before the prior existed (no offsets) recommends from X B alone."""
    plays = random_plays(120, 25, 0.25, seed=13)
    old = EDLAE(prior_weight=0, activity_exponent=0).fit(plays)
    new = EDLAE().fit(plays)  # the same B: only the offsets and factors differ
    del new.item_offsets_, new.reference_plays_
    np.testing.assert_array_equal(new.recommend(plays, k=10)[0], old.recommend(plays, k=10)[0])


@pytest.mark.parametrize("n_items, neighbours", [(1, 10), (2, 1), (30, 5), (70, 69), (70, 200), (130, 10)])
def test_add_neighbours_matches_float64_formula(n_items, neighbours):
    from jukebox_fast.models.edlae import add_neighbours

    rng = np.random.default_rng(n_items)
    B = rng.standard_normal((n_items, n_items)).astype(np.float32)
    B[rng.random(n_items) < 0.2] = -1  # rows without a positive entry
    B[:, : n_items // 3] = np.round(B[:, : n_items // 3])  # ties
    np.fill_diagonal(B, 0)
    expected = with_neighbours(B.astype(np.float64), 0.1, neighbours)
    add_neighbours(B, 0.1, neighbours)
    np.testing.assert_allclose(B, expected, rtol=1e-4, atol=1e-5)
