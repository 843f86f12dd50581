"""The gather of the sparse model: each song's neighbours' links among themselves."""

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
