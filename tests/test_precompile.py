import os
import subprocess
import sys

TYPES = """
import sys
from jukebox_fast.cli import main
from jukebox_fast.precompile import compile_after_fit, kernels_after_fit

compile_after_fit()
before = {kernel.py_func.__name__: list(kernel.signatures) for kernel, _ in kernels_after_fit()}
assert all(len(signatures) == 1 for signatures in before.values()), before
assert main(["run", "--example", "-q", "-o", sys.argv[1], "--model", sys.argv[2]]) == 0
after = {kernel.py_func.__name__: list(kernel.signatures) for kernel, _ in kernels_after_fit()}
print("same" if after == before else f"the real run compiled more: {after} != {before}")
"""

FIRST_RUN = """
import sys
from jukebox_fast.cli import main
from jukebox_fast.precompile import kernels_after_fit

assert main(["run", "--example", "-q", "-o", sys.argv[1], "--threads", "2"]) == 0
# finish_ease_tiles and the item-kNN kernels run inside the fit, which on this tiny log may end before
# the helper process has compiled them: then the run compiles them too. Everything after the fit
# waits for the helper.
IN_FIT = {"finish_ease_tiles", "select_topk_unseen", "add_normalized_rows"}
after = [kernel for kernel, _ in kernels_after_fit() if kernel.py_func.__name__ not in IN_FIT]
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


def test_a_first_run_finds_the_after_fit_kernels_compiled_by_the_helper_process(tmp_path):
    # An empty cache: the run itself must load, not compile, what the helper process compiled.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"))
    done = subprocess.run(
        [sys.executable, "-c", FIRST_RUN, str(tmp_path / "recs.txt")], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded"
