"""How a convolution's batch is cut into chunks whose columns fit the workspace, and
the context in which NumPy's kernels run on their own threads."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from xconv import config
from xconv.backends import Backend, backend_for

from . import _numpy_kernels
from ._geometry import ConvGeometry

__all__ = ["Chunks", "ConvColumns", "batch_chunks", "kernel_threads", "matmul"]


class Chunks(NamedTuple):
    """How a convolution's batch is cut: spans that fit the workspace, whether they run
    on threads (NumPy), and whether all the batch's columns would fit."""

    spans: list[tuple[int, int]]
    parallel: bool
    whole_fits: bool

    def map(self, fn: Callable[[int, int], Any]) -> list[Any]:
        """``fn(start, stop)`` for every span, in order."""
        if self.parallel:
            return _numpy_kernels.map_chunks(fn, self.spans)
        return [fn(start, stop) for start, stop in self.spans]

    def part(self, a: Any, start: int, stop: int) -> Any:
        """Samples [start, stop) of `a` (no slicing when there is one span)."""
        return a if len(self.spans) == 1 else a[start:stop, ...]


def batch_chunks(
    x: Any, geometry: ConvGeometry, xp: Any, *, channels: int | None = None, filters: int = 1
) -> Chunks:
    """Cut the batch into spans whose columns fit the workspace.

    The bound is `xconv.config.workspace_bytes`, or if that is None the backend's
    `workspace_for(x)`. On NumPy, convolutions of enough FLOPs run several spans at
    once on threads (only with `xconv.config.fast_kernels`), which share the bound.
    One span on lazy backends: their chunks already bound memory, and slicing them
    anew would rechunk the batch axis.
    """
    n = x.shape[0]
    backend = backend_for(xp)
    if n == 0 or (backend is not None and backend.lazy):
        return Chunks([(0, n)], False, True)
    limit = backend.workspace_for(x) if backend is not None else Backend.workspace_bytes
    limit = config.checked_workspace_bytes() or limit
    numpy = array_api_compat.is_numpy_namespace(xp)
    if numpy and config.retain_freed_memory:
        _numpy_kernels.retain_freed_memory()  # asked for: once per process
    c = x.shape[1] if channels is None else channels
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    per_sample = c * kh * kw * oh * ow  # elements of one sample's columns
    per_sample_bytes = per_sample * xp.finfo(x.dtype).bits // 8
    threads = 1
    if numpy and config.fast_kernels:
        threads = min(n, _numpy_kernels.parallel_chunks(2 * per_sample * filters * n))
    size = max(1, limit // threads // max(per_sample_bytes, 1))
    if threads > 1:
        # as many spans as the bound needs, rounded up to rounds of one per thread, all
        # of about one size: no thread is left with a small remainder to run alone
        rounds = -(-n // (size * threads))
        size = -(-n // (rounds * threads))
    spans = [(start, min(start + size, n)) for start in range(0, n, size)]
    return Chunks(spans, threads > 1, per_sample_bytes * n <= limit)


class ConvColumns:
    """The im2col columns of a `conv2d_forward`, kept for `conv2d_gradients`.

    Opaque: hand it back unchanged. It holds one matrix per batch chunk, in the layout
    that made it (`rows`: NumPy's one row per window, else one column per window), and
    lets go of each once the weight gradient has used it.
    """

    __slots__ = ("_by_span", "chunks", "rows")

    def __init__(self, chunks: Chunks, columns: list[Any], *, rows: bool = False) -> None:
        self.chunks = chunks
        self.rows = rows
        self._by_span = dict(zip(chunks.spans, columns, strict=True))

    def take(self, span: tuple[int, int]) -> Any | None:
        """The matrix of samples [start, stop), forgotten here once taken."""
        return self._by_span.pop(span, None)


def kernel_threads(xp: Any) -> contextlib.AbstractContextManager[None]:
    """A context for a block of many ops on `xp`'s arrays, such as a training step.

    On NumPy (with ``xconv.config.fast_kernels``), BLAS keeps to one thread inside it
    and xconv's kernels spread their work over their own threads, as each convolution
    does on its own, without handing BLAS its threads back in between (that switching
    made the MNIST training step take 36 ms instead of 26 on 2 CPUs). The previous
    BLAS thread count comes back on leaving. Elsewhere it does nothing.

    Example:
        >>> import numpy as np
        >>> with kernel_threads(np):
        ...     pass
    """
    if config.fast_kernels and array_api_compat.is_numpy_namespace(xp):
        return _numpy_kernels.one_thread_blas()
    return contextlib.nullcontext()


def matmul(a: Any, b: Any) -> Any:
    """``a @ b``. On NumPy inside `kernel_threads`, where BLAS keeps to one thread, a
    large product of two matrices is split by rows of `a` over xconv's threads.

    Example:
        >>> import numpy as np
        >>> matmul(np.eye(2), np.arange(4.0).reshape(2, 2))
        array([[0., 1.],
               [2., 3.]])
    """
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        out = _numpy_kernels.split_matmul(a, b)
        if out is not None:
            return out
    return a @ b
