"""The reader kernels against a pure-Python reference parser, on files hypothesis makes up.

Valid files must give the same CSR and id maps; invalid ones an error on the
line the reference finds first. Every file is read whole and also cut into
small chunks on several threads, so chunk edges fall everywhere.
"""

import contextlib
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jukebox_fast import InputFormatError, JukeboxWarning, io
from jukebox_fast import _parallel as parallel
from jukebox_fast.errors import repeats_message
from jukebox_fast.io import read_listens, read_user_ids

BOM = b"\xef\xbb\xbf"
MAX_COUNT = 2**63 - 1
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Invalid(Exception):
    def __init__(self, line):
        self.line = line


def reference_records(data, n_fields):
    """The README's input rules, written plainly: a list of field lists, or Invalid(line)."""
    if data.startswith(BOM):
        data = data[3:]
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the final newline ends the last line, it does not start another
    records = []
    for number, line in enumerate(lines, 1):
        fields = [f for f in re.split(rb"[ \t\r]", line) if f]
        if not fields:
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(number) from None
        if b"\0" in line or len(fields) != n_fields:
            raise Invalid(number)
        if n_fields == 3 and not (re.fullmatch(rb"[0-9]+", fields[2]) and 0 < int(fields[2]) <= MAX_COUNT):
            raise Invalid(number)
        records.append(fields)
    return records


def reference_listens(data):
    """(dense counts, user ids, song ids, repeats) as read_listens should see the file."""
    records = reference_records(data, 3)
    users, songs, counts = {}, {}, {}
    for user, song, count in records:
        key = users.setdefault(user, len(users)), songs.setdefault(song, len(songs))
        counts[key] = counts.get(key, 0) + int(count)
    dense = np.zeros((len(users), len(songs)), object)
    for (u, s), c in counts.items():
        dense[u, s] = c
    decode = lambda ids: [t.decode("utf-8") for t in ids]  # noqa: E731
    return dense, decode(users), decode(songs), len(records) - len(counts)


@contextlib.contextmanager
def chunking(chunk_bytes, threads):
    """Read with chunks of about ``chunk_bytes`` on ``threads`` threads (None: the defaults)."""
    saved = io._CHUNK_BYTES
    if chunk_bytes is not None:
        io._CHUNK_BYTES = chunk_bytes
    parallel.set_num_threads(threads)
    try:
        yield
    finally:
        io._CHUNK_BYTES = saved
        parallel.set_num_threads(None)


CHUNKINGS = st.sampled_from([(None, 1), (None, 2), (1, 2), (1, 3), (5, 4), (16, 7)])


def read(function, path, data, chunk_bytes, threads):
    """``function(path)`` on a file holding ``data``: (result or None, the error or None, JukeboxWarnings)."""
    path.write_bytes(data)
    with chunking(chunk_bytes, threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = function(str(path)), None
        except InputFormatError as e:
            result, error = None, e
    assert all(issubclass(w.category, JukeboxWarning) for w in caught), [str(w.message) for w in caught]
    return result, error, [str(w.message) for w in caught]


# -- files hypothesis builds ---------------------------------------------------------------

# Ids: any characters but the separators, NUL and surrogates; digit strings with leading zeros.
ID_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters=" \t\r\n\0"), min_size=1, max_size=5
)
IDS = st.one_of(ID_TEXT, st.sampled_from(["42", "0042", "042", "u_42", "é", "日本", "\ufeff", "x\x0by"]))
BLANK = st.sampled_from([" ", "\t", "  ", " \t ", "\t\t"])
EDGE = st.sampled_from(["", "", " ", "\t", "\r"])  # before the first field, after the last
BLANK_LINE = st.sampled_from(["", " ", "\t", "\r", " \t\r"])
COUNT = st.one_of(st.integers(1, 20), st.integers(1, MAX_COUNT), st.just(MAX_COUNT))
ZEROS = st.sampled_from(["", "", "0", "000"])


@st.composite
def listen_files(draw, min_records=1):
    users = draw(st.lists(IDS, min_size=1, max_size=4, unique=True))
    songs = draw(st.lists(IDS, min_size=1, max_size=4, unique=True))
    lines = []
    for _ in range(draw(st.integers(min_records, 12))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(BLANK_LINE))
        fields = [draw(st.sampled_from(users)), draw(st.sampled_from(songs)), draw(ZEROS) + str(draw(COUNT))]
        lines.append(draw(EDGE) + fields[0] + draw(BLANK) + fields[1] + draw(BLANK) + fields[2] + draw(EDGE))
    return join_lines(draw, [line.encode("utf-8") for line in lines])


def join_lines(draw, lines):
    """Lines joined with LF or CRLF (per line), maybe a BOM first, maybe no final newline."""
    data = b"".join(line + draw(st.sampled_from([b"\n", b"\r\n"])) for line in lines)
    if lines and draw(st.booleans()):
        data = data.rstrip(b"\r\n")
    return (BOM if draw(st.booleans()) else b"") + data


BAD_COUNTS = ["0", "00", "-3", "2.5", "abc", "1e3", "+3", "0x10", "３", "9223372036854775808", "99999999999999999999"]
BAD_LINES = st.one_of(
    st.sampled_from([b"u1", b"u1 s1", b"u1 s1 3 4", b"u1 s1 3 x", b"a b c d e"]),
    st.sampled_from(BAD_COUNTS).map(lambda c: b"u1 s1 " + c.encode()),
    st.sampled_from([b"u\0 s 1", b"u s \x001", b"u s 1\0", b"\0"]),
    st.sampled_from([b"\xff s 1", b"u \xc0\xaf 1", b"u \xed\xa0\x80 1", b"u s\xf4\x90\x80\x80 1", b"u s 1\xe6\x97"]),
)


@st.composite
def broken_listen_files(draw):
    """A valid file with one line, or a few, replaced by bad ones."""
    good = draw(listen_files()).removeprefix(BOM).split(b"\n")
    for _ in range(draw(st.integers(1, 3))):
        good.insert(draw(st.integers(0, len(good))), draw(BAD_LINES))
    return b"\n".join(good)


# A small alphabet that makes every kind of line, valid or not, likely.
RAW_BYTES = st.lists(
    st.sampled_from([b"a", b"b", b"0", b"1", b"9", b" ", b"\t", b"\r", b"\n", b"\n", b"\0", b"\xff", b"\xc3", b"\xa9", BOM]),
    max_size=60,
).map(b"".join)


# -- the tests -----------------------------------------------------------------------------


def check_listens(path, data, chunk_bytes, threads):
    result, error, warned = read(read_listens, path, data, chunk_bytes, threads)
    try:
        dense, users, songs, repeats = reference_listens(data)
    except Invalid as bad:
        assert error is not None, f"accepted a file that is invalid on line {bad.line}"
        assert error.line == bad.line
        assert str(error).startswith(f"{path}:{bad.line}: expected ")
        assert "got " in str(error)
        return
    if not users:
        assert error is not None and error.line is None and "empty" in str(error)
        return
    if dense.max() > MAX_COUNT:  # repeated pairs whose counts add up past int64
        assert error is not None and "add up to" in str(error)
        return
    assert error is None, str(error)
    assert result.users.tolist() == users
    assert result.songs.tolist() == songs
    assert result.n_repeats == repeats
    m = result.user_items
    assert m.shape == dense.shape and m.dtype == np.int64
    assert m.has_sorted_indices
    assert m.toarray().tolist() == dense.tolist()
    assert m.nnz == np.count_nonzero(dense)
    assert len(warned) == (1 if repeats else 0)
    if repeats:
        assert warned[0] == repeats_message(path, repeats)


@FUZZ
@given(data=listen_files(), chunks=CHUNKINGS)
def test_valid_listen_files_match_the_reference(tmp_path_factory, data, chunks):
    check_listens(tmp_path_factory.getbasetemp() / "valid.txt", data, *chunks)


@FUZZ
@given(data=broken_listen_files(), chunks=CHUNKINGS)
def test_invalid_listen_files_name_the_first_bad_line(tmp_path_factory, data, chunks):
    with pytest.raises(Invalid):
        reference_listens(data)
    check_listens(tmp_path_factory.getbasetemp() / "broken.txt", data, *chunks)


@FUZZ
@given(data=RAW_BYTES, chunks=CHUNKINGS)
def test_arbitrary_bytes_as_listens_match_the_reference(tmp_path_factory, data, chunks):
    check_listens(tmp_path_factory.getbasetemp() / "raw.txt", data, *chunks)


@st.composite
def user_id_files(draw):
    pool = draw(st.lists(IDS, min_size=1, max_size=5, unique=True))
    lines = []
    for _ in range(draw(st.integers(0, 10))):
        blank = draw(st.integers(0, 4)) == 0
        lines.append(draw(BLANK_LINE) if blank else draw(EDGE) + draw(st.sampled_from(pool)) + draw(EDGE))
    return join_lines(draw, [line.encode("utf-8") for line in lines])


@FUZZ
@given(data=st.one_of(user_id_files(), RAW_BYTES), chunks=CHUNKINGS)
def test_user_id_files_match_the_reference(tmp_path_factory, data, chunks):
    path = tmp_path_factory.getbasetemp() / "users.txt"
    result, error, warned = read(read_user_ids, path, data, *chunks)
    try:
        records = reference_records(data, 1)
    except Invalid as bad:
        assert error is not None and error.line == bad.line
        assert str(error).startswith(f"{path}:{bad.line}: expected one user id per line")
        return
    assert error is None, str(error)
    ids = list(dict.fromkeys(r[0].decode("utf-8") for r in records))
    assert result.tolist() == ids
    assert len(warned) == (len(records) > len(ids))


def test_the_reference_parser_knows_the_rules():
    """The oracle itself, on the documented cases: a wrong oracle would make the fuzz tests vacuous."""
    dense, users, songs, repeats = reference_listens(BOM + b"0042 s 1\r\n\n42\ts\t02\r\n0042 s 3")
    assert users == ["0042", "42"] and songs == ["s"] and repeats == 1
    assert dense.tolist() == [[4], [2]]
    for count in BAD_COUNTS:
        with pytest.raises(Invalid) as bad:
            reference_listens(b"a b 1\n\nu s " + count.encode("utf-8") + b"\n")
        assert bad.value.line == 3
