"""The model contract: what every recommender offers, whatever makes its scores.

A model is a plain estimator in scikit-learn's manner: its constructor
stores each argument, unchanged, as the attribute of the same name; its
parameters, ``get_params``, ``set_params`` and ``repr`` come from the
``__init__`` signature (so a default is written once, there); values are
checked by ``check_params``, which ``fit`` calls. Learnt state lives in
attributes whose names end in ``_``; the ndarrays among them are what a
model file stores.

A family of models implements ``_check_params``, ``_fit``, ``_recommend``,
``_similar_items`` and ``memory_plan``; everything users call is here.
"""

from __future__ import annotations

import inspect
import os
import re
import typing

import numpy as np
import scipy.sparse as sp

from .. import cluster, runtime
from ..data import as_user_items


class Recommender:
    """A model that learns from play counts (users x items) and ranks unplayed items for any row of plays.

    Attributes
    ----------
    summary : str
        One line on what the model is (``--model``'s help).
    default_grid : dict
        ``tune``'s grid around the defaults: parameter name -> values.
    auto_search : bool
        Whether ``run`` chooses the model's ``regularization`` per log
        first (``jukebox_fast.auto``): for models whose fit is cheap enough
        to repeat on a part of the catalogue.
    relative_regularization : bool
        Whether ``regularization`` multiplies the mean diagonal of the
        (weighted) gram matrix, rather than being absolute.
    """

    summary = ""
    default_grid: dict = {}
    auto_search = False
    relative_regularization = False

    # --- parameters --------------------------------------------------------------------------

    @classmethod
    def parameters(cls) -> dict[str, inspect.Parameter]:
        """The constructor's parameters, by name, in order (defaults included)."""
        if cls.__init__ is object.__init__:
            return {}
        signature = inspect.signature(cls.__init__)
        return {
            name: p for name, p in signature.parameters.items()
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }

    @classmethod
    def parameter_types(cls) -> dict[str, object]:
        """The constructor's annotations, resolved: ``float``, ``int``, ``typing.Literal[...]``, ..."""
        hints = typing.get_type_hints(cls.__init__) if cls.parameters() else {}
        return {name: hints.get(name, object) for name in cls.parameters()}

    @classmethod
    def parameter_docs(cls) -> dict[str, str]:
        """Each parameter's description, one paragraph, from the class docstring's numpydoc ``Parameters`` section."""
        return parameter_docs(cls.__doc__ or "")

    def get_params(self, deep: bool = True) -> dict:
        """The model's parameters, ``{name: value}`` (``deep`` is accepted for scikit-learn's sake)."""
        return {name: getattr(self, name) for name in self.parameters()}

    def set_params(self, **params) -> Recommender:
        """Set parameters by name; returns self. They are checked at the next ``fit`` (or ``check_params``)."""
        known = self.parameters()
        for name, value in params.items():
            if name not in known:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; it has {', '.join(known)}")
            setattr(self, name, value)
        return self

    def check_params(self) -> None:
        """Raise ValueError, naming the parameter and the value, when a parameter is out of its range."""
        threads = getattr(self, "num_threads", 0)
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
            raise ValueError(f"num_threads must be an integer >= 0 (0: every core), got {threads!r}")
        self._check_params()

    def _threads(self):
        """``runtime.limit_threads`` for the model's ``num_threads`` (0, or none: as the process is set)."""
        return runtime.limit_threads(getattr(self, "num_threads", 0) or None)

    def _check_params(self) -> None:
        pass

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    # --- fitting and recommending ------------------------------------------------------------

    def fit(self, user_items: sp.sparray | sp.spmatrix, *, progress=None, executor=None) -> Recommender:
        """Learn from a (n_users, n_items) sparse matrix of play counts; returns self.

        Parameters
        ----------
        user_items : sparse (n_users, n_items)
            Positive play counts.
        progress : callable, optional
            Called as ``progress(done, total, message)`` from the long
            phases of the fit (the same lines go to the ``jukebox_fast``
            logger at INFO).
        executor : dask.distributed.Client or concurrent.futures.Executor, optional
            Where the fit's blocks run, for the models whose fit splits into
            blocks of items (the sparse model); the others fit here. The
            model learnt is the same to the bit (``jukebox_fast.cluster``).
        """
        self.check_params()
        user_items = as_user_items(user_items)
        blocks = None if executor is None else cluster.Blocks(executor)
        with runtime.reporting(progress), self._threads():
            self._fit_blocks(user_items, blocks)
        return self

    def _fit(self, user_items: sp.csr_array) -> None:
        raise NotImplementedError

    def _fit_blocks(self, user_items: sp.csr_array, blocks) -> None:
        """``_fit``, its blocks of work on a cluster where ``blocks`` (``cluster.Blocks``) is given and the fit splits."""
        self._fit(user_items)

    def is_fitted(self) -> bool:
        """Whether ``fit`` (or ``load``) has given the model its learnt state."""
        return hasattr(self, "item_popularity_")

    def _check_fitted(self):
        if not self.is_fitted():
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit first")

    @property
    def n_items(self) -> int:
        """The number of items (columns) the model was fit on."""
        self._check_fitted()
        return self.item_popularity_.shape[0]

    def recommend(
        self, user_items: sp.sparray | sp.spmatrix, k: int = 100, *, filter_seen: bool = True, items=None,
        executor=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best items for every row of ``user_items``.

        Parameters
        ----------
        user_items : sparse (n_users, n_items)
            Play counts of the users to recommend for, one row each: the
            users of the log the model was fit on, or any others (new
            users, or new plays of known ones). A row without plays gets
            the most popular items, scored by their number of listeners
            (a scale of its own, not comparable with other rows' scores).
        k : int
            Items per user; above the number of items, every item.
        filter_seen : bool
            Leave out the items a row has played.
        items : array-like of int, optional
            Rank only these items (distinct indices); default: all.
        executor : dask.distributed.Client or concurrent.futures.Executor, optional
            Score blocks of users there, the model sent to each worker once;
            the result is the same to the bit (``jukebox_fast.cluster``).

        Returns
        -------
        indices : ndarray, (n_users, min(k, n_items)), int32
            Item indices, best first; -1 past the end when a user has fewer
            items left.
        scores : ndarray, (n_users, min(k, n_items)), float32
            Their scores; -inf where the index is -1.
        """
        self._check_fitted()
        if not sp.issparse(user_items) and sp.issparse(k):
            raise TypeError(
                "recommend takes (user_items, k): the rows of plays first, then k; for implicit's "
                "(userid, user_items, N) order, use the classes of jukebox_fast.implicit"
            )
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        user_items = as_user_items(user_items, self.n_items)
        candidates = None if items is None else np.sort(self._item_indices(items, "items", distinct=True))
        # No more columns than items: a k such as 10**11 must not size the result arrays.
        k = int(min(k, self.n_items))
        if executor is not None:
            return cluster.recommend_blocks(cluster.Blocks(executor), self, user_items, k, filter_seen, candidates)
        with self._threads():
            return self._recommend(user_items, k, filter_seen, candidates)

    def _recommend(self, user_items, k, filter_seen, candidates):
        raise NotImplementedError

    def similar_items(self, items, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k items most similar to each of ``items``, the item itself left out.

        Parameters
        ----------
        items : int or array-like of int
            Item indices.
        k : int
            Similar items per item.

        Returns
        -------
        indices : ndarray, int32
            (len(items), min(k, n_items)), or (min(k, n_items),) for one item
            given as a scalar; best first, -1 past the end.
        scores : ndarray, float32
            Their similarities (the same shape); -inf where the index is -1.
        """
        self._check_fitted()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        scalar = np.ndim(items) == 0
        with self._threads():
            indices, scores = self._similar_items(self._item_indices(np.atleast_1d(items), "items"), int(min(k, self.n_items)))
        return (indices[0], scores[0]) if scalar else (indices, scores)

    def _similar_items(self, items, k):
        raise NotImplementedError

    def _item_indices(self, items, name, distinct=False):
        array = np.asarray(items)
        if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
            raise ValueError(f"{name} must be a 1-d sequence of item indices, got {items!r}")
        array = array.astype(np.int64)
        if array.size and (array.min() < 0 or array.max() >= self.n_items):
            raise ValueError(f"{name} must be indices in [0, {self.n_items}), got {array.min()}..{array.max()}")
        if distinct and np.unique(array).size != array.size:
            raise ValueError(f"{name} must be distinct")
        return array

    # --- cost and persistence ----------------------------------------------------------------

    def memory_plan(self, n_users: int, n_items: int, nnz: int, *, answered=None, k: int = 100):
        """The buffers that fitting on a (n_users, n_items) log of nnz plays adds, and recommending after it.

        ``answered`` is (users answered, their plays, their distinct
        numbers of plays); default: every user of the log. Returns a
        ``memory.MemoryPlan``; the run adds its own buffers (the output
        text, the threads' working memory) in ``memory.plan``.
        """
        raise NotImplementedError

    def save(self, path: str | os.PathLike, interactions=None) -> None:
        """Write the fitted model to ``path`` atomically, with the plays and ids of ``interactions`` when given.

        A file without plays serves the API (``load``, then ``recommend`` on
        any rows of plays); ``python -m jukebox_fast recommend`` needs the plays.
        """
        from ..persist import save_model

        save_model(path, self, interactions)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Recommender:
        """The model saved in ``path`` (by ``save`` or ``train``); raises ModelFileError for any other file."""
        from ..errors import ModelFileError
        from ..persist import load_model

        model, _ = load_model(path)
        if not isinstance(model, cls):
            raise ModelFileError(path, f"holds a {type(model).__name__} model, not a {cls.__name__}")
        return model


def parameter_docs(docstring: str) -> dict[str, str]:
    """``{name: description}`` from a numpydoc ``Parameters`` section, each description joined into one paragraph."""
    lines = inspect.cleandoc(docstring).splitlines()
    docs, name, inside = {}, None, False
    for line, underline in zip(lines, [*lines[1:], ""]):
        if not inside:
            inside = line.strip() == "Parameters" and set(underline.strip()) == {"-"}
            continue
        if set(line.strip()) == {"-"}:
            continue
        if line and not line[0].isspace():  # an entry (``name : type``), or the text after the section
            entry = re.match(r"(\w+)\s*:", line)
            if entry is None:
                break
            name = entry.group(1)
            docs[name] = ""
        elif name is not None and line.strip():
            docs[name] = f"{docs[name]} {line.strip()}".strip()
    return docs
