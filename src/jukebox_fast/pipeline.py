"""The jobs of the command line, files in and text out, with a clock on every phase: ``run``, ``train``, ``recommend_saved``.

What they say goes to the ``jukebox_fast`` logger (INFO; the memory plan
at DEBUG); the command line shows it on stderr.
"""

import contextlib
import time
import warnings

import numpy as np

from . import runtime
from .auto import BUDGET_S as auto_budget, choose, report, searchable
from .data import select_rows
from .errors import JukeboxError, JukeboxWarning, MemoryBudgetError, count, format_size
from .io import format_recommendations, read_listens, read_user_ids
from ._precompile import start_precompiling
from .runtime import logger


class PhaseTimer:
    """Wall-clock seconds per named phase, in the order the phases ran."""

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def __call__(self, phase):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def __str__(self):
        return ", ".join(f"{name} {s:.2f}s" for name, s in self.seconds.items())


def recommend_for_file(interactions, model, user_ids, k, timer, layout="text", executor=None):
    """Recommendations for the users of ``user_ids`` (an IdMap), from a model fitted on ``interactions``, as bytes.

    ``layout`` is one of ``io.LAYOUTS`` (``text``: the problem's lines);
    ``executor`` as for ``Recommender.recommend``.
    """
    with timer("recommend"):
        rows = interactions.users.lookup(user_ids)  # -1: no plays
    n_cold = int((rows < 0).sum())
    if n_cold:
        logger.info(f"{n_cold:,} of {len(user_ids):,} users have no plays in the listening log; they get the most popular songs")
    n_songs = interactions.user_items.shape[1]
    if k > n_songs:
        warnings.warn(
            f"k={k} is more than the {n_songs:,} songs there are; each user gets every song they have not played",
            JukeboxWarning,
            stacklevel=2,
        )
        k = n_songs  # the (users, k) result arrays must not be sized by a typo such as -k 10000000000
    with timer("recommend"):
        recommended, scores = model.recommend(select_rows(interactions.user_items, rows), k=k, executor=executor)
    with timer("format"):
        return format_recommendations(user_ids, interactions.songs, recommended, scores, layout)


def _unknown_plays(n):
    """What is said of ``n`` plays of songs a model does not know: they were left out."""
    return f"{count(n, 'play')} of songs the model does not know {'was' if n == 1 else 'were'} left out"


def recommend_ids(model, interactions, users=None, plays=None, k=10, filter_seen=True):
    """Recommendations by external ids: ``[[(song_id, score), ...], ...]``, one list per user, best first.

    Give ``users`` (user ids of ``interactions``, the log the model was
    fit on: their own plays are used; an unknown user gets the most
    popular songs) or ``plays`` (one ``{song_id: count}`` mapping per user
    to answer: new users, or new plays of known ones; songs the model does
    not know are left out, with a JukeboxWarning that counts them).
    """

    if (users is None) == (plays is None):
        raise ValueError("give users (ids of the log the model was fit on) or plays ({song_id: count} per user), not both")
    if users is not None:
        rows = select_rows(interactions.user_items, interactions.users.lookup(list(users)))
    else:
        rows, unknown = interactions.rows_of(list(plays))
        if unknown:
            warnings.warn(_unknown_plays(unknown), JukeboxWarning, stacklevel=2)
    indices, scores = model.recommend(rows, k=k, filter_seen=filter_seen)
    songs = interactions.songs
    return [
        [(songs[int(i)], float(s)) for i, s in zip(row, row_scores) if i >= 0]
        for row, row_scores in zip(indices, scores)
    ]


def keep_most_played(interactions, max_songs):
    """``interactions`` with only its ``max_songs`` most played songs (None: all), saying what that left out."""
    n_songs = interactions.user_items.shape[1]
    if max_songs is None or max_songs >= n_songs:
        return interactions
    kept = interactions.most_played(max_songs)
    dropped = interactions.n_plays - kept.n_plays
    logger.info(
        f"--max-songs {max_songs:,}: kept the {max_songs:,} most played of {n_songs:,} songs; "
        f"{dropped:,} plays ({dropped / max(interactions.n_plays, 1):.1%}) of the others are left out"
    )
    return kept


def _planned_users(interactions, user_ids):
    """(users answered, their plays, distinct activity levels) as the memory plan takes them.

    The requested users are not looked up yet (that kernel loads later):
    they are taken to play as the log's users do on average, at any of its
    activity levels.
    """
    n_plays = np.diff(interactions.user_items.indptr)
    share = min(1.0, len(user_ids) / max(len(n_plays), 1))
    return len(user_ids), int(share * interactions.n_plays), np.unique(n_plays).size


def _plan_arguments(interactions, user_ids, k):
    from . import _parallel as parallel

    songs = interactions.songs
    id_bytes = songs.offsets[-1] / max(len(songs), 1)
    return (interactions.user_items, _planned_users(interactions, user_ids), min(k, len(songs)), id_bytes,
            parallel.get_num_threads())


def ensure_room(model, interactions, user_ids, k):
    """Refuse, before the fit, a run whose fit and recommendations would not fit in memory (``memory.ensure_room``).

    Returns the plan.
    """
    from . import memory

    budget = runtime.memory_budget()
    plan = memory.ensure_room(model, *_plan_arguments(interactions, user_ids, k), budget=budget)
    runtime.logger.debug(
        f"memory: {format_size(runtime.resident_memory())} in use; the fit adds {format_size(sum(plan.fit.values()))}, "
        f"the recommendations {format_size(sum(plan.recommend.values()))}; budget {budget}"
    )
    return plan


@contextlib.contextmanager
def out_of_memory_reported(doing, model, interactions, user_ids, k):
    """Within the block, a MemoryError becomes one ``OutOfMemoryError``: what was being done, what failed, what to do."""
    from . import memory

    try:
        yield
    except MemoryBudgetError:
        raise
    except MemoryError as error:
        raise memory.out_of_memory(error, doing, model, *_plan_arguments(interactions, user_ids, k)) from error


def run(listens_path, user_ids_path, model, k=100, max_songs=None, memory_limit=None, layout="text", fallback=None,
        executor=None, auto=False):
    """Read, fit, recommend: the text of ``python -m jukebox_fast run`` and its timer.

    ``max_songs`` keeps only that many of the most played songs, as inputs
    and as recommendations. ``memory_limit`` (bytes, or a size such as
    ``"16G"``) is the memory the run may use in all, instead of what the
    machine has free (``runtime.memory_limit``). ``layout`` is one of
    ``io.LAYOUTS``. ``fallback`` is a model to fit instead of ``model``
    when ``model`` does not fit in memory and it does (the command line
    gives the sparse model when no ``--model`` was chosen). ``executor``
    (a ``dask.distributed.Client`` or a ``concurrent.futures`` executor)
    runs the fit's and the scoring's blocks (``jukebox_fast.cluster``);
    the text is the same. ``auto`` chooses the model's regularization by
    validation inside the plays first (``jukebox_fast.auto``): True, or a
    time budget in seconds. With no user ids to answer, nothing is fitted
    and the text is empty.
    """
    with _memory_limit(memory_limit):
        timer = PhaseTimer()
        # On a first run, a second process compiles the kernels of the fit and after it while this
        # one reads; this one then takes its share of them (_precompile.py).
        compiling = start_precompiling()
        try:
            with timer("read"):
                interactions = read_listens(listens_path)
                user_ids = read_user_ids(user_ids_path)
            logger.info(
                f"read {count(interactions.n_plays, 'play')} of {count(len(interactions.users), 'user')} and "
                f"{count(len(interactions.songs), 'song')}; {count(len(user_ids), 'user')} to answer"
            )
            if len(user_ids) == 0:  # nothing to answer: no fit, which on a large log would take minutes
                warnings.warn(f"{user_ids_path}: no user ids; the output is empty and no model is fitted", JukeboxWarning,
                              stacklevel=2)
                compiling.abandon()
                nothing = np.empty((0, k), np.int32), np.empty((0, k), np.float32)
                return format_recommendations(user_ids, interactions.songs, *nothing, layout), timer
            interactions = keep_most_played(interactions, max_songs)
            model = _fit(model, interactions, user_ids, k, timer, compiling.before_fit, fallback, executor, auto)
        except BaseException:
            compiling.abandon()
            raise
        compiling.join()
        with runtime.planned(), out_of_memory_reported("recommending", model, interactions, user_ids, k):
            text = recommend_for_file(interactions, model, user_ids, k, timer, layout, executor)
        return text, timer


def train(listens_path, model_path, model, max_songs=None, memory_limit=None, fallback=None, executor=None, auto=False):
    """Read, fit, save: what ``python -m jukebox_fast train`` does; returns the timer.

    The model file holds the model, the plays and the id maps
    (``persist.save_model``), all that ``recommend_saved`` needs.
    ``fallback``, ``executor`` and ``auto`` as for ``run``.
    """
    from .persist import save_model

    with _memory_limit(memory_limit):
        timer = PhaseTimer()
        with timer("read"):
            interactions = read_listens(listens_path)
        logger.info(
            f"read {count(interactions.n_plays, 'play')} of {count(len(interactions.users), 'user')} and "
            f"{count(len(interactions.songs), 'song')}"
        )
        interactions = keep_most_played(interactions, max_songs)
        model = _fit(model, interactions, [], 0, timer, fallback=fallback, executor=executor, auto=auto)
        with timer("save"):
            save_model(model_path, model, interactions)
        logger.info(f"{model_path}: saved {model!r}")
        return timer


def recommend_saved(model_path, user_ids_path, k=100, memory_limit=None, plays_path=None, layout="text", executor=None):
    """Load a model file written by ``train`` and recommend for the users of ``user_ids_path``: (text, timer).

    The text is byte for byte that of ``run`` on the same log and model.
    With ``plays_path`` (a listening log), the users' plays are taken from
    it instead of from the model file: new users, or new plays of known
    ones (fold-in); plays of songs the model does not know are left out
    and counted. ``executor`` as for ``run``.
    """
    from .persist import load_model
    from ._precompile import load_in_background

    with _memory_limit(memory_limit):
        timer = PhaseTimer()
        load_in_background()
        with timer("load"):
            model, interactions = load_model(model_path)
        if interactions is None:
            raise JukeboxError(
                f"{model_path}: the model was saved without its plays and ids; recommending for user ids needs them "
                "(save it with them, as `train` does)"
            )
        with timer("read"):
            user_ids = read_user_ids(user_ids_path)
            if plays_path is not None:
                given, unknown = read_listens(plays_path).in_songs_of(interactions.songs)
        if len(user_ids) == 0:
            warnings.warn(f"{user_ids_path}: no user ids; the output is empty", JukeboxWarning, stacklevel=2)
        logger.info(
            f"{model_path}: {model!r} fit on {count(interactions.n_plays, 'play')}; {count(len(user_ids), 'user')} to answer"
        )
        if plays_path is not None:
            logger.info(
                f"{plays_path}: {count(given.n_plays, 'play')} of {count(len(given.users), 'user')}, "
                "the users' plays from now on" + (f"; {_unknown_plays(unknown)}" if unknown else "")
            )
            interactions = given
        with out_of_memory_reported("recommending with", model, interactions, user_ids, k):
            text = recommend_for_file(interactions, model, user_ids, k, timer, layout, executor)
        return text, timer


def similar_saved(model_path, song_ids, k=10, layout="text"):
    """The k songs most similar to each of ``song_ids`` (external ids), from a model file written by ``train``, as bytes.

    ``text`` is a line per song: its id, then the similar songs' ids, best
    first; ``tsv`` and ``jsonl`` as for recommendations, with scores.
    """
    from .data import IdMap
    from .persist import load_model

    model, interactions = load_model(model_path)
    if interactions is None:
        raise JukeboxError(f"{model_path}: the model was saved without its ids; similar songs by id need them")
    asked = list(dict.fromkeys(song_ids))
    columns = interactions.songs.lookup(asked)
    if (columns < 0).any():
        missing = asked[int(np.flatnonzero(columns < 0)[0])]
        raise JukeboxError(f"{model_path}: the model has no song {missing!r}")
    indices, scores = model.similar_items(columns, k=k)
    return format_recommendations(IdMap.from_tokens(asked), interactions.songs, indices, scores, layout)


def _fit(model, interactions, user_ids, k, timer, before=None, fallback=None, executor=None, auto=False):
    """Fit ``model`` on ``interactions`` once the memory plan admits the fit and the recommendations after it.

    When it does not fit and there is a ``fallback`` model that does, the
    fallback is fitted instead, with a JukeboxWarning; when neither fits,
    the refusal is ``model``'s. With ``auto`` (True, or a time budget in
    seconds), the regularization is chosen first (``auto.choose``).
    Returns the model fitted.
    """
    try:
        ensure_room(model, interactions, user_ids, k)
    except MemoryBudgetError as refusal:
        if fallback is None:
            raise
        try:
            ensure_room(fallback, interactions, user_ids, k)
        except MemoryBudgetError:
            raise refusal from None  # neither fits: the chosen model's refusal, with its --max-songs
        warnings.warn(
            f"{type(model).__name__} on {interactions.user_items.shape[1]:,} songs needs about "
            f"{format_size(refusal.needed)} but {format_size(refusal.available)} of memory is available; fitting "
            f"{type(fallback).__name__} ({fallback.summary}) instead; --model chooses, and --max-songs keeps the dense "
            "model on fewer songs",
            JukeboxWarning,
            stacklevel=3,
        )
        model = fallback
    if auto and searchable(model):
        budget = auto_budget if auto is True else float(auto)
        # The search's fits are smaller than the fit the plan admitted: no check of their own.
        with timer("auto"), runtime.planned(), out_of_memory_reported(
            "choosing the regularization of", model, interactions, user_ids, k
        ):
            if before is not None:
                before()
                before = None
            chosen, record = choose(model, interactions.user_items, budget_s=budget)
        logger.info(report(model, chosen, record))
        model = chosen
    with timer("fit"), runtime.planned(), out_of_memory_reported("fitting", model, interactions, user_ids, k):
        if before is not None:
            before()
        model.fit(interactions.user_items, executor=executor)
    logger.debug(f"memory: peak {format_size(runtime.peak_memory())} after the fit")
    return model


def _memory_limit(memory_limit):
    return runtime.memory_limit(memory_limit) if memory_limit is not None else contextlib.nullcontext()
