"""Threads, the memory budget and progress: ``runtime``."""

import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest

from jukebox_fast import _parallel as parallel
from jukebox_fast import runtime

MiB = 2**20


def limited(script, limit):
    """``script`` run under an address-space limit of ``limit`` bytes, set before anything else."""
    return f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit})); " + script


def test_progress_says_nothing_for_a_short_phase_then_lines_and_a_last_one(caplog, monkeypatch):
    clock = iter([0.0, 1.0, 6.0, 7.0, 30.0, 31.0])
    monkeypatch.setattr(runtime, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    calls = []
    with caplog.at_level(logging.INFO, logger="jukebox_fast"), runtime.reporting(lambda *call: calls.append(call)):
        progress = runtime.Progress(4, lambda done, total: f"did {done} of {total}")
        progress.advance(1)  # 1 s: quiet
        progress.advance(1)  # 6 s: a line
        progress.advance(1)  # 7 s: within 20 s of the last line
        progress.finish()  # 30 s
    assert [r.getMessage() for r in caplog.records] == ["did 2 of 4 in 6s, about 6s left", "did 4 of 4 in 30s"]
    assert calls == [(2, 4, "did 2 of 4 in 6s, about 6s left"), (4, 4, "did 4 of 4 in 30s")]


def test_reporting_nests_and_ends_with_its_block():
    outer, inner = [], []
    with runtime.reporting(outer.append):
        with runtime.reporting(inner.append):
            assert runtime.Progress(1, str).callback == inner.append
        with runtime.reporting(None):  # None keeps the callback in force
            assert runtime.Progress(1, str).callback == outer.append
    assert runtime.Progress(1, str).callback is None


def test_limit_threads_sets_and_restores_the_kernel_threads():
    before = parallel.get_num_threads()
    with runtime.limit_threads(1):
        assert parallel.get_num_threads() == 1
    assert parallel.get_num_threads() == before


def test_the_budget_is_the_tightest_limit_less_its_headroom():
    # The process's size is read just before and just after the budget: the budget is the limit less
    # a size between the two (the interpreter may map more memory in between), less the headroom.
    script = (
        "import resource; from jukebox_fast import runtime; "
        "before = runtime._process_memory()['VmSize']; budget = runtime.memory_budget(); "
        "after = runtime._process_memory()['VmSize']; "
        "print(budget.available); print(budget.limited_by); print(before); print(after)"
    )
    free = runtime.memory_budget()
    assert 0 < free.available and free.limited_by.startswith(("free memory (MemAvailable)", "the cgroup's room"))
    probe = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    size = int(probe.stdout.split("\n")[3])
    limit = size + runtime.ADDRESS_HEADROOM + 300 * MiB
    probe = subprocess.run([sys.executable, "-c", limited(script, limit)], capture_output=True, text=True, check=True)
    available, limited_by, before, after = probe.stdout.split("\n")[:4]
    assert limit - int(after) <= int(available) + runtime.ADDRESS_HEADROOM <= limit - int(before)
    assert limited_by.startswith("the address-space limit (ulimit -v)")


def test_memory_limit_replaces_the_free_memory_and_nests():
    with runtime.memory_limit("2G"):
        budget = runtime.memory_budget()
        assert budget.available <= 2 * 2**30 - runtime.PROCESS_HEADROOM
        assert budget.limited_by.startswith("--memory-limit 2.0 GiB less ")
        with runtime.memory_limit(None):
            assert not runtime.memory_budget().limited_by.startswith("--memory-limit")
        assert runtime.memory_budget().limited_by.startswith("--memory-limit 2.0 GiB")
    assert not runtime.memory_budget().limited_by.startswith("--memory-limit")


@pytest.mark.parametrize(
    "text, size",
    [("16G", 16 * 2**30), ("16GiB", 16 * 2**30), ("16gb", 16 * 2**30), ("512M", 512 * MiB), ("1.5g", 3 * 2**29),
     ("2048k", 2 * MiB), ("1T", 2**40), (str(5 * MiB), 5 * MiB), (" 3G ", 3 * 2**30)],
)
def test_sizes_are_read_in_powers_of_1024(text, size):
    assert runtime.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "16X", "-1G", "1e9", "16 G B", "100", "0.5M", "nan"])
def test_sizes_that_are_not_sizes_are_refused(text):
    with pytest.raises(ValueError, match="expected a size"):
        runtime.parse_size(text)
