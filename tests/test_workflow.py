"""The problem's workflow end to end: split, train, recommend, evaluate, as a user runs it."""

import importlib.util
import re

import pytest

from jukebox_fast.example import generate_listens

COMMANDS = ["split", "train", "recommend", "evaluate", "tune"]


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
