"""im2col and its adjoint col2im, with `torch.nn.functional.unfold`/`fold` semantics.

im2col copies every kernel-sized window of the (padded) input into a column, so a
convolution becomes one matrix product. Internally there is one layout, the one the
matrix product uses, the batch's columns side by side: `unfold` gives
(C * kh * kw, N * L), row ``c * kh * kw + i * kw + j`` and column ``n * L + l``
holding tap (i, j) of channel c of the window at output pixel l of sample n; `fold`
is its adjoint. The public `im2col`/`col2im`, (N, C * kh * kw, L), are a transpose of
that layout.

`unfold` and `fold` take the kernels their op chose (`Kernels.unfold`/`fold`: NumPy's
in-place kernels, CuPy's CUDA kernels, one task per batch chunk on Dask); where those
answer None, the generic code below runs, written the Chainer way with the array API
standard and `array_api_extra` only: one strided slice of the input per kernel tap,
stacked; one strided slice-add per tap back. ``xconv.config.fast_kernels = False``
selects the generic code everywhere.
"""

from __future__ import annotations

import array_api_compat
import array_api_extra as xpx

from xconv._typing import Array, IntOrPair, Namespace, Padding
from xconv._validation import check_ndim, int_or_pair, namespace_of

from ._dispatch import kernels_for
from ._geometry import ConvGeometry
from ._interface import Kernels

__all__ = ["col2im", "fold", "fold_generic", "im2col", "unfold", "unfold_generic"]


def im2col(
    x: Array,
    /,
    kernel_size: IntOrPair,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
) -> Array:
    """Extract sliding windows of `x` as columns (`torch.nn.functional.unfold`).

    Args:
        x: input of shape (N, C, H, W), real floating dtype.
        kernel_size: window size, int or (kh, kw).
        stride: int or pair, >= 1.
        padding: int, (pad_h, pad_w), ((top, bottom), (left, right)), ``"valid"`` or
            ``"same"`` (TensorFlow's: ceil(H / stride) windows per column).
        dilation: spacing between window elements, int or pair, >= 1.

    Returns:
        Columns of shape (N, C * kh * kw, L) in the namespace, device and dtype of
        `x`; row ``c * kh * kw + i * kw + j`` holds tap (i, j) of channel c.

    Shape:
        L = OH * OW with ``OH = (H + top + bottom - dilation_h * (kh - 1) - 1) //
        stride_h + 1``, and OW likewise.

    Example:
        >>> import numpy as np
        >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
        >>> im2col(x, 2)[0]
        array([[0., 1., 3., 4.],
               [1., 2., 4., 5.],
               [3., 4., 6., 7.],
               [4., 5., 7., 8.]])
    """
    xp = namespace_of(x=x)
    check_ndim(x, "x", "NCHW")
    geometry = ConvGeometry.build(
        (x.shape[2], x.shape[3]), kernel_size, stride=stride, padding=padding, dilation=dilation
    )
    n, (oh, ow) = x.shape[0], geometry.out_size
    cols = unfold(x, geometry, xp, kernels_for(xp))  # (C * kh * kw, N * L)
    return xp.permute_dims(xp.reshape(cols, (cols.shape[0], n, oh * ow)), (1, 0, 2))


def col2im(
    cols: Array,
    /,
    output_size: IntOrPair,
    kernel_size: IntOrPair,
    *,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
) -> Array:
    """Sum columns back into an image (`torch.nn.functional.fold`), the adjoint of im2col.

    Where windows overlap, their values add up, so ``col2im(im2col(x))`` is `x` times
    the number of windows that cover each pixel.

    Args:
        cols: columns of shape (N, C * kh * kw, L).
        output_size: (H, W) of the image, int or pair.
        kernel_size, stride, padding, dilation: as for `im2col`.

    Returns:
        An image of shape (N, C, H, W) in the namespace, device and dtype of `cols`.

    Example:
        >>> import numpy as np
        >>> col2im(np.ones((1, 4, 4)), 3, 2)[0, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
    """
    xp = namespace_of(cols=cols)
    check_ndim(cols, "cols", "NKL")
    geometry = ConvGeometry.build(
        int_or_pair(output_size, "output_size", minimum=0),
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
    )
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    if cols.shape[1] % (kh * kw) != 0:
        raise ValueError(
            f"`cols` must have C * kh * kw rows, a multiple of {kh * kw} for "
            f"kernel_size={kernel_size!r}, got shape {tuple(cols.shape)}"
        )
    if cols.shape[2] != oh * ow:
        raise ValueError(
            f"`cols` must have {oh} * {ow} = {oh * ow} columns for output_size="
            f"{output_size!r} and these kernel, stride, padding and dilation, "
            f"got shape {tuple(cols.shape)}"
        )
    n, rows = cols.shape[0], cols.shape[1]
    # (N, C * kh * kw, L) -> (C * kh * kw, N * L)
    matrix = xp.reshape(xp.permute_dims(cols, (1, 0, 2)), (rows, n * oh * ow))
    return fold(matrix, geometry, xp, kernels_for(xp))


# -- implementations, arguments already checked --------------------------------------


def _pointwise(geometry: ConvGeometry) -> bool:
    """A 1x1 kernel at stride 1 without padding: the columns are the image itself."""
    return geometry.kernel_size == (1, 1) and geometry.stride == (1, 1) and not geometry.is_padded


def unfold(
    x: Array, geometry: ConvGeometry, xp: Namespace, kernels: Kernels, *, scratch: bool = False
) -> Array:
    """The columns (C * kh * kw, N * L) of a checked (N, C, H, W) array.

    With `scratch`, the kernels' columns may come from their buffer cache: pass them
    to `kernels.release` once used, and never hand them to a caller.
    """
    if _pointwise(geometry):  # no copy at all if x is laid out channels-first already
        n, c, h, w = x.shape
        return xp.reshape(xp.permute_dims(x, (1, 0, 2, 3)), (c, n * h * w))
    cols = kernels.unfold(x, geometry, scratch=scratch, blocks=_unfold_block)
    return unfold_generic(x, geometry, xp) if cols is None else cols


def fold(cols: Array, geometry: ConvGeometry, xp: Namespace, kernels: Kernels) -> Array:
    """The adjoint of `unfold`: checked columns (C * kh * kw, N * L) to (N, C, H, W)."""
    if _pointwise(geometry):
        h, w = geometry.in_size
        image = xp.reshape(cols, (cols.shape[0], cols.shape[1] // (h * w), h, w))
        return xp.permute_dims(image, (1, 0, 2, 3))
    image = kernels.fold(cols, geometry, blocks=_fold_block)
    return fold_generic(cols, geometry, xp) if image is None else image


def _unfold_block(block: Array, geometry: ConvGeometry) -> Array:
    """`unfold` of one chunk of a chunked array, by the chunk's own library's kernels."""
    xp = array_api_compat.array_namespace(block)
    return unfold(block, geometry, xp, kernels_for(xp))


def _fold_block(block: Array, geometry: ConvGeometry) -> Array:
    """`fold` of one chunk of a chunked array, by the chunk's own library's kernels."""
    xp = array_api_compat.array_namespace(block)
    return fold(block, geometry, xp, kernels_for(xp))


def unfold_generic(x: Array, geometry: ConvGeometry, xp: Namespace) -> Array:
    """`unfold` with standard functions only: channels first, pad, strided slices, stack."""
    n, c = x.shape[0], x.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    if n == 0 or c == 0:  # no windows to copy (and Dask cannot pad an empty array)
        shape = (c * kh * kw, n * oh * ow)
        return xp.zeros(shape, dtype=x.dtype, device=array_api_compat.device(x))
    x = xp.permute_dims(x, (1, 0, 2, 3))
    # pad (zeros) only where asked, to spare a copy
    if geometry.is_padded:
        x = xpx.pad(x, ((0, 0), (0, 0), *geometry.padding), xp=xp)
    # windows: tap (i, j) of every window is one strided slice, (C, N, OH, OW)
    taps = [x[(..., *geometry.window(i, j))] for i in range(kh) for j in range(kw)]
    cols = xp.stack(taps, axis=1)  # (C, kh * kw, N, OH, OW)
    return xp.reshape(cols, (c * kh * kw, n * oh * ow))


def fold_generic(cols: Array, geometry: ConvGeometry, xp: Namespace) -> Array:
    """`fold` with standard functions only: one strided slice-add per tap, crop, NCHW."""
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    c, n = cols.shape[0] // (kh * kw), cols.shape[1] // (oh * ow)
    device = array_api_compat.device(cols)
    if n == 0 or c == 0:  # nothing to add up (and Dask cannot assign empty slices)
        return xp.zeros((n, c, *geometry.in_size), dtype=cols.dtype, device=device)
    taps = xp.reshape(cols, (c, kh, kw, n, oh, ow))
    # slice-add each tap into a zero image the size of the padded input; the zeros are
    # made from `cols` (zeros like one tap, padded up), so that under torch.func.vmap
    # the image is batched as `cols` is, and adding batched taps into it in place works
    padded_h, padded_w = geometry.padded_size
    grow = ((0, 0), (0, 0), (0, padded_h - oh), (0, padded_w - ow))
    image = xpx.pad(xp.zeros_like(taps[:, 0, 0, ...]), grow, xp=xp)
    for i in range(kh):
        for j in range(kw):
            where = (slice(None), slice(None), *geometry.window(i, j))
            image = xpx.at(image, where).add(taps[:, i, j, ...], xp=xp)
    # crop the padding away
    if geometry.is_padded:
        (top, _), (left, _) = geometry.padding
        height, width = geometry.in_size
        image = image[:, :, top : top + height, left : left + width]
    return xp.permute_dims(image, (1, 0, 2, 3))
