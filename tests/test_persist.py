import json
import struct

import numpy as np
import pytest

from jukebox_fast.data import select_rows
from jukebox_fast.example import generate_listens
from jukebox_fast.io import read_listens
from jukebox_fast.models import MODELS, make_model
from jukebox_fast.persist import MAGIC, ModelFileError, encode_model, is_model_file, load_model, save_model


@pytest.fixture(scope="module")
def plays(tmp_path_factory):
    path = tmp_path_factory.mktemp("persist") / "listen_count.txt"
    path.write_bytes(generate_listens(n_users=300, n_songs=90, seed=4)[0])
    return read_listens(path)


def fitted(name, plays, **params):
    return make_model(name, **params).fit(plays.user_items)


@pytest.fixture(scope="module")
def model_file(plays, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.jbx"
    save_model(path, fitted("ease", plays, regularization=20.0, weighting="log"), plays)
    return path


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_loaded_model_recommends_exactly_as_the_saved_one(name, plays, tmp_path):
    model = fitted(name, plays)
    path = tmp_path / "model.jbx"
    save_model(path, model, plays)
    loaded, loaded_plays = load_model(path)
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    assert loaded_plays.users.tolist() == plays.users.tolist()
    assert loaded_plays.songs.tolist() == plays.songs.tolist()
    assert (loaded_plays.user_items != plays.user_items).nnz == 0
    assert loaded_plays.user_items.indptr.dtype == np.int64
    for name, value in vars(model).items():
        if name.endswith("_") and isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(loaded, name), value)
    rows = loaded_plays.users.lookup(["1", "2", "no_such_user"])
    got = loaded.recommend(select_rows(loaded_plays.user_items, rows), k=10)
    want = model.recommend(select_rows(plays.user_items, rows), k=10)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_hyper_parameters_survive(model_file):
    model, _ = load_model(model_file)
    assert (model.regularization, model.weighting) == (20.0, "log")


def test_is_model_file(model_file, tmp_path):
    assert is_model_file(model_file)
    other = tmp_path / "log.txt"
    other.write_text("a b 1\n")
    assert not is_model_file(other)
    assert not is_model_file(tmp_path / "missing")


def damaged(model_file, tmp_path, change):
    raw = bytearray(model_file.read_bytes())
    raw = change(raw)
    path = tmp_path / "damaged.jbx"
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda raw: raw[: len(raw) // 2], "truncated"),
        (lambda raw: raw[:-1], "truncated"),
        (lambda raw: raw[:20], "truncated"),
        (lambda raw: raw + b"\0", "padded"),
        (lambda raw: raw[:-100] + bytes([raw[-100] ^ 1]) + raw[-99:], "checksum"),
        (lambda raw: raw[:200] + bytes([raw[200] ^ 0x40]) + raw[201:], "checksum|damaged"),
        (lambda raw: b"0" * len(MAGIC) + raw[len(MAGIC) :], "not a jukebox_fast model"),
        (lambda raw: b"", "not a jukebox_fast model"),
    ],
    ids=["half", "one byte short", "header cut", "padded", "payload bit", "header bit", "foreign magic", "empty"],
)
def test_a_damaged_file_is_refused_naming_it(model_file, tmp_path, change, message):
    path = damaged(model_file, tmp_path, change)
    with pytest.raises(ModelFileError, match=message) as e:
        load_model(path)
    assert str(path) in str(e.value)


def test_a_file_of_a_newer_format_is_refused(model_file, tmp_path):
    def bump(raw):
        (n,) = struct.unpack("<Q", raw[len(MAGIC) : len(MAGIC) + 8])
        start = len(MAGIC) + 8
        header = raw[start : start + n].replace(b'"format_version": 1', b'"format_version": 9')
        return raw[:start] + header + raw[start + n :]

    with pytest.raises(ModelFileError, match="format 9.*upgrade"):
        load_model(damaged(model_file, tmp_path, bump))


def test_a_listening_log_is_not_a_model(tmp_path):
    path = tmp_path / "listen_count.txt"
    path.write_text("a x 1\n")
    with pytest.raises(ModelFileError, match="not a jukebox_fast model"):
        load_model(path)


def test_the_header_says_what_is_inside(plays):
    raw = encode_model(fitted("ease", plays), plays).tobytes()
    (n,) = struct.unpack("<Q", raw[len(MAGIC) : len(MAGIC) + 8])
    header = json.loads(raw[len(MAGIC) + 8 : len(MAGIC) + 8 + n])
    assert header["model"] == "ease" and header["format_version"] == 1
    assert header["hyper_parameters"] == {"regularization": 100.0, "weighting": "binary", "num_threads": 0, "device": "cpu"}
    assert {a["name"] for a in header["arrays"]} >= {"model.item_weights_", "plays.indptr", "users.data", "songs.offsets"}


def test_an_unfitted_model_cannot_be_saved(plays, tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        save_model(tmp_path / "m", MODELS["ease"](), plays)
