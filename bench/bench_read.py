"""Reading the listening log: the Numba reader against pandas.read_csv + factorize."""

import numpy as np
import pytest

from jukebox_fast import read_listens


def read_with_pandas(path):
    import pandas as pd

    frame = pd.read_csv(path, sep=" ", header=None, names=["user", "song", "count"], dtype={"user": str, "song": str})
    users, user_ids = pd.factorize(frame["user"])
    songs, song_ids = pd.factorize(frame["song"])
    return users, songs, frame["count"].to_numpy(), user_ids, song_ids


@pytest.mark.benchmark(group="read")
def test_read_jukebox_fast(benchmark, listens_path):
    read_listens(listens_path)  # compiled and cached outside the timing
    plays = benchmark(read_listens, listens_path)
    users, songs, counts, user_ids, song_ids = read_with_pandas(listens_path)
    assert plays.users.tolist() == list(user_ids) and plays.songs.tolist() == list(song_ids)
    assert plays.n_plays == counts.size
    np.testing.assert_array_equal(plays.user_items[users, songs], counts)
    benchmark.extra_info["megabytes"] = listens_path.stat().st_size / 1e6


@pytest.mark.benchmark(group="read")
def test_read_pandas_baseline(benchmark, listens_path):
    pytest.importorskip("pandas")
    users, songs, counts, _, _ = benchmark(read_with_pandas, listens_path)
    assert counts.size == users.size == songs.size
