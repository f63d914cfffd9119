"""max_pool2d / avg_pool2d and their gradients against PyTorch, loops, finite differences."""

from __future__ import annotations

import itertools
from typing import Any

import array_api_compat
import numpy as np
import pytest
from helpers import (
    F,
    explicit_pads,
    numerical_gradient,
    pair,
    relative_error,
    requires_torch_reason,
    to_np,
    to_xp,
    torch,
)

from xconv.functional import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

requires_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)

POOLS = {"max": (max_pool2d, max_pool2d_backward), "avg": (avg_pool2d, avg_pool2d_backward)}

# symmetric numeric padding (PyTorch needs pad <= kernel / 2): (x shape, kernel, options)
TORCH_CASES: list[tuple[tuple[int, ...], Any, dict[str, Any]]] = [
    ((2, 3, 6, 6), 2, {}),  # stride defaults to the kernel
    ((2, 3, 7, 7), 3, {"stride": 2, "padding": 1}),
    ((1, 2, 8, 9), (3, 2), {"stride": (2, 1), "padding": (1, 1)}),
    ((2, 2, 5, 5), 3, {"stride": 1, "padding": 1}),  # overlapping windows
    ((2, 2, 7, 5), 2, {"stride": 3}),  # gaps between windows
    ((1, 2, 3, 4), (3, 4), {}),  # one window, the whole image
]
TORCH_IDS = [f"{s}-k{k}-{o}" for s, k, o in TORCH_CASES]

# 'same', 'valid' and asymmetric padding, checked against direct loops
LOOP_CASES: list[tuple[tuple[int, ...], Any, dict[str, Any]]] = [
    ((2, 2, 7, 7), 2, {"padding": "same"}),  # odd pixel of padding at the end
    ((2, 2, 6, 7), 3, {"stride": 2, "padding": "same"}),
    ((1, 2, 5, 6), 3, {"stride": 1, "padding": "same"}),
    ((2, 2, 6, 5), (2, 3), {"stride": (2, 1), "padding": ((1, 0), (0, 2))}),
    ((1, 3, 7, 6), 3, {"stride": 2, "padding": "valid"}),
]
LOOP_IDS = [f"{s}-k{k}-{o}" for s, k, o in LOOP_CASES]


def torch_pool(kind, x, kernel, *, stride=None, padding=0, grad_output=None, **options):
    """PyTorch float64 forward and (given `grad_output`) input gradient, PyTorch's
    defaults for the options not given."""
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    out = pool(tx, kernel, stride=stride, padding=padding, **options)
    result = {"out": out.detach().numpy()}
    if grad_output is not None:
        out.backward(torch.tensor(grad_output, dtype=torch.float64))
        result["grad_input"] = tx.grad.numpy()
    return result


def loop_pool(kind, x, kernel, *, stride=None, padding=0):
    """The definition: max or mean of the real pixels of each window, one at a time."""
    k = pair(kernel)
    s = k if stride is None else pair(stride)
    n, c, h, w = x.shape
    left, right, top, bottom = explicit_pads(padding, (h, w), k, s, (1, 1))
    # NaN marks padding, so that nanmax / nanmean see real pixels only
    padded = np.full((n, c, h + top + bottom, w + left + right), np.nan)
    padded[:, :, top : top + h, left : left + w] = x
    oh = (h + top + bottom - k[0]) // s[0] + 1
    ow = (w + left + right - k[1]) // s[1] + 1
    reduce = np.nanmax if kind == "max" else np.nanmean
    out = np.zeros((n, c, oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        window = padded[:, :, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1]]
        out[:, :, i, j] = reduce(window.reshape(n, c, -1), axis=2)
    return out


def _real_only(kind):
    """The option that makes average pooling the loops' mean of real pixels."""
    return {"count_include_pad": False} if kind == "avg" else {}


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@requires_torch
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("shape", "kernel", "options"), TORCH_CASES, ids=TORCH_IDS)
def test_forward_and_backward_match_torch_float64(xp, kind, shape, kernel, options):
    forward, backward = POOLS[kind]
    x = _data(shape)
    expected_out = torch_pool(kind, x, kernel, **options)["out"]
    grad_output = _data(expected_out.shape, seed=1)
    expected = torch_pool(kind, x, kernel, grad_output=grad_output, **options)
    out = forward(to_xp(x, xp), kernel, **options)
    grad = backward(to_xp(grad_output, xp), to_xp(x, xp), kernel, **options)
    assert relative_error(to_np(out), expected["out"]) <= 1e-12
    assert relative_error(to_np(grad), expected["grad_input"]) <= 1e-12


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("shape", "kernel", "options"), LOOP_CASES, ids=LOOP_IDS)
def test_forward_matches_direct_loops(xp, kind, shape, kernel, options):
    x = _data(shape, seed=2)
    out = POOLS[kind][0](to_xp(x, xp), kernel, **options, **_real_only(kind))
    assert relative_error(to_np(out), loop_pool(kind, x, kernel, **options)) <= 1e-12


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(
    ("shape", "kernel", "options"),
    [LOOP_CASES[1], LOOP_CASES[3], TORCH_CASES[3]],
    ids=["same-stride2", "asymmetric", "overlapping-padded"],
)
def test_backward_matches_finite_differences(xp, kind, shape, kernel, options):
    x = _data(shape, seed=3)  # continuous data: no ties within a window
    probe = _data(loop_pool(kind, x, kernel, **options).shape, seed=4)

    def loss(a):  # differences of the definition (the forward is checked against it above)
        return float(np.sum(loop_pool(kind, a, kernel, **options) * probe))

    grad = POOLS[kind][1](to_xp(probe, xp), to_xp(x, xp), kernel, **options, **_real_only(kind))
    assert relative_error(to_np(grad), numerical_gradient(loss, x)) < 1e-8


@requires_torch
def test_max_gradient_goes_to_the_first_maximum_like_torch(xp):
    # few distinct values: most windows hold ties; overlapping windows add up
    x = np.random.default_rng(5).integers(0, 3, size=(2, 2, 5, 5)).astype(np.float64)
    options = {"stride": 1, "padding": 1}
    go = _data((2, 2, 5, 5), seed=6)
    expected = torch_pool("max", x, 3, grad_output=go, **options)["grad_input"]
    grad = max_pool2d_backward(to_xp(go, xp), to_xp(x, xp), 3, **options)
    np.testing.assert_allclose(to_np(grad), expected, rtol=1e-12, atol=1e-12)


def test_max_gradient_by_hand(xp):
    # one 2x2 window with its maximum 4 twice: the first (row-major) gets it all
    x = np.array([[[[1.0, 4.0], [4.0, 2.0]]]])
    grad = max_pool2d_backward(to_xp(np.array([[[[3.0]]]]), xp), to_xp(x, xp), 2)
    np.testing.assert_array_equal(to_np(grad), [[[[0.0, 3.0], [0.0, 0.0]]]])


def test_padding_never_wins_a_max(xp):
    # all negative: zero padding would win every border window
    x = -1.0 - np.arange(9.0).reshape(1, 1, 3, 3)
    out = max_pool2d(to_xp(x, xp), 2, padding="same")
    # windows of [[-1,-2,-3],[-4,-5,-6],[-7,-8,-9]] padded at the bottom/right
    np.testing.assert_array_equal(to_np(out)[0, 0], [[-1.0, -3.0], [-7.0, -9.0]])
    grad = max_pool2d_backward(to_xp(np.ones((1, 1, 2, 2)), xp), to_xp(x, xp), 2, padding=1)
    expected = np.zeros((3, 3))
    expected[0, 0] = expected[0, 1] = expected[1, 0] = expected[1, 1] = 1.0
    np.testing.assert_array_equal(to_np(grad)[0, 0], expected)


def test_average_counts_only_real_pixels_by_hand(xp):
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    out = avg_pool2d(to_xp(x, xp), 2, padding="same", count_include_pad=False)
    # windows {0,1,3,4}, {2,5}, {6,7}, {8}: TensorFlow's 'SAME' averages
    np.testing.assert_array_equal(to_np(out)[0, 0], [[2.0, 3.5], [6.5, 8.0]])
    ones = to_xp(np.ones((1, 1, 2, 2)), xp)
    grad = avg_pool2d_backward(ones, to_xp(x, xp), 2, padding="same", count_include_pad=False)
    expected = [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]]
    np.testing.assert_array_equal(to_np(grad)[0, 0], expected)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_outputs_keep_namespace_device_and_dtype(xp, kind):
    # float32 in, float32 out (float64 is what the other tests use)
    forward, backward = POOLS[kind]
    x = _data((2, 2, 6, 7))
    X = to_xp(x, xp, "float32")
    options = {"stride": 2, "padding": "same", **_real_only(kind)}
    out = forward(X, 3, **options)
    grad = backward(out, X, 3, **options)
    assert tuple(grad.shape) == (2, 2, 6, 7)
    expected = loop_pool(kind, x, 3, stride=2, padding="same")
    assert relative_error(to_np(out), expected) < 1e-6
    for result in (out, grad):
        assert array_api_compat.array_namespace(result) is array_api_compat.array_namespace(X)
        assert result.dtype == X.dtype
        assert array_api_compat.device(result) == array_api_compat.device(X)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_empty_batch(xp, kind):
    forward, backward = POOLS[kind]
    X = to_xp(np.zeros((0, 2, 5, 5)), xp)
    out = forward(X, 2, padding="same")
    assert tuple(out.shape) == (0, 2, 3, 3)
    assert tuple(backward(out, X, 2, padding="same").shape) == (0, 2, 5, 5)


@pytest.mark.parametrize(
    ("args", "options", "error", "message"),
    [
        ((0,), {}, ValueError, "`kernel_size` must be a positive integer or pair of them, got 0"),
        ((2,), {"stride": (1, 0)}, ValueError, r"`stride` must be a positive integer"),
        ((2,), {"padding": "full"}, ValueError, "`padding` must be"),
        ((2,), {"padding": 2}, ValueError, "`padding` .* leaves pooling windows with no input"),
        ((2,), {"padding": ((0, 0), (0, 3))}, ValueError, "no input pixel along the width"),
        ((7,), {}, ValueError, "the kernel spans 7 pixels along the height"),
        ((2.5,), {}, TypeError, "`kernel_size` must be a positive integer"),
    ],
)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_bad_options_are_refused(xp, kind, args, options, error, message):
    forward, backward = POOLS[kind]
    X = to_xp(np.zeros((1, 1, 6, 6)), xp)
    with pytest.raises(error, match=message):
        forward(X, *args, **options)
    with pytest.raises(error, match=message):
        backward(X, X, *args, **options)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_bad_arrays_are_refused(xp, kind):
    forward, backward = POOLS[kind]
    X = to_xp(np.zeros((1, 1, 6, 6)), xp)
    with pytest.raises(ValueError, match=r"`x` must be a 4-D array \(N, C, H, W\) or an unbatch"):
        forward(to_xp(np.zeros((6, 6)), xp), 2)
    with pytest.raises(ValueError, match=r"`grad_output` must have shape \(1, 1, 3, 3\)"):
        backward(to_xp(np.zeros((1, 1, 2, 3)), xp), X, 2)
    with pytest.raises(TypeError, match="arrays of different dtypes"):
        backward(to_xp(np.zeros((1, 1, 3, 3)), xp, "float32"), X, 2)
    with pytest.raises(TypeError, match="`x` must be an array"):
        forward(np.zeros((1, 1, 6, 6)).tolist(), 2)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_compiles_under_jax_jit_and_stays_lazy_on_dask(xp, kind):
    forward, backward = POOLS[kind]
    x = _data((2, 3, 7, 7))
    expected = loop_pool(kind, x, 3, stride=2, padding="same")
    options = {"stride": 2, "padding": "same", **_real_only(kind)}
    if array_api_compat.is_jax_namespace(xp):
        import jax

        out = jax.jit(lambda a: forward(a, 3, **options))(to_xp(x, xp))
        grad = jax.jit(lambda g, a: backward(g, a, 3, **options))(out, to_xp(x, xp))
    elif array_api_compat.is_dask_namespace(xp):
        import dask

        def refuse(*args, **kwargs):
            raise AssertionError("xconv computed a Dask graph")

        with dask.config.set(scheduler=refuse):
            out = forward(to_xp(x, xp), 3, **options)
            grad = backward(out, to_xp(x, xp), 3, **options)
    else:
        pytest.skip("jit is a JAX feature and laziness a Dask one")
    assert relative_error(to_np(out), expected) <= 1e-12
    assert tuple(grad.shape) == x.shape


# -- PyTorch's options (issue #25): values, gradients and indices over the option space --

# (x shape, kernel, stride, padding); PyTorch takes padding up to half the window
GEOMETRIES: list[tuple[tuple[int, ...], Any, Any, Any]] = [
    ((2, 2, 7, 7), 3, 2, 1),
    ((1, 2, 6, 5), 2, 2, 1),  # ceil_mode: the last window overhangs into the padding
    ((1, 1, 4, 4), 2, 3, 1),  # ceil_mode: a last window would start in the padding
    ((1, 2, 5, 8), (3, 2), (2, 3), (1, 1)),
    ((2, 1, 9, 6), 3, 1, 0),
    ((1, 1, 5, 5), 4, 3, 2),  # ceil_mode: rounds up, padding half the window
]
OPTION_IDS = [f"{s}-k{k}-s{st}-p{p}" for s, k, st, p in GEOMETRIES]


@requires_torch
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize(
    "divisor", [{}, {"count_include_pad": False}, {"divisor_override": 3}], ids=str
)
@pytest.mark.parametrize(("shape", "kernel", "stride", "padding"), GEOMETRIES, ids=OPTION_IDS)
def test_avg_pool_options_match_torch(xp, shape, kernel, stride, padding, ceil_mode, divisor):
    options = {"stride": stride, "padding": padding, "ceil_mode": ceil_mode, **divisor}
    x = _data(shape)
    expected_out = torch_pool("avg", x, kernel, **options)["out"]
    grad_output = _data(expected_out.shape, seed=1)
    expected = torch_pool("avg", x, kernel, grad_output=grad_output, **options)
    out = avg_pool2d(to_xp(x, xp), kernel, **options)
    grad = avg_pool2d_backward(to_xp(grad_output, xp), to_xp(x, xp), kernel, **options)
    assert tuple(out.shape) == expected_out.shape
    assert relative_error(to_np(out), expected["out"]) <= 1e-12
    assert relative_error(to_np(grad), expected["grad_input"]) <= 1e-12


@requires_torch
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("dilation", [1, 2, (1, 2)], ids=str)
@pytest.mark.parametrize(("shape", "kernel", "stride", "padding"), GEOMETRIES, ids=OPTION_IDS)
def test_max_pool_options_match_torch(xp, shape, kernel, stride, padding, ceil_mode, dilation):
    options = {"stride": stride, "padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}
    x = _data(shape)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    try:
        t_out, t_indices = F.max_pool2d(tx, kernel, **options, return_indices=True)
    except RuntimeError as error:  # e.g. a dilated window wider than the input
        pytest.skip(f"PyTorch refuses these options: {error}")
    grad_output = _data(tuple(t_out.shape), seed=1)
    t_out.backward(torch.tensor(grad_output))
    out, indices = max_pool2d(to_xp(x, xp), kernel, **options, return_indices=True)
    grad = max_pool2d_backward(to_xp(grad_output, xp), to_xp(x, xp), kernel, **options)
    assert relative_error(to_np(out), t_out.detach().numpy()) <= 1e-12
    np.testing.assert_array_equal(to_np(indices), t_indices.numpy())
    assert relative_error(to_np(grad), tx.grad.numpy()) <= 1e-12
    np.testing.assert_array_equal(to_np(max_pool2d(to_xp(x, xp), kernel, **options)), to_np(out))


def test_avg_pool_counts_padding_by_default_like_torch(xp):
    # PyTorch's default count_include_pad=True (xconv used to leave the padding out)
    x = to_xp(np.arange(16.0).reshape(1, 1, 4, 4), xp)
    out = avg_pool2d(x, 2, stride=2, padding=1)
    expected = [[0.0, 0.75, 0.75], [3.0, 7.5, 4.5], [3.0, 6.75, 3.75]]
    np.testing.assert_allclose(to_np(out)[0, 0], expected, rtol=0, atol=1e-15)
    grad = avg_pool2d_backward(to_xp(np.ones((1, 1, 3, 3)), xp), x, 2, stride=2, padding=1)
    np.testing.assert_array_equal(to_np(grad), np.full((1, 1, 4, 4), 0.25))


@requires_torch
@pytest.mark.parametrize("last", [-np.inf, 1.0])
def test_max_gradient_of_a_window_of_minus_infinity_is_kept(xp, last):
    # real pixels all -inf in windows that also hold padding: PyTorch's maximum is the
    # window's first real pixel (xconv's used to be the -inf padding, losing the gradient)
    x = np.full((1, 1, 3, 3), -np.inf)
    x[0, 0, 2, 2] = last
    grad_output = np.ones((1, 1, 2, 2))
    tx = torch.tensor(x, requires_grad=True)
    t_out, t_indices = F.max_pool2d(tx, 2, stride=2, padding=1, return_indices=True)
    t_out.backward(torch.tensor(grad_output))
    grad = max_pool2d_backward(to_xp(grad_output, xp), to_xp(x, xp), 2, stride=2, padding=1)
    np.testing.assert_array_equal(to_np(grad), tx.grad.numpy())
    assert float(np.sum(to_np(grad))) == 4.0
    _, indices = max_pool2d(to_xp(x, xp), 2, stride=2, padding=1, return_indices=True)
    np.testing.assert_array_equal(to_np(indices), t_indices.numpy())


@requires_torch
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_unbatched_input_like_torch(xp, kind):
    forward, backward = POOLS[kind]
    x = _data((2, 5, 6))
    options = {"stride": 2, "padding": 1, "ceil_mode": True}
    expected_out = torch_pool(kind, x, 3, **options)["out"]
    grad_output = _data(expected_out.shape, seed=1)
    expected = torch_pool(kind, x, 3, grad_output=grad_output, **options)
    out = forward(to_xp(x, xp), 3, **options)
    grad = backward(to_xp(grad_output, xp), to_xp(x, xp), 3, **options)
    assert tuple(out.shape) == expected_out.shape == (2, 3, 4)
    assert relative_error(to_np(out), expected["out"]) <= 1e-12
    assert relative_error(to_np(grad), expected["grad_input"]) <= 1e-12
    with pytest.raises(ValueError, match="`grad_output` must have 3 axes like `x`"):
        backward(to_xp(grad_output[None], xp), to_xp(x, xp), 3, **options)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"divisor_override": 0}, ValueError, "`divisor_override` must not be zero"),
        ({"divisor_override": 1.5}, TypeError, "`divisor_override` must be None or an integer"),
        ({"count_include_pad": "no"}, TypeError, "count_include_pad"),
        ({"ceil_mode": 1.0}, TypeError, "ceil_mode"),
    ],
    ids=str,
)
def test_bad_avg_options_are_refused(xp, options, error, match):
    with pytest.raises(error, match=match):
        avg_pool2d(to_xp(np.zeros((1, 1, 4, 4)), xp), 2, **options)
