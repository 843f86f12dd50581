"""The sparse model against SANSA (``pip install sansa``) on the same split: NDCG@100, fit time, peak memory.

    python -m pytest bench/bench_sansa.py --benchmark-only      # skipped without sansa
    python bench/bench_sansa.py SPLIT_DIR [--links K ...] [--density D ...]

SPLIT_DIR holds listen_count.txt (train plays), user_ids.txt and
test_data.txt, as ``python -m jukebox_fast split`` writes them. Under
pytest the split is $JUKEBOX_SPLIT when set, else the public split-seed0
of ../shared, else a synthetic log of the public one's shape split 80/20.

Each fit runs in a fresh process, which reads the split, fits, recommends
100 unplayed songs to every user of user_ids.txt and prints one JSON line:
NDCG@100 (jukebox_fast.ndcg, every held-out song in the ideal DCG), fit
seconds, the resident memory after the read and the peak (VmHWM) of the
whole process. Users SANSA scores fewer than 100 songs for (a sparse
product has holes) get the most-played unplayed songs after the scored
ones, as ``run`` does for users without plays; the same for users absent
from the train plays, in both models.

SANSA is configured as its README shows (l2 20, incomplete Cholesky with
shift step 1e-3 and multiplier 2, UMR with 1 scan and 5 fine-tuning
steps) and learns from 0/1 plays, as in its examples; only the density of
its weights varies. Its density counts the
entries of both of its factors, so SANSA at density D holds about
2 D n^2 weights where the sparse model at K links holds n K.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

BENCH = pathlib.Path(__file__).resolve().parent
SHARED_SPLIT = BENCH.parents[1] / "shared" / "data" / "jukebox" / "split-seed0"
# The README's example density, and one about as many weights as the sparse model's default on 8,000 songs.
SANSA_DENSITIES = (5e-5, 1e-2)
USER_BLOCK = 4096


def _memory_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _popular_first(user_items):
    """Song indices by descending number of listeners (ties by index)."""
    listeners = np.bincount(user_items.indices, minlength=user_items.shape[1])
    return np.argsort(-listeners, kind="stable")


def _sansa_recommend(model, asked, popular, k):
    """Top k unplayed songs per row of ``asked`` from SANSA's sparse scores, then the most popular unplayed."""
    n_users, n_songs = asked.shape
    # A song's fallback key: above nothing scored, below every score; earlier in `popular` ranks first.
    fallback_rank = np.empty(n_songs, np.float64)
    fallback_rank[popular] = np.arange(n_songs, 0, -1) / (n_songs + 1)
    best = np.empty((n_users, k), np.int64)
    for start in range(0, n_users, USER_BLOCK):
        rows = asked[start : start + USER_BLOCK]
        scores = model.forward(rows).tocsr()
        floor = (scores.data.min() if scores.nnz else 0.0) - 2.0
        keys = np.broadcast_to(floor + fallback_rank, (rows.shape[0], n_songs)).copy()
        keys[np.repeat(np.arange(rows.shape[0]), np.diff(scores.indptr)), scores.indices] = scores.data
        keys[np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)), rows.indices] = -np.inf
        top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
        best[start : start + rows.shape[0]] = np.take_along_axis(top, order, axis=1)
    return best


def fit_and_score(split, model_name, links=None, density=None, k=100):
    """Read SPLIT, fit one model, recommend and score: a dict of NDCG@100, fit seconds and memory (this process)."""
    import scipy.sparse as sp

    sys.path.insert(0, str(BENCH))
    from compare_models import read_held_out

    from jukebox_fast import ndcg, read_listens, read_user_ids, select_rows
    from jukebox_fast.models import SparseEDLAE

    split = pathlib.Path(split)
    interactions = read_listens(split / "listen_count.txt")
    users = read_user_ids(split / "user_ids.txt")
    held_out = read_held_out(split / "test_data.txt", interactions, users)
    user_items = sp.csr_matrix(interactions.user_items)
    asked = sp.csr_matrix(select_rows(interactions.user_items, interactions.users.lookup(users)))
    read_kib = _memory_kib("VmRSS")

    if model_name == "sparse":
        model = SparseEDLAE() if links is None else SparseEDLAE(links=links)
        start = time.perf_counter()
        model.fit(interactions.user_items)
        fit_s = time.perf_counter() - start
        songs, _ = model.recommend(asked, k=k)
        weights = int(model.weight_data_.size)
    else:
        from sansa import (
            SANSA,
            ICFGramianFactorizerConfig,
            SANSAConfig,
            UMRUnitLowerTriangleInverterConfig,
        )

        config = SANSAConfig(
            l2=20.0,
            weight_matrix_density=density,
            gramian_factorizer_config=ICFGramianFactorizerConfig(
                factorization_shift_step=1e-3, factorization_shift_multiplier=2.0
            ),
            lower_triangle_inverter_config=UMRUnitLowerTriangleInverterConfig(scans=1, finetune_steps=5),
        )
        model = SANSA(config)
        # SANSA learns from 0/1 interactions, as its examples do (counts would let a few heavy plays dominate X^T X).
        played, asked_played = user_items.copy(), asked.copy()
        played.data[:] = 1
        asked_played.data[:] = 1
        start = time.perf_counter()
        model.fit(played)
        fit_s = time.perf_counter() - start
        songs = _sansa_recommend(model, asked_played, _popular_first(user_items), k)
        weights = int(sum(w.nnz for w in model.weights))
    return {
        "model": model_name if model_name == "sansa" or links is None else f"sparse, {links} links",
        "settings": {"links": links} if model_name == "sparse" else {"density": density},
        "songs": int(user_items.shape[1]),
        "weights": weights,
        "ndcg": float(np.nanmean(ndcg(songs, held_out))),
        "fit_s": fit_s,
        "read_gib": read_kib / 2**20,
        "peak_gib": _memory_kib("VmHWM") / 2**20,
    }


def measure(split, model_name, **settings):
    """fit_and_score in a fresh Python process, so that its peak memory is its own."""
    command = [sys.executable, str(BENCH / "bench_sansa.py"), "--child", model_name, str(split)]
    for name, value in settings.items():
        if value is not None:
            command += [f"--{name}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _name(result):
    if result["model"] == "sansa":
        return f"SANSA, density {result['settings']['density']:g}"
    return result["model"]


def table(results):
    lines = [
        "| model | weights | NDCG@100 | fit s | memory after read GiB | peak GiB |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {_name(r)} | {r['weights']:,} | {r['ndcg']:.4f} | {r['fit_s']:.1f} | {r['read_gib']:.2f} | {r['peak_gib']:.2f} |"
        )
    return "\n".join(lines)


# pytest ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sansa():
    return pytest.importorskip("sansa")


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    if os.environ.get("JUKEBOX_SPLIT"):
        return pathlib.Path(os.environ["JUKEBOX_SPLIT"])
    if (SHARED_SPLIT / "test_data.txt").is_file():
        return SHARED_SPLIT
    from jukebox_fast import split_file
    from jukebox_fast.example import generate_listens

    folder = tmp_path_factory.mktemp("sansa")
    listens, _ = generate_listens(n_users=20278, n_songs=8262, n_genres=60, seed=1)
    (folder / "all.txt").write_bytes(listens)
    split_file(folder / "all.txt", folder / "split", seed=0)
    return folder / "split"


@pytest.mark.benchmark(group="sparse against SANSA")
@pytest.mark.parametrize(
    "model_name, settings",
    [("sparse", {})] + [("sansa", {"density": d}) for d in SANSA_DENSITIES],
    ids=["sparse"] + [f"sansa-{d:g}" for d in SANSA_DENSITIES],
)
def test_fit_and_score(benchmark, ratios, sansa, split, model_name, settings):
    result = benchmark.pedantic(measure, args=(split, model_name), kwargs=settings, rounds=1)
    benchmark.extra_info.update(result)
    assert 0 < result["ndcg"] <= 1 and result["fit_s"] > 0 and result["peak_gib"] >= result["read_gib"]
    ratios[_name(result)] = (
        f"NDCG@100 {result['ndcg']:.4f}, fit {result['fit_s']:.1f} s, peak {result['peak_gib']:.2f} GiB"
    )


# script ---------------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=("sparse", "sansa"), help=argparse.SUPPRESS)
    parser.add_argument("split", type=pathlib.Path)
    parser.add_argument("--links", type=int, nargs="+", default=[None], help="K of the sparse model (default: its own)")
    parser.add_argument("--density", type=float, nargs="+", default=list(SANSA_DENSITIES), help="SANSA's densities")
    args = parser.parse_args()
    if args.child:
        settings = {"links": args.links[0]} if args.child == "sparse" else {"density": args.density[0]}
        print(json.dumps(fit_and_score(args.split, args.child, **settings)), flush=True)
        return
    results = []
    for links in args.links:
        results.append(measure(args.split, "sparse", links=links))
        print(json.dumps(results[-1]), flush=True)
    for density in args.density:
        results.append(measure(args.split, "sansa", density=density))
        print(json.dumps(results[-1]), flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
