"""None or a non-array where an op wants an array is a TypeError naming the argument
(issue #25), from the one check every op uses, `namespace_of`."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import to_xp

import xconv.functional as xf


@pytest.fixture
def arrays(xp):
    x = to_xp(np.zeros((1, 2, 4, 4)), xp)
    w = to_xp(np.zeros((3, 2, 3, 3)), xp)
    wt = to_xp(np.zeros((2, 3, 3, 3)), xp)
    return x, w, wt


# (call, the argument the message must name); the cases first
CALLS = {
    "conv2d(None, w)": (lambda x, w, wt: xf.conv2d(None, w), "x"),
    "conv_transpose2d(x, None)": (lambda x, w, wt: xf.conv_transpose2d(x, None), "weight"),
    "conv2d_backward(None, x, w)": (
        lambda x, w, wt: xf.conv2d_backward(None, x, w),
        "grad_output",
    ),
    "relu_backward(x, None)": (lambda x, w, wt: xf.relu_backward(x, None), "x"),
    "max_pool2d(None, 2)": (lambda x, w, wt: xf.max_pool2d(None, 2), "x"),
    "avg_pool2d_backward(x, None, 2)": (
        lambda x, w, wt: xf.avg_pool2d_backward(x, None, 2),
        "x",
    ),
    "conv2d(list, w)": (lambda x, w, wt: xf.conv2d([[1.0]], w), "x"),
    "conv2d(x, float)": (lambda x, w, wt: xf.conv2d(x, 1.0), "weight"),
    "im2col(None, 3)": (lambda x, w, wt: xf.im2col(None, 3), "x"),
    "softmax(None)": (lambda x, w, wt: xf.softmax(None), "x"),
    "linear(x, None)": (lambda x, w, wt: xf.linear(x, None), "weight"),
    "layer_norm(None, 4)": (lambda x, w, wt: xf.layer_norm(None, 4), "x"),
    "mse_loss(x, None)": (lambda x, w, wt: xf.mse_loss(x, None), "target"),
    "interpolate(None, size=2)": (lambda x, w, wt: xf.interpolate(None, size=2), "x"),
    "pad(None, (1, 1))": (lambda x, w, wt: xf.pad(None, (1, 1)), "x"),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_missing_array_is_a_type_error_naming_the_argument(arrays, call):
    fn, name = CALLS[call]
    with pytest.raises(TypeError, match=f"^`{name}` must be an array, got "):
        fn(*arrays)


def test_a_missing_bias_is_still_no_bias(arrays, xp):
    x, w, _ = arrays
    out = xf.conv2d(x, w, None)
    assert tuple(out.shape) == (1, 3, 2, 2)
