import os
import subprocess
import sys
from types import SimpleNamespace

TYPES = """
import sys
from jukebox_fast.cli import main
from jukebox_fast._precompile import compile_from_fit, kernels_of_first_run

compile_from_fit(kernels_of_first_run)
before = {kernel.py_func.__name__: list(kernel.signatures) for kernel, _ in kernels_of_first_run()}
assert all(len(signatures) == 1 for signatures in before.values()), before
assert main(["run", "--example", "-q", "-o", sys.argv[1], "--model", sys.argv[2]]) == 0
after = {kernel.py_func.__name__: list(kernel.signatures) for kernel, _ in kernels_of_first_run()}
print("same" if after == before else f"the real run compiled more: {after} != {before}")
"""

FIRST_RUN = """
import sys
from jukebox_fast.cli import main
from jukebox_fast._precompile import kernels_from_fit, kernels_of_first_run

assert main(["run", "--example", "-q", "-o", sys.argv[1], "--threads", "2"]) == 0
# The helper process compiles the list from its start, the read's last kernels first, and this one
# from its end once it has read; the fit waits for both. Each kernel was compiled here (a cache
# miss) or loaded (a hit) once, and the fit's ones compiled here are the list's tail.
kernels = [kernel for kernel, _ in kernels_of_first_run()]
misses = [sum(kernel.stats.cache_misses.values()) for kernel in kernels]
hits = [sum(kernel.stats.cache_hits.values()) for kernel in kernels]
# The read's kernels (the list's head) were compiled or loaded at most once: a log may need no rehash.
n_read = len(kernels) - len(kernels_from_fit())
fit = misses[n_read:]
shared = (
    all(m + h <= 1 for m, h in zip(misses[:n_read], hits))
    and all(m + h == 1 for m, h in zip(fit, hits[n_read:]))
    and fit == sorted(fit)
)
print("shared" if shared else f"misses {misses} hits {hits}")
"""


def test_precompiled_types_are_the_ones_the_run_uses(tmp_path):
    # A fresh process, so no earlier test has compiled other signatures.
    for model in ("ease", "edlae"):
        done = subprocess.run(
            [sys.executable, "-c", TYPES, str(tmp_path / "recs.txt"), model], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "same"


def test_a_first_run_shares_its_kernels_with_the_helper_process(tmp_path):
    # An empty cache: the run compiles its share, and loads, not compiles, what the helper did.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"))
    done = subprocess.run(
        [sys.executable, "-c", FIRST_RUN, str(tmp_path / "recs.txt")], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "shared"


class _FakeKernel:
    """Stands for a Numba kernel: its function's name, and a call that records itself."""

    def __init__(self, name, calls):
        self.py_func, self.calls = SimpleNamespace(__name__=name), calls

    def __call__(self):
        self.calls.append(self.py_func.__name__)


def test_compile_claimed_compiles_each_unclaimed_kernel_once(tmp_path, monkeypatch):
    from jukebox_fast import _precompile as precompile

    calls = []
    kernels = [(_FakeKernel(f"kernel{i}", calls), ()) for i in range(5)]
    monkeypatch.setattr(precompile, "kernels_of_first_run", lambda: kernels)
    (tmp_path / "kernel1").touch()  # claimed by the other process
    precompile.compile_claimed(str(tmp_path), backwards=True)
    assert calls == ["kernel4", "kernel3", "kernel2", "kernel0"]
    precompile.compile_claimed(str(tmp_path))
    assert len(calls) == 4  # all claimed now
    precompile.compile_claimed(str(tmp_path / "ended"))  # the run is over: nothing, and no error
    assert len(calls) == 4


def test_a_failing_first_run_stops_the_helper_and_leaves_nothing_behind(tmp_path):
    (tmp_path / "tmp").mkdir()
    (tmp_path / "plays.txt").write_text("u1 s1 3\nu2 s2 x\n")
    (tmp_path / "users.txt").write_text("u1\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"), TMPDIR=str(tmp_path / "tmp"))
    done = subprocess.run(
        [sys.executable, "-m", "jukebox_fast", "run", str(tmp_path / "plays.txt"), str(tmp_path / "users.txt"), "--threads", "2"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"jukebox_fast: error: {tmp_path / 'plays.txt'}:2: expected '<user_id> <song_id> <count>' with a count that is "
        "a whole number from 1 to 2**63-1, got the count 'x' in 'u2 s2 x'"
    ]
    assert not list((tmp_path / "tmp").iterdir())  # the helper's claims are gone
