"""The whole job on the official log for every user, against the problem's own approach and the floor.

- ``run``: python -m jukebox_fast run's pipeline with its default model, in
  process, kernels compiled; and the command itself, a fresh process each
  time (Python, imports and Numba's start-up included; kernels cached).
- floor: a bare float32 potrf + potri of the same n x n gram matrix, the one
  piece of work that cannot be avoided. Each run's ratio to it is printed
  after the table ("ratios, measured in this run").
- cold: the command on an empty Numba cache (every kernel compiled), each
  time beside a warm run on the cache it filled; the ratio is printed too.
- baseline: the problem's own EASE solution (pandas, log weights, float64
  np.linalg.inv, dense scores, a full argsort per user).
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from jukebox_fast import EDLAE, read_listens, weigh
from jukebox_fast.models.ease import gram_matrix
from jukebox_fast.pipeline import run


@pytest.fixture(scope="module")
def floor():
    """``{"seconds": ...}`` once ``test_floor_potrf_potri`` has run."""
    return {}


def report_ratio(ratios, floor, name, seconds):
    if "seconds" in floor:
        ratios[name] = f"{seconds:.2f} s = {seconds / floor['seconds']:.2f}x the floor ({floor['seconds']:.2f} s, best of 3 each)"


def reference_solution(listens_path, user_ids_path, k=100, lam=30.0):
    import pandas as pd
    import scipy.sparse as sp

    frame = pd.read_csv(listens_path, sep=" ", header=None, names=["user", "song", "count"], dtype={"user": str, "song": str})
    users, user_ids = pd.factorize(frame["user"])
    songs, song_ids = pd.factorize(frame["song"])
    weights = 1 + np.log(1 + frame["count"].to_numpy())
    X = sp.csr_array((weights, (users, songs)), shape=(len(user_ids), len(song_ids)))
    G = (X.T @ X).toarray() + lam * np.eye(len(song_ids))
    P = np.linalg.inv(G)
    B = -P / np.diag(P)
    np.fill_diagonal(B, 0)
    index = {u: i for i, u in enumerate(user_ids)}
    lines = []
    with open(user_ids_path) as f:
        requested = f.read().split()
    for u in requested:
        row = X[[index[u]]]
        scores = row @ B
        scores[0, row.indices] = -np.inf
        scores = scores[0]
        lines.append(" ".join([u] + [song_ids[j] for j in np.argsort(-scores, kind="stable")[:k]]))
    return "\n".join(lines) + "\n"


# The floor first: the run's benchmarks below report their ratio to it.
@pytest.mark.benchmark(group="run")
def test_floor_potrf_potri(benchmark, listens_path, floor):
    from scipy.linalg import lapack

    gram = gram_matrix(weigh(read_listens(listens_path).user_items, "binary"))
    gram.reshape(-1)[:: gram.shape[0] + 1] += 100

    def inverse(a):
        factor, info = lapack.spotrf(a, lower=1, clean=0, overwrite_a=1)
        inv, info2 = lapack.spotri(factor, lower=1, overwrite_c=1)
        return info + info2

    assert benchmark.pedantic(inverse, setup=lambda: ((gram.copy(order="F"),), {}), rounds=3) == 0
    floor["seconds"] = benchmark.stats.stats.min


@pytest.mark.benchmark(group="run")
def test_run_all_users(benchmark, listens_path, all_users_path, floor, ratios):
    def job():
        text, _ = run(listens_path, all_users_path, EDLAE())
        return text

    job()  # compile and cache the kernels first: this is the warm time
    text = benchmark.pedantic(job, rounds=3)
    report_ratio(ratios, floor, "run, in process, warm", benchmark.stats.stats.min)
    lines = bytes(text).decode().splitlines()
    plays = read_listens(listens_path)
    assert len(lines) == len(plays.users)
    first = lines[0].split()
    played = {plays.songs[j] for j in plays.user_items[[0]].indices}
    assert first[0] == plays.users[0] and len(first) == 101 and not played & set(first[1:])


@pytest.mark.benchmark(group="run")
def test_command_all_users(benchmark, listens_path, all_users_path, tmp_path, floor, ratios):
    output = tmp_path / "recs.txt"
    command = [sys.executable, "-m", "jukebox_fast", "run", str(listens_path), str(all_users_path), "-o", str(output), "-q"]
    subprocess.run(command, check=True)  # compile and cache the kernels first: this is the warm time
    benchmark.pedantic(subprocess.run, args=(command,), kwargs={"check": True}, rounds=3)
    report_ratio(ratios, floor, "the command, fresh process, warm", benchmark.stats.stats.min)
    assert output.read_text().count("\n") == len(read_listens(listens_path).users)


@pytest.mark.benchmark(group="run-cold")
def test_command_cold_against_warm(benchmark, listens_path, all_users_path, tmp_path, ratios):
    # Each cold round gets an empty Numba cache of its own; a warm run follows it on the cache
    # it filled, so the ratio compares runs taken side by side.
    output = tmp_path / "recs.txt"
    command = [sys.executable, "-m", "jukebox_fast", "run", str(listens_path), str(all_users_path), "-o", str(output), "-q"]
    caches, warm = [], []

    def empty_cache():
        caches.append(tmp_path / f"numba_cache{len(caches)}")
        return (command,), {"check": True, "env": dict(os.environ, NUMBA_CACHE_DIR=str(caches[-1]))}

    def cold_then_time_warm(*args, **kwargs):
        subprocess.run(*args, **kwargs)
        start = time.perf_counter()
        subprocess.run(*args, **kwargs)
        warm.append(time.perf_counter() - start)

    benchmark.pedantic(cold_then_time_warm, setup=empty_cache, rounds=3)
    # The benchmark timed cold + warm; the cold part is that less the warm run timed inside.
    cold = [total - w for total, w in zip(benchmark.stats.stats.data, warm)]
    benchmark.extra_info["cold s"], benchmark.extra_info["warm s"] = cold, warm
    ratios["cold against warm, the command"] = (
        f"{min(cold):.2f} s against {min(warm):.2f} s = {min(cold) / min(warm):.2f}x "
        f"(pairs: {', '.join(f'{c / w:.2f}x' for c, w in zip(cold, warm))})"
    )
    assert output.read_text().count("\n") == len(read_listens(listens_path).users)


@pytest.mark.benchmark(group="run-baseline")
def test_reference_solution_baseline(benchmark, listens_path, all_users_path):
    pytest.importorskip("pandas")
    text = benchmark.pedantic(reference_solution, args=(listens_path, all_users_path), rounds=1)
    assert text.count("\n") == len(read_listens(listens_path).users)
