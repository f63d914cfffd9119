"""xconv's convolutions and poolings on PyTorch tensors, by PyTorch's own kernels.

Imported only when an op meets torch tensors (`_dispatch`), never at
``import xconv``. Each function takes the checked arrays and the op's `ConvGeometry`
and keeps xconv's semantics where ``torch.nn.functional`` has others:

- padding: torch pads both sides alike, so asymmetric padding (TensorFlow's 'same'
  at an even kernel or a stride) pads the tensor first and runs the op unpadded;
  gradients of a padded input are cropped back.
- gradients: PyTorch's ``convolution_backward``, the kernel its autograd runs for
  ``conv2d`` (all three gradients in one call, as autograd does; one alone through
  ``torch.nn.grad.conv2d_input`` / ``conv2d_weight``), not autograd on a graph of our
  own: no graph is kept unless the caller's tensors require grad, and then autograd
  differentiates the call (double backward) like any other op.
- max pooling: PyTorch's CPU and CUDA kernels keep a window's FIRST maximum in
  row-major order (a later value wins only if strictly greater), xconv's rule. The
  planned forward pass keeps PyTorch's own index (`MaxPoolIndex`), whose gradient is
  PyTorch's ``max_pool2d_with_indices_backward``, as autograd runs it; the index turns
  into xconv's layout, (C, 1, N, L) window positions, when a gradient runs xconv's
  code (`MaxPoolIndex.positions`), and an index in that layout is scattered back here.
  (A window holding NaN: PyTorch keeps its last NaN, xconv's code its first.)
- relu: ``torch.relu`` and ``threshold_backward`` (PyTorch's CPU ``where`` is several
  times slower than either); the gradient at NaN is 0, xconv's rule.
- max pooling's -inf padding, where it is made by hand (asymmetric, or wider than half
  the window): a window whose real pixels are all -inf keeps its first real pixel as
  its maximum (torch's rule where it pads itself), not the first padding pixel.
- average pooling: PyTorch's ``ceil_mode``, ``count_include_pad`` and
  ``divisor_override``; padding torch cannot take is made by hand, and the window
  sums divided by xconv's divisors (`ConvGeometry.pool_divisors`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from ..._geometry import ConvGeometry

__all__ = [
    "MaxPoolIndex",
    "avg_backward",
    "avg_forward",
    "conv_forward",
    "gradients",
    "input_gradient",
    "max_backward",
    "max_forward",
    "max_forward_index",
    "relu",
    "relu_backward",
    "weight_gradient",
]


def _symmetric(geometry: ConvGeometry) -> tuple[int, int] | None:
    """(pad_h, pad_w) when each axis pads both sides alike, else None."""
    (top, bottom), (left, right) = geometry.padding
    return (top, left) if top == bottom and left == right else None


def _pad(x: Any, geometry: ConvGeometry, value: float = 0.0) -> Any:
    (top, bottom), (left, right) = geometry.padding
    return F.pad(x, (left, right, top, bottom), value=value)


def _crop(a: Any, geometry: ConvGeometry) -> Any:
    """The input's pixels of an array of the padded size."""
    (top, _), (left, _) = geometry.padding
    height, width = geometry.in_size
    return a[:, :, top : top + height, left : left + width]


def conv_forward(x: Any, weight: Any, bias: Any, geometry: ConvGeometry, groups: int) -> Any:
    """`conv2d` by ``torch.nn.functional.conv2d``."""
    pads = _symmetric(geometry)
    if pads is None:
        x, pads = _pad(x, geometry), (0, 0)
    return F.conv2d(x, weight, bias, geometry.stride, pads, geometry.dilation, groups)


def input_gradient(grad_output: Any, weight: Any, geometry: ConvGeometry, groups: int) -> Any:
    """The input gradient of `conv_forward` (the transposed convolution)."""
    n, channels = grad_output.shape[0], weight.shape[1] * groups
    pads = _symmetric(geometry)
    size = geometry.in_size if pads is not None else geometry.padded_size
    grad = torch.nn.grad.conv2d_input(
        (n, channels, *size),
        weight,
        grad_output,
        geometry.stride,
        (0, 0) if pads is None else pads,
        geometry.dilation,
        groups,
    )
    return grad if pads is not None else _crop(grad, geometry)


def weight_gradient(
    grad_output: Any,
    x: Any,
    weight_shape: tuple[int, ...],
    geometry: ConvGeometry,
    groups: int,
) -> Any:
    """The weight gradient of `conv_forward`."""
    pads = _symmetric(geometry)
    if pads is None:
        x, pads = _pad(x, geometry), (0, 0)
    return torch.nn.grad.conv2d_weight(
        x, weight_shape, grad_output, geometry.stride, pads, geometry.dilation, groups
    )


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
    gradients of `conv_forward`, in one call."""
    pads = _symmetric(geometry)
    padded = pads is None
    if pads is None:
        x, pads = _pad(x, geometry), (0, 0)
    grad_input, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
        grad_output,
        x,
        weight,
        [weight.shape[0]] if bias else None,
        list(geometry.stride),
        list(pads),
        list(geometry.dilation),
        False,
        [0, 0],
        groups,
        [input_gradient, True, bias],
    )
    if padded and grad_input is not None:
        grad_input = _crop(grad_input, geometry)
    return grad_input, grad_weight, grad_bias


def _pool_padding(geometry: ConvGeometry) -> tuple[int, int] | None:
    """The symmetric padding torch's poolings take (at most half the window), or None.

    The padding asked for, that is: the rows and columns ``ceil_mode`` adds are
    torch's own `ceil_mode` (the same rule: xconv's geometry follows PyTorch's).
    """
    (top, bottom), (left, right) = geometry.padding
    extra_h, extra_w = geometry.ceil_padding
    kh, kw = geometry.kernel_size
    if top != bottom - extra_h or left != right - extra_w or top > kh // 2 or left > kw // 2:
        return None
    return top, left


def _max_input(x: Any, geometry: ConvGeometry) -> tuple[Any, tuple[int, int] | None]:
    """`x` as torch's max pooling takes it, and the padding to ask it for: None when
    `x` is padded here (with -inf; then torch runs unpadded, floor mode)."""
    pads = _pool_padding(geometry)
    if pads is None:
        return _pad(x, geometry, -torch.inf), None
    return x, pads


def _max_pool(x: Any, geometry: ConvGeometry, pads: tuple[int, int] | None, indices: bool) -> Any:
    pool: Any = F.max_pool2d  # (one call for both overloads)
    return pool(
        x,
        geometry.kernel_size,
        geometry.stride,
        (0, 0) if pads is None else pads,
        geometry.dilation,
        ceil_mode=pads is not None and any(geometry.ceil_padding),
        return_indices=indices,
    )


def max_forward(x: Any, geometry: ConvGeometry) -> Any:
    """Max pooling by ``torch.nn.functional.max_pool2d``."""
    x, pads = _max_input(x, geometry)
    return _max_pool(x, geometry, pads, False)


class MaxPoolIndex(NamedTuple):
    """PyTorch's own max-pooling index, and the input it pooled (no copy).

    `pooled` is the input as PyTorch's kernel saw it (padded by hand where it cannot
    pad), `flat` its indices, `pads` the padding PyTorch added itself (None: padded
    by hand).
    """

    pooled: Any
    flat: Any
    pads: tuple[int, int] | None

    def positions(self, geometry: ConvGeometry) -> Any:
        """The index in xconv's layout, for xconv's own gradient."""
        offset = (0, 0) if self.pads is None else self.pads
        return _window_index(self.flat, self.pooled.shape[3], offset, geometry)


def max_forward_index(x: Any, geometry: ConvGeometry) -> tuple[Any, MaxPoolIndex]:
    """`max_forward`, and PyTorch's index of each window's first maximum."""
    x, pads = _max_input(x, geometry)
    out, flat = _max_pool(x, geometry, pads, True)
    if pads is None and geometry.is_padded:
        # torch saw the -inf padding as pixels: where a window's real pixels are all
        # -inf, its maximum is its first real pixel (torch's rule where it pads itself)
        flat = torch.where(out == -torch.inf, _first_real(geometry, x.shape[3], x.device), flat)
    return out, MaxPoolIndex(x, flat, pads)


def _first_real(geometry: ConvGeometry, width: int, device: Any) -> Any:
    """(OH, OW): each window's first real pixel, as a flat index of the padded plane."""
    kw, (dh, dw) = geometry.kernel_size[1], geometry.dilation
    position = torch.tensor(geometry.first_real_taps(), device=device)
    starts = _window_starts(geometry, device)
    row = starts[0] + torch.div(position, kw, rounding_mode="floor") * dh
    return row * width + starts[1] + torch.remainder(position, kw) * dw


def _max_backward_own(grad_output: Any, index: MaxPoolIndex, geometry: ConvGeometry) -> Any:
    """Each window's gradient added to its maximum, by PyTorch's own backward kernel."""
    grad = torch.ops.aten.max_pool2d_with_indices_backward(
        grad_output,
        index.pooled,
        list(geometry.kernel_size),
        list(geometry.stride),
        list((0, 0) if index.pads is None else index.pads),
        list(geometry.dilation),
        index.pads is not None and any(geometry.ceil_padding),
        index.flat,
    )
    # (an input padded by hand: its gradient cropped back)
    return grad if index.pads is not None else _crop(grad, geometry)


def _window_index(flat: Any, width: int, offset: tuple[int, int], geometry: ConvGeometry) -> Any:
    """torch's indices (row * width + column of the plane the pooling saw, less
    `offset`) as xconv's: the pixel's position in its window, laid out (C, 1, N, L)."""
    kw, (dh, dw) = geometry.kernel_size[1], geometry.dilation
    row, column = flat // width + offset[0], flat % width + offset[1]
    starts = _window_starts(geometry, flat.device)
    position = (row - starts[0]) // dh * kw + (column - starts[1]) // dw
    n, c = flat.shape[0], flat.shape[1]
    # (sizes spelled out: -1 is ambiguous in an empty batch)
    length = geometry.out_size[0] * geometry.out_size[1]
    return torch.reshape(torch.permute(position, (1, 0, 2, 3)), (c, 1, n, length))


def _window_starts(geometry: ConvGeometry, device: Any) -> tuple[Any, Any]:
    """Row and column, in the padded image, of each window's top-left pixel."""
    (oh, ow), (sh, sw) = geometry.out_size, geometry.stride
    rows = torch.arange(oh, device=device) * sh
    columns = torch.arange(ow, device=device) * sw
    return torch.reshape(rows, (oh, 1)), torch.reshape(columns, (1, ow))


def max_backward(grad_output: Any, index: Any, geometry: ConvGeometry) -> Any:
    """Each window's gradient added to its maximum: `index` PyTorch's own
    (`MaxPoolIndex`) or in xconv's layout."""
    if isinstance(index, MaxPoolIndex):
        return _max_backward_own(grad_output, index, geometry)
    n, c = grad_output.shape[0], grad_output.shape[1]
    (oh, ow), kw = geometry.out_size, geometry.kernel_size[1]
    dh, dw = geometry.dilation
    width = geometry.padded_size[1]
    position = torch.permute(torch.reshape(index, (c, n, oh, ow)), (1, 0, 2, 3))
    starts = _window_starts(geometry, grad_output.device)
    row = starts[0] + torch.div(position, kw, rounding_mode="floor") * dh
    flat = row * width + starts[1] + torch.remainder(position, kw) * dw
    height = geometry.padded_size[0]
    plane = torch.zeros((n, c, height * width), dtype=grad_output.dtype, device=grad_output.device)
    plane = plane.scatter_add(
        2, torch.reshape(flat, (n, c, oh * ow)), torch.reshape(grad_output, (n, c, oh * ow))
    )
    return _crop(torch.reshape(plane, (n, c, height, width)), geometry)


def _divisors(
    geometry: ConvGeometry, like: Any, count_include_pad: bool, divisor_override: int | None
) -> Any:
    table = geometry.pool_divisors(
        count_include_pad=count_include_pad, divisor_override=divisor_override
    )
    return torch.tensor(table, dtype=like.dtype, device=like.device)


def avg_forward(
    x: Any, geometry: ConvGeometry, count_include_pad: bool, divisor_override: int | None
) -> Any:
    """Average pooling by ``torch.nn.functional.avg_pool2d``."""
    pads = _pool_padding(geometry)
    if pads is not None:
        return F.avg_pool2d(
            x,
            geometry.kernel_size,
            geometry.stride,
            pads,
            ceil_mode=any(geometry.ceil_padding),
            count_include_pad=count_include_pad,
            divisor_override=divisor_override,
        )
    # padding wider than torch allows: sums of the zero-padded input, over the divisors
    sums = F.avg_pool2d(
        _pad(x, geometry), geometry.kernel_size, geometry.stride, divisor_override=1
    )
    return sums / _divisors(geometry, x, count_include_pad, divisor_override)


def avg_backward(
    grad_output: Any, geometry: ConvGeometry, count_include_pad: bool, divisor_override: int | None
) -> Any:
    """The input gradient of `avg_forward`: a depthwise transposed convolution of the
    shares by a window of ones."""
    channels = grad_output.shape[1]
    share = grad_output / _divisors(geometry, grad_output, count_include_pad, divisor_override)
    ones = torch.ones((channels, 1, *geometry.kernel_size), dtype=share.dtype, device=share.device)
    return input_gradient(share, ones, geometry, channels)


def relu(x: Any) -> Any:
    """``max(x, 0)`` by ``torch.relu`` (NaN stays NaN, as in xconv's)."""
    return torch.relu(x)


def relu_backward(grad_output: Any, x: Any) -> Any:
    """`grad_output` where x > 0, else 0: PyTorch's relu gradient kernel, with NaN made
    0 first (its kernel lets a NaN's gradient through; xconv's rule stops it)."""
    return torch.ops.aten.threshold_backward(grad_output, torch.nan_to_num(x, nan=0.0), 0)
