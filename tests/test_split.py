import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast.cli import main
from jukebox_fast.errors import InputFormatError, JukeboxError, JukeboxWarning
from jukebox_fast.split import split_file, split_plays


def split_twin(user_codes, seed, ratio, protocol):
    """shared/tools/make_split.py's rule, written with Python lists."""
    rng = np.random.default_rng(seed)
    n = len(user_codes)
    train = np.zeros(n, bool)
    if protocol == "random":
        train[rng.permutation(n)[: int(n * ratio)]] = True
        return train
    by_user = {}
    for i, u in enumerate(user_codes):
        by_user.setdefault(u, []).append(i)
    for idx in by_user.values():
        if len(idx) < 2:
            train[idx] = True
            continue
        k = max(1, int(round((1 - ratio) * len(idx))))
        pick = rng.permutation(len(idx))
        train[[idx[j] for j in pick[k:]]] = True
    return train


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 6), max_size=40),
    st.integers(0, 2**32),
    st.floats(0.05, 0.95),
    st.sampled_from(["random", "per-user"]),
)
def test_split_plays_matches_the_reference_rule(users, seed, ratio, protocol):
    # Number users in order of first appearance, as factorize does.
    first = {}
    codes = np.array([first.setdefault(u, len(first)) for u in users], np.int64)
    got = split_plays(codes, len(first), seed, ratio, protocol)
    np.testing.assert_array_equal(got, split_twin(codes.tolist(), seed, ratio, protocol))


@pytest.mark.parametrize("ratio", [0, 1, -0.5, 1.5])
def test_split_plays_refuses_a_ratio_outside_0_1(ratio):
    with pytest.raises(ValueError, match="ratio"):
        split_plays(np.zeros(3, np.int64), 1, ratio=ratio)


def read_plays(path):
    return [tuple(line.split()) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("protocol", ["random", "per-user"])
def test_split_file_partitions_the_plays_in_the_problem_formats(tmp_path, protocol):
    rng = np.random.default_rng(5)
    lines = sorted({(f"u{rng.integers(30)}", f"s{rng.integers(40)}") for _ in range(300)})
    lines = [(u, s, str(rng.integers(1, 9))) for u, s in lines]
    rng.shuffle(lines)
    log = tmp_path / "listen_count.txt"
    log.write_text("".join(" ".join(line) + "\n" for line in lines))
    counts = split_file(log, tmp_path / "out", seed=2, ratio=0.7, protocol=protocol)

    train = read_plays(tmp_path / "out" / "listen_count.txt")
    assert all(len(t) == 3 for t in train)
    held = [line.split() for line in (tmp_path / "out" / "test_data.txt").read_text().splitlines()]
    users = (tmp_path / "out" / "user_ids.txt").read_text().split("\n")[:-1]
    assert users == [h[0] for h in held]
    held_pairs = {(h[0], s) for h in held for s in h[1:]}
    train_pairs = {(u, s) for u, s, _ in train}
    assert not held_pairs & train_pairs
    assert held_pairs | train_pairs == {(u, s) for u, s, _ in lines}
    assert train == [line for line in lines if (line[0], line[1]) in train_pairs]  # file order, counts kept
    assert counts == {
        "train_plays": len(train), "held_out_plays": len(held_pairs), "users": len(users),
        "cold_users": len({u for u, _ in held_pairs} - {u for u, _ in train_pairs}),
    }
    if protocol == "random":
        assert len(train) == int(len(lines) * 0.7)


def test_split_sums_a_repeated_pair_so_it_lands_in_one_part(tmp_path):
    log = tmp_path / "listen_count.txt"
    log.write_text("a x 1\nb y 2\na x 4\nb z 1\na w 1\n")
    with pytest.warns(JukeboxWarning, match="1 line repeats an earlier"):
        split_file(log, tmp_path / "out", seed=0, ratio=0.5)
    train = read_plays(tmp_path / "out" / "listen_count.txt")
    held = {(h[0], s) for h in map(str.split, (tmp_path / "out" / "test_data.txt").read_text().splitlines()) for s in h[1:]}
    everything = set(train) | {(u, s, None) for u, s in held}
    assert len(everything) == 4
    assert ("a", "x", "5") in train or ("a", "x") in held


def test_split_refuses_an_empty_log_and_a_file_as_directory(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(InputFormatError, match="no plays"):
        split_file(empty, tmp_path / "out")
    log = tmp_path / "log.txt"
    log.write_text("a x 1\nb x 1\n")
    with pytest.raises(JukeboxError, match="expected a directory"):
        split_file(log, log)


def test_split_cli_bad_ratio_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["split", "x.txt", str(tmp_path), "--ratio", "1.2"])
    assert e.value.code == 2
    assert "between 0 and 1" in capsys.readouterr().err


def test_split_cli_is_quiet_with_q(tmp_path, capsys):
    log = tmp_path / "log.txt"
    log.write_text("a x 1\na y 1\nb x 1\nb z 2\n")
    assert main(["split", str(log), str(tmp_path / "out"), "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["split", str(log), str(tmp_path / "out")]) == 0
    assert "held out" in capsys.readouterr().err


@pytest.mark.shared
@pytest.mark.parametrize("seed", [0])
def test_split_reproduces_the_shared_splits_byte_for_byte(shared_data, tmp_path, seed):
    split_file(shared_data / "listen_count.txt", tmp_path, seed=seed)
    for name in ("listen_count.txt", "test_data.txt", "user_ids.txt"):
        assert (tmp_path / name).read_bytes() == (shared_data / f"split-seed{seed}" / name).read_bytes(), name
