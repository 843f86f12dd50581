"""The blocked in-place SPD inverse against NumPy's float64 inverse and LAPACK's potrf + potri."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import lapack

from jukebox_fast._cholesky import invert_spd


def spd(n, seed, ridge=1.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n + 3, n)).astype(np.float32)
    return (x.T @ x + ridge * n * np.eye(n, dtype=np.float32)).astype(np.float32)


def relative_error(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 70), block=st.integers(1, 33), panels=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_matches_float64_inverse_on_random_sizes_and_blocks(n, block, panels, seed):
    g = spd(n, seed)
    a = np.tril(g) + np.triu(np.full((n, n), 7.0, np.float32), 1)  # junk above the diagonal
    assert invert_spd(a, block=block, panel=panels * block) == 0
    expected = np.linalg.inv(g.astype(np.float64))
    assert relative_error(np.tril(a), np.tril(expected)) < 1e-5
    assert np.all(a[np.triu_indices(n, 1)] == 7.0), "the strict upper triangle must be neither read nor written"


@pytest.mark.parametrize("n", [1023, 1024, 1025, 2500])
def test_agrees_with_lapack_at_the_default_block(n):
    g = spd(n, n)
    factor, info = lapack.spotrf(g.T.copy(), lower=0, clean=0)
    inverse, info2 = lapack.spotri(factor, lower=0)
    assert info == info2 == 0
    a = g.copy()
    assert invert_spd(a) == 0
    assert relative_error(np.tril(a), np.tril(inverse.T)) < 1e-5


def test_reports_the_first_minor_that_is_not_positive_definite():
    g = spd(40, 1)
    g[25, 25] = -1e6  # the 26th leading minor is indefinite
    assert invert_spd(np.ascontiguousarray(g), block=8) == 26


def test_progress_grows_to_one():
    seen = []
    invert_spd(spd(100, 2), block=16, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and len(seen) >= 3


def test_empty_and_bad_arrays():
    assert invert_spd(np.zeros((0, 0), np.float32)) == 0
    for bad in (np.eye(3), np.eye(3, dtype=np.float32)[:, :2], np.asfortranarray(np.eye(3, dtype=np.float32)[::-1])):
        with pytest.raises(ValueError):
            invert_spd(bad)
