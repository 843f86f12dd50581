"""The memory budget and the plan under real limits.

Every run that could allocate a songs x songs matrix runs in a subprocess
under an address-space limit (RLIMIT_AS) a few hundred MB above what the
interpreter and the package take, so a wrong plan fails there with a
MemoryError instead of filling the machine. The child sets the limit as
its first statement, before any import: a ``preexec_fn`` would make
subprocess fork a process that may hold JAX's threads.
"""

import re
import subprocess
import sys

import numpy as np
import pytest

from jukebox_fast import cli, runtime
from jukebox_fast.errors import MemoryBudgetError

MiB = 2**20


def write_log(directory, n_songs, n_users=3000, plays_per_song=6, seed=0):
    """A listening log in which every one of ``n_songs`` songs has listeners, popular ones more."""
    rng = np.random.default_rng(seed)
    listeners = plays_per_song + (30 * rng.pareto(1.5, n_songs)).astype(np.int64)
    songs = np.repeat(np.arange(n_songs), np.minimum(listeners, n_users))
    users = np.concatenate([rng.choice(n_users, size=min(c, n_users), replace=False) for c in listeners])
    lines = [f"user{u} song{s} {1 + (u + s) % 3}\n" for u, s in zip(users, songs)]
    (directory / "listen_count.txt").write_text("".join(lines))
    (directory / "user_ids.txt").write_text("".join(f"user{u}\n" for u in range(0, n_users, 7)))
    return directory / "listen_count.txt", directory / "user_ids.txt"


# Runs the command in this interpreter, then prints the process's peak virtual size on stderr.
_MEASURED = (
    "import sys; from jukebox_fast.cli import main; status = main(sys.argv[1:]); "
    "peak = [l for l in open('/proc/self/status') if l.startswith('VmPeak:')][0].split()[1]; "
    "print('VmPeak', int(peak) * 1024, file=sys.stderr); sys.exit(status)"
)


def limited(script, limit):
    """``script`` run under an address-space limit of ``limit`` bytes (None: none), set before anything else."""
    if limit is None:
        return script
    return f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit})); " + script


def command(*args, limit=None, script=_MEASURED):
    """``python -m jukebox_fast ARGS`` (through ``script``) in a subprocess, under an address-space limit of ``limit`` bytes."""
    return subprocess.run(
        [sys.executable, "-c", limited(script, limit), *map(str, args)], capture_output=True, text=True, timeout=600
    )


def peak_of(result):
    return int(re.search(r"^VmPeak (\d+)$", result.stderr, re.MULTILINE).group(1))


def errors_of(result):
    return [line for line in result.stderr.splitlines() if line.startswith("jukebox_fast: error:")]


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """A 12,000-song log (a 549 MiB songs x songs matrix) and the address-space limit its test runs under.

    The limit is the peak virtual size of a run of its 300 most played
    songs, plus the budget's headroom for what the plan does not count,
    plus 200 MiB: room for several thousand songs, not for 12,000.
    """
    listens, users = write_log(tmp_path_factory.mktemp("large"), 12000, n_users=2000)
    small = command("run", listens, users, "-q", "-o", listens.parent / "small.txt", "--max-songs", 300)
    assert small.returncode == 0, small.stderr
    return listens, users, peak_of(small) + runtime.ADDRESS_HEADROOM + 200 * MiB


def test_a_catalogue_over_the_address_space_limit_is_refused_by_the_plan_then_runs_with_the_songs_it_names(large):
    listens, users, limit = large
    out = listens.parent / "recs.txt"
    refused = command("run", listens, users, "-q", "-o", out, "--model", "edlae", limit=limit)
    assert refused.returncode == 2, refused.stderr
    [line] = errors_of(refused)
    # The plan's refusal, before the fit: not a failed allocation.
    assert line.startswith("jukebox_fast: error: EDLAE on 12,000 songs (one 12,000 x 12,000 float32 matrix 549.3 MiB, ")
    assert "of memory is available (the address-space limit (ulimit -v)" in line
    fits = int(re.search(r"--max-songs (\d+) keeps the most played songs that fit", line).group(1))
    assert 2000 <= fits < 12000
    assert not out.exists()

    ran = command("run", listens, users, "-q", "-o", out, "--model", "edlae", "--max-songs", fits, limit=limit)
    assert ran.returncode == 0, ran.stderr
    assert errors_of(ran) == []
    lines = out.read_text().splitlines()
    assert len(lines) == len(users.read_text().split()) and all(len(line.split()) == 101 for line in lines)
    assert peak_of(ran) < limit


def test_without_a_chosen_model_a_catalogue_too_large_for_the_dense_one_gets_the_sparse_one(large):
    listens, users, limit = large
    out = listens.parent / "sparse.txt"
    ran = command("run", listens, users, "-o", out, limit=limit)
    assert ran.returncode == 0, ran.stderr
    warned = [line for line in ran.stderr.splitlines() if line.startswith("jukebox_fast: warning:")]
    assert len(warned) == 1 and "EDLAE on 12,000 songs needs about" in warned[0] and "fitting SparseEDLAE" in warned[0]
    lines = out.read_text().splitlines()
    assert len(lines) == len(users.read_text().split()) and all(len(line.split()) == 101 for line in lines)
    assert peak_of(ran) < limit


def test_an_allocation_the_plan_missed_is_one_line_saying_what_failed_and_what_fits(large):
    listens, users, limit = large
    # The plan and the fit's own check wave everything through: the songs x songs matrix itself fails.
    admit_all = (
        "import jukebox_fast.memory as memory, jukebox_fast.models.ease as ease; "
        "memory.ensure_room = lambda model, *args, budget=None: memory.plan(model, *args); "
        "ease.ensure_memory_for_solve = lambda *args, **kwargs: None; " + _MEASURED
    )
    tighter = limit - 250 * MiB  # no room for the 549 MiB matrix, whatever the plan's margins
    result = command("run", listens, users, "-q", "-o", listens.parent / "recs.txt", limit=tighter, script=admit_all)
    assert result.returncode == 2, result.stderr
    [line] = errors_of(result)
    assert line.startswith(
        "jukebox_fast: error: out of memory while fitting EDLAE on 12,000 songs (Unable to allocate 549. MiB for an "
        "array with shape (12000, 12000) and data type float32); the memory budget is "
    )
    assert "(the address-space limit (ulimit -v)" in line
    # What to do: the songs that fit the budget measured now, which may be none under a limit this tight.
    assert re.search(r"; (--max-songs \d+ keeps the most played songs that fit .*|use a machine with more memory)$", line)
    assert "Traceback" not in result.stderr and "--threads" not in line


def test_memory_limit_sets_the_budget_and_the_run_keeps_to_it(tmp_path):
    listens, users = write_log(tmp_path, 12000, n_users=2000)
    out = tmp_path / "recs.txt"
    # Fresh processes: the limit counts what the process holds, and this one holds whatever the tests before it loaded.
    refused = command("run", listens, users, "-q", "-o", out, "--memory-limit", "1G", "--model", "edlae")
    assert refused.returncode == 2, refused.stderr
    [line] = errors_of(refused)
    assert line.startswith("jukebox_fast: error: EDLAE on 12,000 songs (one 12,000 x 12,000 float32 matrix 549.3 MiB, ")
    assert "of memory is available (--memory-limit 1.0 GiB less " in line
    fits = int(re.search(r"--max-songs (\d+) keeps", line).group(1))
    assert 2000 <= fits < 12000

    # In a fresh process, whose peak is the run's own.
    ran = command("run", listens, users, "-v", "-o", out, "--max-songs", fits, "--memory-limit", "1G", "--model", "edlae")
    assert ran.returncode == 0, ran.stderr
    assert 0 < _resident_peak(ran.stderr) <= 2**30


def _resident_peak(stderr):
    """The peak resident size that ``-v`` prints at the end ('total 1.23s, peak memory 456.7 MiB')."""
    number, unit = re.search(r"peak memory ([\d.]+) (MiB|GiB)$", stderr, re.MULTILINE).groups()
    return float(number) * (2**30 if unit == "GiB" else 2**20)


def test_a_bad_memory_limit_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--example", "--memory-limit", "lots"])
    assert e.value.code == 2
    assert capsys.readouterr().err == (
        "jukebox_fast: error: argument --memory-limit: expected a size such as 16G or 512M, got 'lots' "
        "(see python -m jukebox_fast run --help)\n"
    )


def test_the_fit_refuses_by_itself_in_the_api():
    from jukebox_fast import EDLAE
    import scipy.sparse as sp

    n = 20000  # 1.5 GiB: more than the limit below, never allocated
    plays = sp.csr_array((np.ones(n), (np.arange(n) % 50, np.arange(n))), shape=(50, n))
    with runtime.memory_limit("1G"), pytest.raises(MemoryBudgetError, match=r"^EDLAE on 20,000 songs .* --max-songs \d+ keeps"):
        EDLAE().fit(plays)
