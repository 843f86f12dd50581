"""The linear autoencoder's training step on a CUDA GPU with CuPy: cuSPARSE products, one fused update.

Untested on hardware so far (no GPU was available when it was written);
``tests/test_autoencoder.py`` checks it against the NumPy reference step
wherever cupy finds a GPU.

The step is the one of ``kernels.sgd``: R = X_b B - X_b by cuSPARSE SpMM,
G = X_b^T R by a second (transposed) SpMM, then one elementwise kernel
updates B and the Adam moments in place. Diagonals are zeroed through a
strided view of B's flat buffer (G, a temporary in whatever
order cuSPARSE returns, by index), never by copying B.
"""

import functools


@functools.lru_cache(maxsize=None)
def _adam_kernel():
    import cupy as cp

    # b, m, v are read and written in place; g is (X_b^T R) before scaling.
    return cp.ElementwiseKernel(
        "T g_raw, T grad_scale, T weight_decay, T lr, T beta1, T beta2, T eps",
        "T b, T m, T v",
        """
        T g = grad_scale * g_raw + weight_decay * b;
        m = beta1 * m + (1 - beta1) * g;
        v = beta2 * v + (1 - beta2) * g * g;
        b = b - lr * m / (sqrt(v) + eps);
        """,
        "jukebox_fast_adam",
    )


def adam_step(B, m, v, batch, grad_scale, weight_decay, lr, beta1, beta2, eps):
    """One Adam step on the GPU; B, m, v (cupy (n, n) float32, C-contiguous) updated in place.

    Parameters
    ----------
    batch : scipy.sparse CSR, (b, n), float32 data
        The batch X_b, on the host; copied to the GPU here.
    grad_scale, weight_decay, lr, beta1, beta2, eps : float
        As in ``kernels.sgd.update_rows_adam``.

    Returns
    -------
    residual_sq, B_sq : float
        ||X_b B - X_b||^2 and ||B||^2 before the step.

    # Assumes: diag(B) == 0 on entry.
    """
    import cupy as cp
    import cupyx.scipy.sparse as csp

    n = B.shape[0]
    data = cp.asarray(batch.data, cp.float32)
    indices = cp.asarray(batch.indices, cp.int32)
    indptr = cp.asarray(batch.indptr, cp.int32)
    X = csp.csr_matrix((data, indices, indptr), shape=batch.shape)
    R = X @ B
    rows = cp.asarray(_row_of_each_entry(batch))
    R[rows, indices] -= data  # (row, col) pairs are unique in a canonical CSR
    residual_sq = float(cp.vdot(R, R))
    B_sq = float(cp.vdot(B, B))
    G = X.T @ R
    del R
    # cuSPARSE may hand G back in Fortran order, where ravel() would copy:
    # zero its diagonal by index instead (n writes, any layout).
    diag = cp.arange(n)
    G[diag, diag] = 0
    f32 = cp.float32
    _adam_kernel()(G, f32(grad_scale), f32(weight_decay), f32(lr), f32(beta1), f32(beta2), f32(eps), B, m, v)
    B.ravel()[:: n + 1] = 0
    return residual_sq, B_sq


def _row_of_each_entry(batch):
    """Row index of every stored entry of a CSR matrix (int32)."""
    import numpy as np

    return np.repeat(np.arange(batch.shape[0], dtype=np.int32), np.diff(batch.indptr))
