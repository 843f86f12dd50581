"""Inputs of the benchmarks: the official file when ../shared has it, else a synthetic one of its shape."""

import pathlib

import pytest

OFFICIAL = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jukebox" / "listen_count.txt"

_RATIOS = {}


@pytest.fixture(scope="session")
def ratios():
    """Name -> text of a ratio between two timings of this run, printed after the benchmarks' table."""
    return _RATIOS


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables
def pytest_terminal_summary(terminalreporter):
    if _RATIOS:
        terminalreporter.section("ratios, measured in this run")
        for name, text in _RATIOS.items():
            terminalreporter.line(f"{name}: {text}")


@pytest.fixture(scope="session")
def listens_path(tmp_path_factory):
    """The official listening log, or a synthetic one as large (20,278 users, 8,262 songs)."""
    if OFFICIAL.is_file():
        return OFFICIAL
    from jukebox_fast.example import generate_listens

    listens, _ = generate_listens(n_users=20278, n_songs=8262, n_genres=60, seed=1)
    path = tmp_path_factory.mktemp("bench") / "listen_count.txt"
    path.write_bytes(listens)
    return path


@pytest.fixture(scope="session")
def all_users_path(listens_path, tmp_path_factory):
    """A user list naming every user of the log once."""
    from jukebox_fast import read_listens

    path = tmp_path_factory.mktemp("bench") / "user_ids.txt"
    path.write_text("\n".join(read_listens(listens_path).users.tolist()) + "\n")
    return path


def pytest_collection_modifyitems(config, items):
    """Plain ``pytest`` runs the tests; ``pytest --benchmark-only`` runs these benchmarks."""
    if config.getoption("benchmark_only", default=False):
        return
    benchmarks = [item for item in items if item.nodeid.startswith("bench/")]
    if benchmarks:
        config.hook.pytest_deselected(items=benchmarks)
        items[:] = [item for item in items if not item.nodeid.startswith("bench/")]
