"""Top-k selection over rows of scores, skipping each row's played songs.

Each candidate is ranked by one uint64 key, (order-preserving bits of the
float32 score) << 32 | (2^32 - 1 - index), so a higher score wins and equal
scores go to the lower index in a single integer comparison. A row is
scanned once against the k-th best score seen so far; most songs cost one
float comparison, and the few better ones are kept in a small buffer that a
quickselect trims back to k whenever it fills.
"""

import numpy as np
from numba import njit

_LOW = np.uint64(0xFFFFFFFF)
_SIGN = np.uint64(0x80000000)
_SHIFT = np.uint64(32)
_BLOCK = 64  # songs whose maximum is checked against the bar at once


@njit(cache=True, nogil=True)
def _rank_key(score_bits, index):
    bits = np.uint64(score_bits)
    if bits == _SIGN:  # -0.0 ranks as 0.0
        bits = np.uint64(0)
    bits = (~bits & _LOW) if bits & _SIGN else (bits | _SIGN)
    return (bits << _SHIFT) | (_LOW - np.uint64(index))


@njit(cache=True, nogil=True)
def _sift_down(heap, size, pos):
    key = heap[pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= key:
            break
        heap[pos] = heap[child]
        pos = child
    heap[pos] = key


@njit(cache=True, nogil=True)
def _count_above(scores, lo, hi, bar):
    # A count of comparisons vectorises (a float max reduction does not, for NaN's sake).
    n = 0
    for j in range(lo, hi):
        n += scores[j] > bar
    return n


@njit(cache=True, nogil=True)
def _keep_largest(keys, n, k):
    """Quickselect: move the k largest of the distinct ``keys[:n]`` to ``keys[:k]``, in no order."""
    lo, hi = 0, n - 1
    while lo < hi:
        a, b, c = keys[lo], keys[(lo + hi) // 2], keys[hi]
        pivot = max(min(a, b), min(max(a, b), c))  # median of three
        i, j = lo, hi
        while i <= j:
            while keys[i] > pivot:
                i += 1
            while keys[j] < pivot:
                j -= 1
            if i <= j:
                keys[i], keys[j] = keys[j], keys[i]
                i += 1
                j -= 1
        if k - 1 <= j:
            hi = j
        elif k - 1 >= i:
            lo = i
        else:
            break


@njit(cache=True, nogil=True)
def select_topk_row(scores, seen, keys, out_indices, out_scores):
    """Best ``k = out_indices.size`` entries of ``scores`` whose index is not in ``seen``.

    Writes them best first (ties: lower index first); when fewer than k are
    left, the tail gets index -1 and score -inf. Candidates better than the
    current k-th best go to the scratch buffer ``keys``; when it is full, a
    quickselect keeps the best k and raises the bar.

    # Assumes: seen sorted ascending; scores has no NaN and fewer than 2^32 entries; keys.size > k.
    """
    k = out_indices.size
    bits = scores.view(np.uint32)
    n = 0
    next_seen = 0
    bar = np.float32(-np.inf)
    raised = False
    for block in range(0, scores.size, _BLOCK):
        end = min(block + _BLOCK, scores.size)
        if raised and _count_above(scores, block, end, bar) == 0:
            while next_seen < seen.size and seen[next_seen] < end:
                next_seen += 1
            continue
        for j in range(block, end):
            if next_seen < seen.size and seen[next_seen] == j:
                next_seen += 1
                continue
            # j is above every kept index, so a score equal to the bar loses too.
            if raised and scores[j] <= bar:
                continue
            keys[n] = _rank_key(bits[j], j)
            n += 1
            if n == keys.size:
                _keep_largest(keys, n, k)
                n = k
                bar = np.float32(np.inf)
                for p in range(k):
                    bar = min(bar, scores[np.int64(_LOW - (keys[p] & _LOW))])
                raised = True
    if n > k:
        _keep_largest(keys, n, k)
        n = k
    # Heap sort, popping the worst to the back: best first.
    for p in range(n // 2 - 1, -1, -1):
        _sift_down(keys, n, p)
    for end in range(n - 1, -1, -1):
        index = np.int64(_LOW - (keys[0] & _LOW))
        out_indices[end] = index
        out_scores[end] = scores[index]
        keys[0] = keys[end]
        _sift_down(keys, end, 0)
    for p in range(n, k):
        out_indices[p] = -1
        out_scores[p] = -np.inf


@njit(cache=True, nogil=True)
def select_topk_unseen(scores, seen_indptr, seen_indices, out_indices, out_scores):
    """Row-wise ``select_topk_row``: the best unplayed songs of every row.

    # Assumes: scores (n_rows, n_items) without NaN; seen_* is CSR with sorted rows; out_* are (n_rows, k).
    """
    keys = np.empty(4 * out_indices.shape[1] + 4, np.uint64)
    for r in range(scores.shape[0]):
        select_topk_row(
            scores[r], seen_indices[seen_indptr[r] : seen_indptr[r + 1]], keys, out_indices[r], out_scores[r]
        )
