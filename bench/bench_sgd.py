"""One training step of the linear autoencoder at batch 512 and 4096: Numba and JAX against the NumPy reference.

    pytest --benchmark-only bench/bench_sgd.py

Each group times the NumPy/SciPy reference step (float32 here, as fast as
it gets) beside the Numba kernels and the jitted JAX step (compiled before
timing; compile time is reported separately in ``extra_info``), on the
official data when ../shared has it, else on a synthetic log of the same
shape. Every step's result is checked against the reference.
"""

import pathlib
import time

import numpy as np
import pytest
import scipy.sparse as sp

from jukebox_fast.models.autoencoder import TRAINERS, adam_step_numpy

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jukebox" / "listen_count.txt"
HYPER = (0.9, 0.999, 1e-8)


@pytest.fixture(scope="module")
def weighted_plays():
    if SHARED.is_file():
        from jukebox_fast import read_listens, weigh

        return weigh(read_listens(SHARED).user_items, "log")
    rng = np.random.default_rng(0)  # 20,278 users x 8,262 songs, 16.7 plays a user, popularity skewed
    n_users, n_items, nnz = 20278, 8262, 337880
    rows = rng.integers(0, n_users, nnz)
    cols = np.minimum((rng.pareto(1.0, nnz) * 50).astype(np.int64), n_items - 1)
    X = sp.csr_array((np.ones(nnz, np.float32), (rows, cols)), shape=(n_users, n_items))
    X.sum_duplicates()
    X.data = (1 + np.log1p(X.data)).astype(np.float32)
    return X


def state(n, seed=0):
    rng = np.random.default_rng(seed)
    B = rng.normal(0, 1e-3, (n, n)).astype(np.float32)
    np.fill_diagonal(B, 0)
    return B, np.zeros_like(B), np.full_like(B, 1e-6)


@pytest.mark.parametrize("batch_size", [512, 4096])
@pytest.mark.parametrize("backend", ["numpy", "numba", "jax"])
def test_step(benchmark, weighted_plays, backend, batch_size):
    if backend == "jax":
        pytest.importorskip("jax")
    benchmark.group = f"sgd step, batch {batch_size}"
    X = weighted_plays
    n = X.shape[1]
    batch = X[np.sort(np.random.default_rng(1).choice(X.shape[0], batch_size, replace=False))]
    args = (2.0 / batch_size, 2 * 30 / X.shape[0], 1e-3, *HYPER)
    B0, m0, v0 = state(n)

    want = [a.copy() for a in (B0, m0, v0)]
    adam_step_numpy(*want, batch, *args)

    if backend == "numpy":
        arrays = [a.copy() for a in (B0, m0, v0)]

        def reset():
            arrays[0][...], arrays[1][...], arrays[2][...] = B0, m0, v0

        def run():
            adam_step_numpy(*arrays, batch, *args)
            return arrays[0]
    else:
        trainer = TRAINERS[backend](n, batch_size)
        trainer.prepare(X)

        def reset():
            if backend == "jax":
                import jax.numpy as jnp

                # Fresh XLA-owned buffers: ones aliasing NumPy memory could not be donated.
                trainer.B, trainer.m, trainer.v = (jnp.array(a, copy=True) for a in (B0, m0, v0))
            else:
                trainer.B[...], trainer.m[...], trainer.v[...] = B0, m0, v0

        reset()
        start = time.perf_counter()
        trainer.step(batch, *args)  # compiles (cached for numba after the first ever run)
        benchmark.extra_info["first step s (compile + run)"] = round(time.perf_counter() - start, 3)

        def run():
            trainer.step(batch, *args)  # returns floats: the step has finished
            return trainer.B

    benchmark.pedantic(run, setup=reset, rounds=3, iterations=1)
    reset()
    got = np.asarray(run())
    np.testing.assert_allclose(got, want[0], rtol=1e-3, atol=2e-6)
    assert not np.diagonal(got).any()
