"""Threads, memory and progress: the machine-facing side of a run."""

import contextlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass

from .errors import MemoryBudgetError, format_size


_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)

# What a run's memory plan (memory.py) does not count, set from the plan's total against the
# measured peak at several catalogue sizes (bench/memory_plan.py; docs/performance.md, "Memory"):
# - inside the process: the allocator's slack, BLAS's per-thread buffers, NumPy's temporaries;
PROCESS_HEADROOM = 256 * 2**20
# - in its address space (ulimit -v): thread stacks, the allocator's per-thread arenas and the
#   compiler's memory on a first run, reserved though little of them is touched;
ADDRESS_HEADROOM = 384 * 2**20
# - on the machine, when the budget is its free memory: other processes, the page cache of the
#   input file, the shell the run was started from. A tenth of the memory, 1 to 4 GiB.
MACHINE_RESERVE_SHARE = 0.1
MACHINE_RESERVE_RANGE = (1 * 2**30, 4 * 2**30)

_limit = {"bytes": None, "planned": False}


def parse_size(text):
    """Bytes of a size such as ``16G``, ``16GiB``, ``512M``, ``1.5g`` or ``123456`` (K, M, G, T: powers of 1024).

    Raises ValueError for anything else, or a size below 1 MiB.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"expected a size such as 16G or 512M, got {text!r}")
    value = float(match.group(1)) * 1024 ** "bkmgt".index(match.group(2).lower() or "b")
    if not 2**20 <= value < 2**63:
        raise ValueError(f"expected a size of at least 1M, got {text!r}")
    return int(value)


def _kib_fields(path, keys, missing):
    """The fields ``keys`` of a /proc file of ``Key:  123 kB`` lines, in bytes (``missing`` where absent)."""
    values = dict.fromkeys(keys, missing)
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in values:
                    values[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return values


def _process_memory():
    """The process's resident, virtual and data sizes in bytes (VmRSS, VmSize, VmData; 0 where unknown)."""
    return _kib_fields("/proc/self/status", ("VmRSS", "VmSize", "VmData"), 0)


def _meminfo():
    """/proc/meminfo's MemTotal and MemAvailable in bytes (None where unknown)."""
    return _kib_fields("/proc/meminfo", ("MemTotal", "MemAvailable"), None)


def _free_memory():
    """(room, total, what): the machine's memory free for this process and its size, the cgroup's where smaller.

    room is MemAvailable, or the cgroup's limit less its usage if less;
    total is MemTotal, or the cgroup's limit if less.
    """
    info = _meminfo()
    available, total, what = info["MemAvailable"], info["MemTotal"], "free memory (MemAvailable)"
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
            if available is None or room < available:
                available, what = room, "the cgroup's room"
            total = int(limit) if total is None else min(total, int(limit))
        break
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    if total is None:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return available, total, what


@dataclass(frozen=True)
class MemoryBudget:
    """What a run may still allocate: the tightest of the limits in force, less the headroom for what no plan counts.

    ``available`` is in bytes; ``limited_by`` says which limit set it, with
    its room and the headroom taken off, for messages.
    """

    available: int
    limited_by: str

    def __str__(self):
        return f"{format_size(self.available)} ({self.limited_by})"


def memory_budget():
    """The memory budget of this process now (``MemoryBudget``).

    The least of: the limit set with ``memory_limit`` (``--memory-limit``)
    less what the process holds, or else the machine's free memory
    (MemAvailable, the cgroup's room; v1 and v2) less a reserve for the
    rest of the machine; and the room left under RLIMIT_AS and RLIMIT_DATA
    (the soft limit less the process's virtual or data size). Each less
    the headroom for what the plan does not count.
    """
    sizes = _process_memory()
    candidates = []
    if _limit["bytes"] is not None:
        room = _limit["bytes"] - sizes["VmRSS"]
        candidates.append(
            (room - PROCESS_HEADROOM, f"--memory-limit {format_size(_limit['bytes'])} less {format_size(sizes['VmRSS'])} in use "
             f"and {format_size(PROCESS_HEADROOM)} of headroom")
        )
    else:
        room, total, what = _free_memory()
        low, high = MACHINE_RESERVE_RANGE
        reserve = min(max(int(MACHINE_RESERVE_SHARE * total), low), high)
        candidates.append(
            (room - reserve - PROCESS_HEADROOM, f"{what} {format_size(room)} less {format_size(reserve + PROCESS_HEADROOM)} of headroom")
        )
    try:
        import resource
    except ImportError:  # not on a POSIX system
        resource = None
    if resource is not None:
        for name, label, used_key in (("RLIMIT_AS", "the address-space limit (ulimit -v)", "VmSize"),
                                      ("RLIMIT_DATA", "the data-size limit (ulimit -d)", "VmData")):
            soft = resource.getrlimit(getattr(resource, name))[0]
            if soft != resource.RLIM_INFINITY and sizes[used_key]:
                room = soft - sizes[used_key]
                candidates.append(
                    (room - ADDRESS_HEADROOM, f"{label} {format_size(soft)}: {format_size(room)} left, less "
                     f"{format_size(ADDRESS_HEADROOM)} of headroom")
                )
    available, limited_by = min(candidates, key=lambda c: c[0])
    return MemoryBudget(max(int(available), 0), limited_by)


def resident_memory():
    """Bytes of memory the process holds now (VmRSS)."""
    return _process_memory()["VmRSS"]


def peak_memory():
    """The most memory the process has held so far, in bytes (``ru_maxrss``; 0 where unknown)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextlib.contextmanager
def memory_limit(n_bytes):
    """Within the block, the process may use ``n_bytes`` in all (None: what the machine has free).

    A size string such as ``"16G"`` is accepted too (``parse_size``).
    """
    if isinstance(n_bytes, str):
        n_bytes = parse_size(n_bytes)
    saved = _limit["bytes"]
    _limit["bytes"] = None if n_bytes is None else int(n_bytes)
    try:
        yield
    finally:
        _limit["bytes"] = saved


@contextlib.contextmanager
def planned(admitted=True):
    """Within the block, a memory plan (memory.py) has admitted the run: ``ensure_memory`` checks nothing.

    The models check their own buffers when used alone; after a plan that
    would count the headroom twice, against a process that has grown by
    the kernels it loaded since. ``admitted`` False (no plan was made)
    leaves the checks as they are.
    """
    saved = _limit["planned"]
    _limit["planned"] = saved or admitted
    try:
        yield
    finally:
        _limit["planned"] = saved


def is_planned():
    """Whether a memory plan has admitted the run in progress (``planned``)."""
    return _limit["planned"]


def ensure_memory(needed, what, advice):
    """Raise MemoryBudgetError when ``needed`` bytes exceed the memory budget (unless a plan admitted the run)."""
    if _limit["planned"]:
        return
    budget = memory_budget()
    if needed > budget.available:
        raise MemoryBudgetError(what, needed, budget.available, advice, budget.limited_by)


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

    from . import _parallel as parallel

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


_reporting = {"callback": None}


@contextlib.contextmanager
def reporting(callback):
    """Within the block, every ``Progress`` made also calls ``callback(done, total, message)`` (None: nothing more).

    ``Recommender.fit(progress=...)`` sets it; the logger lines go on as before.
    """
    saved = _reporting["callback"]
    _reporting["callback"] = callback if callback is not None else saved
    try:
        yield
    finally:
        _reporting["callback"] = saved


class Progress:
    """Progress of one long phase, as lines on the ``jukebox_fast`` logger (INFO) and calls of the callback.

    Nothing is said for a phase done within ``quiet_for`` seconds; after
    that a line at most every ``every`` seconds, with the time taken and
    the time left, and one at the end. Safe to advance from several
    threads. The command line shows these lines on stderr (not with
    ``-q``); a library user sees them by configuring logging, or passes a
    callback (``reporting``), which gets every line's numbers and text.

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
        self.callback = _reporting["callback"]
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
        self._say(done, f"{self.describe(done, self.total)} in {_duration(elapsed)}{left}")

    def finish(self):
        """The closing line, when any line was said."""
        if self.last is not None:
            self._say(self.total, f"{self.describe(self.total, self.total)} in {_duration(time.perf_counter() - self.start)}")

    def _say(self, done, message):
        logger.info(message)
        if self.callback is not None:
            self.callback(done, self.total, message)
