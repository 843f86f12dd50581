"""Bytes of a text file of blank-separated fields -> token positions, hashes and CSR rows.

The front end cuts the bytes into chunks at line boundaries and runs
``count_lines`` and then ``parse_chunk`` on every chunk, one chunk per
thread. ``factorize_tokens`` maps tokens to dense indices in order of first
appearance; ``bucket_rows`` and ``sort_rows`` turn (row, col, value)
triples into sorted CSR rows with repeated pairs summed.

Kernels here are serial and release the GIL (``nogil=True``); the front
end runs them on several threads. That parallelises like ``prange`` but
compiles in a fraction of the time, which the user pays on a first run.
"""

import numpy as np
from numba import njit

# Codes of the first error found in a chunk; the front end words them.
ERR_NONE = 0
ERR_FIELDS = 1  # not exactly the expected number of fields
ERR_COUNT = 2  # the count is not a positive integer that fits in int64
ERR_NUL = 3  # a NUL byte
ERR_UTF8 = 4  # bytes that are not UTF-8

_NEWLINE = 10
_INT64_MAX = 9223372036854775807
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_MIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)


@njit(cache=True, nogil=True)
def hash_token(buf, start, length):
    """FNV-1a over the bytes, then a murmur finaliser to spread the low bits."""
    h = _FNV_OFFSET
    for i in range(start, start + length):
        h = (h ^ np.uint64(buf[i])) * _FNV_PRIME
    h ^= h >> _SHIFT
    h *= _MIX_1
    h ^= h >> _SHIFT
    h *= _MIX_2
    h ^= h >> _SHIFT
    return h


@njit(cache=True, nogil=True)
def hash_tokens(buf, starts, lengths, out):
    """``hash_token`` of every token ``buf[starts[t] : starts[t] + lengths[t]]``."""
    for t in range(starts.size):
        out[t] = hash_token(buf, starts[t], lengths[t])


@njit(cache=True, nogil=True)
def _utf8_length(buf, i, end):
    """Length of the valid UTF-8 sequence starting at buf[i] (>= 0x80), 0 if invalid."""
    b0 = buf[i]
    n, lo, hi = 0, 0x80, 0xBF
    if 0xC2 <= b0 <= 0xDF:
        n = 2
    elif b0 == 0xE0:
        n, lo = 3, 0xA0  # no overlong forms
    elif 0xE1 <= b0 <= 0xEF:
        n = 3
        if b0 == 0xED:
            hi = 0x9F  # no surrogates
    elif b0 == 0xF0:
        n, lo = 4, 0x90
    elif 0xF1 <= b0 <= 0xF3:
        n = 4
    elif b0 == 0xF4:
        n, hi = 4, 0x8F  # nothing above U+10FFFF
    if n == 0 or i + n > end or not lo <= buf[i + 1] <= hi:
        return 0
    for j in range(i + 2, i + n):
        if not 0x80 <= buf[j] <= 0xBF:
            return 0
    return n


@njit(cache=True, nogil=True)
def count_lines(buf, lo, hi, is_last):
    """Lines in ``buf[lo:hi]``: its newlines, plus an unterminated last line of the file."""
    n = 0
    for i in range(lo, hi):
        n += buf[i] == _NEWLINE
    if is_last and hi > lo and buf[hi - 1] != _NEWLINE:
        n += 1
    return n


@njit(cache=True, nogil=True)
def parse_chunk(buf, lo, hi, row, n_fields, starts, lengths, hashes, values, status):
    """Parse the lines of ``buf[lo:hi]`` into records from ``row`` on.

    A line holds ``n_fields`` tokens separated by spaces or tabs (a
    trailing carriage return is a blank too). With ``values`` non-empty
    the last field is a positive integer stored there; the other fields
    are tokens whose start, length and hash are stored. Blank lines are
    skipped. ``status`` gets (records written, error code, index within
    the chunk of the line with the error); parsing stops at that line.

    # Assumes: lo starts a line; starts, lengths, hashes are (n_tokens, >= row + lines) with n_tokens = n_fields - (values.size > 0).
    """
    n_tokens = starts.shape[0]
    has_value = n_fields > n_tokens
    first_row = row
    line = 0
    code = ERR_NONE
    i = lo
    while i < hi:
        field = 0
        value = 0
        while i < hi and buf[i] != _NEWLINE:
            b = buf[i]
            if b == 32 or b == 9 or b == 13:
                i += 1
                continue
            token_start = i
            digits_only = True
            while i < hi:
                b = buf[i]
                if b == _NEWLINE or b == 32 or b == 9 or b == 13:
                    break
                if b == 0:
                    code = ERR_NUL
                    break
                if b >= 0x80:
                    step = _utf8_length(buf, i, hi)
                    if step == 0:
                        code = ERR_UTF8
                        break
                    digits_only = False
                    i += step
                    continue
                if has_value and field == n_tokens and digits_only:
                    if 48 <= b <= 57:
                        d = b - 48
                        if value > (_INT64_MAX - d) // 10:
                            code = ERR_COUNT
                            break
                        value = value * 10 + d
                    else:
                        digits_only = False
                i += 1
            if code != ERR_NONE:
                break
            if field < n_tokens:
                starts[field, row] = token_start
                lengths[field, row] = i - token_start
                hashes[field, row] = hash_token(buf, token_start, i - token_start)
            elif has_value and field == n_tokens and (not digits_only or value == 0):
                code = ERR_COUNT
                break
            field += 1
        if code == ERR_NONE and field != 0:
            if field != n_fields:
                code = ERR_FIELDS
            elif has_value:
                values[row] = value
        if code != ERR_NONE:
            break
        row += field != 0
        line += 1
        i += 1  # past the newline
    status[0] = row - first_row
    status[1] = code
    status[2] = line


@njit(cache=True, nogil=True)
def factorize_tokens(buf, starts, lengths, hashes, codes, first, table, t, n_unique):
    """Dense indices of tokens in order of first appearance, from token ``t`` on.

    ``codes[t]`` gets the index of token t; ``first[u]`` the position of
    index u's first appearance. ``table`` is an open-addressing hash table
    of indices (-1 when empty) that ``lookup_tokens`` probes after. Stops
    early when the table gets half full or ``first`` is full, so the caller
    can grow them; returns (next token, number of distinct tokens).

    # Assumes: table.size is a power of two holding the first n_unique indices of first.
    """
    mask = np.uint64(table.size - 1)
    while t < starts.size and 2 * n_unique < table.size and n_unique < first.size:
        h = hashes[t]
        slot = h & mask
        while True:
            u = table[slot]
            if u < 0:
                table[slot] = n_unique
                first[n_unique] = t
                codes[t] = n_unique
                n_unique += 1
                break
            f = first[u]
            if hashes[f] == h and lengths[f] == lengths[t]:
                same = True
                for i in range(lengths[t]):
                    if buf[starts[f] + i] != buf[starts[t] + i]:
                        same = False
                        break
                if same:
                    codes[t] = u
                    break
            slot = (slot + np.uint64(1)) & mask
        t += 1
    return t, n_unique


@njit(cache=True, nogil=True)
def rehash_table(hashes, table):
    """Insert index u at the probe of ``hashes[u]`` for every u: a grown table.

    # Assumes: table is filled with -1, a power of two in size, more than twice hashes.size.
    """
    mask = np.uint64(table.size - 1)
    for u in range(hashes.size):
        slot = hashes[u] & mask
        while table[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        table[slot] = u


@njit(cache=True, nogil=True)
def lookup_tokens(table, data, offsets, hashes, buf, starts, lengths, query_hashes, out):
    """Index of each query token in a factorized vocabulary, -1 when absent.

    # Assumes: table, data, offsets and hashes describe the vocabulary as factorize_tokens built it.
    """
    mask = np.uint64(table.size - 1)
    for q in range(starts.size):
        h = query_hashes[q]
        slot = h & mask
        out[q] = -1
        while table[slot] >= 0:
            u = table[slot]
            length = offsets[u + 1] - offsets[u]
            if hashes[u] == h and length == lengths[q]:
                same = True
                for i in range(length):
                    if data[offsets[u] + i] != buf[starts[q] + i]:
                        same = False
                        break
                if same:
                    out[q] = u
                    break
            slot = (slot + np.uint64(1)) & mask


@njit(cache=True, nogil=True)
def bucket_rows(rows, cols, values, indptr, indices, data):
    """Counting sort of (row, col, value) triples by row into CSR arrays, file order within a row.

    # Assumes: indptr is zeros of n_rows + 1; indices and data have rows.size entries.
    """
    n_rows = indptr.size - 1
    for r in rows:
        indptr[r + 1] += 1
    for r in range(n_rows):
        indptr[r + 1] += indptr[r]
    for t in range(rows.size):
        r = rows[t]
        p = indptr[r]
        indices[p] = cols[t]
        data[p] = values[t]
        indptr[r] = p + 1
    # The loop moved each indptr[r] to the end of row r, which is where row r + 1 starts.
    for r in range(n_rows, 0, -1):
        indptr[r] = indptr[r - 1]
    indptr[0] = 0


@njit(cache=True, nogil=True)
def sort_rows(indptr, indices, data, lo, hi, kept):
    """Sort rows lo..hi-1 by column and sum repeated columns into the first of them.

    ``kept[r]`` gets the number of distinct columns of row r; they are the
    first ``kept[r]`` entries of the row afterwards.
    """
    for r in range(lo, hi):
        a, b = indptr[r], indptr[r + 1]
        # Shell sort (Ciura's gaps): short code, fast on the short rows of play logs.
        for gap in (701, 301, 132, 57, 23, 10, 4, 1):
            for p in range(a + gap, b):
                key, val = indices[p], data[p]
                q = p
                while q - gap >= a and indices[q - gap] > key:
                    indices[q] = indices[q - gap]
                    data[q] = data[q - gap]
                    q -= gap
                indices[q] = key
                data[q] = val
        w = a
        for p in range(a, b):
            if w > a and indices[w - 1] == indices[p]:
                data[w - 1] += data[p]
            else:
                indices[w] = indices[p]
                data[w] = data[p]
                w += 1
        kept[r] = w - a
