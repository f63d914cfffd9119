"""Transposed 2-D convolution and its gradients, from the pieces of `conv2d`.

A transposed convolution is the input gradient of a convolution: it spreads each input
pixel over a kernel-sized patch of a larger output. So its forward pass is
`conv2d_backward`'s input gradient, and its input gradient is a plain `conv2d`.
Semantics follow `torch.nn.functional.conv_transpose2d`: weight of shape
(C, F // groups, kh, kw).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._checks import check_ndim, check_shape, namespace_of
from ._conv import forward, input_gradient, weight_gradient
from ._geometry import ConvGeometry, IntOrPair, Padding, check_padding, explicit_padding, pair

__all__ = ["conv_transpose2d", "conv_transpose2d_backward"]


def conv_transpose2d(
    x: Any,
    weight: Any,
    /,
    bias: Any = None,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> Any:
    """Transposed convolution ("deconvolution") of a batch of images.

    Args:
        x: input of shape (N, C, H, W), real floating dtype.
        weight: filters of shape (C, F // groups, kh, kw) (note: C first).
        bias: optional, shape (F,).
        stride, dilation: int or pair, >= 1.
        padding: removed from each side of the output: int, (pad_h, pad_w),
            ((top, bottom), (left, right)), ``"valid"`` (none) or ``"same"`` (the output
            is exactly ``stride`` times the input, as in Keras).
        output_padding: extra rows/columns at the bottom/right, to pick one of the
            output sizes that a strided convolution maps to the same input size; must
            be smaller than the stride or the dilation.
        groups: as for `conv2d`.

    Returns:
        Output of shape (N, F, OH, OW) in the namespace, device and dtype of `x`.

    Shape:
        ``OH = (H - 1) * stride_h - top - bottom + dilation_h * (kh - 1) +
        output_padding_h + 1``; with ``"same"``, ``OH = H * stride_h``.

    Example:
        >>> import numpy as np
        >>> x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> conv_transpose2d(x, np.ones((1, 1, 2, 2)), stride=2)[0, 0]
        array([[1., 1., 2., 2.],
               [1., 1., 2., 2.],
               [3., 3., 4., 4.],
               [3., 3., 4., 4.]])
    """
    xp = namespace_of(x=x, weight=weight, bias=bias)
    geometry = _check_transpose(x, weight, bias, stride, padding, output_padding, dilation, groups)
    out = input_gradient(x, weight, geometry, groups, xp)
    if bias is not None:
        out = out + xp.reshape(bias, (1, bias.shape[0], 1, 1))
    return out


def conv_transpose2d_backward(
    grad_output: Any,
    x: Any,
    weight: Any,
    /,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    bias: bool = True,
) -> tuple[Any, Any, Any | None]:
    """Gradients of `conv_transpose2d` with respect to its input, weight and bias.

    Returns:
        ``(grad_input, grad_weight, grad_bias)``, shaped like `x`, `weight` and (F,);
        `grad_bias` is None when ``bias=False``.
    """
    if not isinstance(bias, bool):
        raise TypeError(f"`bias` must be True or False, got {bias!r}")
    xp = namespace_of(grad_output=grad_output, x=x, weight=weight)
    geometry = _check_transpose(x, weight, None, stride, padding, output_padding, dilation, groups)
    check_ndim(grad_output, "grad_output", "NFHW")
    expected = (x.shape[0], weight.shape[1] * groups, *geometry.in_size)
    check_shape(grad_output, "grad_output", expected, "the shape of conv_transpose2d's output")
    # the input gradient is the convolution that this op transposes; keep its columns
    grad_input, cols = forward(grad_output, weight, None, geometry, groups, xp, keep_columns=True)
    # the weight gradient swaps the roles: columns of grad_output, "output gradient" x
    grad_weight = weight_gradient(x, grad_output, cols, tuple(weight.shape), geometry, groups, xp)
    grad_bias = xp.sum(grad_output, axis=(0, 2, 3)) if bias else None
    return grad_input, grad_weight, grad_bias


def transpose_geometry(
    in_size: tuple[int, int],
    kernel_size: IntOrPair,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> ConvGeometry:
    """The geometry of the convolution that a transposed convolution transposes.

    Its `in_size` is the transposed convolution's output size, its `out_size` the
    transposed convolution's input size.
    """
    kernel = pair(kernel_size, "kernel_size")
    strides = pair(stride, "stride")
    dilations = pair(dilation, "dilation")
    extra = pair(output_padding, "output_padding", minimum=0)
    check_padding(padding)
    for axis in (0, 1):
        if extra[axis] >= max(strides[axis], dilations[axis]):
            raise ValueError(
                f"`output_padding` must be smaller than the stride or the dilation, got "
                f"{output_padding!r} with stride={stride!r}, dilation={dilation!r}"
            )
    if padding == "same":
        if any(extra):
            raise ValueError(
                f"`output_padding` must be 0 with padding='same', got {output_padding!r}"
            )
        out_size = (in_size[0] * strides[0], in_size[1] * strides[1])
    else:
        pads = ((0, 0), (0, 0)) if padding == "valid" else explicit_padding(padding)
        out_size = (
            _transposed_size(in_size[0], kernel[0], strides[0], pads[0], extra[0], dilations[0]),
            _transposed_size(in_size[1], kernel[1], strides[1], pads[1], extra[1], dilations[1]),
        )
        if min(out_size) < 1:
            raise ValueError(
                f"`padding` {padding!r} crops more than the transposed convolution makes: "
                f"the output would be {out_size[0]} x {out_size[1]}"
            )
    geometry = ConvGeometry.build(
        out_size, kernel, stride=strides, padding=padding, dilation=dilations
    )
    # An output_padding of at least the stride (allowed while below the dilation) makes
    # room for one more window than the input has; the transposed convolution spreads
    # exactly the input's pixels, so it keeps that many windows.
    assert all(o >= i for o, i in zip(geometry.out_size, in_size, strict=True)), geometry
    return dataclasses.replace(geometry, out_size=(in_size[0], in_size[1]))


def _transposed_size(
    size: int, kernel: int, stride: int, pads: tuple[int, int], extra: int, dilation: int
) -> int:
    return (size - 1) * stride - pads[0] - pads[1] + dilation * (kernel - 1) + extra + 1


def _check_transpose(
    x: Any,
    weight: Any,
    bias: Any,
    stride: IntOrPair,
    padding: Padding,
    output_padding: IntOrPair,
    dilation: IntOrPair,
    groups: int,
) -> ConvGeometry:
    """Validate a transposed convolution's arrays and options; return its geometry."""
    check_ndim(x, "x", "NCHW")
    check_ndim(weight, "weight", "CFHW")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"`groups` must be a positive integer, got {groups!r}")
    channels = x.shape[1]
    if channels % groups:
        raise ValueError(f"`x` has {channels} channels, not divisible by `groups` (={groups})")
    if weight.shape[0] != channels:
        raise ValueError(
            f"`weight` of shape {tuple(weight.shape)} expects {weight.shape[0]} input "
            f"channels (shape[0]), but `x` of shape {tuple(x.shape)} has {channels}"
        )
    if bias is not None:
        check_shape(bias, "bias", (weight.shape[1] * groups,), "one value per filter")
    return transpose_geometry(
        (x.shape[2], x.shape[3]),
        (weight.shape[2], weight.shape[3]),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )
