"""The most played songs a user has not played yet: the baseline every model must beat, and the smallest model there is."""

from __future__ import annotations

import numpy as np

from ..memory import MemoryPlan
from .base import Recommender


class Popularity(Recommender):
    """Recommends the items with the most listeners, in the same order for everyone, played ones left out.

    Its scores are the numbers of listeners; ``similar_items`` gives the
    most played other items, scored by their share of the users.

    Parameters
    ----------
    num_threads : int
        Threads (0: every core); the model's own work is in NumPy, on one.
    """

    summary = "the most played songs, for everyone (a baseline)"

    def __init__(self, num_threads: int = 0) -> None:
        self.num_threads = num_threads

    def _fit(self, user_items):
        self.item_popularity_ = np.bincount(user_items.indices, minlength=user_items.shape[1]).astype(np.float32)
        self.n_users_ = np.array([user_items.shape[0]], np.int64)

    def _recommend(self, user_items, k, filter_seen, candidates):
        ranked = np.argsort(-self.item_popularity_, kind="stable").astype(np.int32)  # ties: the lower index first
        if candidates is not None:
            ranked = ranked[np.isin(ranked, candidates)]
        indices = np.full((user_items.shape[0], k), -1, np.int32)
        scores = np.full((user_items.shape[0], k), -np.inf, np.float32)
        indptr = user_items.indptr
        for u in range(user_items.shape[0]):
            played = user_items.indices[indptr[u] : indptr[u + 1]] if filter_seen else ()
            head = ranked[: k + len(played)]  # the k best are among them, whatever was played
            best = head[~np.isin(head, played)][:k]
            indices[u, : best.size] = best
            scores[u, : best.size] = self.item_popularity_[best]
        return indices, scores

    def _similar_items(self, items, k):
        ranked = np.argsort(-self.item_popularity_, kind="stable").astype(np.int32)
        shares = self.item_popularity_ / max(self.n_users_[0], 1)
        indices = np.full((items.size, k), -1, np.int32)
        scores = np.full((items.size, k), -np.inf, np.float32)
        for r, item in enumerate(items):
            best = ranked[: k + 1]
            best = best[best != item][:k]
            indices[r, : best.size] = best
            scores[r, : best.size] = shares[best]
        return indices, scores

    def memory_plan(self, n_users, n_items, nnz, *, answered=None, k=100):
        n_answered = n_users if answered is None else answered[0]
        plan = MemoryPlan(n_items)
        plan.fit["the listeners of each item"] = 8 * n_items
        plan.recommend["the items ranked"] = 12 * n_items
        plan.recommend["the (users, k) indices and scores"] = 8 * n_answered * min(k, n_items)
        return plan
