"""2-D convolution and its gradients, side by side, via im2col and one matmul.

Semantics are those of `torch.nn.functional.conv2d` (NCHW, cross-correlation,
weight of shape (F, C // groups, kh, kw)), plus TensorFlow's 'same' padding at any
stride. With groups, channels and filters split into `groups` equal, consecutive
blocks; block g of the output sees only block g of the input.
"""

from __future__ import annotations

from typing import Any

from ._checks import check_ndim, check_shape, namespace_of
from ._geometry import ConvGeometry, IntOrPair, Padding
from ._im2col import fold, unfold

__all__ = ["conv2d", "conv2d_backward"]


def conv2d(
    x: Any,
    weight: Any,
    /,
    bias: Any = None,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> Any:
    """2-D convolution (cross-correlation) of a batch of images.

    Args:
        x: input of shape (N, C, H, W), real floating dtype.
        weight: filters of shape (F, C // groups, kh, kw), same dtype and device.
        bias: optional, shape (F,).
        stride: int or (sh, sw), >= 1.
        padding: int, (pad_h, pad_w), ((top, bottom), (left, right)), ``"valid"``
            (no padding) or ``"same"`` (TensorFlow's: OH = ceil(H / sh), the odd pixel
            of padding at the bottom/right; any stride).
        dilation: spacing between kernel taps, int or pair, >= 1.
        groups: split C and F into this many independent blocks; C and F must be
            multiples of it (``groups=C`` is a depthwise convolution).

    Returns:
        Output of shape (N, F, OH, OW) in the namespace, device and dtype of `x`.

    Shape:
        ``OH = (H + top + bottom - dilation_h * (kh - 1) - 1) // stride_h + 1``;
        OW likewise.

    Example:
        >>> import numpy as np
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> conv2d(x, np.ones((1, 1, 2, 2)), stride=2)[0, 0]
        array([[10., 18.],
               [42., 50.]])
    """
    xp = namespace_of(x=x, weight=weight, bias=bias)
    geometry = _check_conv(x, weight, bias, stride, padding, dilation, groups)
    out, _ = forward(x, weight, bias, geometry, groups, xp)
    return out


def conv2d_backward(
    grad_output: Any,
    x: Any,
    weight: Any,
    /,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    bias: bool = True,
) -> tuple[Any, Any, Any | None]:
    """Gradients of `conv2d` with respect to its input, weight and bias.

    Args:
        grad_output: gradient of the loss with respect to the output of
            ``conv2d(x, weight, ...)``, shape (N, F, OH, OW).
        x, weight: the forward pass's input and weight.
        stride, padding, dilation, groups: the forward pass's options.
        bias: whether the forward pass had a bias.

    Returns:
        ``(grad_input, grad_weight, grad_bias)``, shaped like `x`, `weight` and
        (F,); `grad_bias` is None when ``bias=False``.

    Example:
        >>> import numpy as np
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> w = np.ones((1, 1, 2, 2))
        >>> gx, gw, gb = conv2d_backward(np.ones((1, 1, 2, 2)), x, w, stride=2)
        >>> gw[0, 0], gb
        (array([[20., 24.],
               [36., 40.]]), array([4.]))
    """
    if not isinstance(bias, bool):
        raise TypeError(f"`bias` must be True or False, got {bias!r}")
    xp = namespace_of(grad_output=grad_output, x=x, weight=weight)
    geometry = _check_conv(x, weight, None, stride, padding, dilation, groups)
    check_ndim(grad_output, "grad_output", "NFHW")
    expected = (x.shape[0], weight.shape[0], *geometry.out_size)
    check_shape(grad_output, "grad_output", expected, "the shape of conv2d's output")
    cols = unfold(x, geometry, xp)
    cols = xp.reshape(cols, (x.shape[0], groups, cols.shape[1] // groups, cols.shape[2]))
    return backward(grad_output, cols, weight, geometry, groups, bias, xp)


def _check_conv(
    x: Any,
    weight: Any,
    bias: Any,
    stride: IntOrPair,
    padding: Padding,
    dilation: IntOrPair,
    groups: int,
) -> ConvGeometry:
    """Validate a convolution's arrays and options; return its geometry."""
    check_ndim(x, "x", "NCHW")
    check_ndim(weight, "weight", "FCHW")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"`groups` must be a positive integer, got {groups!r}")
    channels, filters = x.shape[1], weight.shape[0]
    if channels % groups:
        raise ValueError(f"`x` has {channels} channels, not divisible by `groups` (={groups})")
    if filters % groups:
        raise ValueError(f"`weight` has {filters} filters, not divisible by `groups` (={groups})")
    if weight.shape[1] * groups != channels:
        raise ValueError(
            f"`weight` of shape {tuple(weight.shape)} expects {weight.shape[1] * groups} "
            f"input channels (shape[1] * groups), but `x` of shape {tuple(x.shape)} "
            f"has {channels}"
        )
    if bias is not None:
        check_shape(bias, "bias", (filters,), "one value per filter")
    return ConvGeometry.build(
        (x.shape[2], x.shape[3]),
        (weight.shape[2], weight.shape[3]),
        stride=stride,
        padding=padding,
        dilation=dilation,
    )


# -- implementations, arguments already checked ---------------------------------------
# With G groups: columns (N, C*kh*kw, L) -> (N, G, K, L) with K = C/G*kh*kw, weight
# (F, C/G, kh, kw) -> (G, F/G, K); then one batched matmul does all groups at once.


def forward(
    x: Any, weight: Any, bias: Any, geometry: ConvGeometry, groups: int, xp: Any
) -> tuple[Any, Any]:
    """The convolution and its columns, for a backward pass that wants to reuse them."""
    n = x.shape[0]
    filters = weight.shape[0]
    oh, ow = geometry.out_size
    # im2col
    cols = unfold(x, geometry, xp)
    k = cols.shape[1] // groups
    cols = xp.reshape(cols, (n, groups, k, oh * ow))
    # matmul: (G, F/G, K) @ (N, G, K, L) -> (N, G, F/G, L)
    w = xp.reshape(weight, (groups, filters // groups, k))
    out = xp.reshape(w @ cols, (n, filters, oh, ow))
    if bias is not None:
        out = out + xp.reshape(bias, (1, filters, 1, 1))
    return out, cols


def backward(
    grad_output: Any,
    cols: Any,
    weight: Any,
    geometry: ConvGeometry,
    groups: int,
    bias: bool,
    xp: Any,
) -> tuple[Any, Any, Any | None]:
    """Gradients from the forward pass's columns, shaped (N, G, K, L) as `forward` makes them."""
    # bias: sum over batch and pixels
    grad_bias = xp.sum(grad_output, axis=(0, 2, 3)) if bias else None
    grad_weight = weight_gradient(grad_output, cols, tuple(weight.shape), groups, xp)
    grad_input = input_gradient(grad_output, weight, geometry, groups, xp)
    return grad_input, grad_weight, grad_bias


def weight_gradient(
    grad_output: Any, cols: Any, weight_shape: tuple[int, ...], groups: int, xp: Any
) -> Any:
    """Weight gradient: (N, G, F/G, L) @ (N, G, L, K), summed over the batch."""
    n, filters = grad_output.shape[0], grad_output.shape[1]
    grad = xp.reshape(grad_output, (n, groups, filters // groups, cols.shape[3]))
    grad_weight = xp.sum(grad @ xp.matrix_transpose(cols), axis=0)
    return xp.reshape(grad_weight, weight_shape)


def input_gradient(
    grad_output: Any, weight: Any, geometry: ConvGeometry, groups: int, xp: Any
) -> Any:
    """Input gradient: (G, K, F/G) @ (N, G, F/G, L) gives columns; col2im sums them back.

    This is also the transposed convolution of `grad_output` with `weight`.
    """
    n, filters = grad_output.shape[0], grad_output.shape[1]
    oh, ow = geometry.out_size
    k = weight.shape[1] * weight.shape[2] * weight.shape[3]
    grad = xp.reshape(grad_output, (n, groups, filters // groups, oh * ow))
    w_t = xp.matrix_transpose(xp.reshape(weight, (groups, filters // groups, k)))
    grad_cols = xp.reshape(w_t @ grad, (n, groups * k, oh * ow))
    return fold(grad_cols, geometry, xp)
