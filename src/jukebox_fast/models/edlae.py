"""EDLAE (Steck 2020) with user weighting, popularity debiasing, B's own kNN, a popularity prior and weighted targets.

Seven changes to EASE. The first three live inside its one float32
Cholesky inverse; the kNN is added to B in place after it (0.1 s at
n = 8,262, no second n x n matrix); the prior and the debiasing by
activity cost one vector-matrix product at fit time and one pass over the
scores; weighted targets (off by default) add a sparse x dense product:

- emphasized denoising: dropping each input play with probability p adds
  ``p / (1 - p) * G_jj`` to item j's L2 penalty, on top of lambda, so popular
  songs (large G_jj) are penalised in proportion to their evidence; with a
  ``penalty_exponent`` e below 1 that term grows as ``G_jj ** e`` instead
  (``p / (1 - p) * m * (G_jj / m) ** e``, m the mean of diag G), so the
  popular songs' penalty grows slower than their evidence;
- user weighting: each user's row enters the gram matrix with weight
  ``n_u ** -user_exponent`` (n_u the user's number of songs), so heavy
  listeners' long, diverse histories do not dominate the co-occurrences;
- popularity debiasing: column j of B is multiplied by
  ``(1 + pop_j) ** -popularity_exponent``;
- B's own kNN (``neighbour_weight`` w, ``neighbours`` K): each row of B
  gets its K largest entries, normalised to sum to 1, added back at w
  times B's mean absolute entry (see ``add_neighbours``): the ridge and
  the denoising spread a song's weight over many weak links, and this
  puts some of it back on its few strongest ones;
- a popularity prior (``prior_weight`` t): every score gets
  ``t * c_j`` added, c = mean_w (I - B) the residual of the mean user
  (mean_w_j the share of the weighted users who played song j, times the
  debiasing scale), so a user with few plays, whose X_u B is small and
  noisy, leans on what everyone plays;
- debiasing by activity (``activity_exponent`` d): user u's scores are
  also multiplied by ``(1 + pop_j) ** -(d * log(n_u / n_0))`` (n_0 the
  mean number of songs per user of the training log): a heavy listener's
  popular songs are discounted more, a light listener's less;
- weighted targets (``target_weight`` a > 0): the model still reads the
  plays as X, but learns to reproduce ``X + a * log(count)`` (a song
  played often is a stronger target than one played once). The zero
  diagonal then comes from a Lagrangian (Steck 2019, section 3) and costs
  the product P X^T W L (L the log counts, sparse) and a second n x n
  matrix on top of the inverse.

lambda is given relative to the mean diagonal of the (weighted) gram
matrix, the kNN's weight to B's mean entry, and n_0 is the log's mean
number of songs per user, so the same setting fits logs of any size.

How the defaults were chosen, their accuracy and everything tried: docs/models.md.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import _parallel as parallel
from .ease import ensure_memory_for_solve, finish_ease, gram_matrix, invert_gram, invert_on_device
from .itemitem import DEVICES, Device, ItemItemRecommender, Weighting, check_choice, check_number, score_block_rows
from .users import UserNeighbours, pool_arrays

# Rows per block when a step goes over an n x n matrix a band at a time.
_ROWS = 256
# Columns of P per pass of the sparse product: n x 512 float32 is 16 MB at n = 8,262.
_BAND = 512


def weigh_users(X, exponent):
    """Copy of CSR ``X`` with row u scaled by ``sqrt(n_u ** -exponent)``, so that ``X^T X`` weighs user u by ``n_u ** -exponent``."""
    out = X.copy()
    counts = np.diff(X.indptr)
    scale = np.maximum(counts, 1).astype(np.float64) ** (-0.5 * exponent)
    out.data = (X.data * np.repeat(scale, counts)).astype(np.float32)
    return out


def edlae_penalty(gram_diagonal, regularization, dropout, exponent=1.0):
    """Per-item diagonal added to G, float64: ``m * (regularization + p / (1 - p) * (diag G / m) ** exponent)``.

    m is the mean of diag G; with ``exponent`` 1 this is EDLAE's
    ``regularization * m + p / (1 - p) * diag G``.
    """
    g = np.asarray(gram_diagonal, np.float64)
    mean = max(g.mean() if g.size else 0.0, np.finfo(np.float32).tiny)
    return mean * (regularization + dropout / (1.0 - dropout) * (g / mean) ** exponent)


def multiply_symmetric_sparse(symmetric, sparse):
    """``symmetric @ sparse`` as a new dense float32 (n, n) array, for a symmetric float32 (n, n) array.

    Computed as (sparse^T symmetric)^T, a band of 512 columns of
    ``symmetric`` at a time (1.2x faster than whole rows at n = 8,262). At
    the 2-3% density of X^T W L this takes half a dense matmul's time
    (2.9 s against 5.7 s) and never densifies ``sparse``.
    """
    from ..kernels.linalg import multiply_sparse_dense

    n = symmetric.shape[0]
    rows = sp.csr_array(sparse.T)
    rows.sort_indices()
    indptr, indices = rows.indptr.astype(np.int64), rows.indices.astype(np.int32, copy=False)
    data = rows.data.astype(np.float32, copy=False)
    shares = parallel.split_by_work(indptr, parallel.get_num_threads())
    product = np.empty((n, n), np.float32)

    def multiply_rows(band, out, lo, hi):
        segment = slice(indptr[lo], indptr[hi])
        multiply_sparse_dense(indptr[lo : hi + 1] - indptr[lo], indices[segment], data[segment], band, out[lo:hi])

    for lo in range(0, n, _BAND):
        hi = min(n, lo + _BAND)
        band = np.ascontiguousarray(symmetric[:, lo:hi])
        out = np.empty((n, hi - lo), np.float32)
        parallel.run_tasks(multiply_rows, [(band, out, a, b) for a, b in shares])
        product[lo:hi] = out.T
    return product


def mean_absolute(matrix):
    """Mean of ``|matrix|`` (float64), a band of rows at a time on each thread (no n x n temporary).

    The bands' sums are added in a fixed order, so the result does not depend on the thread count.
    """
    bands = range(0, matrix.shape[0], _ROWS)
    totals = np.zeros(len(bands))

    def add_bands(lo, hi):
        for b in range(lo, hi):
            totals[b] = np.abs(matrix[bands[b] : bands[b] + _ROWS]).sum(dtype=np.float64)

    parallel.run_tasks(add_bands, parallel.split(len(bands), parallel.get_num_threads()))
    return float(totals.sum()) / max(matrix.size, 1)


def add_neighbours(weights, weight, neighbours, mean_abs=None):
    """Strengthen each song's strongest links: add B's own top entries, normalised, to B in place.

    For each row i of B: its ``neighbours`` largest entries off the
    diagonal, negative ones counted as 0, divided by their sum, form row i
    of a kNN matrix W (a row without a positive entry stays 0). B becomes
    ``B + weight * mean|B| * n^2 / (rows of W that are not 0) * W``: W's
    mean entry is then ``weight`` times B's, whatever the log's size. The
    rows are selected first (n x K entries, 0.3 MB at n = 8,262 and K = 10),
    then added, each thread a range of rows.

    Parameters
    ----------
    weights : ndarray, (n, n), float32, C-contiguous
        B, with a zero diagonal; the kNN matrix is added to it.
    weight : float
        The blend weight, relative to B's mean absolute entry.
    neighbours : int
        Entries kept in each row of W.
    mean_abs : float, optional
        B's mean absolute entry, when the caller has it (``finish_ease``
        returns it); else a pass over B computes it.
    """
    from ..kernels.linalg import add_normalized_rows
    from ..kernels.topk import select_topk_unseen

    n = weights.shape[0]
    neighbours = min(neighbours, n - 1)
    if neighbours < 1 or not weight:
        return weights
    columns = np.empty((n, neighbours), np.int32)
    values = np.empty((n, neighbours), np.float32)
    rows = np.arange(n, dtype=np.int32)
    shares = parallel.split(n, parallel.get_num_threads())
    # A row's neighbours are its top entries with its own song (the diagonal) left out as if played.
    diagonal_indptr = np.arange(n + 1, dtype=np.int64)
    parallel.run_tasks(
        lambda lo, hi: select_topk_unseen(
            weights[lo:hi], diagonal_indptr[: hi - lo + 1], rows[lo:hi], columns[lo:hi], values[lo:hi]
        ),
        shares,
    )
    np.maximum(values, 0, out=values)
    used = int(np.count_nonzero(values.sum(1, dtype=np.float64) > 0))
    if not used:
        return weights
    if mean_abs is None:
        mean_abs = mean_absolute(weights)
    scale = np.float32(weight * mean_abs * n * n / used)
    parallel.run_tasks(
        lambda lo, hi: add_normalized_rows(weights, rows[lo:hi], columns[lo:hi], values[lo:hi], scale), shares
    )
    return weights


def prior_offsets(X, user_exponent, weights, column_scale, prior_weight):
    """float32 (n,): ``t * (mean_w * s - mean_w @ B)``, the scores of the mean user's residual, t = ``prior_weight``.

    mean_w_j is the share of users who played song j, user u weighted
    ``n_u ** -user_exponent`` as in the gram matrix; ``weights`` is B
    (already scaled by the column scale s), so ``mean_w @ B`` is the mean
    user's debiased score and ``mean_w * s`` its debiased plays.
    """
    from threadpoolctl import threadpool_limits

    counts = np.diff(X.indptr)
    users = np.maximum(counts, 1).astype(np.float64) ** -user_exponent
    users[counts == 0] = 0
    mean = np.bincount(X.indices, np.repeat(users, counts), minlength=X.shape[1]) / max(users.sum(), 1e-300)
    # One BLAS thread: its rounding, and so the output, must not depend on --threads (30 ms at n = 8,262).
    with threadpool_limits(limits=1, user_api="blas"):
        scored = mean.astype(np.float32) @ weights
    residual = mean * np.asarray(column_scale, np.float64) - scored
    return (prior_weight * residual).astype(np.float32)


def activity_factors(n_plays, reference_plays, popularity, exponent):
    """``(factors, factor_rows)``: row u's scores are multiplied by ``factors[factor_rows[u]]``.

    ``factors[r, j] = (1 + popularity_j) ** -(exponent * log(n / reference_plays))`` for the r-th
    distinct n among the rows' numbers of songs ``n_plays`` (rows without plays count as 1): one
    row per distinct n, so the powers are computed once per activity level, not once per user.

    Returns
    -------
    factors : ndarray, (n_distinct, n_items), float32
    factor_rows : ndarray, (n_rows,), int32
    """
    levels, factor_rows = np.unique(np.maximum(n_plays, 1), return_inverse=True)
    shift = exponent * np.log(levels / reference_plays)
    factors = np.exp(-np.outer(shift, np.log1p(np.asarray(popularity, np.float64))))
    return factors.astype(np.float32), factor_rows.astype(np.int32).reshape(-1)


def solve_weighted_targets(gram, penalty, target_gram, target_weight, column_scale):
    """EDLAE weights when the targets are ``X + a L``: in place in ``gram``, returns B (a new n x n float32).

    With P = (G + diagMat(penalty))^-1, M = P ``target_gram`` and
    mu_j = M_jj / P_jj (the Lagrange multipliers of the zero diagonal):
    B_ij = s_j (-P_ij / P_jj + a (M_ij - P_ij mu_j)), B_jj = 0. With a = 0
    this is EASE's B = -P / diag(P). Peak: two n x n float32 matrices (P, B).

    Parameters
    ----------
    gram : ndarray, (n, n), float32, C-contiguous
        X^T W X; overwritten with P.
    penalty : ndarray, (n,)
        The diagonal added to G.
    target_gram : sparse (n, n)
        X^T W L, L the target's extra part (log counts) on the played songs.
    target_weight : float
        a.
    column_scale : ndarray, (n,)
        s: column j of B is multiplied by ``s[j]``.
    """
    n = gram.shape[0]
    invert_gram(gram, penalty)
    for lo in range(0, n, _ROWS):  # P is in the lower triangle: mirror it to the upper one
        hi = min(n, lo + _ROWS)
        block = gram[lo:hi, lo:hi]
        block[...] = np.tril(block) + np.tril(block, -1).T
        gram[lo:hi, hi:] = gram[hi:, lo:hi].T
    weights = multiply_symmetric_sparse(gram, target_gram)
    diagonal = gram.diagonal().astype(np.float64)
    mu = weights.diagonal() / diagonal
    scale = np.asarray(column_scale, np.float64)
    keep = (target_weight * scale).astype(np.float32)
    subtract = (scale * (1.0 / diagonal + target_weight * mu)).astype(np.float32)

    def finish_rows(lo, hi):
        for a in range(lo, hi, _ROWS):
            b = min(hi, a + _ROWS)
            weights[a:b] *= keep
            weights[a:b] -= gram[a:b] * subtract

    parallel.run_tasks(finish_rows, parallel.split(n, parallel.get_num_threads()))
    weights.reshape(-1)[:: n + 1] = 0
    return weights


def check_edlae_params(model):
    """Raise ValueError for an EDLAE parameter out of its range, on any model that has these parameters (the sparse one too)."""
    check_number("regularization", model.regularization, "a positive number", lambda v: v > 0)
    check_number("dropout", model.dropout, "a number in [0, 1)", lambda v: 0 <= v < 1)
    for name in ("penalty_exponent", "popularity_exponent", "target_weight", "neighbour_weight", "prior_weight"):
        if hasattr(model, name):
            check_number(name, getattr(model, name), "a finite number >= 0", lambda v: v >= 0)
    for name in ("user_exponent", "activity_exponent"):
        check_number(name, getattr(model, name), "a finite number", lambda v: True)
    check_number("neighbours", model.neighbours, "a positive integer", lambda v: v >= 1, integer=True)
    if hasattr(model, "user_neighbours"):
        check_number("user_neighbour_weight", model.user_neighbour_weight, "a finite number >= 0", lambda v: v >= 0)
        check_number("user_neighbours", model.user_neighbours, "a positive integer", lambda v: v >= 1, integer=True)


class EDLAE(ItemItemRecommender):
    """Emphasized denoising linear autoencoder, solved in closed form in float32.

    With G = X^T W X (W the user weights), m the mean of diag G,
    Lambda = diagMat(m (lambda + p / (1 - p) (G_jj / m) ** e)) and
    P = (G + Lambda)^-1: B_ij = -P_ij / P_jj * (1 + pop_j) ** -beta, B_jj = 0
    (with ``target_weight`` a > 0, see ``solve_weighted_targets``). User
    u's scores are ``(X_u B + t c) * (1 + pop) ** -(d log(n_u / n_0))``
    (see ``prior_offsets`` and ``activity_factors``).

    Parameters
    ----------
    regularization : float
        lambda, as a multiple of the mean diagonal of G (> 0).
    dropout : float
        The emphasized-denoising dropout rate p, in [0, 1).
    penalty_exponent : float
        e >= 0: the denoising penalty of a song grows as (its weighted
        plays)**e (1: EDLAE as published, 0: a ridge penalty that ignores
        popularity).
    user_exponent : float
        A user with n songs weighs n**-user_exponent in G (0: all users alike, as in EASE).
    popularity_exponent : float
        beta >= 0: scores are divided by (1 + listeners of the song)**beta.
    target_weight : float
        a >= 0: learn to reproduce plays + a * log(count), so that songs
        played often are stronger targets (0: the plays, as in EASE; above
        0 it costs a sparse x dense product and a second n x n matrix).
    neighbour_weight : float
        w >= 0: each song's strongest links in B (its row's ``neighbours``
        largest entries, normalised to sum to 1) are added back at w times
        B's mean absolute entry (0: none; see ``add_neighbours``).
    neighbours : int
        The links kept per song for ``neighbour_weight`` (>= 1).
    prior_weight : float
        t >= 0: every score gets t times the mean user's residual score
        added, a popularity prior that matters most for users with few
        plays (0: none).
    activity_exponent : float
        d: a user with n songs has scores divided by (1 + listeners of the
        song)**(d log(n / n_0)), n_0 the mean, so heavy listeners get fewer
        popular songs (0: the same debiasing for everyone).
    user_neighbour_weight : float
        g >= 0: a user's ``user_neighbours`` most similar training users
        (the cosine of their sets of songs) vote for their songs, and the
        votes are added at g times the spread of the user's own scores (0:
        none; the search, ``--auto``, sets it where held-out plays show
        that it helps). The model keeps the training users' songs (4 bytes
        a play), so the weight can also be set after the fit.
    user_neighbours : int
        The similar users who vote, for ``user_neighbour_weight`` (>= 1).
    weighting : {"binary", "log", "count"}
        How a play count becomes an entry of X: 1 (binary), 1 + log(1 + count) (log), or the count.
    num_threads : int
        Threads for the kernels and BLAS (0: every core). The solve always
        runs on every core, so that B does not depend on it.
    device : {"cpu", "gpu"}
        Where the gram matrix and its inverse are computed: the CPU, or a
        CUDA GPU with CuPy (``pip install 'jukebox_fast[gpu]'``), P copied back.
    """

    summary = "EASE + emphasized denoising, user weights, popularity debiasing (same single inverse)"

    default_grid = {"regularization": [2.0, 4.0, 8.0], "dropout": [0.75, 0.85, 0.9]}
    auto_search = True
    relative_regularization = True

    def __init__(
        self,
        regularization: float = 4.0,
        dropout: float = 0.85,
        penalty_exponent: float = 0.75,
        user_exponent: float = 0.4,
        popularity_exponent: float = 0.2,
        target_weight: float = 0.0,
        neighbour_weight: float = 0.03,
        neighbours: int = 10,
        prior_weight: float = 1.0,
        activity_exponent: float = 0.05,
        user_neighbour_weight: float = 0.0,
        user_neighbours: int = 50,
        weighting: Weighting = "binary",
        num_threads: int = 0,
        device: Device = "cpu",
    ) -> None:
        self.regularization = regularization
        self.dropout = dropout
        self.penalty_exponent = penalty_exponent
        self.user_exponent = user_exponent
        self.popularity_exponent = popularity_exponent
        self.target_weight = target_weight
        self.neighbour_weight = neighbour_weight
        self.neighbours = neighbours
        self.prior_weight = prior_weight
        self.activity_exponent = activity_exponent
        self.user_neighbour_weight = user_neighbour_weight
        self.user_neighbours = user_neighbours
        self.weighting = weighting
        self.num_threads = num_threads
        self.device = device

    def _check_params(self):
        super()._check_params()
        check_edlae_params(self)
        check_choice("device", self.device, DEVICES)
        if self.device != "cpu" and self.target_weight:
            raise ValueError("target_weight needs device='cpu' (its second n x n matrix is built on the host)")

    def fit_matrices(self) -> int:
        return 2 if self.target_weight else 1

    def fit_bytes_per_play(self) -> int:
        # The log counts (float64), the weighted plays, their user-weighted copy and its copy by columns
        # (float32 values and int32 indices each), as bench/memory_plan.py measures them at the gram's peak.
        return 44

    def memory_plan(self, n_users, n_items, nnz, *, answered=None, k=100):
        plan = super().memory_plan(n_users, n_items, nnz, answered=answered, k=k)
        if self.target_weight:
            # X^T W L and its copy by rows (float32 values, int32 indices): at most n x n entries each, which
            # the counts alone cannot bound better (2-3% of them on song logs, all of them on dense ones).
            plan.fit["X^T W L, sparse, and its copy by rows (at most n x n entries)"] = 16 * n_items * n_items
        plan.fit["the training users' songs"] = plan.recommend["the training users' songs"] = 4 * nnz + 8 * n_users
        if self.user_neighbour_weight:
            plan.recommend["the training users' songs by songs"] = UserNeighbours.listener_bytes(n_items, nnz)
            plan.recommend["the similar users' votes, each thread's"] = parallel.get_num_threads() * (
                UserNeighbours.scratch_bytes(n_users, n_items, score_block_rows(n_items))
            )
        return plan

    def adjustment_bytes(self, n_items: int, n_levels: int) -> int:
        # activity_factors: one float32 row of factors per distinct activity level, and the offsets
        return 4 * n_items * (n_levels + 1) if (self.prior_weight or self.activity_exponent) else 0

    def _learn(self, X, user_items):
        n = X.shape[1]
        weighted = weigh_users(X, self.user_exponent) if self.user_exponent else X
        if self.target_weight:
            advice = "set target_weight to 0 (one matrix), drop rarely played songs, or use a machine with more memory"
            ensure_memory_for_solve(X, "EDLAE", 2, advice)
        else:
            ensure_memory_for_solve(X, "EDLAE")
        popularity = np.bincount(X.indices, minlength=n).astype(np.float64)
        column_scale = (1.0 + popularity) ** -self.popularity_exponent
        mean_abs = None

        def penalty_of(diagonal):
            return edlae_penalty(diagonal, self.regularization, self.dropout, self.penalty_exponent)

        if self.device != "cpu":  # the gram matrix and its inverse on the device, P back here
            weights = invert_on_device(weighted, penalty_of)
            mean_abs = finish_ease(weights, column_scale)
        elif not self.target_weight:
            weights = gram_matrix(weighted, lower=True)
            invert_gram(weights, penalty_of(weights.diagonal()))
            mean_abs = finish_ease(weights, column_scale)
        else:
            gram = gram_matrix(weighted, lower=True)
            targets = weighted.copy()
            targets.data = (weighted.data * np.log(user_items.data.astype(np.float64))).astype(np.float32)
            targets.eliminate_zeros()  # songs played once: log 1 = 0, most of the plays
            weights = solve_weighted_targets(
                gram, penalty_of(gram.diagonal()), weighted.T @ targets, float(self.target_weight), column_scale
            )
        add_neighbours(weights, float(self.neighbour_weight), int(self.neighbours), mean_abs)
        counts = np.diff(X.indptr)
        user_songs_indptr, user_songs = pool_arrays(user_items)
        return {
            "item_weights_": weights,
            # Kept whatever the weight of the similar users' votes, so that it can be set after the fit.
            "user_songs_indptr_": user_songs_indptr,
            "user_songs_": user_songs,
            "item_offsets_": prior_offsets(X, self.user_exponent, weights, column_scale, self.prior_weight),
            # Shape (1,), not a scalar: learnt state is kept as arrays, which the model file stores.
            "reference_plays_": np.array([counts[counts > 0].mean() if X.nnz else 1.0], np.float64),
        }

    def _user_neighbours(self):
        if not self.user_neighbour_weight:
            return None
        if not hasattr(self, "user_songs_"):
            raise RuntimeError(
                "this model file keeps no training users' songs, which user_neighbour_weight needs: fit it again"
            )
        return UserNeighbours(
            self.user_songs_indptr_, self.user_songs_, self.n_items, self.user_neighbours, self.user_neighbour_weight
        )

    def _score_adjustment(self, n_plays):
        # A model file written before the prior existed has no offsets: it scores as it did then.
        if (not self.prior_weight and not self.activity_exponent) or not hasattr(self, "item_offsets_"):
            return None
        factors, factor_rows = activity_factors(
            n_plays, self.reference_plays_[0], self.item_popularity_, self.activity_exponent
        )
        return self.item_offsets_, factors, factor_rows
