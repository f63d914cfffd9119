"""Adaptive 2-D average and max pooling and their gradients, side by side.

`adaptive_avg_pool2d` and `adaptive_max_pool2d` follow `torch.nn.functional`: for an
output of OH rows, row i pools the input rows ``floor(i * H / OH)`` up to (excluding)
``ceil((i + 1) * H / OH)``; columns likewise. Windows may differ in size and overlap.
Inputs are (N, C, H, W) or unbatched (C, H, W); an `output_size` entry of None keeps
that input size.

Average pooling is a linear map of each spatial axis, a (out, in) matrix whose rows
average a window: the forward multiplies by the two matrices, the backward by their
transposes. Max pooling gathers each window's k-th row and j-th column (windows shorter
than the longest repeat their last pixel, which cannot change a maximum) and keeps the
first maximum in row-major order, as PyTorch does; its gradient goes to that pixel.

Each op asks its library's kernels first (PyTorch's own, ``xconv.config.delegate``),
once its arguments are checked; None runs the code here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import array_api_compat

from xconv._validation import check_shape, namespace_of, optional_pair, true_or_false

from ._dispatch import kernels_for

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
]

OutputSize = int | None | Sequence[int | None]


def _check(x: Any, output_size: object) -> tuple[int, int]:
    """The output's (OH, OW), with None entries taken from `x`."""
    if x.ndim not in (3, 4):
        raise ValueError(
            f"`x` must be a 4-D array (N, C, H, W) or 3-D (C, H, W), got shape {tuple(x.shape)}"
        )
    sizes = optional_pair(output_size, "output_size")
    if min(x.shape[-2:]) < 1:
        raise ValueError(f"`x` must have non-empty H and W, got shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    return sizes[0] or height, sizes[1] or width


def _windows(n_in: int, n_out: int) -> tuple[list[int], list[int]]:
    """Each output position's window [start, end) along an axis of `n_in` pixels."""
    starts = [(i * n_in) // n_out for i in range(n_out)]
    ends = [-((-(i + 1) * n_in) // n_out) for i in range(n_out)]
    return starts, ends


def _mean_matrix(n_in: int, n_out: int, x: Any, xp: Any) -> Any:
    """(n_out, n_in): row i averages window i."""
    starts, ends = _windows(n_in, n_out)
    device = array_api_compat.device(x)
    columns = xp.arange(n_in, device=device)[None, :]
    start = xp.asarray(starts, device=device)[:, None]
    end = xp.asarray(ends, device=device)[:, None]
    inside = xp.astype((columns >= start) & (columns < end), x.dtype)
    sizes = [float(e - s) for s, e in zip(starts, ends, strict=True)]
    return inside / xp.asarray(sizes, dtype=x.dtype, device=device)[:, None]


def _batched(x: Any, xp: Any) -> Any:
    return x if x.ndim == 4 else xp.expand_dims(x, axis=0)


def _like(out: Any, x: Any) -> Any:
    """`out` unbatched again where `x` was."""
    return out if x.ndim == 4 else out[0, ...]


# -- adaptive average pooling ---------------------------------------------------------


def adaptive_avg_pool2d(x: Any, /, output_size: OutputSize) -> Any:
    """The mean of each adaptive window of `x`.

    Args:
        x: (N, C, H, W) or (C, H, W), real floating dtype.
        output_size: (OH, OW) or one int for both; None keeps that input size.

    Example:
        >>> import numpy as np
        >>> x = np.arange(10.0).reshape(1, 1, 2, 5)
        >>> adaptive_avg_pool2d(x, (1, 3))[0, 0]
        array([[3. , 4.5, 6. ]])
    """
    xp = namespace_of(x=x)
    oh, ow = _check(x, output_size)
    done = kernels_for(xp).adaptive_avg_pool(x, (oh, ow))
    if done is not None:
        return done
    rows = _mean_matrix(x.shape[-2], oh, x, xp)
    columns = _mean_matrix(x.shape[-1], ow, x, xp)
    return xp.matmul(rows, xp.matmul(x, xp.matrix_transpose(columns)))


def adaptive_avg_pool2d_backward(grad_output: Any, x: Any, /, output_size: OutputSize) -> Any:
    """Gradient of `adaptive_avg_pool2d` with respect to `x` (only its shape matters):
    each window's gradient, over its size, to each of its pixels."""
    xp = namespace_of(grad_output=grad_output, x=x)
    oh, ow = _check(x, output_size)
    check_shape(grad_output, "grad_output", (*x.shape[:-2], oh, ow), "the output's shape")
    done = kernels_for(xp).adaptive_avg_pool_backward(grad_output, x, (oh, ow))
    if done is not None:
        return done
    rows = _mean_matrix(x.shape[-2], oh, x, xp)
    columns = _mean_matrix(x.shape[-1], ow, x, xp)
    return xp.matmul(xp.matrix_transpose(rows), xp.matmul(grad_output, columns))


# -- adaptive max pooling -------------------------------------------------------------


class _MaxWindows:
    """Every window's pixels of a batched `x`, the k-th row and j-th column of each
    window at position ``k * width + j`` of the last axis (width: the longest window's
    number of columns), and the first maximum of each."""

    def __init__(self, x: Any, oh: int, ow: int, xp: Any) -> None:
        h, w = x.shape[-2:]
        self.row_windows, self.column_windows = _windows(h, oh), _windows(w, ow)
        # rows[k][i]: the k-th row of window i, its last row where window i is shorter
        self.rows = _offsets(*self.row_windows)
        self.columns = _offsets(*self.column_windows)
        self.width = len(self.columns)
        pixels: list[Any] = []
        for rows in self.rows:
            band = _gather(x, rows, 2, xp)
            pixels.extend(_gather(band, columns, 3, xp) for columns in self.columns)
        stacked = xp.stack(pixels, axis=-1)
        self.out = xp.max(stacked, axis=-1)
        self.position = xp.argmax(stacked, axis=-1)  # the first maximum

    def indices(self, w: int, xp: Any, like: Any) -> Any:
        """The flat index ``h * W + w`` into each plane of every window's maximum."""
        device = array_api_compat.device(like)
        (row_start, row_end), (column_start, column_end) = self.row_windows, self.column_windows
        k, j = self.position // self.width, self.position % self.width
        first_row = xp.asarray(row_start, device=device)[:, None]
        last_row = xp.asarray(row_end, device=device)[:, None] - 1
        first_column = xp.asarray(column_start, device=device)[None, :]
        last_column = xp.asarray(column_end, device=device)[None, :] - 1
        row = xp.minimum(first_row + k, last_row)
        column = xp.minimum(first_column + j, last_column)
        return row * w + column


def _gather(x: Any, indices: list[int], axis: int, xp: Any) -> Any:
    """``take(x, indices, axis)``, as a slice where the indices are consecutive (no copy;
    and Dask's `take` of one index returns the whole axis)."""
    first = indices[0]
    if indices == list(range(first, first + len(indices))):
        index = [slice(None)] * x.ndim
        index[axis] = slice(first, first + len(indices))
        return x[tuple(index)]
    return xp.take(x, xp.asarray(indices, device=array_api_compat.device(x)), axis=axis)


def _offsets(starts: list[int], ends: list[int]) -> list[list[int]]:
    longest = max(e - s for s, e in zip(starts, ends, strict=True))
    return [[min(s + k, e - 1) for s, e in zip(starts, ends, strict=True)] for k in range(longest)]


def _one_hot(rows: list[int], n: int, x: Any, xp: Any) -> Any:
    """(len(rows), n): row i is 1 at column rows[i]."""
    device = array_api_compat.device(x)
    picked = xp.asarray(rows, device=device)[:, None] == xp.arange(n, device=device)[None, :]
    return xp.astype(picked, x.dtype)


def adaptive_max_pool2d(x: Any, /, output_size: OutputSize, return_indices: bool = False) -> Any:
    """The largest value of each adaptive window of `x` (NaN wins, as in PyTorch).

    Args:
        x: (N, C, H, W) or (C, H, W), real floating dtype.
        output_size: (OH, OW) or one int for both; None keeps that input size.
        return_indices: also return each maximum's flat index ``h * W + w`` in its
            (H, W) plane, an integer array shaped like the output.

    Example:
        >>> import numpy as np
        >>> x = np.array([[[[1.0, 5.0, 2.0], [4.0, 0.0, 3.0]]]])
        >>> adaptive_max_pool2d(x, (1, 2))[0, 0]
        array([[5., 5.]])
        >>> adaptive_max_pool2d(x, (1, 2), return_indices=True)[1][0, 0]
        array([[1, 1]])
    """
    xp = namespace_of(x=x)
    oh, ow = _check(x, output_size)
    indices = true_or_false(return_indices, "return_indices")
    done = kernels_for(xp).adaptive_max_pool(x, (oh, ow))
    if done is not None:
        return done if indices else done[0]
    windows = _MaxWindows(_batched(x, xp), oh, ow, xp)
    out = _like(windows.out, x)
    if not indices:
        return out
    return out, _like(windows.indices(x.shape[-1], xp, x), x)


def adaptive_max_pool2d_backward(grad_output: Any, x: Any, /, output_size: OutputSize) -> Any:
    """Gradient of `adaptive_max_pool2d` with respect to `x`: each window's gradient
    to its first maximum; where windows overlap, the gradients add up."""
    xp = namespace_of(grad_output=grad_output, x=x)
    oh, ow = _check(x, output_size)
    check_shape(grad_output, "grad_output", (*x.shape[:-2], oh, ow), "the output's shape")
    done = kernels_for(xp).adaptive_max_pool_backward(grad_output, x, (oh, ow))
    if done is not None:
        return done
    windows = _MaxWindows(_batched(x, xp), oh, ow, xp)
    g = _batched(grad_output, xp)
    h, w = x.shape[-2:]
    total = None
    for k, rows in enumerate(windows.rows):
        pick_rows = xp.matrix_transpose(_one_hot(rows, h, x, xp))  # (H, OH)
        for j, columns in enumerate(windows.columns):
            chosen = xp.where(windows.position == k * windows.width + j, g, 0.0)
            part = xp.matmul(pick_rows, xp.matmul(chosen, _one_hot(columns, w, x, xp)))
            total = part if total is None else total + part
    return _like(total, x)
