import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast.kernels.topk import select_topk_unseen


def reference_topk(scores, seen, k):
    """Sort every row by (score desc, index asc), drop seen songs, keep k, pad with -1/-inf."""
    n_rows, n_items = scores.shape
    indices = np.full((n_rows, k), -1, np.int32)
    values = np.full((n_rows, k), -np.inf, np.float32)
    for r in range(n_rows):
        order = np.lexsort((np.arange(n_items), -scores[r].astype(np.float64)))
        keep = [j for j in order if j not in set(seen[r])][:k]
        indices[r, : len(keep)] = keep
        values[r, : len(keep)] = scores[r, keep]
    return indices, values


@st.composite
def problems(draw):
    n_rows = draw(st.integers(0, 6))
    n_items = draw(st.integers(1, 40))
    k = draw(st.integers(1, 50))
    # Few distinct values: ties are the rule, not the exception.
    levels = draw(st.integers(1, 6))
    scores = np.array(
        draw(st.lists(st.integers(-levels, levels), min_size=n_rows * n_items, max_size=n_rows * n_items)),
        np.float32,
    ).reshape(n_rows, n_items) / 2
    seen = [sorted(draw(st.sets(st.integers(0, n_items - 1), max_size=n_items))) for _ in range(n_rows)]
    return scores, seen, k


def as_csr(seen, n_items):
    indptr = np.zeros(len(seen) + 1, np.int64)
    indptr[1:] = np.cumsum([len(s) for s in seen])
    indices = np.array([j for s in seen for j in s], np.int32)
    return indptr, indices


@settings(max_examples=300, deadline=None)
@given(problems())
def test_topk_matches_sorting(problem):
    scores, seen, k = problem
    indptr, indices = as_csr(seen, scores.shape[1])
    out_i = np.empty((scores.shape[0], k), np.int32)
    out_s = np.empty((scores.shape[0], k), np.float32)
    select_topk_unseen(scores, indptr, indices, out_i, out_s)
    ref_i, ref_s = reference_topk(scores, seen, k)
    np.testing.assert_array_equal(out_i, ref_i)
    np.testing.assert_array_equal(out_s, ref_s)


def test_topk_matches_argpartition_on_continuous_scores():
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((50, 1000)).astype(np.float32)
    seen = sp.random(50, 1000, density=0.05, format="csr", random_state=2)
    seen.sort_indices()
    k = 100
    out_i = np.empty((50, k), np.int32)
    out_s = np.empty((50, k), np.float32)
    select_topk_unseen(scores, seen.indptr.astype(np.int64), seen.indices.astype(np.int32), out_i, out_s)
    masked = scores.copy()
    masked[seen.toarray() != 0] = -np.inf
    top = np.argpartition(-masked, k, axis=1)[:, :k]
    expected = np.take_along_axis(top, np.argsort(-np.take_along_axis(masked, top, 1), axis=1), 1)
    np.testing.assert_array_equal(out_i, expected)
    assert not (seen[np.repeat(np.arange(50), k), out_i.ravel()] != 0).any()


@settings(max_examples=40, deadline=None)
@given(st.integers(2048, 6000), st.integers(1, 300), st.integers(1, 6), st.floats(0.0, 0.9), st.integers(0, 2**16))
def test_long_rows_with_a_guessed_bar_and_its_fallback(n_items, k, levels, seen_share, seed):
    # Rows of 2,048 songs and more take the sampled bar; hiding most of the best songs as
    # played makes the guess too high, so the row is scanned again with lower bars.
    rng = np.random.default_rng(seed)
    scores = (rng.integers(-levels, levels + 1, (3, n_items)) / 2).astype(np.float32)
    scores[1] = rng.standard_normal(n_items).astype(np.float32)
    seen = []
    for r in range(3):
        best = np.argsort(-scores[r], kind="stable")[: int(seen_share * n_items)]
        seen.append(np.sort(best[rng.random(best.size) < 0.9]))
    indptr, indices = as_csr([s.tolist() for s in seen], n_items)
    out_i = np.empty((3, k), np.int32)
    out_s = np.empty((3, k), np.float32)
    select_topk_unseen(scores, indptr, indices, out_i, out_s)
    for r in range(3):
        unseen = np.setdiff1d(np.arange(n_items), seen[r])
        order = unseen[np.lexsort((unseen, -scores[r, unseen].astype(np.float64)))][:k]
        expected = np.full(k, -1)
        expected[: order.size] = order
        np.testing.assert_array_equal(out_i[r], expected)
