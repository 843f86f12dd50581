"""Compile (or load from the disk cache) the kernels of a later phase while an earlier one runs.

A first run on a machine compiles every kernel, and Numba compiles one
function at a time in a process. When the kernels are not in Numba's disk
cache yet (no ``ready_stamp`` file says they are), a second process starts
compiling them into it while this one reads (and compiles the parser): first the reader's last kernels, which
the read calls a second or more after it starts, then those that run from
the fit on (``kernels_of_first_run``). Once read, this process takes the
list from the last one back, and the two meet in the middle: each claims
a kernel before compiling it (a file created exclusively in a directory
they share), so none is compiled twice. The fit then waits for the
helper, because the LAPACK solve wants every core and a compiling process
beside it slows the solve down more than the wait costs. When the kernels
are cached, a thread loads the fit's and the recommendations' during the
fit. Each kernel is called on empty arrays of exactly the types the real
call passes, so the real call finds its compiled version ready.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading

import numpy as np


def kernels_from_fit():
    """The kernels that run from the fit on, each with empty arguments of its real call's types.

    The fit's own come first, then those of the recommendations (``kernels_of_recommend``).
    """
    from .kernels.linalg import accumulate_gram, add_normalized_rows, finish_ease_tiles

    i32, i64, f32 = np.int32, np.int64, np.float32
    return [
        (accumulate_gram, (np.zeros(1, i64), np.zeros(0, i32), np.zeros(0, f32), np.zeros(1, i64), np.zeros(0, i32),
                           np.zeros(0, f32), np.zeros((0, 0), f32), 0, 1, True)),
        (finish_ease_tiles, (np.zeros((1, 1), f32), np.ones(1, f32), np.zeros(0, i64), np.zeros(1))),
        # EDLAE's item-kNN, at the end of its fit (it selects with the recommendations' top-k).
        (add_normalized_rows, (np.zeros((1, 1), f32), np.zeros(0, i32), np.zeros((0, 1), i32), np.zeros((0, 1), f32), f32(0))),
        *kernels_of_recommend(),
    ]


def kernels_of_recommend():
    """The kernels that look up the users, then score, select and write their recommendations, as ``kernels_from_fit``."""
    from .kernels.format import measure_lines, write_lines
    from .kernels.linalg import multiply_sparse_dense, quantize_rows_by_bits, shift_scale_rows
    from .kernels.parse import lookup_tokens
    from .kernels.topk import scratch, select_topk_rows
    from .kernels.users import user_neighbour_scores

    i16, i32, i64, u8, u64, f32 = np.int16, np.int32, np.int64, np.uint8, np.uint64, np.float32
    return [
        (lookup_tokens, (np.full(2, -1, i32), np.zeros(0, u8), np.zeros(1, i64), np.zeros(0, u64), np.zeros(0, u8), np.zeros(0, i64),
                         np.zeros(0, i64), np.zeros(0, u64), np.zeros(0, i64))),
        (select_topk_rows, (np.zeros((0, 1), f32), np.zeros((0, 1), np.uint32), np.zeros(1, i64), np.zeros(0, i32),
                            np.zeros((0, 1), i32), np.zeros((0, 1), f32), *scratch(1))),
        (quantize_rows_by_bits, (np.zeros((0, 1), f32), np.zeros((0, 1), i32), np.zeros((0, 1), i16), np.zeros(0, f32), 0, 0)),
        (multiply_sparse_dense, (np.zeros(1, i64), np.zeros(0, i32), np.zeros(0, f32), np.zeros((1, 1), i16), np.zeros((0, 1), f32),
                                 np.zeros(1, f32))),
        (shift_scale_rows, (np.zeros((0, 1), f32), np.zeros(1, f32), np.zeros((1, 1), f32), np.zeros(0, i32))),
        # EDLAE's votes of similar users, which the search tries on logs of up to 100,000 users.
        (user_neighbour_scores, (np.zeros(1, i64), np.zeros(0, i32), np.zeros(1, i64), np.zeros(0, i32), np.zeros(1, i64),
                                 np.zeros(0, i32), 1, np.zeros((0, 1), f32), np.zeros(0, i32), np.zeros(0, i32), np.zeros(0, f32),
                                 np.zeros(0, np.uint32), np.zeros(0, u64))),
        (measure_lines, (np.zeros(1, i64), np.zeros(1, i64), np.zeros((0, 1), i32), np.zeros(0, i64))),
        (write_lines, (np.zeros(0, u8), np.zeros(1, i64), np.zeros(0, u8), np.zeros(1, i64), np.zeros((0, 1), i32),
                       np.zeros(0, i64), np.zeros(0, u8))),
    ]


def kernels_late_in_read():
    """The kernels that ``read_listens`` calls after its parser, as ``kernels_from_fit``.

    A first run's helper process compiles these first: the read calls
    them once it has compiled and run the parser, by when the helper has
    them in the cache.
    """
    from .kernels.parse import count_buckets, rehash_table, rows_of_buckets, scatter_buckets

    i32, i64, u64 = np.int32, np.int64, np.uint64
    return [
        (rehash_table, (np.zeros(0, u64), np.full(2, -1, i32))),
        (count_buckets, (np.zeros(0, i32), 0, 0, 0, np.zeros(1, i64))),
        (scatter_buckets, (np.zeros(0, i32), np.zeros(0, i32), np.zeros(0, i64), 0, 0, 0, 1, np.zeros(1, i64), np.zeros(0, u64),
                           np.zeros(0, i64))),
        (rows_of_buckets, (np.zeros(0, u64), np.zeros(0, i64), np.zeros(1, i64), 0, 0, 0, 1, 0, np.zeros(1, i64), np.zeros(0, i64),
                           np.zeros(0, i64), np.zeros(0, i64), np.zeros(0, u64), np.zeros(0, i64), np.zeros((1, 1), i64))),
    ]


def kernels_of_first_run():
    """The list a first run shares between its two processes: ``kernels_late_in_read``, then ``kernels_from_fit``."""
    return kernels_late_in_read() + kernels_from_fit()


def compile_from_fit(kernels=kernels_from_fit):
    """Compile, or load from the cache, every kernel that ``kernels()`` lists (by default ``kernels_from_fit``)."""
    for kernel, args in kernels():
        kernel(*args)


def compile_claimed(claims, backwards=False):
    """Compile each kernel of ``kernels_of_first_run`` (from the last one with ``backwards``) that no process has claimed.

    A kernel is claimed by creating the file of its name in the directory
    ``claims``; whoever creates it compiles it. Once the directory is gone,
    nothing more is compiled.
    """
    kernels = kernels_of_first_run()
    for kernel, args in reversed(kernels) if backwards else kernels:
        try:
            os.close(os.open(os.path.join(claims, kernel.py_func.__name__), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        except FileNotFoundError:  # the run has ended
            return
        kernel(*args)


def ready_stamp():
    """The file whose presence says that the kernels of a first run are in Numba's disk cache.

    Written once a run with a helper process has compiled them all. Its
    name depends on everything that makes Numba compile anew: the
    versions of jukebox_fast, Numba and Python, the kernels' source files
    (their size and time) and Numba's cache directory, so that a change to
    any of them makes the next run a first run again. It lies in
    ``NUMBA_CACHE_DIR`` when that is set, else in the user's cache
    directory (``$XDG_CACHE_HOME`` or ``~/.cache``).
    """
    import hashlib
    import platform

    import numba

    from . import __version__, kernels

    numba_cache = os.environ.get("NUMBA_CACHE_DIR", "")
    sources = os.path.dirname(kernels.__file__)
    key = [__version__, numba.__version__, sys.version, platform.machine(), numba_cache]
    for name in sorted(os.listdir(sources)):
        if name.endswith(".py"):
            stat = os.stat(os.path.join(sources, name))
            key.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:16]
    directory = numba_cache or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "jukebox_fast"
    )
    return os.path.join(directory, f"kernels-{digest}.ready")


def _mark_ready():
    try:
        stamp = ready_stamp()
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        with open(stamp, "w") as f:
            f.write("the kernels of a first run are in Numba's cache\n")
    except OSError:  # nowhere to write: every run shares its compiling, as a first run does
        pass


class _Process:
    """The compiling process: this one shares its list before the fit, and the fit waits for it."""

    def __init__(self, process, claims):
        self.process, self.claims = process, claims

    def before_fit(self):
        try:
            compile_claimed(self.claims, backwards=True)
        finally:
            self.join()
        if self.process.returncode == 0:
            _mark_ready()

    def join(self):
        self.process.wait()
        shutil.rmtree(self.claims, ignore_errors=True)

    def abandon(self):
        """The run failed: stop the helper now (Numba writes each cache file whole, by a rename)."""
        self.process.kill()
        self.join()


class _Thread(threading.Thread):
    """The loading thread: started with the fit, it loads while LAPACK holds no GIL, not while the reader needs it."""

    def before_fit(self):
        self.start()

    def abandon(self):
        pass  # a daemon thread: it ends with the process


def start_precompiling():
    """Start getting the kernels ready: on a first run, the read's last ones and all from the fit on; else the fit's and after.

    Returns a handle: call ``before_fit()`` before the fit and ``join()``
    after it; each waits for what must be ready by then. When the run
    fails before ``join()``, call ``abandon()``.
    """
    from . import _parallel as parallel

    if parallel.get_num_threads() > 1 and not os.path.exists(ready_stamp()):
        claims = None
        try:
            claims = tempfile.mkdtemp(prefix="jukebox_fast-compiling-")
            # Then out at once: Numba has written each cache file whole, and the fit waits for this exit.
            code = "import os, sys; from jukebox_fast._precompile import compile_claimed; compile_claimed(sys.argv[1]); os._exit(0)"
            return _Process(
                subprocess.Popen(
                    [sys.executable, "-c", code, claims],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ),
                claims,
            )
        except OSError:  # no second process: a thread still overlaps the solve
            if claims is not None:
                shutil.rmtree(claims, ignore_errors=True)

    return _Thread(target=_load_all, name="jukebox_fast-precompile", daemon=True)


def _load_all(kernels=kernels_from_fit):
    try:
        compile_from_fit(kernels)  # the list too: its imports hold the GIL, better here than in the caller
    except Exception:  # the real call will compile, and raise, on its own
        pass


def load_in_background():
    """Start a thread that loads the kernels of the recommendations, for a run that reads a fitted model.

    Reading and checking the model file hold no GIL, so Numba's start-up
    and the loads happen beside them.
    """
    thread = threading.Thread(target=_load_all, args=(kernels_of_recommend,), name="jukebox_fast-precompile", daemon=True)
    thread.start()
    return thread
