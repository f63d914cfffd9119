"""The NumPy backend's convolution kernels: im2col and col2im in place, and threads.

The generic code (xconv/functional/_im2col.py) may not write into arrays, so it pads a
copy of the input, stacks the taps into a second copy, and adds each tap's slice into
a fresh image. NumPy can do better, with the same results:

- im2col writes each tap's valid region straight from the unpadded input into the
  column matrix and zeroes only the border the padding would have filled;
- col2im adds each tap straight into the (unpadded) input gradient, in place.

Threads: splitting these copies over threads did not pay (OpenBLAS's threads spin
between matrix products and take the cores; benchmarks/results/cpu-2026-11-26.md). What
pays is running whole batch chunks (copies and matrix products) on threads, with BLAS
limited to one thread meanwhile: `map_chunks`.

Layouts are the convolution's ("_t"): columns (C * kh * kw, N * OH * OW), row
c * kh * kw + i * kw + j holding tap (i, j) of channel c, column n * OH * OW + l the
window at output pixel l of sample n.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from xconv.functional._geometry import ConvGeometry

__all__ = [
    "col2im_t",
    "im2col_t",
    "map_chunks",
    "parallel_chunks",
    "retain_freed_memory",
]

#: below this many forward FLOPs a convolution runs its chunks one after another:
#: handing work to threads costs more than it saves on the digits CNN's layers
PARALLEL_FLOPS = 50e6

_executor: ThreadPoolExecutor | None = None


@functools.cache
def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@functools.cache
def _blas() -> Any:
    """threadpoolctl's controller of the BLAS libraries loaded, or None without it."""
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - a dependency of xconv
        return None
    return threadpoolctl.ThreadpoolController()


#: glibc's mallopt parameters, and what the NumPy backend sets them to
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
RETAINED_BYTES = 256 * 2**20
MMAP_BYTES = 32 * 2**20


@functools.cache
def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse; True if it agreed.

    By default glibc returns the top of its heap to the system once more than twice
    its mmap threshold is free, and serves large blocks from fresh mmaps, so every
    convolution call faults its buffers' pages in again (up to a third of a call's
    time on the anchor shapes). Keeping up to `RETAINED_BYTES` of freed heap, and
    taking blocks up to `MMAP_BYTES` from it, does what a caching allocator does.
    Called by every NumPy convolution (through `NumpyBackend.workspace_for`; only the
    first call does anything) unless ``xconv.config.retain_freed_memory`` is False;
    a no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES) and mallopt(_M_TRIM_THRESHOLD, RETAINED_BYTES)
    )


def parallel_chunks(flops: float) -> int:
    """How many batch chunks of a convolution with this many FLOPs to run at once."""
    if flops < PARALLEL_FLOPS or _blas() is None:
        return 1
    return _threads()


def map_chunks(fn: Callable[[int, int], Any], spans: Sequence[tuple[int, int]]) -> list[Any]:
    """``[fn(start, stop) for each span]``, on threads with one-thread BLAS if several."""
    global _executor
    if len(spans) < 2 or parallel_chunks(PARALLEL_FLOPS) < 2:
        return [fn(start, stop) for start, stop in spans]
    if _executor is None:
        _executor = ThreadPoolExecutor(_threads(), thread_name_prefix="xconv-numpy")
    with _blas().limit(limits=1, user_api="blas"):
        futures = [_executor.submit(fn, start, stop) for start, stop in spans]
        return [future.result() for future in futures]  # re-raises a worker's exception


def _valid(count: int, stride: int, offset: int, size: int) -> tuple[int, int, int]:
    """The output positions [lo, hi) whose input position ``o * stride + offset`` lies
    in [0, size), and the input position of `lo`."""
    lo = min(count, max(0, -(offset // stride)))  # ceil(-offset / stride), at least 0
    hi = max(lo, min(count, (size - 1 - offset) // stride + 1))
    return lo, hi, lo * stride + offset


class _Tap(NamedTuple):
    """Kernel tap (i, j): which output pixels see the input, which input pixels they
    see, and the rectangles of output pixels that see only padding."""

    i: int
    j: int
    seen: tuple[slice, slice] | None  # output rows, columns; None if all padding
    source: tuple[slice, slice]  # the input rows, columns they see
    padding: tuple[tuple[slice, slice], ...]  # output rectangles to zero


@functools.lru_cache(maxsize=256)
def _taps(geometry: ConvGeometry) -> tuple[_Tap, ...]:
    """Every tap's plan, computed once per geometry."""
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    sh, sw = geometry.stride
    dh, dw = geometry.dilation
    (top, _), (left, _) = geometry.padding
    height, width = geometry.in_size
    taps = []
    for i in range(kh):
        y0, y1, row = _valid(oh, sh, i * dh - top, height)
        for j in range(kw):
            x0, x1, col = _valid(ow, sw, j * dw - left, width)
            if y0 == y1 or x0 == x1:
                everything = ((slice(None), slice(None)),)
                taps.append(_Tap(i, j, None, (slice(0), slice(0)), everything))
                continue
            rows = slice(row, row + (y1 - y0 - 1) * sh + 1, sh)
            cols = slice(col, col + (x1 - x0 - 1) * sw + 1, sw)
            seen = (slice(y0, y1), slice(x0, x1))
            # bands above and below the seen rows, then left and right of them
            borders = [
                (slice(0, y0), slice(None)),
                (slice(y1, oh), slice(None)),
                (seen[0], slice(0, x0)),
                (seen[0], slice(x1, ow)),
            ]
            empty = (y0 == 0, y1 == oh, x0 == 0, x1 == ow)
            padding = tuple(b for b, skip in zip(borders, empty, strict=True) if not skip)
            taps.append(_Tap(i, j, seen, (rows, cols), padding))
    return tuple(taps)


def im2col_t(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """Columns (C * kh * kw, N * OH * OW) of an (N, C, H, W) array."""
    n, c = x.shape[0], x.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    if cols.size == 0:
        return cols.reshape(c * kh * kw, n * oh * ow)
    source = x.transpose(1, 0, 2, 3)  # (C, N, H, W), a view
    for tap in _taps(geometry):
        dest = cols[:, tap.i, tap.j]
        # what padding covers is zero; the rest is the window's view of the input
        for rows, columns in tap.padding:
            dest[:, :, rows, columns] = 0
        if tap.seen is not None:
            dest[(..., *tap.seen)] = source[(..., *tap.source)]
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im_t(cols: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """The adjoint of `im2col_t`: sum columns back into an (N, C, H, W) array."""
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    c, n = cols.shape[0] // (kh * kw), cols.shape[1] // (oh * ow)
    image = np.zeros((n, c, *geometry.in_size), dtype=cols.dtype)
    if image.size == 0:
        return image
    taps = cols.reshape(c, kh, kw, n, oh, ow)
    target = image.transpose(1, 0, 2, 3)  # (C, N, H, W), a view
    for tap in _taps(geometry):
        if tap.seen is not None:  # (a tap that sees only padding adds nothing)
            target[(..., *tap.source)] += taps[(slice(None), tap.i, tap.j, ..., *tap.seen)]
    return image
