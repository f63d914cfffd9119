"""Transposed 2-D convolution and its gradients, from the pieces of `conv2d`.

A transposed convolution is the input gradient of a convolution: it spreads each input
pixel over a kernel-sized patch of a larger output. So its forward pass is
`conv2d_backward`'s input gradient, and its input gradient is a plain `conv2d`.
Semantics follow `torch.nn.functional.conv_transpose2d`: weight of shape
(C, F // groups, kh, kw).
"""

from __future__ import annotations

from xconv._typing import Array, IntOrPair, Padding
from xconv._validation import (
    check_ndim,
    check_shape,
    namespace_of,
    positive_int,
    true_or_false,
)

from ._batching import add_batch, check_layout, check_same_layout, drop_batch
from ._conv import backward_input, bias_gradient, forward, weight_gradient
from ._dispatch import kernels_for
from ._geometry import ConvGeometry

__all__ = ["conv_transpose2d", "conv_transpose2d_backward"]


def conv_transpose2d(
    x: Array,
    weight: Array,
    /,
    bias: Array = None,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> Array:
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
    unbatched = check_layout(x, "x", "NCHW")  # (C, H, W) too, as PyTorch takes it
    x = add_batch(x, unbatched, xp)
    geometry = _check_transpose(x, weight, bias, stride, padding, output_padding, dilation, groups)
    out = backward_input(x, weight, geometry, groups, xp, kernels_for(xp))
    if bias is not None:
        out = out + xp.reshape(bias, (1, bias.shape[0], 1, 1))
    return drop_batch(out, unbatched)


def conv_transpose2d_backward(
    grad_output: Array,
    x: Array,
    weight: Array,
    /,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    bias: bool = True,
) -> tuple[Array, Array, Array | None]:
    """Gradients of `conv_transpose2d` with respect to its input, weight and bias.

    Returns:
        ``(grad_input, grad_weight, grad_bias)``, shaped like `x`, `weight` and (F,);
        `grad_bias` is None when ``bias=False``.
    """
    bias = true_or_false(bias, "bias")
    xp = namespace_of(grad_output=grad_output, x=x, weight=weight)
    unbatched = check_layout(x, "x", "NCHW")
    check_same_layout(grad_output, "grad_output", x, "x")
    x, grad_output = add_batch(x, unbatched, xp), add_batch(grad_output, unbatched, xp)
    geometry = _check_transpose(x, weight, None, stride, padding, output_padding, dilation, groups)
    check_ndim(grad_output, "grad_output", "NFHW")
    expected = (x.shape[0], weight.shape[1] * groups, *geometry.in_size)
    check_shape(grad_output, "grad_output", expected, "the shape of conv_transpose2d's output")
    kernels = kernels_for(xp)
    grad_bias = bias_gradient(grad_output, xp, kernels) if bias else None
    # the input gradient is the convolution that this op transposes; keep its columns
    grad_input, cols = forward(
        grad_output, weight, None, geometry, groups, xp, kernels, keep_columns=True
    )
    # the weight gradient swaps the roles: columns of grad_output, "output gradient" x
    shape = tuple(weight.shape)
    grad_weight = weight_gradient(x, grad_output, cols, shape, geometry, groups, xp, kernels)
    return drop_batch(grad_input, unbatched), grad_weight, grad_bias


def _check_transpose(
    x: Array,
    weight: Array,
    bias: Array,
    stride: IntOrPair,
    padding: Padding,
    output_padding: IntOrPair,
    dilation: IntOrPair,
    groups: int,
) -> ConvGeometry:
    """Validate a transposed convolution's arrays and options; return its geometry."""
    check_ndim(x, "x", "NCHW")
    check_ndim(weight, "weight", "CFHW")
    groups = positive_int(groups, "groups")
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
    return ConvGeometry.for_transpose(
        (x.shape[2], x.shape[3]),
        (weight.shape[2], weight.shape[3]),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )
