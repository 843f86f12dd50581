"""Ranking metrics, exactly as the Jukebox problem defines them, on arrays and on files."""

from __future__ import annotations

import math
import os

import numpy as np
import scipy.sparse as sp

from .errors import InputFormatError


def _discounts(n):
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def ndcg(recommended: np.ndarray, held_out: sp.sparray | sp.spmatrix, k: int = 100) -> np.ndarray:
    """Per-user NDCG@k of recommendations against held-out plays.

    DCG sums 1/log2(i + 1) over positions i = 1..k whose song is held out;
    the ideal DCG sums it over i = 1..|held out|, *not* capped at k, as the
    problem's evaluator does.

    Parameters
    ----------
    recommended : ndarray, (n_users, >= k), int
        Song indices best first; -1 entries never hit.
    held_out : sparse (n_users, n_items)
        The held-out songs of the same users, row for row.

    Returns
    -------
    ndarray, (n_users,), float64
        NDCG of each user; NaN for users without held-out songs.
    """
    recommended = np.asarray(recommended)[:, :k]
    held_out = held_out.tocsr()
    n_held = np.diff(held_out.indptr)
    hits = _hits(recommended, held_out)
    disc = _discounts(max(k, int(n_held.max(initial=0))))
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[n_held]
    dcg = hits @ disc[: recommended.shape[1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_held > 0, dcg / ideal, np.nan)


def recall(recommended: np.ndarray, held_out: sp.sparray | sp.spmatrix, k: int = 100) -> np.ndarray:
    """Per-user share of held-out songs found in the top k (NaN without held-out songs)."""
    recommended = np.asarray(recommended)[:, :k]
    held_out = held_out.tocsr()
    n_held = np.diff(held_out.indptr)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_held > 0, _hits(recommended, held_out).sum(1) / n_held, np.nan)


def _hits(recommended, held_out):
    """float64 (n_users, k): 1 where the song at that position is held out for that user."""
    n_items = held_out.shape[1]
    rows = np.repeat(np.arange(recommended.shape[0], dtype=np.int64), recommended.shape[1])
    cols = recommended.reshape(-1).astype(np.int64)
    held_rows = np.repeat(np.arange(held_out.shape[0], dtype=np.int64), np.diff(held_out.indptr))
    held = np.sort(held_rows * n_items + held_out.indices)
    keys = rows * n_items + cols
    found = np.minimum(np.searchsorted(held, keys), max(held.size - 1, 0))
    hit = (held[found] == keys if held.size else np.zeros(keys.size, bool)) & (cols >= 0)
    return hit.reshape(recommended.shape).astype(np.float64)


# ---------------------------------------------------------------------------
# File-level evaluation: RECS and TEST_DATA files in the problem's formats.


def read_song_lists(path):
    """Read ``<user_id> <song_id> <song_id> ...`` lines (recommendations or held-out truth).

    Fields are separated by blanks; blank lines are skipped; a line may hold
    a user id alone. These files are small (a line per user), so plain
    Python parses them; ``io`` reads the bytes and words the errors.

    Returns
    -------
    users : list of str
        User ids in file order, repeats kept.
    lists : list of list of str
        The songs of each line, in order.
    line_numbers : list of int
        The 1-based line of each entry.
    """
    from .io import read_bytes

    _, raw, start = read_bytes(path)
    users, lists, line_numbers = [], [], []
    for number, line in enumerate(raw[start:].split(b"\n"), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            tokens = [f.decode("utf-8") for f in fields]
        except UnicodeDecodeError:
            raise InputFormatError(path, number, "UTF-8 text", "bytes that are not UTF-8") from None
        users.append(tokens[0])
        lists.append(tokens[1:])
        line_numbers.append(number)
    return users, lists, line_numbers


def _summarize(recommended, held_out, k, groups):
    """Mean NDCG (over each whole line), recall@k and hit rate@k, overall and per group."""
    n_lines = recommended.shape[1]
    per_ndcg = ndcg(recommended, held_out, k=n_lines) if n_lines else np.zeros(held_out.shape[0])
    top = recommended[:, :k]
    # A song recommended twice is found once (NDCG, like the problem's evaluator, counts both).
    hits = (_hits(top, held_out) * _first_occurrences(top)).sum(1) if top.size else np.zeros(held_out.shape[0])
    n_held = np.diff(held_out.tocsr().indptr)
    per_recall = hits / np.maximum(n_held, 1)
    per_hit = (hits > 0).astype(np.float64)

    def means(mask):
        n = int(mask.sum())
        if n == 0:
            return {"users": 0, "ndcg": float("nan"), "recall": float("nan"), "hit_rate": float("nan")}
        # Summed user by user, like the problem's evaluator, so both agree to the last bits.
        return {
            "users": n,
            "ndcg": math.fsum(per_ndcg[mask].tolist()) / n,
            "recall": math.fsum(per_recall[mask].tolist()) / n,
            "hit_rate": math.fsum(per_hit[mask].tolist()) / n,
        }

    overall = means(np.ones(held_out.shape[0], bool))
    return overall, [dict(means(groups == g)) for g in range(4)]


def _first_occurrences(recommended):
    """Boolean like ``recommended``: is this the first position of its song in the row."""
    order = np.argsort(recommended, axis=1, kind="stable")
    ranked = np.take_along_axis(recommended, order, axis=1)
    first = np.ones(recommended.shape, bool)
    first[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    out = np.empty_like(first)
    np.put_along_axis(out, order, first, axis=1)
    return out


def activity_quartiles(activity):
    """Quartile (0..3) of each user by activity: users sorted by it and cut into four equal groups."""
    activity = np.asarray(activity)
    order = np.argsort(activity, kind="stable")
    groups = np.empty(activity.size, np.int64)
    groups[order] = np.arange(activity.size) * 4 // max(activity.size, 1)
    return groups


def evaluate_lists(recommended, held_out, k=100, activity=None):
    """Metrics of recommendations against held-out songs, overall and by activity quartile.

    Parameters
    ----------
    recommended : ndarray, (n_users, width), int
        Song indices best first; -1 pads short lines.
    held_out : sparse (n_users, n_songs)
        Each user's held-out songs (every user has at least one).
    k : int
        Cut-off of recall and hit rate. NDCG sums over each whole line, as
        the problem's evaluator does (lines are k long when well-formed).
    activity : ndarray, (n_users,), optional
        Songs each user played, for the quartiles; default: held-out songs.

    Returns
    -------
    dict
        ``ndcg``, ``recall``, ``hit_rate``, ``users`` and ``by_activity``
        (four dicts with the same keys plus ``activity``, the [min, max]
        activity of the quartile).
    """
    recommended = np.asarray(recommended, np.int64)
    if activity is None:
        activity = np.diff(held_out.tocsr().indptr)
    activity = np.asarray(activity)
    groups = activity_quartiles(activity)
    overall, quartiles = _summarize(recommended, held_out, k, groups)
    for g, q in enumerate(quartiles):
        members = activity[groups == g]
        q["activity"] = [int(members.min()), int(members.max())] if members.size else None
    return dict(overall, by_activity=quartiles)


def _problem(problems, kind, count, example):
    if count:
        problems.append({"kind": kind, "count": int(count), "example": example})


def evaluate_files(
    recs_path: str | os.PathLike,
    test_path: str | os.PathLike,
    train_path: str | os.PathLike | None = None,
    user_ids_path: str | os.PathLike | None = None,
    k: int = 100,
) -> dict:
    """Score a recommendations file against a held-out truth file, as the problem's evaluator does.

    Every user of TEST_DATA with a non-empty line in RECS is scored; NDCG
    is DCG over the whole line divided by the ideal DCG over *all* the
    user's held-out songs (repeats in TEST_DATA count once), so it agrees
    with ``check_recs.py``. With ``train_path`` the users are grouped by
    the songs they played there, and recommending a played or unknown song,
    or a line of the wrong length, is reported as a problem; with
    ``user_ids_path``, so is a requested user without a line.

    Returns
    -------
    dict
        The ``evaluate_lists`` result plus ``k``, ``activity_source``,
        ``held_out_users``, ``without_line`` and ``problems`` (a list of
        ``{"kind", "count", "example"}``).
    """
    test_users, test_lists, test_lines = read_song_lists(test_path)
    first_line = {}
    for user, number in zip(test_users, test_lines):
        if user in first_line:
            raise InputFormatError(
                test_path, number, "one line per user", f"a second line for user {user!r} (first on line {first_line[user]})"
            )
        first_line[user] = number
    rec_users, rec_lists, rec_lines = read_song_lists(recs_path)
    problems = []

    recs = {}
    repeated_users = []
    for user, songs in zip(rec_users, rec_lists):
        if user in recs:
            repeated_users.append(user)
        else:
            recs[user] = songs
    _problem(problems, "repeated user", len(repeated_users), f"user {repeated_users[0]} has more than one line; the first is scored" if repeated_users else "")
    repeats = [u for u, songs in recs.items() if len(set(songs)) != len(songs)]
    _problem(problems, "repeated song", len(repeats), f"user {repeats[0]}: a song is recommended twice" if repeats else "")
    empty_truth = [u for u, songs in zip(test_users, test_lists) if not songs]
    _problem(problems, "empty truth", len(empty_truth), f"user {empty_truth[0]} has no held-out songs in {test_path}; not scored" if empty_truth else "")

    scored = [u for u, songs in zip(test_users, test_lists) if songs and recs.get(u)]
    without_line = sum(1 for u, songs in zip(test_users, test_lists) if songs and not recs.get(u))
    truth = dict(zip(test_users, test_lists))

    vocabulary = {}
    width = max((len(recs[u]) for u in scored), default=0)
    recommended = np.full((len(scored), width), -1, np.int64)
    for r, user in enumerate(scored):
        line = recs[user]
        recommended[r, : len(line)] = [vocabulary.setdefault(s, len(vocabulary)) for s in line]
    indptr = np.zeros(len(scored) + 1, np.int64)
    held_cols = []
    for r, user in enumerate(scored):
        ids = {vocabulary.setdefault(s, len(vocabulary)) for s in truth[user]}
        held_cols.extend(sorted(ids))
        indptr[r + 1] = len(held_cols)
    held_out = sp.csr_array(
        (np.ones(len(held_cols)), np.asarray(held_cols, np.int64), indptr), shape=(len(scored), max(len(vocabulary), 1))
    )

    activity, source = None, "held-out songs"
    if train_path is not None:
        activity = _check_against_train(train_path, recs, scored, k, problems)
        source = f"songs played in {train_path}"
    if user_ids_path is not None:
        from .io import read_user_ids

        wanted = read_user_ids(user_ids_path).tolist()
        missing = [u for u in wanted if u not in recs]
        _problem(problems, "missing user", len(missing), f"user {missing[0]} of {user_ids_path} has no line" if missing else "")
    elif train_path is None:
        long = [u for u, songs in recs.items() if len(songs) > k]
        _problem(problems, "line length", len(long), f"user {long[0]}: {len(recs[long[0]])} songs, expected at most {k}" if long else "")

    result = evaluate_lists(recommended, held_out, k=k, activity=activity)
    result.update(
        k=k, activity_source=source, held_out_users=len(test_users) - len(empty_truth),
        without_line=without_line, problems=problems,
    )
    return result


def _check_against_train(train_path, recs, scored, k, problems):
    """Report played, unknown and wrongly counted songs of RECS; return the activity of the scored users."""
    from .data import IdMap
    from .io import read_listens

    train = read_listens(train_path)
    user_items = train.user_items
    played = np.diff(user_items.indptr)
    n_songs = user_items.shape[1]
    users = list(recs)
    rows = train.users.lookup(IdMap.from_tokens(users)) if users else np.empty(0, np.int64)
    row_of = dict(zip(users, rows.tolist()))
    tokens = sorted({s for songs in recs.values() for s in songs})
    cols = train.songs.lookup(IdMap.from_tokens(tokens)) if tokens else np.empty(0, np.int64)
    col_of = dict(zip(tokens, cols.tolist()))

    seen, unknown, wrong_length = [], [], []
    for user, songs in recs.items():
        row = row_of[user]
        c = np.fromiter((col_of[s] for s in songs), np.int64, len(songs))
        if (c < 0).any():
            unknown.append((user, songs[int(np.flatnonzero(c < 0)[0])]))
        if row >= 0:
            mine = user_items.indices[user_items.indptr[row] : user_items.indptr[row + 1]]
            hit = np.isin(c, mine)
            if hit.any():
                seen.append((user, int(hit.sum()), songs[int(np.flatnonzero(hit)[0])]))
        n_unplayed = n_songs - (played[row] if row >= 0 else 0)
        if len(set(songs)) == len(songs) and len(songs) != min(k, n_unplayed):
            wrong_length.append((user, len(songs), min(k, n_unplayed)))
    _problem(problems, "seen song", len(seen), f"user {seen[0][0]}: {seen[0][1]} songs played in {train_path}, e.g. {seen[0][2]}" if seen else "")
    _problem(problems, "unknown song", len(unknown), f"user {unknown[0][0]}: song {unknown[0][1]} is not in {train_path}" if unknown else "")
    _problem(
        problems, "line length", len(wrong_length),
        f"user {wrong_length[0][0]}: {wrong_length[0][1]} songs, expected {wrong_length[0][2]}" if wrong_length else "",
    )
    return np.array([played[row_of[u]] if row_of[u] >= 0 else 0 for u in scored], np.int64)


def format_report(result):
    """The text ``evaluate`` prints: the scores, the quartiles, then any problems."""
    k = result["k"]
    lines = [
        f"users with held-out songs  {result['held_out_users']:,}, scored {result['users']:,} "
        f"(without a line: {result['without_line']:,})",
        f"{'NDCG@100':<14}{result['ndcg']:.6f}",
        f"{f'recall@{k}':<14}{result['recall']:.6f}",
        f"{f'hit rate@{k}':<14}{result['hit_rate']:.6f}",
        "",
        f"by activity ({result['activity_source']}):",
        f"  {'quartile':<9}{'activity':>12}{'users':>8}{'NDCG@100':>10}{'recall':>9}{'hit rate':>10}",
    ]
    for q, group in enumerate(result["by_activity"], 1):
        span = "-" if group["activity"] is None else f"{group['activity'][0]}-{group['activity'][1]}"
        lines.append(
            f"  Q{q:<8}{span:>12}{group['users']:>8,}{group['ndcg']:>10.4f}{group['recall']:>9.4f}{group['hit_rate']:>10.4f}"
        )
    if result["problems"]:
        lines.append("")
        lines += [f"problem: {p['count']:,} x {p['kind']}: {p['example']}" for p in result["problems"]]
    return "\n".join(lines) + "\n"
