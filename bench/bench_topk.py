"""Masked top-100 of 2,000 score rows over 8,262 songs: the kernel against np.argpartition."""

import numpy as np
import pytest
import scipy.sparse as sp

from jukebox_fast import _parallel as parallel
from jukebox_fast.kernels.topk import select_topk_unseen

N_ROWS, N_ITEMS, K = 2000, 8262, 100


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((N_ROWS, N_ITEMS)).astype(np.float32)
    seen = sp.random(N_ROWS, N_ITEMS, density=17 / N_ITEMS, format="csr", random_state=1)
    seen.sort_indices()
    return scores, seen.indptr.astype(np.int64), seen.indices.astype(np.int32)


def topk_kernel(scores, indptr, indices):
    out_i = np.empty((N_ROWS, K), np.int32)
    out_s = np.empty((N_ROWS, K), np.float32)
    tasks = []
    for lo, hi in parallel.split(N_ROWS, parallel.get_num_threads()):
        tasks.append((scores[lo:hi], indptr[lo : hi + 1] - indptr[lo], indices[indptr[lo] : indptr[hi]], out_i[lo:hi], out_s[lo:hi]))
    parallel.run_tasks(select_topk_unseen, tasks)
    return out_i


def topk_numpy(scores, indptr, indices):
    masked = scores.copy()
    masked[np.repeat(np.arange(N_ROWS), np.diff(indptr)), indices] = -np.inf
    top = np.argpartition(-masked, K, axis=1)[:, :K]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(masked, top, 1), axis=1, kind="stable"), 1)


@pytest.mark.benchmark(group="topk")
def test_topk_kernel(benchmark, problem):
    topk_kernel(*problem)
    got = benchmark(topk_kernel, *problem)
    scores, indptr, indices = problem
    # float32 normals repeat now and then: compare the chosen scores, ties may pick either index
    expected = topk_numpy(*problem)
    np.testing.assert_array_equal(np.take_along_axis(scores, got, 1), np.take_along_axis(scores, expected, 1))
    seen = np.zeros_like(scores, bool)
    seen[np.repeat(np.arange(N_ROWS), np.diff(indptr)), indices] = True
    assert not np.take_along_axis(seen, got, 1).any()


@pytest.mark.benchmark(group="topk")
def test_topk_argpartition_baseline(benchmark, problem):
    benchmark(topk_numpy, *problem)
