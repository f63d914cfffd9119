"""Regression losses of `torch.nn.functional` and their gradients, side by side.

`mse_loss`, `l1_loss` and `smooth_l1_loss` compare `input` and `target` of one shape
element by element (PyTorch also broadcasts them, with a warning; xconv refuses shapes
that differ). ``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"``. Each
backward takes the gradient of the loss (0-d, or the inputs' shape for ``"none"``) and
returns ``(grad_input, grad_target)``; ``grad_target`` is ``-grad_input``.

`mse_loss` and `l1_loss` take PyTorch's ``weight`` too (2.6 and later): one weight per
element, the input's shape; each element's loss is multiplied by it, and the mean
divides by the weights' sum.
"""

from __future__ import annotations

from typing import Any

from xconv._validation import check_shape, namespace_of, nonnegative_real

from ._loss_functions import _present, check_reduction, output_scale, reduce

__all__ = [
    "l1_loss",
    "l1_loss_backward",
    "mse_loss",
    "mse_loss_backward",
    "smooth_l1_loss",
    "smooth_l1_loss_backward",
]


def _difference(
    input: Any, target: Any, reduction: object, weight: Any = None, **more: Any
) -> tuple[Any, Any, str]:
    """The namespace of all the arrays (`more`: a backward's output gradient), checked
    once, the difference and the reduction."""
    xp = namespace_of(**more, input=input, target=target, **_present(weight=weight))
    check_shape(target, "target", tuple(input.shape), "the shape of `input`")
    if weight is not None:
        check_shape(weight, "weight", tuple(input.shape), "the shape of `input`")
    return xp, input - target, check_reduction(reduction)


def _reduce(loss: Any, reduction: str, xp: Any, weight: Any) -> Any:
    """Each element's `loss`, times its `weight` if given (then the mean is over the
    weights' sum), reduced."""
    if weight is None:
        return reduce(loss, reduction, xp)
    return reduce(loss * weight, reduction, xp, xp.sum(weight))


def _backward(
    grad_output: Any, input: Any, target: Any, reduction: object, weight: Any = None
) -> tuple[Any, Any, Any, str]:
    """The namespace, the difference and each element's scale of a backward (the
    output's, times the element's weight if given)."""
    xp, difference, reduction = _difference(
        input, target, reduction, weight, grad_output=grad_output
    )
    if weight is None:
        return xp, difference, output_scale(grad_output, tuple(input.shape), reduction), reduction
    scale = output_scale(grad_output, tuple(input.shape), reduction, xp.sum(weight))
    return xp, difference, scale * weight, reduction


# -- mse ------------------------------------------------------------------------------


def mse_loss(input: Any, target: Any, /, *, reduction: str = "mean", weight: Any = None) -> Any:
    """Squared error ``(input - target) ** 2``, times `weight` if given, reduced.

    Example:
        >>> import numpy as np
        >>> float(mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
        2.5
    """
    xp, difference, reduction = _difference(input, target, reduction, weight)
    return _reduce(difference * difference, reduction, xp, weight)


def mse_loss_backward(
    grad_output: Any,
    input: Any,
    target: Any,
    /,
    *,
    reduction: str = "mean",
    weight: Any = None,
) -> tuple[Any, Any]:
    """Gradients of `mse_loss`: ``2 * (input - target)`` times the output's scale (and
    each element's weight)."""
    _, difference, scale, _ = _backward(grad_output, input, target, reduction, weight)
    grad_input = 2.0 * difference * scale
    return grad_input, -grad_input


# -- l1 -------------------------------------------------------------------------------


def l1_loss(input: Any, target: Any, /, *, reduction: str = "mean", weight: Any = None) -> Any:
    """Absolute error ``|input - target|``, times `weight` if given, reduced.

    Example:
        >>> import numpy as np
        >>> float(l1_loss(np.array([1.0, -3.0]), np.array([0.0, 0.0])))
        2.0
    """
    xp, difference, reduction = _difference(input, target, reduction, weight)
    return _reduce(xp.abs(difference), reduction, xp, weight)


def l1_loss_backward(
    grad_output: Any,
    input: Any,
    target: Any,
    /,
    *,
    reduction: str = "mean",
    weight: Any = None,
) -> tuple[Any, Any]:
    """Gradients of `l1_loss`: ``sign(input - target)`` (0 where they are equal, as in
    PyTorch) times the output's scale (and each element's weight)."""
    xp, difference, scale, _ = _backward(grad_output, input, target, reduction, weight)
    grad_input = xp.sign(difference) * scale
    return grad_input, -grad_input


# -- smooth l1 ------------------------------------------------------------------------


def smooth_l1_loss(
    input: Any, target: Any, /, *, reduction: str = "mean", beta: float = 1.0
) -> Any:
    """Huber-like error: ``0.5 * d**2 / beta`` where ``|d| < beta``, else
    ``|d| - 0.5 * beta``, for d = input - target; ``beta=0`` is `l1_loss`.

    Example:
        >>> import numpy as np
        >>> smooth_l1_loss(np.array([0.5, 3.0]), np.zeros(2), reduction="none")
        array([0.125, 2.5  ])
    """
    xp, difference, reduction = _difference(input, target, reduction)
    b = nonnegative_real(beta, "beta")
    size = xp.abs(difference)
    if b == 0:
        return reduce(size, reduction, xp)
    loss = xp.where(size < b, 0.5 * difference * difference / b, size - 0.5 * b)
    return reduce(loss, reduction, xp)


def smooth_l1_loss_backward(
    grad_output: Any, input: Any, target: Any, /, *, reduction: str = "mean", beta: float = 1.0
) -> tuple[Any, Any]:
    """Gradients of `smooth_l1_loss`: ``d / beta`` where ``|d| < beta``, else
    ``sign(d)``, times the output's scale."""
    xp, difference, scale, _ = _backward(grad_output, input, target, reduction)
    b = nonnegative_real(beta, "beta")
    slope = xp.sign(difference)
    if b > 0:
        slope = xp.where(xp.abs(difference) < b, difference / b, slope)
    grad_input = slope * scale
    return grad_input, -grad_input
