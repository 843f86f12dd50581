"""Command line: ``python -m jukebox_fast run LISTEN_COUNT USER_IDS``.

User mistakes (bad files, bad options) print one line on stderr and exit
with status 2; ``--debug`` shows the traceback instead.
"""

import argparse
import os
import sys
import tempfile
import time
import warnings

from .errors import JukeboxError

PROG = "python -m jukebox_fast"

RUN_EXAMPLES = f"""examples:
  {PROG} run listen_count.txt user_ids.txt > recs.txt
  {PROG} run listen_count.txt user_ids.txt -k 50 -o recs.txt --model ease --regularization 200
  {PROG} run --example          # a small synthetic log generated in code
"""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _unit_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _nonnegative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


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
        help="L2 penalty lambda: for ease absolute (default 100), for edlae a multiple of the mean "
        "diagonal of X^T X (default 6)",
    )
    parser.add_argument(
        "--dropout", type=_unit_float, default=0.5, metavar="P",
        help="edlae: emphasized-denoising dropout rate p in [0, 1) (default: 0.5)",
    )
    parser.add_argument(
        "--user-exponent", type=float, default=0.5, metavar="A",
        help="edlae: a user with n songs weighs n**-A in X^T X (default: 0.5; 0 weighs users equally)",
    )
    parser.add_argument(
        "--popularity-exponent", type=_nonnegative_float, default=0.2, metavar="B",
        help="edlae: scores are divided by (1 + plays of the song)**B (default: 0.2)",
    )
    parser.add_argument(
        "--weighting", choices=WEIGHTINGS, default="binary",
        help="a play count becomes 1 (binary, default), 1 + log(1 + count) (log), or the count",
    )


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description="Fast implicit-feedback music recommendation.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run", help="read plays, fit, and recommend unplayed songs for each listed user",
        description="Read LISTEN_COUNT ('<user_id> <song_id> <count>' lines), fit a model (EDLAE by default), and print one line "
        "per user of USER_IDS: the user id, then K songs the user has not played, best first.",
        epilog=RUN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("listen_count", nargs="?", help="the listening log")
    run.add_argument("user_ids", nargs="?", help="the users to recommend for, one a line")
    run.add_argument("--example", action="store_true", help="run on a small synthetic log generated in code")
    run.add_argument("-k", type=_positive_int, default=100, help="songs per user (default: 100)")
    run.add_argument("-o", "--output", metavar="FILE", help="write here (atomically) instead of stdout")
    _add_model_options(run)
    _add_common(run)
    run.set_defaults(handler=_run)
    return parser


class _Log:
    def __init__(self, quiet):
        self.quiet = quiet

    def __call__(self, message):
        if not self.quiet:
            print(f"jukebox_fast: {message}", file=sys.stderr, flush=True)


def _run(args, log):
    from .io import write_output
    from .models import make_model
    from .pipeline import run

    if args.example == bool(args.listen_count):
        raise JukeboxError("give LISTEN_COUNT and USER_IDS, or --example")
    if args.listen_count and not args.user_ids:
        raise JukeboxError("missing USER_IDS: the file of users to recommend for")
    model = make_model(args)
    with tempfile.TemporaryDirectory(prefix="jukebox_example_") as tmp:
        listens, user_ids = args.listen_count, args.user_ids
        if args.example:
            listens, user_ids = _write_example(tmp, log)
        text, timer = run(listens, user_ids, model, k=args.k, log=log)
    write_output(args.output, text)
    if args.verbose:
        log(f"phases: {timer}")


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
    args = build_parser().parse_args(argv)
    log = _Log(args.quiet)
    start = time.perf_counter()

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if not args.quiet:
            print(f"jukebox_fast: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        try:
            from .runtime import limit_threads

            with limit_threads(args.threads):
                args.handler(args, log)
        except JukeboxError as e:
            if args.debug:
                raise
            print(f"jukebox_fast: error: {e}", file=sys.stderr)
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
        log(f"total {time.perf_counter() - start:.2f}s")
    return 0
