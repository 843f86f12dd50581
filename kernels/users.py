"""Scores from similar users: each row's nearest users of the training log, by the songs they share."""

import numpy as np

from . import kernel
from .topk import _keep_largest, _rank_key

_LOW = np.uint64(0xFFFFFFFF)


@kernel
def user_neighbour_scores(indptr, indices, pool_indptr, pool_indices, listeners_indptr, listeners, neighbours, out,
                          overlap, touched, similarity, similarity_bits, keys):
    """``out[r, j]`` = the summed similarity of the ``neighbours`` pool users most like row r who played song j.

    The similarity of row r and pool user v is the cosine of their sets of
    songs, ``|S_r & S_v| / sqrt(|S_r| |S_v|)``. A pool user who played
    exactly row r's songs has no song to add and is left out, so a row's
    own training row never counts as its neighbour. Equal similarities
    go to the lower pool index. The overlaps are counted over the
    listeners of row r's songs only (``listeners``: the pool's plays by
    songs), so a row costs the plays of the songs it played, not the pool.

    Scratch, each (n_pool,): ``overlap`` int32, zeros on entry and on
    return; ``touched`` int32; ``similarity`` float32 and
    ``similarity_bits``, its uint32 view; ``keys`` uint64.

    # Assumes: indptr/indices CSR rows of distinct songs; pool_* CSR (n_pool, n_items) with distinct songs per row;
    # listeners_* the same plays as CSC (pool users by song); neighbours >= 1; out (n_rows, n_items) float32.
    """
    for r in range(out.shape[0]):
        row = out[r]
        row[:] = 0
        n_r = indptr[r + 1] - indptr[r]
        n_touched = 0
        for p in range(indptr[r], indptr[r + 1]):
            song = indices[p]
            for q in range(listeners_indptr[song], listeners_indptr[song + 1]):
                v = listeners[q]
                if overlap[v] == 0:
                    touched[n_touched] = v
                    n_touched += 1
                overlap[v] += 1
        for t in range(n_touched):
            v = touched[t]
            shared = overlap[v]
            overlap[v] = 0
            n_v = pool_indptr[v + 1] - pool_indptr[v]
            if shared == n_r and shared == n_v:
                similarity[v] = 0.0
            else:
                similarity[v] = np.float32(shared / np.sqrt(np.float64(n_r) * np.float64(n_v)))
            keys[t] = _rank_key(similarity_bits[v], v)
        kept = min(neighbours, n_touched)
        if kept < n_touched:
            _keep_largest(keys, n_touched, kept)
        for t in range(kept):
            v = np.int64(_LOW - (keys[t] & _LOW))
            weight = similarity[v]
            if weight > 0:
                for q in range(pool_indptr[v], pool_indptr[v + 1]):
                    row[pool_indices[q]] += weight
