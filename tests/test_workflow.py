"""The problem's workflow end to end: split, train, recommend, evaluate, as a user runs it."""

import importlib.util
import re

import pytest

from jukebox_fast.example import generate_listens

COMMANDS = ["split", "train", "recommend", "evaluate", "tune", "similar", "info"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workflow")
    listens, users = generate_listens(n_users=500, n_songs=150, seed=3)
    (folder / "listen_count.txt").write_bytes(listens)
    (folder / "user_ids.txt").write_bytes(users + b"1\n")  # a repeated user, answered once
    return folder


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help_with_an_example(command, cli):
    done = cli(command, "--help")
    assert done.returncode == 0
    text = done.stdout.decode()
    assert f"python -m jukebox_fast {command} " in text.split("examples:")[1]
    assert "--quiet" in text


@pytest.mark.parametrize("k", [None, "7"])
def test_recommend_is_byte_identical_to_run(files, tmp_path, k, cli):
    listens, users = files / "listen_count.txt", files / "user_ids.txt"
    options = ["--regularization", "40", "--weighting", "log"]
    k_args = [] if k is None else [k]
    ran = cli("run", listens, users, *options, *(["-k", k] if k else []))
    assert ran.returncode == 0, ran.stderr
    trained = cli("train", listens, tmp_path / "model.jbx", *options, "-q")
    assert trained.returncode == 0 and trained.stderr == b""
    from_model = cli("recommend", tmp_path / "model.jbx", users, *k_args, "-o", tmp_path / "recs.txt")
    assert from_model.returncode == 0 and from_model.stdout == b""
    from_log = cli("recommend", listens, users, *k_args, *options)
    assert ran.stdout == (tmp_path / "recs.txt").read_bytes() == from_log.stdout
    assert ran.stdout.count(b"\n") == 52  # 50 listed users, 2 new ones; user 1 (listed twice) once
    assert b"are listed more than once" in from_model.stderr


def test_recommend_refuses_a_damaged_model_in_one_line(files, tmp_path, cli):
    assert cli("train", files / "listen_count.txt", tmp_path / "model.jbx", "-q").returncode == 0
    raw = (tmp_path / "model.jbx").read_bytes()
    (tmp_path / "model.jbx").write_bytes(raw[: len(raw) - 1000])
    done = cli("recommend", tmp_path / "model.jbx", files / "user_ids.txt")
    assert done.returncode == 2 and done.stdout == b""
    assert re.fullmatch(rb"jukebox_fast: error: \S*model.jbx: the model file is truncated.*\n", done.stderr)


def test_the_workflow_on_tiny_files_agrees_with_itself(files, tmp_path, cli):
    val = tmp_path / "val"
    assert cli("split", files / "listen_count.txt", val, "--seed", "4", "-q").returncode == 0
    assert cli("train", val / "listen_count.txt", tmp_path / "m.jbx", "-q").returncode == 0
    assert cli("recommend", tmp_path / "m.jbx", val / "user_ids.txt", "-o", tmp_path / "recs.txt", "-q").returncode == 0
    done = cli("evaluate", tmp_path / "recs.txt", val / "test_data.txt", "--train", val / "listen_count.txt",
                   "--users", val / "user_ids.txt")
    assert done.returncode == 0, done.stdout
    assert re.search(rb"NDCG@100 +0\.\d{6}\n", done.stdout)


def load_checker(checker):
    spec = importlib.util.spec_from_file_location("check_recs", checker)
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    return checker


@pytest.mark.shared
@pytest.mark.slow
def test_round_trip_on_the_official_data_matches_run_and_check_recs(shared_data, checker, cli, tmp_path):
    val = tmp_path / "val"
    assert cli("split", shared_data / "listen_count.txt", val, "--seed", "0", "-q").returncode == 0
    assert cli("train", val / "listen_count.txt", tmp_path / "model.jbx", "-q").returncode == 0
    recommended = cli("recommend", tmp_path / "model.jbx", val / "user_ids.txt", "-q")
    ran = cli("run", val / "listen_count.txt", val / "user_ids.txt", "-q")
    assert recommended.returncode == ran.returncode == 0
    assert recommended.stdout == ran.stdout
    (tmp_path / "recs.txt").write_bytes(ran.stdout)
    done = cli("evaluate", tmp_path / "recs.txt", val / "test_data.txt", "--json",
                   "--train", val / "listen_count.txt", "--users", val / "user_ids.txt")
    assert done.returncode == 0, done.stdout
    import json

    ours = json.loads(done.stdout)
    checker = load_checker(checker)
    theirs = checker.ndcg(checker.load_lists(tmp_path / "recs.txt"), checker.load_lists(val / "test_data.txt"))
    assert abs(ours["ndcg"] - theirs) < 1e-9
    assert ours["problems"] == [] and ours["users"] == 16233
    assert 0.27 < ours["ndcg"] < 0.30


@pytest.fixture(scope="module")
def model_file(files, tmp_path_factory):
    from jukebox_fast.cli import main

    path = tmp_path_factory.mktemp("model") / "model.jbx"
    assert main(["train", str(files / "listen_count.txt"), str(path), "-q"]) == 0
    return path


def command(capsysbinary, *args):
    """``python -m jukebox_fast ARGS`` in process: (status, stdout bytes, stderr text)."""
    from jukebox_fast.cli import main

    status = main([str(a) for a in args])
    out, err = capsysbinary.readouterr()
    return status, out, err.decode()


def test_the_formats_hold_the_same_recommendations(files, model_file, capsysbinary):
    import json

    users = files / "user_ids.txt"
    _, text, _ = command(capsysbinary, "recommend", model_file, users, "-k", "5", "-q")
    _, tsv, _ = command(capsysbinary, "recommend", model_file, users, "5", "-q", "--format", "tsv")
    _, jsonl, _ = command(capsysbinary, "recommend", model_file, users, "-k", "5", "-q", "--format", "jsonl", "-o", "-")
    lines = [line.split() for line in text.decode().splitlines()]
    rows = [line.split("\t") for line in tsv.decode().splitlines()]
    records = [json.loads(line) for line in jsonl.decode().splitlines()]
    assert [[r["user"], *r["songs"]] for r in records] == lines
    assert [[u, s, str(rank)] for u, *songs in lines for rank, s in enumerate(songs, 1)] == [r[:3] for r in rows]
    assert all(r["scores"] == sorted(r["scores"], reverse=True) for r in records)
    assert [float(r[3]) for r in rows[:5]] == records[0]["scores"]


def test_recommend_takes_k_once(files, model_file, capsysbinary):
    status, _, err = command(capsysbinary, "recommend", model_file, files / "user_ids.txt", "5", "-k", "6")
    assert status == 2 and err == "jukebox_fast: error: K is given twice, as 5 and -k 6\n"


def test_plays_from_another_file_fold_in_new_users(files, model_file, tmp_path, capsysbinary):
    log = (files / "listen_count.txt").read_bytes().decode().splitlines()
    users = sorted({line.split()[0] for line in log})[:3]
    # The same plays under new user ids, and a song the model never saw.
    renamed = [f"new{line}" for line in log if line.split()[0] in users] + [f"new{users[0]} unheard 4"]
    (tmp_path / "plays.txt").write_text("\n".join(renamed) + "\n")
    (tmp_path / "new.txt").write_text("".join(f"new{u}\n" for u in users))
    (tmp_path / "old.txt").write_text("".join(f"{u}\n" for u in users))
    _, stored, _ = command(capsysbinary, "recommend", model_file, tmp_path / "old.txt", "-k", "8", "-q")
    status, folded, err = command(capsysbinary, "recommend", model_file, tmp_path / "new.txt", "-k", "8",
                                  "--plays", tmp_path / "plays.txt")
    assert status == 0 and "1 play of songs the model does not know was left out" in err
    assert [line.split()[1:] for line in folded.decode().splitlines()] == [
        line.split()[1:] for line in stored.decode().splitlines()
    ]


def test_similar_songs_and_what_a_model_file_holds(files, model_file, capsysbinary):
    import json

    songs = [line.split()[1] for line in (files / "listen_count.txt").read_text().splitlines()[:2]]
    status, out, _ = command(capsysbinary, "similar", model_file, *songs, "-k", "4")
    lines = [line.split() for line in out.decode().splitlines()]
    assert status == 0 and [line[0] for line in lines] == list(dict.fromkeys(songs))
    assert all(len(line) == 5 and line[0] not in line[1:] for line in lines)
    status, _, err = command(capsysbinary, "similar", model_file, "no-such-song")
    assert status == 2 and err == f"jukebox_fast: error: {model_file}: the model has no song 'no-such-song'\n"
    status, out, _ = command(capsysbinary, "info", model_file, "--json")
    info = json.loads(out)
    assert status == 0 and info["model"] == "edlae" and info["songs"] > 0 and info["users"] == 500
    assert info["parameters"]["dropout"] == 0.85 and info["written_at"].endswith("+00:00")
    status, out, _ = command(capsysbinary, "info", model_file)
    assert status == 0 and out.decode().startswith(f"{model_file}: edlae model,")


def test_standard_input_is_a_listening_log_like_any_other(files, capsysbinary, monkeypatch):
    import io
    import sys

    _, expected, _ = command(capsysbinary, "run", files / "listen_count.txt", files / "user_ids.txt", "-k", "5", "-q")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((files / "listen_count.txt").read_bytes())))
    status, out, _ = command(capsysbinary, "run", "-", files / "user_ids.txt", "-k", "5", "-q")
    assert status == 0 and out == expected
    status, _, err = command(capsysbinary, "run", "-", "-")
    assert status == 2 and "only one input can be '-'" in err


def test_outputs_are_checked_before_the_work(files, capsysbinary):
    plot = ["--plot", "/no/such/dir/ndcg.png"] if importlib.util.find_spec("matplotlib") else ["-o", "/no/such/dir/t"]
    for args in (["train", files / "listen_count.txt", "/no/such/dir/model.jbx"],
                 ["tune", files / "listen_count.txt", "-o", "/no/such/dir/t.txt"],
                 ["tune", files / "listen_count.txt", *plot]):
        status, _, err = command(capsysbinary, *args)
        assert status == 2 and err.count("\n") == 1 and "/no/such/dir" in err and "read " not in err
