"""The memory plan of a run against the memory it really takes, phase by phase.

    python bench/memory_plan.py LISTEN_COUNT [USER_IDS] [--model ease] [--max-songs N] [--plan-only]

Reads the log, makes the plan (``memory.plan``), then fits and recommends
in this process. Before each phase the peak resident size is reset
(``/proc/self/clear_refs``), so each phase's peak is its own; the peak
virtual size is read too (what an address-space limit, ``ulimit -v``,
sees). Prints one line per phase: what the process held when the plan was
made plus what the plan says the phase adds, against the measured peak.
Without USER_IDS every user of the log is answered.
"""

import argparse
import time


def status():
    """VmRSS, VmHWM, VmSize and VmPeak of this process, in bytes."""
    sizes = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "VmSize", "VmPeak"):
                sizes[key] = int(value.split()[0]) * 1024
    return sizes


def reset_peak():
    """Start the peak resident size (VmHWM) anew from the current one (Linux 4.0 and later)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def gib(n_bytes):
    return f"{n_bytes / 2**30:6.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("listen_count")
    parser.add_argument("user_ids", nargs="?")
    parser.add_argument("--model", default="edlae", choices=("edlae", "ease", "sgd", "popularity"))
    parser.add_argument("--max-songs", type=int)
    parser.add_argument("--plan-only", action="store_true", help="print the plan, fit nothing")
    args = parser.parse_args()

    from jukebox_fast import make_model, read_listens, read_user_ids
    from jukebox_fast.pipeline import PhaseTimer, ensure_room, keep_most_played, recommend_for_file

    start = time.perf_counter()
    interactions = keep_most_played(read_listens(args.listen_count), args.max_songs)
    user_ids = read_user_ids(args.user_ids) if args.user_ids else interactions.users
    model = make_model(args.model)
    n_users, n = interactions.user_items.shape
    print(f"{args.listen_count}: {n_users:,} users, {n:,} songs, {interactions.n_plays:,} plays, "
          f"{len(user_ids):,} answered; read in {time.perf_counter() - start:.1f} s")
    at_plan = status()
    plan = ensure_room(model, interactions, user_ids, 100)
    print(f"held when planning: RSS {gib(at_plan['VmRSS'])} GiB, virtual {gib(at_plan['VmSize'])} GiB")
    if args.plan_only:
        for phase, buffers in (("fit", plan.fit), ("recommend", plan.recommend)):
            print(f"{phase:10}  {gib(at_plan['VmRSS'] + sum(buffers.values()))} GiB with what is held")
            print(f"  {phase}: " + ", ".join(f"{name} {size / 2**20:.0f} MiB" for name, size in buffers.items()))
        return
    print("phase       plan GiB  peak GiB  plan/peak  peak virtual GiB  seconds")
    timer = PhaseTimer()
    for phase, buffers, work in (
        ("fit", plan.fit, lambda: model.fit(interactions.user_items)),
        ("recommend", plan.recommend, lambda: recommend_for_file(interactions, model, user_ids, 100, timer)),
    ):
        reset_peak()
        begin = time.perf_counter()
        work()
        seconds = time.perf_counter() - begin
        measured = status()
        planned = at_plan["VmRSS"] + sum(buffers.values())
        print(f"{phase:10}  {gib(planned)}    {gib(measured['VmHWM'])}    {planned / measured['VmHWM']:7.3f}"
              f"    {gib(measured['VmPeak'])}            {seconds:7.1f}")
    for phase, buffers in (("fit", plan.fit), ("recommend", plan.recommend)):
        print(f"  {phase}: " + ", ".join(f"{name} {size / 2**20:.0f} MiB" for name, size in buffers.items()))


if __name__ == "__main__":
    main()
