"""The linear autoencoder's training step, jitted with JAX: a sparse batch in, B updated in place.

The batch X_b (b users x n items) arrives as padded COO triplets shaped
(n_chunks, chunk): ``rows`` (user within the batch), ``cols`` (item) and
``vals`` (weight), padding entries having weight 0. Both products are
scatter-adds of whole rows, one chunk of plays at a time, so a step costs
O(nnz(X_b) x n) and never holds more than ``chunk x n`` gathered values:

    H = X_b B            H[rows] += vals * B[cols]
    R = H - X_b          (b x n, dense)
    G = X_b^T R          G[cols] += vals * R[rows]

The gradient of ||X_b - X_b B||^2 / b + reg ||B||^2 is (2/b) G + 2 reg B.
B and the Adam moments are donated, so XLA updates them in place; the
diagonal of the gradient is zeroed before the update and that of B after
it, so diag(B) stays exactly 0.

Over several devices, B, the moments, H, R and G are split by columns
(``sharding``: a ``NamedSharding`` of a 1-D mesh, ``PartitionSpec(None,
"songs")``): column j of each product needs only column j of B, so each
device computes its own columns from the batch, which every device holds
whole, and no step moves more than the batch and two scalars (the loss's
sums). B may then have more columns than rows (padding up to a multiple of
the devices); the padding columns stay 0.
"""

import functools

# Times the step function has been traced (compiled) so far, per optimizer: a
# new batch shape retraces, a new step size or step count must not.
TRACES = {"adam": 0}


@functools.lru_cache(maxsize=None)
def adam_step(sharding=None):
    """The jitted Adam step (built on first use, so importing this module loads no JAX).

    ``sharding`` (a ``NamedSharding`` splitting columns over devices, or
    None: one device) is where B, the moments and the step's n-wide
    temporaries live.

    Returns
    -------
    step(B, m, v, rows, cols, vals, n_chunks, grad_scale, weight_decay, lr, beta1, beta2, eps)
        -> (B, m, v, residual_sq, B_sq)

        B, m, v : (n, n_cols) float32, donated: the weights and Adam's two moments (n_cols >= n:
            columns past n are padding).
        rows, cols : (max_chunks, chunk) int32; vals : (max_chunks, chunk) float32;
            only the first ``n_chunks`` chunks are read, so one shape serves every batch.
        grad_scale, weight_decay : the gradient is grad_scale X_b^T R + weight_decay B.
        lr : the bias-corrected step size.
        residual_sq : ||X_b B - X_b||^2 and B_sq : ||B||^2, both at the B passed in.
        ``b_pad`` (keyword, static): rows of the dense residual, at least the batch's users.
    """
    import jax
    import jax.numpy as jnp

    def scatter_rows(out, index_to, index_from, vals, source, n_chunks):
        # out[index_to[c, p]] += vals[c, p] * source[index_from[c, p]], one chunk at a time.
        def body(c, acc):
            return acc.at[index_to[c]].add(vals[c][:, None] * source[index_from[c]], mode="promise_in_bounds")

        return jax.lax.fori_loop(0, n_chunks, body, out)

    def split(x):
        return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)

    def step(B, m, v, rows, cols, vals, n_chunks, grad_scale, weight_decay, lr, beta1, beta2, eps, *, b_pad):
        TRACES["adam"] += 1
        n = B.shape[0]
        H = scatter_rows(split(jnp.zeros((b_pad, B.shape[1]), B.dtype)), rows, cols, vals, B, n_chunks)
        R = split(H.at[rows.reshape(-1), cols.reshape(-1)].add(-vals.reshape(-1), mode="promise_in_bounds"))
        residual_sq = jnp.vdot(R, R)
        B_sq = jnp.vdot(B, B)
        # Starting the scatter from (weight_decay / grad_scale) B makes its result the whole
        # gradient over grad_scale, without another n x n temporary.
        G = split(scatter_rows(B * (weight_decay / grad_scale), cols, rows, vals, R, n_chunks))
        diag = jnp.arange(n)
        g = G.at[diag, diag].set(0) * grad_scale
        m = split(beta1 * m + (1 - beta1) * g)
        v = split(beta2 * v + (1 - beta2) * (g * g))
        B = split((B - lr * m / (jnp.sqrt(v) + eps)).at[diag, diag].set(0))
        return B, m, v, residual_sq, B_sq

    return jax.jit(step, donate_argnums=(0, 1, 2), static_argnames=("b_pad",))


def column_sharding(devices):
    """A ``NamedSharding`` that splits the columns of a matrix over ``devices`` (a 1-D mesh named "songs")."""
    import jax
    import numpy as np

    mesh = jax.sharding.Mesh(np.asarray(devices), ("songs",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "songs"))
