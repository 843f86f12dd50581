"""The gradient-trained linear autoencoder: its steps against the float64 NumPy reference, and the model."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast import BackendUnavailableError
from jukebox_fast.models import EASE, MODELS, LinearAutoencoder
from jukebox_fast.models.autoencoder import TRAINERS, adam_step_numpy, pad_batch

STEP = dict(grad_scale=0.5, weight_decay=0.01, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)


def random_state(rng, n_users, n_items, density):
    """A float32 CSR batch with empty rows allowed, and B (zero diagonal), m, v to step from."""
    batch = sp.random(n_users, n_items, density=density, format="csr", dtype=np.float64, random_state=rng)
    batch.data = (1 + rng.integers(0, 4, batch.nnz)).astype(np.float32)
    batch = sp.csr_array(batch.astype(np.float32))
    batch.indptr = batch.indptr.astype(np.int64)
    B = rng.normal(0, 0.1, (n_items, n_items)).astype(np.float32)
    np.fill_diagonal(B, 0)
    m = rng.normal(0, 0.01, B.shape).astype(np.float32)
    v = rng.uniform(1e-3, 1e-2, B.shape).astype(np.float32)  # away from 0: Adam's update is smooth there
    return batch, B, m, v


def reference_step(batch, B, m, v):
    B64, m64, v64 = B.astype(np.float64), m.astype(np.float64), v.astype(np.float64)
    losses = adam_step_numpy(B64, m64, v64, batch, **STEP)
    return B64, m64, v64, losses


def backend_step(backend, batch, B, m, v):
    """One step of a backend's trainer from the given state; returns its B, m, v and losses."""
    trainer = TRAINERS[backend](B.shape[0], batch.shape[0])
    trainer.prepare(batch)
    if backend == "jax":
        import jax.numpy as jnp

        trainer.B, trainer.m, trainer.v = jnp.asarray(B), jnp.asarray(m), jnp.asarray(v)
    elif backend == "cupy":
        trainer.B, trainer.m, trainer.v = (trainer.cp.asarray(a) for a in (B, m, v))
    else:
        trainer.B[...], trainer.m[...], trainer.v[...] = B, m, v
    losses = trainer.step(batch, *STEP.values())
    as_numpy = {"jax": np.asarray, "cupy": lambda a: a.get()}.get(backend, np.asarray)
    return as_numpy(trainer.B), as_numpy(trainer.m), as_numpy(trainer.v), losses


def assert_step_matches(backend, batch, B, m, v):
    want_B, want_m, want_v, want_losses = reference_step(batch, B, m, v)
    got_B, got_m, got_v, got_losses = backend_step(backend, batch, B, m, v)
    np.testing.assert_allclose(got_m, want_m, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(got_B, want_B, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-4)
    assert not np.diagonal(got_B).any(), "diag(B) must be exactly 0"


def _jax():
    return pytest.importorskip("jax")


def _cupy_with_gpu():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("cupy finds no CUDA GPU")
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("cupy finds no CUDA GPU")
    return cupy


# --- one step against the float64 reference -------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    n_users=st.integers(1, 9), n_items=st.integers(1, 23), density=st.floats(0, 0.6), seed=st.integers(0, 2**32 - 1)
)
def test_numba_step_equals_reference(n_users, n_items, density, seed):
    rng = np.random.default_rng(seed)
    assert_step_matches("numba", *random_state(rng, n_users, n_items, density))


@pytest.mark.jax
@settings(max_examples=10, deadline=None)
@given(n_users=st.integers(1, 9), n_items=st.integers(1, 23), density=st.floats(0, 0.6), seed=st.integers(0, 2**32 - 1))
def test_jax_step_equals_reference(n_users, n_items, density, seed):
    _jax()
    rng = np.random.default_rng(seed)
    assert_step_matches("jax", *random_state(rng, n_users, n_items, density))


@pytest.mark.gpu
def test_cupy_step_equals_reference():
    _cupy_with_gpu()
    rng = np.random.default_rng(3)
    for n_users, n_items, density in [(7, 19, 0.3), (1, 1, 1.0), (5, 40, 0.0), (64, 300, 0.05)]:
        assert_step_matches("cupy", *random_state(rng, n_users, n_items, density))


def test_pad_batch_keeps_every_entry():
    batch, *_ = random_state(np.random.default_rng(1), 6, 9, 0.5)
    rows, cols, vals, n_chunks = pad_batch(batch, max_chunks=8, chunk=4)
    assert rows.shape == cols.shape == vals.shape == (8, 4)
    assert n_chunks == -(-batch.nnz // 4)
    dense = np.zeros(batch.shape, np.float32)
    np.add.at(dense, (rows.ravel(), cols.ravel()), vals.ravel())
    np.testing.assert_array_equal(dense, batch.toarray())


# --- training ---------------------------------------------------------------------------


def small_plays(seed=0, n_users=120, n_items=25):
    """Play counts with structure (two taste groups) so the model has something to learn."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n_users)
    taste = np.where(group[:, None] == 0, np.linspace(1, 0.1, n_items), np.linspace(0.1, 1, n_items))
    plays = (rng.random((n_users, n_items)) < 0.35 * taste) * rng.integers(1, 9, (n_users, n_items))
    plays[5] = 0  # a user without plays
    return sp.csr_array(plays)


def objective(user_items, model):
    X = sp.csr_array(user_items, dtype=np.float64)
    X.data = 1 + np.log1p(X.data)
    B = model.item_weights_.astype(np.float64)
    R = X @ B - X.toarray()
    return float((R * R).sum() + model.regularization * (B * B).sum())


BACKENDS = ["numba", "numpy", pytest.param("jax", marks=pytest.mark.jax)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_diagonal_is_zero_after_every_step(backend):
    if backend == "jax":
        _jax()
    X = sp.csr_array(small_plays().astype(np.float32))
    trainer = TRAINERS[backend](X.shape[1], 32)
    trainer.prepare(X)
    for first in range(0, 96, 32):
        trainer.step(X[first : first + 32], 2 / 32, 0.01, 0.05, 0.9, 0.999, 1e-8)
        assert not np.diagonal(np.asarray(trainer.B)).any()
        assert np.asarray(trainer.B).any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_approaches_the_closed_form(backend):
    if backend == "jax":
        _jax()
    plays = small_plays()
    ease = EASE(regularization=5, weighting="log").fit(plays)
    untrained = LinearAutoencoder(regularization=5, weighting="log", epochs=1, learning_rate=1e-9).fit(plays)
    model = LinearAutoencoder(
        regularization=5, weighting="log", epochs=60, batch_size=40, learning_rate=0.05, backend=backend
    ).fit(plays)
    best, start, reached = objective(plays, ease), objective(plays, untrained), objective(plays, model)
    assert best <= reached * (1 + 1e-6)  # EASE is the optimum
    assert reached - best < 0.02 * (start - best), (best, start, reached)
    assert model.loss_history_[-1] < model.loss_history_[0]
    assert np.isfinite(model.item_weights_).all() and not np.diagonal(model.item_weights_).any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_batch_loss_decreases_every_step(backend):
    if backend == "jax":
        _jax()
    X = sp.csr_array(small_plays().astype(np.float32))
    trainer = TRAINERS[backend](X.shape[1], X.shape[0])
    trainer.prepare(X)
    losses = []
    for t in range(1, 16):
        residual_sq, b_sq = trainer.step(X, 2 / X.shape[0], 0.01, 0.002 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t), 0.9, 0.999, 1e-8)
        losses.append(residual_sq / X.shape[0] + 0.005 * b_sq)
    assert np.all(np.diff(losses) < 0), losses


def test_training_is_deterministic_for_a_seed():
    plays = small_plays()

    def fit(seed, threads):
        from jukebox_fast.runtime import limit_threads

        with limit_threads(threads):
            return LinearAutoencoder(epochs=3, batch_size=16, seed=seed).fit(plays).item_weights_

    first = fit(0, 2)
    np.testing.assert_array_equal(first, fit(0, 1))
    assert not np.array_equal(first, fit(1, 2))


@pytest.mark.jax
def test_jax_step_traces_once_per_shape():
    _jax()
    from jukebox_fast.kernels import sgd_jax

    plays = small_plays(n_items=31)  # a shape no other test uses
    before = sgd_jax.TRACES["adam"]
    # 119 users with plays, batches of 25: a short last batch, different nnz per batch, 3 epochs.
    LinearAutoencoder(epochs=3, batch_size=25, backend="jax").fit(plays)
    assert sgd_jax.TRACES["adam"] == before + 1
    LinearAutoencoder(epochs=2, batch_size=25, learning_rate=0.01, backend="jax").fit(plays)
    assert sgd_jax.TRACES["adam"] == before + 1


def test_backends_agree_on_a_short_run():
    plays = small_plays()
    kwargs = dict(epochs=2, batch_size=30, learning_rate=0.01)
    want = LinearAutoencoder(backend="numpy", **kwargs).fit(plays).item_weights_
    got = LinearAutoencoder(backend="numba", **kwargs).fit(plays).item_weights_
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)


def test_missing_backends_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'jukebox_fast\[jax\]'"):
        LinearAutoencoder(backend="jax").fit(small_plays())
    with pytest.raises(BackendUnavailableError, match=r'pip install "jukebox_fast\[gpu\]"'):
        LinearAutoencoder(backend="cupy").fit(small_plays())


@pytest.mark.parametrize(
    "kwargs",
    [dict(backend="tpu"), dict(epochs=0), dict(batch_size=1.5), dict(learning_rate=0), dict(regularization=-1),
     dict(seed=-1), dict(seed=0.5)],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        LinearAutoencoder(**kwargs).fit(small_plays())


# --- the command line -------------------------------------------------------------------


def test_cli_offers_sgd_and_prints_progress_unless_quiet(cli):
    assert MODELS["sgd"] is LinearAutoencoder
    loud = cli("run", "--example", "--model", "sgd", "--epochs", "2", "--batch-size", "64")
    assert loud.returncode == 0, loud.stderr
    assert b"sgd epoch 2/2, loss" in loud.stderr and b"\r" not in loud.stderr  # plain lines, also in log files
    quiet = cli("run", "--example", "--model", "sgd", "--epochs", "2", "--batch-size", "64", "-q")
    assert quiet.returncode == 0 and quiet.stderr == b""
    assert quiet.stdout == loud.stdout  # same seed, same answer
    assert len(quiet.stdout.splitlines()[0].split()) == 101


def test_cli_reports_a_missing_backend_in_one_line():
    code = (
        "import sys; sys.modules['cupy'] = None; from jukebox_fast.cli import main; "
        "sys.exit(main(['run', '--example', '--model', 'sgd', '--backend', 'cupy']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines()[-1].startswith("jukebox_fast: error: the cupy backend is not available")


@pytest.mark.shared
@pytest.mark.slow
def test_sgd_is_close_to_ease_on_a_real_split(shared_data, checker, cli, tmp_path):
    split = shared_data / "split-seed0"
    scores = {}
    for model in ("ease", "sgd"):
        out = tmp_path / f"{model}.txt"
        done = cli(
            "run", split / "listen_count.txt", split / "user_ids.txt", "--model", model,
            "--weighting", "log", "--regularization", "30", "-q", "-o", out,
        )
        assert done.returncode == 0, done.stderr
        check = subprocess.run(
            [sys.executable, checker, out, split / "test_data.txt", "--train", split / "listen_count.txt",
             "--users", split / "user_ids.txt"],
            capture_output=True, text=True,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        scores[model] = float(check.stdout.split("ndcg@100")[1].split()[0])
    assert scores["sgd"] > scores["ease"] - 0.01, scores
