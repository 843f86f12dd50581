"""EASE (Steck 2019): the closed-form linear autoencoder with a zero diagonal."""

import numpy as np

from .. import _parallel as parallel, runtime
from ..errors import MemoryBudgetError, NotPositiveDefiniteError
from ..memory import count_matrices
from ..runtime import Progress, solver_threads
from .itemitem import DEVICES, Device, ItemItemRecommender, Weighting, check_choice, check_number


def ensure_memory_for_solve(X, model, matrices=1, advice=None):
    """Refuse, before allocating them, the songs x songs float32 matrices the memory budget has no room for.

    The advice names the most songs whose matrices fit (``--max-songs``), unless ``advice`` is given.
    """
    from .. import memory

    if runtime.is_planned():
        return
    n = X.shape[1]
    needed = 4 * n * n * matrices + 80 * X.nnz
    budget = runtime.memory_budget()
    if needed <= budget.available:
        return
    if advice is None:
        room = budget.available - 80 * X.nnz
        advice = memory.advice(min(n - 1, int(np.sqrt(max(room, 0) / (4 * matrices)))))
    raise MemoryBudgetError(
        f"{model} on {n:,} songs ({count_matrices(matrices)} {n:,} x {n:,} float32 matri{'x' if matrices == 1 else 'ces'})",
        needed, budget.available, advice, budget.limited_by,
    )


def gram_matrix(X, lower=False):
    """Dense float32 ``X^T X`` of a sparse float32 CSR X (sorted rows), without densifying X.

    With ``lower``, only the lower triangle (diagonal included) is
    computed, in half the time, and the strict upper one is 0: all that
    the Cholesky solve (``invert_gram``) reads.
    """
    from ..kernels.linalg import accumulate_gram

    n_items = X.shape[1]
    csc = X.tocsc()
    col_indptr, col_indices = csc.indptr.astype(np.int64), csc.indices.astype(np.int32, copy=False)
    indptr, indices = X.indptr.astype(np.int64), X.indices.astype(np.int32, copy=False)
    gram = np.zeros((n_items, n_items), np.float32)
    step = parallel.get_num_threads()
    parallel.run_tasks(
        accumulate_gram,
        [(col_indptr, col_indices, csc.data, indptr, indices, X.data, gram, first, step, lower) for first in range(step)],
    )
    return gram


def invert_gram(gram, regularization):
    """Cholesky inverse of G + diagMat(regularization) in float32, in place: P ends up in ``gram``'s lower triangle.

    Only the lower triangle of G is read; the strict upper one is left as
    it was. The solve is ``cholesky.invert_spd``: blocked BLAS-3, sound at
    any n that fits in memory. A solve of more than a few seconds reports
    its progress (``runtime.Progress``).
    """
    from threadpoolctl import threadpool_limits

    from .._cholesky import invert_spd

    n = gram.shape[0]
    gram.reshape(-1)[:: n + 1] += np.asarray(regularization, np.float32)
    # OpenBLAS rounds differently on different thread counts; solving on a
    # fixed count (every core this process may use) keeps B, and so the
    # output, the same whatever --threads says.
    progress = Progress(1.0, lambda done, _: f"solve: {done:.0%} of the {n:,} x {n:,} inverse ({float(n) ** 3:.1e} flop)")
    with threadpool_limits(limits=solver_threads(), user_api="blas"):
        info = invert_spd(gram, progress=progress.update)
    progress.finish()
    if info != 0:
        raise NotPositiveDefiniteError(
            f"X^T X + {np.min(regularization):g} I is not positive definite in float32 (leading minor {info}); "
            "raise the regularization"
        )
    return gram


def invert_on_device(X, penalty_of):
    """P = (X^T X + diagMat(penalty))^-1 solved on the GPU (``_device``), as a new host (n, n) float32 array.

    ``penalty_of(diag G)`` gives the diagonal added to G from G's own
    diagonal (float64, host), as the CPU path computes it. Without CuPy
    or a GPU: BackendUnavailableError.
    """
    from .. import _device

    gram = _device.DeviceGram(X, _device.gpu_modules())
    penalty = penalty_of(gram.diagonal())
    inverse = np.empty((X.shape[1], X.shape[1]), np.float32)
    try:
        gram.inverse(penalty, inverse)
    except np.linalg.LinAlgError:
        raise NotPositiveDefiniteError(
            f"X^T X + {np.min(penalty):g} I is not positive definite in float32 on the GPU; raise the regularization"
        ) from None
    return inverse


def solve_ease(gram, regularization, column_scale=None):
    """EASE weights from a gram matrix, in place: B = -P / diag(P) with P = (G + lambda I)^-1.

    Parameters
    ----------
    gram : ndarray, (n, n), float32, C-contiguous
        X^T X (only its lower triangle is read); overwritten with B.
    regularization : float or ndarray, (n,)
        lambda > 0, or one lambda per item (the diagonal added to G).
    column_scale : ndarray, (n,), optional
        Column j of B is multiplied by ``column_scale[j]`` > 0.

    Returns
    -------
    ndarray
        ``gram``, now holding B with a zero diagonal.
    """
    invert_gram(gram, regularization)
    finish_ease(gram, column_scale)
    return gram


def finish_ease(inverse, column_scale=None):
    """B = -P / diag(P) in place, from P = ``inverse`` in the lower triangle; returns B's mean |entry|.

    Column j is multiplied by ``column_scale[j]`` when given, and the
    diagonal is set to 0. The mean comes from the same pass (float64
    sums per band of rows, added in a fixed order: the same on any
    number of threads).
    """
    from ..kernels.linalg import TILE, finish_ease_tiles

    n = inverse.shape[0]
    diag = inverse.diagonal().copy()
    if column_scale is not None:  # the finish divides by diag, so scaling diag scales B's columns
        diag /= np.asarray(column_scale, np.float32)
    # Tile row t holds t + 1 tiles; pairing t with the last - t evens out the shares.
    n_tiles = -(-n // TILE)
    pairs = [np.unique([t, n_tiles - 1 - t]) for t in range((n_tiles + 1) // 2)]
    shares = [np.concatenate(pairs[lo:hi]) for lo, hi in parallel.split(len(pairs), parallel.get_num_threads())]
    abs_sums = np.zeros(n_tiles)
    parallel.run_tasks(finish_ease_tiles, [(inverse, diag, tiles, abs_sums) for tiles in shares])
    inverse.reshape(-1)[:: n + 1] = 0
    return float(abs_sums.sum()) / max(inverse.size, 1)


class EASE(ItemItemRecommender):
    """Embarrassingly Shallow Autoencoder, solved in closed form in float32.

    Minimises ||X - X B||^2 + lambda ||B||^2 subject to diag(B) = 0, where X
    holds the weighted plays (``weighting``); the answer is B = I - P
    diagMat(1 / diag(P)) with P = (X^T X + lambda I)^-1. The gram matrix,
    its Cholesky inverse and B share one n x n float32 buffer.

    Parameters
    ----------
    regularization : float
        lambda, the L2 penalty on B.
    weighting : {"binary", "log", "count"}
        How a play count becomes an entry of X: 1 (binary), 1 + log(1 + count) (log), or the count.
    num_threads : int
        Threads for the kernels and BLAS (0: every core). The solve always
        runs on every core, so that B does not depend on it.
    device : {"cpu", "gpu"}
        Where the gram matrix and its inverse are computed: the CPU, or a
        CUDA GPU with CuPy (``pip install 'jukebox_fast[gpu]'``), P copied back.
    """

    summary = "closed form, one float32 Cholesky inverse"
    default_grid = {"weighting": ["binary", "log"], "regularization": [30.0, 100.0, 300.0, 1000.0]}
    auto_search = True

    def __init__(
        self, regularization: float = 100.0, weighting: Weighting = "binary", num_threads: int = 0, device: Device = "cpu"
    ) -> None:
        self.regularization = regularization
        self.weighting = weighting
        self.num_threads = num_threads
        self.device = device

    def _check_params(self):
        super()._check_params()
        check_number("regularization", self.regularization, "a positive number", lambda v: v > 0)
        check_choice("device", self.device, DEVICES)

    def _learn(self, X, user_items):
        ensure_memory_for_solve(X, "EASE")
        if self.device != "cpu":
            regularization = float(self.regularization)
            inverse = invert_on_device(X, lambda diagonal: np.full(diagonal.size, regularization))
            finish_ease(inverse)
            return {"item_weights_": inverse}
        return {"item_weights_": solve_ease(gram_matrix(X, lower=True), float(self.regularization))}
