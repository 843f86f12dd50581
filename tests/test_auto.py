"""The regularization chosen per log: seeded, inside the training plays only, within its budget."""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast import auto
from jukebox_fast.evaluation import ndcg
from jukebox_fast.example import generate_listens
from jukebox_fast.io import read_listens
from jukebox_fast.models import EASE, EDLAE, LinearAutoencoder, Popularity, SparseEDLAE
from jukebox_fast.split import split_file


def popularity_log(n_users=1500, n_songs=300, per_user=12, seed=0):
    """Plays drawn by popularity alone: nothing but popularity to learn, so strong regularization wins."""
    rng = np.random.default_rng(seed)
    weights = (np.arange(n_songs) + 5.0) ** -1.0
    weights /= weights.sum()
    rows = []
    for _ in range(n_users):
        rows.append(np.unique(rng.choice(n_songs, per_user, p=weights)))
    indptr = np.concatenate([[0], np.cumsum([r.size for r in rows])])
    indices = np.concatenate(rows)
    return sp.csr_array((np.ones(indices.size, np.float32), indices, indptr), shape=(n_users, n_songs))


@pytest.fixture(scope="module")
def example_plays():
    return read_listens_bytes(generate_listens(n_users=600, n_songs=200, seed=3)[0])


def read_listens_bytes(text):
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "listen_count.txt")
        with open(path, "wb") as f:
            f.write(text)
        return read_listens(path).user_items


@given(st.integers(0, 2**31 - 1), st.floats(0.05, 0.95))
@settings(max_examples=25, deadline=None)
def test_hold_out_splits_every_play_into_exactly_one_part(seed, share):
    X = sp.random_array((40, 30), density=0.2, format="csr", random_state=seed, dtype=np.float32)
    kept, held = auto.hold_out(X, share=share, seed=seed)
    assert kept.shape == held.shape == X.shape
    assert abs(kept + held - X).sum() == 0
    assert kept.multiply(held).nnz == 0


def test_the_search_catalogue_is_a_share_of_the_songs_within_bounds():
    assert auto.search_songs(500) == 500
    assert auto.search_songs(3000) == 2048
    assert auto.search_songs(8262) == int(0.3 * 8262)
    assert auto.search_songs(41140) == 4096


def test_the_search_problem_keeps_the_most_listened_songs_and_users_in_both_parts():
    X = popularity_log(n_users=400, n_songs=300)
    fit_part, scored, held = auto.search_problem(X, songs=50, users=100)
    assert fit_part.shape == (400, 50) and scored.shape == held.shape == (100, 50)
    assert (np.diff(scored.indptr) > 0).all() and (np.diff(held.indptr) > 0).all()
    listeners = np.bincount(auto.hold_out(X)[0].indices, minlength=300)
    assert fit_part.nnz == sum(listeners[np.argsort(-listeners, kind="stable")[:50]])


def test_on_many_users_the_search_learns_from_a_sample_of_them():
    X = popularity_log(n_users=400, n_songs=300)
    fit_part, scored, held = auto.search_problem(X, songs=300, users=1000, fit_users=150)
    assert fit_part.shape == (150, 300) and scored.shape[0] <= 150
    again = auto.search_problem(X, songs=300, users=1000, fit_users=150)
    assert all(abs(a - b).sum() == 0 for a, b in zip((fit_part, scored, held), again))


def test_the_choice_is_deterministic(example_plays):
    first, record = auto.choose(EDLAE(), example_plays)
    again, record_again = auto.choose(EDLAE(), example_plays)
    assert first.regularization == again.regularization
    assert [(r, v) for r, v, _ in record] == [(r, v) for r, v, _ in record_again]
    assert first.regularization == max(record, key=lambda r: r[1])[0]


def test_a_popularity_log_gets_more_regularization_and_ranks_better_for_it():
    X = popularity_log()
    chosen, record = auto.choose(EDLAE(), X)
    assert chosen.regularization > EDLAE().regularization
    # Checked on fresh plays drawn the same way: the choice generalises.
    train, test = X, popularity_log(seed=1)
    users = np.arange(train.shape[0])
    fresh = sp.csr_array(test - test.multiply(train > 0))
    scores = []
    for model in (EDLAE(), chosen):
        songs, _ = model.fit(train).recommend(train[users], k=100)
        scores.append(np.nanmean(ndcg(songs, fresh[users])))
    assert scores[1] > scores[0]


def test_the_search_walks_from_the_models_own_regularization(example_plays):
    model = EDLAE(regularization=8.0, dropout=0.5)
    chosen, record = auto.choose(model, example_plays)
    assert record[0][0] == 8.0
    assert {r for r, _, _ in record} <= {8.0 * 2.0**e for e in range(-4, 11)}
    assert chosen.get_params() == {**model.get_params(), "regularization": chosen.regularization}
    assert not model.is_fitted() and not chosen.is_fitted()


def test_a_spent_budget_tries_only_the_models_own(example_plays):
    chosen, record = auto.choose(EDLAE(), example_plays, budget_s=0)
    assert len(record) == 1 and chosen.regularization == EDLAE().regularization


def test_the_budget_stops_the_search(example_plays, monkeypatch):
    """A clock that moves 10 s per fit: a 25 s budget allows the first fit and one more (10 + 10 <= 25, 20 + 10 > 25)."""
    now = [0.0]

    def clock():
        return now[0]

    real_fit = EDLAE.fit

    def slow_fit(self, *args, **kwargs):
        now[0] += 10.0
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(auto.time, "perf_counter", clock)
    monkeypatch.setattr(EDLAE, "fit", slow_fit)
    _, record = auto.choose(EDLAE(), example_plays, budget_s=25)
    assert len(record) == 2


@pytest.mark.parametrize("model", [EASE(), SparseEDLAE(links=20)])
def test_every_model_with_a_regularization_can_be_searched(model, example_plays):
    chosen, record = auto.choose(model, example_plays)
    assert type(chosen) is type(model) and len(record) >= 2


def test_a_model_without_regularization_or_a_closed_form_is_refused():
    assert not auto.searchable(Popularity()) and not auto.searchable(LinearAutoencoder())
    with pytest.raises(ValueError):
        auto.choose(Popularity(), popularity_log(n_users=50))


CHOICE = re.compile(rb"auto: EDLAE (?:regularization ([0-9.e+-]+) instead of 4|keeps regularization (4))")


def chosen_in(stderr):
    match = CHOICE.search(stderr)
    assert match, stderr
    return float(match.group(1) or match.group(2))


def test_run_chooses_by_default_and_says_so(cli, tmp_path):
    done = cli("run", "--example", "-o", tmp_path / "a.txt")
    assert done.returncode == 0 and chosen_in(done.stderr) > 0
    not_searched = cli("run", "--example", "--no-auto", "-v", "-o", tmp_path / "b.txt")
    given = cli("run", "--example", "--regularization", "4", "-v", "-o", tmp_path / "c.txt")
    assert b"auto:" not in not_searched.stderr and b"auto:" not in given.stderr
    assert (tmp_path / "b.txt").read_bytes() == (tmp_path / "c.txt").read_bytes()
    searched = cli("run", "--example", "--regularization", "4", "--auto", "-o", tmp_path / "d.txt")
    assert (tmp_path / "d.txt").read_bytes() == (tmp_path / "a.txt").read_bytes()
    assert chosen_in(searched.stderr) == chosen_in(done.stderr)


def test_the_choice_is_stored_in_the_model_file(cli, tmp_path):
    log = tmp_path / "listen_count.txt"
    log.write_bytes(popularity_log_text())
    done = cli("train", log, tmp_path / "model.jbx")
    assert done.returncode == 0, done.stderr
    chosen = chosen_in(done.stderr)
    assert chosen != 4
    info = cli("info", tmp_path / "model.jbx")
    assert f"regularization={chosen:g}".encode() in info.stdout.replace(b".0,", b",").replace(b".0)", b")")
    refused = cli("recommend", tmp_path / "model.jbx", log, "--no-auto")
    assert refused.returncode == 2 and b"--no-auto applies when fitting" in refused.stderr


def popularity_log_text():
    X = popularity_log()
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return "".join(f"u{u} s{s} 1\n" for u, s in zip(rows, X.indices)).encode()


def test_the_choice_never_reads_the_test_data(cli, tmp_path):
    """Two splits that differ only in test_data.txt: a test part that tuning on it would answer differently.

    The planted test part holds each user's most popular unplayed songs, which strong regularization
    ranks first; tuned on it, EDLAE's best regularization would be the largest. ``run`` sees the same
    train file in both, so it must choose the same and print the same bytes.
    """
    log = tmp_path / "all.txt"
    log.write_bytes(generate_listens(n_users=600, n_songs=200, seed=3)[0])
    real = tmp_path / "real"
    split_file(log, real, seed=0)
    train = read_listens(real / "listen_count.txt")
    popular = np.argsort(-np.bincount(train.user_items.indices, minlength=len(train.songs)), kind="stable")
    planted = tmp_path / "planted"
    planted.mkdir()
    for name in ("listen_count.txt", "user_ids.txt"):
        (planted / name).write_bytes((real / name).read_bytes())
    lines = []
    for user in (real / "user_ids.txt").read_text().split():
        row = train.users.lookup([user])[0]
        seen = set(train.user_items[[row]].indices) if row >= 0 else set()
        songs = [train.songs[int(j)] for j in popular if j not in seen][:10]
        lines.append(" ".join([user, *songs]))
    (planted / "test_data.txt").write_text("\n".join(lines) + "\n")

    def tuned_on_test(directory):
        from jukebox_fast.tune import load_split

        plays, _, rows, held = load_split(directory)
        known = rows >= 0
        best = []
        for reg in (1.0, 4.0, 64.0):
            songs, _ = EDLAE(regularization=reg).fit(plays.user_items).recommend(plays.user_items[rows[known]])
            best.append((np.nanmean(ndcg(songs, held[known])), reg))
        return max(best)[1]

    assert tuned_on_test(real) != tuned_on_test(planted)  # the planted test part would change a choice made on it
    outputs = [cli("run", d / "listen_count.txt", d / "user_ids.txt") for d in (real, planted)]
    assert outputs[0].stdout == outputs[1].stdout
    assert chosen_in(outputs[0].stderr) == chosen_in(outputs[1].stderr)


def test_auto_for_a_model_it_cannot_search_is_one_line(cli):
    done = cli("run", "--example", "--model", "popularity", "--auto")
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines() == [
        "jukebox_fast: error: --auto chooses the regularization of --model edlae, ease, sparse, not of --model popularity"
    ]


@pytest.mark.parametrize("weighting", ["binary", "log"])
def test_the_gram_scale_is_the_mean_diagonal_the_model_regularizes_by(weighting, example_plays):
    X = example_plays.toarray().astype(np.float64)
    weights = (X > 0) if weighting == "binary" else np.where(X > 0, 1 + np.log1p(X), 0)
    users = np.maximum((X > 0).sum(1), 1) ** -0.4
    expected = np.diag(weights.T @ (users[:, None] * weights)).mean()
    assert auto.gram_scale(EDLAE(weighting=weighting), example_plays) == pytest.approx(expected, rel=1e-6)
    assert auto.gram_scale(EDLAE(user_exponent=0), example_plays) == pytest.approx((X > 0).sum(0).mean())
    assert auto.gram_scale(EASE(), example_plays) == 1.0
