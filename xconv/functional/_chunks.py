"""How a convolution's batch is cut into chunks whose columns fit the workspace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from xconv import config
from xconv._typing import Array
from xconv.backends import Backend, backend_for

from ._geometry import ConvGeometry
from ._interface import Kernels

__all__ = ["Chunks", "ConvColumns", "batch_chunks"]


class Chunks(NamedTuple):
    """How a convolution's batch is cut: spans that fit the workspace, whether they run
    on threads (NumPy), and whether all the batch's columns would fit."""

    spans: list[tuple[int, int]]
    parallel: bool
    whole_fits: bool
    kernels: Kernels | None = None  # whose threads run the spans, where `parallel`

    def map(self, fn: Callable[[int, int], Any]) -> list[Any]:
        """``fn(start, stop)`` for every span, in order."""
        if self.parallel and self.kernels is not None:
            return self.kernels.map_chunks(fn, self.spans)
        return [fn(start, stop) for start, stop in self.spans]

    def part(self, a: Any, start: int, stop: int) -> Any:
        """Samples [start, stop) of `a` (no slicing when there is one span)."""
        return a if len(self.spans) == 1 else a[start:stop, ...]


def batch_chunks(
    x: Array,
    geometry: ConvGeometry,
    kernels: Kernels,
    *,
    channels: int | None = None,
    filters: int = 1,
) -> Chunks:
    """Cut the batch into spans whose columns fit the workspace.

    The bound is `xconv.config.workspace_bytes`, or if that is None the backend's
    `workspace_for(x)`. On NumPy, convolutions of enough FLOPs run several spans at
    once on threads (only with `xconv.config.fast_kernels`), which share the bound.
    One span on lazy backends: their chunks already bound memory, and slicing them
    anew would rechunk the batch axis.
    """
    n, xp = x.shape[0], kernels.xp
    backend = backend_for(xp)
    if n == 0 or (backend is not None and backend.lazy):
        return Chunks([(0, n)], False, True)
    limit = backend.workspace_for(x) if backend is not None else Backend.workspace_bytes
    limit = config.checked_workspace_bytes() or limit
    if backend is not None:
        backend.prepare_workspace()
    c = x.shape[1] if channels is None else channels
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    per_sample = c * kh * kw * oh * ow  # elements of one sample's columns
    per_sample_bytes = per_sample * xp.finfo(x.dtype).bits // 8
    threads = min(n, kernels.chunk_threads(2 * per_sample * filters * n))
    size = max(1, limit // threads // max(per_sample_bytes, 1))
    if threads > 1:
        # as many spans as the bound needs, rounded up to rounds of one per thread, all
        # of about one size: no thread is left with a small remainder to run alone
        rounds = -(-n // (size * threads))
        size = -(-n // (rounds * threads))
    spans = [(start, min(start + size, n)) for start in range(0, n, size)]
    return Chunks(spans, threads > 1, per_sample_bytes * n <= limit, kernels)


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
