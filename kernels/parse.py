"""Bytes of a text file of blank-separated fields -> token positions, keys and CSR rows.

The front end cuts the bytes into chunks at line boundaries and runs
``count_lines`` and then ``parse_chunk`` on every chunk, one chunk per
thread. ``factorize_tokens`` maps tokens to dense indices in order of first
appearance; ``scatter_rows`` and ``sort_merge_rows`` turn (row, col, value)
triples into sorted CSR rows with repeated pairs summed.

Kernels here are serial and release the GIL (``nogil=True``); the front
end runs them on several threads. That parallelises like ``prange`` but
compiles in a fraction of the time, which the user pays on a first run.
"""

import numpy as np

from . import kernel

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
_EXACT = np.uint64(1 << 63)
_TEN = np.uint64(10)
_NINETEEN = np.uint64(19)


@kernel
def token_key(buf, start, length):
    """A uint64 key of the token ``buf[start : start + length]``.

    A token of 1 to 17 ASCII digits gets an exact key, its value * 19 + its
    length with the top bit set: equal keys mean equal tokens, no bytes to
    compare ("042" and "42" differ by length). Any other token gets a hash
    (FNV-1a, then a murmur finaliser) with the top bit clear, and equal keys
    must be confirmed byte by byte.
    """
    if length <= 17:
        value = np.uint64(0)
        digits = True
        for i in range(start, start + length):
            b = buf[i]
            if b < 48 or b > 57:
                digits = False
                break
            value = value * _TEN + np.uint64(b - 48)
        if digits:
            return (value * _NINETEEN + np.uint64(length)) | _EXACT
    h = _FNV_OFFSET
    for i in range(start, start + length):
        h = (h ^ np.uint64(buf[i])) * _FNV_PRIME
    return _mix(h) & ~_EXACT


@kernel
def _mix(h):
    # murmur3's finaliser: every bit of h moves the low bits used as a slot
    h ^= h >> _SHIFT
    h *= _MIX_1
    h ^= h >> _SHIFT
    h *= _MIX_2
    h ^= h >> _SHIFT
    return h


@kernel
def _same_token(keys_a, a, data_a, start_a, length_a, key_b, data_b, start_b, length_b):
    """Whether token a (key keys_a[a]) equals token b (key key_b), reading bytes only when the key is a hash."""
    if keys_a[a] != key_b:
        return False
    if key_b & _EXACT:
        return True
    if length_a != length_b:
        return False
    for i in range(length_a):
        if data_a[start_a + i] != data_b[start_b + i]:
            return False
    return True


@kernel
def token_keys(buf, starts, lengths, out):
    """``token_key`` of every token ``buf[starts[t] : starts[t] + lengths[t]]``."""
    for t in range(starts.size):
        out[t] = token_key(buf, starts[t], lengths[t])


@kernel
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


@kernel
def count_lines(buf, lo, hi, is_last):
    """Lines in ``buf[lo:hi]``: its newlines, plus an unterminated last line of the file."""
    n = 0
    for i in range(lo, hi):
        n += buf[i] == _NEWLINE
    if is_last and hi > lo and buf[hi - 1] != _NEWLINE:
        n += 1
    return n


@kernel
def parse_chunk(buf, lo, hi, row, n_fields, starts, lengths, keys, values, status):
    """Parse the lines of ``buf[lo:hi]`` into records from ``row`` on.

    A line holds ``n_fields`` tokens separated by spaces or tabs (a
    trailing carriage return is a blank too). With ``values`` non-empty
    the last field is a positive integer stored there; the other fields
    are tokens whose start, length and hash are stored. Blank lines are
    skipped. ``status`` gets (records written, error code, index within
    the chunk of the line with the error); parsing stops at that line.

    # Assumes: lo starts a line; starts, lengths, keys are (n_tokens, >= row + lines) with n_tokens = n_fields - (values.size > 0).
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
            counting = has_value and field == n_tokens
            token_value = np.uint64(0)  # a token's digits, for its exact key (see token_key)
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
                if 48 <= b <= 57:
                    if counting and digits_only:
                        d = b - 48
                        if value > (_INT64_MAX - d) // 10:
                            code = ERR_COUNT
                            break
                        value = value * 10 + d
                    elif digits_only:
                        token_value = token_value * _TEN + np.uint64(b - 48)
                else:
                    digits_only = False
                i += 1
            if code != ERR_NONE:
                break
            length = i - token_start
            if field < n_tokens:
                starts[field, row] = token_start
                lengths[field, row] = length
                if digits_only and length <= 17:  # token_key's exact key, without reading the bytes again
                    keys[field, row] = (token_value * _NINETEEN + np.uint64(length)) | _EXACT
                else:
                    keys[field, row] = token_key(buf, token_start, length)
            elif counting and (not digits_only or value == 0):
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


@kernel
def factorize_tokens(buf, starts, lengths, keys, codes, first, first_keys, table, t, n_unique):
    """Dense indices of tokens in order of first appearance, from token ``t`` on.

    ``codes[t]`` gets the index of token t; ``first[u]`` the position of
    index u's first appearance and ``first_keys[u]`` its key. ``table`` is
    an open-addressing hash table of indices (-1 when empty) that
    ``lookup_tokens`` probes after. A probe compares keys in the compact
    ``first_keys`` and reads a token's position and bytes only when its key
    is a hash that matches: on a large vocabulary of numeric ids, two
    memory reads a token instead of five. Stops early when the table gets
    half full or ``first`` is full, so the caller can grow them; returns
    (next token, number of distinct tokens).

    # Assumes: table.size is a power of two holding the first n_unique indices of first; first_keys as first.
    """
    mask = np.uint64(table.size - 1)
    while t < starts.size and 2 * n_unique < table.size and n_unique < first.size:
        h = keys[t]
        slot = _mix(h) & mask
        while True:
            u = table[slot]
            if u < 0:
                table[slot] = n_unique
                first[n_unique] = t
                first_keys[n_unique] = h
                codes[t] = n_unique
                n_unique += 1
                break
            if first_keys[u] == h:
                if h & _EXACT:
                    codes[t] = u
                    break
                f = first[u]
                if _same_token(keys, f, buf, starts[f], lengths[f], h, buf, starts[t], lengths[t]):
                    codes[t] = u
                    break
            slot = (slot + np.uint64(1)) & mask
        t += 1
    return t, n_unique


@kernel
def rehash_table(keys, table):
    """Insert index u at the probe of ``keys[u]`` for every u: a grown table.

    # Assumes: table is filled with -1, a power of two in size, more than twice keys.size.
    """
    mask = np.uint64(table.size - 1)
    for u in range(keys.size):
        slot = _mix(keys[u]) & mask
        while table[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        table[slot] = u


@kernel
def lookup_tokens(table, data, offsets, keys, buf, starts, lengths, query_keys, out):
    """Index of each query token in a factorized vocabulary, -1 when absent.

    # Assumes: table, data, offsets and keys describe the vocabulary as factorize_tokens built it.
    """
    mask = np.uint64(table.size - 1)
    for q in range(starts.size):
        h = query_keys[q]
        slot = _mix(h) & mask
        out[q] = -1
        while table[slot] >= 0:
            u = np.int64(table[slot])  # as factorize_tokens passes it: one compiled _same_token
            if _same_token(keys, u, data, offsets[u], offsets[u + 1] - offsets[u], h, buf, starts[q], lengths[q]):
                out[q] = u
                break
            slot = (slot + np.uint64(1)) & mask


@kernel
def scatter_rows(rows, cols, values, ends, lo, hi, indices, data):
    """Put the triples of rows lo..hi-1 into their rows, in the order they come: one thread's share of a CSR build.

    ``ends[r]`` starts at row r's first position and ends at its last + 1.
    Every thread reads all the triples, each writes only its own rows:
    the reads are in order, the writes (the cost) are split.

    # Assumes: ends[lo:hi] hold the rows' starts (indptr[:-1]); indices and data have rows.size entries.
    """
    for t in range(rows.size):
        r = rows[t]
        if lo <= r < hi:
            p = ends[r]
            indices[p] = cols[t]
            data[p] = values[t]
            ends[r] = p + 1


@kernel
def sort_merge_rows(indptr, indices, data, lo, hi, kept):
    """Sort the columns of rows lo..hi-1 and sum runs of a repeated column into their first entry.

    ``kept[r]`` gets the number of distinct columns of row r; they are the
    first ``kept[r]`` entries of the row afterwards, ascending. Rows of up
    to 32 entries are sorted in place by insertion, longer ones by a
    merge sort of their columns.

    # Assumes: indptr, indices, data of CSR arrays; the rows lo..hi-1 are this thread's alone.
    """
    for r in range(lo, hi):
        a, b = indptr[r], indptr[r + 1]
        if b - a <= 32:
            for p in range(a + 1, b):
                c, v = indices[p], data[p]
                q = p
                while q > a and indices[q - 1] > c:
                    indices[q] = indices[q - 1]
                    data[q] = data[q - 1]
                    q -= 1
                indices[q] = c
                data[q] = v
        else:
            order = np.argsort(indices[a:b], kind="mergesort")
            sorted_indices = indices[a:b][order]
            sorted_data = data[a:b][order]
            indices[a:b] = sorted_indices
            data[a:b] = sorted_data
        w = a
        for p in range(a, b):
            if w > a and indices[w - 1] == indices[p]:
                data[w - 1] += data[p]
            else:
                indices[w] = indices[p]
                data[w] = data[p]
                w += 1
        kept[r] = w - a
