"""Scores from similar users, blended into an item-item model's scores (EDLAE's ``user_neighbour_weight``).

On small, sparse logs a user's few plays say little through B alone, and
the users who share most of them say more: each row's ``neighbours`` most
similar training users (the cosine of their sets of songs) vote for
their songs, each vote weighing its similarity, and those votes are
added to the row's scores at ``weight`` times the spread (standard
deviation) of the row's own scores. The search (``jukebox_fast.auto``)
turns this on only where held-out plays show that it helps.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def pool_arrays(user_items):
    """``(indptr, indices)``: the training users' sets of songs (int64, int32 copies), the learnt state the votes need.

    ``user_items`` is CSR with sorted rows and no repeats (``data.as_user_items``).
    """
    return user_items.indptr.astype(np.int64), user_items.indices.astype(np.int32)


class UserNeighbours:
    """The pool of training users, ready to score blocks of rows (one per ``recommend`` call)."""

    def __init__(self, indptr, indices, n_items, neighbours, weight):
        self.indptr, self.indices = indptr, indices
        self.neighbours, self.weight = int(neighbours), float(weight)
        self.n_pool = n_pool = indptr.shape[0] - 1
        # SciPy's conversion is a counting sort: each song's listeners come out in increasing order.
        by_song = sp.csr_array((np.ones(indices.size, np.int8), indices, indptr), shape=(n_pool, n_items)).tocsc()
        self.listeners_indptr = by_song.indptr.astype(np.int64, copy=False)
        self.listeners = by_song.indices.astype(np.int32, copy=False)

    @staticmethod
    def listener_bytes(n_items, nnz):
        """Bytes of the pool by songs (made for each ``recommend``) while it is made: 0/1 entries and listeners, twice."""
        return 10 * nnz + 16 * (n_items + 1)

    @staticmethod
    def scratch_bytes(n_pool, n_items, block_rows):
        """Bytes of one thread's ``scratch`` for a pool of ``n_pool`` users: 21 a user, and a block of votes."""
        return 21 * n_pool + 4 * block_rows * n_items

    def scratch(self, block_rows):
        """One thread's scratch for ``add``."""
        n_pool, n_items = self.n_pool, self.listeners_indptr.shape[0] - 1
        similarity = np.empty(n_pool, np.float32)
        return (
            np.zeros(n_pool, np.int32), np.empty(n_pool, np.int32), similarity, similarity.view(np.uint32),
            np.empty(n_pool, np.uint64), np.empty((block_rows, n_items), np.float32),
        )

    def add(self, indptr, cols, scores, scratch):
        """Add the votes for the rows ``indptr``/``cols`` (CSR, sorted) to their ``scores``, in place."""
        from ..kernels.users import user_neighbour_scores

        overlap, touched, similarity, similarity_bits, keys, block = scratch
        votes = block[: scores.shape[0]]
        user_neighbour_scores(
            indptr, cols, self.indptr, self.indices, self.listeners_indptr, self.listeners, self.neighbours, votes,
            overlap, touched, similarity, similarity_bits, keys,
        )
        add_votes(scores, votes, self.weight)


def add_votes(scores, votes, weight):
    """``scores[r] += weight * std(scores[r]) / std(votes[r]) * votes[r]`` for every row with ``std(votes[r]) > 0``.

    Scaled so, the votes weigh ``weight`` times the row's own spread,
    whatever the two scales are; the standard deviations are over the
    whole row, in float64. NumPy, not a kernel: a kernel would add half
    a second to a first run's compile, and this pass is not where the
    time goes.
    """
    spread, votes_spread = scores.std(axis=1, dtype=np.float64), votes.std(axis=1, dtype=np.float64)
    factors = np.divide(spread, votes_spread, out=np.zeros_like(spread), where=votes_spread > 0) * weight
    scores += factors.astype(np.float32)[:, None] * votes
