"""2-D convolution and its gradients, side by side, via im2col and one matmul per group.

Semantics are those of `torch.nn.functional.conv2d` (NCHW, cross-correlation,
weight of shape (F, C // groups, kh, kw)), plus TensorFlow's 'same' padding at any
stride. With groups, channels and filters split into `groups` equal, consecutive
blocks; block g of the output sees only block g of the input.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from xconv import config
from xconv._validation import check_ndim, check_shape, namespace_of, positive_int, true_or_false

from . import _numpy_conv, _numpy_kernels
from ._chunks import Chunks, ConvColumns, batch_chunks
from ._geometry import ConvGeometry, IntOrPair, Padding
from ._im2col import fold, release, unfold

__all__ = [
    "ConvColumns",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_gradients",
    "native",
]


def native(xp: Any) -> ModuleType | None:
    """The module running these ops on `xp`'s own kernels, or None for xconv's code.

    PyTorch's namespace gives `_torch_native`, JAX's `_jax_native`, imported only
    then; any other namespace, or ``xconv.config.delegate`` or ``fast_kernels`` off,
    gives None. Each op asks once, at its entry (the answer for a namespace is kept).
    """
    if not (config.delegate and config.fast_kernels):
        return None
    try:
        return _NATIVE[xp]
    except KeyError:
        module = _NATIVE[xp] = _native_module(xp)
        return module


_NATIVE: dict[Any, ModuleType | None] = {}


def _native_module(xp: Any) -> ModuleType | None:
    if array_api_compat.is_torch_namespace(xp):
        from . import _torch_native

        return _torch_native
    if array_api_compat.is_jax_namespace(xp):
        from . import _jax_native

        return _jax_native
    return None


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
    if (lib := native(xp)) is not None:
        return lib.conv_forward(x, weight, bias, geometry, groups)
    out, _ = forward(x, weight, bias, geometry, groups, xp)
    return out


def conv2d_forward(
    x: Any,
    weight: Any,
    bias: Any = None,
    /,
    *,
    geometry: ConvGeometry,
    groups: int = 1,
    keep_columns: bool = False,
) -> tuple[Any, ConvColumns | None]:
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
    if (lib := native(xp)) is not None:
        return lib.conv_forward(x, weight, bias, geometry, groups), None
    return forward(x, weight, bias, geometry, groups, xp, keep_columns=keep_columns)


def conv2d_gradients(
    grad_output: Any,
    x: Any,
    weight: Any,
    /,
    *,
    geometry: ConvGeometry,
    groups: int = 1,
    bias: bool = True,
    columns: ConvColumns | None = None,
    input_gradient: bool = True,
) -> tuple[Any, Any, Any | None]:
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
    # bias: sum over batch and pixels
    if (lib := native(xp)) is not None:
        # (columns kept by xconv's forward pass, if any, are simply dropped)
        grads: tuple[Any, Any, Any | None] = lib.gradients(
            grad_output, x, weight, geometry, groups, bias, input_gradient
        )
        return grads if input_gradient else (None, *grads[1:])
    grad_bias = bias_gradient(grad_output, xp) if bias else None
    shape = tuple(weight.shape)
    grad_weight = weight_gradient(grad_output, x, columns, shape, geometry, groups, xp)
    if not input_gradient:
        return None, grad_weight, grad_bias
    grad_input = backward_input(grad_output, weight, geometry, groups, xp)
    return grad_input, grad_weight, grad_bias


def bias_gradient(grad_output: Any, xp: Any) -> Any:
    """The sum of (N, F, OH, OW) over all but the filters' axis.

    On NumPy (a C-contiguous float array), inside `kernel_threads` (a training step),
    as a matrix-vector product with ones, the (N * F, OH * OW) rows against a vector:
    3.7-4x faster than `sum` over axes (0, 2, 3) (0.11 ms instead of 0.42 for the MNIST
    network's first layer). Not outside it: there the product runs on BLAS's threads,
    which then spin and slowed the threaded weight gradient after it 1.5x.
    """
    if (
        config.fast_kernels
        and _numpy_kernels.blas_held()
        and isinstance(grad_output, np.ndarray)
        and grad_output.dtype in (np.float32, np.float64)
        and grad_output.flags.c_contiguous
        and grad_output.size
    ):
        n, f, oh, ow = grad_output.shape
        ones = np.ones(oh * ow, dtype=grad_output.dtype)
        per_sample = grad_output.reshape(n * f, oh * ow) @ ones
        return per_sample.reshape(n, f).sum(axis=0)
    return xp.sum(grad_output, axis=(0, 2, 3))


def _check_planned(x: Any, weight: Any, geometry: ConvGeometry, groups: int) -> None:
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
    bias = true_or_false(bias, "bias")
    xp = namespace_of(grad_output=grad_output, x=x, weight=weight)
    geometry = _check_conv(x, weight, None, stride, padding, dilation, groups)
    check_ndim(grad_output, "grad_output", "NFHW")
    expected = (x.shape[0], weight.shape[0], *geometry.out_size)
    check_shape(grad_output, "grad_output", expected, "the shape of conv2d's output")
    return backward(grad_output, x, weight, geometry, groups, bias, xp)


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
# Batches whose columns exceed the workspace (`xconv.config`) go through in chunks, which
# NumPy runs on threads when they are large (`_numpy_kernels.map_chunks`). Columns that
# die inside these functions are scratch: on NumPy they go back to a buffer cache.


def forward(
    x: Any,
    weight: Any,
    bias: Any,
    geometry: ConvGeometry,
    groups: int,
    xp: Any,
    *,
    keep_columns: bool = False,
) -> tuple[Any, ConvColumns | None]:
    """The convolution, and (if asked and they fit the workspace) its columns."""
    filters = weight.shape[0]
    chunks = batch_chunks(x, geometry, xp, filters=filters)
    keep = keep_columns and chunks.whole_fits
    if _rows(xp, groups, x.shape[1], geometry):
        return _numpy_conv.forward(x, weight, bias, geometry, chunks, keep=keep)

    w = _grouped(weight, groups, xp)
    numpy = array_api_compat.is_numpy_namespace(xp)
    if numpy and (bias is not None or len(chunks.spans) > 1):
        # the products go into scratch buffers and each chunk's output, bias added,
        # straight into the one result array
        return _numpy_forward(x, w, bias, geometry, groups, chunks, keep, xp)

    def one(start: int, stop: int) -> tuple[Any, Any]:
        cols = columns(chunks.part(x, start, stop), geometry, groups, xp, scratch=True)
        out = from_columns(w @ cols, stop - start, geometry, xp)
        # a chunk's columns go back to the cache here, unless kept for the backward pass
        if keep:
            return out, cols
        release(cols, xp)
        return out, None

    results = chunks.map(one)
    outs = [out for out, _ in results]
    out = outs[0] if len(outs) == 1 else xp.concat(outs, axis=0)
    if bias is not None:
        out = out + xp.reshape(bias, (1, filters, 1, 1))
    return out, (ConvColumns(chunks, [cols for _, cols in results]) if keep else None)


def _numpy_forward(
    x: Any,
    w: Any,
    bias: Any,
    geometry: ConvGeometry,
    groups: int,
    chunks: Chunks,
    keep: bool,
    xp: Any,
) -> tuple[Any, ConvColumns | None]:
    """`forward` on NumPy: one fresh array, the result; every other buffer is scratch."""
    n, filters = x.shape[0], w.shape[0] * (w.shape[1] if w.ndim == 3 else 1)
    dtype = xp.result_type(x, w)
    if len(chunks.spans) == 1:  # laid out (F, N, OH, OW), as the product comes out
        result = _numpy_kernels.RESULTS.take((filters, n, *geometry.out_size), dtype)
        out = xp.permute_dims(result, (1, 0, 2, 3))
    else:
        out = _numpy_kernels.RESULTS.take((n, filters, *geometry.out_size), dtype)
    shift = None if bias is None else xp.reshape(bias, (1, filters, 1, 1))

    def one(start: int, stop: int) -> Any:
        cols = columns(chunks.part(x, start, stop), geometry, groups, xp, scratch=True)
        y = _numpy_kernels.matmul(w, cols)
        part = from_columns(y, stop - start, geometry, xp)
        if shift is None:
            _numpy_kernels.copy_into(out[start:stop, ...], part)
        else:
            _numpy_kernels.add_into(out[start:stop, ...], part, shift)
        release(y, xp)
        # a chunk's columns go back to the cache here, unless kept for the backward pass
        if keep:
            return cols
        release(cols, xp)
        return None

    kept = chunks.map(one)
    return out, (ConvColumns(chunks, kept) if keep else None)


def backward(
    grad_output: Any,
    x: Any,
    weight: Any,
    geometry: ConvGeometry,
    groups: int,
    bias: bool,
    xp: Any,
) -> tuple[Any, Any, Any | None]:
    """The three gradients of `forward`, recomputing the columns chunk by chunk."""
    # bias: sum over batch and pixels
    if (lib := native(xp)) is not None:
        grads: tuple[Any, Any, Any | None] = lib.gradients(
            grad_output, x, weight, geometry, groups, bias
        )
        return grads
    grad_bias = bias_gradient(grad_output, xp) if bias else None
    grad_weight = weight_gradient(grad_output, x, None, tuple(weight.shape), geometry, groups, xp)
    grad_input = backward_input(grad_output, weight, geometry, groups, xp)
    return grad_input, grad_weight, grad_bias


def weight_gradient(
    grad_output: Any,
    x: Any,
    kept: ConvColumns | None,
    weight_shape: tuple[int, ...],
    geometry: ConvGeometry,
    groups: int,
    xp: Any,
) -> Any:
    """(G, F/G, N * L) @ (G, N * L, K), summed over chunks; `kept` are `forward`'s columns.

    On NumPy with groups == 1, `_numpy_conv.weight_gradient` runs it instead, as a
    product with the output gradient laid out channels-last (rows or columns).
    """
    rows = _rows(xp, groups, x.shape[1], geometry)
    if kept is not None and kept.rows != rows:
        kept = None  # (made in the other layout: `fast_kernels` changed in between)
    if kept is not None:
        chunks = kept.chunks
    else:
        chunks = batch_chunks(x, geometry, xp, filters=grad_output.shape[1])
    if _numpy_plain(xp, groups):  # (rows or columns)
        return _numpy_conv.weight_gradient(
            grad_output, x, kept, weight_shape, geometry, chunks, rows=rows
        )

    def one(start: int, stop: int) -> Any:
        grad = to_columns(chunks.part(grad_output, start, stop), groups, xp, scratch=True)
        cols = None if kept is None else kept.take((start, stop))
        if cols is None:
            cols = columns(chunks.part(x, start, stop), geometry, groups, xp, scratch=True)
        partial = grad @ xp.matrix_transpose(cols)
        release(cols, xp)
        release(grad, xp)
        return partial

    partial = chunks.map(one)
    grad_weight = partial[0]
    for part in partial[1:]:
        grad_weight = grad_weight + part
    return xp.reshape(grad_weight, weight_shape)


def backward_input(
    grad_output: Any, weight: Any, geometry: ConvGeometry, groups: int, xp: Any
) -> Any:
    """Input gradient: (G, K, F/G) @ (G, F/G, N * L) gives columns; fold sums them back.

    This is also the transposed convolution of `grad_output` with `weight`. On NumPy,
    where it is cheaper (`_as_convolution`), it runs as a forward convolution instead.
    """
    numpy = array_api_compat.is_numpy_namespace(xp)
    rows = _rows(xp, groups, weight.shape[1], geometry)
    if numpy and config.fast_kernels:
        limit = ROWS_FLIP_LIMIT if rows else FOLD_OVER_UNFOLD / 2
        plan = _as_convolution(weight, geometry, groups, limit=limit)
        if plan is not None:
            flipped, mirrored = plan
            out, _ = forward(grad_output, flipped, None, mirrored, groups, xp)
            return out
    if rows:
        chunks = batch_chunks(
            grad_output, geometry, xp, channels=weight.shape[1], filters=weight.shape[0]
        )
        return _numpy_conv.input_gradient(grad_output, weight, geometry, chunks)
    w_t = xp.matrix_transpose(_grouped(weight, groups, xp))
    channels = weight.shape[1] * groups
    chunks = batch_chunks(grad_output, geometry, xp, channels=channels, filters=weight.shape[0])

    def one(start: int, stop: int) -> Any:
        grad = to_columns(chunks.part(grad_output, start, stop), groups, xp, scratch=True)
        # (the product is scratch: on NumPy it goes into a cached buffer)
        grad_cols = _numpy_kernels.matmul(w_t, grad) if numpy else w_t @ grad
        release(grad, xp)
        if groups > 1:
            rows = grad_cols.shape[0] * grad_cols.shape[1]
            grad_cols = xp.reshape(grad_cols, (rows, grad_cols.shape[2]))
        image = fold(grad_cols, geometry, xp)
        release(grad_cols, xp)
        return image

    parts = chunks.map(one)
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


#: the row layout copies runs of kw * C values, the column layout runs of OW pixels:
#: below this many values per run, the rows' copies cost more than their products save
#: (C = 1 and 3 at kw = 3 ran 1.1-1.8x slower in rows; C = 16 at kw = 3 ran 0.6-0.75x)
ROW_RUN = 16


def _numpy_plain(xp: Any, groups: int) -> bool:
    """Whether `_numpy_conv` runs the convolution's products: NumPy, groups == 1."""
    return groups == 1 and config.fast_kernels and array_api_compat.is_numpy_namespace(xp)


def _rows(xp: Any, groups: int, channels: int, geometry: ConvGeometry) -> bool:
    """Whether the convolution runs on NumPy's row layout (`_numpy_conv`)."""
    return _numpy_plain(xp, groups) and channels * geometry.kernel_size[1] >= ROW_RUN


#: col2im adds (read, add, write) where im2col copies: per element 1.8-2.8 times the
#: time on NumPy where loops, not memory, bound them (`python -m benchmarks conv-parts`)
FOLD_OVER_UNFOLD = 2.4

#: in the row layout the flipped convolution won up to F * H * W = 2 * C * OH * OW
#: (1.4x faster than folding rows back at (64, 16, 8, 8) -> 32 and (128, 16, 32, 32) ->
#: 32) and lost at 2.8 (1.3x slower: the MNIST network's second convolution)
ROWS_FLIP_LIMIT = 2.4


def _as_convolution(
    weight: np.ndarray, geometry: ConvGeometry, groups: int, *, limit: float = FOLD_OVER_UNFOLD / 2
) -> tuple[np.ndarray, ConvGeometry] | None:
    """At stride 1 the input gradient is a convolution of the output gradient: with the
    kernels flipped and their channel axes swapped, padded so the result has the
    input's size. Its im2col copies F * kh * kw values per input pixel where col2im
    adds C * kh * kw per output pixel. Returns (those kernels, that geometry) where
    F * H * W <= `limit` * C * OH * OW (where it is the cheaper of the two: ResNet's
    'same' layers, F == C), else None.
    """
    if geometry.stride != (1, 1):
        return None
    f, c_group, kh, kw = weight.shape
    (top, bottom), (left, right) = geometry.padding
    dh, dw = geometry.dilation
    pads = (
        (dh * (kh - 1) - top, dh * (kh - 1) - bottom),
        (dw * (kw - 1) - left, dw * (kw - 1) - right),
    )
    if min(*pads[0], *pads[1]) < 0:  # padding wider than the kernel: no such convolution
        return None
    (height, width), (oh, ow) = geometry.in_size, geometry.out_size
    if f * height * width > limit * c_group * groups * oh * ow:
        return None  # (the margin: its matrix product also grows with H * W / (OH * OW))
    mirrored = ConvGeometry.from_pairs(
        (oh, ow), (kh, kw), stride=(1, 1), padding=pads, dilation=(dh, dw)
    )
    if mirrored.out_size != geometry.in_size:
        return None
    # (F, C/G, kh, kw) -> (G, F/G, C/G, kh, kw) -> (C, F/G, kh, kw), flipped in space
    swapped = weight.reshape(groups, f // groups, c_group, kh, kw).transpose(0, 2, 1, 3, 4)
    flipped = np.ascontiguousarray(swapped[..., ::-1, ::-1]).reshape(
        groups * c_group, f // groups, kh, kw
    )
    return flipped, mirrored


def columns(x: Any, geometry: ConvGeometry, groups: int, xp: Any, *, scratch: bool) -> Any:
    """x's columns, (G, C/G * kh * kw, N * L); a plain matrix when G == 1."""
    cols = unfold(x, geometry, xp, scratch=scratch)
    if groups == 1:
        return cols
    return xp.reshape(cols, (groups, cols.shape[0] // groups, cols.shape[1]))


def to_columns(a: Any, groups: int, xp: Any, *, scratch: bool = False) -> Any:
    """(N, F, OH, OW) -> (G, F/G, N * OH * OW): channels first, then samples, then pixels.

    With `scratch`, NumPy's copy goes into a cached buffer: `release` it once used.
    """
    n, f, oh, ow = a.shape
    shape = (f, n * oh * ow) if groups == 1 else (groups, f // groups, n * oh * ow)
    channels_first = xp.permute_dims(a, (1, 0, 2, 3))
    if scratch and n > 1 and array_api_compat.is_numpy_namespace(xp):
        matrix = _numpy_kernels.BUFFERS.take((f, n * oh * ow), a.dtype)
        _numpy_kernels.copy_into(xp.reshape(matrix, (f, n, oh, ow)), channels_first)
        return xp.reshape(matrix, shape)
    return xp.reshape(channels_first, shape)


def from_columns(y: Any, n: int, geometry: ConvGeometry, xp: Any) -> Any:
    """(G, F/G, N * OH * OW) -> (N, F, OH, OW), the inverse of `to_columns`."""
    filters = y.shape[0] * y.shape[1] if y.ndim == 3 else y.shape[0]
    y = xp.reshape(y, (filters, n, *geometry.out_size))
    return xp.permute_dims(y, (1, 0, 2, 3))


def _grouped(weight: Any, groups: int, xp: Any) -> Any:
    """(F, C/G, kh, kw) -> (G, F/G, C/G * kh * kw); a plain matrix when G == 1."""
    f, c, kh, kw = weight.shape
    shape = (f, c * kh * kw) if groups == 1 else (groups, f // groups, c * kh * kw)
    return xp.reshape(weight, shape)
