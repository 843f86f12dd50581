"""The reader kernels and read_listens against plain Python."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast import read_listens, read_user_ids
from jukebox_fast.io import _build_csr

tokens = st.text(alphabet="0123456789abcXYZ_é中", min_size=1, max_size=6)
# Numbers of 1 to 17 digits have exact keys (small ones an index of their own), longer ones hashed keys.
ids = st.one_of(tokens, st.integers(0, 70000).map(str), st.text(alphabet="0123456789", min_size=1, max_size=20))


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
@given(st.lists(st.tuples(ids, ids, st.integers(1, 10**12)), min_size=1, max_size=60))
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
    absent = sorted({"0" + u for u in users} - set(users))
    assert got.users.lookup(users + absent).tolist() == list(range(len(users))) + [-1] * len(absent)
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


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 30),
    st.lists(st.tuples(st.integers(0, 29), st.integers(0, 80), st.integers(1, 9)), max_size=400),
    st.sampled_from([1, 3, 16, 1 << 16]),
    st.booleans(),
    st.booleans(),
)
def test_build_csr_matches_scipy(n_rows, triples, bucket_entries, presorted, use_scratch):
    import scipy.sparse as sp

    triples = [(r % n_rows, c, v) for r, c, v in triples]
    if presorted:  # a log grouped by user and song: the radix sort is skipped
        triples.sort(key=lambda t: t[:2])
    rows = np.array([t[0] for t in triples], np.int32)
    cols = np.array([t[1] for t in triples], np.int32)
    vals = np.array([t[2] for t in triples], np.int64)
    scratch = np.empty((2, rows.size), np.uint64) if use_scratch else None
    indptr, indices, data = _build_csr(rows, cols, vals, n_rows, 81, scratch=scratch, bucket_entries=bucket_entries)
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
