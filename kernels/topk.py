"""Top-k selection over rows of scores, skipping each row's played songs.

Each candidate is ranked by one uint64 key, (order-preserving bits of the
float32 score) << 32 | (2^32 - 1 - index), so a higher score wins and equal
scores go to the lower index in a single integer comparison. A bar is
guessed from an even sample of the row (about 2k songs beat it); the row is
then scanned gap by gap between its played songs, so the inner loop has a
single, well-predicted branch: most songs cost one float comparison. The
few better ones go to a small buffer that a quickselect trims back to k
whenever it fills. If fewer than k unplayed songs beat the guess, the row
is scanned again from -inf.

Few, flat functions: every extra compiled function costs the user compile
time on a first run, and this kernel runs on every row of every request.
"""

import numpy as np
from numba import njit

_LOW = np.uint64(0xFFFFFFFF)
_SIGN = np.uint64(0x80000000)
_SHIFT = np.uint64(32)
_SAMPLE = 128  # scores sampled to guess the bar before a row's scan


@njit(cache=True, nogil=True)
def _rank_key(score_bits, index):
    bits = np.uint64(score_bits)
    if bits == _SIGN:  # -0.0 ranks as 0.0
        bits = np.uint64(0)
    bits = (~bits & _LOW) if bits & _SIGN else (bits | _SIGN)
    return (bits << _SHIFT) | (_LOW - np.uint64(index))


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
def _sift_down(heap, size, pos):
    # Min-heap: the parent's key is below its children's.
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
def _kth_score(row, keys, k):
    # The score of the worst of keys[:k].
    worst = keys[0]
    for p in range(1, k):
        worst = min(worst, keys[p])
    return row[np.int64(_LOW - (worst & _LOW))]


@njit(cache=True, nogil=True)
def _guess_bar(row, bits, k, keys):
    """A score that about 2k entries of the row beat, from an even sample; -inf for short rows."""
    step = row.size // _SAMPLE
    if step < 8 or 2 * k // step + 1 >= _SAMPLE:
        return np.float32(-np.inf)
    m = 2 * k // step + 1
    for s in range(_SAMPLE):
        keys[s] = _rank_key(bits[s * step], s * step)
    _keep_largest(keys, np.int64(_SAMPLE), m)
    return _kth_score(row, keys, m)


@njit(cache=True, nogil=True)
def select_topk_unseen(scores, seen_indptr, seen_indices, out_indices, out_scores):
    """The best k = out_indices.shape[1] songs of every row that the row has not played.

    Row r's songs go to ``out_indices[r]`` (and their scores to
    ``out_scores[r]``) best first, ties to the lower index; when fewer than
    k are left, the tail gets index -1 and score -inf.

    # Assumes: scores (n_rows, n_items) finite, n_items < 2^32; seen_* CSR with sorted, distinct rows; out_* (n_rows, k).
    """
    k = out_indices.shape[1]
    keys = np.empty(max(4 * k + 4, _SAMPLE), np.uint64)
    for r in range(scores.shape[0]):
        row = scores[r]
        bits = row.view(np.uint32)
        seen = seen_indices[seen_indptr[r] : seen_indptr[r + 1]]
        bar = _guess_bar(row, bits, k, keys)
        for attempt in range(2):
            n = np.int64(0)  # not the literal 0, which would compile _keep_largest a second time
            start = 0
            # Walk the gaps between played songs, so the inner loop has no seen-check.
            for q in range(seen.size + 1):
                stop = seen[q] if q < seen.size else row.size
                for j in range(start, stop):
                    # j is above every kept index, so a score equal to the bar loses too.
                    if row[j] <= bar:
                        continue
                    keys[n] = _rank_key(bits[j], j)
                    n += 1
                    if n == keys.size:
                        _keep_largest(keys, n, k)
                        n = k
                        bar = _kth_score(row, keys, k)
                start = stop + 1
            if n >= k or bar == -np.inf:
                break
            bar = np.float32(-np.inf)  # the guess was too high: fewer than k unplayed songs beat it
        if n > k:
            _keep_largest(keys, n, k)
            n = k
        # Heap sort, popping the worst to the back: best first.
        for p in range(n // 2 - 1, -1, -1):
            _sift_down(keys, n, p)
        for end in range(n - 1, -1, -1):
            index = np.int64(_LOW - (keys[0] & _LOW))
            out_indices[r, end] = index
            out_scores[r, end] = row[index]
            keys[0] = keys[end]
            _sift_down(keys, end, np.int64(0))
        for p in range(n, k):
            out_indices[r, p] = -1
            out_scores[r, p] = -np.inf
