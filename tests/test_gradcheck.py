"""Every gradient against central finite differences in float64, on every backend: each
functional op, each layer (input and parameters) and each loss, through one helper
(`gradient_errors` in helpers.py, with its layer and op front ends)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import gradient_errors, layer_gradient_errors, op_gradient_errors, to_np, to_xp

import xconv.functional as xf
from xconv import losses
from xconv.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Conv2DTranspose,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    Reshape,
    UpSampling2D,
    ZeroPadding2D,
)

TOLERANCE = 1e-7  # finite differences with eps 1e-6 in float64 are good to ~1e-9


def _normal(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _away_from_zero(shape, seed=0):
    """Samples at least 0.1 from the kinks of relu, leaky_relu and elu at 0."""
    x = _normal(shape, seed)
    return np.where(np.abs(x) < 0.1, 0.5, x)


#: libraries where every call costs milliseconds (JAX dispatch, Dask graphs) are checked
#: along random directions; the others at every element (see helpers.gradient_errors)
SLOW_CALLS = {"jax": 6, "dask": 6, "cupy": 6}


@pytest.fixture
def directions(backend):
    """None (every element) or the number of random directions to check along."""
    return SLOW_CALLS.get(backend.name)


def _assert_small(errors):
    assert max(errors.values()) < TOLERANCE, errors


# -- functional ops -----------------------------------------------------------------------

CONV_OPTIONS = {
    "plain": ({}, (2, 2, 3, 3), (2, 2, 2, 2)),
    "stride-same": ({"stride": 2, "padding": "same"}, (1, 1, 5, 4), (2, 1, 2, 3)),
    "dilated-padded": ({"dilation": 2, "padding": ((1, 0), (2, 1))}, (1, 1, 4, 3), (1, 1, 2, 2)),
    "groups": ({"groups": 2, "padding": 1}, (1, 4, 2, 2), (2, 2, 2, 2)),
}


@pytest.mark.parametrize("case", list(CONV_OPTIONS))
def test_conv2d_wrt_input_weight_and_bias(xp, directions, case):
    options, x_shape, w_shape = CONV_OPTIONS[case]
    point = {"x": _normal(x_shape), "weight": _normal(w_shape, 1), "bias": _normal(w_shape[0], 2)}

    def backward(grad, x, weight, bias):
        gx, gw, gb = xf.conv2d_backward(grad, x, weight, **options)
        return {"x": gx, "weight": gw, "bias": gb}

    def forward(x, weight, bias):
        return xf.conv2d(x, weight, bias, **options)

    _assert_small(op_gradient_errors(forward, backward, point, xp, directions=directions))


TRANSPOSE_OPTIONS = {
    "plain": ({}, (1, 2, 2, 3), (2, 2, 2, 2)),
    "stride-output-padding": ({"stride": 2, "output_padding": 1}, (1, 2, 2, 2), (2, 1, 3, 2)),
    "same-groups": ({"stride": 2, "padding": "same", "groups": 2}, (1, 2, 2, 2), (2, 1, 3, 2)),
}


@pytest.mark.parametrize("case", list(TRANSPOSE_OPTIONS))
def test_conv_transpose2d_wrt_input_weight_and_bias(xp, directions, case):
    options, x_shape, w_shape = TRANSPOSE_OPTIONS[case]
    groups = options.get("groups", 1)
    point = {
        "x": _normal(x_shape),
        "weight": _normal(w_shape, 1),
        "bias": _normal(w_shape[1] * groups, 2),
    }

    def forward(x, weight, bias):
        return xf.conv_transpose2d(x, weight, bias, **options)

    def backward(grad, x, weight, bias):
        gx, gw, gb = xf.conv_transpose2d_backward(grad, x, weight, **options)
        return {"x": gx, "weight": gw, "bias": gb}

    _assert_small(op_gradient_errors(forward, backward, point, xp, directions=directions))


POOL_OPTIONS = {
    "default": {"kernel_size": 2},
    "same-stride": {"kernel_size": 3, "stride": 2, "padding": "same"},
}


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", list(POOL_OPTIONS))
def test_pooling(xp, directions, kind, case):
    options = POOL_OPTIONS[case]
    forward = getattr(xf, f"{kind}_pool2d")
    backward = getattr(xf, f"{kind}_pool2d_backward")
    point = {"x": _normal((1, 2, 5, 4))}  # distinct values: no ties inside a window
    _assert_small(
        op_gradient_errors(
            lambda x: forward(x, **options),
            lambda grad, x: {"x": backward(grad, x, **options)},
            point,
            xp,
            directions=directions,
        )
    )


@pytest.mark.parametrize("name", sorted(xf.ACTIVATIONS))
def test_activations(xp, directions, name):
    functions = xf.get_activation(name)

    def backward(grad, x):
        saved = x if functions.saved == "input" else functions.forward(x)
        return {"x": functions.backward(grad, saved)}

    point = {"x": _away_from_zero((2, 4)) * 2}
    _assert_small(
        op_gradient_errors(
            lambda x: functions.forward(x), backward, point, xp, directions=directions
        )
    )


@pytest.mark.parametrize("axis", [0, -1])
def test_log_softmax(xp, directions, axis):
    def backward(grad, x):
        return {"x": xf.log_softmax_backward(grad, xf.log_softmax(x, axis=axis), axis=axis)}

    point = {"x": _normal((2, 3))}
    _assert_small(
        op_gradient_errors(
            lambda x: xf.log_softmax(x, axis=axis), backward, point, xp, directions=directions
        )
    )


def test_im2col_and_col2im_are_each_others_gradient(xp, directions):
    options = {"stride": 2, "padding": 1, "dilation": 1}
    _assert_small(
        op_gradient_errors(
            lambda x: xf.im2col(x, 3, **options),
            lambda grad, x: {"x": xf.col2im(grad, (5, 4), 3, **options)},
            {"x": _normal((1, 1, 5, 4))},
            xp,
            directions=directions,
        )
    )
    _assert_small(
        op_gradient_errors(
            lambda cols: xf.col2im(cols, (5, 4), 3, **options),
            lambda grad, cols: {"cols": xf.im2col(grad, 3, **options)},
            {"cols": _normal((1, 9, 6))},
            xp,
            directions=directions,
        )
    )


# -- layers -------------------------------------------------------------------------------

LAYERS = {
    "Conv2D": (lambda: Conv2D(2, 3, padding="same", stride=2), (2, 1, 4, 3)),
    "Conv2DTranspose": (lambda: Conv2DTranspose(2, 3, stride=2, padding="same"), (1, 2, 2, 2)),
    "Dense": (lambda: Dense(2), (3, 4)),
    "MaxPooling2D": (lambda: MaxPooling2D(2), (1, 2, 4, 5)),
    "AveragePooling2D": (lambda: AveragePooling2D(3, stride=2, padding="same"), (1, 2, 5, 4)),
    "BatchNormalization-conv": (lambda: BatchNormalization(), (3, 2, 2, 2)),
    "BatchNormalization-dense": (lambda: BatchNormalization(), (4, 3)),
    "Dropout": (lambda: Dropout(0.4), (3, 5)),
    "Flatten": (lambda: Flatten(), (2, 1, 2, 3)),
    "Reshape": (lambda: Reshape((3, -1)), (2, 1, 2, 3)),
    "ZeroPadding2D": (lambda: ZeroPadding2D(((1, 0), (2, 1))), (2, 1, 3, 2)),
    "UpSampling2D": (lambda: UpSampling2D((2, 3)), (2, 1, 2, 2)),
    # the layer calls the functions tested above: one that keeps its input, one its output
    "Activation-relu": (lambda: Activation("relu"), (2, 3)),
    "Activation-softmax": (lambda: Activation("softmax"), (2, 3)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_wrt_input_and_parameters(xp, backend, directions, name):
    make, shape = LAYERS[name]
    layer = make()
    layer.set_input_shape(shape[1:])
    layer.initialize(seed=3, dtype="float64", backend=backend)
    if isinstance(layer, BatchNormalization):  # not the trivial gamma = 1, beta = 0
        layer.params = {
            "gamma": to_xp(_normal(shape[1], 4) + 2, xp),
            "beta": to_xp(_normal(shape[1], 5), xp),
        }
    errors = layer_gradient_errors(layer, _away_from_zero(shape), xp, directions=directions)
    assert set(errors) == {"X", *layer.params}
    _assert_small(errors)


def test_dropout_mask_is_fixed_during_the_check(xp, backend):
    """The check above is meaningful for Dropout: its mask drops something."""
    layer = Dropout(0.4, input_shape=(6,))
    layer.initialize(seed=3, dtype="float64", backend=backend)
    out = to_np(layer.forward_pass(to_xp(np.ones((4, 6)), xp)))
    assert (out == 0).any()
    assert (out != 0).any()


# -- losses -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cross_entropy", "square_loss"])
def test_losses_wrt_predictions(xp, directions, name):
    loss = losses.get(name)
    rng = np.random.default_rng(0)
    y = np.eye(3)[rng.integers(0, 3, 4)]
    p = rng.uniform(0.1, 0.9, (4, 3))
    errors = gradient_errors(
        lambda arrays: float(to_np(loss.loss(to_xp(y, xp), to_xp(arrays["p"], xp)))),
        {"p": p},
        {"p": loss.gradient(to_xp(y, xp), to_xp(p, xp))},
        directions=directions,
    )
    _assert_small(errors)
