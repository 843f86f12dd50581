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
        """Token i; a negative i counts from the end, as for any sequence."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"id index {i} out of range for {n} ids")
        i = int(i) % n
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes().decode("utf-8")

    def tolist(self) -> list[str]:
        """All tokens as a list of str, in index order."""
        text = self.data.tobytes().decode("utf-8")
        if text.isascii():
            return [text[a:b] for a, b in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist())]
        return [self[i] for i in range(len(self))]

    def lookup(self, tokens: IdMap | Sequence) -> np.ndarray:
        """Indices (int64) of ``tokens``, an IdMap or a column of ids (str, or values read as ``str(value)``).

        The column may repeat ids; an id that is not here (or could not
        be, such as one with blanks) gives -1.
        """
        from .kernels.parse import lookup_tokens, token_keys

        if isinstance(tokens, IdMap):
            data, starts, lengths, hashes = tokens.data, tokens.offsets[:-1], np.diff(tokens.offsets), tokens.hashes
        else:
            encoded = [str(t).encode("utf-8") for t in tokens]
            lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
            starts = np.zeros(len(encoded), np.int64)
            np.cumsum(lengths[:-1], out=starts[1:])
            data = np.frombuffer(b"".join(encoded), np.uint8).copy()
            hashes = np.empty(len(encoded), np.uint64)
            token_keys(data, starts, lengths, hashes)
        out = np.empty(len(lengths), np.int64)
        lookup_tokens(self.table, self.data, self.offsets, self.hashes, data, starts, lengths, hashes, out)
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

    A token whose key is exact (a number of up to 17 digits, see
    ``kernels.parse.token_key``) is known by its key alone: its start and
    length are never read.

    Returns
    -------
    codes : ndarray, (n_tokens,), int32
        The index of every token.
    ids : IdMap
        The distinct tokens.
    """
    from .kernels.parse import AHEAD, factorize_tokens, largest_plain_number, rehash_table, token_length

    n = starts.size
    codes = np.empty(n, np.int32)
    first_keys = np.empty(min(n, 1 << 16), np.uint64)
    offsets = np.zeros(first_keys.size + 1, np.int64)
    arena = np.empty(1 << 20, np.uint8)
    table = np.full(1 << 12, -1, np.int32)
    # Ids that are numbers up to about the number of tokens index an array directly (4 bytes a token at most).
    largest = largest_plain_number(hashes)
    direct = np.full(largest + 1 if largest < max(n, 1 << 16) else 0, -1, np.int32)
    ahead = np.empty(AHEAD, np.int64)
    t, n_unique = 0, 0
    while True:
        t, n_unique, _ = factorize_tokens(
            buf, starts, lengths, hashes, codes, first_keys, offsets, arena, table, direct, t, n_unique, ahead
        )
        if t == n:
            break
        # The table got half full, ``first_keys`` full or the arena short of room for token t: grow and go on.
        if n_unique < first_keys.size and 2 * n_unique < table.size:
            length = token_length(lengths, t, hashes[t])
            arena = np.concatenate([arena, np.empty(max(arena.size, length), np.uint8)])
        if n_unique == first_keys.size:
            grown = min(n, 2 * first_keys.size) - first_keys.size
            first_keys = np.concatenate([first_keys, np.empty(grown, np.uint64)])
            offsets = np.concatenate([offsets, np.zeros(grown, np.int64)])
        if 2 * n_unique >= table.size:
            table = np.full(2 * table.size, -1, np.int32)
            rehash_table(first_keys[:n_unique], table)
    if direct.size:  # the same table as without ``direct``: same size, same order of insertion
        table.fill(-1)
        rehash_table(first_keys[:n_unique], table)
    offsets = offsets[: n_unique + 1]
    return codes, IdMap(arena[: offsets[-1]].copy(), offsets, first_keys[:n_unique], table)


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

    @classmethod
    def from_arrays(cls, users: Sequence, items: Sequence, counts: Sequence | None = None) -> Interactions:
        """Plays from three columns of equal length: user ids, item ids and counts (default: 1 each).

        Ids may be any values; they are read as ``str(value)``, must be
        non-empty and without blanks (they are written to text files), and
        get indices in order of first appearance, as ``read_listens``
        gives them. Counts must be whole numbers from 1 to 2**63-1;
        repeated (user, item) pairs are summed, with a JukeboxWarning.
        """
        users, items = np.asarray(users), np.asarray(items)
        if users.ndim != 1 or items.shape != users.shape:
            raise ValueError(f"users and items must be columns of one length, got shapes {users.shape} and {items.shape}")
        counts = np.ones(users.size, np.int64) if counts is None else _whole_counts(np.asarray(counts), users.size)
        user_codes, user_ids = _factorize_column(users, "user")
        item_codes, item_ids = _factorize_column(items, "item")
        coo = sp.coo_array((counts, (user_codes, item_codes)), shape=(len(user_ids), len(item_ids)))
        user_items = sp.csr_array(coo)
        user_items.sum_duplicates()
        if user_items.nnz and user_items.data.min() <= 0:  # int64 sums that wrapped around
            raise ValueError("the counts of a repeated (user, item) pair add up to more than 2**63-1")
        n_repeats = users.size - user_items.nnz
        if n_repeats:
            import warnings

            from .errors import JukeboxWarning

            warnings.warn(
                f"{n_repeats} rows repeat an earlier (user, item) pair; their counts were added up", JukeboxWarning, stacklevel=2
            )
        user_items.indptr = user_items.indptr.astype(np.int64)
        user_items.indices = user_items.indices.astype(np.int32)
        return cls(user_items, user_ids, item_ids, int(n_repeats))

    @classmethod
    def from_pandas(cls, frame, user: str = "user", item: str = "item", count: str | None = "count") -> Interactions:
        """Plays from a DataFrame's columns ``user``, ``item`` and ``count`` (None: 1 a row); see ``from_arrays``."""
        for name in (user, item) + ((count,) if count is not None else ()):
            if name not in frame.columns:
                raise ValueError(f"the DataFrame has no column {name!r}; it has {', '.join(map(str, frame.columns))}")
        counts = None if count is None else frame[count].to_numpy()
        return cls.from_arrays(frame[user].to_numpy(), frame[item].to_numpy(), counts)

    def in_songs_of(self, songs: IdMap) -> tuple[Interactions, int]:
        """These users' plays with their columns in ``songs``' order (a model's songs): ``(interactions, plays left out)``.

        Plays of songs that ``songs`` does not have are left out and counted.
        """
        columns = songs.lookup(self.songs)
        coo = sp.coo_array(self.user_items)
        keep = columns[coo.col] >= 0
        moved = sp.csr_array(
            (coo.data[keep], (coo.row[keep], columns[coo.col[keep]])), shape=(self.user_items.shape[0], len(songs))
        )
        moved.sort_indices()
        moved.indptr, moved.indices = moved.indptr.astype(np.int64), moved.indices.astype(np.int32)
        return Interactions(moved, self.users, songs, self.n_repeats), int((~keep).sum())

    def rows_of(self, plays: Sequence) -> tuple[sp.csr_array, int]:
        """Rows of play counts, in this log's songs, for ``plays``: one ``{song_id: count}`` mapping per row.

        Returns the (len(plays), n_songs) CSR array and the number of plays
        left out because their song is not one of this log's.
        """
        indptr = np.zeros(len(plays) + 1, np.int64)
        songs, counts = [], []
        for r, row in enumerate(plays):
            songs.extend(row.keys())
            counts.extend(row.values())
            indptr[r + 1] = len(songs)
        columns = self.songs.lookup(songs) if songs else np.empty(0, np.int64)
        counts = _whole_counts(np.asarray(counts) if counts else np.empty(0, np.int64), len(songs))
        row_of = np.repeat(np.arange(len(plays)), np.diff(indptr))
        known = columns >= 0
        rows = sp.csr_array(
            (counts[known], (row_of[known], columns[known])), shape=(len(plays), len(self.songs))
        )
        rows.sum_duplicates()
        return rows, int((~known).sum())

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


def _whole_counts(counts, n):
    """``counts`` as int64, refused with ValueError unless they are n whole numbers from 1 to 2**63-1."""
    if counts.shape != (n,):
        raise ValueError(f"counts must be a column of {n} values, got shape {counts.shape}")
    if counts.dtype.kind not in "iuf" or counts.dtype == np.bool_:
        raise ValueError(f"counts must be numbers, got {counts.dtype}")
    bad = ~((counts >= 1) & (counts <= 2**63 - 1))
    if counts.dtype.kind == "f":
        bad |= ~np.isfinite(counts) | (counts != np.floor(counts))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"counts must be whole numbers from 1 to 2**63-1, got {counts[first]!r} at row {first}")
    return counts.astype(np.int64)


def _factorize_column(column, what):
    """(codes int32, IdMap) of a column of ids, in order of first appearance."""
    tokens = column.astype(str) if column.dtype.kind != "U" else column
    distinct, first, codes = np.unique(tokens, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    try:
        ids = IdMap.from_tokens(distinct[order].tolist())
    except ValueError as e:
        raise ValueError(f"{what} ids: {e}") from None
    return rank[codes.reshape(-1)].astype(np.int32), ids


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
    if m.nnz and not (np.isfinite(m.data).all() and m.data.min() > 0):
        raise ValueError("user_items must hold positive, finite play counts")
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
