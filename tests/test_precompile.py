import os
import subprocess
import sys

TYPES = """
import sys
from jukebox_fast.cli import main
from jukebox_fast.precompile import compile_from_fit, kernels_from_fit

compile_from_fit()
before = {kernel.py_func.__name__: list(kernel.signatures) for kernel, _ in kernels_from_fit()}
assert all(len(signatures) == 1 for signatures in before.values()), before
assert main(["run", "--example", "-q", "-o", sys.argv[1], "--model", sys.argv[2]]) == 0
after = {kernel.py_func.__name__: list(kernel.signatures) for kernel, _ in kernels_from_fit()}
print("same" if after == before else f"the real run compiled more: {after} != {before}")
"""

FIRST_RUN = """
import sys
from jukebox_fast.cli import main
from jukebox_fast.precompile import kernels_from_fit

assert main(["run", "--example", "-q", "-o", sys.argv[1], "--threads", "2"]) == 0
# The fit waits for the helper process, so every kernel from the fit on is loaded, none compiled.
after = [kernel for kernel, _ in kernels_from_fit()]
misses = {kernel.py_func.__name__: sum(kernel.stats.cache_misses.values()) for kernel in after}
hits = {kernel.py_func.__name__: sum(kernel.stats.cache_hits.values()) for kernel in after}
print("loaded" if not any(misses.values()) and all(hits.values()) else f"misses {misses} hits {hits}")
"""


def test_precompiled_types_are_the_ones_the_run_uses(tmp_path):
    # A fresh process, so no earlier test has compiled other signatures.
    for model in ("ease", "edlae"):
        done = subprocess.run(
            [sys.executable, "-c", TYPES, str(tmp_path / "recs.txt"), model], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "same"


def test_a_first_run_finds_the_fit_kernels_compiled_by_the_helper_process(tmp_path):
    # An empty cache: the run itself must load, not compile, what the helper process compiled.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"))
    done = subprocess.run(
        [sys.executable, "-c", FIRST_RUN, str(tmp_path / "recs.txt")], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded"
