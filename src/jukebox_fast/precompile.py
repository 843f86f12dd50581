"""Compile (or load from the disk cache) the kernels of a later phase while an earlier one runs.

A first run on a machine compiles every kernel. When the kernels that run
from the fit on are not in Numba's disk cache yet, a second process
compiles them into it from the start, on the core the reading and its own
compiles leave idle (Numba compiles one function at a time per process);
the fit waits for it, because the LAPACK solve wants every core and a
compiling process beside it slows the solve down more than the wait costs.
When they are cached, a thread loads them during the fit. Each kernel is
called on empty arrays of exactly the types the real call passes, so the
real call finds its compiled version ready.
"""

import subprocess
import sys
import threading

import numpy as np


def kernels_from_fit():
    """The kernels that run from the fit on, each with empty arguments of its real call's types."""
    from .kernels.format import measure_lines, write_lines
    from .kernels.linalg import (
        accumulate_gram, add_normalized_rows, finish_ease_tiles, multiply_sparse_dense, quantize_rows, shift_scale_rows,
    )
    from .kernels.topk import select_topk_unseen

    i16, i32, i64, u8, f32 = np.int16, np.int32, np.int64, np.uint8, np.float32
    return [
        (accumulate_gram, (np.zeros(1, i64), np.zeros(0, i32), np.zeros(0, f32), np.zeros(1, i64), np.zeros(0, i32),
                           np.zeros(0, f32), np.zeros((0, 0), f32), 0, 1, True)),
        (finish_ease_tiles, (np.zeros((1, 1), f32), np.ones(1, f32), np.zeros(0, i64))),
        # EDLAE's item-kNN, at the end of its fit; the top-k also serves the recommendations.
        (select_topk_unseen, (np.zeros((0, 1), f32), np.zeros(1, i64), np.zeros(0, i32), np.zeros((0, 1), i32), np.zeros((0, 1), f32))),
        (add_normalized_rows, (np.zeros((1, 1), f32), np.zeros(0, i32), np.zeros((0, 1), i32), np.zeros((0, 1), f32), f32(0))),
        (quantize_rows, (np.zeros((0, 1), f32), np.zeros((0, 1), i16), np.zeros(0, f32), 0, 0)),
        (multiply_sparse_dense, (np.zeros(1, i64), np.zeros(0, i32), np.zeros(0, f32), np.zeros((1, 1), i16), np.zeros((0, 1), f32),
                                 np.zeros(1, f32))),
        (shift_scale_rows, (np.zeros((0, 1), f32), np.zeros(1, f32), np.zeros((1, 1), f32), np.zeros(0, i32))),
        (measure_lines, (np.zeros(1, i64), np.zeros(1, i64), np.zeros((0, 1), i32), np.zeros(0, i64))),
        (write_lines, (np.zeros(0, u8), np.zeros(1, i64), np.zeros(0, u8), np.zeros(1, i64), np.zeros((0, 1), i32),
                       np.zeros(0, i64), np.zeros(0, u8))),
    ]


def compile_from_fit():
    """Compile, or load from the cache, every kernel of ``kernels_from_fit``."""
    for kernel, args in kernels_from_fit():
        kernel(*args)


def _cached(kernel):
    # Numba's internal index of the kernel's cache file: empty when absent or stale.
    try:
        return bool(kernel._cache._cache_file._load_index())
    except Exception:  # another Numba version: assume not cached
        return False


class _Process:
    """The compiling process: the fit waits for it."""

    def __init__(self, process):
        self.process = process

    def before_fit(self):
        self.process.wait()

    def join(self):
        self.process.wait()


class _Thread(threading.Thread):
    """The loading thread: it runs during the fit, while LAPACK holds no GIL."""

    def before_fit(self):
        pass


def start_precompiling():
    """Start getting the kernels of the fit and after it ready.

    Returns a handle: call ``before_fit()`` before the fit and ``join()``
    after it; each waits for what must be ready by then.
    """
    from . import parallel

    if parallel.get_num_threads() > 1 and not all(_cached(kernel) for kernel, _ in kernels_from_fit()):
        try:
            code = "from jukebox_fast.precompile import compile_from_fit; compile_from_fit()"
            return _Process(
                subprocess.Popen(
                    [sys.executable, "-c", code],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )
        except OSError:
            pass  # no second process: a thread still overlaps the solve

    def load_all():
        try:
            compile_from_fit()
        except Exception:  # the real call will compile, and raise, on its own
            pass

    thread = _Thread(target=load_all, name="jukebox_fast-precompile", daemon=True)
    thread.start()
    return thread
