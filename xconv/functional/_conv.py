"""2-D convolution and its gradients, side by side, via im2col and one matmul per group.

Semantics are those of `torch.nn.functional.conv2d` (NCHW, cross-correlation,
weight of shape (F, C // groups, kh, kw)), plus TensorFlow's 'same' padding at any
stride. With groups, channels and filters split into `groups` equal, consecutive
blocks; block g of the output sees only block g of the input.
"""

from __future__ import annotations

import array_api_compat

from xconv._typing import Array, IntOrPair, Namespace, Padding
from xconv._validation import check_ndim, check_shape, namespace_of, positive_int, true_or_false

from ._batching import add_batch, check_layout, check_same_layout, drop_batch
from ._chunks import ConvColumns, batch_chunks
from ._dispatch import kernels_for
from ._geometry import ConvGeometry
from ._im2col import fold, unfold
from ._interface import Kernels

__all__ = [
    "ConvColumns",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_gradients",
]


def conv2d(
    x: Array,
    weight: Array,
    /,
    bias: Array = None,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> Array:
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
    unbatched = check_layout(x, "x", "NCHW")  # (C, H, W) too, as PyTorch takes it
    x = add_batch(x, unbatched, xp)
    geometry = _check_conv(x, weight, bias, stride, padding, dilation, groups)
    out, _ = forward(x, weight, bias, geometry, groups, xp, kernels_for(xp))
    return drop_batch(out, unbatched)


def conv2d_forward(
    x: Array,
    weight: Array,
    bias: Array = None,
    /,
    *,
    geometry: ConvGeometry,
    groups: int = 1,
    keep_columns: bool = False,
) -> tuple[Array, ConvColumns | None]:
    """`conv2d` with a geometry built beforehand, keeping its columns if asked.

    For layers, which validate their options once and run many batches: `geometry`
    must be ``ConvGeometry.build((H, W), (kh, kw), ...)`` for this `x` and `weight`.
    With `keep_columns`, the im2col columns are returned for `conv2d_gradients` to
    reuse (they are as large as `x` times kh * kw; None when they do not fit
    ``xconv.config.workspace_bytes``, and then the gradient recomputes them; None
    too where the convolution is delegated to PyTorch or JAX, which keep none).

    Returns:
        ``(output, columns)``: the output as `conv2d` gives it, and a `ConvColumns`
        or None.

    Example:
        >>> import numpy as np
        >>> g = ConvGeometry.build((4, 4), 2, stride=2)
        >>> x, w = np.arange(16.0).reshape(1, 1, 4, 4), np.ones((1, 1, 2, 2))
        >>> out, kept = conv2d_forward(x, w, geometry=g, keep_columns=True)
        >>> gx, gw, gb = conv2d_gradients(np.ones_like(out), x, w, geometry=g, columns=kept)
        >>> out[0, 0], gw[0, 0]
        (array([[10., 18.],
               [42., 50.]]), array([[20., 24.],
               [36., 40.]]))
    """
    xp = array_api_compat.array_namespace(x, weight)
    _check_planned(x, weight, geometry, groups)
    kernels = kernels_for(xp)
    return forward(x, weight, bias, geometry, groups, xp, kernels, keep_columns=keep_columns)


def conv2d_gradients(
    grad_output: Array,
    x: Array,
    weight: Array,
    /,
    *,
    geometry: ConvGeometry,
    groups: int = 1,
    bias: bool = True,
    columns: ConvColumns | None = None,
    input_gradient: bool = True,
) -> tuple[Array, Array, Array | None]:
    """`conv2d_backward` with a geometry built beforehand and `conv2d_forward`'s columns.

    `columns` are used up: the weight gradient takes them and frees them before the
    input gradient makes columns of its own, so peak memory stays one set of columns.
    Without `input_gradient` (a network's first layer: nothing needs the gradient of
    its input) that gradient is not computed, and comes back None.

    Returns:
        ``(grad_input, grad_weight, grad_bias)``, as `conv2d_backward`.
    """
    xp = array_api_compat.array_namespace(grad_output, x, weight)
    _check_planned(x, weight, geometry, groups)
    expected = (x.shape[0], weight.shape[0], *geometry.out_size)
    check_shape(grad_output, "grad_output", expected, "the shape of conv2d's output")
    return gradients(
        grad_output,
        x,
        weight,
        geometry,
        groups,
        xp,
        kernels_for(xp),
        bias=bias,
        columns=columns,
        input_gradient=input_gradient,
    )


def gradients(
    grad_output: Array,
    x: Array,
    weight: Array,
    geometry: ConvGeometry,
    groups: int,
    xp: Namespace,
    kernels: Kernels,
    *,
    bias: bool,
    columns: ConvColumns | None = None,
    input_gradient: bool = True,
) -> tuple[Array | None, Array, Array | None]:
    """The three gradients of `forward` (the input's None without `input_gradient`):
    the kernels' in one call where they have it, else one by one."""
    grads = kernels.conv_gradients(
        grad_output, x, weight, geometry, groups, bias=bias, input_gradient=input_gradient
    )
    if grads is not None:  # (columns kept by xconv's forward pass, if any, are dropped)
        return grads if input_gradient else (None, *grads[1:])
    # bias: sum over batch and pixels
    grad_bias = bias_gradient(grad_output, xp, kernels) if bias else None
    shape = tuple(weight.shape)
    grad_weight = weight_gradient(grad_output, x, columns, shape, geometry, groups, xp, kernels)
    if not input_gradient:
        return None, grad_weight, grad_bias
    grad_input = backward_input(grad_output, weight, geometry, groups, xp, kernels)
    return grad_input, grad_weight, grad_bias


def bias_gradient(grad_output: Array, xp: Namespace, kernels: Kernels) -> Array:
    """The sum of (N, F, OH, OW) over all but the filters' axis."""
    grad_bias = kernels.conv_bias_gradient(grad_output)
    return xp.sum(grad_output, axis=(0, 2, 3)) if grad_bias is None else grad_bias


def _check_planned(x: Array, weight: Array, geometry: ConvGeometry, groups: int) -> None:
    if (x.shape[2], x.shape[3]) != geometry.in_size or tuple(weight.shape[2:]) != (
        geometry.kernel_size
    ):
        raise ValueError(
            f"`geometry` is for {geometry.in_size} images and {geometry.kernel_size} "
            f"kernels, got `x` of shape {tuple(x.shape)} and `weight` of shape "
            f"{tuple(weight.shape)}"
        )
    if weight.shape[1] * groups != x.shape[1]:
        raise ValueError(
            f"`weight` of shape {tuple(weight.shape)} expects {weight.shape[1] * groups} "
            f"input channels (shape[1] * groups), but `x` of shape {tuple(x.shape)} "
            f"has {x.shape[1]}"
        )


def conv2d_backward(
    grad_output: Array,
    x: Array,
    weight: Array,
    /,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    bias: bool = True,
) -> tuple[Array, Array, Array | None]:
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
    bias = true_or_false(bias, "bias")
    xp = namespace_of(grad_output=grad_output, x=x, weight=weight)
    unbatched = check_layout(x, "x", "NCHW")
    check_same_layout(grad_output, "grad_output", x, "x")
    x, grad_output = add_batch(x, unbatched, xp), add_batch(grad_output, unbatched, xp)
    geometry = _check_conv(x, weight, None, stride, padding, dilation, groups)
    check_ndim(grad_output, "grad_output", "NFHW")
    expected = (x.shape[0], weight.shape[0], *geometry.out_size)
    check_shape(grad_output, "grad_output", expected, "the shape of conv2d's output")
    kernels = kernels_for(xp)
    grad_input, grad_weight, grad_bias = gradients(
        grad_output, x, weight, geometry, groups, xp, kernels, bias=bias
    )
    return drop_batch(grad_input, unbatched), grad_weight, grad_bias


def _check_conv(
    x: Array,
    weight: Array,
    bias: Array,
    stride: IntOrPair,
    padding: Padding,
    dilation: IntOrPair,
    groups: int,
) -> ConvGeometry:
    """Validate a convolution's arrays and options; return its geometry."""
    check_ndim(x, "x", "NCHW")
    check_ndim(weight, "weight", "FCHW")
    groups = positive_int(groups, "groups")
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
# Columns lie side by side for the whole batch: (G, K, N * L) with K = C/G * kh * kw and
# L = OH * OW, so each group is ONE matrix product (G, F/G, K) @ (G, K, N * L) however
# many samples there are (a batch of small images would otherwise be many tiny ones).
# Batches whose columns exceed the workspace (`xconv.config`) go through in chunks,
# which the kernels may run on threads. Each step first asks the op's kernels, and runs
# the generic code where they answer None. Columns that die inside these functions are
# scratch: they go back to the kernels' buffer cache (`Kernels.release`).


def forward(
    x: Array,
    weight: Array,
    bias: Array | None,
    geometry: ConvGeometry,
    groups: int,
    xp: Namespace,
    kernels: Kernels,
    *,
    keep_columns: bool = False,
) -> tuple[Array, ConvColumns | None]:
    """The convolution, and (if asked and they fit the workspace) its columns."""
    done = kernels.conv_forward(x, weight, bias, geometry, groups, keep_columns=keep_columns)
    if done is not None:
        return done
    filters = weight.shape[0]
    chunks = batch_chunks(x, geometry, kernels, filters=filters)
    keep = keep_columns and chunks.whole_fits
    w = _grouped(weight, groups, xp)

    def one(start: int, stop: int) -> tuple[Array, Array | None]:
        cols = columns(chunks.part(x, start, stop), geometry, groups, xp, kernels, scratch=True)
        out = from_columns(w @ cols, stop - start, geometry, xp)
        # a chunk's columns go back to the cache here, unless kept for the backward pass
        if keep:
            return out, cols
        kernels.release(cols)
        return out, None

    results = chunks.map(one)
    outs = [out for out, _ in results]
    out = outs[0] if len(outs) == 1 else xp.concat(outs, axis=0)
    if bias is not None:
        out = out + xp.reshape(bias, (1, filters, 1, 1))
    return out, (ConvColumns(chunks, [cols for _, cols in results]) if keep else None)


def weight_gradient(
    grad_output: Array,
    x: Array,
    kept: ConvColumns | None,
    weight_shape: tuple[int, ...],
    geometry: ConvGeometry,
    groups: int,
    xp: Namespace,
    kernels: Kernels,
) -> Array:
    """(G, F/G, N * L) @ (G, N * L, K), summed over chunks; `kept` are `forward`'s columns."""
    grad_weight = kernels.conv_weight_gradient(
        grad_output, x, kept, weight_shape, geometry, groups
    )
    if grad_weight is not None:
        return grad_weight
    if kept is not None and kept.rows:
        kept = None  # (a kernel's own layout, made while fast kernels were on)
    if kept is not None:
        chunks = kept.chunks
    else:
        chunks = batch_chunks(x, geometry, kernels, filters=grad_output.shape[1])

    def one(start: int, stop: int) -> Array:
        grad = to_columns(chunks.part(grad_output, start, stop), groups, xp, kernels, scratch=True)
        cols = None if kept is None else kept.take((start, stop))
        if cols is None:
            part = chunks.part(x, start, stop)
            cols = columns(part, geometry, groups, xp, kernels, scratch=True)
        partial = grad @ xp.matrix_transpose(cols)
        kernels.release(cols)
        kernels.release(grad)
        return partial

    partial = chunks.map(one)
    grad_weight = partial[0]
    for part in partial[1:]:
        grad_weight = grad_weight + part
    return xp.reshape(grad_weight, weight_shape)


def backward_input(
    grad_output: Array,
    weight: Array,
    geometry: ConvGeometry,
    groups: int,
    xp: Namespace,
    kernels: Kernels,
) -> Array:
    """Input gradient: (G, K, F/G) @ (G, F/G, N * L) gives columns; fold sums them back.

    This is also the transposed convolution of `grad_output` with `weight`.
    """
    grad_input = kernels.conv_input_gradient(grad_output, weight, geometry, groups)
    if grad_input is not None:
        return grad_input
    w_t = xp.matrix_transpose(_grouped(weight, groups, xp))
    channels = weight.shape[1] * groups
    chunks = batch_chunks(
        grad_output, geometry, kernels, channels=channels, filters=weight.shape[0]
    )

    def one(start: int, stop: int) -> Array:
        part = chunks.part(grad_output, start, stop)
        grad = to_columns(part, groups, xp, kernels, scratch=True)
        grad_cols = kernels.scratch_matmul(w_t, grad)
        kernels.release(grad)
        if groups > 1:
            rows = grad_cols.shape[0] * grad_cols.shape[1]
            grad_cols = xp.reshape(grad_cols, (rows, grad_cols.shape[2]))
        image = fold(grad_cols, geometry, xp, kernels)
        kernels.release(grad_cols)
        return image

    parts = chunks.map(one)
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def columns(
    x: Array,
    geometry: ConvGeometry,
    groups: int,
    xp: Namespace,
    kernels: Kernels,
    *,
    scratch: bool,
) -> Array:
    """x's columns, (G, C/G * kh * kw, N * L); a plain matrix when G == 1."""
    cols = unfold(x, geometry, xp, kernels, scratch=scratch)
    if groups == 1:
        return cols
    return xp.reshape(cols, (groups, cols.shape[0] // groups, cols.shape[1]))


def to_columns(
    a: Array, groups: int, xp: Namespace, kernels: Kernels, *, scratch: bool = False
) -> Array:
    """(N, F, OH, OW) -> (G, F/G, N * OH * OW): channels first, then samples, then pixels.

    With `scratch`, the copy may go into a buffer of the kernels' cache: `release` it.
    """
    n, f, oh, ow = a.shape
    shape = (f, n * oh * ow) if groups == 1 else (groups, f // groups, n * oh * ow)
    channels_first = xp.permute_dims(a, (1, 0, 2, 3))
    if scratch and n > 1:
        matrix = kernels.scratch_copy(channels_first, (f, n * oh * ow))
        if matrix is not None:
            return xp.reshape(matrix, shape)
    return xp.reshape(channels_first, shape)


def from_columns(y: Array, n: int, geometry: ConvGeometry, xp: Namespace) -> Array:
    """(G, F/G, N * OH * OW) -> (N, F, OH, OW), the inverse of `to_columns`."""
    filters = y.shape[0] * y.shape[1] if y.ndim == 3 else y.shape[0]
    y = xp.reshape(y, (filters, n, *geometry.out_size))
    return xp.permute_dims(y, (1, 0, 2, 3))


def _grouped(weight: Array, groups: int, xp: Namespace) -> Array:
    """(F, C/G, kh, kw) -> (G, F/G, C/G * kh * kw); a plain matrix when G == 1."""
    f, c, kh, kw = weight.shape
    shape = (f, c * kh * kw) if groups == 1 else (groups, f // groups, c * kh * kw)
    return xp.reshape(weight, shape)
