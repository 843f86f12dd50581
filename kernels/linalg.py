"""Dense-from-sparse products, the in-place EASE finish and the row updates of EDLAE's additions.

Serial kernels that release the GIL; each takes the share of the work one
thread does (a stride of items, a range of rows, a list of tiles).
"""

import numpy as np

from . import kernel

# Tiles of the in-place finish: 16 x 16 keeps the pages a tile and its mirror touch few
# enough for the TLB (64 x 64: 0.22 s, 16 x 16: 0.13-0.15 s for n = 8,262 on one thread).
TILE = 16


@kernel
def accumulate_gram(col_indptr, col_indices, col_data, indptr, indices, data, out, first, step, lower):
    """``out[i] += (X^T X)[i]`` for items i = first, first + step, ...

    Row i gathers, over the users of song i, their rows: whole rows, or
    with ``lower`` only their songs j <= i (the lower triangle, half the
    work). A thread owns whole rows of the result, so threads never write
    the same row. Strided shares spread the popular songs evenly over the
    threads.

    # Assumes: X given both as CSC (col_*) and as CSR with sorted rows; out (n_items, n_items) C-contiguous.
    """
    for i in range(first, out.shape[0], step):
        row = out[i]
        for p in range(col_indptr[i], col_indptr[i + 1]):
            u = col_indices[p]
            w = col_data[p]
            for q in range(indptr[u], indptr[u + 1]):
                j = indices[q]
                if lower and j > i:
                    break
                row[j] += w * data[q]


@kernel
def multiply_sparse_dense(indptr, indices, data, dense, out, row_scales=None):
    """``out = X @ dense`` for CSR X, or ``X @ diag(row_scales) @ dense``: each row adds up the dense rows it names.

    Four dense rows are added per pass over the output row, so the output
    row is loaded and stored a quarter as often. ``dense`` may hold 16-bit
    integers with one scale per row (``quantize_rows``): half the bytes to
    read, and the product is bound by reading them.

    # Assumes: indptr[0] == 0; dense (n_items, m) float32 or int16 and out (n_rows, m) float32, C-contiguous.
    """
    m = dense.shape[1]
    for r in range(out.shape[0]):
        row = out[r]
        row[:] = 0
        p, end = indptr[r], indptr[r + 1]
        while p + 4 <= end:
            i0, i1, i2, i3 = indices[p], indices[p + 1], indices[p + 2], indices[p + 3]
            w0, w1, w2, w3 = data[p], data[p + 1], data[p + 2], data[p + 3]
            if row_scales is not None:
                w0, w1, w2, w3 = w0 * row_scales[i0], w1 * row_scales[i1], w2 * row_scales[i2], w3 * row_scales[i3]
            s0, s1, s2, s3 = dense[i0], dense[i1], dense[i2], dense[i3]
            for j in range(m):
                row[j] += (w0 * np.float32(s0[j]) + w1 * np.float32(s1[j])) + (w2 * np.float32(s2[j]) + w3 * np.float32(s3[j]))
            p += 4
        while p < end:
            i, w = indices[p], data[p]
            if row_scales is not None:
                w = w * row_scales[i]
            src = dense[i]
            for j in range(m):
                row[j] += w * np.float32(src[j])
            p += 1


def quantize_rows(dense, out, scales, lo, hi):
    """Rows lo..hi-1 of ``dense`` as 16-bit integers times one scale each: ``dense[r] ~ scales[r] * out[r]``.

    ``scales[r] = max |dense[r]| / 32767`` and ``out[r] = rint(dense[r] * 32767 / max |dense[r]|)``,
    so each entry is off by half a step, 1/65534 of its row's largest
    |entry| (plus the float32 rounding of the scale: at most 0.2% of a
    step while the scale is a normal float32); a row of zeros gets scale 0.

    # Assumes: dense (n, m) float32, finite, C-contiguous; out (n, m) int16; scales (n,) float32.
    """
    quantize_rows_by_bits(dense, dense.view(np.int32), out, scales, lo, hi)


@kernel
def quantize_rows_by_bits(dense, dense_bits, out, scales, lo, hi):
    """``quantize_rows``'s kernel; ``dense_bits`` is ``dense`` viewed as int32.

    The view comes from the caller: Numba compiles an array view as a
    function of its own, which a first run pays for.
    """
    for r in range(lo, hi):
        # The largest |entry| by its bits without the sign: an integer maximum, which vectorizes.
        top = np.int32(0)
        for b in dense_bits[r]:
            b &= 0x7FFFFFFF
            top = b if b > top else top
        largest = np.int32(top).view(np.float32)
        scales[r] = largest / np.float32(32767)
        # In float64, where 32767 / largest cannot overflow even for a subnormal largest.
        inverse = 32767.0 / np.float64(largest) if largest > 0 else 0.0
        row, quantized = dense[r], out[r]
        for j in range(row.size):
            quantized[j] = np.int16(np.rint(row[j] * inverse))


@kernel
def finish_ease_tiles(a, diag, tile_rows, abs_sums):
    """B = -P / diag(P) off the diagonal, for the tile rows listed; ``abs_sums[t]`` gets tile row t's sum of |B|.

    Tile row t covers rows t*TILE..(t+1)*TILE-1 left of the diagonal; each
    entry (i, j), j < i, is read from the lower triangle and written to
    both (i, j) and (j, i). No two tile rows touch the same entries. The
    sums (float64) come free with the pass, which is bound by memory.

    # Assumes: a (n, n) C-contiguous with P in its lower triangle; diag = diag(P); abs_sums (n_tile_rows,) float64.
    """
    n = a.shape[0]
    for t in tile_rows:
        row_lo = t * TILE
        row_hi = min(n, row_lo + TILE)
        total = 0.0
        for col_lo in range(0, row_hi, TILE):
            for i in range(row_lo, row_hi):
                d_i = diag[i]
                for j in range(col_lo, min(col_lo + TILE, i)):
                    v = a[i, j]
                    lower, upper = -v / diag[j], -v / d_i
                    a[i, j] = lower
                    a[j, i] = upper
                    total += np.float64(abs(lower)) + np.float64(abs(upper))
        abs_sums[t] = total


@kernel
def shift_scale_rows(scores, offsets, factors, factor_rows):
    """``scores[r] = (scores[r] + offsets) * factors[factor_rows[r]]`` for every row r, in place.

    # Assumes: scores (n_rows, m) and factors (n_factor_rows, m) C-contiguous float32; offsets (m,) float32;
    # 0 <= factor_rows[r] < n_factor_rows.
    """
    m = scores.shape[1]
    for r in range(scores.shape[0]):
        row = scores[r]
        factor = factors[factor_rows[r]]
        for j in range(m):
            row[j] = (row[j] + offsets[j]) * factor[j]


@kernel
def add_normalized_rows(out, rows, columns, values, weight):
    """``out[rows[r], columns[r, k]] += weight * values[r, k] / sum_k values[r, k]`` for every r and k.

    Columns -1 are skipped; a row whose values sum to 0 or less adds nothing.

    # Assumes: columns and values (len(rows), K); the columns of a row distinct; rows distinct.
    """
    for r in range(rows.shape[0]):
        total = 0.0
        for k in range(columns.shape[1]):
            if columns[r, k] >= 0:
                total += values[r, k]
        if total <= 0:
            continue
        row = out[rows[r]]
        scale = weight / total
        for k in range(columns.shape[1]):
            if columns[r, k] >= 0:
                row[columns[r, k]] += scale * values[r, k]
