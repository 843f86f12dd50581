import subprocess
import sys

CHECK = """
import sys
from jukebox_fast.cli import main
from jukebox_fast.precompile import kernels_after_fit, start_precompiling

start_precompiling().join()
before = {kernel.py_func.__name__: list(kernel.signatures) for kernel, _ in kernels_after_fit()}
assert all(len(signatures) == 1 for signatures in before.values()), before
assert main(["run", "--example", "-q", "-o", sys.argv[1], "--model", sys.argv[2]]) == 0
after = {kernel.py_func.__name__: list(kernel.signatures) for kernel, _ in kernels_after_fit()}
print("same" if after == before else f"the real run compiled more: {after} != {before}")
"""


def test_precompiled_types_are_the_ones_the_run_uses(tmp_path):
    # A fresh process, so no earlier test has compiled other signatures.
    for model in ("ease", "edlae"):
        done = subprocess.run(
            [sys.executable, "-c", CHECK, str(tmp_path / "recs.txt"), model], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "same"
