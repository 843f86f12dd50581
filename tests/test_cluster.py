"""Blocks of the fit and of the scoring on an executor or a Dask cluster: the same bits as in one process."""

import concurrent.futures
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

from jukebox_fast import cluster
from jukebox_fast.example import generate_listens
from jukebox_fast.models import EDLAE, Popularity, SparseEDLAE
from jukebox_fast.models import sparse as sparse_model


def plays(n_users=2000, n_songs=300, seed=0):
    rng = np.random.default_rng(seed)
    popularity = rng.pareto(1.5, n_songs) + 0.05
    dense = rng.random((n_users, n_songs)) < np.minimum(0.6, 0.02 * popularity / popularity.mean())
    dense[np.arange(n_users) % 50 == 0] = False  # some users without plays
    counts = dense * rng.integers(1, 20, dense.shape)
    return sp.csr_array(counts.astype(np.int64))


@pytest.fixture
def small_blocks(monkeypatch):
    """Many blocks on a small log, as a large log has."""
    monkeypatch.setattr(sparse_model, "BLOCK_SONGS", 37)
    monkeypatch.setattr(cluster, "BLOCK_USERS", 113)


def assert_same_model(got, want):
    for name in ("weight_indptr_", "weight_indices_", "weight_data_", "item_offsets_", "item_popularity_"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


def assert_same_recommendations(model, X, executor, **kwargs):
    want = model.recommend(X, 20, **kwargs)
    got = model.recommend(X, 20, executor=executor, **kwargs)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_an_executor_must_submit():
    with pytest.raises(TypeError, match="submit"):
        SparseEDLAE().fit(plays(), executor=object())


def test_blocks_on_threads_give_the_same_bits(small_blocks):
    X = plays()
    local = SparseEDLAE(links=40).fit(X)
    with concurrent.futures.ThreadPoolExecutor(3) as executor:
        assert_same_model(SparseEDLAE(links=40).fit(X, executor=executor), local)
        for model in (local, EDLAE().fit(X), Popularity().fit(X)):
            assert_same_recommendations(model, X, executor)
        assert_same_recommendations(local, X, executor, filter_seen=False, items=np.arange(0, 300, 3))
        empty = local.recommend(X[:0], 5, executor=executor)
        assert empty[0].shape == (0, 5) and empty[1].shape == (0, 5)


def test_blocks_in_processes_give_the_same_bits(small_blocks):
    X = plays(seed=1)
    local = SparseEDLAE(links=40).fit(X)
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        assert_same_model(SparseEDLAE(links=40).fit(X, executor=executor), local)
        assert_same_recommendations(local, X, executor)


def test_importing_and_a_plain_run_load_no_dask(cli, tmp_path):
    script = (
        "import sys, jukebox_fast\n"
        "from jukebox_fast.cli import main\n"
        f"assert main(['run', '--example', '-q', '-o', {str(tmp_path / 'out.txt')!r}]) == 0\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "assert not loaded, loaded\n"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def small_log(folder):
    listens, users = generate_listens(n_users=300, n_songs=100, n_genres=5, seed=6)
    (folder / "plays.txt").write_bytes(listens)
    (folder / "users.txt").write_bytes(users)
    return folder / "plays.txt", folder / "users.txt"


def test_without_dask_the_cluster_options_say_how_to_install(tmp_path):
    import subprocess

    script = (
        "import sys\n"
        "sys.modules['distributed'] = None\n"  # as if not installed
        "from jukebox_fast.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "run", *map(str, small_log(tmp_path)), "--workers", "2", "-o",
         str(tmp_path / "out.txt")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "pip install 'jukebox_fast[distributed]'" in done.stderr
    assert not (tmp_path / "out.txt").exists()


# --- on a Dask cluster (skipped without jukebox_fast[distributed]) ----------------------------


@pytest.fixture(scope="module")
def dask():
    return pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client(dask):
    client = cluster.local_cluster(2)
    yield client
    client.close()
    client.cluster.close()


def test_a_dask_cluster_gives_the_same_bits(client, small_blocks):
    X = plays(seed=2)
    local = SparseEDLAE(links=40).fit(X)
    assert_same_model(SparseEDLAE(links=40).fit(X, executor=client), local)
    for model in (local, EDLAE().fit(X)):
        assert_same_recommendations(model, X, client)
    assert_same_recommendations(local, X, client, filter_seen=False, items=[5, 1, 7])


class EveryStep(cluster.runtime.Progress):
    def __init__(self, total, describe, quiet_for=5.0, every=20.0):
        super().__init__(total, describe, quiet_for=0.0, every=0.0)


def test_progress_counts_blocks_across_the_cluster(client, small_blocks, monkeypatch):
    monkeypatch.setattr(cluster.runtime, "Progress", EveryStep)
    lines = []
    X = plays(seed=3)
    model = SparseEDLAE(links=20).fit(X, executor=client, progress=lambda done, total, text: lines.append(text))
    for phase in ("co-occurrences", "solves"):  # 300 songs in blocks of 37
        said = [line for line in lines if line.startswith(phase)]
        assert [line.split(" blocks")[0] for line in said[:9]] == [f"{phase}: {i} of 9" for i in range(1, 10)]
    lines.clear()
    with cluster.runtime.reporting(lambda done, total, text: lines.append(text)):
        model.recommend(X, 10, executor=client)  # 2,000 users in blocks of 113
    assert lines[-1].startswith("scored 18 of 18 blocks of users")


def test_a_worker_killed_mid_run_costs_only_time(dask, small_blocks, monkeypatch):
    monkeypatch.setattr(cluster, "BLOCK_USERS", 40)
    X = plays(n_users=30000, n_songs=400, seed=4)
    model = EDLAE().fit(X)
    want = model.recommend(X, 50)
    client = cluster.local_cluster(2)
    try:
        pids = client.run(os.getpid)
        victim = sorted(pids)[0]
        killed = {}

        def kill_once_it_holds_results():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                held = client.has_what().get(victim, ())
                if any(key.startswith("_in_block") for key in map(str, held)):
                    os.kill(pids[victim], signal.SIGKILL)
                    killed["results held"] = len(held)
                    return
                time.sleep(0.002)

        killer = threading.Thread(target=kill_once_it_holds_results)
        killer.start()
        got = model.recommend(X, 50, executor=client)
        killer.join()
        assert killed, "the worker finished before it could be killed"
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    finally:
        client.close()
        client.cluster.close()


def test_the_command_line_on_two_workers_writes_the_same_bytes(dask, tmp_path):
    from jukebox_fast.cli import main

    listens, users = generate_listens(n_users=1500, n_songs=400, n_genres=12, seed=5)
    (tmp_path / "plays.txt").write_bytes(listens)
    (tmp_path / "users.txt").write_bytes(users)
    args = ["run", str(tmp_path / "plays.txt"), str(tmp_path / "users.txt"), "--model", "sparse", "-q", "-o"]
    assert main([*args, str(tmp_path / "one.txt")]) == 0
    assert main([*args, str(tmp_path / "two.txt"), "--workers", "2"]) == 0
    assert (tmp_path / "one.txt").read_bytes() == (tmp_path / "two.txt").read_bytes()
    model = tmp_path / "model.jbx"
    assert main(["train", str(tmp_path / "plays.txt"), str(model), "--model", "sparse", "-q", "--workers", "2"]) == 0
    assert main(["recommend", str(model), str(tmp_path / "users.txt"), "-q", "--workers", "2", "-o",
                 str(tmp_path / "saved.txt")]) == 0
    assert (tmp_path / "saved.txt").read_bytes() == (tmp_path / "one.txt").read_bytes()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_public_splits_on_two_workers_give_the_same_bytes(dask, cli, shared_data, tmp_path, seed):
    folder = shared_data / f"split-seed{seed}"
    args = ["run", folder / "listen_count.txt", folder / "user_ids.txt", "--model", "sparse", "-q", "-o"]
    one = cli(*args, tmp_path / "one.txt")
    two = cli(*args, tmp_path / "two.txt", "--workers", "2")
    assert one.returncode == 0 and two.returncode == 0, (one.stderr, two.stderr)
    assert (tmp_path / "one.txt").read_bytes() == (tmp_path / "two.txt").read_bytes()


def test_a_scheduler_that_cannot_be_reached_is_one_line_and_exit_2(dask, cli, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    done = cli("run", *small_log(tmp_path), "--scheduler", f"tcp://127.0.0.1:{port}", "-o", tmp_path / "out.txt")
    assert time.monotonic() - start < 60
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in lines[0], lines
    assert not (tmp_path / "out.txt").exists()
