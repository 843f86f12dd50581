"""Threads for the kernels: every kernel releases the GIL, so Python threads run them in parallel."""

import os
from concurrent.futures import ThreadPoolExecutor

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
    """``parts`` contiguous (lo, hi) ranges covering range(n), as equal as can be, none empty."""
    parts = max(1, min(parts, n))
    edges = [n * p // parts for p in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def run_tasks(function, tasks):
    """``[function(*args) for args in tasks]``, the calls spread over the threads."""
    tasks = list(tasks)
    if len(tasks) <= 1 or get_num_threads() == 1:
        return [function(*args) for args in tasks]
    if _state["pool"] is None:
        _state["pool"] = ThreadPoolExecutor(get_num_threads(), thread_name_prefix="jukebox_fast")
    return list(_state["pool"].map(lambda args: function(*args), tasks))
