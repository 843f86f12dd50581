"""Compile (or load from the disk cache) the kernels of a later phase while an earlier one runs.

A first run on a machine compiles every kernel. The EASE solve spends
seconds in LAPACK with the GIL released; compiling the recommendation
kernels on another thread meanwhile hides most of their compile time.
Each kernel is called on empty arrays of exactly the types the real call
passes, so the real call finds its compiled version ready.
"""

import threading

import numpy as np


def kernels_after_fit():
    """The kernels that run after the fit, each with empty arguments of its real call's types."""
    from .kernels.format import measure_lines, write_lines
    from .kernels.linalg import finish_ease_tiles, multiply_sparse_dense
    from .kernels.parse import lookup_tokens
    from .kernels.topk import select_topk_unseen

    i32, i64, u8, u64, f32 = np.int32, np.int64, np.uint8, np.uint64, np.float32
    return [
        (finish_ease_tiles, (np.zeros((1, 1), f32), np.ones(1, f32), np.zeros(0, i64))),
        (lookup_tokens, (np.full(1, -1, i32), np.zeros(0, u8), np.zeros(1, i64), np.zeros(0, u64),
                         np.zeros(0, u8), np.zeros(0, i64), np.zeros(0, i64), np.zeros(0, u64), np.zeros(0, i64))),
        (multiply_sparse_dense, (np.zeros(1, i64), np.zeros(0, i32), np.zeros(0, f32), np.zeros((1, 1), f32), np.zeros((0, 1), f32))),
        (select_topk_unseen, (np.zeros((0, 1), f32), np.zeros(1, i64), np.zeros(0, i32), np.zeros((0, 1), i32), np.zeros((0, 1), f32))),
        (measure_lines, (np.zeros(1, i64), np.zeros(1, i64), np.zeros((0, 1), i32), np.zeros(0, i64))),
        (write_lines, (np.zeros(0, u8), np.zeros(1, i64), np.zeros(0, u8), np.zeros(1, i64), np.zeros((0, 1), i32),
                       np.zeros(0, i64), np.zeros(0, u8))),
    ]


def start_precompiling():
    """Start compiling the after-fit kernels on a daemon thread; returns the thread (join it when done)."""

    def compile_all():
        try:
            for kernel, args in kernels_after_fit():
                kernel(*args)
        except Exception:  # the real call will compile, and raise, on its own
            pass

    thread = threading.Thread(target=compile_all, name="jukebox_fast-precompile", daemon=True)
    thread.start()
    return thread
