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
import typing
import warnings

from .errors import JukeboxError
from .runtime import logger

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

SIMILAR_EXAMPLES = """examples:
  {prog} similar model.jbx SOAAAGQ12A8C1420C8 SOAACPJ12A81C21360 -k 20
  {prog} similar model.jbx 201 --format jsonl
"""

INFO_EXAMPLES = """examples:
  {prog} info model.jbx
  {prog} info model.jbx --json
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
  {prog} tune listen_count.txt --grid model=ease --grid regularization=50,100,200 --plot ndcg.png
  {prog} tune listen_count.txt --grid model=ease,edlae --grid weighting=binary,log --seed 1 --json

Each model has a default grid around its defaults, used for the keys not
given: {grids}.
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
_ratio = _number(float, lambda v: 0 < v < 1, "a number between 0 and 1")


def _memory_size(text):
    from .runtime import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_cluster(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=_positive_int, metavar="N",
        help="run the sparse model's fit and the scoring on a local Dask cluster of N processes "
        "(needs jukebox_fast[distributed]); the output is the same bytes")
    group.add_argument("--scheduler", metavar="ADDRESS",
        help="run them on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://10.0.0.1:8786)")


def _add_common(parser):
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on stderr but errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the time of each phase on stderr")
    parser.add_argument("--threads", type=_positive_int, metavar="N", help="threads for the kernels and BLAS (default: all cores)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


# Other spellings of model parameters on the command line.
_ALIASES = {"regularization": ["--lambda"]}
# Model parameters the command line sets otherwise: num_threads is --threads, for every phase of a command.
_NOT_OPTIONS = {"num_threads"}

_integer = _number(int, lambda v: True, "an integer")
_real = _number(float, lambda v: True, "a number")


def _model_options():
    """``{parameter: [(model name, default, annotation, description), ...]}`` over every registered model."""
    from .models import MODELS

    options = {}
    for model, cls in MODELS.items():
        types, docs = cls.parameter_types(), cls.parameter_docs()
        for name, parameter in cls.parameters().items():
            if name in _NOT_OPTIONS:
                continue
            options.setdefault(name, []).append((model, parameter.default, types[name], docs.get(name, "")))
    return options


def _option_kind(annotation):
    """argparse's ``type`` or ``choices`` for a parameter's annotation; the model checks the range."""
    if typing.get_origin(annotation) is typing.Literal:
        return {"choices": typing.get_args(annotation)}
    if annotation is int:
        return {"type": _integer, "metavar": "N"}
    if annotation is float:
        return {"type": _real, "metavar": "X"}
    return {"type": str}


def _show_default(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _add_model_options(parser):
    """``--model`` and one option per model parameter, each read from the models' signatures and docstrings."""
    from .models import DEFAULT_MODEL, MODELS

    parser.add_argument(
        "--model", choices=list(MODELS), metavar="{" + ",".join(MODELS) + "}",
        help="; ".join(f"{name}: {cls.summary}" for name, cls in MODELS.items()) + f" (default: {DEFAULT_MODEL})",
    )
    group = parser.add_argument_group(
        "model options", "Each applies to the models it names; left out, the model's own default holds."
    )
    for name, entries in _model_options().items():
        described = {}
        for model, default, _, doc in entries:
            doc = doc.replace("``", "").rstrip(".")
            described.setdefault((doc, _show_default(default)), []).append(model)
        text = "; ".join(f"{', '.join(models)}: {doc} (default: {default})" for (doc, default), models in described.items())
        group.add_argument(
            f"--{name.replace('_', '-')}", *_ALIASES.get(name, []), dest=name, default=None,
            help=text.replace("%", "%%"), **_option_kind(entries[0][2]),
        )


def _add_auto(parser):
    parser.add_argument(
        "--auto", action=argparse.BooleanOptionalAction, default=None,
        help="choose the regularization for this log first: fit a few on 80%% of its plays and keep the one "
        "that ranks the other 20%% best, then (edlae, logs of up to 100,000 users) the weight of similar users' "
        "votes where they help, in at most a minute (default: on, unless --regularization or "
        "--user-neighbour-weight is given; -v shows the search)",
    )


def _auto(args):
    """Whether to choose the regularization first: ``--auto``/``--no-auto``, else when neither it nor the votes' weight was given."""
    from .models import DEFAULT_MODEL, MODELS

    name = args.model or DEFAULT_MODEL
    if args.auto and not MODELS[name].auto_search:
        searched = ", ".join(model for model, cls in MODELS.items() if cls.auto_search)
        raise JukeboxError(f"--auto chooses the regularization of --model {searched}, not of --model {name}")
    chosen_by_search = {"regularization", "user_neighbour_weight"}
    return args.auto if args.auto is not None else not chosen_by_search & set(_model_parameters(args))


def _model_parameters(args):
    """The model parameters given on the command line, ``{name: value}`` (the ones left out are not there)."""
    return {name: getattr(args, name) for name in _model_options() if getattr(args, name, None) is not None}


def _fallback(args):
    """The model to fit when no ``--model`` was chosen and the default does not fit in memory (None: none).

    It takes the model options given that apply to it; when one does not, there is none.
    """
    from .models import LARGE_CATALOGUE_MODEL, MODELS, make_model

    if args.model is not None:
        return None
    params = _model_parameters(args)
    if any(name not in MODELS[LARGE_CATALOGUE_MODEL].parameters() for name in params):
        return None
    return make_model(LARGE_CATALOGUE_MODEL, **params)


def _make_model(args):
    """The model that ``--model`` and the model options describe; a bad value is one line (JukeboxError)."""
    from .models import DEFAULT_MODEL, MODELS, make_model

    name = args.model or DEFAULT_MODEL
    params = _model_parameters(args)
    for param in params:
        if param not in MODELS[name].parameters():
            owners = ", ".join(model for model, cls in MODELS.items() if param in cls.parameters())
            raise JukeboxError(f"--{param.replace('_', '-')} is an option of --model {owners}, not of --model {name}")
    try:
        return make_model(name, **params)
    except ValueError as e:
        raise JukeboxError(f"--model {name}: {e}") from None


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
    run.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout ('-': stdout)")
    _add_format(run)
    _add_max_songs(run)
    _add_model_options(run)
    _add_auto(run)
    _add_cluster(run)
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
    _add_auto(train)
    _add_cluster(train)
    _add_common(train)
    train.set_defaults(handler=_train)

    recommend = _add_command(commands, "recommend", "recommend from a saved model (or a listening log)",
        "Print one line per user of USER_IDS: the user id, then K songs the user has not played, best first. "
        "MODEL_OR_LISTEN_COUNT is a file written by `train`, or a listening log to fit first (the model "
        "options apply only then); the output is byte for byte that of `run`.", RECOMMEND_EXAMPLES.format(prog=prog))
    recommend.add_argument("source", metavar="MODEL_OR_LISTEN_COUNT", help="a model file or a listening log")
    recommend.add_argument("user_ids", help="the users to recommend for, one a line")
    recommend.add_argument("k", nargs="?", type=_positive_int, metavar="K", help="songs per user (default: 100; or -k)")
    recommend.add_argument("-k", dest="k_option", type=_positive_int, metavar="K", help="songs per user, as in run")
    recommend.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout ('-': stdout)")
    recommend.add_argument(
        "--plays", metavar="LISTEN_COUNT",
        help="with a model file: take the users' plays from this listening log instead of the model's (new users, or "
        "new plays of known ones); plays of songs the model does not know are left out and counted on stderr",
    )
    _add_format(recommend)
    _add_max_songs(recommend)
    _add_model_options(recommend)
    _add_auto(recommend)
    _add_cluster(recommend)
    _add_common(recommend)
    recommend.set_defaults(handler=_recommend)

    similar = _add_command(commands, "similar", "the songs most similar to given songs, from a saved model",
        "Print, for each SONG_ID, a line: the song id, then the K songs most similar to it in the model (the "
        "row of its matrix B: what playing the song adds to the others' scores), best first.",
        SIMILAR_EXAMPLES.format(prog=prog))
    similar.add_argument("model_file", metavar="MODEL", help="a model file written by `train`")
    similar.add_argument("song_ids", metavar="SONG_ID", nargs="+", help="songs of the model")
    similar.add_argument("-k", type=_positive_int, default=10, help="similar songs per song (default: 10)")
    similar.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout ('-': stdout)")
    _add_format(similar)
    _add_common(similar)
    similar.set_defaults(handler=_similar)

    info = _add_command(commands, "info", "what a model file holds",
        "Print what MODEL holds, from its header: format version, model and parameters, songs, users, plays, file "
        "size and when it was written.", INFO_EXAMPLES.format(prog=prog))
    info.add_argument("model_file", metavar="MODEL", help="a model file written by `train`")
    info.add_argument("--json", action="store_true", help="print JSON instead of lines")
    _add_common(info)
    info.set_defaults(handler=_info)

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
        "held-out users and print a table sorted by NDCG@100, with fit times.",
        TUNE_EXAMPLES.format(prog=prog, grids=_default_grids()))
    tune.add_argument("listen_count", help="the listening log")
    tune.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
        help="values of model, or of one model parameter (regularization, weighting, ...); repeat for more keys; "
        "keys not given keep the model's default grid, or the parameter's default (default model: edlae)")
    _add_split_options(tune)
    tune.add_argument("-k", type=_positive_int, default=100, help="songs per held-out user (default: 100)")
    tune.add_argument("--plot", metavar="PNG", help="draw NDCG@100 against the regularization here (needs jukebox_fast[plot])")
    tune.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tune.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")
    _add_common(tune)
    tune.set_defaults(handler=_tune)
    return parser


def _default_grids():
    from .models import MODELS

    grids = []
    for name, cls in MODELS.items():
        keys = ", ".join(f"{key}={','.join(_show_default(v) for v in values)}" for key, values in cls.default_grid.items())
        grids.append(f"{name}: {keys or 'its one setting'}")
    return "; ".join(grids)


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


def _add_format(parser):
    from .io import LAYOUTS

    parser.add_argument(
        "--format", choices=LAYOUTS, default="text", dest="layout",
        help="text: a line per user, the user id then the song ids (default, the problem's own); tsv: a line per "
        "song, 'user<TAB>song<TAB>rank<TAB>score'; jsonl: a JSON object per user with its songs and scores",
    )


def _stdin(*paths):
    """The paths, of which one at most may be '-' (standard input)."""
    if sum(p == "-" for p in paths) > 1:
        raise JukeboxError("only one input can be '-' (standard input)")
    return paths


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


def _run(args):
    from .cluster import session
    from .io import check_output, write_output
    from .pipeline import run

    if args.example == bool(args.listen_count):
        raise JukeboxError("give LISTEN_COUNT and USER_IDS, or --example")
    if args.listen_count and not args.user_ids:
        raise JukeboxError("missing USER_IDS: the file of users to recommend for")
    check_output(args.output)  # before the fit, not after it
    model, auto = _make_model(args), _auto(args)
    with session(args.workers, args.scheduler) as executor, tempfile.TemporaryDirectory(prefix="jukebox_example_") as tmp:
        listens, user_ids = _stdin(args.listen_count, args.user_ids)
        if args.example:
            listens, user_ids = _write_example(tmp)
        text, timer = run(listens, user_ids, model, k=args.k, max_songs=args.max_songs, layout=args.layout,
                          fallback=_fallback(args), executor=executor, auto=auto)
    write_output(args.output, text)
    _log_phases(args, timer)


def _log_phases(args, timer):
    if args.verbose:
        logger.info(f"phases: {timer}")


def _split(args):
    from .split import split_file

    counts = split_file(args.listen_count, args.out_dir, seed=args.seed, ratio=args.ratio, protocol=args.protocol)
    logger.info(
        f"{args.out_dir}: {counts['train_plays']:,} train plays, {counts['held_out_plays']:,} held out of "
        f"{counts['users']:,} users ({counts['cold_users']:,} of them without train plays)"
    )


def _train(args):
    from .cluster import session
    from .io import check_output
    from .pipeline import train

    check_output(args.model_file)
    model, auto = _make_model(args), _auto(args)
    with session(args.workers, args.scheduler) as executor:
        timer = train(args.listen_count, args.model_file, model, max_songs=args.max_songs, fallback=_fallback(args),
                      executor=executor, auto=auto)
    _log_phases(args, timer)


def _recommend(args):
    from .cluster import session
    from .io import check_output, write_output
    from .persist import is_model_file
    from .pipeline import recommend_saved, run

    if args.k is not None and args.k_option is not None and args.k != args.k_option:
        raise JukeboxError(f"K is given twice, as {args.k} and -k {args.k_option}")
    k = args.k or args.k_option or 100
    check_output(args.output)
    user_ids, plays = _stdin(args.user_ids, args.plays)
    fitting = not is_model_file(args.source)
    if fitting and plays is not None:
        raise JukeboxError(f"{args.source}: --plays applies to a model file; a listening log is fit with its own plays")
    if not fitting:
        given = [f"--{name.replace('_', '-')}" for name in _model_parameters(args)]
        given += ["--model"] * (args.model is not None) + ["--max-songs"] * (args.max_songs is not None)
        given += ["--auto" if args.auto else "--no-auto"] * (args.auto is not None)
        if given:
            raise JukeboxError(
                f"{args.source}: {given[0]} applies when fitting a listening log; a model file keeps its model and songs"
            )
    model, auto = (_make_model(args), _auto(args)) if fitting else (None, False)
    with session(args.workers, args.scheduler) as executor:
        if fitting:
            text, timer = run(args.source, user_ids, model, k=k, max_songs=args.max_songs,
                              layout=args.layout, fallback=_fallback(args), executor=executor, auto=auto)
        else:
            text, timer = recommend_saved(args.source, user_ids, k, plays_path=plays, layout=args.layout,
                                          executor=executor)
    write_output(args.output, text)
    _log_phases(args, timer)


def _similar(args):
    from .io import check_output, write_output
    from .pipeline import similar_saved

    check_output(args.output)
    write_output(args.output, similar_saved(args.model_file, args.song_ids, k=args.k, layout=args.layout))


def _info(args):
    import json

    from .errors import format_size
    from .persist import model_info

    info = model_info(args.model_file)
    if args.json:
        text = json.dumps(info, indent=2) + "\n"
    else:
        parameters = ", ".join(f"{k}={v!r}" for k, v in (info["parameters"] or {}).items())
        counts = "no plays or ids (saved without them)" if info["users"] is None else (
            f"{info['users']:,} users, {info['plays']:,} plays"
        )
        text = (
            f"{info['path']}: {info['model']} model, {info['songs']:,} songs, {counts}\n"
            f"parameters: {parameters}\n"
            f"written: {info['written_at'] or 'unknown'} by {info['written_by']} (model format {info['format_version']})\n"
            f"file: {info['file_bytes']:,} bytes ({format_size(info['file_bytes'])})\n"
        )
    sys.stdout.write(text)
    sys.stdout.flush()


def _evaluate(args):
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
        logger.info(f"{args.recs}: {len(result['problems'])} kinds of format problems (listed in the report)")
        return 1
    return 0


def _tune(args):
    import json

    from .io import check_output, write_output
    from .tune import format_table, grid_settings, plot_png, require_matplotlib, tune

    keys, settings = grid_settings(_parse_grid(args.grid))
    check_output(args.output)
    if args.plot:
        require_matplotlib()
        check_output(args.plot)
        if "regularization" not in keys:
            raise JukeboxError("--plot draws NDCG@100 against the regularization, which this grid does not set")
    results = tune(args.listen_count, settings, seed=args.seed, ratio=args.ratio, protocol=args.protocol, k=args.k)
    if args.json:
        text = json.dumps({"seed": args.seed, "ratio": args.ratio, "protocol": args.protocol, "k": args.k,
                           "results": results}, indent=2) + "\n"
    else:
        text = format_table(results, keys, k=args.k)
    write_output(args.output, text.encode("utf-8"))
    if args.plot:
        write_output(args.plot, plot_png(results, keys))
        logger.info(f"{args.plot}: NDCG@100 against the regularization")


def _parse_grid(specs):
    """``--grid KEY=V1,V2`` options as ``{key: [text, ...]}`` (dashes in keys read as underscores)."""
    grid = {}
    for spec in specs or []:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        values = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not values:
            raise JukeboxError(f"--grid: expected KEY=V1,V2,..., got {spec!r}")
        grid[key] = list(dict.fromkeys(grid.get(key, []) + values))
    return grid


def _write_example(directory):
    from .example import generate_listens

    listens, users = generate_listens()
    paths = os.path.join(directory, "listen_count.txt"), os.path.join(directory, "user_ids.txt")
    for path, payload in zip(paths, (listens, users)):
        with open(path, "wb") as f:
            f.write(payload)
    n_plays = listens.count(b"\n")
    logger.info(f"example: a synthetic log of {n_plays:,} plays (jukebox_fast.example.generate_listens)")
    return paths


def main(argv=None):
    """Run the command line; returns the exit status. ``argv`` items may be paths."""
    parser = build_parser(program_name() if argv is None else PROG)
    args = parser.parse_args(None if argv is None else [os.fspath(a) for a in argv])
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
                status = args.handler(args) or 0
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

        with _progress_on_stderr(args.quiet):
            logger.info(f"total {time.perf_counter() - start:.2f}s, peak memory {format_size(peak_memory())}")
    return status
