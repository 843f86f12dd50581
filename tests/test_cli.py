"""The run command end to end."""

import subprocess
import sys

import numpy as np
import pytest

from jukebox_fast import EASE, read_listens
from jukebox_fast.cli import main

LISTENS = "u1 a 3\nu1 b 1\nu2 b 2\nu2 c 1\nu3 a 1\nu3 c 5\nu4 d 1\nu4 a 2\n"


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "listen_count.txt").write_text(LISTENS)
    (tmp_path / "user_ids.txt").write_text("u3\nnobody\nu1\n")
    return tmp_path


def test_run_prints_unseen_songs_in_user_order(tiny, capsysbinary):
    assert main(["run", tiny / "listen_count.txt", tiny / "user_ids.txt", "-k", "2", "--regularization", "1"]) == 0
    out, err = capsysbinary.readouterr()
    lines = [line.split() for line in out.decode().splitlines()]
    assert [line[0] for line in lines] == ["u3", "nobody", "u1"]
    assert set(lines[0][1:]) <= {"b", "d"} and len(lines[0]) == 3
    assert lines[1][1:] == ["a", "b"]  # the most played songs, ties by first appearance
    assert not set(lines[2][1:]) & {"a", "b"}
    assert b"1 of 3 users have no plays" in err


def test_run_agrees_with_the_api(tiny, capsysbinary):
    main(["run", tiny / "listen_count.txt", tiny / "user_ids.txt", "-k", "3", "-q", "--weighting", "log"])
    out = capsysbinary.readouterr().out.decode().splitlines()
    plays = read_listens(tiny / "listen_count.txt")
    model = EASE(weighting="log").fit(plays.user_items)
    indices, _ = model.recommend(plays.user_items[[2, 0]], k=3)
    songs = plays.songs.tolist()
    expected = [" ".join(["u3"] + [songs[i] for i in indices[0] if i >= 0]), " ".join(["u1"] + [songs[i] for i in indices[1] if i >= 0])]
    assert [out[0], out[2]] == expected


def test_run_writes_output_file(tiny):
    out = tiny / "recs.txt"
    assert main(["run", tiny / "listen_count.txt", tiny / "user_ids.txt", "-o", out, "-q"]) == 0
    assert len(out.read_text().splitlines()) == 3
    assert not [p for p in tiny.iterdir() if p.name.startswith(".recs")]


def test_example_runs_in_a_fresh_process(cli):
    result = cli("run", "--example", "-k", "10")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 202 and all(len(line.split()) == 11 for line in lines)
    assert b"example: a synthetic log" in result.stderr


def test_usage_errors_are_one_line(tiny, cli):
    result = cli("run", tiny / "listen_count.txt")
    assert result.returncode == 2
    assert result.stderr.decode().strip().splitlines() == ["jukebox_fast: error: missing USER_IDS: the file of users to recommend for"]


def test_import_loads_no_optional_backend_and_compiles_nothing():
    code = (
        "import sys, time; t = time.perf_counter(); import jukebox_fast; t = time.perf_counter() - t; "
        "print(sorted(m for m in ('jax', 'cupy', 'numba', 'scipy.linalg') if m in sys.modules), t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[]"
    assert float(out[1]) < 2.0


@pytest.mark.shared
@pytest.mark.slow
def test_run_on_a_public_split_passes_the_checker(shared_data, checker, cli, tmp_path):
    split = shared_data / "split-seed0"
    recs = tmp_path / "recs.txt"
    result = cli("run", split / "listen_count.txt", split / "user_ids.txt", "-o", recs, "-q")
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        [sys.executable, checker, recs, split / "test_data.txt", "--train", split / "listen_count.txt", "--users", split / "user_ids.txt"],
        capture_output=True, text=True,
    )
    assert check.returncode == 0, check.stdout
    ndcg = float(check.stdout.split("ndcg@100")[1].split()[0])
    assert ndcg > 0.27
