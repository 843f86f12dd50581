"""Settings a log chooses for itself: the regularization, by validation inside the training plays.

How strongly to regularize moves from log to log more than any other
setting: the best lambda of the default model is half its default on the
official log's splits, 4 times it on a 2,000-user sample of that log, and
64 times or more on logs with nothing but popularity to learn
(docs/models.md). ``choose`` holds
out a share of the plays it is given (it never sees anything else: the
test data of an evaluation stays out of reach), fits the model at a few
regularizations on the rest, ranks them by the NDCG@100 of the held-out
plays and returns the model with the best.

Then, for models with ``user_neighbour_weight`` (EDLAE) left at 0, on
logs of at most 100,000 users: the votes of similar users are tried at
a few weights on the same held-out plays, and the best is taken only
where it beats no votes by two standard errors of the users' paired
differences (on logs where they do not help, a small weight can look
better by chance, and costs on the test data).

The search walks a grid of powers of two around the model's own
regularization: up by 4x while that helps, else down, then one step of
2x either side of the best, six fits as a rule. Its fits are on the songs
with the most listeners, 30% of the catalogue (between 2,048 and 4,096
songs; all of them below 2,048): the solve grows as n^3, so a fit there
costs 0.027 of the full solve, six of them 0.16. On logs of more than
100,000 users, the fits learn from 100,000 of them. Where the
regularization is relative to the gram matrix's mean diagonal (EDLAE, the
sparse model), the search's fits scale it so that they regularize as
much, in absolute terms, as the full model would: the popular songs'
diagonal is larger, and a part of the plays' smaller. The search stops
starting fits when its time budget would run out. Everything is seeded:
the same plays give the same choice.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from . import _parallel as parallel
from .runtime import logger

# Songs of the search's fits, the most listened-to: this share of the catalogue, within these bounds.
SEARCH_SHARE, FEWEST_SONGS, MOST_SONGS = 0.3, 2048, 4096
# Users whose held-out plays rank the settings, at most.
SEARCH_USERS = 5_000
# Users whose plays the search's fits learn from, at most.
SEARCH_FIT_USERS = 100_000
# Share of the plays held out.
HOLD_OUT = 0.2
# The regularizations tried are the model's times these powers of two, at most.
LOWEST, HIGHEST = 2.0**-4, 2.0**10
# Seconds the search may take, unless told otherwise.
BUDGET_S = 60.0
# The weights of similar users' votes tried (EDLAE's user_neighbour_weight), once the regularization is chosen.
USER_WEIGHTS = (0.25, 0.5, 1.0, 2.0)
# A weight is taken only when its held-out NDCG@100 beats no votes by this many standard errors (paired by user).
EVIDENCE = 2.0
# Listeners the votes' kernel visits per second and thread (5e7 measured on the official log; the budget's estimate).
VOTES_RATE = 5e7


def searchable(model) -> bool:
    """Whether ``choose`` tunes this model: a closed form with a ``regularization`` (EASE, EDLAE, the sparse model)."""
    return bool(getattr(model, "auto_search", False))


def search_songs(n_items):
    """How many songs the search fits on, for a catalogue of ``n_items``."""
    return min(n_items, max(FEWEST_SONGS, min(MOST_SONGS, int(SEARCH_SHARE * n_items))))


def hold_out(user_items, share=HOLD_OUT, seed=0):
    """``(kept, held)``: CSR matrices of ``user_items``'s shape, each play in one of them, a ``share`` of them held at random."""
    X = sp.csr_array(user_items)
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
    held = np.random.default_rng(seed).random(X.nnz) < share
    parts = []
    for mask in (~held, held):
        part = sp.csr_array((X.data[mask], (rows[mask], X.indices[mask])), shape=X.shape)
        part.sort_indices()
        parts.append(part)
    return parts


def search_problem(user_items, songs, users=SEARCH_USERS, fit_users=SEARCH_FIT_USERS, seed=0):
    """``(fit_part, scored_rows, held)``: what the search fits on and scores by.

    At most ``fit_users`` of the users with plays are drawn at random;
    their plays are split by ``hold_out``, and both parts keep only the
    ``songs`` songs with the most listeners in the kept part (ties: the
    lower index). The scored users are those with plays in both parts, at
    most ``users`` of them drawn at random.
    """
    X = sp.csr_array(user_items)
    active = np.flatnonzero(np.diff(X.indptr) > 0)
    if active.size > fit_users:
        X = X[np.sort(np.random.default_rng(seed + 2).choice(active, fit_users, replace=False))]
    fit_part, held = hold_out(X, seed=seed)
    n = fit_part.shape[1]
    if n > songs:
        listeners = np.bincount(fit_part.indices, minlength=n)
        top = np.sort(np.argsort(-listeners, kind="stable")[:songs])
        fit_part, held = fit_part[:, top], held[:, top]
    both = np.flatnonzero((np.diff(fit_part.indptr) > 0) & (np.diff(held.indptr) > 0))
    if both.size > users:
        both = np.sort(np.random.default_rng(seed + 1).choice(both, users, replace=False))
    return fit_part, fit_part[both], held[both]


def gram_scale(model, user_items):
    """The mean diagonal of the gram matrix that ``model``'s regularization multiplies (1 where it is absolute, as in EASE)."""
    from .data import weigh
    from .models.edlae import weigh_users

    if not getattr(model, "relative_regularization", False):
        return 1.0
    X = weigh(sp.csr_array(user_items), model.weighting)
    if getattr(model, "user_exponent", 0):
        X = weigh_users(X, model.user_exponent)
    diagonal = np.bincount(X.indices, np.square(X.data, dtype=np.float64), minlength=X.shape[1])
    return max(float(diagonal.mean()), np.finfo(np.float32).tiny)


def choose(model, user_items, budget_s=BUDGET_S, seed=0, songs=None):
    """The model with the regularization that ranks the held-out plays best, and the search's record.

    Parameters
    ----------
    model : Recommender
        A model with a ``regularization`` parameter (``searchable``); it is
        not changed, nor fitted.
    user_items : sparse (n_users, n_items)
        The training plays; a share of them is held out for the search.
    budget_s : float
        The search starts no fit once it has used this many seconds, nor
        one that its last fit's time says would end past it. At least the
        model's own regularization is always tried.
    seed : int
    songs : int, optional
        The search fits on this many of the most listened-to songs (default: ``search_songs``).

    Returns
    -------
    model : Recommender
        A new, unfitted model: ``model``'s parameters, the regularization
        (and the weight of similar users' votes) chosen.
    record : list of (regularization, NDCG@100, seconds)
        Each fit of the search, in the order tried.
    """
    from .evaluation import ndcg

    if not searchable(model):
        raise ValueError(f"{type(model).__name__} has no regularization that the search chooses")
    start = time.perf_counter()
    user_items = sp.csr_array(user_items)
    songs = search_songs(user_items.shape[1]) if songs is None else songs
    fit_part, scored, held = search_problem(user_items, songs, seed=seed)
    # A ridge's best penalty does not grow with the data (it is the noise's variance over the
    # prior's): a regularization relative to the gram diagonal, which does, is scaled so that each
    # of the search's fits, on part of the plays, regularizes as much as the full model would.
    scale = gram_scale(model, user_items) / gram_scale(model, fit_part)
    base = float(model.regularization)
    params = model.get_params()
    record, values = [], {}

    # The best fit so far, with its users' NDCG@100: the votes of similar users are tried on it.
    kept = {}

    def value(factor):
        if factor not in values:
            begin = time.perf_counter()
            trial = type(model)(**{**params, "regularization": base * factor * scale}).fit(fit_part)
            ranked, _ = trial.recommend(scored, k=100)
            per_user = ndcg(ranked, held, k=100)
            values[factor] = float(np.mean(per_user)) if scored.shape[0] else 0.0
            if not kept or values[factor] > kept["value"]:
                kept.update(factor=factor, value=values[factor], trial=trial, per_user=per_user)
            record.append((base * factor, values[factor], time.perf_counter() - begin))
            logger.debug(f"auto: regularization {base * factor:g}: validation NDCG@100 {values[factor]:.4f} "
                         f"({record[-1][2]:.1f}s)")
        return values[factor]

    def time_left():
        last = record[-1][2] if record else 0.0
        return time.perf_counter() - start + last <= budget_s

    best = 1.0
    value(best)
    for step in (4.0, 0.25):
        factor = best * step
        while LOWEST <= factor <= HIGHEST and time_left() and value(factor) > values[best]:
            best, factor = factor, factor * step
        if best != 1.0:
            break
    for factor in (best * 2.0, best / 2.0):
        if LOWEST <= factor <= HIGHEST and time_left() and value(factor) > values[best]:
            best = factor
    chosen = {**params, "regularization": base * best}
    n_users = int(np.count_nonzero(np.diff(user_items.indptr)))
    if params.get("user_neighbour_weight") == 0 and n_users <= SEARCH_FIT_USERS and scored.shape[0]:
        # A weight's scoring visits, for each scored user's song, its listeners among the users fitted on.
        listeners = np.bincount(fit_part.indices, minlength=fit_part.shape[1])
        votes_s = float(listeners[scored.indices].sum()) / (VOTES_RATE * parallel.get_num_threads())

        def votes_fit():
            return time.perf_counter() - start + votes_s <= budget_s

        begin = time.perf_counter()
        assert kept["factor"] == best  # the walk only moves to a better value
        chosen["user_neighbour_weight"] = user_neighbour_weight(kept["trial"], scored, held, kept["per_user"], votes_fit)
        logger.debug(f"auto: similar users' votes: weight {chosen['user_neighbour_weight']:g} "
                     f"({time.perf_counter() - begin:.1f}s)")
    logger.debug(
        f"auto: {len(record)} fits on {fit_part.shape[1]:,} songs, {scored.shape[0]:,} users scored, "
        f"{time.perf_counter() - start:.1f}s"
    )
    return type(model)(**chosen), record


def user_neighbour_weight(trial, scored, held, without, time_left=lambda: True):
    """The weight of similar users' votes that ranks ``held`` best for the rows ``scored`` of ``trial``'s log, or 0.

    ``trial`` is fitted (on a log without ``held``); the weights are tried
    in turn on it, upwards while each ranks better than the last;
    ``without`` holds each scored user's NDCG@100 without votes. A weight
    is taken only when its NDCG@100 beats no votes by
    ``EVIDENCE`` standard errors of the users' differences, and then the
    best of those. No weight is tried once ``time_left()`` is false.
    """
    from .evaluation import ndcg

    per_user = {0.0: without}
    previous = 0.0
    for weight in USER_WEIGHTS:  # up while it helps
        if not time_left():
            break
        trial.user_neighbour_weight = weight
        ranked, _ = trial.recommend(scored, k=100)
        per_user[weight] = ndcg(ranked, held, k=100)
        logger.debug(f"auto: similar users' votes at weight {weight:g}: validation NDCG@100 {per_user[weight].mean():.4f}")
        if per_user[weight].mean() <= per_user[previous].mean():
            break
        previous = weight
    trial.user_neighbour_weight = 0.0
    best = 0.0
    for weight in per_user:
        gain = per_user[weight] - per_user[0.0]
        error = gain.std() / np.sqrt(gain.size)
        if gain.mean() > EVIDENCE * error and per_user[weight].mean() > per_user[best].mean():
            best = weight
    return best


def report(model, chosen, record):
    """One line on what the search chose, for stderr."""
    name = type(model).__name__
    start = record[0][1]
    best = max(record, key=lambda r: r[1])
    seconds = sum(r[2] for r in record)
    if chosen.regularization == model.regularization:
        line = f"auto: {name} keeps regularization {model.regularization:g}"
        scores = f"validation NDCG@100 {start:.4f}"
    else:
        line = f"auto: {name} regularization {chosen.regularization:g} instead of {model.regularization:g}"
        scores = f"validation NDCG@100 {best[1]:.4f} against {start:.4f}"
    votes = getattr(chosen, "user_neighbour_weight", 0)
    if votes != getattr(model, "user_neighbour_weight", 0):
        line += f", and similar users' votes at weight {votes:g}"
    return f"{line} ({scores}; {len(record)} fits, {seconds:.1f}s; --no-auto skips this)"
