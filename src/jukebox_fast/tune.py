"""Grid search: split once, fit every setting, score each by the problem's NDCG@100."""

import itertools
import os
import tempfile
import time
import typing

import numpy as np
import scipy.sparse as sp

from .errors import BackendUnavailableError, JukeboxError
from .runtime import logger


def expand_grid(grid):
    """Every combination of a grid ``{key: [value, ...]}``, as a list of ``{key: value}``, last key fastest."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[key] for key in keys))]


def grid_settings(given=None):
    """The settings a grid describes: ``(keys, settings)``, each setting ``{"model": name, parameter: value, ...}``.

    ``given`` maps ``model`` and parameter names to lists of values (text,
    as typed, or values). For each model (default: the default model),
    the parameters not given take the values of the model's own
    ``default_grid``; the others keep their defaults. Settings that make
    the same model are kept once. A bad key or value raises JukeboxError.
    """
    from .models import DEFAULT_MODEL, MODELS, make_model

    given = dict(given or {})
    names = [str(name) for name in given.pop("model", [DEFAULT_MODEL])]
    for name in names:
        if name not in MODELS:
            raise JukeboxError(f"--grid: unknown model {name!r}; the models are {', '.join(MODELS)}")
    for key in given:
        if not any(key in MODELS[name].parameters() for name in names):
            known = sorted({p for name in names for p in MODELS[name].parameters()})
            raise JukeboxError(f"--grid: {key!r} is not a parameter of {', '.join(names)}; the keys are model, {', '.join(known)}")
    keys, settings, seen = ["model"], [], set()
    for name in names:
        cls = MODELS[name]
        types = cls.parameter_types()
        grid = {key: list(values) for key, values in cls.default_grid.items() if key not in given}
        grid.update({key: [_convert(key, value, types[key]) for value in values] for key, values in given.items() if key in types})
        keys += [key for key in grid if key not in keys]
        for params in expand_grid(grid):
            try:
                model = make_model(name, **params)
            except ValueError as e:
                raise JukeboxError(f"--grid: {name}: {e}") from None
            if repr(model) not in seen:
                seen.add(repr(model))
                settings.append(dict(model=name, **params))
    return keys, settings


def _convert(key, value, annotation):
    """A grid value typed as the parameter's annotation says (text from the command line, or a value)."""
    if not isinstance(value, str):
        return value
    if typing.get_origin(annotation) is typing.Literal:
        return value
    try:
        return int(value) if annotation is int else float(value) if annotation is float else value
    except ValueError:
        wanted = "an integer" if annotation is int else "a number"
        raise JukeboxError(f"--grid: {key} takes {wanted}, got {value!r}") from None


def load_split(directory):
    """The train plays, the held-out users' rows and their held-out songs of a split written by ``split_file``.

    Returns (train Interactions, user_ids IdMap, rows into train (-1: no
    train plays), held_out CSR over the train songs plus one column per
    held-out song train never saw).
    """
    from .evaluation import read_song_lists
    from .io import read_listens, read_user_ids

    train = read_listens(os.path.join(directory, "listen_count.txt"))
    user_ids = read_user_ids(os.path.join(directory, "user_ids.txt"))
    users, lists, _ = read_song_lists(os.path.join(directory, "test_data.txt"))
    rows = train.users.lookup(user_ids)
    n_songs = len(train.songs)
    tokens = sorted({s for songs in lists for s in songs})
    cols = train.songs.lookup(tokens) if tokens else np.empty(0, np.int64)
    unknown = cols < 0
    cols[unknown] = n_songs + np.arange(int(unknown.sum()))
    col_of = dict(zip(tokens, cols.tolist()))
    indptr = np.zeros(len(users) + 1, np.int64)
    held_cols = []
    for r, songs in enumerate(lists):
        held_cols.extend(sorted({col_of[s] for s in songs}))
        indptr[r + 1] = len(held_cols)
    held_out = sp.csr_array(
        (np.ones(len(held_cols)), np.asarray(held_cols, np.int64), indptr), shape=(len(users), n_songs + int(unknown.sum()))
    )
    return train, user_ids, rows, held_out


def tune(listens_path, settings, seed=0, ratio=0.8, protocol="random", k=100, progress=None):
    """Fit every setting on one split of a listening log and score it.

    Parameters
    ----------
    listens_path : str
        The listening log; it is split as ``split_file`` would, with the same seed.
    settings : list of dict
        ``{"model": name, parameter: value, ...}`` per setting (``grid_settings`` makes them).
    k : int
        Songs recommended per held-out user.
    progress : callable, optional
        Called as ``progress(done, total, message)`` after each setting;
        the same line goes to the ``jukebox_fast`` logger.

    Returns
    -------
    list of dict
        Per setting: its keys, ``ndcg``, ``recall``, ``hit_rate``,
        ``fit_s``, ``recommend_s``; best NDCG first.
    """
    from .data import select_rows
    from .evaluation import evaluate_lists
    from .models import make_model
    from .split import split_file

    with tempfile.TemporaryDirectory(prefix="jukebox_tune_") as directory:
        counts = split_file(listens_path, directory, seed=seed, ratio=ratio, protocol=protocol)
        train, user_ids, rows, held_out = load_split(directory)
    logger.info(
        f"split (seed {seed}, {protocol}, ratio {ratio:g}): {counts['train_plays']:,} train plays, "
        f"{counts['held_out_plays']:,} held out of {counts['users']:,} users; {len(settings)} settings to fit"
    )
    user_items = select_rows(train.user_items, rows)
    activity = np.diff(user_items.indptr)
    results = []
    for count, setting in enumerate(settings, 1):
        params = dict(setting)
        model = make_model(params.pop("model"), **params)
        start = time.perf_counter()
        model.fit(train.user_items)
        fitted = time.perf_counter()
        recommended, _ = model.recommend(user_items, k=k)
        done = time.perf_counter()
        # The problem's evaluator skips users whose line is empty (they played every song).
        answered = (recommended >= 0).any(axis=1)
        scores = evaluate_lists(recommended[answered], held_out[answered], k=k, activity=activity[answered])
        results.append(dict(setting, ndcg=scores["ndcg"], recall=scores["recall"], hit_rate=scores["hit_rate"],
                            fit_s=fitted - start, recommend_s=done - fitted))
        message = f"[{count}/{len(settings)}] {model!r}: NDCG@100 {scores['ndcg']:.4f}, fit {fitted - start:.1f}s"
        logger.info(message)
        if progress is not None:
            progress(count, len(settings), message)
    results.sort(key=lambda r: -r["ndcg"])
    return results


def format_table(results, keys, k=100):
    """The ranking ``tune`` prints: one row per setting, best NDCG@100 first."""
    cells = [{key: _cell(r.get(key, "-")) for key in keys} for r in results]
    widths = {key: max(len(key), *(len(c[key]) for c in cells)) for key in keys}
    head = f"{'rank':>4}  " + "  ".join(f"{key:<{widths[key]}}" for key in keys)
    head += f"  {'NDCG@100':>8}  {f'recall@{k}':>10}  {f'hit@{k}':>8}  {'fit s':>6}  {'rec s':>6}"
    lines = [head]
    for rank, (r, c) in enumerate(zip(results, cells), 1):
        row = f"{rank:>4}  " + "  ".join(f"{c[key]:<{widths[key]}}" for key in keys)
        row += f"  {r['ndcg']:>8.4f}  {r['recall']:>10.4f}  {r['hit_rate']:>8.4f}  {r['fit_s']:>6.2f}  {r['recommend_s']:>6.2f}"
        lines.append(row)
    return "\n".join(lines) + "\n"


def _cell(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def require_matplotlib():
    """Fail early, with the install hint, when the optional plotting extra is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BackendUnavailableError("plotting (matplotlib)", "pip install 'jukebox_fast[plot]'") from None


def plot_png(results, keys, x_key="regularization"):
    """PNG bytes of NDCG@100 against ``x_key`` (log scale), one line per setting of the other keys."""
    require_matplotlib()
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    others = [key for key in keys if key != x_key]
    lines = {}
    for r in results:
        if x_key in r:
            lines.setdefault(tuple(_cell(r.get(key, "-")) for key in others), []).append((float(r[x_key]), r["ndcg"]))
    figure = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, points in sorted(lines.items()):
        xs, ys = zip(*sorted(points))
        label = ", ".join(f"{key}={value}" for key, value in zip(others, name)) or None
        axes.plot(xs, ys, marker="o", label=label)
    axes.set_xscale("log")
    axes.set_xlabel(x_key)
    axes.set_ylabel("NDCG@100 (held out)")
    axes.grid(True, alpha=0.3)
    if others:
        axes.legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
