"""One prepared check of the GPU paths against the CPU ones, and their times, printed as one table.

    python bench/gpu_check.py [--data ../shared/data/jukebox] [--budget 480] [--host]

On a machine with a CUDA GPU and CuPy (``pip install '.[gpu,jax]'``):

1. the closed form with ``device="gpu"`` against the CPU on the official
   log (fit on split-seed0's train plays when there, else on a synthetic
   log): the share of identical top-100 entries, NDCG@100 of both, fit times;
2. the EDLAE fit and a whole ``run`` (read, fit, recommend, format) on the
   official log on the GPU;
3. EDLAE's fit on synthetic MSD-shaped logs of 41,140 songs and of the
   largest catalogue whose two n x n float32 matrices (G and its factor)
   fit in 80% of the GPU's memory (capped at 120,000 songs);
4. the sgd step (``LinearAutoencoder``, cupy and jax backends) at batch 512
   and 4,096 on the official log.

Each item is skipped when the time spent passes ``--budget`` seconds.
``--host`` runs the same code with NumPy/SciPy in place of CuPy (a check of
the script itself, on any machine).
"""

import argparse
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = []


def row(what, value, note=""):
    ROWS.append((what, value, note))
    print(f"{what:<58} {value:>14}  {note}", flush=True)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - start


def synthetic_plays(n_songs, n_users, n_plays, seed=0):
    sys.path.insert(0, HERE)
    from synthetic import generate_log

    users, songs, counts = generate_log(n_songs, n_users, n_plays, seed=seed)
    return sp.csr_array((counts.astype(np.float32), (users, songs)), shape=(n_users, n_songs))


def agreement(model_cls, train, scored, held_out, **params):
    from jukebox_fast import ndcg

    cpu, cpu_s = timed(model_cls(**params, device="cpu").fit, train)
    gpu, gpu_s = timed(model_cls(**params, device="gpu").fit, train)
    a, _ = cpu.recommend(scored, k=100)
    b, _ = gpu.recommend(scored, k=100)
    same = np.mean([np.intersect1d(x[x >= 0], y[y >= 0]).size / max((x >= 0).sum(), 1) for x, y in zip(a, b)])
    name = model_cls.__name__
    row(f"{name}: top-100 entries the GPU shares with the CPU", f"{same:.2%}", "bar: 99%")
    if held_out is not None:
        gap = abs(np.nanmean(ndcg(a, held_out)) - np.nanmean(ndcg(b, held_out)))
        row(f"{name}: NDCG@100 CPU / GPU", f"{np.nanmean(ndcg(a, held_out)):.4f} / {np.nanmean(ndcg(b, held_out)):.4f}",
            f"gap {gap:.1e}, bar 1e-4")
    row(f"{name}: fit on {train.shape[1]:,} songs, CPU / GPU s", f"{cpu_s:.2f} / {gpu_s:.2f}", f"{cpu_s / gpu_s:.1f}x")


def largest_catalogue(modules):
    xp = modules[0]
    if xp is np:
        return 8192
    free, _ = xp.cuda.runtime.memGetInfo()
    return int(min(120_000, np.sqrt(0.8 * free / 8)) // 1024 * 1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data", "jukebox"))
    parser.add_argument("--budget", type=float, default=480.0)
    parser.add_argument("--host", action="store_true", help="NumPy/SciPy in place of CuPy: check the script anywhere")
    args = parser.parse_args()
    from jukebox_fast import _device, read_listens
    from jukebox_fast.models import EASE, EDLAE, LinearAutoencoder
    from jukebox_fast.pipeline import run
    from jukebox_fast.tune import load_split

    if args.host:
        _device.gpu_modules = _device.host_modules
    modules = _device.gpu_modules()
    start = time.perf_counter()

    def time_left():
        return time.perf_counter() - start < args.budget

    split = os.path.join(args.data, "split-seed0")
    if os.path.isdir(split):
        train, _, rows, held = load_split(split)
        known = rows >= 0
        from jukebox_fast.data import select_rows

        plays, scored, held_out = train.user_items, select_rows(train.user_items, rows[known]), held[known]
    else:
        plays = synthetic_plays(8262, 20278, 340_000)
        scored, held_out = plays[:5000], None
    agreement(EASE, plays, scored, held_out, regularization=100.0)
    agreement(EDLAE, plays, scored, held_out)

    official = os.path.join(args.data, "listen_count.txt")
    if os.path.isfile(official) and time_left():
        users = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "all_users.txt")
        log = read_listens(official)
        with open(users, "w") as f:
            f.write("\n".join(log.users[i] for i in range(len(log.users))) + "\n")
        for device in ("cpu", "gpu"):
            (text, timer), seconds = timed(run, official, users, EDLAE(device=device))
            row(f"run, official log, all users, device {device} (s)", f"{seconds:.2f}", str(timer))
        os.unlink(users)

    for n_songs in (41_140, largest_catalogue(modules)):
        if not time_left():
            row(f"EDLAE fit, {n_songs:,} songs", "skipped", "over the budget")
            continue
        X = synthetic_plays(n_songs, 571_355 * n_songs // 41_140, 26_000_000 * n_songs // 41_140)
        _, seconds = timed(EDLAE(device="gpu").fit, X)
        row(f"EDLAE fit on the GPU, {n_songs:,} songs, {X.nnz:,} plays (s)", f"{seconds:.1f}",
            f"{float(n_songs) ** 3 / seconds / 1e12:.1f} TFLOP/s of n^3")
        del X

    if not args.host:
        for backend in ("cupy", "jax"):
            for batch in (512, 4096):
                if not time_left():
                    continue
                model = LinearAutoencoder(backend=backend, batch_size=batch, epochs=1)
                try:
                    _, seconds = timed(model.fit, plays)
                except Exception as error:  # a backend that is not installed: say so in the table
                    row(f"sgd {backend}, batch {batch}", "failed", str(error)[:60])
                    continue
                steps = -(-int((np.diff(plays.indptr) > 0).sum()) // batch)
                row(f"sgd {backend}, batch {batch}: one epoch, {steps} steps (s)", f"{seconds:.2f}",
                    f"{seconds / steps * 1e3:.1f} ms a step, compile included")
    print(f"\n{len(ROWS)} rows in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
