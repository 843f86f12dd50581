"""The sparse model against the dense one it restricts, and its kernel against NumPy."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast.kernels.sparse import gather_links
from jukebox_fast.models import EDLAE, SparseEDLAE
from jukebox_fast.models.sparse import add_sparse_neighbours, strongest_links


def plays(n_users=300, n_items=40, density=0.15, seed=0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density) * rng.integers(1, 9, (n_users, n_items))
    dense[:, 0] = 1  # every user has a play
    return sp.csr_array(dense.astype(np.int64))


@pytest.mark.parametrize("params", [{}, {"neighbour_weight": 0.0, "prior_weight": 0.0}, {"user_exponent": 0.0}])
def test_with_every_song_as_a_link_it_is_the_dense_edlae(params):
    X = plays()
    n = X.shape[1]
    dense = EDLAE(**params).fit(X)
    sparse = SparseEDLAE(links=n - 1, **params).fit(X)
    np.testing.assert_allclose(sparse.item_weights.toarray(), dense.item_weights_, rtol=2e-3, atol=2e-6)
    np.testing.assert_allclose(sparse.item_offsets_, dense.item_offsets_, rtol=2e-3, atol=2e-6)
    got, want = sparse.recommend(X, k=10)[0], dense.recommend(X, k=10)[0]
    assert (got == want).mean() > 0.97  # the dense model scores from 16-bit rows: near-ties may swap


@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0])
def test_the_links_are_the_largest_co_occurrences(exponent):
    X = plays(seed=3).astype(np.float32)
    G = (X.T @ X).toarray()
    columns, values, diagonal = strongest_links(sp.csr_array(X), 5, exponent)
    np.testing.assert_allclose(diagonal, np.diag(G))
    for j in range(G.shape[0]):
        row = (G[j] / np.diag(G) ** exponent).astype(np.float32)
        row[j] = -np.inf
        expected = np.argsort(-row, kind="stable")[:5]
        assert columns[j].tolist() == expected.tolist()
        np.testing.assert_allclose(values[j], G[j, expected], rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.integers(1, 6), st.integers(1, 5), st.integers(0, 10**6))
def test_gather_links_matches_numpy(n, kept, width, seed):
    rng = np.random.default_rng(seed)
    kept, width = min(kept, n), min(width, n)
    link_cols = np.stack([rng.choice(n, kept, replace=False) for _ in range(n)]).astype(np.int32)
    link_vals = rng.random((n, kept))
    songs = np.stack([rng.choice(n, width, replace=False) for _ in range(3)]).astype(np.int32)
    out = np.zeros((3, width, width))
    position = np.full(n, -1, np.int32)
    gather_links(link_cols, link_vals, songs, position, out, 0, 3)
    assert (position == -1).all()
    expected = np.zeros_like(out)
    for r in range(3):
        for i, s in enumerate(songs[r]):
            for a, t in enumerate(link_cols[s]):
                if t in songs[r]:
                    l = songs[r].tolist().index(t)
                    expected[r, i, l] = expected[r, l, i] = link_vals[s, a]
    np.testing.assert_array_equal(out, expected)


def test_the_sparse_knn_addition_is_the_dense_one():
    from jukebox_fast.models.edlae import add_neighbours

    rng = np.random.default_rng(5)
    B = rng.standard_normal((30, 30)).astype(np.float32)
    np.fill_diagonal(B, 0)
    B[B < 0.5] = 0  # sparse, with ties at 0
    dense = B.copy()
    add_neighbours(dense, 0.1, 4)
    sparse = sp.csr_array(B)
    add_sparse_neighbours(sparse, 0.1, 4)
    np.testing.assert_allclose(sparse.toarray(), dense, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("params, message", [
    (dict(links=0), "links must be a positive integer"), (dict(links=2.5), "links must be a positive integer"),
    (dict(link_exponent=1.5), "link_exponent must be a number in"), (dict(dropout=1.0), "dropout must be"),
    (dict(neighbours=0), "neighbours must be"), (dict(user_exponent=float("nan")), "user_exponent must be"),
])
def test_bad_parameters_are_refused_by_fit(params, message):
    with pytest.raises(ValueError, match=message):
        SparseEDLAE(**params).fit(plays())
