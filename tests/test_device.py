"""The closed form's solve on a device: the same code on NumPy/SciPy here, on CuPy where a GPU is."""

import numpy as np
import pytest
import scipy.sparse as sp

from jukebox_fast import _device
from jukebox_fast.errors import BackendUnavailableError
from jukebox_fast.evaluation import ndcg
from jukebox_fast.models import EASE, EDLAE


def plays(n_users=500, n_items=120, seed=0):
    rng = np.random.default_rng(seed)
    popularity = rng.pareto(1.5, n_items) + 0.05
    p = popularity / popularity.sum()
    rows = [np.unique(rng.choice(n_items, rng.integers(3, 20), p=p)) for _ in range(n_users)]
    indptr = np.concatenate([[0], np.cumsum([r.size for r in rows])])
    counts = rng.integers(1, 9, indptr[-1]).astype(np.float32)
    return sp.csr_array((counts, np.concatenate(rows), indptr), shape=(n_users, n_items))


def has_gpu():
    try:
        _device.gpu_modules()
    except BackendUnavailableError:
        return False
    return True


@pytest.fixture(params=["host", pytest.param("gpu", marks=pytest.mark.skipif(not has_gpu(), reason="no CUDA GPU"))])
def device_modules(request, monkeypatch):
    """The GPU path's code, on NumPy/SciPy standing in for CuPy, or on the GPU itself."""
    if request.param == "host":
        monkeypatch.setattr(_device, "gpu_modules", _device.host_modules)
    return request.param


def test_the_device_gram_is_x_transpose_x(device_modules, monkeypatch):
    monkeypatch.setattr(_device, "BAND", 7)  # several bands, the last one short
    X = plays(n_items=40).astype(np.float32)
    modules = _device.gpu_modules()
    gram = _device.DeviceGram(X, modules)
    dense = X.toarray().astype(np.float64)
    np.testing.assert_allclose(gram.diagonal(), np.diag(dense.T @ dense), rtol=1e-6)
    penalty = np.linspace(5, 50, 40)
    out = np.empty((40, 40), np.float32)
    gram.inverse(penalty, out)
    np.testing.assert_allclose(out, np.linalg.inv(dense.T @ dense + np.diag(penalty)), rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("model", [EASE(regularization=20.0), EDLAE(), EDLAE(user_exponent=0, weighting="log")])
def test_the_device_solve_gives_the_cpu_recommendations(model, device_modules):
    X = plays()
    cpu = model.set_params(device="cpu").fit(X)
    cpu_songs, _ = cpu.recommend(X, k=100)
    cpu_weights = cpu.item_weights_.copy()
    gpu = type(model)(**{**model.get_params(), "device": "gpu"}).fit(X)
    songs, _ = gpu.recommend(X, k=100)
    assert not np.diagonal(gpu.item_weights_).any()
    np.testing.assert_allclose(gpu.item_weights_, cpu_weights, rtol=1e-2, atol=1e-4 * np.abs(cpu_weights).max())
    same = np.mean([np.intersect1d(a[a >= 0], b[b >= 0]).size / max((a >= 0).sum(), 1) for a, b in zip(songs, cpu_songs)])
    assert same >= 0.99
    held = sp.csr_array(plays(seed=1).toarray() * (X.toarray() == 0))
    assert abs(np.nanmean(ndcg(songs, held)) - np.nanmean(ndcg(cpu_songs, held))) < 1e-3


def test_without_cupy_the_gpu_says_what_to_install(cli):
    if has_gpu():
        pytest.skip("this machine has a GPU")
    with pytest.raises(BackendUnavailableError, match=r"pip install 'jukebox_fast\[gpu\]'"):
        EDLAE(device="gpu").fit(plays())
    done = cli("run", "--example", "--device", "gpu", "--no-auto")
    assert done.returncode == 2
    [line] = done.stderr.decode().strip().splitlines()[-1:]
    assert line.startswith("jukebox_fast: error: the gpu (cupy) backend is not available:") and "jukebox_fast[gpu]" in line
    assert len([l for l in done.stderr.decode().splitlines() if "error" in l]) == 1 and b"Traceback" not in done.stderr


def test_weighted_targets_need_the_cpu():
    with pytest.raises(ValueError, match="target_weight needs device='cpu'"):
        EDLAE(target_weight=0.1, device="gpu").fit(plays())
