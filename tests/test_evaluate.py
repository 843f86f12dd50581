import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast.cli import main
from jukebox_fast.errors import InputFormatError, JukeboxError
from jukebox_fast.evaluation import activity_quartiles, evaluate_files, evaluate_lists, read_song_lists


def ndcg_twin(recs, truth):
    """The problem evaluator's NDCG, user by user in plain Python (as shared/tools/check_recs.py)."""
    total, users = 0.0, 0
    for u, held in truth.items():
        rec = recs.get(u)
        if not rec:
            continue
        held = set(held)
        idcg = sum(1.0 / math.log2(i + 2) for i in range(len(held)))
        total += sum(1.0 / math.log2(i + 2) for i, r in enumerate(rec) if r in held) / idcg
        users += 1
    return total / users if users else 0.0


def write_lists(path, lists):
    path.write_text("".join(" ".join([u, *songs]) + "\n" for u, songs in lists.items()))
    return path


songs = st.lists(st.sampled_from([f"s{i}" for i in range(25)] + ["007", "7"]), max_size=30)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.sampled_from([f"u{i}" for i in range(12)]), songs.filter(bool), max_size=12),
    st.dictionaries(st.sampled_from([f"u{i}" for i in range(16)]), songs, max_size=16),
)
def test_ndcg_agrees_with_the_problems_evaluator(tmp_path_factory, truth, recs):
    folder = tmp_path_factory.mktemp("eval")
    result = evaluate_files(write_lists(folder / "recs.txt", recs), write_lists(folder / "truth.txt", truth), k=30)
    scored = [u for u in truth if recs.get(u)]
    assert result["users"] == len(scored)
    if scored:
        assert abs(result["ndcg"] - ndcg_twin(recs, truth)) < 1e-12
        recall = [len(set(recs[u][:30]) & set(truth[u])) / len(set(truth[u])) for u in scored]
        assert abs(result["recall"] - sum(recall) / len(scored)) < 1e-12
        hit = [bool(set(recs[u][:30]) & set(truth[u])) for u in scored]
        assert abs(result["hit_rate"] - sum(hit) / len(scored)) < 1e-12
        assert sum(q["users"] for q in result["by_activity"]) == len(scored)


def test_a_hand_computed_example(tmp_path):
    recs = write_lists(tmp_path / "recs.txt", {"a": ["1", "2", "3"], "b": ["4", "5", "6"], "c": []})
    truth = write_lists(tmp_path / "truth.txt", {"a": ["2", "9"], "b": ["7"], "c": ["1"], "d": ["1"]})
    result = evaluate_files(recs, truth, k=2)
    # a: DCG 1/log2(3), IDCG 1 + 1/log2(3); b: 0. c (empty line) and d (no line) are not scored.
    a = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert result["ndcg"] == pytest.approx(a / 2, abs=1e-15)
    assert result["recall"] == pytest.approx(0.25) and result["hit_rate"] == pytest.approx(0.5)
    assert (result["users"], result["held_out_users"], result["without_line"]) == (2, 4, 2)


def test_ndcg_sums_over_the_whole_line_but_recall_stops_at_k(tmp_path):
    recs = write_lists(tmp_path / "recs.txt", {"a": ["1", "2", "3"]})
    truth = write_lists(tmp_path / "truth.txt", {"a": ["3"]})
    result = evaluate_files(recs, truth, k=2)
    assert result["ndcg"] == pytest.approx(0.5) and result["recall"] == 0
    assert [p["kind"] for p in result["problems"]] == ["line length"]


def test_evaluate_lists_by_activity_quartile():
    recommended = np.array([[0, 1], [2, -1], [1, 0], [3, 3]])
    held_out = sp.csr_array(np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 1]]))
    result = evaluate_lists(recommended, held_out, k=2, activity=np.array([5, 1, 9, 3]))
    assert [q["activity"] for q in result["by_activity"]] == [[1, 1], [3, 3], [5, 5], [9, 9]]
    assert [q["ndcg"] for q in result["by_activity"]] == pytest.approx([0, 1 + 1 / math.log2(3), 1, 1 / (1 + 1 / math.log2(3))])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=50))
def test_activity_quartiles_are_equal_sized_and_ordered(activity):
    groups = activity_quartiles(np.array(activity, np.int64))
    sizes = np.bincount(groups, minlength=4)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == len(activity)
    for g in range(3):
        if sizes[g] and sizes[g + 1]:
            assert max(a for a, q in zip(activity, groups) if q == g) <= min(a for a, q in zip(activity, groups) if q == g + 1)


def test_format_problems_given_the_train_file(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text("a 1 1\na 2 3\nb 3 1\nc 1 1\n")
    recs = tmp_path / "recs.txt"
    recs.write_text("a 1 3\nb 4 4\nb 1\nc 2 3\n")  # a: played 1; b: song 4 unknown and twice, two lines
    truth = write_lists(tmp_path / "truth.txt", {"a": ["3"], "b": ["1"], "c": ["2"], "d": ["1"]})
    users = tmp_path / "users.txt"
    users.write_text("a\nb\nc\nd\n")
    result = evaluate_files(recs, truth, train_path=train, user_ids_path=users, k=2)
    kinds = {p["kind"]: p for p in result["problems"]}
    # a's line is also too long: with song 2 played, only song 3 is left to recommend.
    assert set(kinds) == {"repeated user", "repeated song", "seen song", "unknown song", "missing user", "line length"}
    assert kinds["seen song"]["count"] == 1 and "user a" in kinds["seen song"]["example"]
    assert "user d" in kinds["missing user"]["example"]
    assert result["activity_source"].startswith("songs played in")


def test_a_short_line_is_a_problem_only_when_more_songs_were_unplayed(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text("a 1 1\na 2 1\nb 1 1\n")
    recs = tmp_path / "recs.txt"
    recs.write_text("a\nb 2\n")  # a played every song, so its empty line is right; b has one song left
    truth = write_lists(tmp_path / "truth.txt", {"b": ["2"]})
    assert evaluate_files(recs, truth, train_path=train, k=1)["problems"] == []
    assert [p["kind"] for p in evaluate_files(recs, truth, train_path=train, k=5)["problems"]] == []
    recs.write_text("a\nb\n")
    assert [p["kind"] for p in evaluate_files(recs, truth, train_path=train, k=5)["problems"]] == ["line length"]


def test_a_user_twice_in_the_truth_is_an_input_error(tmp_path):
    truth = tmp_path / "truth.txt"
    truth.write_text("a 1\nb 2\na 3\n")
    recs = write_lists(tmp_path / "recs.txt", {"a": ["1"]})
    with pytest.raises(InputFormatError, match=r"truth.txt:3: .*second line for user 'a'"):
        evaluate_files(recs, truth)


def test_unreadable_files_are_user_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a 1\nb \xff\n")
    with pytest.raises(InputFormatError, match="bad.txt:2"):
        read_song_lists(bad)
    with pytest.raises(JukeboxError, match="no such file"):
        read_song_lists(tmp_path / "missing.txt")


def test_read_song_lists_handles_crlf_tabs_and_blank_lines(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"\xef\xbb\xbfa 1\t2\r\n\n  \nb\r\nc 3")
    assert read_song_lists(path) == (["a", "b", "c"], [["1", "2"], [], ["3"]], [1, 4, 5])


def test_evaluate_cli_json_exit_status_and_output_file(tmp_path, capsysbinary):
    recs = write_lists(tmp_path / "recs.txt", {"a": ["1", "2"], "b": ["2", "2"]})
    truth = write_lists(tmp_path / "truth.txt", {"a": ["2"], "b": ["2"]})
    assert main(["evaluate", str(recs), str(truth), "--json", "-k", "2"]) == 1  # b repeats a song
    out = json.loads(capsysbinary.readouterr().out)
    assert out["problems"][0]["kind"] == "repeated song"
    assert out["ndcg"] == pytest.approx((2 / math.log2(3) + 1) / 2)  # a: hit at 2; b: hits at 1 and 2
    recs = write_lists(tmp_path / "recs.txt", {"a": ["1", "2"], "b": ["2", "3"]})
    assert main(["evaluate", str(recs), str(truth), "-k", "2", "-o", str(tmp_path / "report.txt"), "-q"]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out == b"" and captured.err == b""
    report = (tmp_path / "report.txt").read_text()
    assert "NDCG@100" in report and "Q4" in report


def test_evaluate_cli_missing_file_is_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.txt"), str(tmp_path / "nope2.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("jukebox_fast: error:")
