"""Blocks of work on a Dask cluster, or on any ``concurrent.futures`` executor.

The sparse model's fit splits into blocks of songs and every model's
scoring into blocks of users; each block is computed by the same kernels,
row by row, as in one process, so the results are the same bytes however
the blocks are spread. ``Blocks`` hands them to an executor:

- a ``dask.distributed.Client`` (``pip install 'jukebox_fast[distributed]'``):
  the large inputs are scattered to every worker once
  (``Client.scatter(..., broadcast=True)``); a worker lost mid-run costs
  only its blocks, which the scheduler computes again elsewhere;
- any object with ``submit(function, *args)`` returning futures, such as
  ``concurrent.futures.ProcessPoolExecutor``: the inputs travel with each
  block.

``fit(..., executor=...)`` and ``recommend(..., executor=...)`` of every
model take either; the command line's ``--workers N`` starts a local
cluster of N processes (``local_cluster``) and ``--scheduler ADDRESS``
joins a running one (``connect``).
"""

from __future__ import annotations

import contextlib
import os

from . import _parallel as parallel
from . import runtime
from .errors import BackendUnavailableError, JukeboxError

INSTALL = "pip install 'jukebox_fast[distributed]'"
# Seconds to wait for a scheduler before giving up.
CONNECT_TIMEOUT = 10
# Users per block of scoring.
BLOCK_USERS = 16384


def _distributed():
    try:
        import distributed
    except ImportError:
        raise BackendUnavailableError("dask.distributed", INSTALL) from None
    return distributed


def is_dask_client(executor) -> bool:
    return hasattr(executor, "scatter") and hasattr(executor, "gather") and hasattr(executor, "submit")


class Blocks:
    """Runs a function over blocks on ``executor``, results in block order, progress counted in blocks."""

    def __init__(self, executor):
        if not hasattr(executor, "submit"):
            raise TypeError(
                f"executor must be a dask.distributed.Client or have submit(function, *args) (as "
                f"concurrent.futures executors do), got {type(executor).__name__}"
            )
        self.executor = executor
        self.dask = is_dask_client(executor)

    def share(self, value):
        """A handle on ``value`` for the blocks' arguments: on every Dask worker once, else ``value`` itself."""
        if self.dask:
            return self.executor.scatter(value, broadcast=True, hash=False)
        return value

    def map(self, function, blocks, *shared, describe=None):
        """``[function(*shared, *block) for block in blocks]``, each call a task; ``describe(done, total)`` for progress.

        ``function`` must be importable by name on the workers (a
        module-level function of jukebox_fast).
        """
        blocks = list(blocks)
        if not blocks:
            return []
        progress = runtime.Progress(len(blocks), describe or (lambda done, total: f"{done:,} of {total:,} blocks"))
        home = os.getpid()
        options = {"pure": False} if self.dask else {}
        futures = [self.executor.submit(_in_block, home, function, *shared, *block, **options) for block in blocks]
        index = {id(future): i for i, future in enumerate(futures)}
        results = [None] * len(futures)
        if self.dask:
            completed = _distributed().as_completed(futures, loop=self.executor.loop)
        else:
            import concurrent.futures

            completed = concurrent.futures.as_completed(futures)
        try:
            for future in completed:
                results[index[id(future)]] = future.result()
                progress.advance(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        progress.finish()
        return results


def recommend_blocks(blocks, model, user_items, k, filter_seen, candidates):
    """``model.recommend`` by blocks of ``BLOCK_USERS`` rows on ``blocks``' executor, the model shared once (k <= n_items)."""
    import numpy as np

    n = user_items.shape[0]
    ranges = parallel.split(n, max(1, -(-n // BLOCK_USERS)))
    if not ranges:
        return np.empty((0, k), np.int32), np.empty((0, k), np.float32)
    # The plays go to every worker once, as the model does: a block is a range of rows.
    parts = blocks.map(
        recommend_block, ranges, blocks.share(model), blocks.share(user_items), k, filter_seen,
        None if candidates is None else blocks.share(candidates),
        describe=lambda done, total: f"scored {done:,} of {total:,} blocks of users",
    )
    return np.concatenate([indices for indices, _ in parts]), np.concatenate([scores for _, scores in parts])


def recommend_block(model, user_items, k, filter_seen, candidates, lo, hi):
    """One block of ``recommend_blocks``: the model's own scoring of rows lo..hi-1."""
    return model.recommend(user_items[lo:hi], k, filter_seen=filter_seen, items=candidates)


def _in_block(home, function, *args):
    """Run one block: on a worker process, with one kernel and BLAS thread (the worker runs blocks side by side)."""
    if os.getpid() != home:
        _single_threaded()
        return function(*args)
    with runtime.limit_threads(1):  # an executor of threads in the calling process
        return function(*args)


_worker = {"single": False}


def _single_threaded():
    if not _worker["single"]:
        from threadpoolctl import threadpool_limits

        import scipy.linalg  # noqa: F401  (threadpoolctl limits only the BLAS libraries already loaded)

        threadpool_limits(1)
        parallel.set_num_threads(1)
        _worker["single"] = True


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """A ``dask.distributed.Client`` of the scheduler at ``address``; a JukeboxError within ``timeout`` s if none answers."""
    distributed = _distributed()
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise JukeboxError(f"cannot reach the Dask scheduler at {address} within {timeout:g}s ({reason})") from None


def local_cluster(n_workers: int):
    """A ``dask.distributed.Client`` of a new cluster of ``n_workers`` processes on this machine, sharing its cores."""
    distributed = _distributed()
    cores = parallel.get_num_threads()
    cluster = distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=max(1, cores // n_workers),
        processes=True,
        dashboard_address=":0",  # any free port: several clusters may run side by side
        silence_logs=40,
    )
    return distributed.Client(cluster, set_as_default=False)


@contextlib.contextmanager
def session(workers=None, scheduler=None):
    """The Client of ``--workers N`` / ``--scheduler ADDRESS`` for a command's duration (None for neither), closed after."""
    if workers is None and scheduler is None:
        yield None
        return
    client = connect(scheduler) if scheduler is not None else local_cluster(workers)
    try:
        if workers is not None:
            runtime.logger.info(f"cluster: {workers} local worker processes")
        else:
            runtime.logger.info(f"cluster: {len(client.scheduler_info()['workers'])} workers at {scheduler}")
        yield client
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and workers is not None:
            cluster.close()
