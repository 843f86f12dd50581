"""How EDLAE's defaults were chosen: validation inside ONE training file, never its test data.

    python bench/tune_defaults.py TRAIN_LISTEN_COUNT [--grid L,P,A,B[,E[,T[,C[,D[,N[,K]]]]]]] ...]

Splits the plays of TRAIN_LISTEN_COUNT 80/20 at random (the public splits'
protocol), fits each setting on the 80%, and prints the NDCG@100 of the
20% (users without plays in the 80% get the popular songs and count).
L is the regularization (a multiple of the mean gram diagonal), P the
dropout, A the user exponent, B the popularity exponent, E the penalty
exponent (1 when left out), T the target weight (0 when left out), C the
prior weight, D the activity exponent and N the neighbour weight (all 0
when left out), K the number of neighbours (10 when left out). The
defaults came from the train files
../shared/data/jukebox/split-seed{0,1,2}/listen_count.txt: L, P, A, B
first from seed0's, then E (with L and P) checked on all three, then T
with the rest fixed (0.1, 0.3, 0.6, 1 on seed0's; 0.05, 0.1, 0.15 on
seed1's and seed2's; 0.1 best or within 0.0001 everywhere), and with
T on, B 0.15 / 0.25 and L 3 / 6 (T 0.15) re-checked: all lower on all three.

C, D, N and K (run's defaults 1, 0.05, 0.03, 10) came last, with L, P,
A, B, E at their defaults then (4, 0.8, 0.5, 0.2, 0.75) and T 0: C and D
first on all three files, then N and K (first for an RP3beta kNN, since
replaced by B's own, which won on every file) on all three, then L, P, A,
B, C, D re-checked one at a time on all three: P 0.85 and A 0.4 gained on
every file, together too, and became the defaults. EDLAE's docstring gives
every number. The last checks, in the order printed (ease first):

    4,0.8,0.5,0.2,0.75,0,0,0,0           0.2400 0.2408 0.2395  (EDLAE alone)
    4,0.8,0.5,0.2,0.75,0,0,0,0.03,10     0.2418 0.2425 0.2412
    4,0.8,0.5,0.2,0.75,0,1,0.05,0        0.2417 0.2428 0.2416
    4,0.8,0.5,0.2,0.75,0,1,0.05,0.03,10  0.2433 0.2442 0.2427
    4,0.85,0.4,0.2,0.75,0,1,0.05,0.03,10 0.2443 0.2452 0.2435  (run's default)
    ... at P 0.8, A 0.5: K 5 / 20, N 0.02 / 0.04, L 3 / 5, P 0.75, A 0.3 / 0.6,
    B 0.15 / 0.25, C 0.7 / 1.3, D 0.03 / 0.08; at P 0.85, A 0.4: L 5, P 0.9,
    C 1.3 with D 0.08: none higher on every file.
"""

import argparse
import time

import numpy as np
import scipy.sparse as sp

from jukebox_fast import ndcg, read_listens
from jukebox_fast.models import EASE, EDLAE

GRID = [
    "2.25,0,0,0",
    "2.25,0.5,0,0",
    "2.25,0.5,0,0.1",
    "2.25,0.5,0.5,0",
    "6,0.5,0.5,0.2",
    "12,0.5,0.5,0.2",
    "6,0.5,0.5,0.2,0.75",
    "4,0.8,0.5,0.2,0.75",
    "2,0.89,0.5,0.2,0.75",
    "2,0.89,0.5,0.2,0.5",
    "4,0.8,0.5,0.2,0.75,0.1",
    "4,0.8,0.5,0.2,0.75,0.3",
    "4,0.8,0.5,0.2,0.75,0,1,0.05,0,10",
    "4,0.8,0.5,0.2,0.75,0,1,0.05,0.03,10",
    "4,0.85,0.4,0.2,0.75,0,1,0.05,0.03,10",
]


def split_plays(user_items, ratio, seed):
    """Two CSR matrices of the same shape: a random ``ratio`` of the plays, and the rest."""
    rows = np.repeat(np.arange(user_items.shape[0]), np.diff(user_items.indptr))
    keep = np.random.default_rng(seed).random(user_items.nnz) < ratio
    parts = []
    for mask in (keep, ~keep):
        part = sp.csr_array((user_items.data[mask], (rows[mask], user_items.indices[mask])), shape=user_items.shape)
        part.indptr = part.indptr.astype(np.int64)
        parts.append(part)
    return parts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train")
    parser.add_argument("--grid", nargs="+", default=GRID, metavar="L,P,A,B[,E[,T[,C[,D[,N[,K]]]]]]")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    plays = read_listens(args.train).user_items
    fit_part, held_out = split_plays(plays, 0.8, args.seed)
    users = np.flatnonzero(np.diff(held_out.indptr) > 0)
    candidates = [("ease lambda 80", EASE(regularization=80))]
    for spec in args.grid:
        reg, dropout, user_exponent, popularity_exponent, *rest = map(float, spec.split(","))
        penalty_exponent, target, prior, activity, neighbour, k = (rest + [1.0, 0.0, 0.0, 0.0, 0.0, 10][len(rest) :])[:6]
        model = EDLAE(
            reg, dropout, penalty_exponent, user_exponent, popularity_exponent, target_weight=target,
            neighbour_weight=neighbour, neighbours=int(k), prior_weight=prior, activity_exponent=activity,
        )
        candidates.append((f"edlae {spec}", model))
    for name, model in candidates:
        start = time.perf_counter()
        songs, _ = model.fit(fit_part).recommend(fit_part[users], k=100)
        score = np.nanmean(ndcg(songs, held_out[users]))
        print(f"{name}: validation ndcg@100 {score:.4f} ({time.perf_counter() - start:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
