"""Time of each phase of ``run`` on a listening log, next to the machine's floor and ceiling.

    python bench/phases.py [LISTEN_COUNT] [--scale S] [--users-scale U]

Without a file it uses the official log from ../shared when present (and
no ``--synthetic``), else a synthetic log of the same shape; ``--scale``
multiplies the songs and ``--users-scale`` the users of the synthetic log
(2x and 4x in the README).
Each phase runs warm (kernels compiled) in this process, best of --repeat.
"""

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

OFFICIAL = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jukebox" / "listen_count.txt"


def best_of(repeat, function, *args):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("listen_count", nargs="?")
    parser.add_argument("--scale", type=float, default=1.0, help="songs of the synthetic log, x 8,262")
    parser.add_argument("--users-scale", type=float, default=1.0, help="users of the synthetic log, x 20,278")
    parser.add_argument("--synthetic", action="store_true", help="a synthetic log even at 1x")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from scipy.linalg import lapack

    from jukebox_fast import EDLAE, format_recommendations, read_listens, weigh
    from jukebox_fast.example import generate_listens
    from jukebox_fast.models.ease import gram_matrix
    from jukebox_fast.models.edlae import weigh_users

    path = args.listen_count
    tmp = tempfile.TemporaryDirectory()
    if path is None and OFFICIAL.is_file() and args.scale == 1 and args.users_scale == 1 and not args.synthetic:
        path = OFFICIAL
    elif path is None:
        n_songs, n_users = int(8262 * args.scale), int(20278 * args.users_scale)
        listens, _ = generate_listens(n_users=n_users, n_songs=n_songs, n_genres=int(60 * args.scale), seed=1)
        path = pathlib.Path(tmp.name) / "listen_count.txt"
        path.write_bytes(listens)
    repeat = args.repeat
    read_listens(path)  # compile / load the kernels
    t_read, plays = best_of(repeat, read_listens, path)
    n_users, n = plays.user_items.shape
    # The default model, as `run` fits it: its gram matrix, then the rest of its fit (the solve,
    # B in place, the kNN, the prior), timed as the whole fit less the gram.
    default = EDLAE()
    X = weigh_users(weigh(plays.user_items, default.weighting), default.user_exponent)
    t_gram, gram = best_of(repeat, gram_matrix, X, True)
    t_fit, model = best_of(repeat, EDLAE().fit, plays.user_items)

    def floor():
        a = gram.copy(order="F")
        a[np.diag_indices(n)] += 100
        start = time.perf_counter()
        factor, info = lapack.spotrf(a, lower=1, clean=0, overwrite_a=1)
        _, info2 = lapack.spotri(factor, lower=1, overwrite_c=1)
        assert info == info2 == 0
        return time.perf_counter() - start

    t_floor = min(floor() for _ in range(repeat))

    def recommend():  # a new model each time: it makes its 16-bit B anew, as a run does
        fresh = EDLAE()
        vars(fresh).update({name: value for name, value in vars(model).items() if name.endswith("_")})
        return fresh.recommend(plays.user_items)

    model.recommend(plays.user_items[:10])
    t_recommend, (recommended, _) = best_of(repeat, recommend)
    t_format, _ = best_of(repeat, format_recommendations, plays.users, plays.songs, recommended)
    a = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    t_matmul, _ = best_of(repeat, np.matmul, a, a)
    gflops = 2 * 4096**3 / t_matmul / 1e9

    total = t_read + t_fit + t_recommend + t_format
    print(f"log: {path.name if hasattr(path, 'name') else path}: {plays.n_plays:,} plays, {n_users:,} users, {n:,} songs")
    print(f"float32 matmul ceiling: {gflops:.0f} GFLOP/s; floor (spotrf+spotri, n^3 = {n**3 / 1e9:.0f} GFLOP): "
          f"{t_floor:.3f} s = {n**3 / t_floor / 1e9:.0f} GFLOP/s")
    print("| phase | seconds | share |")
    print("|---|---|---|")
    for name, seconds in [("read", t_read), ("gram", t_gram), ("rest of the fit (potrf+potri, B, kNN, prior)", t_fit - t_gram),
                          ("recommend (16-bit B, score, top-k)", t_recommend), ("format", t_format)]:
        print(f"| {name} | {seconds:.3f} | {seconds / total:.0%} |")
    print(f"| total in process | {total:.3f} | {total / t_floor:.2f}x floor |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
