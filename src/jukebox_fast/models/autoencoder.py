"""The linear autoencoder trained by mini-batch gradient steps (Adam) on sparse batches of users."""

import math
import typing

import numpy as np

from .. import _parallel as parallel
from ..data import select_rows
from ..errors import BackendUnavailableError
from ..runtime import Progress, ensure_memory, logger
from .itemitem import ItemItemRecommender, Weighting, check_choice, check_number

Backend = typing.Literal["numba", "jax", "cupy", "numpy"]
BACKENDS = typing.get_args(Backend)

# Plays per chunk in the JAX step: each chunk gathers chunk x n floats.
_JAX_CHUNK = 1024


class LinearAutoencoder(ItemItemRecommender):
    """EASE's model, ||X - X B||^2 + lambda ||B||^2 with diag(B) = 0, trained by Adam.

    Each epoch visits the users with plays once, in an order shuffled by
    ``seed``, ``batch_size`` at a time. A batch X_b of b users gives the
    gradient of ||X_b - X_b B||^2 / b + (lambda / N) ||B||^2 (N: users with
    plays), an unbiased estimate of the full objective over N, so
    ``regularization`` means what it means for EASE. The step size follows a
    cosine from ``learning_rate`` down to 0 over all steps; B starts at 0 and
    its diagonal is 0 after every step. Products cost O(nnz(X_b) x n); the
    update touches all of B and the two moments (3 n^2 float32).

    Parameters
    ----------
    regularization : float
        lambda, the L2 penalty on B.
    weighting : {"binary", "log", "count"}
        How a play count becomes an entry of X: 1 (binary), 1 + log(1 + count) (log), or the count.
    epochs : int
        Passes over the users.
    batch_size : int
        Users per step.
    learning_rate : float
        Adam's initial step size.
    seed : int
        Seeds the shuffling of the users (>= 0); the result is deterministic for a given seed and backend.
    backend : {"numba", "jax", "cupy", "numpy"}
        Where the steps run: Numba kernels on the CPU threads, a jitted JAX
        step (CPU or GPU, whichever JAX uses), CuPy on a CUDA GPU, or the
        plain NumPy/SciPy reference (slow, for checking).
    num_threads : int
        Threads for the kernels and BLAS (0: every core).

    Each epoch's mean batch loss goes to the ``jukebox_fast`` logger (and
    the ``progress`` callback of ``fit``) and to ``loss_history_``.
    """

    summary = "gradient-trained linear autoencoder (Adam on sparse user batches)"

    default_grid = {"regularization": [30.0, 100.0, 300.0], "learning_rate": [3e-3, 1e-2]}

    def __init__(
        self,
        regularization: float = 100.0,
        weighting: Weighting = "binary",
        epochs: int = 10,
        batch_size: int = 2048,
        learning_rate: float = 1e-2,
        seed: int = 0,
        backend: Backend = "numba",
        num_threads: int = 0,
    ) -> None:
        self.regularization = regularization
        self.weighting = weighting
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.backend = backend
        self.num_threads = num_threads

    def _check_params(self):
        super()._check_params()
        check_number("regularization", self.regularization, "a positive number", lambda v: v > 0)
        check_number("learning_rate", self.learning_rate, "a positive number", lambda v: v > 0)
        for name in ("epochs", "batch_size"):
            check_number(name, getattr(self, name), "a positive integer", lambda v: v >= 1, integer=True)
        check_number("seed", self.seed, "an integer >= 0", lambda v: v >= 0, integer=True)
        check_choice("backend", self.backend, BACKENDS)

    def fit_matrices(self) -> int:
        # B and Adam's two moments; the NumPy reference holds them in float64 with its step's n x n float64
        # temporaries (the gradient, its square, the update: 56 bytes an entry, measured); on a GPU only B comes back.
        return {"numba": 3, "numpy": 14, "jax": 4, "cupy": 1}[self.backend]

    def _learn(self, X, user_items):
        n = X.shape[1]
        epochs, batch_size = int(self.epochs), int(self.batch_size)
        active = np.flatnonzero(np.diff(X.indptr) > 0)
        trainer = TRAINERS[self.backend](n, min(batch_size, max(1, active.size)))
        ensure_memory(
            trainer.bytes_needed(),
            f"the {self.backend} autoencoder on {n:,} songs (three {n:,} x {n:,} float32 matrices)",
            "drop rarely played songs first, or use a machine with more memory",
        )
        rng = np.random.default_rng(int(self.seed))
        n_batches = -(-active.size // batch_size)
        total_steps = epochs * n_batches
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        weight_decay = 2 * self.regularization / max(1, active.size)
        trainer.prepare(X)
        loss_history = []
        step = 0
        progress = Progress(
            epochs, lambda done, total: f"sgd epoch {done}/{total}, loss {loss_history[-1] if loss_history else 0:.4f}",
            quiet_for=0.0, every=0.0,
        )
        for _ in range(epochs):
            order = rng.permutation(active)
            losses = []
            for first in range(0, order.size, batch_size):
                batch = select_rows(X, np.sort(order[first : first + batch_size]))
                step += 1
                lr = self.learning_rate * 0.5 * (1 + math.cos(math.pi * (step - 1) / total_steps))
                lr_t = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                b = batch.shape[0]
                residual_sq, b_sq = trainer.step(batch, 2.0 / b, weight_decay, lr_t, beta1, beta2, eps)
                losses.append(residual_sq / b + weight_decay / 2 * b_sq)
            loss_history.append(float(np.mean(losses)) if losses else 0.0)
            progress.advance(1)
        return {"item_weights_": trainer.result(), "loss_history_": np.array(loss_history)}


class _NumbaTrainer:
    """The step on the CPU threads: ``kernels.sgd``, B and the moments in NumPy arrays."""

    def __init__(self, n, batch_size):
        self.n = n
        self.batch_size = batch_size

    def bytes_needed(self):
        return 12 * self.n * self.n + 4 * self.batch_size * self.n

    def prepare(self, X):
        n = self.n
        self.B = np.zeros((n, n), np.float32)
        self.m = np.zeros((n, n), np.float32)
        self.v = np.zeros((n, n), np.float32)
        self.R = np.empty((self.batch_size, n), np.float32)
        self.row_loss = np.empty(self.batch_size, np.float64)
        self.scratch = [np.empty(n, np.float32) for _ in range(parallel.get_num_threads())]

    def step(self, batch, grad_scale, weight_decay, lr, beta1, beta2, eps):
        from ..kernels.sgd import multiply_residual, update_rows_adam

        b = batch.shape[0]
        R, row_loss = self.R[:b], self.row_loss[:b]
        n_threads = parallel.get_num_threads()
        parallel.run_tasks(
            multiply_residual,
            [(batch.indptr, batch.indices, batch.data, self.B, R, row_loss, lo, hi) for lo, hi in parallel.split(b, n_threads)],
        )
        t = batch.T.tocsr()
        t_indptr = t.indptr.astype(np.int64)
        # Row i costs n for the update plus n per play of item i: share the rows by that.
        work = np.cumsum(np.diff(t_indptr) + 1)
        edges = np.searchsorted(work, work[-1] * np.arange(1, n_threads) / n_threads)
        bounds = np.concatenate([[0], edges, [self.n]]).astype(np.int64)
        sums = parallel.run_tasks(
            update_rows_adam,
            [
                (t_indptr, t.indices.astype(np.int32), t.data.astype(np.float32), R, self.B, self.m, self.v,
                 bounds[k], bounds[k + 1], grad_scale, weight_decay, lr, beta1, beta2, eps, self.scratch[k])
                for k in range(len(bounds) - 1)
            ],
        )
        return float(row_loss.sum()), float(sum(sums))

    def result(self):
        B = self.B
        del self.B, self.m, self.v, self.R
        return B


class _NumpyTrainer(_NumbaTrainer):
    """The reference step in NumPy/SciPy, float64: see ``adam_step_numpy``."""

    def bytes_needed(self):
        return 56 * self.n * self.n + 16 * self.batch_size * self.n

    def prepare(self, X):
        self.B = np.zeros((self.n, self.n))
        self.m = np.zeros_like(self.B)
        self.v = np.zeros_like(self.B)

    def step(self, batch, grad_scale, weight_decay, lr, beta1, beta2, eps):
        return adam_step_numpy(self.B, self.m, self.v, batch, grad_scale, weight_decay, lr, beta1, beta2, eps)

    def result(self):
        B = self.B.astype(np.float32)
        del self.B, self.m, self.v
        return B


def adam_step_numpy(B, m, v, batch, grad_scale, weight_decay, lr, beta1, beta2, eps):
    """The step every backend computes, in plain NumPy/SciPy: B, m, v updated in place.

    Parameters
    ----------
    B, m, v : ndarray, (n, n)
        Weights and Adam's first and second moments.
    batch : scipy.sparse CSR, (b, n)
        The batch X_b.
    grad_scale, weight_decay : float
        The gradient is grad_scale X_b^T (X_b B - X_b) + weight_decay B, diagonal set to 0.
    lr : float
        Bias-corrected step size.

    Returns
    -------
    residual_sq, B_sq : float
        ||X_b B - X_b||^2 and ||B||^2 before the step.
    """
    X_b = batch.astype(B.dtype)
    R = np.asarray(X_b @ B) - X_b.toarray()
    residual_sq, b_sq = float(np.vdot(R, R)), float(np.vdot(B, B))
    g = grad_scale * np.asarray(X_b.T @ R) + weight_decay * B
    np.fill_diagonal(g, 0)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    B -= lr * m / (np.sqrt(v) + eps)
    np.fill_diagonal(B, 0)
    return residual_sq, b_sq


class _JaxTrainer:
    """The jitted step of ``kernels.sgd_jax`` on JAX's default device; one trace per run."""

    def __init__(self, n, batch_size):
        try:
            import jax  # noqa: F401
        except ImportError:
            raise BackendUnavailableError("jax", "pip install 'jukebox_fast[jax]'") from None
        self.n = n
        self.batch_size = batch_size

    def bytes_needed(self):
        return 16 * self.n * self.n + 8 * self.batch_size * self.n

    def prepare(self, X):
        import jax
        import jax.numpy as jnp

        from ..kernels.sgd_jax import adam_step, column_sharding

        lengths = np.sort(np.diff(X.indptr))[::-1]
        capacity = int(lengths[: self.batch_size].sum())  # no batch has more plays
        self.max_chunks = max(1, -(-capacity // _JAX_CHUNK))
        devices = jax.devices()
        # Over several devices, B's columns are split evenly: padded up to a multiple of their number.
        columns = -(-self.n // len(devices)) * len(devices)
        sharding = column_sharding(devices) if len(devices) > 1 else None
        logger.debug(f"sgd: jax on {len(devices)} {devices[0].platform} device{'s' * (len(devices) > 1)}"
                     + (f", B's {columns:,} columns split {columns // len(devices):,} a device" if sharding else ""))
        self.fn = adam_step(sharding)

        def zeros():
            matrix = jnp.zeros((self.n, columns), jnp.float32)
            return matrix if sharding is None else jax.device_put(matrix, sharding)

        self.B, self.m, self.v = zeros(), zeros(), zeros()

    def step(self, batch, grad_scale, weight_decay, lr, beta1, beta2, eps):
        rows, cols, vals, n_chunks = pad_batch(batch, self.max_chunks, _JAX_CHUNK)
        self.B, self.m, self.v, residual_sq, b_sq = self.fn(
            self.B, self.m, self.v, rows, cols, vals, n_chunks, grad_scale, weight_decay, lr, beta1, beta2, eps,
            b_pad=self.batch_size,
        )
        return float(residual_sq), float(b_sq)

    def result(self):
        B = np.ascontiguousarray(np.asarray(self.B)[:, : self.n])
        del self.B, self.m, self.v
        return B


def pad_batch(batch, max_chunks, chunk):
    """A CSR batch as padded COO arrays (max_chunks, chunk): rows, cols (int32), vals (float32), and chunks used."""
    nnz = batch.nnz
    rows = np.zeros(max_chunks * chunk, np.int32)
    cols = np.zeros(max_chunks * chunk, np.int32)
    vals = np.zeros(max_chunks * chunk, np.float32)
    rows[:nnz] = np.repeat(np.arange(batch.shape[0], dtype=np.int32), np.diff(batch.indptr))
    cols[:nnz] = batch.indices
    vals[:nnz] = batch.data
    shape = (max_chunks, chunk)
    return rows.reshape(shape), cols.reshape(shape), vals.reshape(shape), np.int32(-(-nnz // chunk))


class _CupyTrainer:
    """The step of ``kernels.sgd_cupy`` on a CUDA GPU."""

    def __init__(self, n, batch_size):
        self.cp = _require_cupy()
        self.n = n
        self.batch_size = batch_size

    def bytes_needed(self):
        return 4 * self.n * self.n  # the result on the host; the rest lives on the GPU

    def prepare(self, X):
        cp = self.cp
        self.B = cp.zeros((self.n, self.n), cp.float32)
        self.m = cp.zeros_like(self.B)
        self.v = cp.zeros_like(self.B)

    def step(self, batch, grad_scale, weight_decay, lr, beta1, beta2, eps):
        from ..kernels.sgd_cupy import adam_step

        return adam_step(self.B, self.m, self.v, batch, grad_scale, weight_decay, lr, beta1, beta2, eps)

    def result(self):
        B = self.cp.asnumpy(self.B)
        del self.B, self.m, self.v
        return B


def _require_cupy():
    """The cupy module, once it is known to be installed and to see a GPU."""
    hint = 'pip install "jukebox_fast[gpu]"'
    try:
        import cupy
        import cupyx.scipy.sparse  # noqa: F401
    except ImportError:
        raise BackendUnavailableError("cupy", hint) from None
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        n_devices = 0
    if n_devices == 0:
        raise BackendUnavailableError("cupy", f"cupy is installed but finds no CUDA GPU ({hint} on a machine with one)")
    return cupy


TRAINERS = {"numba": _NumbaTrainer, "jax": _JaxTrainer, "cupy": _CupyTrainer, "numpy": _NumpyTrainer}
