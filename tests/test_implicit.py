"""The adapter for code written against implicit 0.7: a script for its ALS runs with only its import line changed."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from jukebox_fast import implicit

# Written for implicit 0.7's AlternatingLeastSquares, as its documentation shows it.
SCRIPT = '''
import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

rng = np.random.default_rng(0)
dense = (rng.random((300, 60)) < 0.1) * rng.integers(1, 20, (300, 60))
user_items = sp.csr_matrix(dense.astype(np.float32))

model = AlternatingLeastSquares()
model.fit(user_items)

ids, scores = model.recommend(0, user_items[0], N=10)
assert ids.shape == (10,) and scores.shape == (10,)
assert not set(ids.tolist()) & set(user_items[0].indices.tolist())

userids = np.arange(5)
ids, scores = model.recommend(userids, user_items[userids], N=10, filter_already_liked_items=True)
assert ids.shape == (5, 10)
for row, userid in zip(ids, userids):
    assert not set(row.tolist()) & set(user_items[userid].indices.tolist())

ids, scores = model.recommend(1, user_items[1], N=5, filter_items=[0, 1, 2])
assert not set(ids.tolist()) & {0, 1, 2}

similar, scores = model.similar_items(3, N=5)
assert similar.shape == (5,)

model.save("model.npz")
model = AlternatingLeastSquares.load("model.npz")
again, _ = model.recommend(0, user_items[0], N=10)
print(" ".join(map(str, again.tolist())))
'''


@pytest.mark.parametrize("name", ["EDLAE", "EASE"])
def test_a_script_for_implicit_runs_with_only_its_import_changed(name, tmp_path):
    script = SCRIPT.replace(
        "from implicit.cpu.als import AlternatingLeastSquares",
        f"from jukebox_fast.implicit import {name} as AlternatingLeastSquares",
    )
    assert script.count("\n") == SCRIPT.count("\n") and script != SCRIPT
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    recommended = [int(i) for i in done.stdout.split()]
    assert len(recommended) == 10 and all(0 <= i < 60 for i in recommended) and len(set(recommended)) == 10


def plays():
    rng = np.random.default_rng(1)
    return sp.csr_array(((rng.random((80, 30)) < 0.2) * rng.integers(1, 5, (80, 30))).astype(np.int64))


def test_the_adapter_answers_as_the_model_does():
    user_items = plays()
    adapter = implicit.EDLAE(dropout=0.8)
    adapter.fit(user_items)
    assert adapter.get_params()["dropout"] == 0.8 and "dropout=0.8" in repr(adapter)
    ids, scores = adapter.recommend(np.arange(80), user_items, N=7)  # the whole matrix: its rows of userid
    want = adapter.model.recommend(user_items, k=7)
    np.testing.assert_array_equal(ids, want[0])
    np.testing.assert_array_equal(scores, want[1])
    only, _ = adapter.recommend(4, user_items[[4]], N=3, items=[1, 2, 3, 5, 8], filter_items=[2])
    assert set(only.tolist()) <= {1, 3, 5, 8}
    similar, _ = adapter.similar_items([0, 1], N=4, filter_items=[5])
    assert similar.shape == (2, 4) and 5 not in similar


def test_the_adapter_says_what_it_expected():
    adapter = implicit.EASE()
    adapter.fit(plays())
    with pytest.raises(TypeError, match="userid must be an int"):
        adapter.recommend("u1", plays()[[0]])
    with pytest.raises(ValueError, match="2 rows for 3 userid"):
        adapter.recommend(np.array([100, 101, 102]), plays()[[0, 1]], N=3)
    with pytest.raises(ValueError, match="no parameter 'factors'"):
        implicit.EDLAE(factors=64)
