"""Bad input at the API edge: the readers, write_output and the memory check, in process."""

import errno
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from jukebox_fast import EASE, InputFormatError, JukeboxError, JukeboxWarning, MemoryBudgetError, io, runtime
from jukebox_fast import _parallel as parallel
from jukebox_fast.io import read_listens, read_user_ids, write_output

LISTEN = "'<user_id> <song_id> <count>'"


@pytest.fixture
def write(tmp_path):
    def write(data, name="listen_count.txt"):
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    return write


@pytest.fixture
def small_chunks(monkeypatch):
    """Cut every file into chunks of a few bytes, read on three threads."""
    monkeypatch.setattr(io, "_CHUNK_BYTES", 8)
    parallel.set_num_threads(3)
    yield
    parallel.set_num_threads(None)


# -- listen_count.txt ----------------------------------------------------------------------

BAD_LINES = [
    (b"u2 s1", "(3 fields separated by spaces or tabs), got 2 fields: 'u2 s1'"),
    (b"u2", "(3 fields separated by spaces or tabs), got 1 field: 'u2'"),
    (b"u2 s1 3 4", "got 4 fields: 'u2 s1 3 4'"),
    (b"u2 s1 x y", "got 4 fields: 'u2 s1 x y'"),  # the shape is wrong, not the count "x"
    (b"u2 s1 0", "with a count that is a whole number from 1 to 2**63-1, got the count '0' in 'u2 s1 0'"),
    (b"u2 s1 -3", "got the count '-3' in 'u2 s1 -3'"),
    (b"u2 s1 2.5", "got the count '2.5'"),
    (b"u2 s1 abc", "got the count 'abc'"),
    (b"u2 s1 1e3", "got the count '1e3'"),
    (b"u2 s1 +3", "got the count '+3'"),
    (b"u2 s1 9223372036854775808", "got the count '9223372036854775808'"),
    ("u2 s1 ３".encode(), "got the count '３'"),  # a digit, but not an ASCII one
    (b"u2\0 s1 1", "in UTF-8 text, got a NUL byte: 'u2\\x00 s1 1'"),
    (b"u2 s1\xff 1", "in UTF-8 text, got bytes that are not UTF-8: 'u2 s1\\xff 1'"),
    (b"u2 \xed\xa0\x80 1", "got bytes that are not UTF-8: 'u2 \\xed\\xa0\\x80 1'"),  # a surrogate
    ("u2\u00a0s1 1".encode(), "got 2 fields: 'u2\\xa0s1 1'"),  # a no-break space is not a separator
]


@pytest.mark.parametrize("line, found", BAD_LINES)
def test_a_bad_line_is_named_with_file_line_expected_and_found(write, line, found):
    path = write(b"u1 s1 3\n\n" + line + b"\r\nu3 s3 1\n")
    with pytest.raises(InputFormatError) as e:
        read_listens(path)
    assert e.value.path == path and e.value.line == 3
    assert str(e.value).startswith(f"{path}:3: expected {LISTEN}")
    assert found in str(e.value)
    assert str(e.value).endswith(" 1'" if line.endswith(b" 1") else "'")  # the whole line, its CR dropped
    assert "\n" not in str(e.value)


def test_a_long_bad_line_is_cut_short(write):
    path = write(b"u1 " + b"s" * 500 + b"\n")
    message = str(pytest.raises(InputFormatError, read_listens, path).value)
    assert message.endswith("...'") and len(message) < len(path) + 200


@pytest.mark.parametrize("data", [b"", b"\n\n", b" \t\r\n\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"])
def test_a_file_without_plays_is_refused(write, data):
    path = write(data)
    with pytest.raises(InputFormatError, match="no plays") as e:
        read_listens(path)
    assert str(e.value).startswith(f"{path}: expected lines of {LISTEN}")


def test_accepted_variations_read_the_same(write):
    plain = read_listens(write(b"0042 s1 3\n42 s2 1\n0042 s2 2\n", "plain.txt"))
    varied = read_listens(write(b"\xef\xbb\xbf\r\n  0042\ts1 \t 003\r\n\n42 s2 1\r\n \t\r\n0042  s2\t2", "varied.txt"))
    assert plain.users.tolist() == varied.users.tolist() == ["0042", "42"]
    assert plain.songs.tolist() == varied.songs.tolist() == ["s1", "s2"]
    assert (plain.user_items != varied.user_items).nnz == 0
    assert varied.user_items.toarray().tolist() == [[3, 2], [0, 1]]


def test_repeated_pairs_are_summed_with_one_warning(write):
    path = write(b"u1 s1 3\nu1 s2 1\nu1 s1 2\nu2 s1 1\nu1 s1 1\n")
    with pytest.warns(JukeboxWarning) as caught:
        plays = read_listens(path)
    assert len(caught) == 1
    assert str(caught[0].message) == f"{path}: 2 lines repeat an earlier (user, song) pair; their counts were added up"
    assert plays.n_repeats == 2
    assert plays.user_items.toarray().tolist() == [[6, 1], [1, 0]]


def test_the_largest_count_is_accepted(write):
    plays = read_listens(write(b"u1 s1 9223372036854775807\n"))
    assert plays.user_items.data.tolist() == [2**63 - 1]


def test_repeated_counts_that_add_up_past_int64_are_refused(write):
    path = write(b"u1 s1 1\nu2 s2 9223372036854775807\nu2 s2 1\n")
    with pytest.raises(InputFormatError) as e:
        read_listens(path)
    assert str(e.value) == (
        f"{path}: expected counts of one (user, song) pair that add up to at most 2**63-1, "
        "got repeated lines of user 'u2' and song 's2' whose counts add up to more"
    )


def test_big_repeated_counts_that_fit_are_summed(write):
    with pytest.warns(JukeboxWarning):
        plays = read_listens(write(b"u1 s1 9223372036854775806\nu2 s1 9223372036854775807\nu1 s1 1\n"))
    assert plays.user_items.data.tolist() == [2**63 - 1, 2**63 - 1]


# -- several chunks ------------------------------------------------------------------------


def test_an_error_in_a_later_chunk_names_its_line(write, small_chunks):
    lines = [b"u%d s%d %d" % (i, i % 7, i + 1) for i in range(40)]
    lines[5] = b""  # blank lines before the error still count
    lines[31] = b"u31 s3 3.0"
    path = write(b"\n".join(lines) + b"\n")
    assert len(io._chunk_bounds(np.frombuffer(Path(path).read_bytes(), np.uint8), 3)) == 3
    with pytest.raises(InputFormatError) as e:
        read_listens(path)
    assert e.value.line == 32
    assert str(e.value).startswith(f"{path}:32: expected")


def test_the_first_of_errors_in_several_chunks_is_reported(write, small_chunks):
    lines = [b"u%d s1 1" % i for i in range(40)]
    lines[25], lines[38] = b"u s", b"u s 0"
    with pytest.raises(InputFormatError) as e:
        read_listens(write(b"\r\n".join(lines)))
    assert e.value.line == 26


def test_a_last_line_without_newline_is_kept_however_the_file_is_cut(write, small_chunks):
    # The cut points after the first line find no newline: once the last
    # chunk was empty and the line before it was dropped, reading garbage.
    plays = read_listens(write(b"a b 1\n" + b"c" * 40 + b" d 2"))
    assert plays.users.tolist() == ["a", "c" * 40]
    assert plays.songs.tolist() == ["b", "d"]
    assert plays.user_items.toarray().tolist() == [[1, 0], [0, 2]]


def test_chunked_and_whole_reads_agree(write, monkeypatch):
    rng = np.random.default_rng(0)
    lines = [f"u{u:03d}\ts{s}  {c}" for u, s, c in zip(rng.integers(0, 50, 500), rng.integers(0, 30, 500), rng.integers(1, 9, 500))]
    path = write(("\r\n".join(lines) + "\r\n\n").encode())
    with pytest.warns(JukeboxWarning):
        whole = read_listens(path)
    monkeypatch.setattr(io, "_CHUNK_BYTES", 100)
    parallel.set_num_threads(4)
    try:
        with pytest.warns(JukeboxWarning):
            chunked = read_listens(path)
    finally:
        parallel.set_num_threads(None)
    assert whole.users.tolist() == chunked.users.tolist()
    assert whole.songs.tolist() == chunked.songs.tolist()
    assert (whole.user_items != chunked.user_items).nnz == 0


# -- paths that cannot be read -------------------------------------------------------------


def test_a_missing_file(tmp_path):
    path = str(tmp_path / "nope.txt")
    with pytest.raises(JukeboxError, match="^" + path + ": no such file$"):
        read_listens(path)


def test_a_directory(tmp_path):
    with pytest.raises(JukeboxError, match=f"^{tmp_path}: is a directory, expected a file$"):
        read_user_ids(str(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; the monkeypatched test covers it")
def test_an_unreadable_file(write):
    path = write(b"u1 s1 1\n")
    os.chmod(path, 0)
    with pytest.raises(JukeboxError, match=": permission denied$"):
        read_listens(path)


@pytest.mark.parametrize(
    "error, said",
    [(PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
     (OSError(errno.EIO, "Input/output error"), "cannot read: Input/output error")],
)
def test_a_file_the_system_will_not_read(write, monkeypatch, error, said):
    path = write(b"u1 s1 1\n")

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(io, "open", refuse, raising=False)  # shadows the builtin in io only
    with pytest.raises(JukeboxError) as e:
        read_listens(path)
    assert str(e.value) == f"{path}: {said}"


# -- user_ids.txt --------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\n", b"\xef\xbb\xbf", b" \r\n\t\n"])
def test_an_empty_user_file_gives_no_users(write, data):
    assert len(read_user_ids(write(data, "user_ids.txt"))) == 0


def test_a_repeated_user_is_kept_once_with_a_warning(write):
    path = write(b"u2\r\n\nu1\n u2 \nu1\nu3", "user_ids.txt")
    with pytest.warns(JukeboxWarning) as caught:
        users = read_user_ids(path)
    assert users.tolist() == ["u2", "u1", "u3"]
    assert [str(w.message) for w in caught] == [f"{path}: 2 user ids are listed more than once; each is answered once"]


def test_a_user_line_with_two_fields(write):
    path = write(b"u1\nu2 u3\n", "user_ids.txt")
    with pytest.raises(InputFormatError) as e:
        read_user_ids(path)
    assert str(e.value) == f"{path}:2: expected one user id per line, got 2 fields: 'u2 u3'"


# -- output --------------------------------------------------------------------------------


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_output_replaces_a_file_atomically_keeping_its_mode(tmp_path):
    path = tmp_path / "recs.txt"
    path.write_bytes(b"old\n")
    os.chmod(path, 0o640)
    write_output(str(path), b"new\n")
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_output_through_a_symlink_replaces_its_target(tmp_path):
    (tmp_path / "target.txt").write_bytes(b"old\n")
    (tmp_path / "link.txt").symlink_to("target.txt")
    write_output(str(tmp_path / "link.txt"), b"new\n")
    assert (tmp_path / "link.txt").is_symlink()
    assert (tmp_path / "target.txt").read_bytes() == b"new\n"


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "recs.txt"
    path.write_bytes(b"old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full)
    with pytest.raises(JukeboxError) as e:
        write_output(str(path), b"new\n" * 1000)
    assert str(e.value) == f"{path}: cannot write: No space left on device"
    assert path.read_bytes() == b"old\n"
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_dev_full_is_written_in_place_and_stays_a_device():
    with pytest.raises(JukeboxError, match="^/dev/full: cannot write: No space left on device$"):
        write_output("/dev/full", b"x" * 100_000)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.parametrize(
    "name, message",
    [("missing/recs.txt", "cannot write: the directory {d}/missing does not exist"),
     ("", "is a directory, expected an output file"),
     ("plain.txt/recs.txt", "cannot write: Not a directory")],
)
def test_outputs_that_cannot_be(tmp_path, name, message):
    (tmp_path / "plain.txt").write_bytes(b"")
    path = str(tmp_path / name) if name else str(tmp_path)
    for call in (lambda: io.check_output(path), lambda: write_output(path, b"x\n")):
        with pytest.raises(JukeboxError) as e:
            call()
        assert str(e.value) == f"{path}: " + message.format(d=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]


def test_an_empty_output_path():
    with pytest.raises(JukeboxError, match="^the output path is empty$"):
        io.check_output("")


# -- memory --------------------------------------------------------------------------------


def test_the_memory_budget_is_a_plausible_number():
    budget = runtime.memory_budget()
    assert 0 < budget.available < 2**60 and budget.limited_by


def test_ease_refuses_before_allocating_the_song_matrix(monkeypatch):
    from jukebox_fast.models import ease

    n_songs = 3000
    monkeypatch.setattr(runtime, "memory_budget", lambda: runtime.MemoryBudget(16 * 2**20, "a test's budget"))

    def allocate(*args):
        raise AssertionError("allocated the songs x songs matrix before checking memory")

    monkeypatch.setattr(ease, "gram_matrix", allocate)
    user_items = sp.csr_array((np.ones(n_songs, np.int64), (np.arange(n_songs) % 7, np.arange(n_songs))), shape=(7, n_songs))
    with pytest.raises(MemoryBudgetError) as e:
        EASE().fit(user_items)
    needed = 4 * n_songs**2
    assert e.value.available == 16 * 2**20 and e.value.needed >= needed
    assert str(e.value).startswith(
        f"EASE on 3,000 songs (one 3,000 x 3,000 float32 matrix) needs about {e.value.needed / 2**20:.1f} MiB "
        "but only 16.0 MiB of memory is available (a test's budget); --max-songs 2000 keeps the most played "
        "songs that fit (Interactions.most_played in the API)"
    )


@pytest.mark.parametrize("n, words", [(0, "0 plays"), (1, "1 play"), (2, "2 plays"), (20278, "20,278 plays")])
def test_a_count_agrees_with_its_noun(n, words):
    from jukebox_fast.errors import count

    assert count(n, "play") == words
    assert count(n, "entry", "entries").split()[1] == ("entry" if n == 1 else "entries")


def test_one_repeated_line_is_told_in_the_singular(tmp_path):
    path = tmp_path / "listen_count.txt"
    path.write_text("a x 1\na x 2\nb y 1\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_listens(path)
    assert [str(w.message) for w in caught] == [
        f"{path}: 1 line repeats an earlier (user, song) pair; its count was added to that pair's"
    ]
