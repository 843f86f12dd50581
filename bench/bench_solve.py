"""The n x n solve on the official gram: float32 EASE against float64 np.linalg.inv, and the machine's ceiling.

Work: potrf + potri of n x n costs about n^3 flop (n^3/3 + 2n^3/3); a float32
n x n x n matmul costs 2 n^3 flop and shows the machine's peak rate.
"""

import numpy as np
import pytest

from jukebox_fast import read_listens, weigh
from jukebox_fast.models.ease import gram_matrix, solve_ease

LAMBDA = 100.0


@pytest.fixture(scope="module")
def gram(listens_path):
    return gram_matrix(weigh(read_listens(listens_path).user_items, "binary"))


def ease_float64(gram):
    P = np.linalg.inv(gram.astype(np.float64) + LAMBDA * np.eye(gram.shape[0]))
    B = -P / np.diag(P)
    np.fill_diagonal(B, 0)
    return B


@pytest.mark.benchmark(group="solve")
def test_solve_float32_cholesky(benchmark, gram):
    B = benchmark.pedantic(solve_ease, setup=lambda: ((gram.copy(), LAMBDA), {}), rounds=3)
    n = gram.shape[0]
    benchmark.extra_info["gflops"] = n**3 / benchmark.stats.stats.min / 1e9
    reference = ease_float64(gram[:1000, :1000])
    small = solve_ease(gram[:1000, :1000].copy(), LAMBDA)
    np.testing.assert_allclose(small, reference, rtol=1e-2, atol=1e-5)
    assert B[0, 0] == 0 and np.isfinite(B[:, 0]).all()


@pytest.mark.benchmark(group="solve")
def test_solve_float64_inverse_baseline(benchmark, gram):
    B = benchmark.pedantic(ease_float64, args=(gram,), rounds=1)
    assert np.all(np.diag(B) == 0)


@pytest.mark.benchmark(group="ceiling")
def test_matmul_float32_ceiling(benchmark, gram):
    from threadpoolctl import threadpool_info

    a = gram[:4096, :4096].copy()
    c = benchmark.pedantic(np.matmul, args=(a, a), rounds=3)
    benchmark.extra_info["gflops"] = 2 * 4096**3 / benchmark.stats.stats.min / 1e9
    benchmark.extra_info["blas"] = [(i["internal_api"], i.get("architecture")) for i in threadpool_info()]
    np.testing.assert_allclose(c[0, :5], a[0] @ a[:, :5], rtol=1e-4)
