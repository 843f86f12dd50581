"""The kernels of the sparse model: each song's strongest links, their links among themselves, sparse scoring."""

import numpy as np

from . import kernel


@kernel
def gather_links(link_cols, link_vals, songs, position, out, lo, hi):
    """``out[r]`` = the links among the songs S_r = ``songs[r]`` that either song of a pair kept, for rows r in lo..hi-1.

    For s = S_r[i], each of its kept links (``link_cols[s, a]``, value
    ``link_vals[s, a]``) to a song t = S_r[l] of the same row is written
    to out[r, i, l] and out[r, l, i]; the other entries stay as they
    were. ``position`` is scratch: -1 everywhere on entry and on return.

    # Assumes: link_cols (n, K) int32 song indices, link_vals (n, K); songs (R, K2) distinct valid song indices;
    # position (n,) int32 all -1; out (R, K2, K2).
    """
    n_kept = link_cols.shape[1]
    width = songs.shape[1]
    for r in range(lo, hi):
        for l in range(width):
            position[songs[r, l]] = l
        for i in range(width):
            s = songs[r, i]
            for a in range(n_kept):
                l = position[link_cols[s, a]]
                if l >= 0:
                    value = link_vals[s, a]
                    out[r, i, l] = value
                    out[r, l, i] = value
        for l in range(width):
            position[songs[r, l]] = -1


@kernel
def multiply_sparse_sparse(indptr, indices, data, b_indptr, b_indices, b_data, out):
    """``out = X @ B`` for CSR X and CSR B: each row of X adds up the sparse rows of B it names.

    # Assumes: indptr[0] == 0; B (n_items, m) CSR; out (n_rows, m) float32, C-contiguous.
    """
    for r in range(out.shape[0]):
        row = out[r]
        row[:] = 0
        for p in range(indptr[r], indptr[r + 1]):
            i = indices[p]
            w = data[p]
            for q in range(b_indptr[i], b_indptr[i + 1]):
                row[b_indices[q]] += w * b_data[q]


@kernel
def select_strongest_links(col_indptr, col_indices, col_data, indptr, indices, data, scale, first, stop, step, offset,
                           acc, touched, others, ranked, columns, values, diagonal):
    """Row j of G = X^T X, for j = first, first + step, ... below stop: its K strongest entries off the diagonal, and G[j, j].

    The row is summed in ``acc`` over the users of song j (their rows of
    X), only where it is not 0 (the songs in ``touched``), and cleared
    after: the work is that of the products, not n per row. The entries
    are ranked by G[j, t] * scale[t], largest first, ties to the lower t;
    when fewer than K are not 0, the row is filled with the lowest t whose
    entry is 0 (t != j). ``columns[j - offset]`` and ``values[j - offset]``
    get the songs and G[j, t]; ``diagonal[j - offset]`` gets G[j, j].

    # Assumes: X as CSC (col_*) and CSR (sorted rows) with positive data; scale (n,) > 0; acc (n,) float32 zeros;
    # touched, others (n,) int64 and ranked (n,) float32 scratch; columns (rows, K) int32, values (rows, K) float32,
    # diagonal (rows,) with offset <= first and stop - offset <= rows; K <= n - 1.
    """
    K = columns.shape[1]
    for j in range(first, stop, step):
        m = 0
        for p in range(col_indptr[j], col_indptr[j + 1]):
            u = col_indices[p]
            w = col_data[p]
            for q in range(indptr[u], indptr[u + 1]):
                t = indices[q]
                if acc[t] == 0:
                    touched[m] = t
                    m += 1
                acc[t] += w * data[q]
        row = j - offset
        diagonal[row] = acc[j]
        c = 0
        for i in range(m):
            t = touched[i]
            if t != j:
                others[c] = t
                ranked[c] = -(acc[t] * scale[t])
                c += 1
        kept = min(c, K)
        if kept > 0:
            # The K-th best value, then the songs at least as good, sorted: O(c), not c log c.
            bar = np.partition(ranked[:c], kept - 1)[kept - 1]
            b = 0
            for i in range(c):
                if ranked[i] <= bar:
                    others[b] = others[i]
                    ranked[b] = ranked[i]
                    b += 1
            by_song = np.argsort(others[:b])
            best = by_song[np.argsort(ranked[:b][by_song], kind="mergesort")]  # ties to the lower song
            for i in range(kept):
                t = others[best[i]]
                columns[row, i] = t
                values[row, i] = acc[t]
        t = 0
        for i in range(kept, K):  # fewer than K co-occurring songs: the lowest others, at 0
            while t == j or acc[t] != 0:
                t += 1
            columns[row, i] = t
            values[row, i] = 0
            t += 1
        for i in range(m):
            acc[touched[i]] = 0
