"""Synthetic listening logs shaped like real ones, for scaling benchmarks.

    python bench/synthetic.py OUT_DIR --songs 41140 --users 571355 --plays 30000000

writes OUT_DIR/listen_count.txt and OUT_DIR/user_ids.txt (every user once)
shaped like the Million Song Dataset's taste profile as it is usually
preprocessed: song popularity a power law, songs per user log-normal, most
counts 1 with a heavy tail. Ids are decimal numbers that differ from the
dense indices, and the lines are shuffled.

With ``--tastes K`` the log has tastes to learn, not only popularity:
songs fall into K tastes, each user has one, and a share
``--taste-share`` of a user's plays are of songs of their taste, of about
the popularity the other draws would have had.
"""

import argparse
import pathlib
import time

import numpy as np


def generate_log(
    n_songs, n_users, n_plays, *, seed=0, popularity_exponent=0.9, popularity_offset=50.0, activity_sigma=0.9,
    ones_share=0.57, count_tail=1.5, max_count=10**6, tastes=0, taste_share=0.5,
):
    """Plays of a synthetic log: ``(user_codes, song_codes, counts)``, int64, no repeated (user, song) pair.

    Song j is drawn with probability proportional to (rank_j + offset) **
    -popularity_exponent, the ranks in a random order of the songs; user
    u plays about ``n_u`` distinct songs, n_u log-normal with sigma
    ``activity_sigma``, scaled so the total is near ``n_plays`` (at least
    1, at most ``n_songs``); a share ``ones_share`` of counts is 1, the
    rest 1 + a Pareto(``count_tail``) draw, capped at ``max_count``. With
    ``tastes`` K > 0, the song of rank r has taste r mod K, user u has a
    taste t_u drawn at random, and each draw is, with probability
    ``taste_share``, moved to the song of rank r - (r mod K) + t_u (the
    same band of popularity, the user's taste). Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    weights = (np.arange(n_songs) + popularity_offset) ** -popularity_exponent
    song_of_rank = rng.permutation(n_songs)
    cumulative = np.cumsum(weights / weights.sum())
    activity = rng.lognormal(0.0, activity_sigma, n_users)
    wanted = np.clip(np.rint(activity * (n_plays / activity.sum())), 1, n_songs).astype(np.int64)
    taste = rng.integers(0, tastes, n_users) if tastes else None

    def draw(who, how_many):
        owners = np.repeat(who, how_many)
        ranks = np.minimum(np.searchsorted(cumulative, rng.random(owners.size)), n_songs - 1)
        if tastes:
            moved = rng.random(owners.size) < taste_share
            shifted = ranks - ranks % tastes + taste[owners]
            shifted[shifted >= n_songs] -= tastes
            ranks = np.where(moved & (shifted >= 0), shifted, ranks)
        return owners * n_songs + song_of_rank[ranks]

    def trim(keys):
        """Distinct pairs, at most ``wanted`` per user, the ones kept chosen at random."""
        keys = np.unique(keys)
        owners = keys // n_songs
        order = np.argsort((owners << 32) | rng.integers(0, 1 << 32, keys.size), kind="stable")
        keys, owners = keys[order], owners[order]
        have = np.bincount(owners, minlength=n_users)
        first = np.concatenate([[0], np.cumsum(have)[:-1]])
        return np.sort(keys[np.arange(keys.size) - first[owners] < wanted[owners]])

    # Draw a tenth more than wanted, with replacement; drop repeats and the surplus; then draw
    # again for the users still short, working on their pairs only.
    keys = trim(draw(np.arange(n_users), wanted + (wanted + 9) // 10))
    for _ in range(30):
        missing = wanted - np.bincount(keys // n_songs, minlength=n_users)
        short = np.flatnonzero(missing > 0)
        if short.size == 0:
            break
        theirs = np.isin(keys // n_songs, short)
        extra = draw(short, 2 * missing[short] + 1)
        keys = np.concatenate([keys[~theirs], trim(np.concatenate([keys[theirs], extra]))])
    keys.sort()
    users, songs = keys // n_songs, keys % n_songs
    counts = np.ones(users.size, np.int64)
    heavy = rng.random(users.size) >= ones_share
    counts[heavy] = np.minimum(1 + np.floor(1 + rng.pareto(count_tail, int(heavy.sum()))), max_count).astype(np.int64)
    return users, songs, counts


def describe(user_codes, song_codes, counts):
    """Shape statistics of a log's plays."""
    per_user = np.bincount(user_codes)
    per_song = np.bincount(song_codes)
    per_song = per_song[per_song > 0]
    top = np.sort(per_song)[::-1][: max(1, per_song.size // 100)]
    return {
        "users": int((per_user > 0).sum()), "songs": int(per_song.size), "plays": int(counts.size),
        "songs per user (mean, median, p99)": (round(float(per_user.mean()), 1), float(np.median(per_user)),
                                               float(np.percentile(per_user, 99))),
        "listeners per song (min, median)": (int(per_song.min()), float(np.median(per_song))),
        "share of plays in the top 1% of songs": round(float(top.sum() / per_song.sum()), 3),
        "share of counts equal to 1": round(float((counts == 1).mean()), 3), "largest count": int(counts.max()),
    }


def _digits(values):
    """ASCII decimal digits of non-negative integers: (n, width) uint8 and the mask of the digits to keep."""
    width = max(1, len(str(int(values.max())))) if values.size else 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers) % 10
    keep = (values[:, None] >= powers) | (powers == 1)  # no leading zeros, but "0" itself
    return (digits + ord("0")).astype(np.uint8), keep


def format_lines(columns):
    """Bytes of lines of space-separated non-negative integers, one line per row of the columns."""
    parts, masks = [], []
    for c, values in enumerate(columns):
        digits, keep = _digits(np.asarray(values, np.int64))
        parts += [digits, np.full((len(values), 1), ord(" " if c + 1 < len(columns) else "\n"), np.uint8)]
        masks += [keep, np.ones((len(values), 1), bool)]
    return np.hstack(parts)[np.hstack(masks)].tobytes()


def write_log(directory, n_songs, n_users, n_plays, *, seed=0, chunk=4_000_000, **shape):
    """Write ``listen_count.txt`` and ``user_ids.txt`` of a synthetic log into ``directory``.

    Returns their paths and the log's ``describe``.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    users, songs, counts = generate_log(n_songs, n_users, n_plays, seed=seed, **shape)
    rng = np.random.default_rng(seed + 1)
    user_ids = rng.permutation(n_users) + 100_000  # ids are not the dense indices
    song_ids = rng.permutation(n_songs) + 1_000
    order = rng.permutation(users.size)
    listens, requested = directory / "listen_count.txt", directory / "user_ids.txt"
    with open(listens, "wb") as f:
        for lo in range(0, order.size, chunk):
            rows = order[lo : lo + chunk]
            f.write(format_lines([user_ids[users[rows]], song_ids[songs[rows]], counts[rows]]))
    requested.write_bytes(format_lines([user_ids[np.unique(users)]]))
    return listens, requested, describe(users, songs, counts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--songs", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--plays", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--popularity-exponent", type=float, default=0.9)
    parser.add_argument("--activity-sigma", type=float, default=0.9)
    parser.add_argument("--ones-share", type=float, default=0.57)
    parser.add_argument("--tastes", type=int, default=0)
    parser.add_argument("--taste-share", type=float, default=0.5)
    args = parser.parse_args()
    start = time.perf_counter()
    shape = dict(popularity_exponent=args.popularity_exponent, activity_sigma=args.activity_sigma, ones_share=args.ones_share,
                 tastes=args.tastes, taste_share=args.taste_share)
    listens, _, stats = write_log(args.out_dir, args.songs, args.users, args.plays, seed=args.seed, **shape)
    print(f"{listens}: {listens.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - start:.1f} s")
    for key, value in stats.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
