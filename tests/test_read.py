"""The reader kernels and read_listens against plain Python."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast import IdMap, read_listens, read_user_ids
from jukebox_fast.data import factorize
from jukebox_fast.kernels.parse import token_keys
from jukebox_fast.io import _build_csr

tokens = st.text(alphabet="0123456789abcXYZ_é中", min_size=1, max_size=6)


def python_read(text):
    """Reference: ids in order of first appearance, counts summed per (user, song)."""
    users, songs, plays = {}, {}, {}
    for line in text.splitlines():
        if not line.split():
            continue
        u, s, c = line.split()
        key = (users.setdefault(u, len(users)), songs.setdefault(s, len(songs)))
        plays[key] = plays.get(key, 0) + int(c)
    return list(users), list(songs), plays


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(tokens, tokens, st.integers(1, 10**12)), min_size=1, max_size=60))
def test_read_listens_matches_python(tmp_path_factory, rows):
    text = "".join(f"{u} {s} {c}\n" for u, s, c in rows)
    path = tmp_path_factory.mktemp("r") / "listen_count.txt"
    path.write_text(text, encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = read_listens(path)
    n_repeats = len(rows) - len({(u, s) for u, s, _ in rows})
    assert got.n_repeats == n_repeats
    assert [str(w.message).split(": ")[1].split()[0] for w in caught] == ([str(n_repeats)] if n_repeats else [])
    users, songs, plays = python_read(text)
    assert got.users.tolist() == users
    assert got.songs.tolist() == songs
    m = got.user_items
    assert np.all(np.diff(m.indices[m.indptr[0] : m.indptr[1]]) > 0)
    coo = m.tocoo()
    assert dict(zip(zip(coo.row.tolist(), coo.col.tolist()), coo.data.tolist())) == plays


def test_leading_zeros_and_letters_are_distinct_ids(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text("0042 7 1\n42 07 2\nu_0042 7 3\n42 7 1\n")
    plays = read_listens(path)
    assert plays.users.tolist() == ["0042", "42", "u_0042"]
    assert plays.songs.tolist() == ["7", "07"]
    assert plays.user_items.toarray().tolist() == [[1, 0], [1, 2], [3, 0]]


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


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.lists(st.tuples(st.integers(0, 29), st.integers(0, 80), st.integers(1, 9)), max_size=400))
def test_build_csr_matches_scipy(n_rows, triples):
    import scipy.sparse as sp

    triples = [(r % n_rows, c, v) for r, c, v in triples]
    rows = np.array([t[0] for t in triples], np.int32)
    cols = np.array([t[1] for t in triples], np.int32)
    vals = np.array([t[2] for t in triples], np.int64)
    indptr, indices, data = _build_csr(rows, cols, vals, n_rows, 81)
    expected = sp.csr_array((vals, (rows, cols)), shape=(n_rows, 81))
    expected.sum_duplicates()
    np.testing.assert_array_equal(indptr, expected.indptr)
    np.testing.assert_array_equal(indices, expected.indices)
    np.testing.assert_array_equal(data, expected.data)


def test_read_user_ids_keeps_first_of_repeats(tmp_path):
    path = tmp_path / "u.txt"
    path.write_text("b\n\na\nb\r\n  c  \n")
    with pytest.warns(UserWarning, match="1 user ids are listed more than once"):
        ids = read_user_ids(path)
    assert ids.tolist() == ["b", "a", "c"]
