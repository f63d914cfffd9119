"""The formulations tried for xconv's NumPy conv2d, timed side by side.

``python -m benchmarks._variants [--quick]`` prints a markdown table of forward+backward
milliseconds (float32, median of timed calls, rounds interleaved so that load drifts
reach every variant) on the anchor shapes. Not a suite of its own: it documents the
choices behind the default path (benchmarks/results/cpu-*.md).

Variants:
- default: one GEMM per group over the batch, threaded in-place NumPy kernels,
  32 MiB workspace;
- generic: the array-API code alone (``fast_kernels=False``);
- one-thread copies: the NumPy kernels without their threads;
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
from contextlib import contextmanager
from typing import Any

import array_api_compat.numpy as xp
import numpy as np

import xconv
from xconv.backends import _numpy_kernels
from xconv.functional import conv2d, conv2d_backward
from xconv.functional._conv import weight_gradient
from xconv.functional._geometry import ConvGeometry
from xconv.functional._im2col import fold, unfold

from ._conv_worker import SHAPES, _inputs


def per_sample(x: Any, w: Any, b: Any, g: Any, stride: int, pad: int) -> Any:
    """The former formulation: (F, K) @ (N, K, L), one small GEMM per sample."""
    geometry = ConvGeometry.build(x.shape[2:], w.shape[2:], stride=stride, padding=pad)
    f = w.shape[0]
    cols = unfold(x, geometry, xp)
    w2 = w.reshape(f, -1)
    out = (w2 @ cols).reshape(x.shape[0], f, *geometry.out_size) + b.reshape(1, f, 1, 1)
    g3 = g.reshape(g.shape[0], f, -1)
    grad_w = (g3 @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    grad_x = fold(w2.T @ g3, geometry, xp)
    return out, grad_x, grad_w, g.sum(axis=(0, 2, 3))


def flipped_kernel(x: Any, w: Any, b: Any, g: Any, stride: int, pad: int) -> Any:
    """grad_input = conv2d(grad, flipped and transposed weight, padding k - 1 - pad)."""
    out = conv2d(x, w, b, stride=stride, padding=pad)
    geometry = ConvGeometry.build(x.shape[2:], w.shape[2:], stride=stride, padding=pad)
    grad_w = weight_gradient(g, x, None, w.shape, geometry, 1, xp)
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


def _one_thread(*args: Any) -> Any:
    with _patched(_numpy_kernels, "THREADED_BYTES", 2**62):
        return _default(*args)


VARIANTS: dict[str, Callable[..., Any]] = {
    "default": _default,
    "generic": _with(fast_kernels=False),
    "one-thread copies": _one_thread,
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
        geomean = float(np.exp(np.mean(np.log(ratios))))
        print(f"| {name} | " + " | ".join(cells) + f" | {geomean:.2f} |")


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
