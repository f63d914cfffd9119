"""Delegation to PyTorch's and JAX's own convolutions and poolings (issue 18).

Every op runs on every backend both ways, delegated (the default) and with
``xconv.config.delegate`` off (xconv's own code), over many geometries, and the two
must agree: float64 to rounding (`assert_close`'s float64 tolerances), float32 within
``FLOAT32`` below (rtol 1e-4, atol 1e-5: the native kernels sum in another order, and
a 3x3x8-tap sum of unit-scale values loses a few float32 ulps). NumPy, CuPy, Dask and
array-api-strict have no delegate: both runs are xconv's code and must agree exactly.

The delegation is proved, not assumed: on torch and JAX the delegated runs happen with
xconv's im2col and col2im replaced by a function that fails, and with a counter on the
library's own call (`torch.nn.functional.conv2d`, `jax.lax.conv_general_dilated`, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import array_api_compat
import numpy as np
import pytest
from helpers import to_xp

import xconv
import xconv.functional as xf
from xconv.functional import _conv, _im2col, _pooling
from xconv.functional._dispatch import kernels_for
from xconv.testing import assert_close, to_numpy

FLOAT32 = {"rtol": 1e-4, "atol": 1e-5}

# (input (N, C, H, W), filters F, kernel, stride, padding, dilation, groups)
CONV_CASES = [
    ((2, 3, 7, 7), 4, 3, 1, 0, 1, 1),
    ((2, 3, 7, 7), 4, 3, 2, "same", 1, 1),
    ((2, 4, 8, 8), 6, 2, 2, "same", 1, 2),  # even kernel: 'same' pads 0 + 1... at stride 2
    ((1, 4, 9, 6), 4, (3, 2), (2, 1), "same", (2, 1), 4),  # depthwise, dilated
    ((2, 2, 6, 7), 3, 3, 1, ((0, 2), (1, 0)), 1, 1),  # asymmetric
    ((2, 6, 10, 9), 3, (1, 3), (3, 2), ((2, 1), (0, 3)), (1, 2), 3),
    ((3, 2, 5, 5), 2, 5, 1, "valid", 1, 1),
    ((2, 2, 8, 8), 4, 3, 3, 1, 2, 2),  # stride leaves rows unused
]
# (input (N, C, H, W), weight (C, F // groups, kh, kw), stride, padding, output_padding,
#  dilation, groups)
TRANSPOSE_CASES = [
    ((2, 3, 4, 4), (3, 2, 3, 3), 2, 1, 1, 1, 1),
    ((2, 4, 3, 5), (4, 3, 2, 2), 2, "same", 0, 1, 2),
    ((1, 2, 5, 4), (2, 2, 3, 2), (1, 2), ((1, 0), (0, 1)), 0, (2, 1), 1),
    ((2, 3, 3, 3), (3, 1, 3, 3), 3, "valid", 2, 1, 3),
]
# (input (N, C, H, W), kernel, stride, padding)
POOL_CASES = [
    ((2, 3, 6, 6), 2, None, 0),
    ((2, 3, 7, 5), 3, 2, "same"),
    ((1, 2, 6, 6), 2, 2, "same"),  # nothing to pad
    ((2, 2, 7, 8), (3, 2), (2, 1), 1),  # wider than torch's half-window rule at kw=2
    ((2, 2, 5, 6), 3, 1, ((2, 0), (1, 2))),  # asymmetric, two-pixel pads
    ((1, 3, 9, 9), 4, 3, "valid"),
]

DTYPES = ["float64", "float32"]


def _native_here(xp: Any) -> bool:
    return array_api_compat.is_torch_namespace(xp) or array_api_compat.is_jax_namespace(xp)


def _tolerance(dtype: str) -> dict[str, float]:
    return FLOAT32 if dtype == "float32" else {}


def _generic_forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("xconv's im2col/col2im ran where the op should be delegated")


@contextmanager
def _delegated_only(xp: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """On torch and JAX: xconv's window code fails if called. Elsewhere: nothing."""
    if _native_here(xp):
        with monkeypatch.context() as patch:
            for module in (_conv, _pooling):
                patch.setattr(module, "unfold", _generic_forbidden)
            for module in (_conv, _pooling):
                patch.setattr(module, "fold", _generic_forbidden, raising=False)
            patch.setattr(_im2col, "unfold", _generic_forbidden)
            patch.setattr(_im2col, "fold", _generic_forbidden)
            yield
    else:
        yield


def _both_ways(
    fn: Callable[..., Any], args: list[Any], xp: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    """`fn(*args)` delegated (generic code forbidden on torch/JAX) and generic."""
    with _delegated_only(xp, monkeypatch):
        delegated = fn(*args)
    with xconv.config.using(delegate=False):
        generic = fn(*args)
    return delegated, generic


def _agree(delegated: Any, generic: Any, dtype: str) -> None:
    if isinstance(delegated, tuple):
        assert isinstance(generic, tuple)
        assert len(delegated) == len(generic)
        for d, g in zip(delegated, generic, strict=True):
            _agree(d, g, dtype)
        return
    if delegated is None:
        assert generic is None
        return
    assert delegated.dtype == generic.dtype
    assert array_api_compat.device(delegated) == array_api_compat.device(generic)
    assert_close(delegated, generic, **_tolerance(dtype))


def _random(xp: Any, shape: tuple[int, ...], dtype: str, seed: int) -> Any:
    return to_xp(np.random.default_rng(seed).standard_normal(shape), xp, dtype)


def _conv_options(
    case: tuple[Any, ...],
) -> tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]:
    shape, filters, kernel, stride, padding, dilation, groups = case
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    weight = (filters, shape[1] // groups, kh, kw)
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return shape, weight, options


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_and_its_gradients_agree(xp, case, dtype, monkeypatch):
    shape, wshape, options = _conv_options(case)
    x, w = _random(xp, shape, dtype, 0), _random(xp, wshape, dtype, 1)
    b = _random(xp, (wshape[0],), dtype, 2)
    out, generic = _both_ways(lambda: xf.conv2d(x, w, b, **options), [], xp, monkeypatch)
    _agree(out, generic, dtype)
    g = _random(xp, tuple(out.shape), dtype, 3)
    grads = _both_ways(lambda: xf.conv2d_backward(g, x, w, **options), [], xp, monkeypatch)
    _agree(*grads, dtype)
    no_bias = lambda: xf.conv2d_backward(g, x, w, **options, bias=False)  # noqa: E731
    _agree(*_both_ways(no_bias, [], xp, monkeypatch), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_planned_conv2d_agrees(xp, case, dtype, monkeypatch):
    """The geometry-taking variants that layers use."""
    shape, wshape, options = _conv_options(case)
    groups = options.pop("groups")
    geometry = xf.ConvGeometry.build(shape[2:], wshape[2:], **options)
    x, w = _random(xp, shape, dtype, 0), _random(xp, wshape, dtype, 1)
    b = _random(xp, (wshape[0],), dtype, 2)

    def forward() -> Any:
        return xf.conv2d_forward(x, w, b, geometry=geometry, groups=groups, keep_columns=True)

    (out, kept), (generic, columns) = _both_ways(forward, [], xp, monkeypatch)
    _agree(out, generic, dtype)
    if _native_here(xp):
        assert kept is None  # the library keeps no im2col columns
    g = _random(xp, tuple(out.shape), dtype, 3)

    def gradients(columns: Any) -> Any:
        return xf.conv2d_gradients(g, x, w, geometry=geometry, groups=groups, columns=columns)

    # xconv's gradients use the columns its forward pass kept
    with xconv.config.using(delegate=False):
        expected = gradients(columns)
    with _delegated_only(xp, monkeypatch):
        _agree(gradients(None), expected, dtype)


@pytest.mark.parametrize("case", CONV_CASES[:3], ids=str)
def test_planned_gradients_without_the_input_gradient(xp, case, monkeypatch):
    """``input_gradient=False`` (a network's first layer) leaves that gradient out,
    both ways, and the other two are unchanged."""
    shape, wshape, options = _conv_options(case)
    groups = options.pop("groups")
    geometry = xf.ConvGeometry.build(shape[2:], wshape[2:], **options)
    x, w = _random(xp, shape, "float64", 0), _random(xp, wshape, "float64", 1)
    g = _random(xp, (shape[0], wshape[0], *geometry.out_size), "float64", 3)
    everything = xf.conv2d_gradients(g, x, w, geometry=geometry, groups=groups)

    def without() -> Any:
        return xf.conv2d_gradients(g, x, w, geometry=geometry, groups=groups, input_gradient=False)

    for grads in _both_ways(without, [], xp, monkeypatch):
        assert grads[0] is None
        _agree(grads[1:], everything[1:], "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=str)
def test_conv_transpose2d_and_its_gradients_agree(xp, case, dtype, monkeypatch):
    shape, wshape, stride, padding, output_padding, dilation, groups = case
    options = {
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "dilation": dilation,
        "groups": groups,
    }
    x, w = _random(xp, shape, dtype, 0), _random(xp, wshape, dtype, 1)
    b = _random(xp, (wshape[1] * groups,), dtype, 2)
    run = lambda: xf.conv_transpose2d(x, w, b, **options)  # noqa: E731
    out, generic = _both_ways(run, [], xp, monkeypatch)
    _agree(out, generic, dtype)
    g = _random(xp, tuple(out.shape), dtype, 3)
    backward = lambda: xf.conv_transpose2d_backward(g, x, w, **options)  # noqa: E731
    _agree(*_both_ways(backward, [], xp, monkeypatch), dtype)


def _pool_input(xp: Any, shape: tuple[int, ...], dtype: str, ties: bool) -> Any:
    rng = np.random.default_rng(5)
    # small integers: most windows hold their maximum twice or more
    data = rng.integers(0, 3, shape).astype(float) if ties else rng.standard_normal(shape)
    return to_xp(data, xp, dtype)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_pooling_and_its_gradients_agree(xp, case, dtype, ties, monkeypatch):
    shape, kernel, stride, padding = case
    options = {"stride": stride, "padding": padding}
    x = _pool_input(xp, shape, dtype, ties)
    for pool, backward in [
        (xf.max_pool2d, xf.max_pool2d_backward),
        (xf.avg_pool2d, xf.avg_pool2d_backward),
    ]:
        out, generic = _both_ways(lambda: pool(x, kernel, **options), [], xp, monkeypatch)  # noqa: B023
        _agree(out, generic, dtype)
        g = _random(xp, tuple(out.shape), dtype, 3)
        run = lambda: backward(g, x, kernel, **options)  # noqa: B023, E731
        _agree(*_both_ways(run, [], xp, monkeypatch), dtype)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_planned_pooling_agrees_and_indexes_either_way(xp, case, ties, monkeypatch):
    """`max_pool2d_forward`'s index is the same on both paths, so a gradient may run
    either path whatever the forward pass ran."""
    shape, kernel, stride, padding = case
    geometry = xf.ConvGeometry.for_pooling(shape[2:], kernel, stride=stride, padding=padding)
    x = _pool_input(xp, shape, "float64", ties)
    max_forward = lambda: xf.max_pool2d_forward(x, geometry=geometry)  # noqa: E731
    (out, index), (generic, generic_index) = _both_ways(max_forward, [], xp, monkeypatch)
    _agree(out, generic, "float64")
    if not isinstance(index, tuple):  # NumPy's fast path gives an opaque (x, out) index
        assert_close(index, generic_index)
    g = _random(xp, tuple(out.shape), "float64", 3)
    expected = xf.max_pool2d_backward(g, x, kernel, stride=stride, padding=padding)
    for delegate in (True, False):
        with xconv.config.using(delegate=delegate):
            _agree(xf.max_pool2d_gradient(g, index, geometry=geometry), expected, "float64")
    avg = _both_ways(lambda: xf.avg_pool2d_forward(x, geometry=geometry), [], xp, monkeypatch)
    _agree(*avg, "float64")
    run = lambda: xf.avg_pool2d_gradient(g, geometry=geometry)  # noqa: E731
    _agree(*_both_ways(run, [], xp, monkeypatch), "float64")


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_and_its_gradient_agree_at_nan_and_infinities(xp, dtype, monkeypatch):
    """relu runs PyTorch's own kernels on torch tensors: NaN stays NaN forward, and
    its gradient is 0 (xconv's rule; PyTorch's gradient kernel alone lets it through)."""
    values = np.array([np.nan, -np.inf, -2.0, -0.0, 0.0, 1.5, np.inf, -1e-30])
    x = to_xp(np.tile(values, (3, 1)), xp, dtype)
    g = to_xp(np.arange(24.0).reshape(3, 8) - 5.0, xp, dtype)
    forward, generic = _both_ways(xf.relu, [x], xp, monkeypatch)
    assert_close(forward, generic)  # (NaN where NaN)
    backward, generic = _both_ways(xf.relu_backward, [g, x], xp, monkeypatch)
    assert_close(backward, generic)
    assert np.all(to_numpy(backward)[:, 0] == 0)


def test_max_pooling_gradient_goes_to_the_first_maximum(xp, monkeypatch):
    """The documented tie rule, delegated: a window of equal values sends its whole
    gradient to its top-left pixel."""
    x = to_xp(np.ones((1, 1, 4, 4)), xp)
    g = to_xp(np.arange(1.0, 5.0).reshape(1, 1, 2, 2), xp)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, ::2, ::2] = [[1.0, 2.0], [3.0, 4.0]]
    with (
        _delegated_only(xp, monkeypatch)
        if not array_api_compat.is_jax_namespace(xp)
        else (xconv.config.using())
    ):
        assert_close(xf.max_pool2d_backward(g, x, 2), expected)
    # padding is never a maximum, not even where every real pixel is negative
    x = to_xp(np.full((1, 1, 3, 3), -1.0), xp)
    grad = xf.max_pool2d_backward(to_xp(np.ones((1, 1, 2, 2)), xp), x, 2, padding="same")
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, ::2, ::2] = 1.0
    assert_close(grad, expected)


# -- the native call is really taken ---------------------------------------------------


def _spy(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, calls: list[str]) -> None:
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


def _spies(xp: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the library's own calls; an empty list on other backends."""
    calls: list[str] = []
    if array_api_compat.is_torch_namespace(xp):
        import torch

        for name in ("conv2d", "max_pool2d", "avg_pool2d", "pad"):
            _spy(monkeypatch, torch.nn.functional, name, calls)
        for name in ("conv2d_input", "conv2d_weight"):
            _spy(monkeypatch, torch.nn.grad, name, calls)
        _spy(monkeypatch, torch.ops.aten, "convolution_backward", calls)
    elif array_api_compat.is_jax_namespace(xp):
        import jax

        for name in ("conv_general_dilated", "reduce_window"):
            _spy(monkeypatch, jax.lax, name, calls)
    return calls


def test_the_native_call_is_taken(xp, monkeypatch):
    calls = _spies(xp, monkeypatch)
    x, w = _random(xp, (2, 2, 6, 6), "float64", 0), _random(xp, (4, 2, 3, 3), "float64", 1)
    out = xf.conv2d(x, w, stride=2, padding="same")
    xf.conv2d_backward(out, x, w, stride=2, padding="same")
    xf.max_pool2d(x, 2)
    xf.avg_pool2d(x, 3, stride=2, padding="same")
    xf.avg_pool2d_backward(xf.avg_pool2d(x, 2), x, 2)
    if array_api_compat.is_torch_namespace(xp):
        assert calls.count("conv2d") == 1
        # conv2d_backward's three gradients in one call, autograd's kernel; the
        # average pooling's gradient, a transposed depthwise convolution by ones
        assert calls.count("conv2d_weight") == 0
        assert calls.count("conv2d_input") == 1
        assert calls.count("convolution_backward") == 2
        assert calls.count("max_pool2d") == 1
        assert calls.count("avg_pool2d") == 2
    elif array_api_compat.is_jax_namespace(xp):
        # conv2d, and the backward's one vjp (three gradients) of it
        assert calls.count("conv_general_dilated") == 2
        # max, average, and the average's forward and vjp in avg_pool2d_backward
        assert calls.count("reduce_window") == 4
    else:
        assert kernels_for(xp).name in ("generic", "numpy", "cupy", "dask")
        assert calls == []
    with xconv.config.using(delegate=False):
        before = len(calls)
        xf.conv2d(x, w)
        xf.max_pool2d(x, 2)
        assert len(calls) == before  # the switch turns the library's calls off
    with xconv.config.using(fast_kernels=False):
        assert kernels_for(xp).name == "generic"


def test_layers_run_the_native_call(xp, backend, monkeypatch):
    """Conv2D and the pooling layers reach the library's own kernels through the
    geometry-taking variants; on NumPy the kept im2col columns still serve the
    gradient."""
    from xconv.layers import AveragePooling2D, Conv2D, MaxPooling2D

    calls = _spies(xp, monkeypatch)
    layers = [
        Conv2D(4, (3, 3), stride=2, padding="same", input_shape=(2, 7, 7)),
        MaxPooling2D(2, padding="same", input_shape=(4, 4, 4)),
        AveragePooling2D(2, input_shape=(4, 2, 2)),
    ]
    for layer in layers:
        layer.initialize(seed=0, dtype="float64", backend=backend)
    x = _random(xp, (2, 2, 7, 7), "float64", 0)
    with _delegated_only(xp, monkeypatch):
        a = x
        for layer in layers:
            a = layer.forward_pass(a)
        g = to_xp(np.ones(tuple(a.shape)), xp)
        for layer in reversed(layers):
            g = layer.backward_pass(g)
    assert tuple(g.shape) == tuple(x.shape)
    if _native_here(xp):
        assert calls, "the layers never called the library's own kernels"
    else:
        assert calls == []


def test_jax_jit_vmap_and_grad_trace_the_native_call(xp, backend, monkeypatch):
    """Under jit (and vmap inside it) the traced calls are lax's, and jax.grad of a
    delegated op equals xconv's backward, ties included (XLA's CPU picks the first
    maximum too)."""
    if not array_api_compat.is_jax_namespace(xp):
        pytest.skip(f"jax.jit traces JAX arrays; the backend under test is {backend.name}")
    import jax

    calls = _spies(xp, monkeypatch)
    x, w = _random(xp, (3, 2, 2, 6, 6), "float64", 0), _random(xp, (4, 2, 3, 3), "float64", 1)

    def loss(x: Any, w: Any) -> Any:
        y = xf.conv2d(x, w, stride=2, padding="same")
        return xp.sum(xf.max_pool2d(y, 2) ** 2) + xp.sum(xf.avg_pool2d(y, 2, padding=1))

    batched = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(0, None)))
    gx, gw = batched(x, w)
    assert "conv_general_dilated" in calls
    assert "reduce_window" in calls
    with xconv.config.using(delegate=False):
        expected = jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(0, None))(x, w)
    assert_close(gx, expected[0])
    assert_close(gw, expected[1])
    ties = to_xp(np.ones((1, 1, 4, 4)), xp)
    grad = jax.grad(lambda a: xp.sum(xf.max_pool2d(a, 2)))(ties)
    assert_close(grad, xf.max_pool2d_backward(to_xp(np.ones((1, 1, 2, 2)), xp), ties, 2))


def test_torch_gradients_keep_no_graph_unless_asked(xp, backend):
    """The delegated backward builds no autograd graph for plain tensors, and one that
    autograd can differentiate (double backward) when the caller's tensors require
    grad."""
    if not array_api_compat.is_torch_namespace(xp):
        pytest.skip(f"autograd graphs are torch's; the backend under test is {backend.name}")
    import torch

    x, w = _random(xp, (2, 2, 5, 5), "float64", 0), _random(xp, (3, 2, 3, 3), "float64", 1)
    g = _random(xp, (2, 3, 3, 3), "float64", 2)
    plain = xf.conv2d_backward(g, x, w, stride=2, padding="same")
    assert all(t is None or t.grad_fn is None for t in plain)
    pool = xf.max_pool2d_backward(_random(xp, (2, 2, 3, 3), "float64", 3), x, 2, padding="same")
    assert pool.grad_fn is None
    x.requires_grad_(True)
    w.requires_grad_(True)
    grad_input, _, _ = xf.conv2d_backward(g, x, w, stride=2, padding="same")
    assert grad_input.grad_fn is not None
    # d/dw of sum(grad_input * v) by autograd, against the same through xconv's code
    v = _random(xp, (2, 2, 5, 5), "float64", 4)
    (delegated,) = torch.autograd.grad(torch.sum(grad_input * v), w)
    with xconv.config.using(delegate=False):
        generic_input, _, _ = xf.conv2d_backward(g, x, w, stride=2, padding="same")
        (generic,) = torch.autograd.grad(torch.sum(generic_input * v), w)
    assert_close(delegated, generic)


def _fitted(backend: Any) -> Any:
    from xconv import NeuralNetwork
    from xconv.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D

    model = NeuralNetwork("adam", "cross_entropy", dtype="float64", seed=1, backend=backend)
    model.add(Conv2D(3, 3, input_shape=(1, 6, 6), padding="same"))
    model.add(Activation("relu"))
    model.add(MaxPooling2D(2))
    model.add(Flatten())
    model.add(Dense(3))
    model.add(Activation("softmax"))
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 1, 6, 6)), rng.integers(0, 3, 16)
    return model, model.fit(X, y, 2, 8)


def test_a_model_trains_the_same_delegated(xp, backend, monkeypatch):
    """fit (on JAX, its compiled step) reaches the library's own calls and learns what
    xconv's own code learns."""
    calls = _spies(xp, monkeypatch)
    model, history = _fitted(backend)
    if array_api_compat.is_jax_namespace(xp):
        assert model.training_step.compiles
    if _native_here(xp):
        assert calls, "training never called the library's own kernels"
    with xconv.config.using(delegate=False):
        _, expected = _fitted(backend)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-9)
