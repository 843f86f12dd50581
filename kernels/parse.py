"""Bytes of a text file of blank-separated fields -> token positions, keys and CSR rows.

The front end cuts the bytes into chunks at line boundaries and runs
``count_lines`` and then ``parse_chunk`` on every chunk, one chunk per
thread. ``factorize_tokens`` maps tokens to dense indices in order of first
appearance; ``count_buckets``, ``scatter_buckets`` and ``rows_of_buckets``
turn (row, col, value) triples into sorted CSR rows with repeated pairs
summed.

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
AHEAD = 16  # tokens whose probes factorize_tokens reads ahead
_POWERS_OF_TEN = np.array([10**i for i in range(18)], np.uint64)


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
    are tokens whose key (``token_key``) is stored, and their start and
    length only when the key is a hash: an exact key holds the token, and
    on a log of numeric ids the pages of ``starts`` and ``lengths`` are
    then never touched. Blank lines are skipped. ``status`` gets (records written, error code, index within
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
                if digits_only and length <= 17:  # token_key's exact key, without reading the bytes again
                    keys[field, row] = (token_value * _NINETEEN + np.uint64(length)) | _EXACT
                else:  # the key is a hash: the bytes are needed to tell tokens apart
                    starts[field, row] = token_start
                    lengths[field, row] = length
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
def plain_number(key):
    """The value of a token written as a number without leading zeros ("0" too), from its key; -1 for other tokens."""
    if not key & _EXACT:
        return -1
    k = key & ~_EXACT
    value = k // _NINETEEN
    length = np.int64(k - value * _NINETEEN)
    if length > 1 and value < _POWERS_OF_TEN[length - 1]:
        return -1
    return np.int64(value)


@kernel
def largest_plain_number(keys):
    """The largest ``plain_number`` of the keys, -1 when none is one."""
    largest = -1
    for t in range(keys.size):
        largest = max(largest, plain_number(keys[t]))
    return largest


@kernel
def token_length(lengths, t, key):
    """The length of token t (key ``key``): from the key when exact (its start and length were not stored)."""
    return np.int64((key & ~_EXACT) % _NINETEEN) if key & _EXACT else lengths[t]


@kernel
def _append_token(arena, at, buf, start, length, key):
    """Write token (key, and buf[start : start + length] when the key is a hash) at ``arena[at:]``."""
    if key & _EXACT:  # the digits, leading zeros included, from the key
        value = (key & ~_EXACT) // _NINETEEN
        for i in range(at + length - 1, at - 1, -1):
            arena[i] = np.uint8(48 + value % _TEN)
            value //= _TEN
    else:  # a loop: Numba's slice-to-slice assignment compiles for 3 s, a first run's longest wait
        for i in range(length):
            arena[at + i] = buf[start + i]


@kernel
def factorize_tokens(buf, starts, lengths, keys, codes, first_keys, offsets, arena, table, direct, t, n_unique, ahead):
    """Dense indices of tokens in order of first appearance, from token ``t`` on.

    ``codes[t]`` gets the index of token t. Distinct token u is kept as
    its key ``first_keys[u]`` and its bytes ``arena[offsets[u] :
    offsets[u + 1]]``: the IdMap's arrays, built as the tokens come. A
    token that is a plain number below ``direct.size`` finds its index at
    ``direct[number]`` (-1 when new): one memory read, and the array is
    small when the ids are. Other tokens go to ``table``, an
    open-addressing hash table of indices (-1 when empty). A probe
    compares keys in the compact ``first_keys``, and bytes in the compact
    arena only when a hashed key matches. A token with an exact key is
    known by its key alone: its start and length are never read. Stops
    early when the table gets half full, ``first_keys`` is full or the
    arena has no room for a new token, so the caller can grow them;
    returns (next token, number of distinct tokens). With ``direct``
    used, the table lacks its numbers: the caller builds it again from
    ``first_keys`` (``rehash_table``) for ``lookup_tokens``. ``ahead``
    is scratch: ``AHEAD`` int64s, made by the caller (an array made
    here would compile as a function of its own).

    # Assumes: table.size is a power of two holding the indices below n_unique (but those in direct); offsets[n_unique] is set.
    """
    mask = np.uint64(table.size - 1)
    touched = np.uint64(0)
    while t < starts.size and 2 * n_unique < table.size and n_unique < first_keys.size:
        if t % AHEAD == 0 and not direct.size:
            # Read ahead what the next tokens' probes will read, each step for all of them at once: the
            # reads overlap instead of waiting for each other (table, then key, then bytes).
            m = min(AHEAD, starts.size - t)
            for i in range(m):
                ahead[i] = table[_mix(keys[t + i]) & mask]
            for i in range(m):
                if ahead[i] >= 0:
                    touched += first_keys[ahead[i]] + np.uint64(offsets[ahead[i]])
            for i in range(m):
                if ahead[i] >= 0:
                    touched += np.uint64(arena[offsets[ahead[i]]])
        h = keys[t]
        number = plain_number(h) if direct.size else -1
        slot = np.uint64(0)
        if 0 <= number < direct.size:
            u = direct[number]
        else:
            slot = _mix(h) & mask
            while True:
                u = table[slot]
                if u < 0:
                    break
                if first_keys[u] == h:
                    if h & _EXACT:
                        break
                    a = offsets[u]
                    if _same_token(keys, t, arena, a, offsets[u + 1] - a, h, buf, starts[t], lengths[t]):
                        break
                slot = (slot + np.uint64(1)) & mask
        if u < 0:  # a new token
            length = token_length(lengths, t, h)
            at = offsets[n_unique]
            if at + length > arena.size:
                break
            _append_token(arena, at, buf, starts[t], length, h)
            offsets[n_unique + 1] = at + length
            first_keys[n_unique] = h
            if 0 <= number < direct.size:
                direct[number] = n_unique
            else:
                table[slot] = n_unique
            u = n_unique
            n_unique += 1
        codes[t] = u
        t += 1
    return t, n_unique, touched


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
def count_buckets(rows, lo, hi, shift, counts):
    """``counts[b]`` += the triples of lo..hi-1 whose row is in bucket b (rows b << shift up to the next bucket's)."""
    for t in range(lo, hi):
        counts[rows[t] >> shift] += 1


@kernel
def scatter_buckets(rows, cols, values, lo, hi, shift, col_bits, ends, keys, bucket_values):
    """Put triples lo..hi-1 into their buckets, in the order they come: one thread's share of the first pass of a CSR build.

    A triple is kept as a key, its row's place in its bucket << col_bits |
    its column, and its value. ``ends[b]`` starts at this thread's first
    position in bucket b and ends past its last. With a few hundred
    buckets, the writes go to a few hundred places that stay in cache,
    not to one random place each.

    # Assumes: ends holds this thread's start in every bucket; keys and bucket_values have rows.size entries; cols < 2**col_bits.
    """
    mask = (1 << shift) - 1
    for t in range(lo, hi):
        r = rows[t]
        b = r >> shift
        p = ends[b]
        keys[p] = (np.uint64(r & mask) << np.uint64(col_bits)) | np.uint64(cols[t])
        bucket_values[p] = values[t]
        ends[b] = p + 1


def radix_scratch(bucket_starts, b_lo, b_hi, key_bits, value_dtype):
    """The scratch ``rows_of_buckets`` takes after its outputs for buckets b_lo..b_hi-1 of ``key_bits``-bit keys.

    ``(other_keys, other_values, bins)``: room for the largest bucket's
    keys and values, and the counts of each pass of the radix sort, a row
    per pass of at most 11-bit digits. Made here, not in the kernel: Numba
    compiles array creation as functions of their own, which a first run
    pays for.
    """
    largest = int(np.diff(bucket_starts[b_lo : b_hi + 1]).max(initial=0))
    passes = max(1, -(-key_bits // 11))
    digit = -(-key_bits // passes)
    return np.empty(largest, np.uint64), np.empty(largest, value_dtype), np.empty((passes, 1 << digit), np.int64)


@kernel
def rows_of_buckets(keys, bucket_values, bucket_starts, b_lo, b_hi, shift, col_bits, n_rows, indptr, indices, data, kept,
                    other_keys, other_values, bins):
    """CSR rows of buckets b_lo..b_hi-1: the second pass of a CSR build, on data that fits in cache.

    Each bucket's keys (row << col_bits | column) are sorted with their
    values by a least-significant-digit radix sort (stable: repeats of a
    pair stay in file order; skipped when the keys come sorted), written
    out as the rows' columns, and each row's repeats summed into its
    first entry. Sets ``indptr[r + 1]`` and ``kept[r]`` for the buckets'
    rows r; ``keys`` and ``bucket_values`` of the buckets are scratch, and
    so is the rest (``radix_scratch``).

    # Assumes: bucket_starts[b] is the CSR position of bucket b's first row; these buckets are this thread's alone;
    # the scratch is radix_scratch(bucket_starts, b_lo, b_hi, shift + col_bits, bucket_values.dtype).
    """
    size = 1 << shift
    passes, n_bins = bins.shape
    digit = np.uint64(0)
    while (1 << digit) < n_bins:
        digit += np.uint64(1)
    bin_mask = np.uint64(n_bins - 1)
    col_mask = np.uint64((1 << col_bits) - 1)
    for b in range(b_lo, b_hi):
        a, e = bucket_starts[b], bucket_starts[b + 1]
        k, v = keys[a:e], bucket_values[a:e]
        k2, v2 = other_keys[: e - a], other_values[: e - a]
        bins[:] = 0
        ordered = True
        for p in range(e - a):
            key = k[p]
            ordered &= p == 0 or k[p - 1] <= key
            for d in range(passes):
                bins[d, np.int64((key >> (digit * np.uint64(d))) & bin_mask)] += 1
        if not ordered:
            for d in range(passes):
                start = 0
                for i in range(n_bins):
                    count = bins[d, i]
                    bins[d, i] = start
                    start += count
                at = digit * np.uint64(d)
                for p in range(e - a):
                    key = k[p]
                    i = np.int64((key >> at) & bin_mask)
                    q = bins[d, i]
                    k2[q] = key
                    v2[q] = v[p]
                    bins[d, i] = q + 1
                k, k2 = k2, k
                v, v2 = v2, v
        r0 = b << shift
        r1 = min(r0 + size, n_rows)
        p = 0
        for r in range(r0, r1):  # rows in order, each row's columns ascending
            row_start = a + p
            w = row_start
            while p < e - a and np.int64(k[p] >> np.uint64(col_bits)) == r - r0:
                col = np.int64(k[p] & col_mask)
                if w > row_start and indices[w - 1] == col:
                    data[w - 1] += v[p]
                else:
                    indices[w] = col
                    data[w] = v[p]
                    w += 1
                p += 1
            indptr[r + 1] = a + p
            kept[r] = w - row_start
