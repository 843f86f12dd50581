"""EDLAE (Steck 2020) with user weighting, popularity debiasing and weighted targets.

Four changes to EASE; the first three live inside its one float32 Cholesky
inverse, the fourth adds one sparse x dense product:

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
- weighted targets (``target_weight`` a > 0): the model still reads the
  plays as X, but learns to reproduce ``X + a * log(count)`` (a song
  played often is a stronger target than one played once). The zero
  diagonal then comes from a Lagrangian (Steck 2019, section 3) and costs
  the product P X^T W L (L the log counts, sparse) and a second n x n
  matrix on top of the inverse.

lambda is given relative to the mean diagonal of the (weighted) gram
matrix, so the same setting fits logs of any size.
"""

import numpy as np
import scipy.sparse as sp

from .. import parallel
from ..data import as_user_items
from .base import ItemItemRecommender
from .ease import ensure_memory_for_solve, gram_matrix, invert_gram, solve_ease

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


class EDLAE(ItemItemRecommender):
    """Emphasized denoising linear autoencoder, solved in closed form in float32.

    With G = X^T W X (W the user weights), m the mean of diag G,
    Lambda = diagMat(m (lambda + p / (1 - p) (G_jj / m) ** e)) and
    P = (G + Lambda)^-1: B_ij = -P_ij / P_jj * (1 + pop_j) ** -beta, B_jj = 0
    (with ``target_weight`` a > 0, see ``solve_weighted_targets``).

    Parameters
    ----------
    regularization : float
        lambda as a multiple of the mean diagonal of G (> 0).
    dropout : float
        p in [0, 1): the emphasized-denoising dropout rate.
    penalty_exponent : float
        e >= 0: the denoising penalty grows as ``G_jj ** e`` (1: EDLAE as
        published, 0: a ridge penalty that ignores popularity).
    user_exponent : float
        Users weigh ``n_u ** -user_exponent`` in G (0: all equal, as in EASE).
    popularity_exponent : float
        beta >= 0: how much scores are divided by song popularity.
    target_weight : float
        a >= 0: the targets are ``X + a * log(count)`` (0: X, as in EASE;
        costs one extra n x n matmul when > 0).
    weighting : {"binary", "log", "count"}
        How a play count becomes an entry of X.
    """

    summary = "EASE + emphasized denoising, user weights, popularity debiasing (same single inverse)"

    def __init__(
        self,
        regularization=4.0,
        dropout=0.8,
        penalty_exponent=0.75,
        user_exponent=0.5,
        popularity_exponent=0.2,
        target_weight=0.0,
        weighting="binary",
    ):
        super().__init__(weighting)
        if not regularization > 0:
            raise ValueError(f"regularization must be positive, got {regularization!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not penalty_exponent >= 0 or not np.isfinite(penalty_exponent):
            raise ValueError(f"penalty_exponent must be a finite number >= 0, got {penalty_exponent!r}")
        if not popularity_exponent >= 0:
            raise ValueError(f"popularity_exponent must be >= 0, got {popularity_exponent!r}")
        if not np.isfinite(user_exponent):
            raise ValueError(f"user_exponent must be a finite number, got {user_exponent!r}")
        if not target_weight >= 0 or not np.isfinite(target_weight):
            raise ValueError(f"target_weight must be a finite number >= 0, got {target_weight!r}")
        self.regularization = float(regularization)
        self.target_weight = float(target_weight)
        self.dropout = float(dropout)
        self.penalty_exponent = float(penalty_exponent)
        self.user_exponent = float(user_exponent)
        self.popularity_exponent = float(popularity_exponent)

    @classmethod
    def from_options(cls, options):
        return cls(
            **cls.given_options(
                options, "regularization", "dropout", "penalty_exponent", "user_exponent", "popularity_exponent",
                "target_weight", "weighting",
            )
        )

    def fit(self, user_items):
        user_items = as_user_items(user_items)
        # _learn sees only the weighted plays; the targets need the counts.
        self._log_counts = np.log(user_items.data.astype(np.float64))
        try:
            return super().fit(user_items)
        finally:
            del self._log_counts

    def _learn(self, X):
        n = X.shape[1]
        weighted = weigh_users(X, self.user_exponent) if self.user_exponent else X
        if self.target_weight:
            advice = "use --target-weight 0 (one matrix), drop rarely played songs, or use a machine with more memory"
            ensure_memory_for_solve(X, "EDLAE", 2, advice)
        else:
            ensure_memory_for_solve(X, "EDLAE")
        gram = gram_matrix(weighted, lower=True)
        penalty = edlae_penalty(gram.diagonal(), self.regularization, self.dropout, self.penalty_exponent)
        popularity = np.bincount(X.indices, minlength=n).astype(np.float64)
        column_scale = (1.0 + popularity) ** -self.popularity_exponent
        if not self.target_weight:
            return solve_ease(gram, penalty, column_scale)
        targets = weighted.copy()
        targets.data = (weighted.data * self._log_counts).astype(np.float32)
        targets.eliminate_zeros()  # songs played once: log 1 = 0, most of the plays
        return solve_weighted_targets(gram, penalty, weighted.T @ targets, self.target_weight, column_scale)

    def __repr__(self):
        return (
            f"EDLAE(regularization={self.regularization:g}, dropout={self.dropout:g}, "
            f"penalty_exponent={self.penalty_exponent:g}, "
            f"user_exponent={self.user_exponent:g}, popularity_exponent={self.popularity_exponent:g}, "
            f"target_weight={self.target_weight:g}, "
            f"weighting={self.weighting!r})"
        )
