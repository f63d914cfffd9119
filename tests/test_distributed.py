"""Data-parallel training and lazy prediction on a local `dask.distributed` cluster.

Two worker processes with one thread each, started once for the module. Dask-specific,
so these tests do not take the `xp` fixture; they run where `distributed` is installed
(the `dask` nox session).
"""

from __future__ import annotations

import os
import signal
from typing import Any

import numpy as np
import pytest

from xconv import NeuralNetwork
from xconv.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    MaxPooling2D,
)
from xconv.optimizers import SGD

da = pytest.importorskip("dask.array", reason="Dask is not installed (pip install 'xconv[dask]')")
distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'xconv[dask]')"
)
import dask  # noqa: E402

import xconv.distributed as xd  # noqa: E402

N_SAMPLES, BATCH = 60, 16  # the last batch of an epoch is smaller (12)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as connected:
        yield connected


def _model(optimizer: Any = "adam", *, batch_norm: bool = False, seed: int = 3) -> NeuralNetwork:
    model = NeuralNetwork(optimizer, "cross_entropy", dtype="float64", seed=seed)
    model.add(Conv2D(4, 3, input_shape=(1, 8, 8)))
    if batch_norm:
        model.add(BatchNormalization())
    model.add(Activation("relu"))
    model.add(MaxPooling2D(2))
    model.add(Conv2D(3, 3, padding="valid"))
    model.add(AveragePooling2D(2))
    model.add(Flatten())
    model.add(Dense(5))
    model.add(Activation("softmax"))
    return model


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.normal(size=(N_SAMPLES, 1, 8, 8)), rng.integers(0, 5, N_SAMPLES)


def _assert_same_model(a: NeuralNetwork, b: NeuralNetwork, tolerance: float) -> None:
    for layer_a, layer_b in zip(a.layers, b.layers, strict=True):
        for store in ("params", "buffers"):
            mine, theirs = getattr(layer_a, store), getattr(layer_b, store)
            assert mine.keys() == theirs.keys()
            for key in mine:
                np.testing.assert_allclose(mine[key], theirs[key], rtol=0, atol=tolerance)


def _assert_same_history(a: dict[str, list[float]], b: dict[str, list[float]]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-10, atol=0)


def test_fit_equals_single_process_fit(client):
    X, y = _data()
    parallel, single = _model(), _model()
    timings: list[dict[str, float]] = []
    history = xd.fit(parallel, X, y, client=client, n_epochs=2, batch_size=BATCH, timings=timings)
    expected = single.fit(X, y, 2, BATCH)
    _assert_same_history(history, expected)
    _assert_same_model(parallel, single, 1e-8)
    assert len(timings) == 2 * 4
    assert all(0 < t["scatter_seconds"] < t["seconds"] for t in timings)


def test_fit_on_dask_arrays_with_three_shards_equals_single_process_fit(client):
    X, y = _data()
    parallel = _model(SGD(learning_rate=0.1, momentum=0.9))
    single = _model(SGD(learning_rate=0.1, momentum=0.9))
    one_hot = np.eye(5)[y]
    history = xd.fit(
        parallel,
        da.from_array(X, chunks=25),
        da.from_array(one_hot, chunks=25),
        client=client,
        n_epochs=1,
        batch_size=BATCH,
        n_shards=3,
    )
    _assert_same_history(history, single.fit(X, y, 1, BATCH))
    _assert_same_model(parallel, single, 1e-8)


def test_fit_with_batch_norm_on_one_shard_equals_single_process_fit(client):
    # one shard sees the whole batch, so its statistics are the batch's
    X, y = _data()
    parallel, single = _model(batch_norm=True), _model(batch_norm=True)
    xd.fit(parallel, X, y, client=client, n_epochs=1, batch_size=BATCH, n_shards=1)
    single.fit(X, y, 1, BATCH)
    _assert_same_model(parallel, single, 1e-8)


def test_fit_checks_its_arguments_before_any_work(client):
    X, y = _data()
    model = _model()
    before = [dict(layer.params) for layer in model.layers]
    with pytest.raises(ValueError, match=r"`batch_size` must be a positive integer, got 0"):
        xd.fit(model, X, y, client=client, n_epochs=1, batch_size=0)
    with pytest.raises(ValueError, match=r"`X` must have shape \(N, 1, 8, 8\)"):
        xd.fit(model, X[:, :, :4], y, client=client, n_epochs=1, batch_size=4)
    with pytest.raises(ValueError, match=r"`y` has 59 labels but X has 60 samples"):
        xd.fit(model, X, y[1:], client=client, n_epochs=1, batch_size=4)
    with pytest.raises(TypeError, match=r"`client` must be a dask.distributed.Client"):
        xd.fit(model, X, y, client=None, n_epochs=1, batch_size=4)
    for layer, params in zip(model.layers, before, strict=True):
        assert all(layer.params[key] is value for key, value in params.items())


def test_predict_is_lazy_reads_the_parameters_from_one_task_and_matches(client):
    X, _ = _data()
    model = _model()
    chunked = da.from_array(X, chunks=(15, 1, 8, 8))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("predict computed a Dask graph")

    with dask.config.set(scheduler=refuse):
        out = xd.predict(model, chunked)
    assert isinstance(out, da.Array)
    assert out.shape == (N_SAMPLES, 5)
    assert out.chunks[0] == chunked.chunks[0]
    # the parameters are one task, which every chunk's task reads
    graph = dict(out.__dask_graph__())
    names = {key[0] if isinstance(key, tuple) else key for key in graph}
    [model_key] = [name for name in names if name.startswith("xconv-model-")]
    tasks = [key for key in graph if isinstance(key, tuple) and key[0] == out.name]
    assert len(tasks) == 4
    assert all(model_key in dask.core.get_dependencies(graph, key) for key in tasks)
    np.testing.assert_allclose(client.compute(out).result(), model.predict(X), rtol=1e-12)


def test_fit_survives_a_killed_worker_with_the_same_result(client):
    X, y = _data()
    parallel, single = _model(), _model()
    pids = client.run(os.getpid)
    killed = []

    def kill_one_worker(epoch: int, logs: dict[str, float]) -> None:
        if epoch == 0:
            address = sorted(pids)[0]
            os.kill(pids[address], signal.SIGKILL)
            killed.append(pids[address])

    history = xd.fit(
        parallel, X, y, client=client, n_epochs=3, batch_size=BATCH, callback=kill_one_worker
    )
    _assert_same_history(history, single.fit(X, y, 3, BATCH))
    _assert_same_model(parallel, single, 1e-8)
    # the nanny started a new worker process in place of the killed one
    client.wait_for_workers(2, timeout=30)
    assert killed
    assert killed[0] not in client.run(os.getpid).values()
