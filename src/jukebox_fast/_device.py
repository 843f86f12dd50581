"""The closed form's n^3 part on a CUDA GPU with CuPy: the gram matrix and its inverse, P copied back.

``device="gpu"`` on ``EASE`` and ``EDLAE`` sends the weighted plays to the
GPU once, builds G = X^T X there a band of columns at a time (cuSPARSE:
the sparse X^T times the band of X made dense, so no n x n sparse product
and no dense copy of X), adds the penalty to its diagonal and inverts it
with cuSOLVER (Cholesky, then the inverse from the factor), and copies P
back into the host buffer the CPU path would have used. B's finish, the
kNN, the prior and the scoring then run on the host as on the CPU path:
they read B once each, memory-bound work that the copy back already pays.

The functions take the array modules as an argument, so that the same
code runs on NumPy and SciPy, where the tests check it against the CPU path.
"""

from __future__ import annotations

import numpy as np

from .errors import BackendUnavailableError

# Columns of G per band: the dense band of X is users x 256 float32 (585 MB for 571,355 users).
BAND = 256


def gpu_modules():
    """``(cupy, cupyx.scipy.sparse, cupyx.scipy.linalg)``, or BackendUnavailableError saying what to install."""
    try:
        import cupy
        import cupyx.scipy.linalg as linalg
        import cupyx.scipy.sparse as sparse
    except ImportError:
        raise BackendUnavailableError("gpu (cupy)", "pip install 'jukebox_fast[gpu]' on a machine with a CUDA GPU") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # CUDA's own errors: no driver, no device
        count = 0
    if not count:
        raise BackendUnavailableError("gpu (cupy)", "cupy is installed but finds no CUDA GPU; use device='cpu'")
    return cupy, sparse, linalg


def host_modules():
    """The same roles played by NumPy and SciPy (the tests' stand-in for the GPU)."""
    import scipy.linalg as linalg
    import scipy.sparse as sparse

    return np, sparse, linalg


class DeviceGram:
    """G = X^T X of CSR float32 ``X`` on a device; ``inverse(penalty, out)`` copies (G + diag(penalty))^-1 back."""

    def __init__(self, X, modules):
        xp, sparse, _ = self.modules = modules
        n = X.shape[1]
        on_device = sparse.csr_matrix(
            (xp.asarray(X.data, xp.float32), xp.asarray(X.indices, xp.int32), xp.asarray(X.indptr, xp.int32)),
            shape=X.shape,
        )
        by_column = on_device.tocsc()
        transposed = on_device.T.tocsr()
        self.gram = xp.empty((n, n), xp.float32)
        for lo in range(0, n, BAND):
            hi = min(n, lo + BAND)
            self.gram[:, lo:hi] = transposed @ by_column[:, lo:hi].toarray()
        del on_device, by_column, transposed

    def diagonal(self):
        """diag G on the host, float64."""
        return np.asarray(_to_host(self.modules[0], self.gram.diagonal()), np.float64)

    def inverse(self, penalty, out):
        """P = (G + diagMat(penalty))^-1 into ``out`` (host, (n, n) float32, all of it); G is overwritten.

        Raises ``np.linalg.LinAlgError`` (or CuPy's) when G + diag(penalty) is not positive definite.
        """
        xp, _, linalg = self.modules
        n = self.gram.shape[0]
        self.gram[xp.arange(n), xp.arange(n)] += xp.asarray(penalty, xp.float32)
        factor = xp.linalg.cholesky(self.gram)  # lower triangular L, G = L L^T
        if not bool(xp.isfinite(factor).all()):  # CuPy marks a failed factorization with NaNs
            raise np.linalg.LinAlgError("not positive definite")
        self.gram = None
        inverse_factor = linalg.solve_triangular(factor, xp.eye(n, dtype=xp.float32), lower=True)
        del factor
        out[...] = _to_host(xp, inverse_factor.T @ inverse_factor)  # P = L^-T L^-1
        return out


def _to_host(xp, array):
    return array if xp is np else xp.asnumpy(array)
