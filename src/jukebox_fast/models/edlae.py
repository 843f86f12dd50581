"""EDLAE (Steck 2020) with user weighting and popularity debiasing: EASE's cost, better ranking.

Three changes to EASE, all inside the one float32 Cholesky inverse:

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
  ``(1 + pop_j) ** -popularity_exponent``.

lambda is given relative to the mean diagonal of the (weighted) gram
matrix, so the same setting fits logs of any size.
"""

import numpy as np

from .base import ItemItemRecommender
from .ease import ensure_memory_for_solve, gram_matrix, solve_ease


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


class EDLAE(ItemItemRecommender):
    """Emphasized denoising linear autoencoder, solved in closed form in float32.

    With G = X^T W X (W the user weights), m the mean of diag G,
    Lambda = diagMat(m (lambda + p / (1 - p) (G_jj / m) ** e)) and
    P = (G + Lambda)^-1: B_ij = -P_ij / P_jj * (1 + pop_j) ** -beta, B_jj = 0.

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
        self.regularization = float(regularization)
        self.dropout = float(dropout)
        self.penalty_exponent = float(penalty_exponent)
        self.user_exponent = float(user_exponent)
        self.popularity_exponent = float(popularity_exponent)

    @classmethod
    def from_options(cls, options):
        return cls(
            **cls.given_options(
                options, "regularization", "dropout", "penalty_exponent", "user_exponent", "popularity_exponent", "weighting"
            )
        )

    def _learn(self, X):
        n = X.shape[1]
        ensure_memory_for_solve(X, "EDLAE")
        gram = gram_matrix(weigh_users(X, self.user_exponent) if self.user_exponent else X)
        penalty = edlae_penalty(gram.diagonal(), self.regularization, self.dropout, self.penalty_exponent)
        popularity = np.bincount(X.indices, minlength=n).astype(np.float64)
        return solve_ease(gram, penalty, (1.0 + popularity) ** -self.popularity_exponent)

    def __repr__(self):
        return (
            f"EDLAE(regularization={self.regularization:g}, dropout={self.dropout:g}, "
            f"penalty_exponent={self.penalty_exponent:g}, "
            f"user_exponent={self.user_exponent:g}, popularity_exponent={self.popularity_exponent:g}, "
            f"weighting={self.weighting!r})"
        )
