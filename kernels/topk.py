"""Top-k selection over rows of scores, skipping each row's played songs.

Each candidate is ranked by one uint64 key, (order-preserving bits of the
float32 score) << 32 | (2^32 - 1 - index), so a higher score wins and equal
scores go to the lower index in a single integer comparison.

A row costs three short passes. A bar is guessed from an even sample of
the row: its m-th best score, which about 2k songs reach. One
branch-free, vectorised pass marks the songs that reach the bar in a
byte mask, and the row's played songs are unmarked. The marked songs are
then read 64 at a time: eight mask words fold into one 64-bit word whose
set bits are visited directly, so the loop costs one step per candidate,
not per song, and mispredicts little. A quickselect keeps the k best
candidates; each of them is then placed by counting the better ones (a
heap sort when k is large). If fewer than k unplayed songs reach the
guessed bar, a lower one is taken from the same sample, and finally
-inf.

Few, flat functions: every extra compiled function costs the user compile
time on a first run, and this kernel runs on every row of every request.
"""

import numpy as np

from . import kernel

_LOW = np.uint64(0xFFFFFFFF)
_SIGN = np.uint64(0x80000000)
_SHIFT = np.uint64(32)
_SAMPLE = 256  # scores sampled to guess the bar before a row's scan
_RANKED = 128  # up to this many winners are placed by counting; more by a heap sort (n^2 against n log n)

# Eight mask bytes of 0 or 1, times this, give their 8 bits in the top byte (byte i -> bit 56 + i).
_GATHER = np.uint64(0x0102040810204080)
# The lowest set bit of a word, times this, indexes _BIT_POSITION by its top 6 bits (a de Bruijn sequence).
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)
_BIT_POSITION = np.array(
    [0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18,
     12, 5, 63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11, 46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9,
     13, 8, 7, 6],
    np.int64,
)  # fmt: skip


@kernel
def _rank_key(score_bits, index):
    bits = np.uint64(score_bits)
    if bits == _SIGN:  # -0.0 ranks as 0.0
        bits = np.uint64(0)
    bits = (~bits & _LOW) if bits & _SIGN else (bits | _SIGN)
    return (bits << _SHIFT) | (_LOW - np.uint64(index))


@kernel
def _keep_largest(keys, n, k):
    """Quickselect: move the k largest of the distinct ``keys[:n]`` to ``keys[:k]``, in no order.

    Each partition is a branch-free Lomuto pass (every key is swapped, the
    boundary moves by the comparison's 0 or 1), so random keys cost no
    mispredicted branches.
    """
    lo, hi = 0, n  # keys[:lo] are in, keys[hi:] out
    while hi - lo > 1:
        mid = (lo + hi) // 2
        a, b, c = keys[lo], keys[mid], keys[hi - 1]
        lo_ab, hi_ab = (a, b) if a < b else (b, a)
        pivot = lo_ab if c < lo_ab else (c if c < hi_ab else hi_ab)  # median of three, moved to the end
        at = lo if pivot == a else (mid if pivot == b else hi - 1)
        keys[at], keys[hi - 1] = keys[hi - 1], pivot
        j = lo
        for i in range(lo, hi - 1):
            key = keys[i]
            keys[i] = keys[j]
            keys[j] = key
            j += key > pivot
        keys[hi - 1], keys[j] = keys[j], pivot  # keys[lo:j] > pivot > keys[j + 1:hi]
        if j > k:
            hi = j
        elif j < k - 1:
            lo = j + 1
        else:
            break


@kernel
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


def select_topk_unseen(scores, seen_indptr, seen_indices, out_indices, out_scores):
    """The best k = out_indices.shape[1] songs of every row that the row has not played.

    Row r's songs go to ``out_indices[r]`` (and their scores to
    ``out_scores[r]``) best first, ties to the lower index; when fewer than
    k are left, the tail gets index -1 and score -inf.

    # Assumes: scores (n_rows, n_items) finite, C-contiguous, n_items < 2^32; seen_* CSR with sorted, distinct rows;
    # out_* (n_rows, k).
    """
    select_topk_rows(scores, scores.view(np.uint32), seen_indptr, seen_indices, out_indices, out_scores, *scratch(scores.shape[1]))


def scratch(n_items):
    """The scratch space ``select_topk_rows`` takes after its outputs: ``(mask, mask_words, keys, sample)``.

    Made here, not in the kernel: Numba compiles array creation and views
    as functions of their own, which a first run pays for.
    """
    mask = np.zeros(64 * ((n_items + 63) // 64), np.uint8)  # the padding past n_items stays 0
    return mask, mask.view(np.uint64), np.empty(max(n_items, 1), np.uint64), np.empty(_SAMPLE, np.float32)


@kernel
def select_topk_rows(scores, score_bits, seen_indptr, seen_indices, out_indices, out_scores, mask, words, keys, best):
    """``select_topk_unseen``'s kernel: ``score_bits`` is ``scores`` viewed as uint32, the rest is ``scratch()``."""
    k = out_indices.shape[1]
    n_items = scores.shape[1]
    n_blocks = (n_items + 63) // 64
    step = n_items // _SAMPLE
    for r in range(scores.shape[0]):
        row = scores[r]
        bits = score_bits[r]
        seen = seen_indices[seen_indptr[r] : seen_indptr[r + 1]]
        # The bar: the m-th best of an even sample, which about 2k songs of the row reach.
        m = 2 * k // step + 1 if step >= 8 else _SAMPLE
        while True:
            bar = np.float32(-np.inf)
            if m < _SAMPLE:  # insert each sampled score into the m best so far: few get in
                best[:m] = -np.inf
                for s in range(_SAMPLE):
                    score = row[s * step]
                    if score > best[m - 1]:
                        i = m - 1
                        while i > 0 and best[i - 1] < score:
                            best[i] = best[i - 1]
                            i -= 1
                        best[i] = score
                bar = best[m - 1]
            for j in range(n_items):
                mask[j] = row[j] >= bar
            for j in seen:
                mask[j] = 0
            n = np.int64(0)
            for b in range(n_blocks):
                marked = np.uint64(0)
                for w in range(8):
                    marked |= ((words[8 * b + w] * _GATHER) >> np.uint64(56)) << np.uint64(8 * w)
                while marked:
                    lowest = marked & (~marked + np.uint64(1))
                    j = 64 * b + _BIT_POSITION[np.int64((lowest * _DE_BRUIJN) >> np.uint64(58))]
                    keys[n] = _rank_key(bits[j], j)
                    n += 1
                    marked ^= lowest
            if n >= k or bar == -np.inf:
                break
            m *= 4  # too few unplayed songs reach the guess: a lower bar from the same sample
        if n > k:
            _keep_largest(keys, n, k)
            n = k
        if n <= _RANKED:  # each key's place is the number of better keys: no branches to mispredict
            for i in range(n):
                key = keys[i]
                place = 0
                for q in range(n):
                    place += keys[q] > key
                index = np.int64(_LOW - (key & _LOW))
                out_indices[r, place] = index
                out_scores[r, place] = row[index]
        else:  # heap sort, popping the worst to the back: best first
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
