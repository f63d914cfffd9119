"""conv2d and conv2d_backward against PyTorch, direct loops, finite differences and by hand."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import pytest
from helpers import (
    F,
    loop_conv2d,
    numerical_gradient,
    relative_error,
    requires_torch_reason,
    to_np,
    to_xp,
    torch,
    torch_conv2d,
)

from xconv.functional import conv2d, conv2d_backward

pytestmark = pytest.mark.skipif(torch is None, reason=requires_torch_reason)

# (x shape, weight shape, options): groups, depthwise, dilation, stride 1-3, every padding
CASES: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ((2, 3, 7, 7), (4, 3, 3, 3), {}),
    ((2, 3, 7, 7), (4, 3, 3, 3), {"padding": 1}),
    ((2, 3, 8, 9), (5, 3, 3, 2), {"stride": 2, "padding": (1, 0)}),
    ((1, 2, 10, 11), (3, 2, 3, 3), {"stride": 3, "padding": 2}),
    ((2, 4, 9, 8), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    ((2, 4, 8, 8), (4, 1, 3, 3), {"groups": 4, "padding": 1}),  # depthwise
    ((2, 4, 8, 8), (8, 1, 3, 3), {"groups": 4, "stride": 2}),  # depthwise, multiplier 2
    ((1, 2, 11, 10), (3, 2, 3, 3), {"dilation": 2, "padding": 2}),
    ((1, 2, 11, 10), (3, 2, 2, 3), {"dilation": (3, 1), "stride": (1, 2)}),
    ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": ((0, 2), (1, 0))}),  # asymmetric
    ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": "same"}),
    ((2, 3, 8, 8), (4, 3, 3, 3), {"padding": "same", "stride": 2}),  # odd pixel at the end
    ((2, 3, 7, 9), (4, 3, 4, 2), {"padding": "same", "stride": (3, 2)}),
    ((1, 2, 9, 9), (2, 2, 3, 3), {"padding": "same", "dilation": 2, "stride": 2}),
    ((2, 3, 6, 6), (4, 3, 3, 3), {"padding": "valid", "stride": 2}),
    ((3, 5, 4, 4), (7, 5, 1, 1), {}),  # 1x1
    ((2, 2, 3, 3), (3, 2, 3, 3), {}),  # kernel as large as the input
]
IDS = [f"{x}-{w}-{o}" for x, w, o in CASES]


def _data(x_shape, w_shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    return x, w, b


@pytest.mark.parametrize(("x_shape", "w_shape", "options"), CASES, ids=IDS)
def test_conv2d_matches_torch_float64(xp, x_shape, w_shape, options):
    x, w, b = _data(x_shape, w_shape)
    out = conv2d(to_xp(x, xp), to_xp(w, xp), to_xp(b, xp), **options)
    expected = torch_conv2d(x, w, b, **options)["out"]
    assert relative_error(to_np(out), expected) <= 1e-9


@pytest.mark.parametrize(("x_shape", "w_shape", "options"), CASES, ids=IDS)
def test_conv2d_backward_matches_torch_float64(xp, x_shape, w_shape, options):
    x, w, b = _data(x_shape, w_shape)
    expected_out = torch_conv2d(x, w, b, **options)["out"]
    grad_output = np.random.default_rng(1).standard_normal(expected_out.shape)
    expected = torch_conv2d(x, w, b, grad_output=grad_output, **options)
    grads = conv2d_backward(to_xp(grad_output, xp), to_xp(x, xp), to_xp(w, xp), **options)
    for name, actual in zip(("grad_input", "grad_weight", "grad_bias"), grads, strict=True):
        assert relative_error(to_np(actual), expected[name]) <= 1e-9, name


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "options"),
    [CASES[2], CASES[4], CASES[8], CASES[9], CASES[12]],
    ids=[IDS[2], IDS[4], IDS[8], IDS[9], IDS[12]],
)
def test_conv2d_matches_direct_loops(xp, x_shape, w_shape, options):
    x, w, b = _data(x_shape, w_shape, seed=3)
    out = conv2d(to_xp(x, xp), to_xp(w, xp), to_xp(b, xp), **options)
    assert relative_error(to_np(out), loop_conv2d(x, w, b, **options)) <= 1e-12


def test_conv2d_by_hand(xp):
    # 3x3 image, 2x2 kernel, padding 1 on the left/top only, stride 2: worked on paper
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])[None, None]
    w = np.array([[1.0, 0.0], [-1.0, 2.0]])[None, None]
    out = conv2d(
        to_xp(x, xp), to_xp(w, xp), to_xp(np.array([0.5]), xp), stride=2, padding=((1, 0), (1, 0))
    )
    # windows of the padded image [[0,0,0,0],[0,1,2,3],[0,4,5,6],[0,7,8,9]] at (0,0),
    # (0,2), (2,0), (2,2): 1*a - 1*c + 2*d + 0.5
    expected = np.array(
        [[0 - 0 + 2 * 1 + 0.5, 0 - 2 + 2 * 3 + 0.5], [0 - 0 + 2 * 7 + 0.5, 5 - 8 + 2 * 9 + 0.5]]
    )
    np.testing.assert_array_equal(to_np(out)[0, 0], expected)


def test_conv2d_backward_by_hand(xp):
    # 3x3 image of ones, 2x2 kernel, stride 1, valid: each output sees 4 pixels
    x = np.ones((1, 1, 3, 3))
    w = np.array([[1.0, 2.0], [3.0, 4.0]])[None, None]
    go = np.array([[1.0, 0.0], [0.0, 2.0]])[None, None]
    gi, gw, gb = conv2d_backward(to_xp(go, xp), to_xp(x, xp), to_xp(w, xp))
    # grad_input: go scattered through the kernel; grad_weight: windows of x weighted
    expected_gi = np.array([[1.0, 2.0, 0.0], [3.0, 4 + 2, 4.0], [0.0, 6.0, 8.0]])
    np.testing.assert_array_equal(to_np(gi)[0, 0], expected_gi)
    np.testing.assert_array_equal(to_np(gw)[0, 0], np.full((2, 2), 3.0))
    np.testing.assert_array_equal(to_np(gb), [3.0])


@pytest.mark.parametrize(
    "options",
    [{"stride": 2, "padding": "same"}, {"groups": 2, "dilation": (2, 1), "padding": (1, 2)}],
    ids=["same-stride2", "groups-dilation"],
)
def test_conv2d_backward_matches_finite_differences(xp, options):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 5, 4))
    w = rng.standard_normal((2, 2 // options.get("groups", 1), 3, 2))
    b = rng.standard_normal(2)
    out_shape = to_np(conv2d(to_xp(x, xp), to_xp(w, xp), **options)).shape
    probe = rng.standard_normal(out_shape)

    def loss(x_, w_, b_):  # a scalar whose gradient with respect to the output is `probe`
        out = conv2d(to_xp(x_, xp), to_xp(w_, xp), to_xp(b_, xp), **options)
        return float(np.sum(to_np(out) * probe))

    gi, gw, gb = conv2d_backward(to_xp(probe, xp), to_xp(x, xp), to_xp(w, xp), **options)
    assert relative_error(to_np(gi), numerical_gradient(lambda a: loss(a, w, b), x)) < 1e-7
    assert relative_error(to_np(gw), numerical_gradient(lambda a: loss(x, a, b), w)) < 1e-7
    assert relative_error(to_np(gb), numerical_gradient(lambda a: loss(x, w, a), b)) < 1e-7


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_outputs_keep_namespace_device_and_dtype(xp, dtype):
    x, w, b = _data((2, 3, 6, 6), (4, 3, 3, 3))
    X, W, B = (to_xp(a, xp, dtype) for a in (x, w, b))
    out = conv2d(X, W, B, padding="same", stride=2)
    grads = conv2d_backward(out, X, W, padding="same", stride=2)
    for result in (out, *grads):
        assert array_api_compat.array_namespace(result) is array_api_compat.array_namespace(X)
        assert result.dtype == X.dtype
        assert array_api_compat.device(result) == array_api_compat.device(X)
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert relative_error(to_np(out), torch_conv2d(x, w, b, padding="same", stride=2)["out"]) < tol


def test_backward_without_bias_returns_none(xp):
    x, w, _ = _data((1, 2, 5, 5), (3, 2, 3, 3))
    go = np.ones((1, 3, 3, 3))
    gi, gw, gb = conv2d_backward(to_xp(go, xp), to_xp(x, xp), to_xp(w, xp), bias=False)
    assert gb is None
    expected = torch_conv2d(x, w, None, grad_output=go)
    assert relative_error(to_np(gw), expected["grad_weight"]) <= 1e-12
    assert relative_error(to_np(gi), expected["grad_input"]) <= 1e-12


def test_empty_batch(xp):
    x, w, b = _data((0, 3, 6, 6), (4, 3, 3, 3))
    out = conv2d(to_xp(x, xp), to_xp(w, xp), to_xp(b, xp), padding=1)
    assert tuple(out.shape) == (0, 4, 6, 6)
    gi, gw, gb = conv2d_backward(out, to_xp(x, xp), to_xp(w, xp), padding=1)
    assert tuple(gi.shape) == (0, 3, 6, 6)
    np.testing.assert_array_equal(to_np(gw), np.zeros((4, 3, 3, 3)))
    np.testing.assert_array_equal(to_np(gb), np.zeros(4))


def test_nan_propagates_only_where_it_is_seen(xp):
    x = np.ones((1, 1, 5, 5))
    x[0, 0, 0, 0] = np.nan
    out = to_np(conv2d(to_xp(x, xp), to_xp(np.ones((1, 1, 2, 2)), xp)))
    assert np.isnan(out[0, 0, 0, 0])
    assert np.isfinite(out[0, 0].ravel()[1:]).all()


def test_compiles_under_jax_jit():
    jax = pytest.importorskip("jax", reason="JAX is not installed (jit is a JAX feature)")
    x, w, b = _data((2, 3, 8, 8), (4, 3, 3, 3))
    options = {"stride": 2, "padding": "same"}
    forward = jax.jit(lambda x, w, b: conv2d(x, w, b, **options))
    backward = jax.jit(lambda g, x, w: conv2d_backward(g, x, w, **options))
    X, W, B = (jax.numpy.asarray(a, dtype=jax.numpy.float32) for a in (x, w, b))
    out = forward(X, W, B)
    grads = backward(out, X, W)
    expected = torch_conv2d(x, w, b, grad_output=np.asarray(out, np.float64), **options)
    assert relative_error(np.asarray(out), expected["out"]) < 1e-5
    for name, actual in zip(("grad_input", "grad_weight", "grad_bias"), grads, strict=True):
        assert relative_error(np.asarray(actual), expected[name]) < 1e-5, name


def test_stays_lazy_on_dask():
    dask = pytest.importorskip("dask", reason="Dask is not installed (laziness is a Dask feature)")
    import dask.array as da

    def refuse(*args, **kwargs):
        raise AssertionError("xconv computed a Dask graph")

    x, w, b = _data((4, 3, 6, 6), (2, 3, 3, 3))
    X = da.from_array(x, chunks=(2, 3, 6, 6))
    W, B = da.from_array(w), da.from_array(b)
    with dask.config.set(scheduler=refuse):
        out = conv2d(X, W, B, padding=1)
        grads = conv2d_backward(out, X, W, padding=1)
    assert isinstance(out, da.Array)
    assert all(isinstance(g, da.Array) for g in grads)
    expected = torch_conv2d(x, w, b, padding=1)["out"]
    assert relative_error(out.compute(), expected) <= 1e-12


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
@pytest.mark.parametrize("transpose", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_unbatched_input_like_torch(xp, transpose):
    # PyTorch takes a single (C, H, W) image (issue #25); xconv refused it
    import xconv.functional as xf

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 7, 6))
    options = {"stride": 2, "padding": 1, "groups": 2, "dilation": (1, 2)}
    if transpose:  # weight (C, F // groups, kh, kw)
        weight = rng.standard_normal((4, 3, 3, 2))
        ours, backward, theirs = (
            xf.conv_transpose2d,
            xf.conv_transpose2d_backward,
            F.conv_transpose2d,
        )
    else:  # weight (F, C // groups, kh, kw)
        weight = rng.standard_normal((6, 2, 3, 2))
        ours, backward, theirs = xf.conv2d, xf.conv2d_backward, F.conv2d
    bias = rng.standard_normal((6,))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    t_out = theirs(tx, tw, tb, **options)
    grad_output = rng.standard_normal(tuple(t_out.shape))
    t_out.backward(torch.tensor(grad_output))
    out = ours(to_xp(x, xp), to_xp(weight, xp), to_xp(bias, xp), **options)
    assert tuple(out.shape) == tuple(t_out.shape)
    assert relative_error(to_np(out), t_out.detach().numpy()) <= 1e-12
    grads = backward(to_xp(grad_output, xp), to_xp(x, xp), to_xp(weight, xp), **options)
    for grad, expected in zip(grads, (tx.grad, tw.grad, tb.grad), strict=True):
        assert relative_error(to_np(grad), expected.numpy()) <= 1e-12
