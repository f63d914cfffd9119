"""What xconv's suite needs beyond `xconv.testing`: its references and gradient checks.

The references do not use xconv: PyTorch (CPU, float64), a direct-loop convolution in
plain NumPy, and central finite differences. Host conversions, finite differences and
the PyTorch import come from `xconv.testing`, the plugin any project can use; the names
the test files import stay here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from xconv.testing import TORCH_MISSING, from_numpy, numerical_gradient, to_numpy

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - the test extra installs torch
    torch = None  # type: ignore[assignment]
    F = None  # type: ignore[assignment]

requires_torch_reason = TORCH_MISSING
to_np = to_numpy


def to_xp(a: Any, xp: Any, dtype: str | None = None) -> Any:
    """A NumPy array as an array of namespace `xp` (`xconv.testing.from_numpy`)."""
    return from_numpy(a, xp, dtype=dtype)


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding, written independently of xconv for the tests."""
    effective = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = max(0, (out - 1) * stride + effective - size)
    return total // 2, total - total // 2


def explicit_pads(
    padding: Any,
    size: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, ...]:
    """Any padding form as (left, right, top, bottom), torch.nn.functional.pad's order."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        top, bottom = same_pads(size[0], kernel[0], stride[0], dilation[0])
        left, right = same_pads(size[1], kernel[1], stride[1], dilation[1])
        return (left, right, top, bottom)
    if isinstance(padding, int):
        return (padding,) * 4
    if isinstance(padding[0], int):
        return (padding[1], padding[1], padding[0], padding[0])
    (top, bottom), (left, right) = padding
    return (left, right, top, bottom)


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def torch_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    grad_output: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """PyTorch float64 forward and (given `grad_output`) all three gradients."""
    s, d = pair(stride), pair(dilation)
    pads = explicit_pads(padding, x.shape[2:], w.shape[2:], s, d)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    tb = None if b is None else torch.tensor(b, dtype=torch.float64, requires_grad=True)
    out = F.conv2d(F.pad(tx, pads), tw, tb, stride=s, dilation=d, groups=groups)
    result = {"out": out.detach().numpy()}
    if grad_output is not None:
        out.backward(torch.tensor(grad_output, dtype=torch.float64))
        result["grad_input"] = tx.grad.numpy()
        result["grad_weight"] = tw.grad.numpy()
        if tb is not None:
            result["grad_bias"] = tb.grad.numpy()
    return result


def loop_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> np.ndarray:
    """The definition of a grouped 2-D cross-correlation, one output element at a time."""
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    left, right, top, bottom = explicit_pads(padding, (h, wd), (kh, kw), (sh, sw), (dh, dw))
    xp_ = np.zeros((n, c, h + top + bottom, wd + left + right))
    xp_[:, :, top : top + h, left : left + wd] = x
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + left + right - dw * (kw - 1) - 1) // sw + 1
    fg = f // groups
    out = np.zeros((n, f, oh, ow))
    for ni, fi, i, j in itertools.product(range(n), range(f), range(oh), range(ow)):
        g = fi // fg
        total = 0.0 if b is None else b[fi]
        for ci, a, bb in itertools.product(range(cg), range(kh), range(kw)):
            total += w[fi, ci, a, bb] * xp_[ni, g * cg + ci, i * sh + a * dh, j * sw + bb * dw]
        out[ni, fi, i, j] = total
    return out


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max(max |expected|, tiny): one scale for the whole array."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(expected))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(actual - expected))) / scale


def layer_gradient_check(layer: Any, x: np.ndarray, xp: Any, *, seed: int = 0) -> float:
    """Relative error between `layer.backward_pass` and finite differences at `x`.

    The loss is ``sum(forward_pass(X) * probe)`` for a fixed random `probe`, so its
    gradient with respect to the output is `probe`. The layer's forward pass must be
    deterministic; the finite differences run with ``training=False``.
    """
    out = to_np(layer.forward_pass(to_xp(x, xp)))
    probe = np.random.default_rng(seed).standard_normal(out.shape)
    grad_input = to_np(layer.backward_pass(to_xp(probe, xp)))

    def loss(a: np.ndarray) -> float:
        return float(np.sum(to_np(layer.forward_pass(to_xp(a, xp), training=False)) * probe))

    return relative_error(grad_input, numerical_gradient(loss, x))


def directional_error(
    f: Callable[[np.ndarray], float],
    a: np.ndarray,
    grad: np.ndarray,
    directions: int,
    *,
    eps: float = 1e-6,
    seed: int = 0,
) -> float:
    """Largest error of `grad` along random directions v, by central differences.

    Compares ``(f(a + eps v) - f(a - eps v)) / (2 eps)`` with ``<grad, v>`` for
    `directions` standard normal v, relative to ``|grad| |v|``: two evaluations per
    direction instead of two per element, for libraries where each call is slow. A wrong
    gradient passes only if its error is orthogonal to every v (probability zero).
    """
    rng = np.random.default_rng(seed)
    worst = 0.0
    scale = max(float(np.linalg.norm(grad)), np.finfo(np.float64).tiny)
    for _ in range(directions):
        v = rng.standard_normal(a.shape)
        slope = (f(a + eps * v) - f(a - eps * v)) / (2 * eps)
        worst = max(worst, abs(slope - float(np.sum(grad * v))) / (scale * np.linalg.norm(v)))
    return worst


def gradient_errors(
    loss: Callable[[dict[str, np.ndarray]], float],
    point: dict[str, np.ndarray],
    analytic: dict[str, Any],
    *,
    eps: float = 1e-6,
    directions: int | None = None,
) -> dict[str, float]:
    """Relative error of each claimed gradient against central finite differences.

    `loss(arrays)` is a scalar function of named float64 NumPy arrays; `point` is where
    to differentiate, and `analytic[name]` (any backend's array) is the claimed gradient
    with respect to `point[name]`. One entry per name of `point`. Differences are taken
    for every element (`numerical_gradient`), or along `directions` random directions
    (`directional_error`) when that is given.
    """
    errors = {}
    for name, value in point.items():

        def partial(a: np.ndarray, name: str = name) -> float:
            return loss({**point, name: a})

        claimed = to_np(analytic[name])
        if directions is None:
            errors[name] = relative_error(claimed, numerical_gradient(partial, value, eps=eps))
        else:
            errors[name] = directional_error(partial, value, claimed, directions, eps=eps)
    return errors


def layer_gradient_errors(
    layer: Any,
    x: np.ndarray,
    xp: Any,
    *,
    training: bool = True,
    seed: int = 0,
    directions: int | None = None,
) -> dict[str, float]:
    """`gradient_errors` of a layer, with respect to its input ("X") and every parameter.

    The loss is ``sum(forward_pass(X, training) * probe)`` for a fixed random `probe`.
    Before every forward pass the layer's random state and buffers are restored, so a
    Dropout layer draws the same mask each time and BatchNormalization's running
    statistics stay put; training-mode batch statistics are differentiated through.
    """
    random_state, buffers = layer.random_state(), dict(layer.buffers)
    params = {key: to_np(value) for key, value in layer.params.items()}

    def forward(arrays: dict[str, np.ndarray]) -> np.ndarray:
        layer.set_random_state(random_state)
        layer.buffers = dict(buffers)
        layer.params = {key: to_xp(arrays[key], xp) for key in params}
        return to_np(layer.forward_pass(to_xp(arrays["X"], xp), training=training))

    point = {"X": x, **params}
    probe = np.random.default_rng(seed).standard_normal(forward(point).shape)
    analytic = {"X": layer.backward_pass(to_xp(probe, xp)), **layer.grads}
    errors = gradient_errors(
        lambda arrays: float(np.sum(forward(arrays) * probe)), point, analytic
    )
    forward(point)  # leave the layer at `point`
    return errors


def op_gradient_errors(
    forward: Callable[..., Any],
    backward: Callable[..., dict[str, Any]],
    point: dict[str, np.ndarray],
    xp: Any,
    *,
    seed: int = 0,
    directions: int | None = None,
) -> dict[str, float]:
    """`gradient_errors` of a functional op: ``forward(**arrays)`` and its gradients.

    `backward(grad_output, **arrays)` returns the gradients by argument name, for the
    loss ``sum(forward(**arrays) * probe)`` whose output gradient is `probe`.
    """

    def output(arrays: dict[str, np.ndarray]) -> np.ndarray:
        return to_np(forward(**{k: to_xp(v, xp) for k, v in arrays.items()}))

    probe = np.random.default_rng(seed).standard_normal(output(point).shape)
    analytic = backward(to_xp(probe, xp), **{k: to_xp(v, xp) for k, v in point.items()})
    return gradient_errors(
        lambda arrays: float(np.sum(output(arrays) * probe)),
        point,
        analytic,
        directions=directions,
    )
