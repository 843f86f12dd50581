"""Top-k selection over rows of scores, skipping each row's played songs.

Each candidate is ranked by one uint64 key, (order-preserving bits of the
float32 score) << 32 | (2^32 - 1 - index), so a higher score wins and equal
scores go to the lower index in a single integer comparison. A bar guessed
from an even sample of the row (about 2k entries beat it) makes the scan
cheap and its branch predictable: most songs cost one float comparison, the
few better ones go to a small buffer that a quickselect trims back to k
whenever it fills. If fewer than k unplayed songs beat the guess, the row
is scanned again without it.
"""

import numpy as np
from numba import njit

_LOW = np.uint64(0xFFFFFFFF)
_SIGN = np.uint64(0x80000000)
_SHIFT = np.uint64(32)
_SAMPLE = 512  # scores sampled to guess the bar before the scan


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
def _guess_bar(scores, bits, k, keys):
    """A score that about 2k entries beat, from an even sample; -inf when the row is short.

    Scanning against a high bar from the start makes the scan's one branch
    predictable; if fewer than k unplayed entries beat it, the caller scans again.
    """
    step = scores.size // _SAMPLE
    if step < 8 or keys.size < _SAMPLE or 2 * k // step + 1 >= _SAMPLE:
        return np.float32(-np.inf)
    m = 2 * k // step + 1  # sampled entries expected to beat the bar
    for s in range(_SAMPLE):
        j = s * step
        keys[s] = _rank_key(bits[j], j)
    _keep_largest(keys[:_SAMPLE], _SAMPLE, m)
    worst = keys[0]
    for p in range(1, m):
        worst = min(worst, keys[p])
    return scores[np.int64(_LOW - (worst & _LOW))]


@njit(cache=True, nogil=True)
def _scan(scores, bits, seen, bar, k, keys):
    """Keys of the unplayed entries above ``bar`` into ``keys``, trimmed to the best k whenever it fills; returns their number."""
    n = 0
    start = 0
    # Walk the gaps between played songs, so the inner loop has one branch.
    for q in range(seen.size + 1):
        stop = seen[q] if q < seen.size else scores.size
        for j in range(start, stop):
            # j is above every kept index, so a score equal to the bar loses too.
            if scores[j] <= bar:
                continue
            keys[n] = _rank_key(bits[j], j)
            n += 1
            if n == keys.size:
                _keep_largest(keys, n, k)
                n = k
                worst = keys[0]
                for p in range(1, k):
                    worst = min(worst, keys[p])
                bar = scores[np.int64(_LOW - (worst & _LOW))]
        start = stop + 1
    return n


@njit(cache=True, nogil=True)
def select_topk_row(scores, seen, keys, out_indices, out_scores):
    """Best ``k = out_indices.size`` entries of ``scores`` whose index is not in ``seen``.

    Writes them best first (ties: lower index first); when fewer than k are
    left, the tail gets index -1 and score -inf. ``keys`` is scratch space.

    # Assumes: seen sorted ascending, distinct, < scores.size; scores finite, fewer than 2^32; keys.size > k.
    """
    k = out_indices.size
    bits = scores.view(np.uint32)
    bar = _guess_bar(scores, bits, k, keys)
    n = _scan(scores, bits, seen, bar, k, keys)
    if n < k and bar > -np.inf:  # the guess was too high: fewer than k beat it
        n = _scan(scores, bits, seen, np.float32(-np.inf), k, keys)
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

    # Assumes: scores (n_rows, n_items) finite; seen_* is CSR with sorted, distinct rows; out_* are (n_rows, k).
    """
    keys = np.empty(max(4 * out_indices.shape[1] + 4, _SAMPLE), np.uint64)
    for r in range(scores.shape[0]):
        select_topk_row(
            scores[r], seen_indices[seen_indptr[r] : seen_indptr[r + 1]], keys, out_indices[r], out_scores[r]
        )
