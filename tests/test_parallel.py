import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from jukebox_fast._parallel import run_tasks, split, split_by_work


@given(st.integers(0, 50), st.integers(1, 9))
def test_split_covers_the_range_in_order(n, parts):
    ranges = split(n, parts)
    assert [i for lo, hi in ranges for i in range(lo, hi)] == list(range(n))
    assert all(hi > lo for lo, hi in ranges) and len(ranges) <= parts


@given(st.lists(st.integers(0, 1000), max_size=60), st.integers(1, 6))
def test_split_by_work_covers_the_rows_and_balances_entries(lengths, parts):
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ranges = split_by_work(indptr, parts)
    assert [i for lo, hi in ranges for i in range(lo, hi)] == list(range(len(lengths)))
    assert all(hi > lo for lo, hi in ranges) and len(ranges) <= parts
    work = [indptr[hi] - indptr[lo] + (hi - lo) for lo, hi in ranges]
    if work:
        # no share exceeds an equal share by more than its largest single row
        assert max(work) <= sum(work) / len(ranges) + max(lengths, default=0) + 1


def test_run_tasks_keeps_the_order():
    assert run_tasks(lambda a, b: a * b, [(i, 2) for i in range(7)]) == [2 * i for i in range(7)]
