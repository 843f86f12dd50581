import sys

import pytest

from jukebox_fast.cli import main
from jukebox_fast.evaluation import evaluate_files
from jukebox_fast.example import generate_listens
from jukebox_fast.io import read_listens, read_user_ids, write_output
from jukebox_fast.models import EASE, EDLAE
from jukebox_fast.pipeline import PhaseTimer, recommend_for_file
from jukebox_fast.split import split_file
from jukebox_fast.tune import expand_grid, format_table, grid_settings, tune


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tune") / "listen_count.txt"
    path.write_bytes(generate_listens(n_users=400, n_songs=120, seed=7)[0])
    return path


def test_the_default_grid_is_the_default_models_own():
    keys, settings = grid_settings(None)
    assert keys == ["model", *EDLAE.default_grid]
    assert len(settings) == 9
    assert {(s["regularization"], s["dropout"]) for s in settings} == {
        (r, p) for r in EDLAE.default_grid["regularization"] for p in EDLAE.default_grid["dropout"]
    }


def test_each_model_brings_its_own_grid_for_the_keys_not_given():
    keys, settings = grid_settings({"model": ["ease", "edlae"], "regularization": ["8"]})
    assert keys == ["model", "weighting", "regularization", "dropout"]
    assert [s for s in settings if s["model"] == "ease"] == [
        {"model": "ease", "weighting": w, "regularization": 8.0} for w in ("binary", "log")
    ]
    assert [s["dropout"] for s in settings if s["model"] == "edlae"] == EDLAE.default_grid["dropout"]


def test_grid_values_override_the_default_and_duplicates_are_dropped():
    keys, settings = grid_settings({"model": ["ease"], "regularization": ["50", "100", "1e2", "5e2"], "weighting": ["log"]})
    assert [repr(make(s)) for s in settings] == [repr(EASE(r, "log")) for r in (50.0, 100.0, 500.0)]
    assert settings[0] == {"model": "ease", "weighting": "log", "regularization": 50.0}


def make(setting):
    from jukebox_fast.models import make_model

    params = dict(setting)
    return make_model(params.pop("model"), **params)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("alpha=1", "'alpha' is not a parameter of edlae"),
        ("regularization", "expected KEY=V1,V2"),
        ("regularization=", "expected KEY=V1,V2"),
        ("regularization=-3", "regularization must be a positive number, got -3.0"),
        ("regularization=x", "regularization takes a number, got 'x'"),
        ("weighting=tfidf", "weighting must be one of binary, log, count, got 'tfidf'"),
        ("model=nope", "unknown model 'nope'"),
        ("neighbours=2.5", "neighbours takes an integer"),
    ],
)
def test_a_bad_grid_is_one_line_and_exit_2(spec, message, log_file, capsys):
    assert main(["tune", str(log_file), "--grid", spec]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_expand_grid_varies_the_last_key_fastest():
    assert expand_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"},
    ]


def test_tune_scores_each_setting_as_split_train_recommend_evaluate_would(log_file, tmp_path):
    settings = [{"model": "ease", "regularization": r} for r in (5.0, 50.0)]
    calls = []
    results = tune(log_file, settings, seed=1, progress=lambda *call: calls.append(call))
    assert [call[:2] for call in calls] == [(1, 2), (2, 2)] and "EASE(regularization=5.0" in calls[0][2]
    assert [r["ndcg"] for r in results] == sorted((r["ndcg"] for r in results), reverse=True)
    assert all(r["fit_s"] >= 0 and r["recommend_s"] >= 0 for r in results)

    split_file(log_file, tmp_path, seed=1)
    train = read_listens(tmp_path / "listen_count.txt")
    user_ids = read_user_ids(tmp_path / "user_ids.txt")
    for result in results:
        model = EASE(float(result["regularization"])).fit(train.user_items)
        text = recommend_for_file(train, model, user_ids, 100, PhaseTimer())
        write_output(tmp_path / "recs.txt", text)
        scores = evaluate_files(tmp_path / "recs.txt", tmp_path / "test_data.txt", train_path=tmp_path / "listen_count.txt")
        for key in ("ndcg", "recall", "hit_rate"):
            assert abs(result[key] - scores[key]) < 1e-9, key


def test_format_table_ranks_the_settings():
    rows = [dict(regularization="30", ndcg=0.3, recall=0.5, hit_rate=0.7, fit_s=1.0, recommend_s=0.1)]
    table = format_table(rows, ["regularization"])
    assert table.splitlines()[0].split()[:3] == ["rank", "regularization", "NDCG@100"]
    assert table.splitlines()[1].split()[:3] == ["1", "30", "0.3000"]
    mixed = [dict(model="popularity", ndcg=0.1, recall=0.2, hit_rate=0.3, fit_s=0.0, recommend_s=0.0)]
    assert format_table(mixed, ["model", "regularization"]).splitlines()[1].split()[:4] == ["1", "popularity", "-", "0.1000"]


def test_tune_cli_table_json_and_plot(log_file, tmp_path, capsysbinary):
    pytest.importorskip("matplotlib")
    png = tmp_path / "ndcg.png"
    argv = ["tune", str(log_file), "--grid", "regularization=20,80", "--grid", "weighting=binary", "--grid", "model=ease",
            "--plot", str(png)]
    assert main(argv) == 0
    captured = capsysbinary.readouterr()
    lines = captured.out.decode().splitlines()
    assert lines[0].startswith("rank") and len(lines) == 3
    assert b"[2/2]" in captured.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(argv[:8] + ["--json", "-q", "-o", str(tmp_path / "t.json")]) == 0
    assert capsysbinary.readouterr() == (b"", b"")
    assert b'"results"' in (tmp_path / "t.json").read_bytes()


def test_tune_plot_without_matplotlib_is_a_one_line_hint(log_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert main(["tune", str(log_file), "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'jukebox_fast[plot]'" in err
    assert not (tmp_path / "x.png").exists()


def test_tune_plot_needs_the_regularization_in_the_grid(log_file, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    assert main(["tune", str(log_file), "--grid", "model=popularity", "--plot", str(tmp_path / "x.png")]) == 2
    assert "regularization" in capsys.readouterr().err
