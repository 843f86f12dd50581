"""Interactions: the users x songs play counts and the maps to external ids.

External ids (tokens from files) live only here and in ``io``; models and
kernels see dense integer indices. ``IdMap.lookup`` is the one place where
tokens become indices, ``IdMap.data``/``offsets`` the one place they come back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

WEIGHTINGS = ("binary", "log", "count")


class IdMap:
    """Dense index <-> external id token, for n distinct tokens.

    The tokens are stored back to back in one UTF-8 byte arena: token i is
    ``data[offsets[i]:offsets[i + 1]]``. A hash table over them answers
    lookups without building Python strings.
    """

    def __init__(self, data, offsets, hashes, table):
        self.data = data
        self.offsets = offsets
        self.hashes = hashes
        self.table = table

    @classmethod
    def from_tokens(cls, tokens):
        """An IdMap of distinct tokens (str), index i for ``tokens[i]``."""
        from .kernels.parse import token_keys

        encoded = [str(t).encode("utf-8") for t in tokens]
        for t in encoded:
            if not t or t.split() != [t] or b"\0" in t:
                raise ValueError(f"an id must be a non-empty token without blanks, got {t.decode()!r}")
        lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
        starts = np.zeros(len(encoded), np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        data = np.frombuffer(b"".join(encoded), np.uint8)
        hashes = np.empty(len(encoded), np.uint64)
        token_keys(data, starts, lengths, hashes)
        codes, ids = factorize(data, starts, lengths, hashes)
        if len(ids) != len(encoded):
            repeated = np.flatnonzero(codes != np.arange(len(encoded)))[0]
            raise ValueError(f"ids must be distinct, {encoded[repeated].decode()!r} repeats")
        return ids

    def __len__(self):
        return self.offsets.size - 1

    def __getitem__(self, i: int) -> str:
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes().decode("utf-8")

    def tolist(self) -> list[str]:
        """All tokens as a list of str, in index order."""
        text = self.data.tobytes().decode("utf-8")
        if text.isascii():
            return [text[a:b] for a, b in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist())]
        return [self[i] for i in range(len(self))]

    def lookup(self, tokens: IdMap | Sequence[str]) -> np.ndarray:
        """Indices (int64) of ``tokens`` (an IdMap or a sequence of str); -1 where unknown."""
        from .kernels.parse import lookup_tokens

        if not isinstance(tokens, IdMap):
            tokens = IdMap.from_tokens(tokens)
        out = np.empty(len(tokens), np.int64)
        lookup_tokens(
            self.table, self.data, self.offsets, self.hashes,
            tokens.data, tokens.offsets[:-1], np.diff(tokens.offsets), tokens.hashes, out,
        )
        return out

    def take(self, indices: np.ndarray) -> IdMap:
        """An IdMap of the tokens at ``indices`` (distinct), in that order."""
        indices = np.asarray(indices, np.int64)
        starts, lengths = self.offsets[indices], np.diff(self.offsets)[indices]
        return factorize(self.data, starts, lengths, self.hashes[indices])[1]

    def __repr__(self):
        return f"IdMap({len(self)} ids)"


def factorize(buf, starts, lengths, hashes):
    """Dense indices for the tokens ``buf[starts[t] : starts[t] + lengths[t]]``, in order of first appearance.

    Returns
    -------
    codes : ndarray, (n_tokens,), int32
        The index of every token.
    ids : IdMap
        The distinct tokens.
    """
    from .kernels.parse import factorize_tokens, rehash_table

    n = starts.size
    codes = np.empty(n, np.int32)
    first = np.empty(min(n, 1 << 16), np.int64)
    first_keys = np.empty(first.size, np.uint64)
    table = np.full(1 << 12, -1, np.int32)
    t, n_unique = factorize_tokens(buf, starts, lengths, hashes, codes, first, first_keys, table, 0, 0)
    while t < n:  # the table got half full or ``first`` full: grow and go on
        if n_unique == first.size:
            grown = min(n, 2 * first.size) - first.size
            first = np.concatenate([first, np.empty(grown, np.int64)])
            first_keys = np.concatenate([first_keys, np.empty(grown, np.uint64)])
        if 2 * n_unique >= table.size:
            table = np.full(2 * table.size, -1, np.int32)
            rehash_table(first_keys[:n_unique], table)
        t, n_unique = factorize_tokens(buf, starts, lengths, hashes, codes, first, first_keys, table, t, n_unique)
    first = first[:n_unique]
    token_lengths = lengths[first]
    offsets = np.zeros(n_unique + 1, np.int64)
    np.cumsum(token_lengths, out=offsets[1:])
    # Byte b of the arena comes from buf[starts[first[u]] + (b - offsets[u])].
    take = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts[first] - offsets[:-1], token_lengths)
    return codes, IdMap(buf[take], offsets, first_keys[:n_unique], table)


@dataclass(frozen=True)
class Interactions:
    """Play counts of a listening log.

    Attributes
    ----------
    user_items : scipy.sparse.csr_array, (n_users, n_songs), int64
        Play counts; each row's song indices sorted, no repeats.
    users, songs : IdMap
        External ids of the rows and of the columns.
    n_repeats : int
        Lines of the log that repeated an earlier (user, song) pair and were summed into it.
    """

    user_items: sp.csr_array
    users: IdMap
    songs: IdMap
    n_repeats: int = 0

    @property
    def n_plays(self) -> int:
        return self.user_items.nnz

    def most_played(self, n_songs: int) -> Interactions:
        """The plays of the ``n_songs`` songs with the most listeners (ties to the earlier song), songs in their order.

        The other songs' plays are left out; every user stays, with
        whatever plays remain (maybe none).
        """
        n = self.user_items.shape[1]
        if n_songs >= n:
            return self
        listeners = np.bincount(self.user_items.indices, minlength=n)
        keep = np.sort(np.argsort(-listeners, kind="stable")[:n_songs])
        user_items = sp.csr_array(self.user_items[:, keep])
        user_items.sort_indices()
        return Interactions(user_items, self.users, self.songs.take(keep), self.n_repeats)


def as_user_items(user_items, n_items=None):
    """Validated CSR view of a users x items matrix: sorted indices, no repeats, positive counts."""
    if not sp.issparse(user_items):
        raise TypeError(f"user_items must be a scipy.sparse users x items matrix, got {type(user_items).__name__}")
    m = sp.csr_array(user_items)
    if n_items is not None and m.shape[1] != n_items:
        raise ValueError(f"user_items has {m.shape[1]} items (columns), the model was fit on {n_items}")
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    if m.nnz and m.data.min() <= 0:
        raise ValueError("user_items must hold positive play counts")
    return m


def weigh(user_items, weighting):
    """float32 copy of a CSR play-count matrix with each count replaced by its weight.

    ``binary``: 1 per played song; ``log``: 1 + log(1 + count); ``count``: the count.
    """
    if weighting == "binary":
        data = np.ones(user_items.nnz, np.float32)
    elif weighting == "log":
        data = (1.0 + np.log1p(user_items.data)).astype(np.float32)
    elif weighting == "count":
        data = user_items.data.astype(np.float32)
    else:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    return sp.csr_array((data, user_items.indices, user_items.indptr), shape=user_items.shape)


def select_rows(user_items, rows):
    """CSR of the given rows of ``user_items``, in order; a row index of -1 gives an empty row."""
    rows = np.asarray(rows, np.int64)
    indptr = user_items.indptr
    known = rows >= 0
    starts = np.where(known, indptr[np.where(known, rows, 0)], 0)
    lengths = np.where(known, indptr[np.where(known, rows, 0) + 1] - starts, 0)
    out_indptr = np.zeros(rows.size + 1, np.int64)
    np.cumsum(lengths, out=out_indptr[1:])
    take = np.arange(out_indptr[-1], dtype=np.int64) + np.repeat(starts - out_indptr[:-1], lengths)
    out = sp.csr_array(
        (user_items.data[take], user_items.indices[take], out_indptr), shape=(rows.size, user_items.shape[1])
    )
    out.has_sorted_indices = True
    return out
