"""The formulations tried for xconv's NumPy conv2d, timed side by side.

``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks._variants [--quick]``
(unset as for the suites' workers) prints a markdown table of forward+backward
milliseconds (float32, median of timed calls, rounds interleaved so that load drifts
reach every variant) on the anchor shapes. Not a suite of its own: it documents the
choices behind the default path (benchmarks/results/cpu-*.md).

Variants:
- default: one GEMM per group over the batch, in-place NumPy kernels, batch chunks
  on threads (one-thread BLAS) for convolutions of 50 MFLOP or more, 16 MiB workspace;
- generic: the array-API code alone (``fast_kernels=False``): chunks in turn;
- chunks in turn: the NumPy kernels, but no threads (BLAS threads only);
- threaded copies: chunks in turn, each kernel's copies split over two threads by
  channel (the first NumPy kernels; see `_threaded_copies`);
- workspace 8 MiB / 128 MiB / unbounded: other chunk sizes;
- per-sample GEMMs: the former layout, columns (N, K, L) and a batched matmul;
- flipped-kernel grad_input: the input gradient as the convolution of the padded
  output gradient with the flipped, transposed kernel (stride 1), instead of col2im.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import array_api_compat.numpy as xp
import numpy as np

import xconv
from xconv.functional import ConvGeometry, col2im, conv2d, conv2d_backward, im2col
from xconv.functional._conv import weight_gradient
from xconv.functional._dispatch import kernels_for
from xconv.functional._kernels._numpy import _threads as _numpy_kernels

from ._common import geomean
from ._conv_worker import SHAPES, _inputs


def per_sample(x: Any, w: Any, b: Any, g: Any, stride: int, pad: int) -> Any:
    """The former formulation: (F, K) @ (N, K, L), one small GEMM per sample."""
    geometry = ConvGeometry.build(x.shape[2:], w.shape[2:], stride=stride, padding=pad)
    f = w.shape[0]
    cols = im2col(x, w.shape[2:], stride=stride, padding=pad)  # (N, K, L)
    w2 = w.reshape(f, -1)
    out = (w2 @ cols).reshape(x.shape[0], f, *geometry.out_size) + b.reshape(1, f, 1, 1)
    g3 = g.reshape(g.shape[0], f, -1)
    grad_w = (g3 @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    grad_x = col2im(w2.T @ g3, x.shape[2:], w.shape[2:], stride=stride, padding=pad)
    return out, grad_x, grad_w, g.sum(axis=(0, 2, 3))


def flipped_kernel(x: Any, w: Any, b: Any, g: Any, stride: int, pad: int) -> Any:
    """grad_input = conv2d(grad, flipped and transposed weight, padding k - 1 - pad)."""
    out = conv2d(x, w, b, stride=stride, padding=pad)
    geometry = ConvGeometry.build(x.shape[2:], w.shape[2:], stride=stride, padding=pad)
    grad_w = weight_gradient(g, x, None, w.shape, geometry, 1, xp, kernels_for(xp))
    grad_b = g.sum(axis=(0, 2, 3))
    k = w.shape[2]
    w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    grad_x = conv2d(g, w_flipped, padding=k - 1 - pad)
    return out, grad_x, grad_w, grad_b


@contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, saved)


def _default(x: Any, w: Any, b: Any, g: Any, stride: int, pad: int) -> Any:
    conv2d(x, w, b, stride=stride, padding=pad)
    return conv2d_backward(g, x, w, stride=stride, padding=pad)


def _with(**settings: Any) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        with xconv.config.using(**settings):
            return _default(*args)

    return run


def _in_turn(*args: Any) -> Any:
    with _patched(_numpy_kernels, "PARALLEL_FLOPS", float("inf")):
        return _default(*args)


_POOL = ThreadPoolExecutor(2, thread_name_prefix="copies")


def _threaded_copies(*args: Any) -> Any:
    """Chunks in turn; each im2col/col2im split over two threads by channel."""
    pool = _POOL

    def split(kernel: Callable[..., Any], axis: int) -> Callable[..., Any]:
        def run(a: Any, geometry: Any, **_: Any) -> Any:
            if axis == 1:  # im2col: halves of the channels, columns stacked by row
                c = a.shape[1] // 2
                halves = [a[:, :c], a[:, c:]] if c else [a]
            else:  # col2im: halves of the rows, images joined by channel
                kk = geometry.kernel_size[0] * geometry.kernel_size[1]
                c = a.shape[0] // kk // 2
                halves = [a[: c * kk], a[c * kk :]] if c else [a]
            parts = list(pool.map(lambda h: kernel(h, geometry), halves))
            return np.concatenate(parts, axis=0 if axis == 1 else 1)

        return run

    with (
        _patched(_numpy_kernels, "PARALLEL_FLOPS", float("inf")),
        _patched(_numpy_kernels, "unfold", split(_numpy_kernels.unfold, 1)),
        _patched(_numpy_kernels, "fold", split(_numpy_kernels.fold, 0)),
    ):
        return _default(*args)


VARIANTS: dict[str, Callable[..., Any]] = {
    "default": _default,
    "generic": _with(fast_kernels=False),
    "chunks in turn": _in_turn,
    "threaded copies": _threaded_copies,
    "workspace 8 MiB": _with(workspace_bytes=8 * 2**20),
    "workspace 128 MiB": _with(workspace_bytes=128 * 2**20),
    "workspace unbounded": _with(workspace_bytes=2**40),
    "per-sample GEMMs": per_sample,
    "flipped-kernel grad_input": flipped_kernel,
}


def main(quick: bool) -> None:
    rounds, calls = (1, 3) if quick else (3, 5)
    times: dict[tuple[int, str], list[float]] = {}
    for _ in range(rounds):
        for index, shape in enumerate(SHAPES):
            x, w, b, g = _inputs(shape)
            stride, pad = shape[6], shape[7]
            for name, variant in VARIANTS.items():
                if name == "flipped-kernel grad_input" and stride != 1:
                    continue
                variant(x, w, b, g, stride, pad)  # warm-up
                for _ in range(calls):
                    start = time.perf_counter()
                    variant(x, w, b, g, stride, pad)
                    times.setdefault((index, name), []).append(time.perf_counter() - start)
    print("| variant | " + " | ".join(str(s) for s in SHAPES) + " | geomean / default |")
    print("| --- |" + " ---: |" * (len(SHAPES) + 1))
    for name in VARIANTS:
        cells, ratios = [], []
        for index in range(len(SHAPES)):
            if (index, name) not in times:
                cells.append("n/a")
                continue
            median = statistics.median(times[(index, name)])
            ratios.append(median / statistics.median(times[(index, "default")]))
            cells.append(f"{median * 1e3:.2f}")
        print(f"| {name} | " + " | ".join(cells) + f" | {geomean(ratios):.2f} |")


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
