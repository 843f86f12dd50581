"""Top-k selection over rows of scores, skipping each row's played songs.

A bounded min-heap per row: one comparison per song for most songs, k log k
at the end; exact exclusion of played songs by walking their sorted list.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _worse(score_a, index_a, score_b, index_b):
    # Ranking is by score, then by the lower index: a ranks below b.
    return score_a < score_b or (score_a == score_b and index_a > index_b)


@njit(cache=True, nogil=True)
def _sift_down(heap_scores, heap_indices, size, pos):
    # Min-heap on rank: the root is the worst candidate kept so far.
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and _worse(
            heap_scores[child + 1], heap_indices[child + 1], heap_scores[child], heap_indices[child]
        ):
            child += 1
        if not _worse(heap_scores[child], heap_indices[child], heap_scores[pos], heap_indices[pos]):
            return
        heap_scores[pos], heap_scores[child] = heap_scores[child], heap_scores[pos]
        heap_indices[pos], heap_indices[child] = heap_indices[child], heap_indices[pos]
        pos = child


@njit(cache=True, nogil=True)
def select_topk_row(scores, seen, out_indices, out_scores):
    """Best ``k = out_indices.size`` entries of ``scores`` whose index is not in ``seen``.

    Writes them best first (ties: lower index first); when fewer than k are
    left, the tail gets index -1 and score -inf.

    # Assumes: seen is sorted ascending, scores has no NaN.
    """
    k = out_indices.size
    size = 0
    next_seen = 0
    for j in range(scores.size):
        if next_seen < seen.size and seen[next_seen] == j:
            next_seen += 1
            continue
        s = scores[j]
        if size < k:
            # Sift up: the new entry has the highest index so far.
            pos = size
            size += 1
            while pos > 0:
                parent = (pos - 1) // 2
                if not _worse(s, j, out_scores[parent], out_indices[parent]):
                    break
                out_scores[pos] = out_scores[parent]
                out_indices[pos] = out_indices[parent]
                pos = parent
            out_scores[pos] = s
            out_indices[pos] = j
        elif s > out_scores[0]:  # equal scores lose: j is above every kept index
            out_scores[0] = s
            out_indices[0] = j
            _sift_down(out_scores, out_indices, size, 0)
    # Pop the worst to the back until the heap is empty: best first.
    for end in range(size - 1, 0, -1):
        out_scores[0], out_scores[end] = out_scores[end], out_scores[0]
        out_indices[0], out_indices[end] = out_indices[end], out_indices[0]
        _sift_down(out_scores, out_indices, end, 0)
    for p in range(size, k):
        out_indices[p] = -1
        out_scores[p] = -np.inf


@njit(cache=True, nogil=True)
def select_topk_unseen(scores, seen_indptr, seen_indices, out_indices, out_scores):
    """Row-wise ``select_topk_row``: the best unplayed songs of every row.

    # Assumes: scores (n_rows, n_items) without NaN; seen_* is CSR with sorted rows; out_* are (n_rows, k).
    """
    for r in range(scores.shape[0]):
        select_topk_row(
            scores[r], seen_indices[seen_indptr[r] : seen_indptr[r + 1]], out_indices[r], out_scores[r]
        )
