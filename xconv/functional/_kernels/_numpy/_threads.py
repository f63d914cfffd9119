"""NumPy's fast path for the convolution: im2col and col2im in place, threads, buffers.

The generic code (xconv/functional/_im2col.py) may not write into arrays, so it pads a
copy of the input, stacks the taps into a second copy, and adds each tap's slice into
a fresh image. NumPy can do better, with the same results:

- `unfold` writes each tap's valid region straight from the unpadded input into the
  column matrix and zeroes only the border the padding would have filled;
- `fold` adds each tap straight into the (unpadded) input gradient, in place.

Threads: splitting these copies over threads did not pay (OpenBLAS's threads spin
between matrix products and take the cores; benchmarks/results/cpu-2026-11-26.md). What
pays is running whole batch chunks (copies and matrix products) on threads, with BLAS
limited to one thread meanwhile: `map_chunks`.

Buffers: a convolution's column matrices are large and short-lived. Allocated afresh
on every call, their pages are faulted in again each time (glibc hands blocks this
large back to the system when freed). `BUFFERS` keeps a few of them for reuse instead:
only scratch arrays that never leave xconv's functions go back into it.

Layout is the convolution's: columns (C * kh * kw, N * OH * OW), row
c * kh * kw + i * kw + j holding tap (i, j) of channel c, column n * OH * OW + l the
window at output pixel l of sample n.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from ..._geometry import ConvGeometry

__all__ = [
    "BUFFERS",
    "RESULTS",
    "BufferCache",
    "ResultPool",
    "add_into",
    "blas_held",
    "copy_into",
    "fold",
    "map_chunks",
    "map_threads",
    "matmul",
    "one_thread_blas",
    "parallel_chunks",
    "split_matmul",
    "unfold",
]

#: below this many forward FLOPs a convolution runs its chunks one after another:
#: handing work to threads costs more than it saves on the digits CNN's layers
PARALLEL_FLOPS = 50e6

#: the same bound while `one_thread_blas` holds BLAS to one thread: there a convolution
#: run in one piece runs on one core, so threads pay from much smaller ones on (the
#: MNIST network's first layer, 50 MFLOPs, ran alone on one core)
PARALLEL_FLOPS_HELD = 5e6

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


#: arrays smaller than this are not worth a cache's bookkeeping: malloc keeps such
#: blocks on its heap, already faulted in
SMALL_BYTES = 256 * 2**10


class BufferCache:
    """A small, bounded, thread-safe pool of scratch arrays, by shape and dtype.

    `take` hands out an uninitialised array (a free one of that shape and dtype if
    there is one, else a new one); `give` takes it (or a view of it) back once nothing
    refers to it any more. Only arrays that `take` handed out are kept, so a caller's
    array can never end up here. At most `limit_bytes` are kept; the least recently
    returned go first.

    Example:
        >>> cache = BufferCache(limit_bytes=2**22)
        >>> a = cache.take((512, 512), np.float64)
        >>> cache.give(a[1:])  # a view of it returns it too
        >>> cache.take((512, 512), np.float64) is a
        True
    """

    def __init__(self, *, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        # free arrays by (shape, dtype), least recently returned key first
        self._free: dict[tuple[tuple[int, ...], np.dtype[Any]], list[np.ndarray]] = {}
        # arrays handed out: id -> weak reference (a dead one never matches)
        self._lent: dict[int, weakref.ref[np.ndarray]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised C-contiguous array of `shape` and `dtype`."""
        key = (shape, np.dtype(dtype))
        if math.prod(shape) * key[1].itemsize < SMALL_BYTES:
            return np.empty(shape, dtype=dtype)  # malloc's own free lists serve these
        with self._lock:
            free = self._free.get(key)
            if free:
                array = free.pop()
                self._bytes -= array.nbytes
                if not free:  # (an empty list would be picked to evict from)
                    del self._free[key]
            else:
                array = np.empty(shape, dtype=dtype)
            if len(self._lent) > 1024:  # forget arrays that died without coming back
                self._lent = {i: r for i, r in self._lent.items() if r() is not None}
            self._lent[id(array)] = weakref.ref(array)
            return array

    def give(self, array: np.ndarray) -> None:
        """Keep `array` (from `take`, or a view of one) for reuse, if it fits the bound."""
        base = array.base
        if array.nbytes < SMALL_BYTES and getattr(base, "nbytes", 0) < SMALL_BYTES:
            return  # (too small for `take` to have lent it)
        with self._lock:
            for candidate in (array, array.base):
                ref = self._lent.get(id(candidate))
                if ref is not None and ref() is candidate:
                    break
            else:
                return  # not ours
            assert candidate is not None
            del self._lent[id(candidate)]
            size = candidate.nbytes
            if size > self.limit_bytes:
                return
            while self._bytes + size > self.limit_bytes:
                oldest = next(iter(self._free))
                dropped = self._free[oldest].pop()
                self._bytes -= dropped.nbytes
                if not self._free[oldest]:
                    del self._free[oldest]
            key = (candidate.shape, candidate.dtype)
            free = self._free.pop(key, [])  # (re-inserted: the most recently used key)
            free.append(candidate)
            self._free[key] = free
            self._bytes += size

    def clear(self) -> None:
        """Drop every kept array."""
        with self._lock:
            self._free.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes kept now."""
        return self._bytes

    def kept(self) -> list[np.ndarray]:
        """The arrays kept now (for tests)."""
        with self._lock:
            return [a for free in self._free.values() for a in free]


def copy_into(dest: np.ndarray, source: np.ndarray) -> None:
    """``dest[...] = source``."""
    np.copyto(dest, source)


def add_into(dest: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``dest[...] = a + b``, with no temporary."""
    np.add(a, b, out=dest)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` into a scratch array from `BUFFERS` (give it back when done)."""
    out = BUFFERS.take((*a.shape[:-1], b.shape[-1]), np.result_type(a, b))
    return np.matmul(a, b, out=out)


#: the column buffers of NumPy convolutions: room for a few workspaces' worth
BUFFERS = BufferCache(limit_bytes=96 * 2**20)


class ResultPool:
    """Result arrays, reused only once nothing outside the pool refers to them.

    A result is handed to the caller, so it may be reused only after the caller (and
    every view of it, which holds a reference to it) has let it go: `take` reuses an
    array whose reference count shows that only the pool holds it, else allocates a
    new one and keeps it, within `limit_bytes` (CPython only; elsewhere `take` always
    allocates). This spares large results the page faults of fresh memory, as a
    caching allocator does, without touching the process's malloc.

    Example:
        >>> pool = ResultPool(limit_bytes=2**22)
        >>> a = pool.take((512, 512), np.float64)
        >>> pool.take((512, 512), np.float64) is a  # still held here: a new one
        False
        >>> address = a.ctypes.data
        >>> del a
        >>> pool.take((512, 512), np.float64).ctypes.data == address  # let go: reused
        True
    """

    #: references to a free array while `take` looks at it: the pool's list, the loop
    #: variable and getrefcount's argument
    _FREE_REFS = 3

    def __init__(self, *, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._arrays: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._counted = sys.implementation.name == "cpython"

    def take(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised C-contiguous array of `shape` and `dtype` for a result."""
        shape, dtype = tuple(shape), np.dtype(dtype)
        if not self._counted or math.prod(shape) * dtype.itemsize < SMALL_BYTES:
            return np.empty(shape, dtype=dtype)
        with self._lock:
            for array in self._arrays:
                if (
                    array.shape == shape
                    and array.dtype == dtype
                    and sys.getrefcount(array) == self._FREE_REFS
                ):
                    return array
            fresh = np.empty(shape, dtype=dtype)
            if fresh.nbytes <= self.limit_bytes:
                held = sum(a.nbytes for a in self._arrays)
                while self._arrays and held + fresh.nbytes > self.limit_bytes:
                    held -= self._arrays.pop(0).nbytes  # (the caller may still hold it)
                self._arrays.append(fresh)
            return fresh

    def clear(self) -> None:
        """Forget every array (callers keep theirs)."""
        with self._lock:
            self._arrays.clear()


#: the result arrays of NumPy convolutions (outputs and input gradients)
RESULTS = ResultPool(limit_bytes=64 * 2**20)


def parallel_chunks(flops: float) -> int:
    """How many batch chunks of a convolution with this many FLOPs to run at once."""
    if flops < (PARALLEL_FLOPS_HELD if blas_held() else PARALLEL_FLOPS) or _blas() is None:
        return 1
    return _threads()


def _pool() -> ThreadPoolExecutor:
    """The one thread pool of NumPy kernels, made on first use."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(_threads(), thread_name_prefix="xconv-numpy")
    return _executor


@contextlib.contextmanager
def one_thread_blas() -> Iterator[None]:
    """Hold BLAS to one thread for a whole block of work, such as a training step.

    Convolutions run their batch chunks on threads with BLAS on one thread. Given its
    threads back between them, OpenBLAS woke them for the matrix products of the ops
    in between, and they spun and took the cores from the next convolution's chunk
    threads; switching the count back and forth costs besides. Held for a whole MNIST
    training step (batch 128, 2 CPUs), the step took 26 ms instead of 36, and
    ResNet-20's about 400 instead of 466. Inside, a BLAS call outside the chunks runs on one
    thread.

    BLAS's thread count is the process's: blocks open in several threads share one
    hold, set by the first to enter and lifted (the previous count back) by the last
    to leave, in whatever order they leave. Both happen on one thread of xconv's own
    (`_on_blas_thread`): OpenBLAS 0.3.31 ignored a thread raising the count that
    another thread had lowered, and left it at one for the rest of the process. Nothing
    is held where chunks would not run on threads anyway (one CPU, or no threadpoolctl).
    """
    global _held, _limiter
    if parallel_chunks(float("inf")) < 2:
        yield
        return
    with _held_lock:
        if _held == 0:
            _limiter = _on_blas_thread(lambda: _blas().limit(limits=1, user_api="blas"))
        _held += 1
    try:
        yield
    finally:
        with _held_lock:
            _held -= 1
            if _held == 0 and _limiter is not None:
                _on_blas_thread(_limiter.restore_original_limits)
                _limiter = None


_blas_setter: ThreadPoolExecutor | None = None


def _on_blas_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` on the one thread that sets BLAS's thread count for `one_thread_blas`."""
    global _blas_setter
    if _blas_setter is None:
        _blas_setter = ThreadPoolExecutor(1, thread_name_prefix="xconv-blas")
    return _blas_setter.submit(fn).result()


#: how many `one_thread_blas` blocks are open, and the threadpoolctl limit they share
_held = 0
_limiter: Any = None
_held_lock = threading.Lock()


def blas_held() -> bool:
    """Whether a `one_thread_blas` block is open: BLAS runs on one thread, and a BLAS
    call does not wake threads that would then spin against xconv's own."""
    return _held > 0


#: products of at least this many FLOPs are split over threads while BLAS is held
PARALLEL_MATMUL_FLOPS = 4e6


def split_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``a @ b`` for 2-D float arrays, a's rows split over the pool's threads, while a
    `one_thread_blas` block holds BLAS to one thread and the product is large enough;
    else None (BLAS has its own threads, or it is not worth it)."""
    if not blas_held() or a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype:
        return None
    (m, k), n = a.shape, b.shape[1]
    if 2 * m * k * n < PARALLEL_MATMUL_FLOPS or m < 2:
        return None
    out = np.empty((m, n), dtype=a.dtype)
    pieces = min(_threads(), m)
    bounds = [m * i // pieces for i in range(pieces + 1)]
    map_threads(
        lambda start, stop: np.matmul(a[start:stop], b, out=out[start:stop]),
        list(itertools.pairwise(bounds)),
    )
    return out


def map_chunks(fn: Callable[[int, int], Any], spans: Sequence[tuple[int, int]]) -> list[Any]:
    """``[fn(start, stop) for each span]``, on threads with one-thread BLAS if several."""
    if len(spans) < 2 or parallel_chunks(PARALLEL_FLOPS) < 2:
        return [fn(start, stop) for start, stop in spans]
    with one_thread_blas():
        futures = [_pool().submit(fn, start, stop) for start, stop in spans]
        return [future.result() for future in futures]  # re-raises a worker's exception


def map_threads(fn: Callable[[int, int], Any], spans: Sequence[tuple[int, int]]) -> list[Any]:
    """``[fn(start, stop) for each span]`` on the pool's threads, BLAS left alone.

    For work that calls no BLAS and during which NumPy releases the GIL (ufuncs,
    reductions over large arrays): the pooling and activation kernels of `_ops`.
    """
    if len(spans) < 2:
        return [fn(start, stop) for start, stop in spans]
    futures = [_pool().submit(fn, start, stop) for start, stop in spans]
    return [future.result() for future in futures]


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


def unfold(x: np.ndarray, geometry: ConvGeometry, *, scratch: bool = False) -> np.ndarray:
    """Columns (C * kh * kw, N * OH * OW) of an (N, C, H, W) array.

    With `scratch`, the columns come from `BUFFERS`: give them back when done.
    """
    n, c = x.shape[0], x.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    shape = (c * kh * kw, n * oh * ow)
    matrix = BUFFERS.take(shape, x.dtype) if scratch else np.empty(shape, dtype=x.dtype)
    if matrix.size == 0:
        return matrix
    cols = matrix.reshape(c, kh, kw, n, oh, ow)  # a view, written tap by tap
    source = x.transpose(1, 0, 2, 3)  # (C, N, H, W), a view
    for tap in _taps(geometry):
        dest = cols[:, tap.i, tap.j]
        # what padding covers is zero; the rest is the window's view of the input
        for rows, columns in tap.padding:
            dest[:, :, rows, columns] = 0
        if tap.seen is not None:
            dest[(..., *tap.seen)] = source[(..., *tap.source)]
    return matrix


def fold(cols: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """The adjoint of `unfold`: sum columns back into an (N, C, H, W) array."""
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    c, n = cols.shape[0] // (kh * kw), cols.shape[1] // (oh * ow)
    image = RESULTS.take((n, c, *geometry.in_size), cols.dtype)
    image[...] = 0
    if image.size == 0:
        return image
    taps = cols.reshape(c, kh, kw, n, oh, ow)
    target = image.transpose(1, 0, 2, 3)  # (C, N, H, W), a view
    for tap in _taps(geometry):
        if tap.seen is not None:  # (a tap that sees only padding adds nothing)
            target[(..., *tap.source)] += taps[(slice(None), tap.i, tap.j, ..., *tap.seen)]
    return image
