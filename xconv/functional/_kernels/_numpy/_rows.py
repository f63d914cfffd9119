"""NumPy's convolution with one row per window: the matrix products OpenBLAS runs fastest.

The generic layout (`_im2col`) gives each window a *column*: (C * kh * kw, N * L), and
the forward product is (F, K) @ (K, N * L). On NumPy, for ``groups == 1``, this module
gives each window a *row* instead, read from the input laid out channels-last:

    rows (N * L, K), row ``n * L + l`` the window at output pixel l of sample n,
    its K = kh * kw * C values in (i, j, c) order (tap (i, j), then channel c).

- forward: ``rows @ W`` with W (K, F), the output channels-last, (N * L, F), then
  copied into the NCHW result with the bias added;
- weight gradient: ``rows.T @ G``, (K, F), with G the output gradient channels-last;
- input gradient: ``G @ W.T`` folded back (`input_gradient`), or at stride 1, where
  cheaper, the forward convolution of the output gradient with flipped kernels
  (`_conv._as_convolution`), through these same rows.

Why: on this layout all three products are plain C-ordered (M, K) @ (K, N) GEMMs,
which OpenBLAS runs 1.1-2x faster than the transposed forms of the column layout on
narrow layers (16-64 filters; `python -m benchmarks conv-parts`); and im2col copies
runs of kw * C consecutive values (a whole kernel row of every channel), not runs of
OW pixels, so on large images it costs about a plain copy of its bytes. Where kw * C
is small (one to three input channels) the runs are too short, and `_conv` keeps the
column layout (`_conv.ROW_RUN`); its weight gradient still runs here (`rows=False`).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..._chunks import Chunks, ConvColumns
from ..._geometry import ConvGeometry
from . import _threads

__all__ = ["forward", "input_gradient", "unfold_rows", "weight_gradient", "weight_rows"]


def weight_rows(weight: np.ndarray) -> np.ndarray:
    """(F, C, kh, kw) -> (kh * kw * C, F), the rows' (i, j, c) order down the first axis."""
    f = weight.shape[0]
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0)).reshape(-1, f)


def _channels_last(x: np.ndarray, geometry: ConvGeometry) -> tuple[np.ndarray, bool]:
    """x (N, C, H, W) as a C-contiguous (N, H', W', C) array, zero-padded as the geometry
    says; and whether it is a scratch buffer (to give back) rather than a view of x."""
    view = x.transpose(0, 2, 3, 1)
    if not geometry.is_padded and view.flags.c_contiguous:
        return view, False  # (x is laid out channels-last already: no copy)
    (top, bottom), (left, right) = geometry.padding
    n, h, w, c = view.shape
    padded = _threads.BUFFERS.take((n, h + top + bottom, w + left + right, c), x.dtype)
    # zero the border only, then copy the image inside it
    padded[:, :top] = 0
    padded[:, top + h :] = 0
    padded[:, top : top + h, :left] = 0
    padded[:, top : top + h, left + w :] = 0
    padded[:, top : top + h, left : left + w] = view
    return padded, True


def unfold_rows(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """The rows (N * OH * OW, kh * kw * C) of a checked (N, C, H, W) array, a scratch
    buffer from `BUFFERS`: give it back once used."""
    n, c = x.shape[0], x.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    sh, sw = geometry.stride
    dh, dw = geometry.dilation
    rows = _threads.BUFFERS.take((n, oh, ow, kh, kw, c), x.dtype)
    if rows.size == 0:
        return rows.reshape(n * oh * ow, kh * kw * c)
    padded, scratch = _channels_last(x, geometry)
    # (C-contiguous, so these are its strides; `.strides` may differ on axes of length 1)
    s_c = padded.itemsize
    s_w, s_h = c * s_c, padded.shape[2] * c * s_c
    s_n = padded.shape[1] * s_h
    for i in range(kh):
        if dw == 1:
            # taps (i, 0..kw-1) of a window: kw * C consecutive values of the input
            # (an overlapping, read-only view: window ow starts C * sw values after ow-1)
            run = as_strided(
                padded[:, i * dh :],
                shape=(n, oh, ow, kw * c),
                strides=(s_n, s_h * sh, s_w * sw, s_c),
                writeable=False,
            )
            rows[:, :, :, i].reshape(n, oh, ow, kw * c)[...] = run
        else:
            for j in range(kw):
                rows[:, :, :, i, j] = padded[(slice(None), *geometry.window(i, j))]
    if scratch:
        _threads.BUFFERS.give(padded)
    return rows.reshape(n * oh * ow, kh * kw * c)


def forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    geometry: ConvGeometry,
    chunks: Chunks,
    *,
    keep: bool,
) -> tuple[np.ndarray, ConvColumns | None]:
    """The convolution (groups == 1), (N, F, OH, OW), and with `keep` each chunk's rows
    for `weight_gradient`.

    The products come out channels-last; each chunk's is copied into the NCHW result
    (the bias added on the way), so that the ops after it, relu, pooling and batch
    normalization, meet the layout they run fastest on and that every other path gives.
    """
    n, f = x.shape[0], weight.shape[0]
    oh, ow = geometry.out_size
    w = weight_rows(weight)
    result = _threads.RESULTS.take((n, f, oh, ow), np.result_type(x, weight))
    shift = None if bias is None else bias.reshape(1, f, 1, 1)

    def one(start: int, stop: int) -> np.ndarray | None:
        rows = unfold_rows(chunks.part(x, start, stop), geometry)
        y = _threads.matmul(rows, w)  # (samples * OH * OW, F): channels-last
        part = y.reshape(stop - start, oh, ow, f).transpose(0, 3, 1, 2)
        if shift is None:
            np.copyto(result[start:stop], part)
        else:
            np.add(part, shift, out=result[start:stop])
        _threads.BUFFERS.give(y)
        if keep:
            return rows
        _threads.BUFFERS.give(rows)
        return None

    kept = chunks.map(one)
    kept_rows = ConvColumns(chunks, kept, rows=True) if keep else None
    return result, kept_rows


def _gradient_rows(grad_output: np.ndarray) -> tuple[np.ndarray, bool]:
    """(N, F, OH, OW) -> (N * OH * OW, F): a view when it is channels-last already, else
    a scratch copy (and whether it is one)."""
    n, f, oh, ow = grad_output.shape
    view = grad_output.transpose(0, 2, 3, 1)
    if view.flags.c_contiguous:
        return view.reshape(n * oh * ow, f), False
    matrix = _threads.BUFFERS.take((n, oh, ow, f), grad_output.dtype)
    np.copyto(matrix, view)
    return matrix.reshape(n * oh * ow, f), True


def weight_gradient(
    grad_output: np.ndarray,
    x: np.ndarray,
    kept: ConvColumns | None,
    weight_shape: tuple[int, ...],
    geometry: ConvGeometry,
    chunks: Chunks,
    *,
    rows: bool = True,
) -> np.ndarray:
    """(K, F) = rows.T @ G, summed over chunks, as an (F, C, kh, kw) array.

    Without `rows`, for a convolution in the column layout (groups == 1): (K, F) =
    columns @ G, which OpenBLAS runs 1.3-2.3x faster than the (F, N * L) @ (N * L, K)
    of that layout where the filters are few (32 of them, K = 9: the MNIST network's
    first layer).
    """
    f, c, kh, kw = weight_shape

    def one(start: int, stop: int) -> np.ndarray:
        grad, scratch = _gradient_rows(chunks.part(grad_output, start, stop))
        matrix = None if kept is None else kept.take((start, stop))
        if matrix is None:
            part = chunks.part(x, start, stop)
            if rows:
                matrix = unfold_rows(part, geometry)
            else:
                matrix = _threads.unfold(part, geometry, scratch=True)
        partial: np.ndarray = (matrix.T if rows else matrix) @ grad
        _threads.BUFFERS.give(matrix)
        if scratch:
            _threads.BUFFERS.give(grad)
        return partial

    partials = chunks.map(one)
    total = partials[0]
    for part in partials[1:]:
        total += part
    if not rows:  # (C * kh * kw, F) -> (F, C, kh, kw)
        return np.ascontiguousarray(total.T).reshape(weight_shape)
    # (kh * kw * C, F) -> (F, C, kh, kw)
    return np.ascontiguousarray(total.reshape(kh, kw, c, f).transpose(3, 2, 0, 1))


def input_gradient(
    grad_output: np.ndarray, weight: np.ndarray, geometry: ConvGeometry, chunks: Chunks
) -> np.ndarray:
    """(N * L, K) = G @ W.T, each row's taps added back where its window read them: the
    input gradient (N, C, H, W)."""
    n, c = grad_output.shape[0], weight.shape[1]
    w_t = np.ascontiguousarray(weight_rows(weight).T)  # (F, K)
    dtype = np.result_type(grad_output, weight)
    result = _threads.RESULTS.take((n, c, *geometry.in_size), dtype)

    def one(start: int, stop: int) -> None:
        grad, scratch = _gradient_rows(chunks.part(grad_output, start, stop))
        rows = _threads.matmul(grad, w_t)
        if scratch:
            _threads.BUFFERS.give(grad)
        _fold_rows(rows, geometry, result[start:stop])
        _threads.BUFFERS.give(rows)

    chunks.map(one)
    return result


def _fold_rows(rows: np.ndarray, geometry: ConvGeometry, image: np.ndarray) -> None:
    """The adjoint of `unfold_rows`: add rows (N * OH * OW, kh * kw * C) back into a
    channels-last scratch image, then copy it into the (N, C, H, W) `image`."""
    n, c, height, width = image.shape
    kh, kw = geometry.kernel_size
    (top, _), (left, _) = geometry.padding
    target = _threads.BUFFERS.take((n, *geometry.padded_size, c), image.dtype)
    target[...] = 0
    taps = rows.reshape(n, *geometry.out_size, kh, kw, c)
    for i in range(kh):
        for j in range(kw):
            target[(slice(None), *geometry.window(i, j))] += taps[:, :, :, i, j]
    # the padding's gradient is dropped
    np.copyto(image, target[:, top : top + height, left : left + width].transpose(0, 3, 1, 2))
    _threads.BUFFERS.give(target)
