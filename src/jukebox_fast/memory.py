"""The memory a run needs at its peak, counted before the first songs x songs allocation.

A dense item-item model holds one (or more) n x n float32 matrix: 6.8 GB at
41,140 songs, 22.5 GB at 75,000. ``plan`` lists every buffer that the fit
and the recommendations add to what the process holds already (the plays
are read by then, and the free memory is measured after them), so that a
catalogue too large for the machine is refused in seconds, with both
numbers and the largest number of songs that would fit, instead of
failing half-way through a solve of many minutes.
"""

import gc
import traceback
from dataclasses import dataclass, field

import numpy as np

from . import runtime
from .errors import MemoryBudgetError, OutOfMemoryError, format_size

# Scoring works on blocks of rows of about this many bytes per thread (models/itemitem.py).
BLOCK_BYTES = 1 << 20
# Memory each thread uses beside the planned arrays: OpenBLAS's buffers, the kernels' scratch
# (bench/memory_plan.py: the peak stays this far above the arrays on small catalogues).
THREAD_BYTES = 24 * 2**20


@dataclass
class MemoryPlan:
    """Bytes of each buffer a run adds at the peak of its fit and of its recommendations."""

    n_items: int
    fit: dict = field(default_factory=dict)
    recommend: dict = field(default_factory=dict)
    optional: dict = field(default_factory=dict)  # in ``recommend`` too, but the run can do without it

    @property
    def needed(self):
        """Bytes at the peak without the optional buffers."""
        return max(sum(self.fit.values()), sum(self.recommend.values()) - sum(self.optional.values()))

    @property
    def wanted(self):
        """Bytes at the peak with every buffer."""
        return max(sum(self.fit.values()), sum(self.recommend.values()))

    def describe(self, phase):
        buffers = self.fit if phase == "fit" else self.recommend
        return ", ".join(
            f"{name} {format_size(size)}" for name, size in buffers.items() if size >= 2**20 and name not in self.optional
        )


def count_matrices(count):
    """'one', 'two', 'three', then digits: how many n x n matrices, in words."""
    return {1: "one", 2: "two", 3: "three"}.get(count, str(count))


def plan(model, user_items, answered, k, id_bytes, n_threads, n_items=None, n_plays=None):
    """The buffers of fitting ``model`` on ``user_items`` and recommending k songs to some users.

    The model counts its own (``Recommender.memory_plan``); the run adds
    the output text and the threads' working memory.

    Parameters
    ----------
    model : Recommender
    user_items : sparse (n_users, n_items)
        The plays the model is fit on.
    answered : tuple of int
        The users to answer, their plays in all, and their distinct numbers of songs.
    k : int
        Songs per user.
    id_bytes : float
        Mean length of a song id in bytes (the output's size).
    n_threads : int
    n_items, n_plays : int, optional
        Songs of the model and their plays, when other than ``user_items``'s (to ask what a smaller
        catalogue needs).
    """
    n = user_items.shape[1] if n_items is None else n_items
    nnz = user_items.nnz if n_plays is None else n_plays
    result = model.memory_plan(user_items.shape[0], n, nnz, answered=answered, k=k)
    result.recommend["the recommendations"] = int(answered[0] * min(k, n) * (id_bytes + 1))
    for phase in (result.fit, result.recommend):
        phase["the threads' working memory (BLAS buffers, scratch)"] = THREAD_BYTES * n_threads
    return result


def largest_catalogue(model, user_items, answered, k, id_bytes, n_threads, available):
    """The most songs whose plan needs at most ``available`` bytes (0 when none do).

    The songs kept are the most played, as ``Interactions.most_played`` keeps them, with their own plays.
    """
    n = user_items.shape[1]
    listeners = np.sort(np.bincount(user_items.indices, minlength=n))[::-1]
    plays_of_top = np.concatenate([[0], np.cumsum(listeners)])
    lo, hi = 0, n  # the plan grows with n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        kept = plan(model, user_items, answered, k, id_bytes, n_threads, n_items=mid, n_plays=int(plays_of_top[mid]))
        # --max-songs copies the kept plays; the process may keep the pages of the whole log it read.
        if kept.needed + 16 * int(plays_of_top[mid]) <= available:
            lo = mid
        else:
            hi = mid - 1
    return lo


def advice(max_songs):
    """What to do when the run does not fit, given the most songs that fit."""
    if max_songs < 100:
        return "use a machine with more memory"
    return (
        f"--max-songs {max_songs // 100 * 100} keeps the most played songs that fit (Interactions.most_played in "
        "the API), or use a machine with more memory"
    )


def ensure_room(model, user_items, answered, k, id_bytes, n_threads, budget=None):
    """Refuse, with the numbers and what to do, a run whose buffers would not fit in the memory budget.

    ``budget`` is a ``runtime.MemoryBudget`` (default: ``runtime.memory_budget()``).
    Returns the plan. Without room for the 16-bit copy of B the run goes
    on, and scoring reads B itself (``ItemItemRecommender.scoring_weights``).
    """
    budget = runtime.memory_budget() if budget is None else budget
    needed = plan(model, user_items, answered, k, id_bytes, n_threads)
    if needed.needed <= budget.available:
        return needed
    n = user_items.shape[1]
    fits = largest_catalogue(model, user_items, answered, k, id_bytes, n_threads, budget.available)
    phase = "fit" if sum(needed.fit.values()) >= needed.needed else "recommend"
    raise MemoryBudgetError(
        f"{type(model).__name__} on {n:,} songs ({needed.describe(phase)})", needed.needed, budget.available,
        advice(fits), budget.limited_by,
    )


def out_of_memory(error, doing, model, user_items, answered, k, id_bytes, n_threads):
    """The ``OutOfMemoryError`` for a MemoryError raised while ``doing`` (e.g. "fitting") despite the plan.

    Says what failed (NumPy's message names the array), the budget now and
    the most songs whose plan fits in it.
    """
    traceback.clear_frames(error.__traceback__)  # the failed run's buffers go now, before the budget is measured
    gc.collect()
    budget = runtime.memory_budget()
    n = user_items.shape[1]
    fits = largest_catalogue(model, user_items, answered, k, id_bytes, n_threads, budget.available)
    what = str(error) or "an allocation failed"
    return OutOfMemoryError(
        f"out of memory while {doing} {type(model).__name__} on {n:,} songs ({what}); the memory budget is "
        f"{format_size(budget.available)} now ({budget.limited_by}); {advice(min(fits, n - 1))}"
    )
