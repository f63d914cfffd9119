"""Parameter-free layers: pooling, Activation, Flatten, Reshape, ZeroPadding2D, UpSampling2D."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import layer_gradient_check, to_np, to_xp

import xconv.functional as xf
from xconv.layers import (
    Activation,
    AveragePooling2D,
    Flatten,
    MaxPooling2D,
    Reshape,
    UpSampling2D,
    ZeroPadding2D,
)

ACTIVATION_NAMES = ["relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh", "softplus", "softmax"]


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- pooling --------------------------------------------------------------------------

POOLING = {"max": (MaxPooling2D, xf.max_pool2d, xf.max_pool2d_backward)}
POOLING["average"] = (AveragePooling2D, xf.avg_pool2d, xf.avg_pool2d_backward)


@pytest.mark.parametrize("kind", list(POOLING))
@pytest.mark.parametrize(
    ("options", "shape"),
    [
        ({}, (3, 3, 4)),  # 2x2 windows, stride 2 (not the ancestor's 1)
        ({"pool_shape": 3}, (3, 2, 2)),
        ({"pool_shape": 3, "stride": 1}, (3, 5, 6)),
        ({"pool_shape": 3, "stride": 2, "padding": "same"}, (3, 4, 4)),
        ({"pool_shape": (2, 3), "padding": ((1, 0), (0, 2))}, (3, 4, 3)),
    ],
)
def test_pooling_output_shape(xp, kind, options, shape):
    layer = POOLING[kind][0](input_shape=(3, 7, 8), **options)
    assert layer.output_shape() == shape
    assert layer.parameters() == 0
    assert layer.stride == layer.pool_shape or "stride" in options


@pytest.mark.parametrize("kind", list(POOLING))
@pytest.mark.parametrize(
    "options",
    [{}, {"pool_shape": 3, "stride": 2, "padding": "same"}, {"pool_shape": (2, 3), "stride": 1}],
    ids=["default", "same-stride2", "overlapping"],
)
def test_pooling_matches_the_functional_ops(xp, kind, options):
    layer_class, forward, backward = POOLING[kind]
    layer = layer_class(**options)
    x = _data((2, 3, 7, 6))
    X = to_xp(x, xp)
    out = layer.forward_pass(X)  # no initialize(): follows X
    kwargs = {
        "stride": options.get("stride"),
        "padding": options.get("padding", "valid"),
        # (the layer keeps Keras' averages over real pixels)
        **({"count_include_pad": False} if kind == "average" else {}),
    }
    kernel = options.get("pool_shape", 2)
    np.testing.assert_array_equal(to_np(out), to_np(forward(X, kernel, **kwargs)))
    grad = to_xp(_data(tuple(out.shape), seed=1), xp)
    expected = backward(grad, X, kernel, **kwargs)
    np.testing.assert_array_equal(to_np(layer.backward_pass(grad)), to_np(expected))
    assert layer.input_shape == (3, 7, 6)


@pytest.mark.parametrize("kind", list(POOLING))
def test_pooling_gradient_matches_finite_differences(xp, kind):
    # one channel: finite differences cost two forward passes per input element
    layer = POOLING[kind][0](3, stride=2, padding="same", input_shape=(1, 5, 4))
    assert layer_gradient_check(layer, _data((1, 1, 5, 4), seed=2), xp) < 1e-8


def test_max_pooling_by_hand(xp):
    x = np.array([[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 8.0]])[None, None]
    layer = MaxPooling2D(input_shape=(1, 2, 4))
    out = layer.forward_pass(to_xp(x, xp))
    np.testing.assert_array_equal(to_np(out), [[[[5.0, 8.0]]]])
    grad = layer.backward_pass(to_xp(np.array([[[[1.0, 2.0]]]]), xp))
    # the tie 8, 8 sends the gradient to the first one
    np.testing.assert_array_equal(to_np(grad)[0, 0], [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])


def test_average_pooling_by_hand(xp):
    x = np.array([[1.0, 5.0, 2.0], [3.0, 4.0, 8.0]])[None, None]
    layer = AveragePooling2D(padding="same")
    out = layer.forward_pass(to_xp(x, xp))
    # windows {1, 5, 3, 4} and {2, 8}: padding is not counted
    np.testing.assert_array_equal(to_np(out), [[[[3.25, 5.0]]]])


# -- Activation -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_matches_the_functional_op(xp, name):
    layer = Activation(name)
    x = _data((4, 5))
    X = to_xp(x, xp)
    out = layer.forward_pass(X)
    functions = xf.get_activation(name)
    expected = functions.forward(X)
    np.testing.assert_array_equal(to_np(out), to_np(expected))
    grad = to_xp(_data((4, 5), seed=1), xp)
    saved = X if functions.saved == "input" else expected
    np.testing.assert_array_equal(
        to_np(layer.backward_pass(grad)), to_np(functions.backward(grad, saved))
    )
    assert layer.output_shape() == (5,)
    assert layer.layer_name() == f"Activation ({name})"


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_gradient_matches_finite_differences(xp, name):
    x = _data((3, 4), seed=2)
    x = np.where(np.abs(x) < 1e-3, 0.5, x)  # keep away from the kinks at 0
    assert layer_gradient_check(Activation(name, input_shape=(4,)), x, xp) < 1e-8


def test_activation_on_images_and_softmax_over_the_last_axis(xp):
    layer = Activation("softmax", input_shape=(2, 3, 4))
    out = to_np(layer.forward_pass(to_xp(_data((2, 2, 3, 4)), xp)))
    np.testing.assert_allclose(out.sum(axis=-1), np.ones((2, 2, 3)), rtol=1e-12)
    assert layer.output_shape() == (2, 3, 4)


def test_unknown_activation_fails_at_construction(xp):
    with pytest.raises(ValueError, match="`name` must be one of 'elu', 'leaky_relu', 'relu'"):
        Activation("swish")


# -- Flatten and Reshape --------------------------------------------------------------


def test_flatten(xp):
    layer = Flatten(input_shape=(2, 3, 4))
    assert layer.output_shape() == (24,)
    x = _data((5, 2, 3, 4))
    out = layer.forward_pass(to_xp(x, xp))
    np.testing.assert_array_equal(to_np(out), x.reshape(5, 24))
    grad = _data((5, 24), seed=1)
    np.testing.assert_array_equal(
        to_np(layer.backward_pass(to_xp(grad, xp))), grad.reshape(5, 2, 3, 4)
    )
    assert layer_gradient_check(Flatten(), _data((2, 2, 2, 3)), xp) < 1e-8


@pytest.mark.parametrize(
    ("shape", "input_shape", "output_shape"),
    [((6, 2), (3, 4), (6, 2)), ((-1,), (2, 3, 2), (12,)), ((2, -1, 3), (12,), (2, 2, 3))],
)
def test_reshape(xp, shape, input_shape, output_shape):
    layer = Reshape(shape, input_shape=input_shape)
    assert layer.output_shape() == output_shape
    x = _data((3, *input_shape))
    out = layer.forward_pass(to_xp(x, xp))
    np.testing.assert_array_equal(to_np(out), x.reshape(3, *output_shape))
    assert layer_gradient_check(Reshape(shape), x, xp) < 1e-8


# -- ZeroPadding2D --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("padding", "pads"),
    [(1, ((1, 1), (1, 1))), ((2, 0), ((2, 2), (0, 0))), (((0, 1), (3, 2)), ((0, 1), (3, 2)))],
)
def test_zero_padding(xp, padding, pads):
    layer = ZeroPadding2D(padding, input_shape=(2, 3, 4))
    (top, bottom), (left, right) = pads
    assert layer.output_shape() == (2, 3 + top + bottom, 4 + left + right)
    x = _data((2, 2, 3, 4))
    out = layer.forward_pass(to_xp(x, xp))
    np.testing.assert_array_equal(to_np(out), np.pad(x, ((0, 0), (0, 0), *pads)))
    grad = _data(tuple(out.shape), seed=1)
    expected = grad[:, :, top : top + 3, left : left + 4]
    np.testing.assert_array_equal(to_np(layer.backward_pass(to_xp(grad, xp))), expected)
    assert layer_gradient_check(ZeroPadding2D(padding), x, xp) < 1e-8


def test_zero_padding_of_an_empty_batch(xp):
    out = ZeroPadding2D(1).forward_pass(to_xp(np.zeros((0, 2, 3, 3)), xp))
    assert tuple(out.shape) == (0, 2, 5, 5)


# -- UpSampling2D ---------------------------------------------------------------------


def test_upsampling_repeats_forward_and_sums_backward(xp):
    x = np.array([[1.0, 2.0], [3.0, 4.0]])[None, None]
    layer = UpSampling2D(input_shape=(1, 2, 2))
    assert layer.output_shape() == (1, 4, 4)
    out = layer.forward_pass(to_xp(x, xp))
    np.testing.assert_array_equal(to_np(out)[0, 0], np.repeat(np.repeat(x[0, 0], 2, 0), 2, 1))
    grad = np.arange(16.0).reshape(1, 1, 4, 4)
    # each input pixel gets the sum of its 2x2 block (the ancestor took one element)
    expected = [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]]
    np.testing.assert_array_equal(to_np(layer.backward_pass(to_xp(grad, xp)))[0, 0], expected)


@pytest.mark.parametrize("size", [(2, 3), 3, (1, 2)])
def test_upsampling_gradient_matches_finite_differences(xp, size):
    layer = UpSampling2D(size)
    assert layer_gradient_check(layer, _data((2, 2, 2, 3)), xp) < 1e-8
    sh, sw = (size, size) if isinstance(size, int) else size
    assert layer.output_shape() == (2, 2 * sh, 3 * sw)


# -- what all parameter-free layers share ---------------------------------------------


# fresh layers for every test and backend (a layer keeps state between calls)
MAKERS = {
    "MaxPooling2D": MaxPooling2D,
    "AveragePooling2D": AveragePooling2D,
    "Activation": lambda: Activation("tanh"),
    "Flatten": Flatten,
    "Reshape": lambda: Reshape((-1,)),
    "ZeroPadding2D": lambda: ZeroPadding2D(1),
    "UpSampling2D": UpSampling2D,
}


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
def test_initialize_is_enough_and_optional(xp, backend, make):
    layer = make()
    X = to_xp(_data((2, 3, 4, 4)), xp, "float32")
    out = layer.forward_pass(X)  # before initialize(): builds from X
    layer.initialize(backend=backend)
    assert layer.backend is backend
    assert layer.parameters() == 0
    assert layer.params == {}
    again = layer.forward_pass(X)
    assert again.dtype == X.dtype
    np.testing.assert_array_equal(to_np(again), to_np(out))
    grad = layer.backward_pass(again)
    assert tuple(grad.shape) == (2, 3, 4, 4)
    assert grad.dtype == X.dtype


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
def test_backward_needs_a_training_forward(xp, make):
    layer = make()
    X = to_xp(_data((2, 3, 4, 4)), xp)
    with pytest.raises(RuntimeError, match="needs a forward_pass"):
        layer.backward_pass(X)
    out = layer.forward_pass(X, training=False)
    with pytest.raises(RuntimeError, match="needs a forward_pass"):
        layer.backward_pass(out)
    out = layer.forward_pass(X)
    layer.backward_pass(out)
    with pytest.raises(RuntimeError, match="needs a forward_pass"):
        layer.backward_pass(out)  # what the forward pass kept is freed


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
def test_wrong_shapes_are_refused(xp, make):
    layer = make()
    layer.set_input_shape((3, 4, 4))
    with pytest.raises(ValueError, match=r"`X` must have shape \(N, 3, 4, 4\)"):
        layer.forward_pass(to_xp(np.zeros((2, 3, 4, 6)), xp))
    out = layer.forward_pass(to_xp(np.zeros((2, 3, 4, 4)), xp))
    with pytest.raises(ValueError, match=r"`accum_grad` must have shape \(2, "):
        layer.backward_pass(to_xp(np.zeros((3, *out.shape[1:])), xp))
    with pytest.raises(TypeError, match="arrays of different dtypes"):
        layer.backward_pass(to_xp(np.zeros(tuple(out.shape)), xp, "float32"))


def test_image_layers_want_images(xp):
    X = to_xp(np.zeros((2, 4, 4)), xp)
    for layer in (MaxPooling2D(), ZeroPadding2D(1), UpSampling2D()):
        with pytest.raises(ValueError, match=r"`X` must be a 4-D array \(N, C, H, W\)"):
            layer.forward_pass(X)
    with pytest.raises(ValueError, match="`X` must have a batch axis and at least one more"):
        Flatten().forward_pass(to_xp(np.zeros(3), xp))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: MaxPooling2D(0), ValueError, "`pool_shape` must be a positive integer or pair"),
        (lambda: AveragePooling2D((2, "2")), TypeError, "`pool_shape` must be a positive"),
        (lambda: MaxPooling2D(stride=0), ValueError, "`stride` must be a positive integer"),
        (lambda: AveragePooling2D(padding="full"), ValueError, "`padding` must be"),
        (
            lambda: MaxPooling2D(2, padding=2, input_shape=(1, 6, 6)),
            ValueError,
            "`padding` .* leaves pooling windows with no input pixel",
        ),
        (
            lambda: MaxPooling2D(input_shape=(6, 6)),
            ValueError,
            r"`input_shape` must be 3 positive integers \(C, H, W\), got \(6, 6\)",
        ),
        (
            lambda: AveragePooling2D(3, input_shape=(1, 2, 6)),
            ValueError,
            "the kernel spans 3 pixels along the height",
        ),
        (lambda: Flatten(input_shape=(0, 3)), ValueError, "`input_shape` must be a non-empty"),
        (lambda: Reshape((2, 0)), ValueError, "`shape` must be a non-empty tuple of positive"),
        (lambda: Reshape((-1, -1)), ValueError, "`shape` must be a non-empty tuple"),
        (lambda: Reshape(5), ValueError, "`shape` must be a non-empty tuple"),
        (
            lambda: Reshape((5, -1), input_shape=(3, 4)),
            ValueError,
            r"`shape` \(=\(5, -1\)\) cannot hold the 12 elements",
        ),
        (lambda: ZeroPadding2D(-1), ValueError, "`padding` must be a non-negative integer"),
        (lambda: ZeroPadding2D("same"), TypeError, "`padding` must be a non-negative integer"),
        (lambda: ZeroPadding2D(((1, 2), (3, -1))), ValueError, r"got \(\(1, 2\), \(3, -1\)\)"),
        (lambda: UpSampling2D(0), ValueError, "`size` must be a positive integer or pair"),
        (lambda: UpSampling2D((2, 2, 2)), TypeError, "`size` must be a positive integer or pair"),
    ],
)
def test_bad_arguments_fail_at_construction(xp, make, error, message):
    with pytest.raises(error, match=message):
        make()
