"""The functional ops under function transforms: JAX's `jit`, `grad` and `vmap`, and
PyTorch's autograd, `torch.func.grad`, `torch.func.vmap` and `torch.compile`.

Each transform belongs to one library: its tests run on that backend and skip, saying
so, on the others. Values are checked against the untransformed call, gradients against
xconv's own backward functions and, for `conv2d`, against PyTorch's. Under a transform
the arrays are tracers (JAX: no device, no values) or wrapped tensors (torch.func), so
these tests also show that no op turns an array into a Python number or branches on
its values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from helpers import requires_torch_reason, to_np, to_xp, torch, torch_conv2d

import xconv.functional as xf
from xconv.testing import assert_close

CONV = {"stride": 2, "padding": 1}
TRANSPOSE = {"stride": 2, "padding": 1, "output_padding": 1}
AVG = {"stride": 2, "padding": 1}


class Case(NamedTuple):
    """An op as a function of arrays, its arguments' shapes, and which of them are
    batches (vmapped over a leading axis of a batch of batches; the others are shared)."""

    fn: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]
    batched: tuple[bool, ...]


def _backward_on_output(forward: Callable[..., Any], backward: Callable[..., Any]) -> Any:
    """An activation's backward, which takes the forward's output, as a function of `x`."""
    return lambda g, x: backward(g, forward(x))


X, W, B = (2, 3, 6, 6), (4, 3, 3, 3), (4,)
Y = (2, 4, 3, 3)  # conv2d's output with CONV; conv_transpose2d's input
WT, BT = (4, 3, 3, 3), (3,)  # conv_transpose2d's weight (C=4, F=3) and bias
ACT = (2, 5)

CASES = {
    "conv2d": Case(lambda x, w, b: xf.conv2d(x, w, b, **CONV), (X, W, B), (True, False, False)),
    "conv2d_backward": Case(
        lambda g, x, w: xf.conv2d_backward(g, x, w, **CONV), (Y, X, W), (True, True, False)
    ),
    "conv_transpose2d": Case(
        lambda x, w, b: xf.conv_transpose2d(x, w, b, **TRANSPOSE),
        (Y, WT, BT),
        (True, False, False),
    ),
    "conv_transpose2d_backward": Case(
        lambda g, x, w: xf.conv_transpose2d_backward(g, x, w, **TRANSPOSE),
        (X, Y, WT),
        (True, True, False),
    ),
    "max_pool2d": Case(lambda x: xf.max_pool2d(x, 2), (X,), (True,)),
    "max_pool2d_backward": Case(
        lambda g, x: xf.max_pool2d_backward(g, x, 2), ((2, 3, 3, 3), X), (True, True)
    ),
    "avg_pool2d": Case(lambda x: xf.avg_pool2d(x, 3, **AVG), (X,), (True,)),
    "avg_pool2d_backward": Case(
        lambda g, x: xf.avg_pool2d_backward(g, x, 3, **AVG), ((2, 3, 3, 3), X), (True, True)
    ),
    "im2col": Case(lambda x: xf.im2col(x, 3, padding=1), (X,), (True,)),
    "col2im": Case(lambda c: xf.col2im(c, 6, 3, padding=1), ((2, 27, 36),), (True,)),
    "relu": Case(xf.relu, (ACT,), (True,)),
    "leaky_relu": Case(lambda x: xf.leaky_relu(x, alpha=0.1), (ACT,), (True,)),
    "elu": Case(xf.elu, (ACT,), (True,)),
    "selu": Case(xf.selu, (ACT,), (True,)),
    "sigmoid": Case(xf.sigmoid, (ACT,), (True,)),
    "tanh": Case(xf.tanh, (ACT,), (True,)),
    "softplus": Case(xf.softplus, (ACT,), (True,)),
    "softmax": Case(xf.softmax, (ACT,), (True,)),
    "log_softmax": Case(xf.log_softmax, (ACT,), (True,)),
    "relu_backward": Case(xf.relu_backward, (ACT, ACT), (True, True)),
    "leaky_relu_backward": Case(
        lambda g, x: xf.leaky_relu_backward(g, x, alpha=0.1), (ACT, ACT), (True, True)
    ),
    "elu_backward": Case(xf.elu_backward, (ACT, ACT), (True, True)),
    "selu_backward": Case(xf.selu_backward, (ACT, ACT), (True, True)),
    "softplus_backward": Case(xf.softplus_backward, (ACT, ACT), (True, True)),
    **{
        f"{name}_backward": Case(
            _backward_on_output(getattr(xf, name), getattr(xf, f"{name}_backward")),
            (ACT, ACT),
            (True, True),
        )
        for name in ("sigmoid", "tanh", "softmax", "log_softmax")
    },
}


class GradCase(NamedTuple):
    """A forward op and its backward, as ``backward(g, *args)`` -> one gradient per arg."""

    forward: Callable[..., Any]
    backward: Callable[..., tuple[Any, ...]]
    shapes: tuple[tuple[int, ...], ...]


GRADS = {
    "conv2d": GradCase(
        CASES["conv2d"].fn, lambda g, x, w, b: xf.conv2d_backward(g, x, w, **CONV), (X, W, B)
    ),
    "conv_transpose2d": GradCase(
        CASES["conv_transpose2d"].fn,
        lambda g, x, w, b: xf.conv_transpose2d_backward(g, x, w, **TRANSPOSE),
        (Y, WT, BT),
    ),
    "max_pool2d": GradCase(
        CASES["max_pool2d"].fn, lambda g, x: (xf.max_pool2d_backward(g, x, 2),), (X,)
    ),
    "avg_pool2d": GradCase(
        CASES["avg_pool2d"].fn, lambda g, x: (xf.avg_pool2d_backward(g, x, 3, **AVG),), (X,)
    ),
    "elu": GradCase(xf.elu, lambda g, x: (xf.elu_backward(g, x),), (ACT,)),
    "sigmoid": GradCase(xf.sigmoid, lambda g, x: (xf.sigmoid_backward(g, xf.sigmoid(x)),), (ACT,)),
    "log_softmax": GradCase(
        xf.log_softmax, lambda g, x: (xf.log_softmax_backward(g, xf.log_softmax(x)),), (ACT,)
    ),
}


def _normal(shapes: tuple[tuple[int, ...], ...], xp: Any, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [to_xp(rng.standard_normal(shape), xp) for shape in shapes]


def _arrays(result: Any) -> list[Any]:
    """An op's result as a list of arrays (a backward's tuple without its None)."""
    items = result if isinstance(result, tuple) else (result,)
    return [a for a in items if a is not None]


def _assert_all_close(actual: Any, expected: Any) -> None:
    actual, expected = _arrays(actual), _arrays(expected)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert_close(got, want)


def _needs(backend: Any, library: str, transform: str) -> None:
    if backend.name != library:
        pytest.skip(
            f"{transform} transforms {library} arrays; the backend under test is {backend.name}"
        )


def _stacked_batches(case: Case, xp: Any) -> tuple[list[Any], list[Any]]:
    """Two different sets of the op's arguments, and the batched ones stacked on axis 0."""
    first, second = _normal(case.shapes, xp, seed=1), _normal(case.shapes, xp, seed=2)
    args = [
        xp.stack([a, b]) if batched else a
        for a, b, batched in zip(first, second, case.batched, strict=True)
    ]
    second = [
        b if batched else a for a, b, batched in zip(first, second, case.batched, strict=True)
    ]
    return args, [first, second]


def _stack_results(xp: Any, results: list[Any]) -> list[Any]:
    """Per-call results stacked on a new axis 0, output by output."""
    return [xp.stack(parts) for parts in zip(*(_arrays(r) for r in results), strict=True)]


def _loss_and_seed(case: GradCase, xp: Any) -> tuple[list[Any], Any]:
    """The op's arguments and a fixed output gradient `g`: d sum(op(args) * g) = backward(g)."""
    args = _normal(case.shapes, xp, seed=3)
    g = _normal((tuple(case.forward(*args).shape),), xp, seed=4)[0]
    return args, g


# -- JAX --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_jax_jit(name, xp, backend):
    _needs(backend, "jax", "jax.jit")
    import jax

    case = CASES[name]
    args = _normal(case.shapes, xp)
    _assert_all_close(jax.jit(case.fn)(*args), case.fn(*args))


@pytest.mark.parametrize("name", sorted(CASES))
def test_jax_vmap_over_batches(name, xp, backend):
    _needs(backend, "jax", "jax.vmap")
    import jax

    case = CASES[name]
    args, calls = _stacked_batches(case, xp)
    in_axes = tuple(0 if batched else None for batched in case.batched)
    got = jax.vmap(case.fn, in_axes=in_axes)(*args)
    _assert_all_close(tuple(_arrays(got)), tuple(_stack_results(xp, [case.fn(*c) for c in calls])))


@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d"])
def test_jax_vmap_over_weights(name, xp, backend):
    _needs(backend, "jax", "jax.vmap")
    import jax

    case = CASES[name]
    (x, w, b), (_, w2, _) = _normal(case.shapes, xp, seed=1), _normal(case.shapes, xp, seed=2)
    got = jax.vmap(case.fn, in_axes=(None, 0, None))(x, xp.stack([w, w2]), b)
    assert_close(got, xp.stack([case.fn(x, w, b), case.fn(x, w2, b)]))


@pytest.mark.parametrize("name", sorted(GRADS))
def test_jax_grad_equals_backward(name, xp, backend):
    _needs(backend, "jax", "jax.grad")
    import jax

    case = GRADS[name]
    args, g = _loss_and_seed(case, xp)

    def loss(*arrays: Any) -> Any:
        return xp.sum(case.forward(*arrays) * g)

    grads = jax.grad(loss, argnums=tuple(range(len(args))))(*args)
    _assert_all_close(tuple(grads), case.backward(g, *args))


def test_jax_grad_with_a_concrete_array(xp, backend):
    """A traced weight (no device) beside a concrete input (a device) is accepted."""
    _needs(backend, "jax", "jax.grad")
    import jax

    x, w, b = _normal((X, W, B), xp)
    assert x.device is not None
    grad_w = jax.grad(lambda w: xp.sum(xf.conv2d(x, w, b, **CONV)))(w)
    g = xp.ones((2, 4, 3, 3), dtype=x.dtype)
    assert_close(grad_w, xf.conv2d_backward(g, x, w, **CONV)[1])


def test_jax_grad_of_conv2d_matches_pytorch(xp, backend):
    _needs(backend, "jax", "jax.grad")
    if torch is None:
        pytest.skip(requires_torch_reason)
    import jax

    case = GRADS["conv2d"]
    args, g = _loss_and_seed(case, xp)
    grads = jax.grad(lambda *a: xp.sum(case.forward(*a) * g), argnums=(0, 1, 2))(*args)
    ref = torch_conv2d(*(to_np(a) for a in args), **CONV, grad_output=to_np(g))
    for got, key in zip(grads, ("grad_input", "grad_weight", "grad_bias"), strict=True):
        assert_close(got, ref[key].astype(to_np(got).dtype))


# -- PyTorch ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GRADS))
def test_torch_autograd_equals_backward(name, xp, backend):
    """requires_grad tensors through xconv's generic code: autograd's gradients are
    xconv's backward functions' values."""
    _needs(backend, "torch", "PyTorch autograd")
    case = GRADS[name]
    args, g = _loss_and_seed(case, xp)
    leaves = [a.detach().requires_grad_(True) for a in args]
    xp.sum(case.forward(*leaves) * g).backward()
    _assert_all_close(tuple(a.grad for a in leaves), case.backward(g, *args))


def test_torch_autograd_of_conv2d_matches_pytorch(xp, backend):
    _needs(backend, "torch", "PyTorch autograd")
    case = GRADS["conv2d"]
    args, g = _loss_and_seed(case, xp)
    leaves = [a.detach().requires_grad_(True) for a in args]
    xp.sum(case.forward(*leaves) * g).backward()
    ref = torch_conv2d(*(to_np(a) for a in args), **CONV, grad_output=to_np(g))
    for leaf, key in zip(leaves, ("grad_input", "grad_weight", "grad_bias"), strict=True):
        assert_close(leaf.grad, ref[key].astype(to_np(leaf.grad).dtype))


@pytest.mark.parametrize("name", sorted(GRADS))
def test_torch_func_grad_equals_backward(name, xp, backend):
    _needs(backend, "torch", "torch.func.grad")
    case = GRADS[name]
    args, g = _loss_and_seed(case, xp)
    grads = torch.func.grad(
        lambda *a: xp.sum(case.forward(*a) * g), argnums=tuple(range(len(args)))
    )(*args)
    _assert_all_close(tuple(grads), case.backward(g, *args))


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_func_vmap_over_batches(name, xp, backend):
    _needs(backend, "torch", "torch.func.vmap")
    case = CASES[name]
    args, calls = _stacked_batches(case, xp)
    in_dims = tuple(0 if batched else None for batched in case.batched)
    got = torch.func.vmap(case.fn, in_dims=in_dims)(*args)
    _assert_all_close(tuple(_arrays(got)), tuple(_stack_results(xp, [case.fn(*c) for c in calls])))


@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d"])
def test_torch_func_vmap_over_weights(name, xp, backend):
    _needs(backend, "torch", "torch.func.vmap")
    case = CASES[name]
    (x, w, b), (_, w2, _) = _normal(case.shapes, xp, seed=1), _normal(case.shapes, xp, seed=2)
    got = torch.func.vmap(case.fn, in_dims=(None, 0, None))(x, xp.stack([w, w2]), b)
    assert_close(got, xp.stack([case.fn(x, w, b), case.fn(x, w2, b)]))


# torch's own modules, imported when compiling, warn that torch.jit is deprecated; Dynamo
# warns that it traces through lru_cache-wrapped helpers (array_api_compat's type checks)
@pytest.mark.filterwarnings("ignore:`torch.jit.*is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`:UserWarning")
def test_torch_compile(xp, backend):
    """conv2d then max_pool2d then relu, compiled once (compiling takes seconds)."""
    _needs(backend, "torch", "torch.compile")
    x, w, b = _normal((X, W, B), xp)

    def net(x: Any, w: Any, b: Any) -> Any:
        return xf.relu(xf.max_pool2d(xf.conv2d(x, w, b, padding=1), 2))

    try:
        compiled = torch.compile(net, fullgraph=False)
        got = compiled(x, w, b)
    except Exception as exc:  # no C++ compiler, an unsupported platform
        if "compiler" in str(exc).lower() or "InvalidCxxCompiler" in type(exc).__name__:
            pytest.skip(f"torch.compile cannot build kernels here: {exc}")
        raise
    assert_close(got, net(x, w, b))
