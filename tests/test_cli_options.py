"""Every option of every subcommand: defaults read from the models, and a bad value is one line and exit 2."""

import argparse

import pytest

from jukebox_fast import cli
from jukebox_fast.example import generate_listens
from jukebox_fast.models import MODELS


def subcommands(parser=None):
    """``{name: subparser}`` of the command line."""
    parser = parser or cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_command_line_defaults_are_the_constructors(name, inputs, tmp_path):
    from jukebox_fast.persist import load_model

    log = inputs["train"][0]
    assert cli.main(["train", str(log), str(tmp_path / "model.jbx"), "--model", name, "--no-auto", "-q"]) == 0
    assert load_model(tmp_path / "model.jbx")[0].get_params() == MODELS[name]().get_params()
    options = {a.dest: a for a in subcommands()["run"]._actions}
    for parameter, default in ((p, v.default) for p, v in MODELS[name].parameters().items() if p != "num_threads"):
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert f"{name}" in options[parameter].help and f"(default: {shown})" in options[parameter].help


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Valid positional arguments for every subcommand, so that the one bad thing is the option."""
    from jukebox_fast.split import split_file

    folder = tmp_path_factory.mktemp("options")
    listens, users = generate_listens(n_users=200, n_songs=60, seed=2)
    (folder / "log.txt").write_bytes(listens)
    (folder / "users.txt").write_bytes(users)
    split_file(folder / "log.txt", folder / "split", seed=0)
    assert cli.main(["train", str(folder / "log.txt"), str(folder / "model.jbx"), "-q", "--model", "ease"]) == 0
    assert cli.main(["run", str(folder / "log.txt"), str(folder / "users.txt"), "-q", "-o", str(folder / "recs.txt")]) == 0
    return {
        "run": ["--example"],
        "split": [folder / "log.txt", folder / "split-out"],
        "train": [folder / "log.txt", folder / "out.jbx"],
        "recommend": [folder / "log.txt", folder / "users.txt"],
        "evaluate": [folder / "recs.txt", folder / "split" / "test_data.txt"],
        "tune": [folder / "split" / "listen_count.txt"],
        "similar": [folder / "model.jbx", listens.split()[1].decode()],
        "info": [folder / "model.jbx"],
    }


def bad_values(action):
    """Values that no option of this kind accepts."""
    if action.choices is not None:
        return ["bogus"]
    if action.dest in ("output", "plot", "train", "users", "plays"):
        return ["/no/such/folder/file"]
    if action.dest == "grid":
        return ["regularization", "nope=1", "regularization=x", "regularization=-1"]
    if action.dest == "memory_limit":
        return ["lots", "-1G"]
    if action.metavar == "N":  # integers
        return ["x", "-1", "2.5"]
    if action.metavar == "X":  # real numbers: the model parameters
        return ["x", "nan", "inf"]
    return ["x", "-1", "nan"]  # the options with a range of their own: -k, --threads, --seed, --ratio, ...


def options_with_values():
    for command, parser in subcommands().items():
        for action in parser._actions:
            if action.option_strings and action.nargs != 0 and action.dest != "help":
                for value in bad_values(action):
                    yield command, action.option_strings[0], value


@pytest.mark.parametrize("command, option, value", list(options_with_values()))
def test_a_bad_value_of_any_option_is_one_line_and_exit_2(command, option, value, inputs, capsys):
    argv = [command, *map(str, inputs[command]), option, value]
    if command in ("run", "train", "recommend") and option in {
        "--epochs", "--batch-size", "--learning-rate", "--seed", "--backend"
    }:
        argv += ["--model", "sgd"]
    try:
        status = cli.main(argv)
    except SystemExit as e:  # argparse refuses the value
        status = e.code
    out, err = capsys.readouterr()
    assert status == 2, (argv, err)
    assert len(err.splitlines()) == 1 and err.startswith("jukebox_fast: error: "), (argv, err)


def test_the_walk_covers_every_model_parameter():
    walked = {option for command, option, _ in options_with_values() if command == "run"}
    for cls in MODELS.values():
        for name in set(cls.parameters()) - {"num_threads"}:  # --threads sets it
            assert f"--{name.replace('_', '-')}" in walked


def test_an_option_of_another_model_is_refused(inputs, capsys):
    assert cli.main(["run", "--example", "--model", "ease", "--dropout", "0.5"]) == 2
    assert capsys.readouterr().err == (
        "jukebox_fast: error: --dropout is an option of --model edlae, sparse, not of --model ease\n"
    )


def test_sgd_with_a_negative_seed_is_one_line(capsys):
    assert cli.main(["run", "--example", "--model", "sgd", "--seed", "-1"]) == 2
    assert capsys.readouterr().err == "jukebox_fast: error: --model sgd: seed must be an integer >= 0, got -1\n"


def test_model_options_do_not_apply_to_a_model_file(inputs, capsys):
    model = inputs["train"][0].parent / "model.jbx"
    assert cli.main(["recommend", str(model), str(inputs["recommend"][1]), "--dropout", "0.5"]) == 2
    assert "--dropout applies when fitting a listening log" in capsys.readouterr().err
