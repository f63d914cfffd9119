"""2-D convolution and its gradients, side by side, via im2col and one matmul per group.

Semantics are those of `torch.nn.functional.conv2d` (NCHW, cross-correlation,
weight of shape (F, C // groups, kh, kw)), plus TensorFlow's 'same' padding at any
stride. With groups, channels and filters split into `groups` equal, consecutive
blocks; block g of the output sees only block g of the input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from .. import config
from ..backends import Backend, backend_for
from ._checks import check_ndim, check_shape, namespace_of
from ._geometry import ConvGeometry, IntOrPair, Padding
from ._im2col import fold_t, unfold_t

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
# Columns lie side by side for the whole batch: (G, K, N * L) with K = C/G * kh * kw and
# L = OH * OW, so each group is ONE matrix product (G, F/G, K) @ (G, K, N * L) however
# many samples there are (a batch of small images would otherwise be many tiny ones).
# Batches whose columns exceed the workspace (`xconv.config`) go through in chunks, which
# a backend may run concurrently (`Backend.map_chunks`).


class Chunks(NamedTuple):
    """How a convolution's batch is cut: spans that fit the workspace, whether the
    backend runs them concurrently, and whether all the batch's columns would fit."""

    spans: list[tuple[int, int]]
    parallel: bool
    backend: Backend | None
    whole_fits: bool

    def map(self, fn: Callable[[int, int], Any]) -> list[Any]:
        """``fn(start, stop)`` for every span, in order."""
        if self.parallel and self.backend is not None:
            return self.backend.map_chunks(fn, self.spans)
        return [fn(start, stop) for start, stop in self.spans]

    def part(self, a: Any, start: int, stop: int) -> Any:
        """Samples [start, stop) of `a` (no slicing when there is one span)."""
        return a if len(self.spans) == 1 else a[start:stop, ...]


def forward(
    x: Any,
    weight: Any,
    bias: Any,
    geometry: ConvGeometry,
    groups: int,
    xp: Any,
    *,
    keep_columns: bool = False,
) -> tuple[Any, tuple[Chunks, list[Any]] | None]:
    """The convolution, and (if asked and they fit the workspace) its columns by chunk."""
    filters = weight.shape[0]
    w = _grouped(weight, groups, xp)
    chunks = batch_chunks(x, geometry, xp, filters=filters)
    keep = keep_columns and chunks.whole_fits

    def one(start: int, stop: int) -> tuple[Any, Any]:
        cols = columns(chunks.part(x, start, stop), geometry, groups, xp)
        # (a chunk's columns die here unless they are kept for the backward pass)
        return from_columns(w @ cols, stop - start, geometry, xp), (cols if keep else None)

    results = chunks.map(one)
    outs = [out for out, _ in results]
    out = outs[0] if len(outs) == 1 else xp.concat(outs, axis=0)
    if bias is not None:
        out = out + xp.reshape(bias, (1, filters, 1, 1))
    return out, ((chunks, [cols for _, cols in results]) if keep else None)


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
    grad_bias = xp.sum(grad_output, axis=(0, 2, 3)) if bias else None
    grad_weight = weight_gradient(grad_output, x, None, tuple(weight.shape), geometry, groups, xp)
    grad_input = input_gradient(grad_output, weight, geometry, groups, xp)
    return grad_input, grad_weight, grad_bias


def weight_gradient(
    grad_output: Any,
    x: Any,
    kept: tuple[Chunks, list[Any]] | None,
    weight_shape: tuple[int, ...],
    geometry: ConvGeometry,
    groups: int,
    xp: Any,
) -> Any:
    """(G, F/G, N * L) @ (G, N * L, K), summed over chunks; `kept` are `forward`'s columns."""
    if kept is not None:
        chunks, kept_cols = kept
        parts = dict(zip(chunks.spans, kept_cols, strict=True))
    else:
        chunks, parts = batch_chunks(x, geometry, xp, filters=grad_output.shape[1]), {}

    def one(start: int, stop: int) -> Any:
        grad = to_columns(chunks.part(grad_output, start, stop), groups, xp)
        cols = parts.pop((start, stop), None)  # (forget kept columns once used)
        if cols is None:
            cols = columns(chunks.part(x, start, stop), geometry, groups, xp)
        return grad @ xp.matrix_transpose(cols)

    partial = chunks.map(one)
    grad_weight = partial[0]
    for part in partial[1:]:
        grad_weight = grad_weight + part
    return xp.reshape(grad_weight, weight_shape)


def input_gradient(
    grad_output: Any, weight: Any, geometry: ConvGeometry, groups: int, xp: Any
) -> Any:
    """Input gradient: (G, K, F/G) @ (G, F/G, N * L) gives columns; col2im sums them back.

    This is also the transposed convolution of `grad_output` with `weight`.
    """
    w_t = xp.matrix_transpose(_grouped(weight, groups, xp))
    channels = weight.shape[1] * groups
    chunks = batch_chunks(grad_output, geometry, xp, channels=channels, filters=weight.shape[0])

    def one(start: int, stop: int) -> Any:
        grad_cols = w_t @ to_columns(chunks.part(grad_output, start, stop), groups, xp)
        if groups > 1:
            rows = grad_cols.shape[0] * grad_cols.shape[1]
            grad_cols = xp.reshape(grad_cols, (rows, grad_cols.shape[2]))
        return fold_t(grad_cols, geometry, xp)

    parts = chunks.map(one)
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def columns(x: Any, geometry: ConvGeometry, groups: int, xp: Any) -> Any:
    """x's columns, (G, C/G * kh * kw, N * L); a plain matrix when G == 1."""
    cols = unfold_t(x, geometry, xp)
    if groups == 1:
        return cols
    return xp.reshape(cols, (groups, cols.shape[0] // groups, cols.shape[1]))


def to_columns(a: Any, groups: int, xp: Any) -> Any:
    """(N, F, OH, OW) -> (G, F/G, N * OH * OW): channels first, then samples, then pixels."""
    n, f, oh, ow = a.shape
    shape = (f, n * oh * ow) if groups == 1 else (groups, f // groups, n * oh * ow)
    return xp.reshape(xp.permute_dims(a, (1, 0, 2, 3)), shape)


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


def batch_chunks(
    x: Any, geometry: ConvGeometry, xp: Any, *, channels: int | None = None, filters: int = 1
) -> Chunks:
    """Cut the batch into spans whose columns fit the workspace.

    The bound is `xconv.config.workspace_bytes`, or if that is None the backend's
    `workspace_for(x)`. A backend that runs chunks at once (`parallel_chunks`, for
    convolutions of enough FLOPs, and only with `xconv.config.fast_kernels`) gets at
    least that many spans, sharing the bound. One span on lazy backends: their chunks
    already bound memory, and slicing them anew would rechunk the batch axis.
    """
    n = x.shape[0]
    backend = backend_for(xp)
    if n == 0 or (backend is not None and backend.lazy):
        return Chunks([(0, n)], False, backend, True)
    # (the backend is always asked: it may get ready for convolutions there, as NumPy does)
    limit = backend.workspace_for(x) if backend is not None else Backend.workspace_bytes
    limit = config.checked_workspace_bytes() or limit
    c = x.shape[1] if channels is None else channels
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    per_sample = c * kh * kw * oh * ow  # elements of one sample's columns
    per_sample_bytes = per_sample * xp.finfo(x.dtype).bits // 8
    threads = 1
    if backend is not None and config.fast_kernels:
        threads = min(n, backend.parallel_chunks(2 * per_sample * filters * n))
    size = max(1, limit // threads // max(per_sample_bytes, 1))
    if threads > 1:
        size = min(size, -(-n // threads))  # at least one span per thread
    spans = [(start, min(start + size, n)) for start in range(0, n, size)]
    return Chunks(spans, threads > 1, backend, per_sample_bytes * n <= limit)
