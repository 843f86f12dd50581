"""NDCG@100 and fit time of every model tried, on ../shared/data/jukebox/split-seed{0,1,2}.

    python bench/compare_models.py [--seeds 0 1 2] [--models NAME ...]

Each model is fit on a split's train file and recommends 100 songs for its
user_ids.txt; users without train plays get the most popular songs and
count, as in ``run``. NDCG@100 is jukebox_fast.evaluation.ndcg, with every
held-out song (also those never seen in training) in the ideal DCG. Prints a
Markdown table: mean NDCG over the seeds, fit seconds (the fastest of the
seeds: on a shared machine the slower ones measure the neighbours) and the
ratio to plain EASE's, measured in the same run.

Nothing here was tuned on these splits: the settings come from inner
80/20 splits of the train files (bench/tune_defaults.py; see the README).
"""

import argparse
import pathlib
import time

import numpy as np
import scipy.sparse as sp

from jukebox_fast import ndcg, read_listens, read_user_ids, select_rows
from jukebox_fast.models import EASE, EDLAE, Popularity, SparseEDLAE

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "jukebox"


# The additions after the inverse, off: the rows with PLAIN measure the model as it was before them.
PLAIN = dict(neighbour_weight=0, prior_weight=0, activity_exponent=0)
# p and the user exponent before they were re-tuned with the additions (0.85 and 0.4 now).
BEFORE = dict(dropout=0.8, user_exponent=0.5)

MODELS = {
    "popularity": lambda: Popularity(),
    "ease (lambda 100)": lambda: EASE(regularization=100),
    "ease, log weights (lambda 30)": lambda: EASE(regularization=30, weighting="log"),
    "ease + popularity^-.1 (edlae p 0, lambda 2.25 x mean diag)": lambda: EDLAE(
        regularization=2.25, dropout=0, user_exponent=0, popularity_exponent=0.1, **PLAIN
    ),
    "edlae p .5 (lambda 2.25 x mean diag)": lambda: EDLAE(
        regularization=2.25, dropout=0.5, penalty_exponent=1, user_exponent=0, popularity_exponent=0, **PLAIN
    ),
    "edlae p .5 + user weights n^-.5 (lambda 2.25)": lambda: EDLAE(
        regularization=2.25, dropout=0.5, penalty_exponent=1, user_exponent=0.5, popularity_exponent=0, **PLAIN
    ),
    "edlae p .5 + user weights + popularity^-.2 (lambda 6)": lambda: EDLAE(
        regularization=6, dropout=0.5, penalty_exponent=1, user_exponent=0.5, **PLAIN
    ),
    "edlae p .8, penalty ~ G_jj^.75 + user weights + popularity^-.2 (lambda 4)": lambda: EDLAE(**BEFORE, **PLAIN),
    "edlae + targets 1 + .1 log(count)": lambda: EDLAE(target_weight=0.1, **BEFORE, **PLAIN),
    "edlae + popularity prior (t 1)": lambda: EDLAE(**BEFORE, **{**PLAIN, "prior_weight": 1}),
    "edlae + debiasing by activity (d .05)": lambda: EDLAE(**BEFORE, **{**PLAIN, "activity_exponent": 0.05}),
    "edlae + prior + debiasing by activity": lambda: EDLAE(**BEFORE, neighbour_weight=0),
    "edlae + B's own kNN (w .03, 10 neighbours)": lambda: EDLAE(**BEFORE, **{**PLAIN, "neighbour_weight": 0.03}),
    "edlae + B's own kNN + prior + debiasing by activity": lambda: EDLAE(**BEFORE),
    "edlae p .85, user weights n^-.4 + B's own kNN + prior + debiasing by activity (run's default)": lambda: EDLAE(),
    "sparse, 100 links a song": lambda: SparseEDLAE(links=100),
    "sparse, 200 links a song (its default)": lambda: SparseEDLAE(),
    "sparse, 400 links a song": lambda: SparseEDLAE(links=400),
    "sparse, 200 links a song, chosen by raw co-occurrence": lambda: SparseEDLAE(link_exponent=0.0),
}


def read_held_out(path, interactions, users):
    """CSR (len(users), n_songs + unseen) of held-out songs; songs absent from training get extra columns."""
    songs = {}
    rows_of = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields:
                rows_of[fields[0]] = fields[1:]
    known = dict(zip(interactions.songs.tolist(), range(len(interactions.songs))))
    n = len(known)
    indptr, indices = [0], []
    for user in users.tolist():
        for song in rows_of.get(user, ()):
            index = known.get(song)
            if index is None:
                index = songs.setdefault(song, n + len(songs))
            indices.append(index)
        indptr.append(len(indices))
    data = np.ones(len(indices), np.float32)
    return sp.csr_array((data, np.array(indices, np.int64), np.array(indptr, np.int64)), shape=(len(users), n + len(songs)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    args = parser.parse_args()
    # Fit time is the fastest wall time over the seeds: on a shared machine the rest measures the neighbours.
    results = {name: ([], []) for name in args.models}
    for seed in args.seeds:
        folder = SHARED / f"split-seed{seed}"
        interactions = read_listens(folder / "listen_count.txt")
        users = read_user_ids(folder / "user_ids.txt")
        held_out = read_held_out(folder / "test_data.txt", interactions, users)
        asked = select_rows(interactions.user_items, interactions.users.lookup(users))
        for name in args.models:
            model = MODELS[name]()
            start, cpu = time.perf_counter(), time.process_time()
            model.fit(interactions.user_items)
            fit_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
            songs, _ = model.recommend(asked, k=100)
            score = float(np.nanmean(ndcg(songs, held_out)))
            results[name][0].append(score)
            results[name][1].append(fit_s)
            print(f"seed {seed} {name}: ndcg@100 {score:.4f}, fit {fit_s:.2f}s wall, {cpu_s:.2f}s cpu", flush=True)
    base = np.min(results["ease (lambda 100)"][1]) if "ease (lambda 100)" in results else np.nan
    print(f"\n| model | NDCG@100 (mean of seeds {', '.join(map(str, args.seeds))}) | per seed | fit s (best of seeds) | fit / EASE |")
    print("|---|---|---|---|---|")
    for name, (scores, times) in results.items():
        per_seed = " / ".join(f"{s:.4f}" for s in scores)
        print(f"| {name} | {np.mean(scores):.4f} | {per_seed} | {np.min(times):.2f} | {np.min(times) / base:.2f} |")


if __name__ == "__main__":
    main()
