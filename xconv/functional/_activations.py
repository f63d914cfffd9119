"""Activation functions and their gradients, each forward beside its backward.

Every backward takes the gradient of the loss with respect to the activation's
output, and either the forward pass's input `x` or its `output`, whichever gives
the more accurate gradient without recomputing the forward pass:

- from the input `x`: `relu`, `leaky_relu`, `elu`, `selu`, `softplus`;
- from the `output`: `sigmoid`, `tanh`, `softmax`, `log_softmax`.

`ACTIVATIONS` maps the names the `Activation` layer accepts to these pairs, with
which of the two the backward wants. All functions are written so that no
intermediate overflows: sigmoid and softplus work from ``exp(-|x|)``, softmax and
log_softmax subtract the maximum first, elu and selu exponentiate only x <= 0.

`relu`, `leaky_relu` and their backward passes first ask their arrays' kernels:
NumPy's (float32 and float64, no temporary beyond the result), PyTorch's relu;
``xconv.config.fast_kernels = False`` runs the generic code, with the same results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from xconv._validation import as_int, check_shape, namespace_of, real

from ._dispatch import kernels_for

__all__ = [
    "ACTIVATIONS",
    "ActivationFunctions",
    "elu",
    "elu_backward",
    "get_activation",
    "leaky_relu",
    "leaky_relu_backward",
    "log_softmax",
    "log_softmax_backward",
    "relu",
    "relu_backward",
    "selu",
    "selu_backward",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "softplus",
    "softplus_backward",
    "tanh",
    "tanh_backward",
]

# SELU's constants (Klambauer et al. 2017), as PyTorch and TensorFlow use them
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _check_alpha(alpha: object) -> float:
    try:
        return real(alpha, "alpha")
    except (TypeError, ValueError):  # one kind of error for both, as always
        raise TypeError(f"`alpha` must be a finite real number, got {alpha!r}") from None


def _array(result: Any, xp: Any) -> Any:
    """`result` as an array: NumPy's arithmetic on 0-d arrays gives scalars."""
    return xp.asarray(result) if result.ndim == 0 else result


def _check_backward(grad_output: Any, saved: Any, saved_name: str) -> Any:
    """The namespace of a backward's arrays, which must have one shape."""
    xp = namespace_of(grad_output=grad_output, **{saved_name: saved})
    what = f"the shape of `{saved_name}`"
    check_shape(grad_output, "grad_output", tuple(saved.shape), what)
    return xp


def _check_axis(x: Any, value: object) -> int:
    axis = as_int(value)
    if axis is None:
        raise TypeError(f"`axis` must be an integer, got {value!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"`axis` (={axis}) is out of range for `x` of shape {tuple(x.shape)} ({x.ndim} axes)"
        )
    return axis


# -- relu -----------------------------------------------------------------------------


def relu(x: Any, /) -> Any:
    """``max(x, 0)`` elementwise (NaN stays NaN).

    Example:
        >>> import numpy as np
        >>> relu(np.array([-2.0, 0.0, 3.0]))
        array([0., 0., 3.])
    """
    xp = namespace_of(x=x)
    if (out := kernels_for(xp).relu(x)) is not None:
        return out
    return xp.where(x < 0, 0.0, x)


def relu_backward(grad_output: Any, x: Any, /) -> Any:
    """Gradient of `relu` from its input `x`: `grad_output` where x > 0, else 0.

    Example:
        >>> import numpy as np
        >>> relu_backward(np.ones(3), np.array([-2.0, 0.0, 3.0]))
        array([0., 0., 1.])
    """
    xp = _check_backward(grad_output, x, "x")
    if (grad := kernels_for(xp).relu_backward(grad_output, x)) is not None:
        return grad
    return xp.where(x > 0, grad_output, 0.0)


# -- leaky relu -----------------------------------------------------------------------


def leaky_relu(x: Any, /, *, alpha: float = 0.2) -> Any:
    """`x` where x >= 0, ``alpha * x`` below (the slope `alpha` defaults to 0.2).

    Example:
        >>> import numpy as np
        >>> leaky_relu(np.array([-2.0, 0.0, 3.0]))
        array([-0.4,  0. ,  3. ])
    """
    xp = namespace_of(x=x)
    slope = _check_alpha(alpha)
    if (out := kernels_for(xp).leaky_relu(x, slope)) is not None:
        return out
    return xp.where(x < 0, slope * x, x)


def leaky_relu_backward(grad_output: Any, x: Any, /, *, alpha: float = 0.2) -> Any:
    """Gradient of `leaky_relu` from its input `x`: 1 where x > 0, else `alpha`.

    Example:
        >>> import numpy as np
        >>> leaky_relu_backward(np.ones(3), np.array([-2.0, 0.0, 3.0]))
        array([0.2, 0.2, 1. ])
    """
    xp = _check_backward(grad_output, x, "x")
    slope = _check_alpha(alpha)
    if (grad := kernels_for(xp).leaky_relu_backward(grad_output, x, slope)) is not None:
        return grad
    return xp.where(x > 0, grad_output, slope * grad_output)


# -- elu and selu ---------------------------------------------------------------------


def _negative_part_expm1(x: Any, xp: Any) -> Any:
    """``exp(x) - 1`` where x <= 0 and 0 elsewhere, never overflowing."""
    return xp.expm1(xp.minimum(x, 0.0))


def elu(x: Any, /, *, alpha: float = 1.0) -> Any:
    """`x` where x > 0, ``alpha * (exp(x) - 1)`` elsewhere.

    Example:
        >>> import numpy as np
        >>> elu(np.array([-1000.0, 0.0, 2.0]))
        array([-1.,  0.,  2.])
    """
    xp = namespace_of(x=x)
    scale = _check_alpha(alpha)
    return xp.where(x > 0, x, scale * _negative_part_expm1(x, xp))


def elu_backward(grad_output: Any, x: Any, /, *, alpha: float = 1.0) -> Any:
    """Gradient of `elu` from its input `x`: 1 where x > 0, else ``alpha * exp(x)``.

    Example:
        >>> import numpy as np
        >>> elu_backward(np.ones(3), np.array([-1000.0, 0.0, 2.0]))
        array([0., 1., 1.])
    """
    xp = _check_backward(grad_output, x, "x")
    scale = _check_alpha(alpha)
    slope = scale * xp.exp(xp.minimum(x, 0.0))
    return xp.where(x > 0, grad_output, slope * grad_output)


def selu(x: Any, /) -> Any:
    """``SELU_SCALE * elu(x, alpha=SELU_ALPHA)``: self-normalising ELU.

    Example:
        >>> import numpy as np
        >>> selu(np.array([0.0, 1.0])).round(4)
        array([0.    , 1.0507])
    """
    xp = namespace_of(x=x)
    negative = SELU_ALPHA * _negative_part_expm1(x, xp)
    return _array(SELU_SCALE * xp.where(x > 0, x, negative), xp)


def selu_backward(grad_output: Any, x: Any, /) -> Any:
    """Gradient of `selu` from its input `x`: SCALE where x > 0, else SCALE * ALPHA * exp(x).

    Example:
        >>> import numpy as np
        >>> selu_backward(np.ones(2), np.array([-1000.0, 1.0])).round(4)
        array([0.    , 1.0507])
    """
    xp = _check_backward(grad_output, x, "x")
    negative = SELU_ALPHA * xp.exp(xp.minimum(x, 0.0))
    return _array(SELU_SCALE * grad_output * xp.where(x > 0, 1.0, negative), xp)


# -- sigmoid and tanh -----------------------------------------------------------------


def sigmoid(x: Any, /) -> Any:
    """``1 / (1 + exp(-x))``, from ``exp(-|x|)`` so that nothing overflows.

    Example:
        >>> import numpy as np
        >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
        array([0. , 0.5, 1. ])
    """
    xp = namespace_of(x=x)
    # e = exp(-|x|) is in (0, 1]: sigmoid is 1 / (1 + e) for x >= 0, e / (1 + e) below
    e = xp.exp(-xp.abs(x))
    return _array(xp.where(x >= 0, 1.0, e) / (1.0 + e), xp)


def sigmoid_backward(grad_output: Any, output: Any, /) -> Any:
    """Gradient of `sigmoid` from its `output` s: ``grad_output * s * (1 - s)``.

    Example:
        >>> import numpy as np
        >>> sigmoid_backward(np.ones(2), np.array([0.5, 1.0]))
        array([0.25, 0.  ])
    """
    xp = _check_backward(grad_output, output, "output")
    return _array(grad_output * output * (1.0 - output), xp)


def tanh(x: Any, /) -> Any:
    """Hyperbolic tangent.

    Example:
        >>> import numpy as np
        >>> tanh(np.array([-1000.0, 0.0]))
        array([-1.,  0.])
    """
    xp = namespace_of(x=x)
    return _array(xp.tanh(x), xp)


def tanh_backward(grad_output: Any, output: Any, /) -> Any:
    """Gradient of `tanh` from its `output` t: ``grad_output * (1 - t**2)``.

    Example:
        >>> import numpy as np
        >>> tanh_backward(np.ones(2), np.array([0.0, 0.5]))
        array([1.  , 0.75])
    """
    xp = _check_backward(grad_output, output, "output")
    return _array(grad_output * (1.0 - output * output), xp)


# -- softplus -------------------------------------------------------------------------


def _softplus_options(beta: object, threshold: object) -> tuple[float, float]:
    b = real(beta, "beta")
    if b == 0:
        raise ValueError(f"`beta` must not be zero, got {beta!r}")
    return b, real(threshold, "threshold")


def softplus(x: Any, /, *, beta: float = 1.0, threshold: float = 20.0) -> Any:
    """``log(1 + exp(beta * x)) / beta``, as `torch.nn.functional.softplus`: `x`
    itself where ``beta * x > threshold``. Computed as ``(max(z, 0) + log1p(exp(-|z|)))
    / beta`` with ``z = beta * x``, so nothing overflows.

    Example:
        >>> import numpy as np
        >>> softplus(np.array([-1000.0, 0.0, 1.0])).round(4)
        array([0.    , 0.6931, 1.3133])
        >>> softplus(np.array([0.0, 1.0]), beta=2.0, threshold=1.0).round(4)
        array([0.3466, 1.    ])
    """
    xp = namespace_of(x=x)
    b, limit = _softplus_options(beta, threshold)
    z = _array(x * b, xp)  # (a 0-d x: NumPy gives a scalar)
    soft = (xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))) / b
    return _array(xp.where(z > limit, x, soft), xp)


def softplus_backward(
    grad_output: Any, x: Any, /, *, beta: float = 1.0, threshold: float = 20.0
) -> Any:
    """Gradient of `softplus` from its input `x`: ``grad_output * sigmoid(beta * x)``,
    and `grad_output` itself where ``beta * x > threshold``.

    Example:
        >>> import numpy as np
        >>> softplus_backward(np.ones(3), np.array([-1000.0, 0.0, 1000.0]))
        array([0. , 0.5, 1. ])
    """
    xp = _check_backward(grad_output, x, "x")
    b, limit = _softplus_options(beta, threshold)
    z = _array(x * b, xp)  # (a 0-d x: NumPy gives a scalar)
    return _array(xp.where(z > limit, grad_output, grad_output * sigmoid(z)), xp)


# -- softmax and log-softmax ----------------------------------------------------------


def softmax(x: Any, /, *, axis: int = -1) -> Any:
    """``exp(x) / sum(exp(x))`` along `axis`, with the maximum subtracted first.

    Example:
        >>> import numpy as np
        >>> softmax(np.array([[1000.0, 1000.0], [0.0, -1000.0]]))
        array([[0.5, 0.5],
               [1. , 0. ]])
    """
    xp = namespace_of(x=x)
    axis = _check_axis(x, axis)
    # shift: the largest logit becomes 0, so exp cannot overflow
    if x.shape[axis] == 0:
        return xp.zeros_like(x)  # an empty axis: the empty result, as PyTorch gives
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def softmax_backward(grad_output: Any, output: Any, /, *, axis: int = -1) -> Any:
    """Gradient of `softmax` from its `output` s: ``s * (g - sum(g * s, axis))``.

    Example:
        >>> import numpy as np
        >>> softmax_backward(np.array([1.0, 0.0]), np.array([0.5, 0.5]))
        array([ 0.25, -0.25])
    """
    xp = _check_backward(grad_output, output, "output")
    axis = _check_axis(output, axis)
    dot = xp.sum(grad_output * output, axis=axis, keepdims=True)
    return output * (grad_output - dot)


def log_softmax(x: Any, /, *, axis: int = -1) -> Any:
    """``log(softmax(x))`` along `axis`, as ``x - max - log(sum(exp(x - max)))``.

    Example:
        >>> import numpy as np
        >>> log_softmax(np.array([0.0, -1000.0]))
        array([    0., -1000.])
    """
    xp = namespace_of(x=x)
    axis = _check_axis(x, axis)
    # shift by the maximum, then subtract the log of the (now >= 1) sum of exponentials
    if x.shape[axis] == 0:
        return xp.zeros_like(x)  # an empty axis: the empty result, as PyTorch gives
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def log_softmax_backward(grad_output: Any, output: Any, /, *, axis: int = -1) -> Any:
    """Gradient of `log_softmax` from its `output` o: ``g - exp(o) * sum(g, axis)``.

    Example:
        >>> import numpy as np
        >>> log_softmax_backward(np.array([1.0, 0.0]), np.log(np.array([0.5, 0.5])))
        array([ 0.5, -0.5])
    """
    xp = _check_backward(grad_output, output, "output")
    axis = _check_axis(output, axis)
    return grad_output - xp.exp(output) * xp.sum(grad_output, axis=axis, keepdims=True)


# -- by name --------------------------------------------------------------------------


class ActivationFunctions(NamedTuple):
    """An activation's forward and backward, and what its backward takes.

    ``forward(x)`` gives the output; ``backward(grad_output, saved)`` the gradient
    with respect to `x`, where `saved` is the forward's input `x` when `saved` is
    ``"input"``, and its output when ``"output"``.
    """

    forward: Callable[[Any], Any]
    backward: Callable[[Any, Any], Any]
    saved: Literal["input", "output"]


#: The activations the `Activation` layer knows, by name, with their default options
#: (leaky_relu's slope 0.2, elu's alpha 1.0, softmax over the last axis).
ACTIVATIONS: Mapping[str, ActivationFunctions] = MappingProxyType(
    {
        "relu": ActivationFunctions(relu, relu_backward, "input"),
        "leaky_relu": ActivationFunctions(leaky_relu, leaky_relu_backward, "input"),
        "elu": ActivationFunctions(elu, elu_backward, "input"),
        "selu": ActivationFunctions(selu, selu_backward, "input"),
        "sigmoid": ActivationFunctions(sigmoid, sigmoid_backward, "output"),
        "tanh": ActivationFunctions(tanh, tanh_backward, "output"),
        "softplus": ActivationFunctions(softplus, softplus_backward, "input"),
        "softmax": ActivationFunctions(softmax, softmax_backward, "output"),
    }
)


def get_activation(name: str) -> ActivationFunctions:
    """The forward and backward of the activation called `name`.

    Example:
        >>> get_activation("tanh").saved
        'output'
        >>> get_activation("swish")
        Traceback (most recent call last):
        ...
        ValueError: `name` must be one of 'elu', 'leaky_relu', 'relu', 'selu', 'sigmoid', \
'softmax', 'softplus', 'tanh', got 'swish'
    """
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(key) for key in sorted(ACTIVATIONS))
        raise ValueError(f"`name` must be one of {valid}, got {name!r}") from None
