"""The linear autoencoder's training step on the CPU: two sparse products and a fused Adam update.

For a batch X_b of b users (CSR) and the items x items weights B, a step is

    R = X_b B - X_b                      (b x n, dense: ``multiply_residual``)
    g = grad_scale X_b^T R + weight_decay B, diag(g) = 0
    Adam on B with g, diag(B) = 0        (``update_rows_adam``, row by row)

``update_rows_adam`` forms one row of X_b^T R at a time in a scratch row
(X_b^T given as CSR, i.e. X_b as CSC) and updates that row of B and of the
two moments at once, so the gradient never exists as an n x n matrix. Both
kernels take a range of rows: one thread's share.
"""

import numpy as np

from . import kernel

from .linalg import multiply_sparse_dense


@kernel
def multiply_residual(indptr, indices, data, B, out, row_loss, lo, hi):
    """``out[r] = (X_b B)[r] - X_b[r]`` and ``row_loss[r] = ||out[r]||^2`` for rows lo..hi-1.

    # Assumes: X_b CSR (indptr, indices, data) with sorted indices; B (n, n), out (b, n) C-contiguous float32.
    """
    n = B.shape[1]
    a, b = indptr[lo], indptr[hi]
    multiply_sparse_dense(indptr[lo : hi + 1] - a, indices[a:b], data[a:b], B, out[lo:hi])
    for r in range(lo, hi):
        row = out[r]
        for p in range(indptr[r], indptr[r + 1]):
            row[indices[p]] -= data[p]
        total = 0.0
        for j in range(n):
            total += row[j] * row[j]
        row_loss[r] = total


@kernel
def update_rows_adam(
    t_indptr, t_indices, t_data, R, B, m, v, lo, hi, grad_scale, weight_decay, lr, beta1, beta2, eps, scratch
):
    """One Adam step on rows lo..hi-1 of B; returns the sum of B^2 over those rows before the step.

    Row i of the gradient is ``grad_scale * (X_b^T R)[i] + weight_decay * B[i]``
    with its diagonal entry set to 0; ``lr`` is the bias-corrected step size.

    # Assumes: X_b^T CSR (t_*, n rows); R (b, n), B, m, v (n, n) C-contiguous float32; scratch (n,) float32.
    """
    n = B.shape[1]
    # float32 scalars keep the row loop in float32, where it vectorizes.
    grad_scale, weight_decay, lr = np.float32(grad_scale), np.float32(weight_decay), np.float32(lr)
    beta1, beta2, eps = np.float32(beta1), np.float32(beta2), np.float32(eps)
    one = np.float32(1)
    b_sq = 0.0
    for i in range(lo, hi):
        scratch[:] = 0
        for p in range(t_indptr[i], t_indptr[i + 1]):
            w = t_data[p]
            src = R[t_indices[p]]
            for j in range(n):
                scratch[j] += w * src[j]
        # B[i, i] is 0, so zeroing scratch[i] zeroes the diagonal of the gradient.
        scratch[i] = 0
        b_row, m_row, v_row = B[i], m[i], v[i]
        row_sq = np.float32(0)
        for j in range(n):
            b = b_row[j]
            row_sq += b * b
            g = grad_scale * scratch[j] + weight_decay * b
            m_j = beta1 * m_row[j] + (one - beta1) * g
            v_j = beta2 * v_row[j] + (one - beta2) * g * g
            m_row[j] = m_j
            v_row[j] = v_j
            b_row[j] = b - lr * m_j / (np.sqrt(v_j) + eps)
        b_row[i] = 0
        b_sq += row_sq
    return b_sq
