"""Command line: ``python -m jukebox_fast run|split|train|recommend|evaluate|tune ...``.

User mistakes (bad files, bad options) print one line on stderr and exit
with status 2; ``--debug`` shows the traceback instead. ``evaluate`` exits
with status 1 when the recommendations have format problems.
"""

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
import warnings

from .errors import JukeboxError, JukeboxWarning

PROG = "python -m jukebox_fast"


def program_name(argv0=None):
    """The name the user typed: ``jukebox-fast`` for the console script, else ``python -m jukebox_fast``."""
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    return PROG if name in ("", "__main__.py", "-c") else name

RUN_EXAMPLES = """examples:
  {prog} run listen_count.txt user_ids.txt > recs.txt
  {prog} run listen_count.txt user_ids.txt -k 50 -o recs.txt --model ease --regularization 200
  {prog} run --example          # a small synthetic log generated in code
"""


SPLIT_EXAMPLES = """examples:
  {prog} split listen_count.txt val/ --seed 0
  {prog} split listen_count.txt val/ --protocol per-user --ratio 0.9

Then train on val/listen_count.txt, recommend for val/user_ids.txt and
evaluate against val/test_data.txt, all in the problem's own formats.
"""

TRAIN_EXAMPLES = """examples:
  {prog} train val/listen_count.txt model.jbx
  {prog} train listen_count.txt model.jbx --regularization 200 --weighting log
"""

RECOMMEND_EXAMPLES = """examples:
  {prog} recommend model.jbx val/user_ids.txt 100 > recs.txt
  {prog} recommend listen_count.txt user_ids.txt -o recs.txt   # fit first, exactly as `run`
"""

EVALUATE_EXAMPLES = """examples:
  {prog} evaluate recs.txt val/test_data.txt
  {prog} evaluate recs.txt val/test_data.txt --train val/listen_count.txt --users val/user_ids.txt
  {prog} evaluate recs.txt val/test_data.txt --json -o scores.json

NDCG@100 is the problem's own: DCG over each recommendation line, divided by
the ideal DCG over ALL of the user's held-out songs; held-out users without a
line are not scored. Exit status 1 when format problems were found.
"""

TUNE_EXAMPLES = """examples:
  {prog} tune listen_count.txt
  {prog} tune listen_count.txt --grid regularization=50,100,200 --grid weighting=binary --plot ndcg.png
  {prog} tune listen_count.txt --grid model=ease --grid regularization=100 --seed 1 --json

default grid: model=ease, weighting=binary,log, regularization=30,100,300,1000
(8 fits; about a minute on the official data with 2 cores)
"""


def _number(convert, accept, wanted):
    """An argparse type: ``convert(text)``, refused with one line unless ``accept(value)``."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_seed = _number(int, lambda v: v >= 0, "a non-negative integer")
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")
_nonnegative_float = _number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
_unit_float = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
_ratio = _number(float, lambda v: 0 < v < 1, "a number between 0 and 1")


def _memory_size(text):
    from .runtime import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_common(parser):
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on stderr but errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the time of each phase on stderr")
    parser.add_argument("--threads", type=_positive_int, metavar="N", help="threads for the kernels and BLAS (default: all cores)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def _add_model_options(parser):
    from .data import WEIGHTINGS
    from .models import MODELS

    parser.add_argument(
        "--model", choices=sorted(MODELS), default="edlae",
        help="; ".join(f"{name}: {cls.summary}" for name, cls in sorted(MODELS.items())) + " (default: edlae)",
    )
    parser.add_argument(
        "--regularization", "--lambda", type=_positive_float, default=None, metavar="L",
        help="L2 penalty lambda: for ease and sgd absolute (default 100), for edlae a multiple of the "
        "mean diagonal of X^T X (default 4)",
    )
    parser.add_argument(
        "--dropout", type=_unit_float, default=None, metavar="P",
        help="edlae: emphasized-denoising dropout rate p in [0, 1) (default: 0.85)",
    )
    parser.add_argument(
        "--penalty-exponent", type=_nonnegative_float, default=None, metavar="E",
        help="edlae: the denoising penalty of a song grows as (its weighted plays)**E (default: 0.75; 1 is EDLAE as "
        "published)",
    )
    parser.add_argument(
        "--user-exponent", type=float, default=None, metavar="A",
        help="edlae: a user with n songs weighs n**-A in X^T X (default: 0.4; 0 weighs users equally)",
    )
    parser.add_argument(
        "--popularity-exponent", type=_nonnegative_float, default=None, metavar="B",
        help="edlae: scores are divided by (1 + plays of the song)**B (default: 0.2)",
    )
    parser.add_argument(
        "--target-weight", type=_nonnegative_float, default=None, metavar="T",
        help="edlae: learn to reproduce plays + T * log(count), so often played songs are stronger targets "
        "(default: 0; 0.1 gains about +0.0006 NDCG@100 for a sparse x dense product and a second n x n matrix)",
    )
    parser.add_argument(
        "--neighbour-weight", type=_nonnegative_float, default=None, metavar="W",
        help="edlae: each song's strongest links in B (its row's largest entries, normalised to sum to 1) are "
        "added back at W times B's mean entry (default: 0.03; 0 turns it off)",
    )
    parser.add_argument(
        "--neighbours", type=_positive_int, default=None, metavar="K",
        help="edlae: links kept per song for --neighbour-weight (default: 10)",
    )
    parser.add_argument(
        "--prior-weight", type=_nonnegative_float, default=None, metavar="C",
        help="edlae: every score gets C times the mean user's residual score added, a popularity prior that "
        "matters most for users with few plays (default: 1; 0 turns it off)",
    )
    parser.add_argument(
        "--activity-exponent", type=float, default=None, metavar="D",
        help="edlae: a user with n songs has scores divided by (1 + plays of the song)**(D log(n / mean n)), "
        "so heavy listeners get fewer popular songs (default: 0.05; 0 debiases everyone alike)",
    )
    parser.add_argument(
        "--weighting", choices=WEIGHTINGS, default="binary",
        help="a play count becomes 1 (binary, default), 1 + log(1 + count) (log), or the count",
    )
    sgd = parser.add_argument_group("sgd model (--model sgd)")
    sgd.add_argument("--epochs", type=_positive_int, default=10, help="passes over the users (default: 10)")
    sgd.add_argument("--batch-size", type=_positive_int, default=2048, metavar="B", help="users per step (default: 2048)")
    sgd.add_argument("--learning-rate", type=_positive_float, default=1e-2, metavar="LR", help="Adam's initial step size (default: 0.01)")
    sgd.add_argument("--seed", type=int, default=0, help="seed of the user shuffling (default: 0)")
    sgd.add_argument(
        "--backend", choices=("numba", "jax", "cupy", "numpy"), default="numba",
        help="numba: CPU kernels (default); jax: jitted step; cupy: CUDA GPU; numpy: slow reference",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr like every other user error (status 2)."""

    def error(self, message):
        self.exit(2, f"jukebox_fast: error: {message} (see {self.prog} --help)\n")


def build_parser(prog=PROG):
    from . import __version__

    parser = _Parser(prog=prog, description="Fast implicit-feedback music recommendation: play counts in, "
                     "the songs each user will most likely play next out.")
    parser.add_argument("--version", action="version", version=f"jukebox_fast {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run", help="read plays, fit, and recommend unplayed songs for each listed user",
        description="Read LISTEN_COUNT ('<user_id> <song_id> <count>' lines), fit a model (EDLAE by default), and print one line "
        "per user of USER_IDS: the user id, then K songs the user has not played, best first.",
        epilog=RUN_EXAMPLES.format(prog=prog), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("listen_count", nargs="?", help="the listening log")
    run.add_argument("user_ids", nargs="?", help="the users to recommend for, one a line")
    run.add_argument("--example", action="store_true", help="run on a small synthetic log generated in code")
    run.add_argument("-k", type=_positive_int, default=100, help="songs per user (default: 100)")
    run.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")
    _add_max_songs(run)
    _add_model_options(run)
    _add_common(run)
    run.set_defaults(handler=_run)

    split = _add_command(commands, "split", "hold out part of a listening log, in the problem's own formats",
        "Split LISTEN_COUNT into OUT_DIR/listen_count.txt (train plays), OUT_DIR/test_data.txt (held-out truth, "
        "'<user_id> <song_id> ...') and OUT_DIR/user_ids.txt (the held-out users). The same seed gives the "
        "same files as shared/tools/make_split.py.", SPLIT_EXAMPLES.format(prog=prog))
    split.add_argument("listen_count", help="the listening log")
    split.add_argument("out_dir", help="directory for the three files (created if missing)")
    _add_split_options(split)
    _add_common(split)
    split.set_defaults(handler=_split)

    train = _add_command(commands, "train", "fit a model and save it in one file",
        "Read LISTEN_COUNT, fit the model and save it, with the plays and the id maps it needs, in one "
        "checksummed file MODEL (written atomically) for `recommend`.", TRAIN_EXAMPLES.format(prog=prog))
    train.add_argument("listen_count", help="the listening log")
    train.add_argument("model_file", metavar="MODEL", help="the model file to write")
    _add_max_songs(train)
    _add_model_options(train)
    _add_common(train)
    train.set_defaults(handler=_train)

    recommend = _add_command(commands, "recommend", "recommend from a saved model (or a listening log)",
        "Print one line per user of USER_IDS: the user id, then K songs the user has not played, best first. "
        "MODEL_OR_LISTEN_COUNT is a file written by `train`, or a listening log to fit first (the model "
        "options apply only then); the output is byte for byte that of `run`.", RECOMMEND_EXAMPLES.format(prog=prog))
    recommend.add_argument("source", metavar="MODEL_OR_LISTEN_COUNT", help="a model file or a listening log")
    recommend.add_argument("user_ids", help="the users to recommend for, one a line")
    recommend.add_argument("k", nargs="?", type=_positive_int, metavar="K", help="songs per user (default: 100)")
    recommend.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")
    _add_max_songs(recommend)
    _add_model_options(recommend)
    _add_common(recommend)
    recommend.set_defaults(handler=_recommend)

    evaluate = _add_command(commands, "evaluate", "score recommendations against held-out plays (NDCG@100, recall, hit rate)",
        "Score RECS ('<user_id> <song_id> ...' lines) against TEST_DATA (the held-out truth, same format): "
        "NDCG@100, recall@K and hit rate@K, overall and by quartile of user activity.", EVALUATE_EXAMPLES.format(prog=prog))
    evaluate.add_argument("recs", metavar="RECS", help="the recommendations")
    evaluate.add_argument("test_data", metavar="TEST_DATA", help="the held-out truth")
    evaluate.add_argument("--train", metavar="LISTEN_COUNT",
        help="the train plays: check for played or unknown songs and line lengths, and group users by plays")
    evaluate.add_argument("--users", metavar="USER_IDS", help="check that every user listed here has a line")
    evaluate.add_argument("-k", type=_positive_int, default=100, help="cut-off of recall and hit rate, expected line length (default: 100)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")
    _add_common(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    tune = _add_command(commands, "tune", "fit a grid of settings on a held-out split, ranked by NDCG@100",
        "Split LISTEN_COUNT as `split` does, fit every setting of the grid on the train part, recommend for the "
        "held-out users and print a table sorted by NDCG@100, with fit times.", TUNE_EXAMPLES.format(prog=prog))
    tune.add_argument("listen_count", help="the listening log")
    tune.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
        help="values of one model option (model, regularization, weighting, ...); repeat for more keys; "
        "keys not given keep the default grid's values, or the option's default")
    _add_split_options(tune)
    tune.add_argument("-k", type=_positive_int, default=100, help="songs per held-out user (default: 100)")
    tune.add_argument("--plot", metavar="PNG", help="draw NDCG@100 against the regularization here (needs jukebox_fast[plot])")
    tune.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tune.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")
    _add_common(tune)
    tune.set_defaults(handler=_tune)
    return parser


def _add_command(commands, name, summary, description, examples):
    return commands.add_parser(
        name, help=summary, description=description, epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def _add_max_songs(parser):
    parser.add_argument(
        "--max-songs", type=_positive_int, metavar="N",
        help="keep only the N most played songs (by listeners) as inputs and as recommendations; for a catalogue "
        "whose songs x songs matrix does not fit in memory (stderr says how many plays that leaves out)",
    )
    parser.add_argument(
        "--memory-limit", type=_memory_size, metavar="SIZE",
        help="the memory the run may use in all, e.g. 16G or 512M (default: what the machine has free, less a "
        "reserve); a run that does not fit is refused before the fit, with the --max-songs that fits",
    )


def _add_split_options(parser):
    from .split import PROTOCOLS

    parser.add_argument("--seed", type=_seed, default=0, help="seed of the random split (default: 0)")
    parser.add_argument("--ratio", type=_ratio, default=0.8, help="share of plays kept for training (default: 0.8)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="random",
        help="random: shuffle all plays (default, the problem's own); per-user: hold out a share of each user's plays")


class _StderrHandler(logging.Handler):
    """The ``jukebox_fast`` logger's lines (progress of long phases) on stderr, as the command's other lines."""

    def emit(self, record):
        print(f"jukebox_fast: {record.getMessage()}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _progress_on_stderr(quiet, verbose=False):
    from .runtime import logger

    if quiet:
        yield
        return
    handler, saved = _StderrHandler(), (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


class _Log:
    def __init__(self, quiet):
        self.quiet = quiet

    def __call__(self, message):
        if not self.quiet:
            print(f"jukebox_fast: {message}", file=sys.stderr, flush=True)


def _run(args, log):
    from .io import check_output, write_output
    from .models import make_model
    from .pipeline import run

    if args.example == bool(args.listen_count):
        raise JukeboxError("give LISTEN_COUNT and USER_IDS, or --example")
    if args.listen_count and not args.user_ids:
        raise JukeboxError("missing USER_IDS: the file of users to recommend for")
    check_output(args.output)  # before the fit, not after it
    model = make_model(args)
    with tempfile.TemporaryDirectory(prefix="jukebox_example_") as tmp:
        listens, user_ids = args.listen_count, args.user_ids
        if args.example:
            listens, user_ids = _write_example(tmp, log)
        text, timer = run(listens, user_ids, model, k=args.k, log=log, max_songs=args.max_songs)
    write_output(args.output, text)
    if args.verbose:
        log(f"phases: {timer}")


def _split(args, log):
    from .split import split_file

    counts = split_file(args.listen_count, args.out_dir, seed=args.seed, ratio=args.ratio, protocol=args.protocol)
    log(
        f"{args.out_dir}: {counts['train_plays']:,} train plays, {counts['held_out_plays']:,} held out of "
        f"{counts['users']:,} users ({counts['cold_users']:,} of them without train plays)"
    )


def _train(args, log):
    from .io import read_listens
    from .models import make_model
    from .persist import save_model
    from .pipeline import PhaseTimer, ensure_room, keep_most_played, out_of_memory_reported

    model = make_model(args)
    timer = PhaseTimer()
    with timer("read"):
        interactions = read_listens(args.listen_count)
    log(f"read {interactions.n_plays:,} plays of {len(interactions.users):,} users and {len(interactions.songs):,} songs")
    interactions = keep_most_played(interactions, args.max_songs, log)
    from .runtime import planned

    plan = ensure_room(model, interactions, [], 0)
    with timer("fit"), planned(plan is not None), out_of_memory_reported("fitting", model, interactions, [], 0):
        model.fit(interactions.user_items)
    with timer("save"):
        save_model(args.model_file, model, interactions)
    log(f"{args.model_file}: saved {model!r}")
    if args.verbose:
        log(f"phases: {timer}")


def _recommend(args, log):
    from .io import read_user_ids, write_output
    from .models import make_model
    from .persist import is_model_file, load_model
    from .pipeline import PhaseTimer, out_of_memory_reported, recommend_for_file, run

    k = 100 if args.k is None else args.k
    if not is_model_file(args.source):
        text, timer = run(args.source, args.user_ids, make_model(args), k=k, log=log, max_songs=args.max_songs)
    else:
        from .precompile import load_in_background

        if args.max_songs is not None:
            raise JukeboxError(f"{args.source}: --max-songs applies when fitting a listening log; a model file keeps its songs")
        timer = PhaseTimer()
        load_in_background()
        with timer("load"):
            model, interactions = load_model(args.source)
        with timer("read"):
            user_ids = read_user_ids(args.user_ids)
        if len(user_ids) == 0:
            warnings.warn(f"{args.user_ids}: no user ids; the output is empty", JukeboxWarning, stacklevel=2)
        log(f"{args.source}: {model!r} fit on {interactions.n_plays:,} plays; {len(user_ids):,} users to answer")
        with out_of_memory_reported("recommending with", model, interactions, user_ids, k):
            text = recommend_for_file(interactions, model, user_ids, k, timer, log)
    write_output(args.output, text)
    if args.verbose:
        log(f"phases: {timer}")


def _evaluate(args, log):
    import json

    from .evaluation import evaluate_files, format_report
    from .io import write_output

    result = evaluate_files(args.recs, args.test_data, train_path=args.train, user_ids_path=args.users, k=args.k)
    if args.json:
        text = json.dumps(dict(result, recs=args.recs, test_data=args.test_data), indent=2, allow_nan=True) + "\n"
    else:
        text = format_report(result)
    write_output(args.output, text.encode("utf-8"))
    if result["problems"]:
        log(f"{args.recs}: {len(result['problems'])} kinds of format problems (listed in the report)")
        return 1
    return 0


class _OptionParser(argparse.ArgumentParser):
    """Parses one grid setting as model options; a bad value is a user error, not an exit."""

    def error(self, message):
        raise JukeboxError(f"--grid: {message}")


def _tune_settings(specs):
    """The grid of ``--grid KEY=V1,V2`` options as (label, model) pairs, duplicates dropped."""
    from .models import make_model
    from .tune import DEFAULT_GRID, expand_grid

    options = _OptionParser(prog=f"{PROG} tune", add_help=False)
    _add_model_options(options)
    known = list(vars(options.parse_args([])))
    grid = dict(DEFAULT_GRID)
    given = {}
    for spec in specs or []:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        values = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not values:
            raise JukeboxError(f"--grid: expected KEY=V1,V2,..., got {spec!r}")
        if key not in known:
            raise JukeboxError(f"--grid: unknown key {key!r}; the keys are {', '.join(known)}")
        given[key] = list(dict.fromkeys(given.get(key, []) + values))
    grid.update(given)
    settings, seen = [], set()
    for label in expand_grid(grid):
        argv = [token for key, value in label.items() for token in (f"--{key.replace('_', '-')}", value)]
        model = make_model(options.parse_args(argv))
        if repr(model) not in seen:
            seen.add(repr(model))
            settings.append((label, model))
    return list(grid), settings


def _tune(args, log):
    import json

    from .io import write_output
    from .tune import Progress, format_table, plot_png, require_matplotlib, tune

    keys, settings = _tune_settings(args.grid)
    if args.plot:
        require_matplotlib()
        if "regularization" not in keys:
            raise JukeboxError("--plot draws NDCG@100 against the regularization, which this grid does not set")
    progress = Progress(len(settings), quiet=args.quiet)
    results = tune(args.listen_count, settings, seed=args.seed, ratio=args.ratio, protocol=args.protocol,
                   k=args.k, progress=progress, log=log)
    if args.json:
        text = json.dumps({"seed": args.seed, "ratio": args.ratio, "protocol": args.protocol, "k": args.k,
                           "results": results}, indent=2) + "\n"
    else:
        text = format_table(results, keys, k=args.k)
    write_output(args.output, text.encode("utf-8"))
    if args.plot:
        write_output(args.plot, plot_png(results, keys))
        log(f"{args.plot}: NDCG@100 against the regularization")


def _write_example(directory, log):
    from .example import generate_listens

    listens, users = generate_listens()
    paths = os.path.join(directory, "listen_count.txt"), os.path.join(directory, "user_ids.txt")
    for path, payload in zip(paths, (listens, users)):
        with open(path, "wb") as f:
            f.write(payload)
    n_plays = listens.count(b"\n")
    log(f"example: a synthetic log of {n_plays:,} plays (jukebox_fast.example.generate_listens)")
    return paths


def main(argv=None):
    """Run the command line; returns the exit status. ``argv`` items may be paths."""
    parser = build_parser(program_name() if argv is None else PROG)
    args = parser.parse_args(None if argv is None else [os.fspath(a) for a in argv])
    log = _Log(args.quiet)
    start = time.perf_counter()

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if not args.quiet:
            print(f"jukebox_fast: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        try:
            from .runtime import limit_threads, memory_limit

            with limit_threads(args.threads), memory_limit(getattr(args, "memory_limit", None)), \
                    _progress_on_stderr(args.quiet, args.verbose):
                status = args.handler(args, log) or 0
        except JukeboxError as e:
            if args.debug:
                raise
            print(f"jukebox_fast: error: {e}", file=sys.stderr)
            return 2
        except MemoryError as e:  # the plan's refusal and a failed fit or scoring are JukeboxErrors above
            if args.debug:
                raise
            from .runtime import memory_budget

            detail = f" ({e})" if str(e) else ""
            print(f"jukebox_fast: error: out of memory{detail}; the memory budget is {memory_budget()}; use a smaller "
                  "input, or a machine with more memory", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("jukebox_fast: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # The reader went away (e.g. `| head`); say nothing, like other Unix tools.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 141
    if args.verbose:
        from .errors import format_size
        from .runtime import peak_memory

        log(f"total {time.perf_counter() - start:.2f}s, peak memory {format_size(peak_memory())}")
    return status
