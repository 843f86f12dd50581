"""The machine's two ceilings that bound a run, and the floors they set for a catalogue of n songs.

    python bench/ceiling.py [--songs 41140] [--plays 30000000]

- arithmetic: the float32 4096 x 4096 x 4096 matmul rate (best of 5), on
  every core. The solve is n^3 flop of BLAS-3, so its floor is n^3 / rate.
- memory: 16-bit rows of an n x n matrix read in a random order on every
  core (scoring reads one row of B per play), in GB/s. Scoring's floor is
  plays * n * 2 bytes / rate.
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor


def matmul_rate():
    """float32 GEMM GFLOP/s."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32)
    np.matmul(a, a)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.matmul(a, a)
        best = min(best, time.perf_counter() - start)
    return 2 * 4096**3 / best / 1e9


def row_read_rate(n, n_rows=200_000):
    """GB/s of int16 rows of an n x n matrix read in a random order, one thread per core."""
    import os

    import numpy as np
    from numba import njit

    @njit(nogil=True)
    def add_rows(dense, rows, out):
        for r in rows:
            source = dense[r]
            for j in range(source.size):
                out[j] += np.float32(source[j])

    dense = np.ones((n, n), np.int16)
    rows = np.random.default_rng(1).integers(0, n, n_rows)
    threads = len(os.sched_getaffinity(0))
    shares = np.array_split(rows, threads)
    add_rows(dense, rows[:2], np.zeros(n, np.float32))
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(lambda share: add_rows(dense, share, np.zeros(n, np.float32)), shares))
        seconds = time.perf_counter() - start
    return rows.size * n * 2 / seconds / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=41140)
    parser.add_argument("--plays", type=int, default=30_000_000)
    args = parser.parse_args()
    n = args.songs
    gflops = matmul_rate()
    print(f"float32 matmul: {gflops:.0f} GFLOP/s; solve floor at n = {n:,}: n^3 / rate = {n**3 / gflops / 1e9:.0f} s")
    bandwidth = row_read_rate(n)
    print(f"16-bit rows read at random: {bandwidth:.1f} GB/s; scoring floor for {args.plays:,} plays: "
          f"{args.plays * n * 2 / bandwidth / 1e9:.0f} s")


if __name__ == "__main__":
    main()
