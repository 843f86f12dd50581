"""The whole job on the official log for every user, against the problem's own approach and the floor.

- ``run``: python -m jukebox_fast run's pipeline with its default model, in
  process, kernels compiled; and the command itself, a fresh process each
  time (Python, imports and Numba's start-up included; kernels cached).
- floor: a bare float32 potrf + potri of the same n x n gram matrix, the one
  piece of work that cannot be avoided. The ratio run / floor is recorded.
- baseline: the problem's own EASE solution (pandas, log weights, float64
  np.linalg.inv, dense scores, a full argsort per user).
"""

import subprocess
import sys

import numpy as np
import pytest

from jukebox_fast import EDLAE, read_listens, weigh
from jukebox_fast.models.ease import gram_matrix
from jukebox_fast.pipeline import run


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


@pytest.mark.benchmark(group="run")
def test_run_all_users(benchmark, listens_path, all_users_path):
    def job():
        text, _ = run(listens_path, all_users_path, EDLAE(), log=lambda message: None)
        return text

    job()  # compile and cache the kernels first: this is the warm time
    text = benchmark.pedantic(job, rounds=3)
    lines = bytes(text).decode().splitlines()
    plays = read_listens(listens_path)
    assert len(lines) == len(plays.users)
    first = lines[0].split()
    played = {plays.songs[j] for j in plays.user_items[[0]].indices}
    assert first[0] == plays.users[0] and len(first) == 101 and not played & set(first[1:])


@pytest.mark.benchmark(group="run")
def test_command_all_users(benchmark, listens_path, all_users_path, tmp_path):
    output = tmp_path / "recs.txt"
    command = [sys.executable, "-m", "jukebox_fast", "run", str(listens_path), str(all_users_path), "-o", str(output), "-q"]
    subprocess.run(command, check=True)  # compile and cache the kernels first: this is the warm time
    benchmark.pedantic(subprocess.run, args=(command,), kwargs={"check": True}, rounds=3)
    assert output.read_text().count("\n") == len(read_listens(listens_path).users)


@pytest.mark.benchmark(group="run")
def test_floor_potrf_potri(benchmark, listens_path):
    from scipy.linalg import lapack

    gram = gram_matrix(weigh(read_listens(listens_path).user_items, "binary"))
    gram.reshape(-1)[:: gram.shape[0] + 1] += 100

    def inverse(a):
        factor, info = lapack.spotrf(a, lower=1, clean=0, overwrite_a=1)
        inv, info2 = lapack.spotri(factor, lower=1, overwrite_c=1)
        return info + info2

    assert benchmark.pedantic(inverse, setup=lambda: ((gram.copy(order="F"),), {}), rounds=3) == 0


@pytest.mark.benchmark(group="run-baseline")
def test_reference_solution_baseline(benchmark, listens_path, all_users_path):
    pytest.importorskip("pandas")
    text = benchmark.pedantic(reference_solution, args=(listens_path, all_users_path), rounds=1)
    assert text.count("\n") == len(read_listens(listens_path).users)
