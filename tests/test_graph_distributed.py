"""`xconv.distributed` on graph models: data-parallel fit and lazy predict.

A local in-process cluster (threads), started once for the module.
"""

from __future__ import annotations

import numpy as np
import pytest

from xconv import Input, NeuralNetwork
from xconv.layers import Activation, Add, BatchNormalization, Concatenate, Conv2D, Dense, Flatten
from xconv.losses import CrossEntropy
from xconv.optimizers import SGD

da = pytest.importorskip("dask.array", reason="Dask is not installed (pip install 'xconv[dask]')")
distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'xconv[dask]')"
)

import xconv.distributed as xd  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.Client(
        processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None
    ) as connected:
        yield connected


def _model(batch_norm: bool = True) -> NeuralNetwork:
    x = Input((1, 6, 6))
    h = Conv2D(3, 3)(x)
    h = Activation("relu")(BatchNormalization()(h) if batch_norm else h)
    h = Add()([Conv2D(3, 3)(h), Conv2D(3, 1)(x)])
    y = Dense(4)(Flatten()(Concatenate()([h, x])))
    return NeuralNetwork(
        SGD(0.1, momentum=0.9),
        CrossEntropy(from_logits=True),
        inputs=x,
        outputs=y,
        dtype="float64",
        seed=1,
    )


@pytest.mark.parametrize(("batch_norm", "n_shards"), [(True, 1), (False, 3)])
def test_distributed_fit_of_a_graph_equals_a_local_fit(client, batch_norm, n_shards):
    # with BatchNormalization, one shard sees the whole batch's statistics
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((24, 1, 6, 6)), rng.integers(0, 4, 24)
    parallel, single = _model(batch_norm), _model(batch_norm)
    history = xd.fit(parallel, X, y, client=client, n_epochs=2, batch_size=8, n_shards=n_shards)
    expected = single.fit(X, y, 2, 8)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-10)
    for a, b in zip(parallel.layers, single.layers, strict=True):
        for key in a.params:
            np.testing.assert_allclose(a.params[key], b.params[key], rtol=1e-9, atol=1e-12)


def test_lazy_predict_of_a_graph_matches(client):
    model = _model()
    X = np.random.default_rng(1).standard_normal((10, 1, 6, 6))
    out = model.predict(da.from_array(X, chunks=4))
    np.testing.assert_allclose(out.compute(), model.predict(X), rtol=1e-12)
