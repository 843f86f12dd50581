"""A synthetic listening log shaped like the official one, generated in code.

Songs belong to genres and have power-law popularity; each user likes one
to three genres and plays a log-normal number of songs (about 17 on
average), most of them from those genres; counts are geometric, about half
of them 1. The same arguments give the same bytes on every machine.
"""

import numpy as np


def generate_listens(n_users=2000, n_songs=800, n_genres=20, mean_songs=16.7, seed=0):
    """Return (listen_count_text, user_ids_text) as bytes.

    The user list asks for every tenth user plus two users who never played
    anything (they get the popular songs).
    """
    rng = np.random.default_rng(seed)
    genre_of = np.sort(rng.integers(0, n_genres, n_songs))
    popularity = rng.pareto(1.0, n_songs) + 1.0
    # Genre g owns the interval [g, g + 1) of a cumulative popularity scale.
    cumulative = np.empty(n_songs)
    for g in range(n_genres):
        members = genre_of == g
        cumulative[members] = g + np.cumsum(popularity[members]) / popularity[members].sum()
    overall = np.cumsum(popularity) / popularity.sum()

    sizes = np.clip(rng.lognormal(np.log(mean_songs) - 0.6, 1.1, n_users), 1, n_songs // 4).astype(np.int64)
    liked = rng.integers(0, n_genres, (n_users, 3))
    n_liked = rng.integers(1, 4, n_users)
    user = np.repeat(np.arange(n_users), sizes)
    genre = liked[user, (rng.random(user.size) * n_liked[user]).astype(np.int64)]
    in_genre = np.minimum(np.searchsorted(cumulative, genre + rng.random(user.size)), n_songs - 1)
    anywhere = np.minimum(np.searchsorted(overall, rng.random(user.size)), n_songs - 1)
    song = np.where(rng.random(user.size) < 0.85, in_genre, anywhere)
    _, first = np.unique(user * n_songs + song, return_index=True)
    user, song = user[first], song[first]
    count = rng.geometric(0.5, user.size)
    order = rng.permutation(user.size)

    song_ids = rng.permutation(n_songs) * 7 + 1000
    rows = np.stack([user[order] + 1, song_ids[song[order]], count[order]], axis=1)
    listens = "\n".join(f"{u} {s} {c}" for u, s, c in rows.tolist()) + "\n"
    users = [str(u + 1) for u in range(0, n_users, 10)] + ["new_user_1", "new_user_2"]
    return listens.encode(), ("\n".join(users) + "\n").encode()
