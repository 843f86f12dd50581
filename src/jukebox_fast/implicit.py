"""jukebox_fast's models behind the interface of ``implicit`` 0.7 (``implicit.recommender_base.RecommenderBase``).

Code written against implicit runs with a changed import line::

    from jukebox_fast.implicit import EDLAE as AlternatingLeastSquares

    model = AlternatingLeastSquares()
    model.fit(user_items)                                   # users x items CSR
    ids, scores = model.recommend(0, user_items[0], N=10)   # (N,) each
    ids, scores = model.recommend(np.arange(5), user_items[:5], N=10)   # (5, N) each
    ids, scores = model.similar_items(3, N=10)

The differences from implicit: the models are item-item, so every
recommendation is computed from the ``user_items`` rows passed in
(``recalculate_user`` changes nothing); ``similar_items`` leaves the item
itself out; ``save`` writes jukebox_fast's model file (with the extension
given, or none), which ``load`` reads back.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from . import models

__all__ = ["EASE", "EDLAE", "LinearAutoencoder", "Popularity", "RecommenderBase"]


class RecommenderBase:
    """A jukebox_fast model with implicit 0.7's ``fit`` / ``recommend`` / ``similar_items`` / ``save`` / ``load``.

    The constructor takes the parameters of the model it wraps
    (``model_class``); ``model`` is the wrapped jukebox_fast model.
    """

    model_class: type[models.Recommender] = models.EDLAE

    def __init__(self, **params) -> None:
        name = next(name for name, cls in models.MODELS.items() if cls is self.model_class)
        self.model = models.make_model(name, **params)

    def get_params(self, deep: bool = True) -> dict:
        return self.model.get_params(deep)

    def set_params(self, **params) -> RecommenderBase:
        self.model.set_params(**params)
        return self

    def __repr__(self):
        return f"jukebox_fast.implicit.{type(self).__name__}({repr(self.model).partition('(')[2]}"

    def fit(self, user_items, show_progress: bool = True, callback=None) -> None:
        """Learn from a (users, items) sparse matrix of play counts (``show_progress`` and ``callback`` as implicit's)."""
        self.model.fit(user_items)

    def recommend(
        self, userid, user_items, N: int = 10, filter_already_liked_items: bool = True, filter_items=None,
        recalculate_user: bool = False, items=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The N best items for ``userid`` (an int, or an array of them), from their rows of ``user_items``.

        ``user_items`` holds one row per user of ``userid``, in order, as
        implicit 0.7 asks; the whole matrix the model was fit on is taken
        too, and its rows of ``userid`` are used. ``filter_items`` are left
        out, ``items`` (if given) are the only ones ranked. Returns
        ``(ids, scores)`` of shape (N,) for one user, (len(userid), N) for
        an array.
        """
        users = np.asarray(userid)
        if users.dtype.kind not in "iu":
            raise TypeError(f"userid must be an int or an array of ints, got {userid!r}")
        one = users.ndim == 0
        users = users.reshape(-1)
        if not sp.issparse(user_items):
            raise TypeError(f"user_items must be a scipy.sparse matrix, got {type(user_items).__name__}")
        rows = sp.csr_array(user_items)
        if rows.shape[0] != users.size:
            if users.size and rows.shape[0] > users.max():
                rows = rows[users]
            else:
                raise ValueError(
                    f"user_items has {rows.shape[0]} rows for {users.size} userid(s): give the users' own rows, in order"
                )
        candidates = self._candidates(filter_items, items)
        if candidates is not None and candidates.size == 0:
            ids, scores = np.full((users.size, N), -1, np.int32), np.full((users.size, N), -np.inf, np.float32)
        else:
            ids, scores = self.model.recommend(rows, k=N, filter_seen=filter_already_liked_items, items=candidates)
        return (ids[0], scores[0]) if one else (ids, scores)

    def _candidates(self, filter_items, items):
        if filter_items is None and items is None:
            return None
        keep = np.arange(self.model.n_items) if items is None else np.unique(np.asarray(items, np.int64))
        if filter_items is not None:
            keep = np.setdiff1d(keep, np.asarray(filter_items, np.int64))
        return keep

    def similar_items(
        self, itemid, N: int = 10, recalculate_item: bool = False, item_users=None, filter_items=None, items=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The N items most similar to ``itemid`` (an int or an array of them), the item itself left out."""
        if filter_items is None and items is None:
            return self.model.similar_items(itemid, k=N)
        allowed = np.zeros(self.model.n_items + 1, bool)  # index -1 (past the end) stays False
        allowed[self._candidates(filter_items, items)] = True
        every_ids, every_scores = self.model.similar_items(np.atleast_1d(itemid), k=self.model.n_items)
        ids, scores = _keep_first(every_ids, every_scores, allowed, N)
        return (ids[0], scores[0]) if np.ndim(itemid) == 0 else (ids, scores)

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model (without the plays) to ``path``."""
        self.model.save(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RecommenderBase:
        """The model ``save`` wrote to ``path``."""
        adapter = cls.__new__(cls)
        adapter.model = cls.model_class.load(path)
        return adapter


def _keep_first(ids, scores, allowed, n):
    """Each row's first n entries whose id is allowed, padded with -1 and -inf."""
    out_ids = np.full((ids.shape[0], n), -1, np.int32)
    out_scores = np.full((ids.shape[0], n), -np.inf, np.float32)
    for r in range(ids.shape[0]):
        keep = allowed[ids[r]]
        kept = ids[r][keep][:n]
        out_ids[r, : kept.size] = kept
        out_scores[r, : kept.size] = scores[r][keep][:n]
    return out_ids, out_scores


class EDLAE(RecommenderBase):
    """``jukebox_fast.EDLAE`` (the default model) with implicit's interface."""

    model_class = models.EDLAE


class EASE(RecommenderBase):
    """``jukebox_fast.EASE`` with implicit's interface."""

    model_class = models.EASE


class LinearAutoencoder(RecommenderBase):
    """``jukebox_fast.LinearAutoencoder`` (trained by Adam) with implicit's interface."""

    model_class = models.LinearAutoencoder


class Popularity(RecommenderBase):
    """``jukebox_fast.Popularity`` with implicit's interface."""

    model_class = models.Popularity
