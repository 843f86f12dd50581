import math

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from jukebox_fast import ndcg, recall


def ndcg_python(recs, held):
    if not held:
        return math.nan
    idcg = sum(1 / math.log2(i + 2) for i in range(len(held)))
    return sum(1 / math.log2(i + 2) for i, r in enumerate(recs) if r in held) / idcg


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 8), st.integers(1, 30), st.integers(1, 12), st.data())
def test_ndcg_and_recall_match_the_definition(n_users, n_items, k, data):
    recs = np.full((n_users, k), -1, np.int64)
    held = []
    for u in range(n_users):
        chosen = data.draw(st.lists(st.integers(0, n_items - 1), unique=True, max_size=k))
        recs[u, : len(chosen)] = chosen
        held.append(data.draw(st.sets(st.integers(0, n_items - 1), max_size=n_items)))
    rows = [u for u in range(n_users) for _ in held[u]]
    cols = [j for u in range(n_users) for j in sorted(held[u])]
    truth = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    got = ndcg(recs, truth, k=k)
    got_recall = recall(recs, truth, k=k)
    for u in range(n_users):
        expected = ndcg_python([r for r in recs[u] if r >= 0], held[u])
        if math.isnan(expected):
            assert math.isnan(got[u]) and math.isnan(got_recall[u])
        else:
            assert math.isclose(got[u], expected, rel_tol=1e-12)
            hits = len(set(recs[u][recs[u] >= 0].tolist()) & held[u])
            assert math.isclose(got_recall[u], hits / len(held[u]))
