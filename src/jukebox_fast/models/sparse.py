"""A sparse full-rank EDLAE: each song regressed on its K strongest co-occurring songs, so memory grows as n K, not n^2.

The dense EDLAE's column j is the ridge regression of song j on every
other song: B[-j, j] = (G[-j, -j] + Lambda)^-1 G[-j, j], with G = X^T W X
and EDLAE's popularity-dependent penalty Lambda. Here the regression of
song j uses only S_j, the K songs that co-occur with it most (the largest
entries of row j of G, off the diagonal):

    B[S_j, j] = (G[S_j, S_j] + Lambda[S_j])^-1 G[S_j, j],

a K x K solve per song. G is never held whole: each row is summed where
it is not 0 (``strongest_links``), gives its song's S_j (ranked by
G[j, t] / G[t, t]**a, ``link_exponent``) and the values G[j, S_j], and is
dropped; G[S_j, S_j] is read from the union of those kept entries (an
entry G[s, t] kept by neither s nor t is taken as 0: a weak
co-occurrence). The refinements of the dense EDLAE that carry over are
kept: the user weights in G, the penalty, the popularity debiasing of
B's columns, B's own kNN, the popularity prior and the debiasing by
activity.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import _parallel as parallel
from ..data import WEIGHTINGS, weigh
from ..errors import NotPositiveDefiniteError
from ..memory import MemoryPlan
from ..runtime import Progress, logger
from .base import Recommender
from .edlae import activity_factors, check_edlae_params, edlae_penalty, prior_offsets, weigh_users
from .itemitem import Weighting, check_choice, check_number, score_block_rows, score_by_blocks, select_best

# Songs per thread between two progress reports of the co-occurrences.
_LINK_CHUNK = 4096
# Entries of the stack of K x K float64 systems each thread solves at a time (at most 16 MiB).
_SOLVE_ENTRIES = 1 << 21
# Songs per block of the fit on a cluster (``fit(..., executor=...)``).
BLOCK_SONGS = 1024


class SparseEDLAE(Recommender):
    """EDLAE restricted to each song's K strongest co-occurring songs: n K weights instead of n^2.

    Parameters
    ----------
    links : int
        K, the songs each song is regressed on (>= 1): B holds n K weights.
    link_exponent : float
        a in [0, 1]: song j's links are the songs t with the largest
        G[j, t] / G[t, t]**a (0: the most co-occurring; above 0 a popular
        song needs more co-occurrences to be a link, which keeps popular
        songs out of most songs' links and scoring fast).
    regularization : float
        lambda, as a multiple of the mean diagonal of G (> 0).
    dropout : float
        The emphasized-denoising dropout rate p, in [0, 1).
    penalty_exponent : float
        e >= 0: the denoising penalty of a song grows as (its weighted
        plays)**e.
    user_exponent : float
        A user with n songs weighs n**-user_exponent in G.
    popularity_exponent : float
        beta >= 0: scores are divided by (1 + listeners of the song)**beta.
    neighbour_weight : float
        w >= 0: each song's strongest links in B (its row's ``neighbours``
        largest entries, normalised to sum to 1) are added back at w times
        B's mean absolute entry (0: none), as in EDLAE.
    neighbours : int
        The links kept per song for ``neighbour_weight`` (>= 1).
    prior_weight : float
        t >= 0: every score gets t times the mean user's residual score added.
    activity_exponent : float
        d: a user with n songs has scores divided by (1 + listeners of the
        song)**(d log(n / n_0)), n_0 the mean.
    weighting : {"binary", "log", "count"}
        How a play count becomes an entry of X: 1 (binary), 1 + log(1 + count) (log), or the count.
    num_threads : int
        Threads for the kernels and BLAS (0: every core).
    """

    summary = "EDLAE on each song's K strongest co-occurring songs: memory n K, for catalogues too large for n x n"
    default_grid = {"links": [100, 200, 400], "link_exponent": [0.0, 0.5]}
    auto_search = True
    relative_regularization = True

    def __init__(
        self,
        links: int = 200,
        link_exponent: float = 0.5,
        regularization: float = 4.0,
        dropout: float = 0.85,
        penalty_exponent: float = 0.75,
        user_exponent: float = 0.4,
        popularity_exponent: float = 0.2,
        neighbour_weight: float = 0.03,
        neighbours: int = 10,
        prior_weight: float = 1.0,
        activity_exponent: float = 0.05,
        weighting: Weighting = "binary",
        num_threads: int = 0,
    ) -> None:
        self.links = links
        self.link_exponent = link_exponent
        self.regularization = regularization
        self.dropout = dropout
        self.penalty_exponent = penalty_exponent
        self.user_exponent = user_exponent
        self.popularity_exponent = popularity_exponent
        self.neighbour_weight = neighbour_weight
        self.neighbours = neighbours
        self.prior_weight = prior_weight
        self.activity_exponent = activity_exponent
        self.weighting = weighting
        self.num_threads = num_threads

    def _check_params(self):
        check_choice("weighting", self.weighting, WEIGHTINGS)
        check_edlae_params(self)
        check_number("links", self.links, "a positive integer", lambda v: v >= 1, integer=True)
        check_number("link_exponent", self.link_exponent, "a number in [0, 1]", lambda v: 0 <= v <= 1)

    # --- fitting -------------------------------------------------------------------------------

    def _fit(self, user_items, blocks=None):
        n = user_items.shape[1]
        K = int(min(self.links, max(n - 1, 1)))
        X = weigh(user_items, self.weighting)
        weighted = weigh_users(X, self.user_exponent) if self.user_exponent else X
        columns, values, diagonal = strongest_links(weighted, K, float(self.link_exponent), blocks)
        penalty = edlae_penalty(diagonal, self.regularization, self.dropout, self.penalty_exponent)
        popularity = np.bincount(X.indices, minlength=n).astype(np.float64)
        column_scale = (1.0 + popularity) ** -self.popularity_exponent
        weights = solve_columns(columns, values, diagonal + penalty, column_scale, blocks)
        add_sparse_neighbours(weights, float(self.neighbour_weight), int(self.neighbours))
        counts = np.diff(X.indptr)
        self.item_popularity_ = popularity.astype(np.float32)
        self.weight_indptr_, self.weight_indices_, self.weight_data_ = weights.indptr, weights.indices, weights.data
        self.item_offsets_ = prior_offsets(X, self.user_exponent, weights, column_scale, self.prior_weight)
        self.reference_plays_ = np.array([counts[counts > 0].mean() if X.nnz else 1.0], np.float64)

    def _fit_blocks(self, user_items, blocks):
        self._fit(user_items, blocks)

    def is_fitted(self):
        return hasattr(self, "weight_data_")

    @property
    def item_weights(self) -> sp.csr_array:
        """B as a (n, n) CSR array: row s holds what playing song s adds to the other songs' scores."""
        n = self.n_items
        return sp.csr_array((self.weight_data_, self.weight_indices_, self.weight_indptr_), shape=(n, n))

    # --- scoring -------------------------------------------------------------------------------

    def _recommend(self, user_items, k, filter_seen, candidates):
        from ..kernels.sparse import multiply_sparse_sparse

        X = weigh(user_items, self.weighting)
        adjustment = None
        if self.prior_weight or self.activity_exponent:
            factors, factor_rows = activity_factors(
                np.diff(X.indptr), self.reference_plays_[0], self.item_popularity_, self.activity_exponent
            )
            adjustment = (self.item_offsets_, factors, factor_rows)
        b_indptr, b_indices, b_data = self.weight_indptr_, self.weight_indices_, self.weight_data_
        return score_by_blocks(
            X, lambda indptr, cols, data, out: multiply_sparse_sparse(indptr, cols, data, b_indptr, b_indices, b_data, out),
            adjustment, self.item_popularity_, k, filter_seen, candidates,
        )

    def _similar_items(self, items, k):
        rows = np.ascontiguousarray(self.item_weights[items].toarray(), np.float32)
        indices = np.empty((items.size, k), np.int32)
        scores = np.empty((items.size, k), np.float32)
        itself = np.arange(items.size + 1, dtype=np.int64)
        select_best(rows, itself, items.astype(np.int32), True, None, indices, scores)
        return indices, scores

    def memory_plan(self, n_users, n_items, nnz, *, answered=None, k=100):
        n = n_items
        K = min(self.links, max(n - 1, 1))
        n_answered = n_users if answered is None else answered[0]
        plan = MemoryPlan(n)
        plan.fit["the working copies of the plays"] = 44 * nnz + 16 * (n_users + n)
        plan.fit["the threads' row of G and its scratch"] = 24 * n * parallel.get_num_threads()
        plan.fit["the strongest links, sorted copies, the solutions"] = 40 * n * K
        threads = parallel.get_num_threads()
        plan.fit["the threads' stacks of K x K systems"] = 8 * threads * solve_block(K, -(-n // threads)) * K * K
        plan.fit["B, sparse"] = 12 * n * K
        plan.recommend["B, sparse"] = 12 * n * K
        plan.recommend["score blocks"] = 4 * parallel.get_num_threads() * score_block_rows(n) * n
        plan.recommend["the plays of the users answered"] = 16 * nnz
        plan.recommend["the (users, k) indices and scores"] = 8 * n_answered * min(k, n)
        return plan


def strongest_links(X, K, exponent=0.0, blocks=None):
    """Each song's K strongest co-occurring songs, without holding X^T X: ``(columns, values, diagonal)``.

    ``columns`` (n, K) int32 and ``values`` (n, K) float32: row j holds
    the songs t != j with the K largest G[j, t] (ties to the lower index;
    K <= n - 1, so every row is full: songs that never co-occur with j
    fill it, at 0) and those entries; ``diagonal`` (n,) float64 is diag G.
    Each row of G = X^T X is summed where it is not 0 and dropped once its
    links are kept (``kernels.sparse.select_strongest_links``), each
    thread a stride of the songs, or with ``blocks`` (``cluster.Blocks``)
    each task a block of songs. With an ``exponent`` a, the links are the
    largest G[j, t] / G[t, t]**a (a popular song t needs more
    co-occurrences to be one of j's links); ``values`` are still G's.
    """
    n = X.shape[1]
    csc = sp.csc_array(X)
    plays = (csc.indptr.astype(np.int64), csc.indices.astype(np.int32), csc.data,
             X.indptr.astype(np.int64), X.indices.astype(np.int32), X.data)
    scale = np.ones(n, np.float32)
    if exponent:
        own = np.bincount(X.indices, X.data.astype(np.float64) ** 2, minlength=n)  # diag G
        scale = np.where(own > 0, np.maximum(own, 1e-30) ** -exponent, 1.0).astype(np.float32)
    if blocks is not None:
        parts = blocks.map(
            links_of_songs, _song_blocks(n), blocks.share(plays), K, scale,
            describe=lambda done, total: f"co-occurrences: {done:,} of {total:,} blocks of songs",
        )
        columns, values, diagonal = (np.concatenate(part) for part in zip(*parts))
        return columns, values, diagonal.astype(np.float64)
    columns = np.empty((n, K), np.int32)
    values = np.empty((n, K), np.float32)
    diagonal = np.empty(n, np.float32)
    step = parallel.get_num_threads()
    progress = Progress(n, lambda done, total: f"co-occurrences of {done:,} of {total:,} songs")

    def select(first):
        # Chunks of the thread's stride, so that progress can be told.
        for lo in range(0, n, _LINK_CHUNK * step):
            hi = min(n, lo + _LINK_CHUNK * step)
            _select(plays, scale, lo + first, hi, step, 0, columns, values, diagonal)
            progress.advance(len(range(lo + first, hi, step)))

    parallel.run_tasks(select, [(first,) for first in range(step)])
    progress.finish()
    return columns, values, diagonal.astype(np.float64)


def _song_blocks(n):
    """The (lo, hi) blocks of about ``BLOCK_SONGS`` songs of the fit on a cluster."""
    return parallel.split(n, -(-n // BLOCK_SONGS))


def links_of_songs(plays, K, scale, lo, hi):
    """``strongest_links`` of the songs lo..hi-1 alone, on one thread: their rows of (columns, values, diagonal)."""
    columns = np.empty((hi - lo, K), np.int32)
    values = np.empty((hi - lo, K), np.float32)
    diagonal = np.empty(hi - lo, np.float32)
    _select(plays, scale, lo, hi, 1, lo, columns, values, diagonal)
    return columns, values, diagonal


def _select(plays, scale, first, stop, step, offset, columns, values, diagonal):
    from ..kernels.sparse import select_strongest_links

    n = scale.size
    acc, ranked = np.zeros(n, np.float32), np.empty(n, np.float32)
    touched, others = np.empty(n, np.int64), np.empty(n, np.int64)
    select_strongest_links(*plays, scale, first, stop, step, offset, acc, touched, others, ranked, columns, values, diagonal)


def add_sparse_neighbours(weights, weight, neighbours):
    """EDLAE's kNN addition on a sparse B (CSR, in place): each row's ``neighbours`` largest entries, normalised, added back.

    As ``edlae.add_neighbours``: negative entries count as 0, a row
    without a positive entry is left alone, and the addition is scaled so
    that its mean entry is ``weight`` times B's mean |entry| over all
    n x n entries. Ties go to the lower column.
    """
    n = weights.shape[0]
    if not weight or weights.nnz == 0:
        return weights
    rows = np.repeat(np.arange(n), np.diff(weights.indptr))
    order = np.lexsort((weights.indices, -weights.data, rows))  # by row, largest first, then lower column
    rank = np.arange(order.size) - weights.indptr[rows[order]]
    top = order[rank < neighbours]
    kept = np.maximum(weights.data[top].astype(np.float64), 0)
    sums = np.bincount(rows[top], kept, minlength=n)
    used = int(np.count_nonzero(sums > 0))
    if not used:
        return weights
    mean_abs = np.abs(weights.data).sum(dtype=np.float64) / (float(n) * n)
    scale = weight * mean_abs * float(n) * n / used
    share = np.divide(kept, sums[rows[top]], out=np.zeros_like(kept), where=sums[rows[top]] > 0)
    weights.data[top] += (scale * share).astype(weights.data.dtype)
    return weights


def solve_block(K, songs):
    """Songs a thread gathers and solves at a time, out of its ``songs``: a stack of at most ``_SOLVE_ENTRIES`` entries."""
    return max(1, min(songs, _SOLVE_ENTRIES // (K * K)))


def solve_columns(columns, values, diagonal, column_scale, blocks=None):
    """B as a (n, n) CSR array by rows: B[S_j, j] = s_j (G[S_j, S_j] + Lambda[S_j])^-1 G[S_j, j] for every song j.

    ``columns``/``values`` are the strongest links (``strongest_links``),
    ``diagonal`` is diag(G) + Lambda. G[S_j, S_j] holds the entries that
    either of their two songs kept among its links, 0 elsewhere. Each
    thread gathers and solves (LAPACK's posv, one BLAS thread) its own
    songs, or with ``blocks`` (``cluster.Blocks``) each task a block of
    songs.
    """
    from threadpoolctl import threadpool_limits

    n, K = columns.shape
    if blocks is not None:
        links = blocks.share((columns, values, diagonal, column_scale))
        parts = blocks.map(
            solve_songs, _song_blocks(n), links,
            describe=lambda done, total: f"solves: {done:,} of {total:,} blocks of songs",
        )
        out_values = np.concatenate([part for part, _ in parts])
        indefinite = sum(count for _, count in parts)
    else:
        out_values = np.empty((n, K), np.float64)
        progress = Progress(n, lambda done, total: f"solved {done:,} of {total:,} songs")

        def solve(lo, hi):
            return _solve(columns, values, diagonal, column_scale, lo, hi, out_values[lo:hi], progress)

        with threadpool_limits(limits=1, user_api="blas"):
            indefinite = sum(parallel.run_tasks(solve, parallel.split(n, parallel.get_num_threads())))
        progress.finish()
    if indefinite:
        logger.debug(f"sparse model: {indefinite:,} of {n:,} songs' systems were indefinite (dropped links); solved by LU")
    # Column j's weights sit in rows S_j: transpose them into rows of B (what song s adds to song j).
    song_of = np.repeat(np.arange(n, dtype=np.int32), K)
    B = sp.coo_array((out_values.reshape(-1), (columns.reshape(-1), song_of)), shape=(n, n)).tocsr()
    B.eliminate_zeros()
    B.data = B.data.astype(np.float32)
    B.indptr, B.indices = B.indptr.astype(np.int64), B.indices.astype(np.int32)
    return B


def solve_songs(links, lo, hi):
    """``solve_columns``' solutions for the songs lo..hi-1 alone: ``((hi - lo, K) float64, systems solved by LU)``."""
    columns, values, diagonal, column_scale = links
    out = np.empty((hi - lo, columns.shape[1]), np.float64)
    return out, _solve(columns, values, diagonal, column_scale, lo, hi, out)


def _solve(columns, values, diagonal, column_scale, lo, hi, out, progress=None):
    """Solve the systems of songs lo..hi-1 into ``out`` (their rows); returns how many were indefinite (solved by LU)."""
    from scipy.linalg import lapack

    from ..kernels.sparse import gather_links

    n, K = columns.shape
    block = solve_block(K, hi - lo)
    position = np.full(n, -1, np.int32)
    A = np.zeros((block, K, K))
    indefinite = 0
    for a in range(lo, hi, block):
        b = min(hi, a + block)
        systems = A[: b - a]
        systems[...] = 0
        gather_links(columns, values, columns[a:b], position, systems, 0, b - a)
        systems.reshape(b - a, K * K)[:, :: K + 1] = diagonal[columns[a:b]]
        for r in range(b - a):
            system = systems[r]
            rhs = values[a + r].astype(np.float64)
            _, solution, info = lapack.dposv(system, rhs, lower=1)
            if info > 0:  # the links' dropped entries made it indefinite: LU with pivoting (posv left it intact)
                indefinite += 1
                _, _, solution, info = lapack.dgesv(system, rhs)
                if info != 0:
                    raise NotPositiveDefiniteError(
                        f"the regression of song {a + r} on its links is singular (LAPACK info {info}); "
                        "raise the regularization"
                    )
            out[a - lo + r] = solution * column_scale[a + r]
        if progress is not None:
            progress.advance(b - a)
    return indefinite
