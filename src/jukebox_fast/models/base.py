"""What every item-item model shares: scores = weigh(X) @ B, then the best unplayed songs."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from .. import parallel, runtime
from ..data import WEIGHTINGS, as_user_items, weigh
from ..errors import JukeboxWarning
from ..runtime import Progress, ensure_memory

# Each thread scores blocks of about this many bytes, which stay in its cache.
_BLOCK_BYTES = 1 << 20


class ItemItemRecommender:
    """A model whose scores are the weighted play matrix times an items x items matrix.

    Subclasses implement ``_learn(X) -> B`` for the weighted (float32 CSR)
    play matrix X; ``fit`` and ``recommend`` take the raw play counts, users
    x items, always in that orientation.

    Attributes
    ----------
    item_weights_ : ndarray, (n_items, n_items), float32
        B, with a zero diagonal.
    item_popularity_ : ndarray, (n_items,), float32
        Number of users who played each item; ranks songs for users without plays.

    ``recommend`` reads B as 16-bit rows with one scale each
    (``scoring_weights``), made on its first call: scoring reads every
    row of B a user played, and half the bytes make it nearly twice as
    fast. After changing ``item_weights_`` in place, assign it again
    (``model.item_weights_ = B``) so the next call makes them anew.
    """

    def __init__(self, weighting: str = "binary") -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
        self.weighting = weighting

    @staticmethod
    def given_options(options, *names):
        """The named command-line options the user set (not None), as keyword arguments.

        Options left unset fall back to the model's own defaults, so each
        model keeps its defaults in one place: its constructor.
        """
        return {name: getattr(options, name) for name in names if getattr(options, name, None) is not None}

    def fit(self, user_items: sp.sparray | sp.spmatrix) -> ItemItemRecommender:
        """Learn B from a (n_users, n_items) sparse matrix of play counts; returns self."""
        user_items = as_user_items(user_items)
        n_items = user_items.shape[1]
        self.item_popularity_ = np.bincount(user_items.indices, minlength=n_items).astype(np.float32)
        self.item_weights_ = self._learn(weigh(user_items, self.weighting))
        return self

    def _learn(self, X):
        raise NotImplementedError

    def fit_matrices(self) -> int:
        """How many n x n float32 matrices ``fit`` holds at its peak (for the memory plan)."""
        return 1

    def fit_bytes_per_play(self) -> int:
        """Bytes per play that ``fit`` holds beside its n x n matrices: the weighted plays by rows and by columns."""
        return 24

    def adjustment_bytes(self, n_items: int, n_levels: int) -> int:
        """Bytes of the score adjustments ``recommend`` makes for users of ``n_levels`` distinct activities."""
        return 0

    @property
    def n_items(self) -> int:
        return self.item_weights_.shape[0]

    def scoring_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """B as ``recommend`` reads it: ``(rows, scales)`` with B ~ ``scales[:, None] * rows``.

        ``rows`` (n_items, n_items) int16 and ``scales`` (n_items,) float32:
        each row is rounded to steps of 1/32767 of its largest |entry|,
        so every entry is within half a step. Made once per B (the
        ``item_weights_`` object) and kept. Where the memory free is less
        than the copy needs, ``rows`` is B itself and ``scales`` ones, with
        a JukeboxWarning.
        """
        from ..kernels.linalg import quantize_rows

        B = self.item_weights_
        kept = getattr(self, "_scoring", None)
        if kept is None or kept[0] is not B:
            if B.size * 2 > runtime.memory_budget().available:
                warnings.warn(
                    f"no room for the 16-bit copy of B ({B.size * 2 / 2**30:.1f} GiB): scoring reads B in float32, "
                    "at about half the speed, and near-ties may rank differently",
                    JukeboxWarning,
                    stacklevel=2,
                )
                kept = self._scoring = (B, B, np.ones(B.shape[0], np.float32))
                return kept[1], kept[2]
            rows, scales = np.empty(B.shape, np.int16), np.empty(B.shape[0], np.float32)
            parallel.run_tasks(
                quantize_rows, [(B, rows, scales, lo, hi) for lo, hi in parallel.split(B.shape[0], parallel.get_num_threads())]
            )
            kept = self._scoring = (B, rows, scales)
        return kept[1], kept[2]

    def recommend(
        self, user_items: sp.sparray | sp.spmatrix, k: int = 100, filter_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best songs for every row of ``user_items``.

        Parameters
        ----------
        user_items : sparse (n_users, n_items)
            Play counts of the users to recommend for, one row each. A row
            without plays gets the most popular songs.
        k : int
            Songs per user.
        filter_seen : bool
            Leave out the songs a row has played.

        Returns
        -------
        indices : ndarray, (n_users, k), int32
            Song indices, best first; -1 past the end when a user has fewer
            than k songs left.
        scores : ndarray, (n_users, k), float32
            Their scores, computed from B's 16-bit rows (``scoring_weights``);
            -inf where the index is -1.
        """
        if not hasattr(self, "item_weights_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit first")
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = int(k)
        X = weigh(as_user_items(user_items, self.n_items), self.weighting)
        X_indptr, X_indices = X.indptr.astype(np.int64), X.indices.astype(np.int32, copy=False)
        indices = np.empty((X.shape[0], k), np.int32)
        scores = np.empty((X.shape[0], k), np.float32)
        n_threads = parallel.get_num_threads()
        block_rows = max(8, _BLOCK_BYTES // (4 * self.n_items))
        ensure_memory(4 * n_threads * block_rows * self.n_items, "scoring", "use fewer threads")
        adjustment = self._score_adjustment(np.diff(X_indptr))
        weights = self.scoring_weights()
        shares = parallel.split_by_work(X_indptr, n_threads)
        progress = Progress(X.shape[0], lambda done, total: f"scored {done:,} of {total:,} users")
        parallel.run_tasks(
            self._recommend_rows,
            [
                (X_indptr, X_indices, X.data, weights, lo, hi, block_rows, filter_seen, indices, scores, adjustment, progress)
                for lo, hi in shares
            ],
        )
        progress.finish()
        return indices, scores

    def _score_adjustment(self, n_plays):
        """None, or ``(offsets, factors, factor_rows)``: row u's scores become ``(X_u B + offsets) * factors[factor_rows[u]]``.

        ``n_plays`` holds the number of songs of each row to score. Models
        whose scores are just X B keep this default.
        """
        return None

    def _recommend_rows(
        self, X_indptr, X_indices, X_data, weights, lo, hi, block_rows, filter_seen, indices, scores, adjustment, progress
    ):
        """Score rows lo..hi-1 a block at a time and keep each row's top k; one thread's share."""
        from ..kernels.linalg import multiply_sparse_dense, shift_scale_rows
        from ..kernels.topk import select_topk_unseen

        weight_rows, weight_scales = weights
        block = np.empty((min(block_rows, hi - lo), self.n_items), np.float32)
        for a in range(lo, hi, block_rows):
            b = min(hi, a + block_rows)
            indptr = X_indptr[a : b + 1] - X_indptr[a]
            cols = X_indices[X_indptr[a] : X_indptr[b]]
            view = block[: b - a]
            multiply_sparse_dense(indptr, cols, X_data[X_indptr[a] : X_indptr[b]], weight_rows, view, weight_scales)
            if adjustment is not None:
                offsets, factors, factor_rows = adjustment
                shift_scale_rows(view, offsets, factors, factor_rows[a:b])
            cold = np.flatnonzero(indptr[1:] == indptr[:-1])
            if cold.size:  # no plays, nothing personal: rank by popularity
                view[cold] = self.item_popularity_
            if not filter_seen:
                indptr = np.zeros_like(indptr)
            select_topk_unseen(view, indptr, cols, indices[a:b], scores[a:b])
            progress.advance(b - a)
