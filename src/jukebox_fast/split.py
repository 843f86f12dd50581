"""Hold out part of a listening log, writing both parts in the problem's own formats.

The protocols and the random draws are those of ``shared/tools/make_split.py``,
so the same seed gives the same split (and the same bytes) from either tool.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .errors import InputFormatError, JukeboxError, JukeboxWarning, repeats_message

PROTOCOLS = ("random", "per-user")


def split_plays(user_codes, n_users, seed=0, ratio=0.8, protocol="random"):
    """Which plays go to the train part.

    Parameters
    ----------
    user_codes : ndarray, (n_plays,), int
        The user index of each play, in file order; users are numbered in
        order of first appearance.
    n_users : int
    seed : int
        Seed of the random number generator (``numpy.random.default_rng``).
    ratio : float
        Share of plays kept for training, in (0, 1).
    protocol : {"random", "per-user"}
        ``random``: shuffle all plays; the first ``int(n * ratio)`` are
        train (a user or song may end up only in the held-out part).
        ``per-user``: every user with at least two plays holds out
        ``max(1, round((1 - ratio) * n))`` of their n plays.

    Returns
    -------
    ndarray, (n_plays,), bool
        True for the plays kept for training.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if not 0 < ratio < 1:
        raise ValueError(f"ratio must be between 0 and 1, got {ratio!r}")
    rng = np.random.default_rng(seed)
    n = user_codes.size
    train = np.zeros(n, bool)
    if protocol == "random":
        train[rng.permutation(n)[: int(n * ratio)]] = True
        return train
    order = np.argsort(user_codes, kind="stable")
    bounds = np.searchsorted(user_codes[order], np.arange(n_users + 1))
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        plays = order[lo:hi]
        if plays.size < 2:
            train[plays] = True
            continue
        n_test = max(1, int(round((1 - ratio) * plays.size)))
        train[plays[rng.permutation(plays.size)[n_test:]]] = True
    return train


def split_file(
    listens_path: str | os.PathLike, out_dir: str | os.PathLike, seed: int = 0, ratio: float = 0.8, protocol: str = "random"
) -> dict:
    """Split a listening log into OUT_DIR/listen_count.txt, test_data.txt and user_ids.txt.

    ``listen_count.txt`` holds the train plays in file order, one
    ``<user_id> <song_id> <count>`` line each; ``test_data.txt`` a line
    per user with held-out plays, ``<user_id> <song_id> ...`` in file
    order, users in order of their first held-out play; ``user_ids.txt``
    the same users, one a line. A (user, song) pair repeated in the log is
    one play whose counts are summed, so it never lands in both parts.

    Returns
    -------
    dict
        ``train_plays``, ``held_out_plays``, ``users`` (held-out users) and
        ``cold_users`` (held-out users without train plays).
    """
    from .data import factorize
    from .io import LISTEN_FORMAT, split_fields, write_output

    buf, starts, lengths, hashes, counts = split_fields(listens_path, 3, LISTEN_FORMAT)
    if counts.size == 0:
        raise InputFormatError(listens_path, None, f"lines of {LISTEN_FORMAT}", "no plays (the file is empty)")
    user_codes, users = factorize(buf, starts[0], lengths[0], hashes[0])
    song_codes, songs = factorize(buf, starts[1], lengths[1], hashes[1])
    pairs = user_codes.astype(np.int64) * len(songs) + song_codes
    _, first, inverse = np.unique(pairs, return_index=True, return_inverse=True)
    if first.size < pairs.size:
        warnings.warn(repeats_message(listens_path, pairs.size - first.size), JukeboxWarning, stacklevel=2)
        order = np.argsort(first)  # distinct pairs in order of first appearance
        summed = np.zeros(first.size, np.int64)
        np.add.at(summed, np.argsort(order)[inverse.reshape(-1)], counts)
        counts = summed
        user_codes, song_codes = user_codes[first[order]], song_codes[first[order]]
    train = split_plays(user_codes, len(users), seed, ratio, protocol)

    user_ids, song_ids = users.tolist(), songs.tolist()
    test = np.flatnonzero(~train)
    held = {}
    for u, s in zip(user_codes[test].tolist(), song_codes[test].tolist()):
        held.setdefault(u, []).append(song_ids[s])
    train_text = "".join(
        f"{user_ids[u]} {song_ids[s]} {c}\n"
        for u, s, c in zip(user_codes[train].tolist(), song_codes[train].tolist(), counts[train].tolist())
    )
    test_text = "".join(f"{user_ids[u]} {' '.join(songs)}\n" for u, songs in held.items())
    users_text = "".join(f"{user_ids[u]}\n" for u in held)

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise JukeboxError(f"{out_dir}: is a file, expected a directory for the split")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise JukeboxError(f"{out_dir}: cannot create the directory: {e.strerror}") from None
    for name, text in (("listen_count.txt", train_text), ("test_data.txt", test_text), ("user_ids.txt", users_text)):
        write_output(os.path.join(out_dir, name), text.encode("utf-8"))
    has_train = np.zeros(len(users), bool)
    has_train[user_codes[train]] = True
    return {
        "train_plays": int(train.sum()),
        "held_out_plays": int(test.size),
        "users": len(held),
        "cold_users": sum(1 for u in held if not has_train[u]),
    }
