"""The machine's two ceilings that bound a run, and the floors they set for a catalogue of n songs.

    python bench/ceiling.py [--songs 41140] [--plays 30000000]

- arithmetic: the float32 4096 x 4096 x 4096 matmul rate (best of 5), on
  every core. The solve is n^3 flop of BLAS-3, so its floor is n^3 / rate.
- memory: 16-bit rows of an n x n matrix read in a random order on every
  core (scoring reads one row of B per play), in GB/s, each entry turned
  into a float32 and added up, as scoring does. Scoring's floor is
  plays * n * 2 bytes / rate. Also the same rows' bytes alone (64-bit
  words XORed, no arithmetic to speak of): the memory's own rate.
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


def row_read_rate(n, n_rows=200_000, bytes_only=False):
    """GB/s of int16 rows of an n x n matrix read in a random order, one thread per core.

    Each entry is converted to float32 and added into a row of sums, or
    with ``bytes_only`` the rows' 64-bit words are XORed together.
    """
    import os

    import numpy as np
    from numba import njit

    @njit(nogil=True)
    def add_rows(dense, rows, out):
        for r in rows:
            source = dense[r]
            for j in range(source.size):
                out[j] += np.float32(source[j])

    @njit(nogil=True)
    def xor_rows(words, rows, out):
        acc = np.uint64(0)
        for r in rows:
            source = words[r]
            for j in range(source.size):
                acc ^= source[j]
        out[0] = np.float32(acc & np.uint64(1))

    if bytes_only:  # rows of the same length in bytes, as 64-bit words
        kernel, matrix = xor_rows, np.ones((n, n // 4), np.uint64)
    else:
        kernel, matrix = add_rows, np.ones((n, n), np.int16)
    rows = np.random.default_rng(1).integers(0, n, n_rows)
    threads = len(os.sched_getaffinity(0))
    shares = np.array_split(rows, threads)
    kernel(matrix, rows[:2], np.zeros(n, np.float32))
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(lambda share: kernel(matrix, share, np.zeros(n, np.float32)), shares))
        seconds = time.perf_counter() - start
    return rows.size * matrix.shape[1] * matrix.itemsize / seconds / 1e9


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
    print(f"the same rows' bytes alone: {row_read_rate(n, bytes_only=True):.1f} GB/s")


if __name__ == "__main__":
    main()
