"""NumPy's convolution in the column layout, and the choices between the layouts.

The column layout is the generic one (`_im2col`): columns (G, C/G * kh * kw, N * L),
one product per group. On NumPy the forward pass writes each chunk's product, bias
added, straight into one result array; where the row layout (`_rows`) pays instead,
and where the input gradient is cheaper as a forward convolution, is decided here.
"""

from __future__ import annotations

import numpy as np

from ..._chunks import Chunks, ConvColumns
from ..._geometry import ConvGeometry
from . import _threads

__all__ = [
    "FOLD_OVER_UNFOLD",
    "ROWS_FLIP_LIMIT",
    "ROW_RUN",
    "as_convolution",
    "bias_gradient",
    "forward",
    "rows_layout",
]

#: the row layout copies runs of kw * C values, the column layout runs of OW pixels:
#: below this many values per run, the rows' copies cost more than their products save
#: (C = 1 and 3 at kw = 3 ran 1.1-1.8x slower in rows; C = 16 at kw = 3 ran 0.6-0.75x)
ROW_RUN = 16

#: col2im adds (read, add, write) where im2col copies: per element 1.8-2.8 times the
#: time on NumPy where loops, not memory, bound them (`python -m benchmarks conv-parts`)
FOLD_OVER_UNFOLD = 2.4

#: in the row layout the flipped convolution won up to F * H * W = 2 * C * OH * OW
#: (1.4x faster than folding rows back at (64, 16, 8, 8) -> 32 and (128, 16, 32, 32) ->
#: 32) and lost at 2.8 (1.3x slower: the MNIST network's second convolution)
ROWS_FLIP_LIMIT = 2.4


def rows_layout(groups: int, channels: int, geometry: ConvGeometry) -> bool:
    """Whether the convolution runs in the row layout (`_rows`): groups == 1, and runs
    of kw * C values long enough to copy fast."""
    return groups == 1 and channels * geometry.kernel_size[1] >= ROW_RUN


def _columns(x: np.ndarray, geometry: ConvGeometry, groups: int) -> np.ndarray:
    """x's columns in a scratch buffer, (G, C/G * kh * kw, N * L); a matrix when G == 1."""
    cols = _threads.unfold(x, geometry, scratch=True)
    if groups == 1:
        return cols
    return cols.reshape(groups, cols.shape[0] // groups, cols.shape[1])


def _nchw(y: np.ndarray, n: int, geometry: ConvGeometry) -> np.ndarray:
    """(G, F/G, N * OH * OW) or (F, N * OH * OW) -> (N, F, OH, OW), a view."""
    filters = y.shape[0] * y.shape[1] if y.ndim == 3 else y.shape[0]
    return y.reshape(filters, n, *geometry.out_size).transpose(1, 0, 2, 3)


def forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    geometry: ConvGeometry,
    groups: int,
    chunks: Chunks,
    keep: bool,
) -> tuple[np.ndarray, ConvColumns | None]:
    """The convolution in the column layout; with `keep`, each chunk's columns.

    One chunk without bias: the product is the result, laid out (F, N, OH, OW). Else
    the products go into scratch buffers and each chunk's output, bias added, straight
    into one result array.
    """
    n, filters, c, kh, kw = x.shape[0], weight.shape[0], *weight.shape[1:]
    shape = (filters, c * kh * kw) if groups == 1 else (groups, filters // groups, c * kh * kw)
    w = weight.reshape(shape)
    if bias is None and len(chunks.spans) == 1:
        cols = _columns(x, geometry, groups)
        out = _nchw(w @ cols, n, geometry)
        if keep:
            return out, ConvColumns(chunks, [cols])
        _threads.BUFFERS.give(cols)
        return out, None

    dtype = np.result_type(x, w)
    if len(chunks.spans) == 1:  # laid out (F, N, OH, OW), as the product comes out
        result = _threads.RESULTS.take((filters, n, *geometry.out_size), dtype)
        out = result.transpose(1, 0, 2, 3)
    else:
        out = _threads.RESULTS.take((n, filters, *geometry.out_size), dtype)
    shift = None if bias is None else bias.reshape(1, filters, 1, 1)

    def one(start: int, stop: int) -> np.ndarray | None:
        cols = _columns(chunks.part(x, start, stop), geometry, groups)
        y = _threads.matmul(w, cols)
        part = _nchw(y, stop - start, geometry)
        if shift is None:
            _threads.copy_into(out[start:stop, ...], part)
        else:
            _threads.add_into(out[start:stop, ...], part, shift)
        _threads.BUFFERS.give(y)
        # a chunk's columns go back to the cache here, unless kept for the backward pass
        if keep:
            return cols
        _threads.BUFFERS.give(cols)
        return None

    kept = chunks.map(one)
    return out, (ConvColumns(chunks, kept) if keep else None)


def bias_gradient(grad_output: np.ndarray) -> np.ndarray | None:
    """The sum of (N, F, OH, OW) over all but the filters' axis, inside `one_thread_blas`
    (a training step), as a matrix-vector product with ones; else None.

    The (N * F, OH * OW) rows against a vector of ones ran 3.7-4x faster than `sum`
    over axes (0, 2, 3) (0.11 ms instead of 0.42 for the MNIST network's first layer).
    Not outside the held BLAS: there the product runs on BLAS's threads, which then
    spin, and slowed the threaded weight gradient after it 1.5x.
    """
    if not (
        _threads.blas_held()
        and grad_output.dtype in (np.float32, np.float64)
        and grad_output.flags.c_contiguous
        and grad_output.size
    ):
        return None
    n, f, oh, ow = grad_output.shape
    ones = np.ones(oh * ow, dtype=grad_output.dtype)
    per_sample = grad_output.reshape(n * f, oh * ow) @ ones
    sums: np.ndarray = per_sample.reshape(n, f).sum(axis=0)
    return sums


def as_convolution(
    weight: np.ndarray,
    geometry: ConvGeometry,
    groups: int,
    *,
    limit: float = FOLD_OVER_UNFOLD / 2,
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
