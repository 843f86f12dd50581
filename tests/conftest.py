import os
import pathlib
import subprocess
import sys

import pytest

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jukebox"
CHECKER = SHARED.parent.parent / "tools" / "check_recs.py"


@pytest.fixture(scope="session")
def shared_data():
    """Folder of the official data and its splits; the test is skipped when ../shared is absent."""
    if not (SHARED / "listen_count.txt").is_file():
        pytest.skip("../shared/data/jukebox is not here")
    return SHARED


@pytest.fixture(scope="session")
def checker(shared_data):
    """Path of the independent checker ../shared/tools/check_recs.py."""
    return CHECKER


@pytest.fixture(scope="session")
def cli():
    """``cli(*args)`` runs ``python -m jukebox_fast ARGS`` in a subprocess (see run_cli)."""
    return run_cli


def run_cli(*args, input=None, env=None, cwd=None):
    """``python -m jukebox_fast ARGS`` in a subprocess: CompletedProcess with bytes stdout/stderr."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "jukebox_fast", *map(str, args)],
        input=input, capture_output=True, env=full_env, cwd=cwd, timeout=600,
    )
