"""xconv's convolutions and poolings on JAX arrays, by ``jax.lax``'s own primitives.

Imported only when an op meets JAX arrays (`_dispatch`), never at
``import xconv``. ``lax.conv_general_dilated`` and ``lax.reduce_window`` take
asymmetric padding as (low, high) pairs, so xconv's geometry goes in as it is;
gradients are ``jax.vjp`` of the forward call, which XLA compiles to the transposed
convolutions. Everything is traceable: it runs under ``jit``, ``grad`` and ``vmap``.

Max pooling: xconv's gradient sends a window's gradient to its FIRST maximum, and
XLA documents no order for ``reduce_window``'s gradient (select-and-scatter) among
equal values. So the index and the gradient are built here from the rule itself:
``reduce_window`` finds the maxima, one strided slice per window pixel (kh * kw of
them, in reverse) marks the first pixel equal to its window's maximum, and the
gradient places each pixel's share back with ``lax.pad``'s interior padding, one
placement per window pixel; all static, so XLA fuses it. (``jax.grad`` of
`max_pool2d` itself is JAX's gradient of ``reduce_window``: on XLA's CPU it also
picks the first maximum, as checked in tests/test_delegation.py.)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._geometry import ConvGeometry
from .._interface import Kernels

__all__ = [
    "JaxKernels",
    "avg_backward",
    "avg_forward",
    "conv_forward",
    "gradients",
    "input_gradient",
    "max_backward",
    "max_forward",
    "max_forward_index",
    "weight_gradient",
]


_LAYOUT = ("NCHW", "OIHW", "NCHW")


def _conv(x: Any, weight: Any, geometry: ConvGeometry, groups: int) -> Any:
    return lax.conv_general_dilated(
        x,
        weight,
        window_strides=geometry.stride,
        padding=geometry.padding,
        rhs_dilation=geometry.dilation,
        dimension_numbers=_LAYOUT,
        feature_group_count=groups,
    )


def conv_forward(x: Any, weight: Any, bias: Any, geometry: ConvGeometry, groups: int) -> Any:
    """`conv2d` by ``lax.conv_general_dilated``."""
    out = _conv(x, weight, geometry, groups)
    if bias is not None:
        out = out + jnp.reshape(bias, (1, bias.shape[0], 1, 1))
    return out


def input_gradient(grad_output: Any, weight: Any, geometry: ConvGeometry, groups: int) -> Any:
    """The input gradient of `conv_forward` (the transposed convolution)."""
    shape = (grad_output.shape[0], weight.shape[1] * groups, *geometry.in_size)
    # (zeros_like keeps the device of the arrays given)
    x = jnp.zeros_like(grad_output, shape=shape)
    _, pullback = jax.vjp(lambda x: _conv(x, weight, geometry, groups), x)
    return pullback(grad_output)[0]


def weight_gradient(
    grad_output: Any,
    x: Any,
    weight_shape: tuple[int, ...],
    geometry: ConvGeometry,
    groups: int,
) -> Any:
    """The weight gradient of `conv_forward`."""
    weight = jnp.zeros_like(grad_output, shape=weight_shape)
    _, pullback = jax.vjp(lambda w: _conv(x, w, geometry, groups), weight)
    return pullback(grad_output)[0]


def gradients(
    grad_output: Any,
    x: Any,
    weight: Any,
    geometry: ConvGeometry,
    groups: int,
    bias: bool,
    input_gradient: bool = True,
) -> tuple[Any, Any, Any | None]:
    """The input (if `input_gradient`, else None), weight and (if `bias`) bias
    gradients of `conv_forward`: one vjp (compiled, an unused input gradient is
    never computed)."""
    _, pullback = jax.vjp(lambda x, w: _conv(x, w, geometry, groups), x, weight)
    grad_input, grad_weight = pullback(grad_output)
    grad_bias = jnp.sum(grad_output, axis=(0, 2, 3)) if bias else None
    return (grad_input if input_gradient else None), grad_weight, grad_bias


def _window(geometry: ConvGeometry) -> dict[str, Any]:
    # (padding: the rows and columns `ceil_mode` adds are part of the geometry's)
    return {
        "window_dimensions": (1, 1, *geometry.kernel_size),
        "window_strides": (1, 1, *geometry.stride),
        "padding": ((0, 0), (0, 0), *geometry.padding),
        "window_dilation": (1, 1, *geometry.dilation),
    }


def max_forward(x: Any, geometry: ConvGeometry) -> Any:
    """Max pooling by ``lax.reduce_window``; padding is -inf and never wins."""
    return lax.reduce_window(x, np.array(-np.inf, dtype=x.dtype), lax.max, **_window(geometry))


def max_forward_index(x: Any, geometry: ConvGeometry) -> tuple[Any, Any]:
    """`max_forward`, and where each window's first maximum is, in xconv's layout:
    the pixel's position in its window (row-major), as (C, 1, N, OH * OW)."""
    out = max_forward(x, geometry)
    padded = jnp.pad(x, ((0, 0), (0, 0), *geometry.padding), constant_values=-np.inf)
    kh, kw = geometry.kernel_size
    # the last match written wins: walk the pixels backwards, so the first one does
    index = jnp.full_like(out, kh * kw, dtype=jnp.argmax(jnp.zeros(1)).dtype)
    for k in reversed(range(kh * kw)):
        rows, cols = geometry.window(k // kw, k % kw)
        pixel = padded[:, :, rows, cols]
        index = jnp.where((pixel == out) | jnp.isnan(pixel), k, index)
    if geometry.is_padded:
        # a window whose real pixels are all -inf: its first real pixel, not padding
        first_real = np.asarray(geometry.first_real_taps(), dtype=index.dtype)
        index = jnp.where(out == -np.inf, first_real, index)
    n, c = x.shape[0], x.shape[1]
    # (sizes spelled out: -1 is ambiguous in an empty batch)
    length = geometry.out_size[0] * geometry.out_size[1]
    return out, jnp.reshape(jnp.transpose(index, (1, 0, 2, 3)), (c, 1, n, length))


def max_backward(grad_output: Any, index: Any, geometry: ConvGeometry) -> Any:
    """Each window's gradient added to its maximum (`index`, xconv's layout)."""
    n, c = grad_output.shape[0], grad_output.shape[1]
    (oh, ow), (sh, sw) = geometry.out_size, geometry.stride
    (kh, kw), (dh, dw) = geometry.kernel_size, geometry.dilation
    height, width = geometry.padded_size
    position = jnp.transpose(jnp.reshape(index, (c, n, oh, ow)), (1, 0, 2, 3))
    zero = np.zeros((), dtype=grad_output.dtype)
    total = jnp.zeros_like(grad_output, shape=(n, c, height, width))
    for k in range(kh * kw):
        i, j = k // kw * dh, k % kw * dw
        share = jnp.where(position == k, grad_output, zero)
        # window pixel k of output (r, s) is padded pixel (i + r * sh, j + s * sw)
        placed = lax.pad(
            share,
            zero,
            (
                (0, 0, 0),
                (0, 0, 0),
                (i, height - i - (oh - 1) * sh - 1, sh - 1),
                (j, width - j - (ow - 1) * sw - 1, sw - 1),
            ),
        )
        total = total + placed
    (top, _), (left, _) = geometry.padding
    return total[:, :, top : top + geometry.in_size[0], left : left + geometry.in_size[1]]


def _divisors(
    geometry: ConvGeometry, dtype: Any, count_include_pad: bool, divisor_override: int | None
) -> Any:
    table = geometry.pool_divisors(
        count_include_pad=count_include_pad, divisor_override=divisor_override
    )
    return jnp.asarray(table, dtype=dtype)


def _sums(x: Any, geometry: ConvGeometry) -> Any:
    # (a concrete NumPy zero: JAX recognises the sum, and can differentiate it)
    return lax.reduce_window(x, np.zeros((), dtype=x.dtype), lax.add, **_window(geometry))


def avg_forward(
    x: Any, geometry: ConvGeometry, count_include_pad: bool, divisor_override: int | None
) -> Any:
    """Average pooling: each window's sum over its divisor."""
    return _sums(x, geometry) / _divisors(geometry, x.dtype, count_include_pad, divisor_override)


def avg_backward(
    grad_output: Any, geometry: ConvGeometry, count_include_pad: bool, divisor_override: int | None
) -> Any:
    """The input gradient of `avg_forward`."""
    shape = (grad_output.shape[0], grad_output.shape[1], *geometry.in_size)
    divisors = _divisors(geometry, grad_output.dtype, count_include_pad, divisor_override)
    share = grad_output / divisors
    _, pullback = jax.vjp(lambda x: _sums(x, geometry), jnp.zeros_like(grad_output, shape=shape))
    return pullback(share)[0]


class JaxKernels(Kernels):
    """JAX's own ops for xconv's convolutions and poolings (``xconv.config.delegate``)."""

    name = "jax"

    def conv_forward(
        self,
        x: Any,
        weight: Any,
        bias: Any,
        geometry: ConvGeometry,
        groups: int,
        *,
        keep_columns: bool,
    ) -> tuple[Any, None] | None:
        if not geometry.is_exact:
            return None
        return conv_forward(x, weight, bias, geometry, groups), None

    def conv_gradients(
        self,
        grad_output: Any,
        x: Any,
        weight: Any,
        geometry: ConvGeometry,
        groups: int,
        *,
        bias: bool,
        input_gradient: bool,
    ) -> tuple[Any, Any, Any | None] | None:
        if not geometry.is_exact:
            return None
        return gradients(grad_output, x, weight, geometry, groups, bias, input_gradient)

    def conv_input_gradient(
        self, grad_output: Any, weight: Any, geometry: ConvGeometry, groups: int
    ) -> Any:
        return input_gradient(grad_output, weight, geometry, groups) if geometry.is_exact else None

    def conv_weight_gradient(
        self,
        grad_output: Any,
        x: Any,
        columns: Any,
        weight_shape: tuple[int, ...],
        geometry: ConvGeometry,
        groups: int,
    ) -> Any:
        if not geometry.is_exact:
            return None
        return weight_gradient(grad_output, x, weight_shape, geometry, groups)

    def max_pool(
        self, x: Any, geometry: ConvGeometry, *, keep_index: bool
    ) -> tuple[Any, Any] | None:
        if keep_index:
            return max_forward_index(x, geometry)
        return max_forward(x, geometry), None

    def max_pool_gradient(self, grad_output: Any, index: Any, geometry: ConvGeometry) -> Any:
        if getattr(index, "positions", None) is not None:
            return None  # (another library's index)
        return max_backward(grad_output, index, geometry)

    def max_pool_backward(self, grad_output: Any, x: Any, geometry: ConvGeometry) -> Any:
        return max_backward(grad_output, max_forward_index(x, geometry)[1], geometry)

    def avg_pool(
        self,
        x: Any,
        geometry: ConvGeometry,
        *,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> Any:
        return avg_forward(x, geometry, count_include_pad, divisor_override)

    def avg_pool_gradient(
        self,
        grad_output: Any,
        geometry: ConvGeometry,
        *,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> Any:
        return avg_backward(grad_output, geometry, count_include_pad, divisor_override)
