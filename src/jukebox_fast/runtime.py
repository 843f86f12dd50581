"""Threads and memory: the machine-facing settings of a run."""

import contextlib
import os

from .errors import MemoryBudgetError


_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def available_memory():
    """Bytes of memory this process can still allocate: MemAvailable, capped by the cgroup limit."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    # cgroup v2, then v1 (whose "no limit" is a huge number, harmless in the min)
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            with open(limit_file) as f:
                limit = f.read().strip()
            with open(usage_file) as f:
                used = int(f.read())
        except (OSError, ValueError):
            continue
        if limit.isdigit():
            room = max(int(limit) - used, 0)
            available = room if available is None else min(available, room)
        break
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return available


def ensure_memory(needed, what, advice):
    """Raise MemoryBudgetError when ``needed`` bytes exceed what is available."""
    available = available_memory()
    if needed > available:
        raise MemoryBudgetError(what, needed, available, advice)


def solver_threads():
    """BLAS threads of the Cholesky solve: every core this process may run on, whatever --threads says."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def limit_threads(n_threads):
    """Run the block with ``n_threads`` kernel and BLAS threads (None: leave them as they are).

    The EASE solve is the exception: it always runs on ``solver_threads()``
    so that its rounding, and the recommendations, never depend on this.
    """
    if n_threads is None:
        yield
        return
    import scipy.linalg  # noqa: F401  (threadpoolctl limits only the BLAS libraries already loaded)
    from threadpoolctl import threadpool_limits

    from . import parallel

    previous = parallel.get_num_threads()
    parallel.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        parallel.set_num_threads(previous)
