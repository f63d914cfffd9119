"""Dask arrays chunked along the batch: xconv's ops and layers build graphs, compute
nothing, keep every batch chunk apart, and give NumPy's numbers.

Dask-specific, so these tests do not take the `xp` fixture; they run where Dask is
installed (the `dask` nox session).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import xconv
from xconv.functional import (
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from xconv.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
)

dask = pytest.importorskip("dask", reason="Dask is not installed (pip install 'xconv[dask]')")
da = pytest.importorskip("dask.array", reason="dask.array needs dask[array]")
from dask.core import get_dependencies  # noqa: E402

CHUNK = 2  # samples per batch chunk
N = 3 * CHUNK


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("xconv computed a Dask graph while building it")


def _chunked(a: np.ndarray) -> Any:
    return da.from_array(a, chunks=(CHUNK, *a.shape[1:]))


def _input_chunks_reached(out: Any, sources: tuple[Any, ...]) -> list[set[int]]:
    """For each batch chunk of `out`, the batch chunks of `sources` its value depends on."""
    names = {source.name for source in sources}
    graph = dict(out.__dask_graph__())
    reached = []
    for i in range(out.numblocks[0]):
        key = (out.name, i, *([0] * (out.ndim - 1)))
        seen, todo, found = set(), [key], set()
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            if isinstance(current, tuple) and current[0] in names:
                found.add(current[1])
            todo.extend(get_dependencies(graph, current))
        reached.append(found)
    return reached


def _assert_batch_chunks_kept(out: Any, *sources: Any) -> None:
    """`out` has the batch chunks of `sources`, and its chunk i reads their chunk i only."""
    assert isinstance(out, da.Array)
    assert all(out.chunks[0] == source.chunks[0] for source in sources)
    expected = [{i} for i in range(out.numblocks[0])]
    assert _input_chunks_reached(out, sources) == expected


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_conv2d_and_its_backward_stay_lazy_chunkwise_and_match_numpy():
    rng = _rng()
    x, w, b = rng.normal(size=(N, 3, 7, 7)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    g = rng.normal(size=(N, 4, 4, 4))
    X, G = _chunked(x), _chunked(g)
    W, B = da.from_array(w), da.from_array(b)
    options = {"stride": 2, "padding": "same", "dilation": 1}
    with dask.config.set(scheduler=_refuse):
        out = conv2d(X, W, B, **options)
        grads = conv2d_backward(G, X, W, **options)
    _assert_batch_chunks_kept(out, X)
    _assert_batch_chunks_kept(grads[0], X, G)
    expected = (conv2d(x, w, b, **options), *conv2d_backward(g, x, w, **options))
    for actual, reference in zip((out, *grads), expected, strict=True):
        np.testing.assert_allclose(actual.compute(), reference, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    ("forward", "backward", "padding"),
    [
        (avg_pool2d, avg_pool2d_backward, "same"),
        (max_pool2d, max_pool2d_backward, 0),
        (max_pool2d, max_pool2d_backward, "same"),
    ],
    ids=["avg-same", "max-valid", "max-same"],
)
def test_pooling_and_its_backward_stay_lazy_chunkwise_and_match_numpy(forward, backward, padding):
    rng = _rng()
    x = rng.normal(size=(N, 2, 5, 5))
    X = _chunked(x)
    options = {"stride": 2, "padding": padding}
    out_np = forward(x, 3, **options)
    g = rng.normal(size=out_np.shape)
    with dask.config.set(scheduler=_refuse):
        out = forward(X, 3, **options)
        grad = backward(G := _chunked(g), X, 3, **options)
    _assert_batch_chunks_kept(out, X)
    _assert_batch_chunks_kept(grad, X, G)
    np.testing.assert_allclose(out.compute(), out_np, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(grad.compute(), backward(g, x, 3, **options), rtol=1e-13)


def _layers() -> list[Any]:
    return [
        Conv2D(4, 3, input_shape=(2, 6, 6), padding="same"),
        Activation("relu"),
        AveragePooling2D(2),
        Conv2D(3, 2, padding="valid", stride=1),
        MaxPooling2D(2),
        Flatten(),
        Dropout(0.3),
        Dense(5),
        Activation("softmax"),
    ]


def _run(layers: list[Any], x: Any, grad: Any, training: bool) -> tuple[Any, Any, list[Any]]:
    for layer in layers:
        x = layer.forward_pass(x, training=training)
    out = x
    for layer in reversed(layers):
        grad = layer.backward_pass(grad)
    return out, grad, [g for layer in layers for g in layer.grads.values()]


def _built(backend: str) -> list[Any]:
    layers = _layers()
    shape: tuple[int, ...] = (2, 6, 6)
    for seed, layer in enumerate(layers):
        layer.set_input_shape(shape)
        layer.initialize(seed=seed, dtype="float64", backend=backend)
        shape = layer.output_shape()
    return layers


def test_layers_forward_and_backward_stay_lazy_chunkwise_and_match_numpy():
    rng = _rng()
    x, g = rng.normal(size=(N, 2, 6, 6)), rng.normal(size=(N, 5))
    X = _chunked(x)
    with dask.config.set(scheduler=_refuse):
        out, grad_input, grads = _run(_built("dask"), X, G := _chunked(g), training=True)
    _assert_batch_chunks_kept(out, X)
    _assert_batch_chunks_kept(grad_input, X, G)
    expected = _run(_built("numpy"), x, g, training=True)
    np.testing.assert_allclose(out.compute(), expected[0], rtol=1e-12)
    np.testing.assert_allclose(grad_input.compute(), expected[1], rtol=1e-12, atol=1e-15)
    assert len(grads) == len(expected[2]) == 6
    for actual, reference in zip(dask.compute(*grads), expected[2], strict=True):
        np.testing.assert_allclose(actual, reference, rtol=1e-12, atol=1e-15)


def test_batch_normalization_stays_lazy_and_keeps_the_batch_chunks():
    # its statistics run over the whole batch, so every output chunk reads every input chunk
    rng = _rng()
    x, g = rng.normal(size=(N, 3, 4, 4)), rng.normal(size=(N, 3, 4, 4))
    layers = {}
    for name in ("dask", "numpy"):
        layers[name] = BatchNormalization(input_shape=(3, 4, 4))
        layers[name].initialize(dtype="float64", backend=name)
    X = _chunked(x)
    with dask.config.set(scheduler=_refuse):
        out = layers["dask"].forward_pass(X)
        grad = layers["dask"].backward_pass(_chunked(g))
    assert out.chunks[0] == grad.chunks[0] == X.chunks[0]
    np.testing.assert_allclose(out.compute(), layers["numpy"].forward_pass(x), rtol=1e-12)
    np.testing.assert_allclose(grad.compute(), layers["numpy"].backward_pass(g), rtol=1e-11)


def test_without_fast_kernels_the_generic_code_runs_and_agrees():
    x = _chunked(_rng().normal(size=(N, 1, 4, 4)))
    w = da.from_array(np.ones((1, 1, 3, 3)))
    chunkwise = conv2d(x, w, padding=1)
    assert chunkwise.chunks[0] == x.chunks[0]
    with xconv.config.using(fast_kernels=False):
        generic = conv2d(x, w, padding=1)
    np.testing.assert_allclose(generic.compute(), chunkwise.compute(), rtol=1e-12)


def test_model_predict_on_a_dask_array_is_lazy_and_exact():
    from xconv import NeuralNetwork

    model = NeuralNetwork("adam", "cross_entropy", seed=0, dtype="float64")
    model.add(Conv2D(4, (3, 3), input_shape=(2, 6, 6)))
    model.add(Activation("relu"))
    model.add(Flatten())
    model.add(Dense(3))
    model.add(Activation("softmax"))
    X = np.random.default_rng(0).standard_normal((N, 2, 6, 6))
    with dask.config.set(scheduler=_refuse):
        lazy = model.predict(_chunked(X))
    assert isinstance(lazy, da.Array)
    assert lazy.chunks[0] == _chunked(X).chunks[0]
    np.testing.assert_allclose(lazy.compute(), model.predict(X), rtol=1e-12, atol=1e-12)
