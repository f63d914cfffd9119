"""`linear` (``x @ weight.T + bias``, `torch.nn.functional.linear`) and its gradients."""

from __future__ import annotations

import math
from typing import Any

from xconv._validation import check_shape, namespace_of, true_or_false

__all__ = ["linear", "linear_backward"]


def _check(x: Any, weight: Any) -> None:
    if weight.ndim != 2:
        raise ValueError(
            f"`weight` must be a 2-D array (out_features, in_features), "
            f"got shape {tuple(weight.shape)}"
        )
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"the last axis of `x` (shape {tuple(x.shape)}) must be in_features "
            f"(={weight.shape[1]}, from `weight` of shape {tuple(weight.shape)})"
        )


def linear(x: Any, weight: Any, /, bias: Any = None) -> Any:
    """``x @ weight.T + bias``: an affine map of the last axis of `x`.

    Args:
        x: input of shape (*, in_features), real floating dtype (any leading axes,
            none included).
        weight: (out_features, in_features).
        bias: (out_features,), or None (default) for none.

    Shape:
        Output (*, out_features).

    Example:
        >>> import numpy as np
        >>> linear(np.array([1.0, 2.0]), np.array([[1.0, 1.0], [0.0, 1.0]]), np.ones(2))
        array([4., 3.])
    """
    xp = namespace_of(x=x, weight=weight, bias=bias)
    _check(x, weight)
    if bias is not None:
        check_shape(bias, "bias", (weight.shape[0],), "one value per output feature")
    out = xp.matmul(x, xp.matrix_transpose(weight))
    return out if bias is None else out + bias


def linear_backward(
    grad_output: Any, x: Any, weight: Any, /, *, bias: bool = True
) -> tuple[Any, Any, Any]:
    """Gradients of `linear`: ``(grad_input, grad_weight, grad_bias)``.

    ``grad_input = grad_output @ weight``; `grad_weight` and `grad_bias` sum over
    every leading axis. `grad_bias` is None when `bias` is False.

    Example:
        >>> import numpy as np
        >>> gx, gw, gb = linear_backward(np.ones(2), np.array([1.0, 2.0]), np.eye(2))
        >>> gw
        array([[1., 2.],
               [1., 2.]])
    """
    xp = namespace_of(grad_output=grad_output, x=x, weight=weight)
    with_bias = true_or_false(bias, "bias")
    _check(x, weight)
    out_shape = (*tuple(x.shape[:-1]), weight.shape[0])
    check_shape(grad_output, "grad_output", out_shape, "the output's shape")
    grad_input = xp.matmul(grad_output, weight)
    # leading axes as one: (M, out) and (M, in)
    rows = math.prod(x.shape[:-1])
    g = xp.reshape(grad_output, (rows, weight.shape[0]))
    grad_weight = xp.matmul(xp.matrix_transpose(g), xp.reshape(x, (rows, weight.shape[1])))
    grad_bias = xp.sum(g, axis=0) if with_bias else None
    return grad_input, grad_weight, grad_bias
