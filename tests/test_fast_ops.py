"""NumPy's fast pooling, ReLU and BatchNormalization agree with the generic code.

Each case runs twice, with ``xconv.config.fast_kernels`` on and off, and checks that
the fast path really ran (`_numpy_ops.CALLS`, or the layer's fused cache), so that no
test can pass by silently running the generic code twice. Max pooling's ties go to
the window's first maximum in row-major order, NaN propagates as in the generic code.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import xconv
from xconv.functional import (
    ConvGeometry,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_forward,
    avg_pool2d_gradient,
    leaky_relu,
    leaky_relu_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
    max_pool2d_gradient,
    relu,
    relu_backward,
)
from xconv.functional._kernels._numpy import _ops as _numpy_ops
from xconv.layers import BatchNormalization

DTYPES = [np.float32, np.float64]

#: (H, W), kernel, stride: tiling, tiling with a cropped border, overlapping, 1x1
POOLS = [
    ((8, 8), 2, None),
    ((7, 9), 2, None),
    ((6, 6), 3, None),
    ((5, 7), (2, 3), None),
    ((7, 7), 3, 2),
    ((6, 5), (3, 2), 1),
    ((4, 4), 1, None),
    ((5, 5), 2, 3),
]


def _both(fn, *args, **kwargs):
    """``fn(...)`` with the fast kernels, and with the generic code only."""
    fast = fn(*args, **kwargs)
    with xconv.config.using(fast_kernels=False):
        generic = fn(*args, **kwargs)
    return fast, generic


def _ran(name: str, fn, *args, **kwargs):
    """``fn(...)``, asserting that the fast path `name` ran exactly once."""
    before = _numpy_ops.CALLS[name]
    result = fn(*args, **kwargs)
    assert _numpy_ops.CALLS[name] == before + 1, f"the fast path {name} did not run"
    return result


def _same(fast, generic, dtype, *, exact=False):
    assert fast.dtype == generic.dtype == dtype
    assert fast.shape == generic.shape
    if exact:
        np.testing.assert_array_equal(fast, generic)
    else:
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(fast, generic, rtol=tol, atol=tol)


def _input(shape, dtype, *, seed=0, ties=False, nans=False):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: most windows have several maxima
        x = rng.integers(-2, 2, size=shape).astype(dtype)
    else:
        x = rng.standard_normal(shape).astype(dtype)
    if nans:
        x[rng.random(shape) < 0.05] = np.nan
        x[rng.random(shape) < 0.05] = -np.inf
    return x


# -- pooling ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("size", "kernel", "stride"), POOLS)
@pytest.mark.parametrize("kind", ["plain", "ties", "nans"])
def test_max_pooling_equals_the_generic_code(size, kernel, stride, dtype, kind):
    x = _input((3, 2, *size), dtype, ties=kind == "ties", nans=kind == "nans")
    fast = _ran("max_pool", max_pool2d, x, kernel, stride=stride)
    with xconv.config.using(fast_kernels=False):
        generic = max_pool2d(x, kernel, stride=stride)
    _same(fast, generic, dtype, exact=True)
    grad = _input(fast.shape, dtype, seed=1)
    if kind == "nans":  # a NaN or infinite gradient goes only where the maximum is
        grad[0, 0, 0, 0], grad[-1, -1, -1, -1] = np.nan, np.inf
    fast = _ran("max_pool_backward", max_pool2d_backward, grad, x, kernel, stride=stride)
    with xconv.config.using(fast_kernels=False):
        generic = max_pool2d_backward(grad, x, kernel, stride=stride)
    _same(fast, generic, dtype, exact=stride in (None, kernel))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pooling_ties_go_to_the_first_maximum(dtype):
    x = np.array([[[[1, 3, 0, 0], [3, 2, 0, 0], [np.nan, 5, 7, 7], [1, np.nan, 7, 7]]]], dtype)
    grad = np.array([[[[1, 2], [3, 4]]]], dtype)
    out = _ran("max_pool", max_pool2d, x, 2)
    np.testing.assert_array_equal(out, np.array([[[[3, 0], [np.nan, 7]]]], dtype))
    expected = [[0, 1, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]
    result = _ran("max_pool_backward", max_pool2d_backward, grad, x, 2)
    np.testing.assert_array_equal(result[0, 0], np.array(expected, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pooling_a_tie_and_a_nan_window_together(dtype):
    """Two windows: one with two maxima, one whose maximum is NaN (no pixel equals it),
    so that as many pixels equal their window's maximum as there are windows."""
    x = np.array([[[[1, 3, 0, np.nan], [3, 2, 0, 0]]]], dtype)
    grad = np.array([[[[1, 2]]]], dtype)
    result = _ran("max_pool_backward", max_pool2d_backward, grad, x, 2)
    np.testing.assert_array_equal(result[0, 0], np.array([[0, 1, 0, 2], [0, 0, 0, 0]], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("size", "kernel", "stride"), POOLS)
def test_max_pooling_layer_functions_equal_the_generic_code(size, kernel, stride, dtype):
    x = _input((4, 3, *size), dtype, ties=True)
    geometry = ConvGeometry.for_pooling(size, kernel, stride=stride)
    out, index = _ran("max_pool", max_pool2d_forward, x, geometry=geometry)
    assert isinstance(index, _numpy_ops.MaxPoolIndex)
    grad = _input(out.shape, dtype, seed=2)
    fast = _ran("max_pool_backward", max_pool2d_gradient, grad, index, geometry=geometry)
    with xconv.config.using(fast_kernels=False):
        generic_out, generic_index = max_pool2d_forward(x, geometry=geometry)
        generic = max_pool2d_gradient(grad, generic_index, geometry=geometry)
        # an index from the fast path, its gradient taken with fast kernels switched off
        switched = max_pool2d_gradient(grad, index, geometry=geometry)
    _same(out, generic_out, dtype, exact=True)
    _same(fast, generic, dtype)
    _same(switched, generic, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("size", "kernel", "stride"), POOLS)
def test_avg_pooling_equals_the_generic_code(size, kernel, stride, dtype):
    x = _input((3, 2, *size), dtype, nans=True)
    fast = _ran("avg_pool", avg_pool2d, x, kernel, stride=stride)
    with xconv.config.using(fast_kernels=False):
        generic = avg_pool2d(x, kernel, stride=stride)
    _same(fast, generic, dtype)
    grad = _input(fast.shape, dtype, seed=1)
    fast = _ran("avg_pool_backward", avg_pool2d_backward, grad, x, kernel, stride=stride)
    with xconv.config.using(fast_kernels=False):
        generic = avg_pool2d_backward(grad, x, kernel, stride=stride)
    _same(fast, generic, dtype)
    geometry = ConvGeometry.for_pooling(size, kernel, stride=stride)
    _same(
        _ran("avg_pool", avg_pool2d_forward, x, geometry=geometry),
        avg_pool2d(x, kernel, stride=stride),
        dtype,
        exact=True,
    )
    _same(
        _ran("avg_pool_backward", avg_pool2d_gradient, grad, geometry=geometry),
        fast,
        dtype,
        exact=True,
    )


@pytest.mark.parametrize("padding", [1, "same", ((0, 1), (1, 0))])
def test_padded_pooling_takes_the_generic_path(padding):
    x = _input((2, 2, 5, 5), np.float32)
    before = dict(_numpy_ops.CALLS)
    max_pool2d_backward(np.ones_like(max_pool2d(x, 2, padding=padding)), x, 2, padding=padding)
    avg_pool2d_backward(np.ones_like(avg_pool2d(x, 2, padding=padding)), x, 2, padding=padding)
    assert dict(_numpy_ops.CALLS) == before


def test_other_dtypes_and_switched_off_kernels_take_the_generic_path():
    before = dict(_numpy_ops.CALLS)
    x = _input((2, 2, 4, 4), np.float32)
    max_pool2d(x.astype(np.float16), 2)
    relu(x.astype(np.float16))
    with xconv.config.using(fast_kernels=False):
        max_pool2d(x, 2)
        relu(x)
    assert dict(_numpy_ops.CALLS) == before


def test_large_batches_split_over_threads_and_change_nothing(monkeypatch):
    monkeypatch.setattr(_numpy_ops, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(_numpy_ops._threads, "_threads", lambda: 3)
    monkeypatch.setattr(_numpy_ops._threads, "parallel_chunks", lambda flops: 3)
    spans = []
    real = _numpy_ops._threads.map_threads

    def spy(fn, parts):
        spans.append(list(parts))
        return real(fn, parts)

    monkeypatch.setattr(_numpy_ops._threads, "map_threads", spy)
    x = _input((7, 3, 6, 6), np.float32, ties=True)
    grad = _input((7, 3, 3, 3), np.float32, seed=1)
    for fast, generic in [
        _both(max_pool2d_backward, grad, x, 2),
        _both(avg_pool2d_backward, grad, x, 2),
        _both(relu_backward, x, x),
        _both(leaky_relu, x),
    ]:
        _same(fast, generic, np.float32)
    assert spans
    assert all(s == [(0, 2), (2, 4), (4, 7)] for s in spans)


# -- relu and leaky relu ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (5,), (4, 3), (3, 2, 5, 4)])
def test_relu_equals_the_generic_code(shape, dtype):
    x = _input(shape, dtype, nans=True)
    x[...] = np.where(np.asarray(np.isfinite(x)) & (np.abs(x) < 0.3), 0.0, x)  # some zeros
    fast = _ran("relu", relu, x)
    with xconv.config.using(fast_kernels=False):
        generic = relu(x)
    _same(fast, generic, dtype, exact=True)
    grad = _input(shape, dtype, seed=1, nans=True)  # NaN and inf where x <= 0 give 0
    fast, generic = _both(relu_backward, grad, x)
    _same(fast, generic, dtype, exact=True)
    assert _ran("relu_backward", relu_backward, grad, x) is not None


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # 0 * inf, both paths
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [0.0, 0.2, 1.0, 3.0])
@pytest.mark.parametrize("shape", [(), (7,), (3, 2, 5, 4)])
def test_leaky_relu_equals_the_generic_code(shape, alpha, dtype):
    x = _input(shape, dtype, nans=True)
    fast = _ran("leaky_relu", leaky_relu, x, alpha=alpha)
    with xconv.config.using(fast_kernels=False):
        generic = leaky_relu(x, alpha=alpha)
    _same(fast, generic, dtype, exact=True)
    grad = _input(shape, dtype, seed=1, nans=True)
    fast = _ran("leaky_relu_backward", leaky_relu_backward, grad, x, alpha=alpha)
    with xconv.config.using(fast_kernels=False):
        generic = leaky_relu_backward(grad, x, alpha=alpha)
    _same(fast, generic, dtype, exact=True)


def test_negative_slopes_take_the_generic_path():
    x = _input((4, 5), np.float64)
    before = _numpy_ops.CALLS["leaky_relu"]
    np.testing.assert_array_equal(leaky_relu(x, alpha=-0.5), np.where(x < 0, -0.5 * x, x))
    assert _numpy_ops.CALLS["leaky_relu"] == before


# -- batch normalization ---------------------------------------------------------------


def _batch_norm_run(shape, dtype, *, fast, offset):
    layer = BatchNormalization(momentum=0.9, eps=1e-3, input_shape=shape[1:])
    layer.initialize(dtype=np.dtype(dtype).name)
    rng = np.random.default_rng(3)
    layer.params = {
        "gamma": rng.uniform(0.5, 2, shape[1]).astype(dtype),
        "beta": rng.standard_normal(shape[1]).astype(dtype),
    }
    x = (rng.standard_normal(shape) * 3 + offset).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    with xconv.config.using(fast_kernels=fast):
        out = layer.forward_pass(x)
        fused = type(layer._saved).__name__ == "FusedSaved"
        grad_x = layer.backward_pass(grad)
        grads = dict(layer.grads)
        layer.forward_pass(x * 0.5 + 1)  # a second batch for the running averages
        inference = layer.forward_pass(x, training=False)
    assert fused == fast, "the fused passes must run exactly when fast kernels are on"
    return [out, grad_x, grads["gamma"], grads["beta"], inference, *layer.buffers.values()]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(16, 3, 5, 4), (2, 4, 1, 1), (32, 6)])
@pytest.mark.parametrize("offset", [0.0, 10.0])
def test_batch_normalization_equals_the_generic_code(shape, dtype, offset):
    fast = _batch_norm_run(shape, dtype, fast=True, offset=offset)
    generic = _batch_norm_run(shape, dtype, fast=False, offset=offset)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    for a, b in zip(fast, generic, strict=True):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_batch_normalization_keeps_nan():
    layer = BatchNormalization(input_shape=(2, 2, 2))
    layer.initialize()
    x = np.ones((3, 2, 2, 2), np.float32)
    x[0, 0, 0, 0] = np.nan
    out = layer.forward_pass(x)
    assert np.isnan(out[:, 0]).all()
    assert np.isfinite(out[:, 1]).all()


@pytest.mark.parametrize("fast", [True, False])
def test_batch_normalization_refuses_a_gradient_of_another_kind(fast):
    layer = BatchNormalization(input_shape=(3,))
    layer.initialize(dtype="float64")
    x = np.random.default_rng(0).standard_normal((8, 3))
    with xconv.config.using(fast_kernels=fast):
        layer.forward_pass(x)
        with pytest.raises(TypeError, match="different dtypes"):
            layer.backward_pass(x.astype(np.float32))
        with pytest.raises(ValueError, match="accum_grad"):
            layer.backward_pass(x[:4])


@pytest.mark.parametrize("kind", list(itertools.product(["max", "avg"], DTYPES)))
def test_pooling_layers_take_the_fast_path(kind):
    name, dtype = kind
    layer = (xconv.layers.MaxPooling2D if name == "max" else xconv.layers.AveragePooling2D)(
        2, input_shape=(2, 6, 6)
    )
    layer.initialize(dtype=np.dtype(dtype).name)
    x = _input((3, 2, 6, 6), dtype, ties=True)
    out = _ran(f"{name}_pool", layer.forward_pass, x)
    fast = _ran(f"{name}_pool_backward", layer.backward_pass, np.ones_like(out))
    with xconv.config.using(fast_kernels=False):
        layer.forward_pass(x)
        generic = layer.backward_pass(np.ones_like(out))
    _same(fast, generic, dtype, exact=True)
