import io
import sys

import pytest

from jukebox_fast.cli import _tune_settings, main
from jukebox_fast.errors import JukeboxError
from jukebox_fast.evaluation import evaluate_files
from jukebox_fast.example import generate_listens
from jukebox_fast.io import read_listens, read_user_ids, write_output
from jukebox_fast.models import EASE
from jukebox_fast.pipeline import PhaseTimer, recommend_for_file
from jukebox_fast.split import split_file
from jukebox_fast.tune import Progress, expand_grid, format_table, tune


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tune") / "listen_count.txt"
    path.write_bytes(generate_listens(n_users=400, n_songs=120, seed=7)[0])
    return path


def test_the_default_grid_is_small():
    keys, settings = _tune_settings(None)
    assert keys == ["model", "weighting", "regularization"]
    assert len(settings) == 8
    assert {repr(model) for _, model in settings} == {
        repr(EASE(r, w)) for r in (30, 100, 300, 1000) for w in ("binary", "log")
    }


def test_grid_options_override_the_default_and_drop_duplicates():
    keys, settings = _tune_settings(["regularization=50, 100", "weighting=log", "regularization=100,5e2"])
    assert [repr(m) for _, m in settings] == [repr(EASE(r, "log")) for r in (50, 100, 500)]
    assert settings[0][0] == {"model": "ease", "weighting": "log", "regularization": "50"}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("alpha=1", "unknown key 'alpha'"),
        ("regularization", "expected KEY=V1,V2"),
        ("regularization=", "expected KEY=V1,V2"),
        ("regularization=-3", "positive number"),
        ("weighting=tfidf", "invalid choice"),
        ("model=nope", "invalid choice"),
    ],
)
def test_a_bad_grid_is_a_user_error(spec, message):
    with pytest.raises(JukeboxError, match=message):
        _tune_settings([spec])


def test_expand_grid_varies_the_last_key_fastest():
    assert expand_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"},
    ]


def test_tune_scores_each_setting_as_split_train_recommend_evaluate_would(log_file, tmp_path):
    settings = [({"regularization": str(r)}, EASE(r)) for r in (5, 50)]
    results = tune(log_file, settings, seed=1, log=lambda message: None)
    assert [r["ndcg"] for r in results] == sorted((r["ndcg"] for r in results), reverse=True)
    assert all(r["fit_s"] >= 0 and r["recommend_s"] >= 0 for r in results)

    split_file(log_file, tmp_path, seed=1)
    train = read_listens(tmp_path / "listen_count.txt")
    user_ids = read_user_ids(tmp_path / "user_ids.txt")
    for result in results:
        model = EASE(float(result["regularization"])).fit(train.user_items)
        text = recommend_for_file(train, model, user_ids, 100, PhaseTimer(), log=lambda m: None)
        write_output(tmp_path / "recs.txt", text)
        scores = evaluate_files(tmp_path / "recs.txt", tmp_path / "test_data.txt", train_path=tmp_path / "listen_count.txt")
        for key in ("ndcg", "recall", "hit_rate"):
            assert abs(result[key] - scores[key]) < 1e-9, key


def test_format_table_ranks_the_settings():
    rows = [dict(regularization="30", ndcg=0.3, recall=0.5, hit_rate=0.7, fit_s=1.0, recommend_s=0.1)]
    table = format_table(rows, ["regularization"])
    assert table.splitlines()[0].split()[:3] == ["rank", "regularization", "NDCG@100"]
    assert table.splitlines()[1].split()[:3] == ["1", "30", "0.3000"]


def test_progress_prints_a_line_per_step_off_a_terminal():
    stream = io.StringIO()
    progress = Progress(2, stream=stream)
    progress.step("first")
    progress.step("second")
    assert stream.getvalue().splitlines() == ["jukebox_fast: [1/2] first", "jukebox_fast: [2/2] second"]
    quiet = Progress(2, quiet=True, stream=stream)
    quiet.step("x")
    assert stream.getvalue().count("\n") == 2


def test_tune_cli_table_json_and_plot(log_file, tmp_path, capsysbinary):
    pytest.importorskip("matplotlib")
    png = tmp_path / "ndcg.png"
    argv = ["tune", str(log_file), "--grid", "regularization=20,80", "--grid", "weighting=binary", "--plot", str(png)]
    assert main(argv) == 0
    captured = capsysbinary.readouterr()
    lines = captured.out.decode().splitlines()
    assert lines[0].startswith("rank") and len(lines) == 3
    assert b"[2/2]" in captured.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(argv[:6] + ["--json", "-q", "-o", str(tmp_path / "t.json")]) == 0
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
    monkeypatch.setattr("jukebox_fast.tune.DEFAULT_GRID", {"model": ["ease"]})
    assert main(["tune", str(log_file), "--plot", str(tmp_path / "x.png")]) == 2
    assert "regularization" in capsys.readouterr().err
