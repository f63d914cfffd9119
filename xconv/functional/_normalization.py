"""`layer_norm` and `group_norm` of `torch.nn.functional` and their gradients.

Both subtract the mean and divide by ``sqrt(var + eps)`` (the biased variance), over
the last axes (`layer_norm`) or over each group of channels with all its positions
(`group_norm`), then scale by `weight` and shift by `bias` (None: 1 and 0). Both
backwards come from one formula: with x_hat the normalised input, r = 1 / sqrt(var +
eps) and h = grad_output * weight, the input's gradient is
``r * (h - mean(h) - x_hat * mean(h * x_hat))``, means over the normalised elements.

Each op asks its library's kernels first (PyTorch's own, ``xconv.config.delegate``),
once its arguments are checked; None runs the code here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from xconv._validation import as_int, check_shape, namespace_of, nonnegative_real, positive_int

from ._dispatch import kernels_for

__all__ = ["group_norm", "group_norm_backward", "layer_norm", "layer_norm_backward"]


def _present(**arrays: Any) -> dict[str, Any]:
    return {name: value for name, value in arrays.items() if value is not None}


def _normalize(x: Any, xp: Any, eps: float) -> tuple[Any, Any]:
    """`x` normalised over its last axis, and ``1 / sqrt(var + eps)`` (keepdims)."""
    centred = x - xp.mean(x, axis=-1, keepdims=True)
    inverse = 1.0 / xp.sqrt(xp.mean(centred * centred, axis=-1, keepdims=True) + eps)
    return centred * inverse, inverse


def _normalize_backward(h: Any, x_hat: Any, inverse: Any, xp: Any) -> Any:
    """The gradient through `_normalize`, given `h`, the gradient of x_hat."""
    mean_h = xp.mean(h, axis=-1, keepdims=True)
    mean_hx = xp.mean(h * x_hat, axis=-1, keepdims=True)
    return inverse * (h - mean_h - x_hat * mean_hx)


# -- layer_norm -----------------------------------------------------------------------


def _check_layer(x: Any, normalized_shape: object, weight: Any, bias: Any) -> tuple[int, ...]:
    items = normalized_shape if isinstance(normalized_shape, Sequence) else [normalized_shape]
    shape = tuple(as_int(v) for v in items)
    if any(v is None for v in shape):
        raise TypeError(
            f"`normalized_shape` must be an int or a sequence of ints, got {normalized_shape!r}"
        )
    if not shape or tuple(x.shape[len(x.shape) - len(shape) :]) != shape or len(shape) > x.ndim:
        raise ValueError(
            f"`normalized_shape` (={normalized_shape!r}) must be the last axes of `x`, "
            f"shape {tuple(x.shape)}"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None:
            check_shape(value, name, shape, "`normalized_shape`")  # type: ignore[arg-type]
    return shape  # type: ignore[return-value]


def _flatten_last(x: Any, count: int, xp: Any) -> Any:
    """`x` with its last `count` axes as one."""
    lead = tuple(x.shape[: x.ndim - count])
    return xp.reshape(x, (*lead, math.prod(x.shape[x.ndim - count :])))


def layer_norm(
    x: Any,
    /,
    normalized_shape: int | Sequence[int],
    weight: Any = None,
    bias: Any = None,
    eps: float = 1e-5,
) -> Any:
    """`x` normalised over its last axes, ``normalized_shape``, then scaled and shifted.

    Args:
        x: (*, *normalized_shape), real floating dtype.
        normalized_shape: the shape of the last axes to normalise over.
        weight, bias: arrays of shape `normalized_shape`, or None (default).
        eps: added to the variance (default 1e-5).

    Example:
        >>> import numpy as np
        >>> layer_norm(np.array([[1.0, 3.0]]), 2, eps=0.0)
        array([[-1.,  1.]])
    """
    xp = namespace_of(x=x, **_present(weight=weight, bias=bias))
    shape = _check_layer(x, normalized_shape, weight, bias)
    epsilon = nonnegative_real(eps, "eps")
    done = kernels_for(xp).layer_norm(x, shape, weight, bias, epsilon)
    if done is not None:
        return done
    x_hat, _ = _normalize(_flatten_last(x, len(shape), xp), xp, epsilon)
    out = xp.reshape(x_hat, tuple(x.shape))
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def layer_norm_backward(
    grad_output: Any,
    x: Any,
    /,
    normalized_shape: int | Sequence[int],
    weight: Any = None,
    *,
    bias: bool = False,
    eps: float = 1e-5,
) -> tuple[Any, Any, Any]:
    """Gradients of `layer_norm`: ``(grad_input, grad_weight, grad_bias)``, the last two
    summed over the leading axes; `grad_weight` is None without `weight`, `grad_bias`
    None unless `bias` (whether the forward had one) is True."""
    xp = namespace_of(grad_output=grad_output, x=x, **_present(weight=weight))
    shape = _check_layer(x, normalized_shape, weight, None)
    check_shape(grad_output, "grad_output", tuple(x.shape), "the shape of `x`")
    epsilon = nonnegative_real(eps, "eps")
    grads = kernels_for(xp).layer_norm_backward(
        grad_output, x, shape, weight, epsilon, bias=bool(bias)
    )
    if grads is not None:
        return grads
    count = len(shape)
    x_hat, inverse = _normalize(_flatten_last(x, count, xp), xp, epsilon)
    h = grad_output if weight is None else grad_output * weight
    grad_input = _normalize_backward(_flatten_last(h, count, xp), x_hat, inverse, xp)
    leading = tuple(range(x.ndim - count))
    grad_weight = grad_bias = None
    if weight is not None:
        grad_weight = xp.sum(grad_output * xp.reshape(x_hat, tuple(x.shape)), axis=leading)
    if bias:
        grad_bias = xp.sum(grad_output, axis=leading)
    return xp.reshape(grad_input, tuple(x.shape)), grad_weight, grad_bias


# -- group_norm -----------------------------------------------------------------------


def _check_group(x: Any, num_groups: object, weight: Any, bias: Any) -> int:
    groups = positive_int(num_groups, "num_groups")
    if x.ndim < 2:
        raise ValueError(f"`x` must be (N, C, *), got shape {tuple(x.shape)}")
    channels = x.shape[1]
    if channels % groups:
        raise ValueError(
            f"the channels of `x` (={channels}) must be divisible by `num_groups` (={groups})"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None:
            check_shape(value, name, (channels,), "one value per channel")
    return groups


def _grouped(x: Any, groups: int, xp: Any) -> Any:
    """(N, C, *) as (N, G, C // G * prod(*))."""
    return xp.reshape(x, (x.shape[0], groups, math.prod(x.shape[1:]) // groups))


def _per_channel(v: Any, ndim: int, xp: Any) -> Any:
    return xp.reshape(v, (v.shape[0], *([1] * (ndim - 2))))


def group_norm(
    x: Any,
    /,
    num_groups: int,
    weight: Any = None,
    bias: Any = None,
    eps: float = 1e-5,
) -> Any:
    """`x` normalised over each group of ``C // num_groups`` channels and all their
    positions, then scaled and shifted per channel.

    Args:
        x: (N, C, *), real floating dtype; C divisible by `num_groups`.
        num_groups: the number of groups.
        weight, bias: arrays of shape (C,), or None (default).
        eps: added to the variance (default 1e-5).

    Example:
        >>> import numpy as np
        >>> group_norm(np.array([[[1.0], [3.0], [0.0], [4.0]]]), 2, eps=0.0)[0, :, 0]
        array([-1.,  1., -1.,  1.])
    """
    xp = namespace_of(x=x, **_present(weight=weight, bias=bias))
    groups = _check_group(x, num_groups, weight, bias)
    epsilon = nonnegative_real(eps, "eps")
    done = kernels_for(xp).group_norm(x, groups, weight, bias, epsilon)
    if done is not None:
        return done
    x_hat, _ = _normalize(_grouped(x, groups, xp), xp, epsilon)
    out = xp.reshape(x_hat, tuple(x.shape))
    if weight is not None:
        out = out * _per_channel(weight, x.ndim, xp)
    return out if bias is None else out + _per_channel(bias, x.ndim, xp)


def group_norm_backward(
    grad_output: Any,
    x: Any,
    /,
    num_groups: int,
    weight: Any = None,
    *,
    bias: bool = False,
    eps: float = 1e-5,
) -> tuple[Any, Any, Any]:
    """Gradients of `group_norm`: ``(grad_input, grad_weight, grad_bias)``, the last two
    of shape (C,); `grad_weight` is None without `weight`, `grad_bias` None unless
    `bias` (whether the forward had one) is True."""
    xp = namespace_of(grad_output=grad_output, x=x, **_present(weight=weight))
    groups = _check_group(x, num_groups, weight, None)
    check_shape(grad_output, "grad_output", tuple(x.shape), "the shape of `x`")
    epsilon = nonnegative_real(eps, "eps")
    grads = kernels_for(xp).group_norm_backward(
        grad_output, x, groups, weight, epsilon, bias=bool(bias)
    )
    if grads is not None:
        return grads
    x_hat, inverse = _normalize(_grouped(x, groups, xp), xp, epsilon)
    h = grad_output if weight is None else grad_output * _per_channel(weight, x.ndim, xp)
    grad_input = _normalize_backward(_grouped(h, groups, xp), x_hat, inverse, xp)
    others = (0, *range(2, x.ndim))  # every axis but the channels'
    grad_weight = grad_bias = None
    if weight is not None:
        grad_weight = xp.sum(grad_output * xp.reshape(x_hat, tuple(x.shape)), axis=others)
    if bias:
        grad_bias = xp.sum(grad_output, axis=others)
    return xp.reshape(grad_input, tuple(x.shape)), grad_weight, grad_bias
