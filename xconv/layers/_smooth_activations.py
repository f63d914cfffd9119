"""GELU and SiLU, as layers and as names for `Activation` and the `activation=` shortcut.

The array API standard has no ``erf``, so the exact GELU computes it here: a Taylor
series for ``|x| < 2`` and a continued fraction for the tail, both to about 1e-16 in
float64 (and to float32's rounding in float32).
"""

from __future__ import annotations

import math

import array_api_compat

from xconv._typing import Array, Namespace
from xconv.functional import ActivationFunctions, get_activation, sigmoid

from ._reshape import ParameterFreeLayer

__all__ = ["GELU", "FusedActivation", "SiLU", "activation_functions", "erf"]

_SERIES_TERMS = 48  # 2 ** (2n + 1) / n! is below 1e-20 by then
_FRACTION_TERMS = 64  # the continued fraction has converged for x >= 2 by then
_SWITCH = 2.0  # series below, continued fraction above: each term of the series < 2.4
_TANH_C = math.sqrt(2.0 / math.pi)


def erf(x: Array, /) -> Array:
    """The error function, elementwise, for any array-API namespace.

    Example:
        >>> import numpy as np
        >>> [round(float(v), 12) for v in erf(np.array([-1.0, 0.0, 0.5, 4.0]))]
        [-0.84270079295, 0.0, 0.520499877813, 0.999999984583]
    """
    xp = array_api_compat.array_namespace(x)
    a = xp.abs(x)
    # |x| < 2: erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    s = xp.clip(a, 0.0, _SWITCH)
    term, total = s, s
    for n in range(1, _SERIES_TERMS):
        term = -term * s * s / n
        total = total + term / (2 * n + 1)
    near = 2.0 / math.sqrt(math.pi) * total
    # |x| >= 2: erfc(x) = exp(-x^2) / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / ...)))
    t = xp.clip(a, _SWITCH, 30.0)
    fraction = t
    for k in range(_FRACTION_TERMS, 0, -1):
        fraction = t + (k / 2) / fraction
    far = 1.0 - xp.exp(-t * t) / (math.sqrt(math.pi) * fraction)
    return xp.sign(x) * xp.where(a < _SWITCH, near, far)


def _gelu(x: Array) -> Array:
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _gelu_backward(grad: Array, x: Array) -> Array:
    xp = array_api_compat.array_namespace(grad, x)
    # d/dx x * Phi(x) = Phi(x) + x * phi(x)
    cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
    pdf = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return grad * (cdf + x * pdf)


def _gelu_tanh(x: Array) -> Array:
    xp = array_api_compat.array_namespace(x)
    return 0.5 * x * (1.0 + xp.tanh(_TANH_C * (x + 0.044715 * x * x * x)))


def _gelu_tanh_backward(grad: Array, x: Array) -> Array:
    xp = array_api_compat.array_namespace(grad, x)
    t = xp.tanh(_TANH_C * (x + 0.044715 * x * x * x))
    slope = _TANH_C * (1.0 + 3 * 0.044715 * x * x)
    return grad * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * slope)


def _silu(x: Array) -> Array:
    return x * sigmoid(x)


def _silu_backward(grad: Array, x: Array) -> Array:
    s = sigmoid(x)
    return grad * s * (1.0 + x * (1.0 - s))


_EXTRA = {
    "gelu": ActivationFunctions(_gelu, _gelu_backward, "input"),
    "gelu_tanh": ActivationFunctions(_gelu_tanh, _gelu_tanh_backward, "input"),
    "silu": ActivationFunctions(_silu, _silu_backward, "input"),
}


def activation_functions(name: str, argument: str = "name") -> ActivationFunctions:
    """An activation by name: those of `xconv.functional.ACTIVATIONS`, ``"gelu"``,
    ``"gelu_tanh"`` (the tanh approximation) and ``"silu"`` (also called swish).
    """
    if isinstance(name, str) and name in _EXTRA:
        return _EXTRA[name]
    try:
        return get_activation(name)
    except ValueError:
        valid = ", ".join(repr(n) for n in [*sorted(_base_names()), *sorted(_EXTRA)])
        raise ValueError(f"`{argument}` must be one of {valid}, got {name!r}") from None


def _base_names() -> list[str]:
    from xconv.functional import ACTIVATIONS

    return list(ACTIVATIONS)


class FusedActivation:
    """The ``activation=`` of a layer (Conv2D, Dense): applied to its output.

    ``forward`` keeps what ``backward`` needs in training; ``backward`` is the first
    step of the layer's backward pass. Without a name, both pass their input through.
    """

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.functions = None if name is None else activation_functions(name, "activation")
        self._kept: Array | None = None

    def forward(self, z: Array, training: bool) -> Array:
        if self.functions is None:
            return z
        out = self.functions.forward(z)
        if training:
            self._kept = out if self.functions.saved == "output" else z
        return out

    def backward(self, grad: Array) -> Array:
        if self.functions is None:
            return grad
        if self._kept is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        grad = self.functions.backward(grad, self._kept)
        self._kept = None
        return grad


class _Elementwise(ParameterFreeLayer):
    """An activation layer of a fixed function that keeps its input for backward."""

    _functions: ActivationFunctions

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        return self._functions.forward(X), {}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        return self._functions.backward(accum_grad, saved["X"])


class GELU(_Elementwise):
    """The Gaussian error linear unit, ``x * Phi(x)`` (Hendrycks and Gimpel 2016).

    Args:
        approximate: ``"none"`` (default) for the exact function, as PyTorch's
            default; ``"tanh"`` for ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
        input_shape: the shape of one sample, or taken from the first batch.

    Shape:
        input (N, *input_shape) -> output of the same shape.

    Example:
        >>> import numpy as np
        >>> [round(float(v), 6) for v in GELU().forward_pass(np.array([[-1.0, 0.0, 2.0]]))[0]]
        [-0.158655, 0.0, 1.9545]
    """

    def __init__(
        self, approximate: str = "none", input_shape: tuple[int, ...] | None = None
    ) -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"`approximate` must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self._functions = _EXTRA["gelu" if approximate == "none" else "gelu_tanh"]
        super().__init__(input_shape)


class SiLU(_Elementwise):
    """The sigmoid linear unit (swish), ``x * sigmoid(x)``.

    Shape:
        input (N, *input_shape) -> output of the same shape.

    Example:
        >>> import numpy as np
        >>> [round(float(v), 6) for v in SiLU().forward_pass(np.array([[-1.0, 0.0, 2.0]]))[0]]
        [-0.268941, 0.0, 1.761594]
    """

    _functions = _EXTRA["silu"]
