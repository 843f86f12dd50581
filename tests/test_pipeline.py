"""The jobs of the command line as library calls: ``pipeline.run``, ``train`` and ``recommend_saved``."""

import logging

import pytest

from jukebox_fast import EASE, Popularity, pipeline
from jukebox_fast.errors import JukeboxError
from jukebox_fast.example import generate_listens
from jukebox_fast.io import read_listens


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    listens, users = generate_listens(n_users=300, n_songs=80, seed=5)
    (folder / "listen_count.txt").write_bytes(listens)
    (folder / "user_ids.txt").write_bytes(users + b"nobody\n")
    return folder


def test_run_says_what_it_did_on_the_logger_and_returns_the_text_and_the_phases(files, caplog):
    with caplog.at_level(logging.INFO, logger="jukebox_fast"):
        text, timer = pipeline.run(files / "listen_count.txt", files / "user_ids.txt", EASE(), k=5)
    lines = bytes(text).decode().splitlines()
    assert lines[-1].split()[0] == "nobody" and all(len(line.split()) == 6 for line in lines)
    assert list(timer.seconds) == ["read", "fit", "recommend", "format"]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("read ") and any("have no plays in the listening log" in m for m in messages)


def test_train_then_recommend_saved_is_run(files, tmp_path):
    expected, _ = pipeline.run(files / "listen_count.txt", files / "user_ids.txt", EASE(regularization=30.0), k=7)
    timer = pipeline.train(files / "listen_count.txt", tmp_path / "model.jbx", EASE(regularization=30.0))
    assert list(timer.seconds) == ["read", "fit", "save"]
    text, timer = pipeline.recommend_saved(tmp_path / "model.jbx", files / "user_ids.txt", k=7)
    assert text == expected and "load" in timer.seconds


def test_max_songs_keeps_the_most_played_and_says_what_it_left_out(files, caplog):
    with caplog.at_level(logging.INFO, logger="jukebox_fast"):
        text, _ = pipeline.run(files / "listen_count.txt", files / "user_ids.txt", Popularity(), k=5, max_songs=10)
    kept = read_listens(files / "listen_count.txt").most_played(10).songs.tolist()
    assert {song for line in bytes(text).decode().splitlines() for song in line.split()[1:]} <= set(kept)
    assert any(m.getMessage().startswith("--max-songs 10: kept the 10 most played of 80 songs") for m in caplog.records)


def test_a_model_file_without_plays_cannot_answer_user_ids(files, tmp_path):
    model = EASE().fit(read_listens(files / "listen_count.txt").user_items)
    model.save(tmp_path / "bare.jbx")
    assert EASE.load(tmp_path / "bare.jbx").get_params() == model.get_params()
    with pytest.raises(JukeboxError, match="saved without its plays"):
        pipeline.recommend_saved(tmp_path / "bare.jbx", files / "user_ids.txt")


def test_memory_limit_too_small_is_refused_before_the_fit(files):
    from jukebox_fast.errors import MemoryBudgetError

    with pytest.raises(MemoryBudgetError, match="--memory-limit"):
        pipeline.run(files / "listen_count.txt", files / "user_ids.txt", EASE(), memory_limit=1)


def test_a_catalogue_too_large_for_the_dense_model_gets_the_fallback(tmp_path):
    import numpy as np

    from jukebox_fast import EDLAE, JukeboxWarning, SparseEDLAE, runtime
    from jukebox_fast.errors import MemoryBudgetError

    rng = np.random.default_rng(0)
    pairs = np.unique(np.stack([rng.integers(0, 2000, 40000), rng.integers(0, 6000, 40000)], axis=1), axis=0)
    pairs = np.concatenate([pairs, np.stack([np.arange(6000) % 2000, np.arange(6000)], axis=1)])  # every song played
    pairs = np.unique(pairs, axis=0)
    (tmp_path / "log.txt").write_text("".join(f"u{u} s{s} 1\n" for u, s in pairs))
    (tmp_path / "users.txt").write_text("u1\nu2\n")
    pipeline.run(tmp_path / "log.txt", tmp_path / "users.txt", SparseEDLAE(links=20), k=5)  # what a run holds anyway
    # Room for the sparse model (a few MiB) and not for 6,000 x 6,000 float32 matrices (137 MiB each).
    limit = runtime.resident_memory() + runtime.PROCESS_HEADROOM + 120 * 2**20
    with pytest.raises(MemoryBudgetError, match="EDLAE on 6,000 songs"):
        pipeline.run(tmp_path / "log.txt", tmp_path / "users.txt", EDLAE(), k=5, memory_limit=limit)
    with pytest.warns(JukeboxWarning, match="EDLAE on 6,000 songs needs about .* fitting SparseEDLAE"):
        text, _ = pipeline.run(tmp_path / "log.txt", tmp_path / "users.txt", EDLAE(), k=5, memory_limit=limit,
                               fallback=SparseEDLAE(links=20))
    assert [len(line.split()) for line in bytes(text).decode().splitlines()] == [6, 6]
    # Neither fits: the refusal is the chosen model's, not the fallback's.
    with pytest.raises(MemoryBudgetError, match="^EDLAE on 6,000 songs"):
        pipeline.run(tmp_path / "log.txt", tmp_path / "users.txt", EDLAE(), k=5, memory_limit=limit - 100 * 2**20,
                     fallback=SparseEDLAE(links=20))
