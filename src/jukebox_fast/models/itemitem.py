"""The dense item-item family: scores = weigh(X) @ B for one items x items float32 matrix B, then the best unplayed items."""

from __future__ import annotations

import typing
import warnings

import numpy as np

from .. import _parallel as parallel, runtime
from ..data import WEIGHTINGS, weigh
from ..errors import JukeboxWarning
from ..memory import BLOCK_BYTES, MemoryPlan, count_matrices
from ..runtime import Progress, ensure_memory
from .base import Recommender

Weighting = typing.Literal["binary", "log", "count"]
Device = typing.Literal["cpu", "gpu"]
DEVICES = typing.get_args(Device)


def score_block_rows(n_items):
    """Rows of the block of scores each scoring thread fills at a time: about ``BLOCK_BYTES`` of float32, at least 8."""
    return max(8, BLOCK_BYTES // (4 * max(n_items, 1)))


class ItemItemRecommender(Recommender):
    """A model whose scores are the weighted play matrix times a dense items x items matrix B.

    Subclasses implement ``_learn(X, user_items) -> {name: array}`` for
    the weighted (float32 CSR) play matrix X and the counts it came from;
    the result holds ``item_weights_`` (B) and any other learnt state.

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

    def _check_params(self):
        check_choice("weighting", self.weighting, WEIGHTINGS)

    def _fit(self, user_items):
        n_items = user_items.shape[1]
        popularity = np.bincount(user_items.indices, minlength=n_items).astype(np.float32)
        learnt = self._learn(weigh(user_items, self.weighting), user_items)
        self.item_popularity_ = popularity
        for name, value in learnt.items():
            setattr(self, name, value)

    def _learn(self, X, user_items) -> dict:
        raise NotImplementedError

    def is_fitted(self):
        return hasattr(self, "item_weights_")

    # --- the memory plan ---------------------------------------------------------------------

    def fit_matrices(self) -> int:
        """How many n x n float32 matrices ``fit`` holds at its peak."""
        return 1

    def fit_bytes_per_play(self) -> int:
        """Bytes per play that ``fit`` holds beside its n x n matrices: the weighted plays by rows and by columns."""
        return 24

    def adjustment_bytes(self, n_items: int, n_levels: int) -> int:
        """Bytes of the score adjustments ``recommend`` makes for users of ``n_levels`` distinct activities."""
        return 0

    def memory_plan(self, n_users, n_items, nnz, *, answered=None, k=100):
        n = n_items
        if answered is None:
            answered = (n_users, nnz, n_users)
        n_answered, answered_plays, levels = answered
        matrices = self.fit_matrices()
        square = 4 * n * n
        plan = MemoryPlan(n)
        plan.fit[f"{count_matrices(matrices)} {n:,} x {n:,} float32 matri{'x' if matrices == 1 else 'ces'}"] = matrices * square
        # The working copies of the plays (weighted, by columns, ...), and their row and column pointers.
        plan.fit["the working copies of the plays"] = self.fit_bytes_per_play() * nnz + 16 * (n_users + n)
        block_rows = score_block_rows(n)
        plan.recommend[f"B, one {n:,} x {n:,} float32 matrix,"] = square
        plan.recommend["its 16-bit copy"] = plan.optional["its 16-bit copy"] = square // 2
        plan.recommend["the plays of the users answered"] = 16 * answered_plays + 8 * n_answered
        plan.recommend["score blocks"] = 4 * parallel.get_num_threads() * block_rows * n
        plan.recommend["score adjustments"] = self.adjustment_bytes(n, levels)
        plan.recommend["the (users, k) indices and scores"] = 8 * n_answered * min(k, n)
        return plan

    # --- scoring -----------------------------------------------------------------------------

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
                    stacklevel=3,
                )
                kept = self._scoring = (B, B, np.ones(B.shape[0], np.float32))
                return kept[1], kept[2]
            rows, scales = np.empty(B.shape, np.int16), np.empty(B.shape[0], np.float32)
            parallel.run_tasks(
                quantize_rows, [(B, rows, scales, lo, hi) for lo, hi in parallel.split(B.shape[0], parallel.get_num_threads())]
            )
            kept = self._scoring = (B, rows, scales)
        return kept[1], kept[2]

    def _recommend(self, user_items, k, filter_seen, candidates):
        from ..kernels.linalg import multiply_sparse_dense

        X = weigh(user_items, self.weighting)
        adjustment = self._score_adjustment(np.diff(X.indptr))
        weight_rows, weight_scales = self.scoring_weights()
        return score_by_blocks(
            X, lambda indptr, cols, data, out: multiply_sparse_dense(indptr, cols, data, weight_rows, out, weight_scales),
            adjustment, self.item_popularity_, k, filter_seen, candidates, self._user_neighbours(),
        )

    def _user_neighbours(self):
        """None, or the ``users.UserNeighbours`` whose votes are added to the scores. Models without them keep this default."""
        return None

    def _score_adjustment(self, n_plays):
        """None, or ``(offsets, factors, factor_rows)``: row u's scores become ``(X_u B + offsets) * factors[factor_rows[u]]``.

        ``n_plays`` holds the number of songs of each row to score. Models
        whose scores are just X B keep this default.
        """
        return None

    def _similar_items(self, items, k):
        """Row i of B: how much playing item i adds to each other item's score."""
        B = self.item_weights_
        indices = np.empty((items.size, k), np.int32)
        scores = np.empty(indices.shape, np.float32)
        itself = np.arange(items.size + 1, dtype=np.int64)
        for lo in range(0, items.size, 256):
            hi = min(items.size, lo + 256)
            rows = np.ascontiguousarray(B[items[lo:hi]])
            select_best(rows, itself[: hi - lo + 1], items[lo:hi].astype(np.int32), True, None, indices[lo:hi], scores[lo:hi])
        return indices, scores


def score_by_blocks(X, multiply, adjustment, popularity, k, filter_seen, candidates, users=None):
    """The k best items of every row of the weighted plays X: ``(indices, scores)``, (n_rows, k) each.

    Each thread takes a share of the rows holding an equal share of the
    plays and, a cache-sized block of rows at a time, fills the block's
    scores with ``multiply(indptr, cols, data, out)`` (X's block times B,
    however B is held), applies ``adjustment`` (None, or ``(offsets,
    factors, factor_rows)``: ``(scores + offsets) * factors[factor_rows]``),
    adds the votes of similar users where ``users`` (``users.UserNeighbours``)
    is given, ranks rows without plays by ``popularity`` and keeps the best
    (``select_best``).
    """
    from ..kernels.linalg import shift_scale_rows

    n_items = popularity.shape[0]
    X_indptr, X_indices = X.indptr.astype(np.int64), X.indices.astype(np.int32, copy=False)
    indices = np.empty((X.shape[0], k), np.int32)
    scores = np.empty((X.shape[0], k), np.float32)
    n_threads = parallel.get_num_threads()
    block_rows = score_block_rows(n_items)
    scratch_bytes = 0 if users is None else users.scratch_bytes(users.n_pool, n_items, block_rows)
    ensure_memory(n_threads * (4 * block_rows * n_items + scratch_bytes), "scoring", "use fewer threads")
    progress = Progress(X.shape[0], lambda done, total: f"scored {done:,} of {total:,} users")

    def score_rows(lo, hi):
        block = np.empty((min(block_rows, hi - lo), n_items), np.float32)
        scratch = None if users is None else users.scratch(block.shape[0])
        for a in range(lo, hi, block_rows):
            b = min(hi, a + block_rows)
            indptr = X_indptr[a : b + 1] - X_indptr[a]
            cols = X_indices[X_indptr[a] : X_indptr[b]]
            view = block[: b - a]
            multiply(indptr, cols, X.data[X_indptr[a] : X_indptr[b]], view)
            if adjustment is not None:
                offsets, factors, factor_rows = adjustment
                shift_scale_rows(view, offsets, factors, factor_rows[a:b])
            if users is not None:
                users.add(indptr, cols, view, scratch)
            cold = np.flatnonzero(indptr[1:] == indptr[:-1])
            if cold.size:  # no plays, nothing personal: rank by popularity
                view[cold] = popularity
            select_best(view, indptr, cols, filter_seen, candidates, indices[a:b], scores[a:b])
            progress.advance(b - a)

    parallel.run_tasks(score_rows, parallel.split_by_work(X_indptr, n_threads))
    progress.finish()
    return indices, scores


def select_best(block, indptr, cols, filter_seen, candidates, out_indices, out_scores):
    """Each row's best items of a block of scores, into ``out_*``, best first.

    ``indptr``/``cols`` (CSR, sorted rows) are the items each row played,
    left out with ``filter_seen``; ``candidates`` (None: all; else sorted,
    distinct) are the only items ranked. -1 and -inf fill the tail of a
    row with fewer items left.
    """
    from ..kernels.topk import select_topk_unseen

    if not filter_seen:
        indptr = np.zeros_like(indptr)
    if candidates is None:
        select_topk_unseen(block, indptr, cols, out_indices, out_scores)
        return
    position = np.full(block.shape[1], -1, np.int64)
    position[candidates] = np.arange(candidates.size)
    seen = position[cols[: indptr[-1]]]
    kept = seen >= 0
    row_of = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    kept_indptr = np.zeros_like(indptr)
    np.cumsum(np.bincount(row_of[kept], minlength=indptr.size - 1), out=kept_indptr[1:])
    kept_cols = seen[kept].astype(np.int32)  # sorted within rows, as the candidates are
    select_topk_unseen(np.ascontiguousarray(block[:, candidates]), kept_indptr, kept_cols, out_indices, out_scores)
    found = out_indices >= 0
    out_indices[found] = candidates[out_indices[found]]


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_number(name, value, wanted, accept, integer=False):
    """Raise ValueError unless ``value`` is a real number (an integer with ``integer``) for which ``accept`` holds."""
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if integer:
        is_number = is_number and float(value).is_integer()
    if not is_number or not np.isfinite(value) or not accept(value):
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
