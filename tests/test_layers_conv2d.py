"""The Conv2D layer: construction checks, initialisation, forward and backward."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import relative_error, requires_torch_reason, to_np, to_xp, torch, torch_conv2d

import xconv
from xconv.functional import conv2d, conv2d_backward
from xconv.layers import Conv2D


def _layer(xp, backend, **kwargs):
    options = {"n_filters": 4, "filter_shape": 3, "input_shape": (2, 7, 6)} | kwargs
    layer = Conv2D(**options)
    layer.initialize(seed=3, dtype="float64", backend=backend)
    return layer


def test_ancestor_defaults():
    layer = Conv2D(16, filter_shape=(3, 3), input_shape=(1, 8, 8))
    assert layer.padding == "same"
    assert layer.stride == (1, 1)
    assert layer.output_shape() == (16, 8, 8)
    assert layer.layer_name() == "Conv2D"
    assert layer.trainable


@pytest.mark.parametrize(
    ("options", "shape"),
    [
        ({"stride": 2}, (4, 4, 3)),  # 'same' at stride 2: ceil(7/2), ceil(6/2)
        ({"stride": 3, "padding": "same"}, (4, 3, 2)),
        ({"padding": "valid"}, (4, 5, 4)),
        ({"padding": 0, "dilation": 2}, (4, 3, 2)),
        ({"padding": ((1, 0), (0, 2)), "filter_shape": (2, 4)}, (4, 7, 5)),
    ],
)
def test_output_shape(options, shape):
    layer = Conv2D(4, options.pop("filter_shape", 3), input_shape=(2, 7, 6), **options)
    assert layer.output_shape() == shape


def test_initialization_uses_fan_in_with_channels(backend):
    layer = Conv2D(64, (3, 3), input_shape=(8, 5, 5), groups=2)
    layer.initialize(seed=0, dtype="float64", backend=backend)
    w = to_np(layer.params["weight"])
    assert w.shape == (64, 4, 3, 3)
    limit = 1 / math.sqrt(4 * 3 * 3)  # fan_in = C // groups * kh * kw
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.95 * limit  # 2304 draws reach near the bound
    np.testing.assert_array_equal(to_np(layer.params["bias"]), np.zeros(64))
    assert layer.parameters() == 64 * 4 * 9 + 64


def test_one_seed_gives_the_same_weights_on_every_backend(backend):
    reference = Conv2D(5, 3, input_shape=(3, 6, 6))
    reference.initialize(seed=42, dtype="float32", backend="numpy")
    layer = Conv2D(5, 3, input_shape=(3, 6, 6))
    layer.initialize(seed=42, dtype="float32", backend=backend)
    np.testing.assert_array_equal(to_np(layer.W), reference.W)
    assert layer.W.dtype == backend.namespace.float32
    assert layer.backend is backend


def test_initialize_uses_the_current_backend(backend):
    layer = Conv2D(2, 3, input_shape=(1, 4, 4))
    with xconv.use_backend(backend.name):
        layer.initialize()
    assert layer.backend is backend
    assert layer.W.dtype == backend.namespace.float32


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"stride": 2, "dilation": (1, 2)},
        {"groups": 2, "padding": "valid"},
        {"use_bias": False, "padding": ((0, 1), (2, 0))},
    ],
    ids=["default", "stride-dilation", "groups", "no-bias-asymmetric"],
)
def test_forward_and_backward_match_the_functional_ops(xp, backend, options):
    layer = _layer(xp, backend, **options)
    x = np.random.default_rng(0).standard_normal((3, 2, 7, 6))
    X = to_xp(x, xp)
    out = layer.forward_pass(X)
    weight_before = to_np(layer.W).copy()
    kwargs = {
        k: options.get(k, d)
        for k, d in (("stride", 1), ("dilation", 1), ("groups", 1), ("padding", "same"))
    }
    expected = conv2d(X, layer.W, layer.w0, **kwargs)
    np.testing.assert_array_equal(to_np(out), to_np(expected))
    grad = np.random.default_rng(1).standard_normal(tuple(out.shape))
    grad_input = layer.backward_pass(to_xp(grad, xp))
    gi, gw, gb = conv2d_backward(to_xp(grad, xp), X, layer.W, bias=layer.use_bias, **kwargs)
    np.testing.assert_allclose(to_np(grad_input), to_np(gi), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_np(layer.grads["weight"]), to_np(gw), rtol=1e-12, atol=1e-12)
    if layer.use_bias:
        np.testing.assert_allclose(to_np(layer.grads["bias"]), to_np(gb), rtol=1e-12)
    else:
        assert "bias" not in layer.grads
        assert layer.w0 is None
    np.testing.assert_array_equal(to_np(layer.W), weight_before)  # no update by itself


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
def test_layer_matches_torch(xp, backend):
    layer = _layer(xp, backend, stride=2)
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 6))
    out = layer.forward_pass(to_xp(x, xp))
    go = np.ones(tuple(out.shape))
    layer.backward_pass(to_xp(go, xp))
    w, b = to_np(layer.W), to_np(layer.w0)
    ref = torch_conv2d(x, w, b, stride=2, padding="same", grad_output=go)
    assert relative_error(to_np(out), ref["out"]) <= 1e-9
    assert relative_error(to_np(layer.grads["weight"]), ref["grad_weight"]) <= 1e-9


def test_built_from_the_first_batch(xp, backend):
    layer = Conv2D(3, 3)
    X = to_xp(np.ones((2, 4, 5, 5)), xp, "float32")
    out = layer.forward_pass(X, training=False)
    assert layer.input_shape == (4, 5, 5)
    assert layer.backend is backend
    assert layer.W.dtype == X.dtype
    assert out.dtype == X.dtype
    assert tuple(out.shape) == (2, 3, 5, 5)


def test_backward_needs_a_training_forward(xp, backend):
    layer = _layer(xp, backend)
    X = to_xp(np.ones((1, 2, 7, 6)), xp)
    with pytest.raises(RuntimeError, match="needs a forward_pass"):
        layer.backward_pass(X)
    out = layer.forward_pass(X, training=False)
    with pytest.raises(RuntimeError, match="needs a forward_pass"):
        layer.backward_pass(out)


def test_wrong_shapes_are_refused(xp, backend):
    layer = _layer(xp, backend)
    with pytest.raises(ValueError, match=r"`X` must have shape \(N, 2, 7, 6\)"):
        layer.forward_pass(to_xp(np.ones((1, 2, 6, 6)), xp))
    out = layer.forward_pass(to_xp(np.ones((1, 2, 7, 6)), xp))
    with pytest.raises(ValueError, match=r"`accum_grad` must have shape \(1, 4, 7, 6\)"):
        layer.backward_pass(to_xp(np.ones((1, 4, 7, 5)), xp))
    assert tuple(out.shape) == (1, 4, 7, 6)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_filters": 0}, ValueError, "`n_filters` must be a positive integer, got 0"),
        ({"n_filters": 2.0}, ValueError, "`n_filters` must be a positive integer, got 2.0"),
        ({"filter_shape": (3, 0)}, ValueError, r"`filter_shape` must be a positive integer"),
        ({"stride": 0}, ValueError, "`stride` must be a positive integer or pair of them, got 0"),
        ({"padding": "full"}, ValueError, "`padding` must be"),
        ({"groups": 3}, ValueError, r"`n_filters` \(=4\) must be divisible by `groups` \(=3\)"),
        ({"groups": 4, "input_shape": (2, 8, 8)}, ValueError, "has 2 channels, not divisible"),
        ({"input_shape": (8, 8)}, ValueError, "`input_shape` must be three positive integers"),
        ({"input_shape": (1, 2, 2), "padding": 0}, ValueError, "kernel spans 3 pixels"),
        ({"use_bias": 1}, TypeError, "`use_bias` must be True or False"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, error, message):
    options = {"n_filters": 4, "filter_shape": 3} | kwargs
    with pytest.raises(error, match=message):
        Conv2D(**options)


def test_initialize_needs_an_input_shape():
    with pytest.raises(ValueError, match="needs its input shape"):
        Conv2D(2, 3).initialize()
    with pytest.raises(ValueError, match="output shape is unknown"):
        Conv2D(2, 3).output_shape()
