"""Threads, memory and progress: the machine-facing side of a run."""

import contextlib
import logging
import os
import threading
import time

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


logger = logging.getLogger("jukebox_fast")


def _duration(seconds):
    """'45s', '3m05s', '1h02m'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


class Progress:
    """Progress of one long phase, as lines on the ``jukebox_fast`` logger (INFO).

    Nothing is said for a phase done within ``quiet_for`` seconds; after
    that a line at most every ``every`` seconds, with the time taken and
    the time left, and one at the end. Safe to advance from several
    threads. The command line shows these lines on stderr (not with
    ``-q``); a library user sees them by configuring logging.

    ``describe(done, total)`` says what is done, e.g. "scored 1,000 of 5,000 users".
    """

    def __init__(self, total, describe, quiet_for=5.0, every=20.0):
        self.total = total
        self.describe = describe
        self.quiet_for = quiet_for
        self.every = every
        self.done = 0
        self.start = time.perf_counter()
        self.last = None
        self._lock = threading.Lock()

    def update(self, done):
        """Set the amount done so far."""
        self._record(done, 0)

    def advance(self, amount):
        """Add ``amount`` to the amount done."""
        self._record(None, amount)

    def _record(self, done, amount):
        with self._lock:
            self.done = done if done is not None else self.done + amount
            done = self.done
            now = time.perf_counter()
            elapsed = now - self.start
            if elapsed < self.quiet_for or (self.last is not None and now - self.last < self.every):
                return
            self.last = now
        left = f", about {_duration(elapsed * (self.total - done) / done)} left" if 0 < done < self.total else ""
        logger.info(f"{self.describe(done, self.total)} in {_duration(elapsed)}{left}")

    def finish(self):
        """The closing line, when any line was said."""
        if self.last is not None:
            logger.info(f"{self.describe(self.total, self.total)} in {_duration(time.perf_counter() - self.start)}")
