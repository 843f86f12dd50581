"""The synthetic log generator of bench/: shape, determinism, and files that read back to the same plays."""

import pathlib
import sys

import numpy as np
import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"
if not (BENCH / "synthetic.py").is_file():
    pytest.skip("bench/synthetic.py is not here", allow_module_level=True)
sys.path.insert(0, str(BENCH))
import synthetic  # noqa: E402


@pytest.fixture(scope="module")
def log():
    return synthetic.generate_log(2000, 20000, 300_000, seed=3)


def test_plays_are_distinct_pairs_of_every_user(log):
    users, songs, counts = log
    assert users.size == songs.size == counts.size
    assert np.unique(users * 2000 + songs).size == users.size
    assert np.array_equal(np.unique(users), np.arange(20000))
    assert songs.min() >= 0 and songs.max() < 2000 and counts.min() >= 1


def test_shape_is_as_documented(log):
    users, songs, counts = log
    stats = synthetic.describe(users, songs, counts)
    assert abs(stats["plays"] - 300_000) < 0.05 * 300_000
    assert abs(stats["share of counts equal to 1"] - 0.57) < 0.01
    assert 0.05 <= stats["share of plays in the top 1% of songs"] <= 0.30
    flat, steep = (
        synthetic.describe(*synthetic.generate_log(2000, 5000, 60_000, seed=3, popularity_exponent=e))
        for e in (0.5, 1.3)
    )
    assert flat["share of plays in the top 1% of songs"] < stats["share of plays in the top 1% of songs"]
    assert stats["share of plays in the top 1% of songs"] < steep["share of plays in the top 1% of songs"]
    mean, median, p99 = stats["songs per user (mean, median, p99)"]
    assert median < mean < p99


def test_deterministic_for_a_seed():
    a, b, c = (synthetic.generate_log(300, 500, 5000, seed=s) for s in (1, 1, 2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_written_files_read_back_to_the_same_plays(tmp_path):
    from jukebox_fast import read_listens, read_user_ids

    listens, requested, stats = synthetic.write_log(tmp_path, 300, 500, 5000, seed=4, chunk=777)
    users, songs, counts = synthetic.generate_log(300, 500, 5000, seed=4)
    plays = read_listens(listens)
    assert plays.n_plays == users.size == stats["plays"]
    assert len(read_user_ids(requested)) == 500
    coo = plays.user_items.tocoo()
    user_ids, song_ids = plays.users.tolist(), plays.songs.tolist()
    read = {(user_ids[u], song_ids[s]): c for u, s, c in zip(coo.row, coo.col, coo.data)}
    # The generated ids are the dense codes through two permutations: compare the multisets of counts
    # per user and per song, and the pairs through the id maps of the file itself.
    assert sorted(read.values()) == sorted(counts.tolist())
    assert len(read) == users.size
    assert np.array_equal(np.sort(np.bincount(coo.row)), np.sort(np.bincount(users)))
    assert np.array_equal(np.sort(np.bincount(coo.col)), np.sort(np.bincount(songs)))


def test_format_lines_matches_python():
    rng = np.random.default_rng(0)
    columns = [rng.integers(0, 10**7, 50), rng.integers(0, 12, 50), np.zeros(50, np.int64)]
    expected = "".join(f"{a} {b} {c}\n" for a, b, c in zip(*columns)).encode()
    assert synthetic.format_lines(columns) == expected


def test_tastes_concentrate_each_users_plays_and_leave_the_default_log_unchanged():
    plain = synthetic.generate_log(600, 2000, 30_000, seed=5)
    assert all((a == b).all() for a, b in zip(plain, synthetic.generate_log(600, 2000, 30_000, seed=5, tastes=0)))
    tasted = synthetic.generate_log(600, 2000, 30_000, seed=5, tastes=10, taste_share=0.8)
    # The songs' ranks are generate_log's first draw; the song of rank r has taste r mod 10.
    taste_of_song = np.argsort(np.random.default_rng(5).permutation(600)) % 10

    def top_taste_share(users, songs, _):
        counts = np.zeros((2000, 10))
        np.add.at(counts, (users, taste_of_song[songs]), 1)
        many = counts.sum(1) >= 10
        return (counts.max(1)[many] / counts.sum(1)[many]).mean()

    assert top_taste_share(*plain) < 0.35
    assert top_taste_share(*tasted) > 0.7
