"""Elementwise activations of `torch.nn.functional` that CNN code calls, each forward
beside its backward: `gelu` (exact or tanh), `silu`, `hardtanh`, `relu6`.

Every backward takes the gradient of the loss with respect to the output and the
forward's input `x`. The array API standard has no ``erf``, so the exact GELU
computes it here (`erf`): a power series near 0 and a continued fraction for the
tails, to about 1e-16 in float64.
"""

from __future__ import annotations

import math
from typing import Any

from xconv._validation import check_shape, namespace_of, real

__all__ = [
    "gelu",
    "gelu_backward",
    "hardtanh",
    "hardtanh_backward",
    "relu6",
    "relu6_backward",
    "silu",
    "silu_backward",
]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715  # the tanh approximation's cubic coefficient (Hendrycks & Gimpel)
# |x| beyond which GELU's gradient is 0 or 1 to every dtype's precision; x^3 stays finite
_SATURATED = 1e12


def _backward_namespace(grad_output: Any, x: Any) -> Any:
    xp = namespace_of(grad_output=grad_output, x=x)
    check_shape(grad_output, "grad_output", tuple(x.shape), "the shape of `x`")
    return xp


def _sigmoid(x: Any, xp: Any) -> Any:
    e = xp.exp(-xp.abs(x))  # in (0, 1]: no overflow
    return xp.where(x >= 0, 1.0, e) / (1.0 + e)


# -- erf ------------------------------------------------------------------------------


def erf(x: Any, xp: Any) -> Any:
    """The error function of `x`, elementwise, with standard functions only.

    For |x| <= 2 the Maclaurin series ``2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))``
    (40 terms: the n-th is below 2^81 / 40! < 1e-23 there); beyond, ``1 - erfc(x)``
    with erfc's continued fraction ``exp(-x^2) / sqrt(pi) / (x + 1/2 / (x + 1 / (x +
    3/2 / ...)))``, 60 levels deep, which has converged for x >= 2.

    Example:
        >>> import numpy as np
        >>> [round(float(v), 10) for v in erf(np.array([-0.5, 0.0, 3.0]), np)]
        [-0.5204998778, 0.0, 0.9999779095]
    """
    magnitude = xp.abs(x)
    near = xp.minimum(magnitude, 2.0)
    power, series = near, near
    for n in range(1, 40):
        power = -power * near * near / n
        series = series + power / (2 * n + 1)
    far = xp.clip(magnitude, 2.0, 27.0)  # erfc(27) underflows float64 already
    denominator = far
    for k in range(60, 0, -1):
        denominator = far + (k / 2) / denominator
    tail = 1.0 - xp.exp(-far * far) / (math.sqrt(math.pi) * denominator)
    value = xp.where(magnitude <= 2.0, (2.0 / math.sqrt(math.pi)) * series, tail)
    return xp.sign(x) * value


# -- gelu -----------------------------------------------------------------------------


def _tanh_argument(x: Any, xp: Any) -> Any:
    """``sqrt(2/pi) * (x + 0.044715 x^3)``, x bounded so that x^3 cannot overflow."""
    bounded = xp.clip(x, -_SATURATED, _SATURATED)
    return _SQRT_2_OVER_PI * (bounded + _TANH_CUBIC * bounded * bounded * bounded)


def _check_approximate(approximate: object) -> str:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"`approximate` must be 'none' or 'tanh', got {approximate!r}")
    return str(approximate)


def gelu(x: Any, /, *, approximate: str = "none") -> Any:
    """``x * Phi(x)``, Phi the standard normal CDF; with ``approximate="tanh"``,
    ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``.

    Example:
        >>> import numpy as np
        >>> gelu(np.array([-1.0, 0.0, 1.0])).round(6)
        array([-0.158655,  0.      ,  0.841345])
    """
    xp = namespace_of(x=x)
    if _check_approximate(approximate) == "tanh":
        # 0.5 * (1 + tanh(u)) is sigmoid(2u), which does not cancel where u << 0
        return x * _sigmoid(2.0 * _tanh_argument(x, xp), xp)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0), xp))


def gelu_backward(grad_output: Any, x: Any, /, *, approximate: str = "none") -> Any:
    """Gradient of `gelu` from its input `x`: ``Phi(x) + x * phi(x)`` (exact), or the
    derivative of the tanh form."""
    xp = _backward_namespace(grad_output, x)
    if _check_approximate(approximate) == "tanh":
        # d/dx x * sigmoid(2u) = sigmoid(2u) + x * 2 sigmoid(2u) sigmoid(-2u) * du/dx
        u = _tanh_argument(x, xp)
        bounded = xp.clip(x, -_SATURATED, _SATURATED)
        inner_slope = _SQRT_2_OVER_PI * (1.0 + 3.0 * _TANH_CUBIC * bounded * bounded)
        up, down = _sigmoid(2.0 * u, xp), _sigmoid(-2.0 * u, xp)
        return grad_output * (up + 2.0 * x * up * down * inner_slope)
    cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0), xp))
    bounded = xp.clip(x, -_SATURATED, _SATURATED)
    density = xp.exp(-0.5 * bounded * bounded) / math.sqrt(2.0 * math.pi)
    return grad_output * (cdf + x * density)


# -- silu -----------------------------------------------------------------------------


def silu(x: Any, /) -> Any:
    """``x * sigmoid(x)`` (swish).

    Example:
        >>> import numpy as np
        >>> silu(np.array([-1000.0, 0.0, 2.0])).round(6)
        array([-0.      ,  0.      ,  1.761594])
    """
    xp = namespace_of(x=x)
    return x * _sigmoid(x, xp)


def silu_backward(grad_output: Any, x: Any, /) -> Any:
    """Gradient of `silu` from its input `x`: ``s * (1 + x * (1 - s))``, s = sigmoid(x)."""
    xp = _backward_namespace(grad_output, x)
    s = _sigmoid(x, xp)
    return grad_output * (s * (1.0 + x * (1.0 - s)))


# -- hardtanh and relu6 ---------------------------------------------------------------


def _bounds(min_val: object, max_val: object) -> tuple[float, float]:
    low, high = real(min_val, "min_val"), real(max_val, "max_val")
    if low > high:
        raise ValueError(f"`min_val` (={min_val!r}) must not exceed `max_val` (={max_val!r})")
    return low, high


def hardtanh(x: Any, /, *, min_val: float = -1.0, max_val: float = 1.0) -> Any:
    """`x` clipped to [min_val, max_val] (NaN stays NaN).

    Example:
        >>> import numpy as np
        >>> hardtanh(np.array([-3.0, 0.5, 3.0]))
        array([-1. ,  0.5,  1. ])
    """
    xp = namespace_of(x=x)
    low, high = _bounds(min_val, max_val)
    return xp.where(x < low, low, xp.where(x > high, high, x))


def hardtanh_backward(
    grad_output: Any, x: Any, /, *, min_val: float = -1.0, max_val: float = 1.0
) -> Any:
    """Gradient of `hardtanh`: `grad_output` where min_val < x < max_val, 0 elsewhere
    (at the bounds too, as in PyTorch)."""
    xp = _backward_namespace(grad_output, x)
    low, high = _bounds(min_val, max_val)
    return xp.where((x > low) & (x < high), grad_output, 0.0)


def relu6(x: Any, /) -> Any:
    """``min(max(x, 0), 6)``: `hardtanh` on [0, 6].

    Example:
        >>> import numpy as np
        >>> relu6(np.array([-1.0, 3.0, 9.0]))
        array([0., 3., 6.])
    """
    return hardtanh(x, min_val=0.0, max_val=6.0)


def relu6_backward(grad_output: Any, x: Any, /) -> Any:
    """Gradient of `relu6`: `grad_output` where 0 < x < 6, 0 elsewhere."""
    return hardtanh_backward(grad_output, x, min_val=0.0, max_val=6.0)
