import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast import EASE, weigh
from jukebox_fast.data import as_user_items
from jukebox_fast.kernels.linalg import (
    add_normalized_rows, multiply_sparse_dense, quantize_rows, shift_scale_rows,
)
from jukebox_fast.models.ease import gram_matrix, solve_ease


def random_plays(n_users, n_items, density, seed):
    rng = np.random.default_rng(seed)
    m = sp.random(n_users, n_items, density=density, format="csr", random_state=rng)
    m.data = rng.integers(1, 20, m.nnz).astype(np.int64)
    return as_user_items(m)


def ease_float64(X, lam):
    G = (X.T @ X).toarray().astype(np.float64)
    P = np.linalg.inv(G + lam * np.eye(G.shape[0]))
    B = -P / np.diag(P)
    np.fill_diagonal(B, 0)
    return B


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 60), st.integers(1, 150), st.floats(0.0, 0.3), st.integers(0, 2**16),
    st.sampled_from(["binary", "log", "count"]),
)
def test_gram_matches_scipy(n_users, n_items, density, seed, weighting):
    X = weigh(random_plays(n_users, n_items, density, seed), weighting)
    expected = (X.T @ X).toarray()
    np.testing.assert_allclose(gram_matrix(X), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(gram_matrix(X, lower=True), np.tril(expected), rtol=1e-5, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40), st.integers(1, 70), st.integers(1, 9), st.floats(0.0, 0.5), st.integers(0, 2**16))
def test_sparse_times_dense(n_rows, n_items, m, density, seed):
    rng = np.random.default_rng(seed)
    X = weigh(random_plays(n_rows, n_items, density, seed), "log") if n_rows else weigh(as_user_items(sp.csr_array((0, n_items))), "log")
    dense = rng.standard_normal((n_items, m)).astype(np.float32)
    out = np.full((n_rows, m), np.nan, np.float32)
    multiply_sparse_dense(X.indptr, X.indices, X.data, dense, out)
    np.testing.assert_allclose(out, X.toarray() @ dense, rtol=1e-5, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40), st.integers(1, 70), st.integers(1, 9), st.floats(0.0, 0.5), st.integers(0, 2**16))
def test_sparse_times_scaled_int16_rows(n_rows, n_items, m, density, seed):
    rng = np.random.default_rng(seed)
    X = weigh(random_plays(n_rows, n_items, density, seed), "log") if n_rows else weigh(as_user_items(sp.csr_array((0, n_items))), "log")
    dense = rng.integers(-32767, 32768, (n_items, m)).astype(np.int16)
    scales = rng.random(n_items).astype(np.float32) / 1000
    out = np.full((n_rows, m), np.nan, np.float32)
    multiply_sparse_dense(X.indptr, X.indices, X.data, dense, out, scales)
    expected = X.toarray() @ (scales[:, None].astype(np.float64) * dense)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max(initial=1))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 80), st.floats(1e-44, 1e30), st.integers(0, 2**16))
def test_quantize_rows(n, m, magnitude, seed):
    rng = np.random.default_rng(seed)
    dense = (rng.standard_normal((n, m)) * magnitude).astype(np.float32)  # subnormal rows too
    dense[rng.random((n, m)) < 0.3] = 0
    dense[0] = 0  # a row of zeros
    if n > 1:
        dense[1, 0] = -np.abs(dense[1]).max() * 2 - np.float32(1e-45)  # the largest |entry| negative
    out, scales = np.zeros(dense.shape, np.int16), np.full(n, np.nan, np.float32)
    lo = int(rng.integers(0, n + 1))
    quantize_rows(dense, out, scales, 0, lo)
    quantize_rows(dense, out, scales, lo, n)  # two shares, as two threads would do them
    # The same operations in NumPy, then the bound they promise.
    top = np.abs(dense).max(axis=1)
    np.testing.assert_array_equal(scales, top / np.float32(32767))
    inverse = np.divide(32767.0, top.astype(np.float64), out=np.zeros(n), where=top > 0)
    np.testing.assert_array_equal(out, np.rint(dense * inverse[:, None]).astype(np.int16))
    assert (np.abs(out).max(axis=1) == np.where(top > 0, 32767, 0)).all()
    # Half a step, plus the float32 rounding of a normal scale: 32767 * 2^-24 of a step.
    normal = scales >= np.finfo(np.float32).tiny
    error = np.abs(dense[normal].astype(np.float64) - scales[normal, None].astype(np.float64) * out[normal])
    assert (error <= scales[normal, None] * (0.5 + 32767 * 2.0**-24)).all()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 8), st.integers(0, 2**16))
def test_add_normalized_rows(n, k, seed):
    rng = np.random.default_rng(seed)
    out = rng.standard_normal((n, n)).astype(np.float32)
    rows = rng.permutation(n)[: rng.integers(0, n + 1)].astype(np.int32)
    columns = np.array([rng.permutation(n + k)[:k] for _ in rows], np.int32).reshape(rows.size, k)
    columns[columns >= n] = -1  # some past the end
    values = rng.random((rows.size, k)).astype(np.float32)
    if rows.size:
        values[0] = 0  # a row summing to 0 adds nothing
    expected = out.astype(np.float64)
    for r, i in enumerate(rows):
        keep = columns[r] >= 0
        total = values[r, keep].sum(dtype=np.float64)
        if total > 0:
            expected[i, columns[r, keep]] += 0.7 * values[r, keep] / total
    add_normalized_rows(out, rows, columns, values, np.float32(0.7))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40), st.integers(1, 70), st.integers(1, 5), st.integers(0, 2**16))
def test_shift_scale_rows(n_rows, m, n_factor_rows, seed):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n_rows, m)).astype(np.float32)
    offsets = rng.standard_normal(m).astype(np.float32)
    factors = rng.random((n_factor_rows, m)).astype(np.float32)
    factor_rows = rng.integers(0, n_factor_rows, n_rows).astype(np.int32)
    expected = (scores.astype(np.float64) + offsets) * factors[factor_rows]
    shift_scale_rows(scores, offsets, factors, factor_rows)
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n_items", [1, 2, 63, 64, 65, 200])
@pytest.mark.parametrize("lam", [0.5, 30.0])
def test_solve_matches_float64_inverse(n_items, lam):
    X = weigh(random_plays(300, n_items, 0.1, n_items), "binary")
    B = solve_ease(gram_matrix(X), lam)
    assert np.all(np.diag(B) == 0)
    np.testing.assert_allclose(B, ease_float64(X, lam), rtol=2e-3, atol=2e-5)
    # The solve reads only the lower triangle: the half gram gives the same B, bit for bit.
    np.testing.assert_array_equal(solve_ease(gram_matrix(X, lower=True), lam), B)


@pytest.mark.parametrize("n_items", [1, 17, 200])
def test_finish_ease_returns_the_mean_absolute_entry_of_b(n_items):
    from jukebox_fast.models.ease import finish_ease, invert_gram

    X = weigh(random_plays(300, n_items, 0.1, n_items), "binary")
    scale = np.random.default_rng(n_items).uniform(0.5, 2.0, n_items)
    gram = gram_matrix(X, lower=True)
    invert_gram(gram, 3.0)
    P = np.tril(gram) + np.tril(gram, -1).T
    mean_abs = finish_ease(gram, scale)
    expected = -P / (np.diag(P) / scale.astype(np.float32))[None, :]
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(gram, expected, rtol=1e-6)
    assert mean_abs == pytest.approx(np.abs(gram.astype(np.float64)).mean(), rel=1e-12)


def test_solve_refuses_indefinite_gram():
    gram = np.zeros((3, 3), np.float32)
    gram[0, 0] = -5
    with pytest.raises(np.linalg.LinAlgError, match="raise the regularization"):
        solve_ease(gram, 1.0)


def test_ease_recommends_like_brute_force():
    plays = random_plays(120, 90, 0.08, 7)
    model = EASE(regularization=10, weighting="log").fit(plays)
    X = weigh(plays, "log")
    scores = X.toarray() @ ease_float64(X, 10)
    scores[plays.toarray() != 0] = -np.inf
    indices, values = model.recommend(plays, k=20)
    for r in range(plays.shape[0]):
        # float32 against float64: compare the score of what was chosen, not the order of near-ties
        chosen = scores[r, indices[r]]
        best = np.sort(scores[r])[::-1][:20]
        np.testing.assert_allclose(chosen, best, rtol=1e-3, atol=1e-4)
        assert not set(indices[r]) & set(plays[[r]].indices)


def test_recommend_scores_with_b_as_scaled_int16_rows():
    plays = random_plays(90, 60, 0.1, 5)
    model = EASE(regularization=10).fit(plays)
    rows, scales = model.scoring_weights()
    assert model.scoring_weights()[0] is rows  # made once per B
    B = model.item_weights_
    approx = scales[:, None].astype(np.float64) * rows
    assert (np.abs(approx - B) <= scales[:, None] * 0.51).all()
    _, scores = model.recommend(plays, k=60, filter_seen=False)
    expected = np.sort(weigh(plays, "binary").toarray() @ approx, axis=1)[:, ::-1]
    active = np.diff(plays.indptr) > 0  # rows without plays get the popular songs
    np.testing.assert_allclose(scores[active], expected[active], rtol=1e-5, atol=1e-6)
    model.item_weights_ = 2 * B  # a new B: made anew
    new_rows, new_scales = model.scoring_weights()
    assert new_rows is not rows
    np.testing.assert_array_equal(new_rows, rows)
    np.testing.assert_array_equal(new_scales, 2 * scales)


def test_cold_rows_get_popular_songs_and_filter_seen_off_keeps_played():
    plays = random_plays(200, 50, 0.1, 3)
    model = EASE(regularization=5).fit(plays)
    query = sp.csr_array((np.array([3]), np.array([7]), np.array([0, 0, 1])), shape=(2, 50))
    indices, scores = model.recommend(query, k=5, filter_seen=False)
    popularity = np.bincount(plays.indices, minlength=50)
    expected = np.lexsort((np.arange(50), -popularity))[:5]
    np.testing.assert_array_equal(indices[0], expected)
    # Unfiltered, the played song competes on its own score (zero: B has a zero diagonal).
    row_scores = weigh(query, "binary").toarray()[1] @ model.item_weights_
    np.testing.assert_array_equal(indices[1], np.lexsort((np.arange(50), -row_scores))[:5])
    indices_seen, _ = model.recommend(query, k=50)
    assert 7 not in indices_seen[1]
    assert indices_seen[1, -1] == -1 and (indices_seen[1, :-1] >= 0).all()


def test_recommend_checks_its_arguments():
    plays = random_plays(30, 10, 0.3, 1)
    model = EASE()
    with pytest.raises(RuntimeError, match="not fitted"):
        model.recommend(plays)
    model.fit(plays)
    for bad_k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be"):
            model.recommend(plays, k=bad_k)
    with pytest.raises(ValueError, match="items"):
        model.recommend(sp.csr_array((2, 11)))
    with pytest.raises(ValueError, match="regularization must be a positive number, got 0"):
        EASE(regularization=0).fit(plays)


def test_weights_do_not_depend_on_the_thread_count():
    import scipy.linalg  # noqa: F401  (loaded, so thread limits reach its BLAS)

    from jukebox_fast.runtime import limit_threads

    plays = random_plays(3000, 700, 0.02, 11)
    weights = []
    for n_threads in (1, 2):
        with limit_threads(n_threads):
            weights.append(EASE(regularization=20, weighting="log").fit(plays).item_weights_)
    np.testing.assert_array_equal(weights[0], weights[1])
