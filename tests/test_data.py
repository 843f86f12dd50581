"""Interactions, IdMap and the play-matrix helpers of ``data``, against plain Python and SciPy."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast import IdMap
from jukebox_fast.data import as_user_items, factorize, select_rows, weigh
from jukebox_fast.kernels.parse import token_keys

tokens = st.text(alphabet="0123456789abcXYZ_é中", min_size=1, max_size=6)


def test_as_user_items_sums_repeats_and_refuses_what_is_not_play_counts():
    repeated = sp.coo_array((np.array([2, 3, 1]), (np.array([0, 0, 1]), np.array([1, 1, 0]))), shape=(2, 3))
    canonical = as_user_items(repeated)
    assert canonical.has_canonical_format and canonical.toarray().tolist() == [[0, 5, 0], [1, 0, 0]]
    with pytest.raises(TypeError, match="scipy.sparse"):
        as_user_items(np.ones((2, 2)))
    with pytest.raises(ValueError, match="positive, finite play counts"):
        as_user_items(sp.csr_array(np.array([[1, -2]])))
    with pytest.raises(ValueError, match="fit on 4"):
        as_user_items(canonical, n_items=4)


@pytest.mark.parametrize("weighting, expected", [
    ("binary", lambda c: np.ones_like(c)), ("log", lambda c: 1 + np.log1p(c)), ("count", lambda c: c),
])
def test_weigh_maps_each_count(weighting, expected):
    counts = sp.csr_array(np.array([[0, 3, 1], [7, 0, 0]]))
    weighted = weigh(counts, weighting)
    assert weighted.dtype == np.float32
    np.testing.assert_allclose(weighted.data, expected(counts.data.astype(np.float64)), rtol=1e-6)
    with pytest.raises(ValueError, match="weighting"):
        weigh(counts, "tfidf")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-1, 5), max_size=12))
def test_select_rows_takes_rows_in_order_and_empty_ones_for_minus_one(rows):
    matrix = sp.csr_array(np.arange(18).reshape(6, 3) % 4)
    picked = select_rows(matrix, rows)
    expected = np.array([matrix.toarray()[r] if r >= 0 else np.zeros(3) for r in rows]).reshape(len(rows), 3)
    assert picked.shape == (len(rows), 3) and (picked.toarray() == expected).all()


def factorize_words(words):
    """factorize() over the words laid out back to back, and the dict it should agree with."""
    encoded = [w.encode() for w in words]
    data = np.frombuffer(b"".join(encoded), np.uint8)
    lengths = np.array([len(w) for w in encoded], np.int64)
    starts = np.cumsum(lengths) - lengths
    keys = np.empty(len(words), np.uint64)
    token_keys(data, starts, lengths, keys)
    expected = {}
    for w in words:
        expected.setdefault(w, len(expected))
    return (*factorize(data, starts, lengths, keys), expected)


@settings(max_examples=100, deadline=None)
@given(st.lists(tokens, max_size=300))
def test_factorize_matches_dict(words):
    codes, ids, expected = factorize_words(words)
    assert codes.tolist() == [expected[w] for w in words]
    assert ids.tolist() == list(expected)
    assert ids.lookup(list(expected) + ["never_seen"]).tolist() == list(range(len(expected))) + [-1]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=20), max_size=200))
def test_digit_ids_long_and_short_with_leading_zeros(words):
    # 1 to 17 digits get exact keys, longer ones hashed keys: both must factorize like a dict.
    codes, ids, expected = factorize_words(words)
    assert codes.tolist() == [expected[w] for w in words]
    absent = sorted({"0" + w for w in expected} - set(expected))
    assert ids.lookup(list(expected) + absent).tolist() == list(range(len(expected))) + [-1] * len(absent)


def test_factorize_survives_hash_collisions():
    # Equal hashes for different tokens must still give different ids.
    words = [f"t{i}" for i in range(5000)]
    encoded = [w.encode() for w in words]
    data = np.frombuffer(b"".join(encoded), np.uint8)
    lengths = np.array([len(w) for w in encoded], np.int64)
    starts = np.cumsum(lengths) - lengths
    hashes = np.full(len(words), 12345, np.uint64)
    codes, ids = factorize(data, starts, lengths, hashes[: len(words)] % np.uint64(7))
    assert codes.tolist() == list(range(len(words)))
    assert ids.tolist() == words


def test_idmap_from_tokens_round_trip_and_refusals():
    ids = IdMap.from_tokens(["b", "a", "ü", "10"])
    assert len(ids) == 4 and ids[2] == "ü" and ids.tolist() == ["b", "a", "ü", "10"]
    assert ids.lookup(["10", "b", "c"]).tolist() == [3, 0, -1]
    with pytest.raises(ValueError, match="distinct"):
        IdMap.from_tokens(["a", "b", "a"])
    with pytest.raises(ValueError, match="blanks"):
        IdMap.from_tokens(["a b"])


def test_arrays_and_dataframes_give_what_the_file_gives(tmp_path):
    import pandas as pd

    from jukebox_fast import Interactions, read_listens
    from jukebox_fast.example import generate_listens

    listens, _ = generate_listens(n_users=120, n_songs=40, seed=9)
    (tmp_path / "log.txt").write_bytes(listens)
    from_file = read_listens(tmp_path / "log.txt")
    rows = [line.split() for line in listens.decode().splitlines()]
    users, songs, counts = ([r[i] for r in rows] for i in range(3))
    from_arrays = Interactions.from_arrays(users, songs, np.array(counts, np.int64))
    frame = pd.DataFrame({"user": users, "item": songs, "count": np.array(counts, np.int64)})
    for got in (from_arrays, Interactions.from_pandas(frame)):
        assert got.users.tolist() == from_file.users.tolist() and got.songs.tolist() == from_file.songs.tolist()
        assert (got.user_items != from_file.user_items).nnz == 0 and got.user_items.indptr.dtype == np.int64


def test_arrays_take_any_ids_sum_repeats_and_refuse_bad_counts():
    from jukebox_fast import Interactions, JukeboxWarning

    with pytest.warns(JukeboxWarning, match="1 rows repeat"):
        plays = Interactions.from_arrays([7, 8, 7], ["a", "b", "a"], [1, 2, 3.0])
    assert plays.users.tolist() == ["7", "8"] and plays.user_items.toarray().tolist() == [[4, 0], [0, 2]]
    assert Interactions.from_arrays(["u"], ["s"]).user_items.toarray().tolist() == [[1]]
    for counts, message in (([0], "whole numbers"), ([2.5], "whole numbers"), ([np.nan], "whole numbers"),
                            (["3"], "must be numbers"), ([1, 2], "column of 1")):
        with pytest.raises(ValueError, match=message):
            Interactions.from_arrays(["u"], ["s"], counts)
    with pytest.raises(ValueError, match="item ids: an id must be a non-empty token without blanks"):
        Interactions.from_arrays(["u"], ["a song"])
    with pytest.raises(ValueError, match="no column 'song'"):
        import pandas as pd

        Interactions.from_pandas(pd.DataFrame({"user": ["u"], "item": ["s"]}), item="song", count=None)


def test_idmap_lookup_takes_a_column_and_indexing_counts_from_the_end():
    ids = IdMap.from_tokens(["b", "a", "c"])
    assert ids.lookup(["a", "a", "zz", "b", "x y", ""]).tolist() == [1, 1, -1, 0, -1, -1]
    assert ids.lookup(np.array([1, 2])).tolist() == [-1, -1]
    assert (ids[-1], ids[-3], ids[0]) == ("c", "b", "b")
    with pytest.raises(IndexError):
        ids[3]
    with pytest.raises(IndexError):
        ids[-4]


def test_factorize_grows_its_arrays_for_many_and_long_tokens():
    # Past 65,536 distinct tokens, past the 1 MiB arena, and one token longer than the arena by itself.
    rng = np.random.default_rng(4)
    short = [f"s{i}" for i in rng.permutation(70_000)] + [str(i) for i in rng.permutation(70_000)]
    long = ["x" * 5000 + str(i) for i in range(300)] + ["y" * (3 << 20)]
    words = short + long + short[:10] + long[-2:]
    codes, ids, expected = factorize_words(words)
    assert codes.tolist() == [expected[w] for w in words]
    assert ids.tolist() == list(expected)
    assert ids.lookup(["y" * (3 << 20), "s7", "x" * 5000 + "299", "nope"]).tolist() == [
        expected["y" * (3 << 20)], expected["s7"], expected["x" * 5000 + "299"], -1
    ]
