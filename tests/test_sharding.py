"""The JAX trainer over several devices: B split by columns, the same B as on one device."""

import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.jax

FIT = """
import sys, numpy as np, scipy.sparse as sp, jax
from jukebox_fast.models import LinearAutoencoder
X = sp.random_array((300, 50), density=0.1, format="csr", random_state=0, dtype=np.float32)
model = LinearAutoencoder(backend="jax", epochs=3, batch_size=64, regularization=10).fit(X)
assert len(jax.devices()) == int(sys.argv[2]), jax.devices()
np.save(sys.argv[1], model.item_weights_)
"""


def on_devices(count, *args, script=None):
    pytest.importorskip("jax")
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={count}", JAX_PLATFORMS="cpu")
    command = [sys.executable, "-c", script, *map(str, args)] if script else [sys.executable, "-m", "jukebox_fast", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, timeout=600)


def test_four_devices_learn_the_b_of_one(tmp_path):
    weights = {}
    for count in (1, 4):
        done = on_devices(count, tmp_path / f"b{count}.npy", count, script=FIT)
        assert done.returncode == 0, done.stderr.decode()
        weights[count] = np.load(tmp_path / f"b{count}.npy")
    assert weights[4].shape == (50, 50) and not np.diagonal(weights[4]).any()
    assert np.abs(weights[1]).max() > 0.01
    np.testing.assert_allclose(weights[4], weights[1], rtol=1e-5, atol=1e-7)


def test_the_command_line_uses_every_device_and_says_so(tmp_path):
    outputs = {}
    for count in (1, 4):
        out = tmp_path / f"recs{count}.txt"
        done = on_devices(count, "run", "--example", "--model", "sgd", "--backend", "jax", "--epochs", "2", "-v", "-o", out)
        assert done.returncode == 0, done.stderr.decode()
        outputs[count] = out.read_bytes()
        said = [line for line in done.stderr.decode().splitlines() if "sgd: jax on" in line]
        assert said and f"jax on {count} cpu device" in said[0]
        if count > 1:
            assert "columns split" in said[0]
    # B agrees to float32 rounding, so the lists agree but for the rare near-tie.
    one, four = outputs[1].splitlines(), outputs[4].splitlines()
    assert len(one) == len(four) > 0
    assert sum(a == b for a, b in zip(one, four)) >= 0.99 * len(one)
