"""Defaults against tuned EASE on many logs: the official log's splits, samples and protocols, and synthetic logs.

    python bench/any_log.py [--logs NAME ...] [--file NAME=PATH ...] [--models NAME ...] [--json OUT]

For each log, each model is fitted on the log's train part and scored on
its test part by NDCG@100 (the problem's metric; users with plays in both
parts). ``ease*`` is EASE at the best of a grid of lambdas chosen ON THE
TEST PART, the bar the defaults have to clear by 3%; every other model
sees only the train part. The logs (``--logs`` picks some):

- ``public0``..``public2``: the public splits of the official log
  (``../shared/data/jukebox/split-seed*``);
- ``peruser``: the official log, per-user 80/20 (each user holds out a fifth of their songs);
- ``random90``: the official log, random 90/10;
- ``users2k``: 2,000 users drawn from the official log, random 80/20;
- ``users1k-half``: 1,000 users and half the songs drawn from it, random 80/20 (songs outnumber users 2 to 1);
- ``synth-sparse``: synthetic, 9,000 songs, 1,600 users, 26 songs a user, heavy counts;
- ``synth-dense``: synthetic, 3,000 songs, 20,000 users, 60 songs a user, flat popularity;
- ``synth-steep``: synthetic, 6,000 songs, 20,000 users, steep popularity;
- ``taste-sparse``, ``taste-dense``, ``taste-steep``: the same three shapes
  with tastes (50, 20 and 100 of them; 60%, 50% and 50% of the plays).

``--file NAME=PATH`` adds a log of your own, in the format of
``listen_count.txt`` (user, song, count on each line), split at random
80/20.

The ``synth-*`` logs (``bench/synthetic.py``) draw songs by popularity
alone: they measure how a model behaves when nothing but popularity can
be learnt. The ``taste-*`` logs have tastes to learn. Deterministic: every draw has a fixed seed.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data", "jukebox")
EASE_GRID = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def official():
    from jukebox_fast import read_listens

    return read_listens(os.path.join(SHARED, "listen_count.txt")).user_items


def split(counts, protocol="random", ratio=0.8, seed=0):
    """``(train, test)`` CSR counts of the same shape, split as ``python -m jukebox_fast split`` would."""
    from jukebox_fast.split import split_plays

    counts = sp.csr_array(counts)
    users = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    keep = split_plays(users, counts.shape[0], seed=seed, ratio=ratio, protocol=protocol)
    parts = []
    for mask in (keep, ~keep):
        parts.append(sp.csr_array((counts.data[mask], (users[mask], counts.indices[mask])), shape=counts.shape))
    return parts


def sample(counts, users, songs=None, seed=0):
    """``users`` users (and ``songs`` songs) of a log drawn at random; songs nobody plays dropped."""
    rng = np.random.default_rng(seed)
    counts = sp.csr_array(counts)
    rows = np.sort(rng.choice(counts.shape[0], users, replace=False))
    part = counts[rows]
    if songs is not None:
        part = part[:, np.sort(rng.choice(counts.shape[1], songs, replace=False))]
    part = part[:, np.flatnonzero(np.diff(part.tocsc().indptr))]
    return sp.csr_array(part[np.flatnonzero(np.diff(part.indptr))])


def synthetic(n_songs, n_users, n_plays, seed=0, **shape):
    sys.path.insert(0, HERE)
    from synthetic import generate_log

    users, songs, counts = generate_log(n_songs, n_users, n_plays, seed=seed, **shape)
    return sp.csr_array((counts.astype(np.float32), (users, songs)), shape=(n_users, n_songs))


def public(seed):
    from jukebox_fast.data import select_rows
    from jukebox_fast.tune import load_split

    train, _, rows, held_out = load_split(os.path.join(SHARED, f"split-seed{seed}"))
    known = rows >= 0
    # Scored: the held-out users with train plays; held-out songs train never saw stay misses.
    return train.user_items, (select_rows(train.user_items, rows[known]), held_out[known])


LOGS = {
    "public0": lambda: public(0),
    "public1": lambda: public(1),
    "public2": lambda: public(2),
    "peruser": lambda: split(official(), "per-user", 0.8, seed=3),
    "random90": lambda: split(official(), "random", 0.9, seed=4),
    "users2k": lambda: split(sample(official(), 2000, seed=5), seed=5),
    "users1k-half": lambda: split(sample(official(), 1000, 4131, seed=6), seed=6),
    "synth-sparse": lambda: split(synthetic(9000, 1600, 42000, seed=7, ones_share=0.3), seed=7),
    "synth-dense": lambda: split(synthetic(3000, 20000, 1_200_000, seed=8, popularity_exponent=0.5), seed=8),
    "synth-steep": lambda: split(synthetic(6000, 20000, 400_000, seed=9, popularity_exponent=1.2), seed=9),
    "taste-sparse": lambda: split(synthetic(9000, 1600, 42000, seed=10, ones_share=0.3, tastes=50, taste_share=0.6), seed=10),
    "taste-dense": lambda: split(
        synthetic(3000, 20000, 1_200_000, seed=11, popularity_exponent=0.5, tastes=20, taste_share=0.5), seed=11
    ),
    "taste-steep": lambda: split(
        synthetic(6000, 20000, 400_000, seed=12, popularity_exponent=1.2, tastes=100, taste_share=0.5), seed=12
    ),
}


def evaluation_rows(train, test):
    """``(rows of train to score, their held-out songs)``: the users with plays in both parts."""
    if isinstance(test, tuple):
        return test[0], test[1]
    users = np.flatnonzero((np.diff(train.indptr) > 0) & (np.diff(test.indptr) > 0))
    return train[users], test[users]


def score(model, train, scored, held_out):
    from jukebox_fast import ndcg

    start = time.perf_counter()
    model.fit(train)
    songs, _ = model.recommend(scored, k=100)
    return float(np.mean(ndcg(songs, held_out, k=100))), time.perf_counter() - start


def from_file(path):
    """A log of your own, ``listen_count.txt``'s format, split at random 80/20."""
    from jukebox_fast import read_listens

    return split(read_listens(path).user_items, seed=13)


def run_log(name, models, out, make):
    from jukebox_fast.auto import choose
    from jukebox_fast.models import EASE, make_model

    train, test = make()
    train = sp.csr_array(train)
    scored, held_out = evaluation_rows(train, test)
    shape = f"{train.shape[0]:,} users, {train.shape[1]:,} songs, {train.nnz:,} train plays, {scored.shape[0]:,} scored"
    print(f"== {name}: {shape}", flush=True)
    result = out.setdefault(name, {"shape": shape})
    for spec in models:
        if spec == "ease*":
            best = max((score(EASE(regularization=lam), train, scored, held_out) + (lam,) for lam in EASE_GRID))
            result[spec] = {"ndcg": best[0], "seconds": best[1], "regularization": best[2]}
            print(f"  ease*  {best[0]:.4f}  (lambda {best[2]}, chosen on the test part)", flush=True)
            continue
        searched = spec.startswith("auto+")
        model_name, *params = spec.removeprefix("auto+").split(":")
        kwargs = {key: _number(value) for key, value in (p.split("=") for p in params)}
        model = make_model(model_name, **kwargs)
        start = time.perf_counter()
        if searched:  # the regularization chosen inside the train part, as `run` does by default
            model, record = choose(model, train)
        value, seconds = score(model, train, scored, held_out)
        if searched:  # the search counts too
            seconds = time.perf_counter() - start
        votes = getattr(model, "user_neighbour_weight", 0)
        result[spec] = {"ndcg": value, "seconds": seconds, "regularization": model.regularization, "user_neighbour_weight": votes}
        ratio = f"  {value / result['ease*']['ndcg']:.3f}x ease*" if "ease*" in result else ""
        chosen = f"  (regularization {model.regularization:g}, user votes {votes:g})" if searched else ""
        print(f"  {spec}  {value:.4f}  {seconds:.1f}s{ratio}{chosen}", flush=True)


def _number(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", nargs="*", default=None, choices=list(LOGS),
                        help="the built-in logs to run (default: all of them, unless --file is given)")
    parser.add_argument("--file", nargs="+", default=[], metavar="NAME=PATH",
                        help="a log of your own (listen_count.txt's format), split at random 80/20")
    parser.add_argument("--models", nargs="+", default=["ease*", "edlae"],
                        help="ease* (tuned on test), MODEL[:param=value...] (e.g. edlae:regularization=16), or auto+MODEL[...]: "
                        "its regularization chosen inside the train part first, as run does")
    parser.add_argument("--json")
    args = parser.parse_args()
    out = {}
    if args.json and os.path.exists(args.json):
        with open(args.json) as f:
            out = json.load(f)
    logs = {name: LOGS[name] for name in (args.logs if args.logs is not None else [] if args.file else LOGS)}
    for spec in args.file:
        name, sep, path = spec.partition("=")
        if not sep:
            parser.error(f"--file {spec}: expected NAME=PATH")
        logs[name] = lambda path=path: from_file(path)
    for name, make in logs.items():
        run_log(name, args.models, out, make)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
