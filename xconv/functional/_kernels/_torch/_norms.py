"""Layer and group normalization on PyTorch tensors by PyTorch's own kernels.

Imported only when `layer_norm` or `group_norm` meets torch tensors with
``xconv.config.delegate`` and ``fast_kernels`` on, never at ``import xconv``. As for
batch norm (`_batch_norm`), the ATen ops autograd runs for ``torch.nn.functional``'s
``layer_norm`` and ``group_norm`` are called directly, no graph of our own:

- forward: ``aten.native_layer_norm`` / ``native_group_norm`` (the biased variance,
  ``1 / sqrt(var + eps)``, xconv's formula);
- backward: xconv's backward takes the forward pass's input, not saved statistics, so
  the forward kernel runs again for the mean and ``1 / sqrt(var + eps)``, then
  ``native_layer_norm_backward`` / ``native_group_norm_backward`` gives the input's,
  weight's and bias's gradients in one call, each only where asked for (layer norm's
  wants a bias tensor to give the bias's gradient, group norm's a weight: zeros and
  ones stand in, which change no value).

Only non-empty float32 and float64 tensors are taken, with every other tensor (weight,
bias, the output's gradient) of the input's dtype and on its device, and more than one
value in each normalised group; anything else runs the generic code (a float32 weight
of a float64 input, which xconv's code promotes; a group of one value, which xconv's
code normalises to exactly 0 and torch's, in float32, to a few ulps times
``1 / sqrt(eps)``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ._tensors import same_float_tensors

__all__ = [
    "group_backward",
    "group_forward",
    "layer_backward",
    "layer_forward",
    "takes",
]


def takes(x: Any, group: int, *others: Any) -> bool:
    """Whether `x`, normalised over groups of `group` values, and the tensors `others`
    (None: absent) can go to torch's kernels: float32/float64, `x` non-empty, groups of
    more than one value, one dtype and device."""
    return same_float_tensors(x, *others) and x.numel() > 0 and group >= 2


def _dense(*tensors: Any) -> list[Any]:
    """Each tensor contiguous (None stays None): the native kernels read a strided
    weight or bias as if it were dense (a view of every second element of a wider
    tensor gave another tensor's values), and group norm's input too."""
    return [None if t is None else t.contiguous() for t in tensors]


def layer_forward(x: Any, shape: tuple[int, ...], weight: Any, bias: Any, eps: float) -> Any:
    """`x` normalised over its last axes, `shape`, scaled and shifted."""
    x, weight, bias = _dense(x, weight, bias)
    out, _, _ = torch.ops.aten.native_layer_norm(x, list(shape), weight, bias, eps)
    return out


def layer_backward(
    grad_output: Any, x: Any, shape: tuple[int, ...], weight: Any, eps: float, bias: bool
) -> tuple[Any, Any, Any]:
    """The gradients of `layer_forward` for input, weight and bias."""
    grad_output, x, weight = _dense(grad_output, x, weight)
    _, mean, rstd = torch.ops.aten.native_layer_norm(x, list(shape), weight, None, eps)
    mask = [True, weight is not None, bias]
    # (torch's kernel wants a bias tensor to give its gradient; only its shape matters)
    placeholder = torch.zeros(shape, dtype=x.dtype, device=x.device) if bias else None
    grad_input, grad_weight, grad_bias = torch.ops.aten.native_layer_norm_backward(
        grad_output, x, list(shape), mean, rstd, weight, placeholder, mask
    )
    return grad_input, grad_weight if mask[1] else None, grad_bias if bias else None


def _sizes(x: Any) -> tuple[int, int, int]:
    """(N, C, prod(*)) of an (N, C, *) tensor."""
    return x.shape[0], x.shape[1], math.prod(x.shape[2:])


def group_forward(x: Any, groups: int, weight: Any, bias: Any, eps: float) -> Any:
    """(N, C, *) normalised over each group of channels, scaled and shifted."""
    n, c, hw = _sizes(x)
    x, weight, bias = _dense(x, weight, bias)
    out, _, _ = torch.ops.aten.native_group_norm(x, weight, bias, n, c, hw, groups, eps)
    return out


def group_backward(
    grad_output: Any, x: Any, groups: int, weight: Any, eps: float, bias: bool
) -> tuple[Any, Any, Any]:
    """The gradients of `group_forward` for input, weight and bias."""
    n, c, hw = _sizes(x)
    grad_output, x, weight = _dense(grad_output, x, weight)
    _, mean, rstd = torch.ops.aten.native_group_norm(x, weight, None, n, c, hw, groups, eps)
    mask = [True, weight is not None, bias]
    if weight is None and bias:  # (torch's kernel wants a weight to give the bias's)
        weight = torch.ones(c, dtype=x.dtype, device=x.device)
    grad_input, grad_weight, grad_bias = torch.ops.aten.native_group_norm_backward(
        grad_output, x, mean, rstd, weight, n, c, hw, groups, mask
    )
    return grad_input, grad_weight if mask[1] else None, grad_bias if bias else None
