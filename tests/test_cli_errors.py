"""The command line on bad input: one line on stderr, exit status 2, never a partial output.

Most cases run in process through ``cli.main``; a few run the real
``python -m jukebox_fast`` to check what a user's shell sees.
"""

import os
import re
import stat

import pytest

from jukebox_fast import _parallel as parallel
from jukebox_fast import cli, io, runtime
from jukebox_fast.models import MODELS, ease

LISTENS = b"u1 s1 3\nu1 s2 1\nu2 s1 2\nu2 s3 5\nu3 s2 1\nu3 s4 2\nu4 s1 1\nu4 s4 1\n"


@pytest.fixture
def files(tmp_path):
    """A valid listening log and user list in tmp_path, and the path of an output beside them."""
    (tmp_path / "listen_count.txt").write_bytes(LISTENS)
    (tmp_path / "user_ids.txt").write_bytes(b"u1\nu2\n")
    return tmp_path


def run(capsys, *args):
    """``python -m jukebox_fast run ARGS`` in process: (exit status, stdout, stderr lines)."""
    try:
        status = cli.main(["run", *map(str, args)])
    except SystemExit as e:  # argparse
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


def refused(capsys, *args):
    """The one error line of a refused run, without its prefix; asserts status 2 and nothing on stdout."""
    status, out, err = run(capsys, *args)
    assert status == 2, err
    assert out == ""
    assert len(err) == 1 and err[0].startswith("jukebox_fast: error: "), err
    return err[0].removeprefix("jukebox_fast: error: ")


def only(directory, *names):
    """No file in ``directory`` but ``names`` (and so no partial or temporary output)."""
    return sorted(p.name for p in directory.iterdir()) == sorted(["listen_count.txt", "user_ids.txt", *names])


# -- listen_count.txt ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, found",
    [(b"u5 s1", "got 2 fields: 'u5 s1'"),
     (b"u5 s1 0", "got the count '0' in 'u5 s1 0'"),
     (b"u5 s1 -3", "got the count '-3'"),
     (b"u5 s1 2.5", "got the count '2.5'"),
     (b"u5 s1 abc", "got the count 'abc'"),
     (b"u5 s1 1e3", "got the count '1e3'"),
     (b"u5 s1 99999999999999999999", "got the count '99999999999999999999'"),
     (b"u5 s1\0 1", "got a NUL byte: 'u5 s1\\x00 1'"),
     (b"u5 \xe9t\xe9 1", "got bytes that are not UTF-8: 'u5 \\xe9t\\xe9 1'")],
)
def test_a_bad_line(files, capsys, line, found):
    listens = files / "listen_count.txt"
    listens.write_bytes(LISTENS + line + b"\nu6 s1 1\n")
    message = refused(capsys, listens, files / "user_ids.txt", "-o", files / "recs.txt")
    assert message.startswith(f"{listens}:9: expected '<user_id> <song_id> <count>'")
    assert message.endswith(found) or found + " in " in message
    assert only(files)


@pytest.mark.parametrize("data", [b"", b"\n \r\n\t\n"])
def test_a_log_without_plays(files, capsys, data):
    listens = files / "listen_count.txt"
    listens.write_bytes(data)
    message = refused(capsys, listens, files / "user_ids.txt", "-o", files / "recs.txt")
    assert message == f"{listens}: expected lines of '<user_id> <song_id> <count>', got no plays (the file is empty)"
    assert only(files)


def test_repeated_pairs_warn_with_their_number(files, capsys):
    (files / "listen_count.txt").write_bytes(LISTENS + b"u1 s1 1\nu2 s3 4\n")
    status, out, err = run(capsys, files / "listen_count.txt", files / "user_ids.txt", "-q")
    assert status == 0 and out.count("\n") == 2
    status, _, err = run(capsys, files / "listen_count.txt", files / "user_ids.txt")
    assert f"jukebox_fast: warning: {files}/listen_count.txt: 2 lines repeat an earlier (user, song) pair; their counts were added up" in err


@pytest.mark.parametrize("which", ["listen_count.txt", "user_ids.txt"])
def test_missing_and_directory_inputs(files, capsys, which):
    paths = {"listen_count.txt": files / "listen_count.txt", "user_ids.txt": files / "user_ids.txt"}
    paths[which] = files / "nope.txt"
    assert refused(capsys, *paths.values(), "-o", files / "recs.txt") == f"{files}/nope.txt: no such file"
    paths[which] = files
    assert refused(capsys, *paths.values(), "-o", files / "recs.txt") == f"{files}: is a directory, expected a file"
    assert only(files)


def test_an_unreadable_input(files, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(io, "open", refuse, raising=False)
    message = refused(capsys, files / "listen_count.txt", files / "user_ids.txt", "-o", files / "recs.txt")
    assert message == f"{files}/listen_count.txt: permission denied"


# -- user_ids.txt --------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["text", "jsonl"])
@pytest.mark.parametrize("data", [b"", b"\n\r\n"])
def test_an_empty_user_list_gives_empty_output_and_a_warning_without_a_fit(files, capsys, monkeypatch, data, layout):
    from jukebox_fast import pipeline

    def no_fit(*args, **kwargs):
        raise AssertionError("a model was fitted for no users")

    monkeypatch.setattr(pipeline, "_fit", no_fit)
    (files / "user_ids.txt").write_bytes(data)
    status, out, err = run(capsys, files / "listen_count.txt", files / "user_ids.txt", "-o", files / "recs.txt",
                           "--format", layout)
    assert status == 0
    assert f"jukebox_fast: warning: {files}/user_ids.txt: no user ids; the output is empty and no model is fitted" in err
    assert (files / "recs.txt").read_bytes() == b""


def test_users_listed_twice_are_answered_once(files, capsys):
    (files / "user_ids.txt").write_bytes(b"u2\nu1\n\nu2\r\n")
    status, out, err = run(capsys, files / "listen_count.txt", files / "user_ids.txt", "-k", "2")
    assert status == 0
    assert [line.split()[0] for line in out.splitlines()] == ["u2", "u1"]
    assert f"jukebox_fast: warning: {files}/user_ids.txt: 1 user ids are listed more than once; each is answered once" in err


def test_unknown_users_get_popular_songs_and_are_counted(files, capsys):
    (files / "listen_count.txt").write_bytes(LISTENS + b"u5 s1 1\nu5 s4 1\nu6 s1 1\n")  # s1, then s4, most played
    (files / "user_ids.txt").write_bytes(b"u1\nnobody\n007\n")
    status, out, err = run(capsys, files / "listen_count.txt", files / "user_ids.txt", "-k", "2")
    assert status == 0
    lines = out.splitlines()
    assert lines[1] == lines[2].replace("007", "nobody") == "nobody s1 s4"  # the most played songs
    assert "jukebox_fast: 2 of 3 users have no plays in the listening log; they get the most popular songs" in err


# -- k ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", ["0", "-1", "abc", "2.5", ""])
def test_k_must_be_a_positive_integer(files, capsys, k):
    message = refused(capsys, files / "listen_count.txt", files / "user_ids.txt", "-k", k, "-o", files / "recs.txt")
    assert message == f"argument -k: expected a positive integer, got {k!r} (see python -m jukebox_fast run --help)"
    assert only(files)


@pytest.mark.parametrize("k", ["5", "10000000000000"])
def test_k_above_the_catalogue_gives_every_unplayed_song(files, capsys, k):
    status, out, err = run(capsys, files / "listen_count.txt", files / "user_ids.txt", "-k", k)
    assert status == 0
    assert [sorted(line.split()[1:]) for line in out.splitlines()] == [["s3", "s4"], ["s2", "s4"]]
    assert f"jukebox_fast: warning: k={k} is more than the 4 songs there are; each user gets every song they have not played" in err


# -- output ----------------------------------------------------------------------------------


def test_an_output_in_a_missing_directory_is_refused_before_reading(files, capsys, monkeypatch):
    monkeypatch.setattr(io, "read_listens", None)  # reached only if the check came too late
    message = refused(capsys, files / "listen_count.txt", files / "user_ids.txt", "-o", files / "no" / "recs.txt")
    assert message == f"{files}/no/recs.txt: cannot write: the directory {files}/no does not exist"
    assert only(files)


def test_an_output_that_is_a_directory(files, capsys):
    message = refused(capsys, files / "listen_count.txt", files / "user_ids.txt", "-o", files)
    assert message == f"{files}: is a directory, expected an output file"
    assert only(files)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_full_disk(files, capsys):
    message = refused(capsys, files / "listen_count.txt", files / "user_ids.txt", "-q", "-o", "/dev/full")
    assert message == "/dev/full: cannot write: No space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_failed_run_leaves_an_existing_output_alone(files, capsys):
    (files / "recs.txt").write_bytes(b"yesterday's answers\n")
    (files / "listen_count.txt").write_bytes(LISTENS + b"u5 s1 x\n")
    refused(capsys, files / "listen_count.txt", files / "user_ids.txt", "-o", files / "recs.txt")
    assert (files / "recs.txt").read_bytes() == b"yesterday's answers\n"
    assert only(files, "recs.txt")


# -- memory ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, options, matrices",
    [
        ("ease", [], "one 5,000 x 5,000 float32 matrix"),
        ("edlae", [], "one 5,000 x 5,000 float32 matrix"),
        ("edlae", ["--target-weight", "0.1"], "two 5,000 x 5,000 float32 matrices 190.7 MiB"),
    ],
)
def test_a_catalogue_too_large_for_memory_is_refused_before_the_matrix(files, capsys, monkeypatch, model, options, matrices):
    from jukebox_fast.models import edlae

    monkeypatch.setattr(runtime, "memory_budget", lambda: runtime.MemoryBudget(64 * 2**20, "a test's budget"))
    # the songs x songs matrix: must not be reached
    monkeypatch.setattr(ease, "gram_matrix", None)
    monkeypatch.setattr(edlae, "gram_matrix", None)
    songs = 5000
    (files / "listen_count.txt").write_bytes(b"".join(b"u%d s%d 1\n" % (i % 50, i) for i in range(songs)))
    message = refused(capsys, files / "listen_count.txt", files / "user_ids.txt", "-q", "-o", files / "recs.txt", "--model", model, *options)
    assert message.startswith(f"{type(MODELS[model]()).__name__} on 5,000 songs (")
    assert matrices in message
    assert "but only 64.0 MiB of memory is available (a test's budget)" in message
    fits = int(re.search(r"--max-songs (\d+) keeps the most played songs that fit", message).group(1))
    matrix_count = 2 if options else 1
    assert 0 < fits < songs and 4 * matrix_count * fits**2 < 64 * 2**20
    assert message.endswith("or use a machine with more memory")
    assert only(files)


# -- determinism -----------------------------------------------------------------------------


def test_the_output_does_not_depend_on_the_thread_count(tmp_path, cli):
    # Fresh processes, as a user runs it (the in-process twin is in test_linalg).
    outputs = []
    for threads in (1, 2):
        out = tmp_path / f"recs-{threads}.txt"
        result = cli("run", "--example", "--threads", threads, "-q", "-o", out)
        assert result.returncode == 0, result.stderr.decode()
        outputs.append(out.read_bytes())
    assert outputs[0].count(b"\n") == 202
    assert outputs[0] == outputs[1]


def test_reading_and_formatting_do_not_depend_on_the_thread_count(tmp_path, monkeypatch):
    import numpy as np

    from jukebox_fast.example import generate_listens

    listens, _ = generate_listens(n_users=300, n_songs=100)
    (tmp_path / "listens.txt").write_bytes(listens)
    monkeypatch.setattr(io, "_CHUNK_BYTES", 256)
    texts = []
    try:
        for threads in (1, 2, 5):
            parallel.set_num_threads(threads)
            plays = io.read_listens(str(tmp_path / "listens.txt"))
            recommended = np.argsort(-plays.user_items.toarray(), axis=1, kind="stable")[:, :10]
            texts.append(bytes(io.format_recommendations(plays.users, plays.songs, recommended)))
    finally:
        parallel.set_num_threads(None)
    assert texts[0].count(b"\n") == 300
    assert texts[0] == texts[1] == texts[2]


def test_the_same_plays_written_differently_give_the_same_output(files, capsys):
    varied = b"\xef\xbb\xbf" + LISTENS.replace(b" ", b"\t ").replace(b"\n", b"\r\n\r\n")
    (files / "varied.txt").write_bytes(varied.rstrip(b"\r\n"))
    _, plain, _ = run(capsys, files / "listen_count.txt", files / "user_ids.txt", "-q")
    _, other, _ = run(capsys, files / "varied.txt", files / "user_ids.txt", "-q")
    assert plain == other and plain.count("\n") == 2


# -- what the shell sees ---------------------------------------------------------------------


def test_subprocess_bad_line_is_one_line_and_status_2(files, cli):
    (files / "listen_count.txt").write_bytes(LISTENS + b"u5 s1 2.5\n")
    result = cli("run", files / "listen_count.txt", files / "user_ids.txt", "-o", files / "recs.txt")
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode() == (
        f"jukebox_fast: error: {files}/listen_count.txt:9: expected '<user_id> <song_id> <count>' with a count "
        "that is a whole number from 1 to 2**63-1, got the count '2.5' in 'u5 s1 2.5'\n"
    )
    assert only(files)


def test_subprocess_bad_option_is_one_line_and_status_2(files, cli):
    result = cli("run", files / "listen_count.txt", files / "user_ids.txt", "--threads", "0")
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        "jukebox_fast: error: argument --threads: expected a positive integer, got '0' (see python -m jukebox_fast run --help)"
    ]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_subprocess_stdout_on_a_full_disk(files):
    with open("/dev/full", "wb") as full:
        import subprocess
        import sys

        result = subprocess.run(
            [sys.executable, "-m", "jukebox_fast", "run", files / "listen_count.txt", files / "user_ids.txt", "-q"],
            stdout=full, stderr=subprocess.PIPE, timeout=600,
        )
    assert result.returncode == 2
    assert result.stderr.decode() == "jukebox_fast: error: <stdout>: cannot write: No space left on device\n"
