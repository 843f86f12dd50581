"""Threads for the kernels: every kernel releases the GIL, so Python threads run them in parallel."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_state = {"threads": None, "pool": None}


def get_num_threads():
    """Threads the kernels use: the ``--threads`` setting, else the cores this process may run on."""
    if _state["threads"] is None:
        try:
            _state["threads"] = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            _state["threads"] = os.cpu_count() or 1
    return _state["threads"]


def set_num_threads(n):
    """Use ``n`` threads for the kernels from now on (None: one per core)."""
    if n is not None and n < 1:
        raise ValueError(f"the number of threads must be positive, got {n}")
    _state["threads"] = n
    if _state["pool"] is not None:
        _state["pool"].shutdown()
        _state["pool"] = None


def split(n, parts):
    """At most ``parts`` contiguous (lo, hi) ranges covering range(n), as equal as can be, none empty."""
    if n == 0:
        return []
    parts = max(1, min(parts, n))
    edges = [n * p // parts for p in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def split_by_work(indptr, parts):
    """Contiguous (lo, hi) row ranges of a CSR matrix holding about equal numbers of entries (and rows).

    A row's work is its entries plus one, so empty rows still count.
    """
    n = indptr.size - 1
    parts = max(1, min(parts, n))
    work = indptr[1:] + np.arange(1, n + 1)  # cumulative entries + rows up to each row's end
    cuts = np.searchsorted(work, work[-1] * np.arange(1, parts) / parts) if n else np.zeros(0, np.int64)
    edges = [0, *(int(c) + 1 for c in cuts), n]
    return [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def run_tasks(function, tasks):
    """``[function(*args) for args in tasks]``, the calls spread over the threads."""
    tasks = list(tasks)
    if len(tasks) <= 1 or get_num_threads() == 1:
        return [function(*args) for args in tasks]
    if _state["pool"] is None:
        _state["pool"] = ThreadPoolExecutor(get_num_threads(), thread_name_prefix="jukebox_fast")
    return list(_state["pool"].map(lambda args: function(*args), tasks))
