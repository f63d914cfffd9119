"""Times one conv2d implementation on the anchor shapes, in its own process; prints JSON.

``python -m benchmarks._conv_worker IMPLEMENTATION time REPEATS SHAPE_INDEX...``
``python -m benchmarks._conv_worker IMPLEMENTATION memory SHAPE_INDEX``
``python -m benchmarks._conv_worker sgemm``

Implementations: ``torch``, ``ancestor``, ``xconv`` (functional `conv2d` then
`conv2d_backward`, the default path), ``xconv-generic`` (the same with the NumPy
backend's kernels switched off), ``xconv-layer`` (`Conv2D.forward_pass` then
`backward_pass`). Memory is the rise of the process's peak resident set over one
forward+backward, in a fresh process whose libraries were warmed on a tiny input, so
anything an implementation keeps between calls counts.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

#: (N, C, H, W, F, k, stride, pad)
SHAPES = [
    (64, 1, 8, 8, 16, 3, 1, 1),
    (64, 16, 8, 8, 32, 3, 1, 1),
    (32, 3, 32, 32, 32, 3, 1, 1),
    (32, 64, 16, 16, 64, 3, 1, 1),
    (16, 64, 56, 56, 64, 3, 1, 1),
    (32, 3, 32, 32, 16, 5, 2, 2),
    (8, 256, 14, 14, 256, 3, 1, 1),
]

Step = Callable[[], Any]


def _inputs(shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    n, c, h, w, f, k, stride, pad = shape
    rng = np.random.default_rng(0)
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weight = rng.standard_normal((f, c, k, k), dtype=np.float32) / np.float32(np.sqrt(c * k * k))
    bias = rng.standard_normal(f, dtype=np.float32)
    grad = rng.standard_normal((n, f, oh, ow), dtype=np.float32)
    return x, weight, bias, grad


def _steps(implementation: str, shape: tuple[int, ...]) -> tuple[Step, Step]:
    """(forward, forward+backward) closures over fixed float32 inputs."""
    stride, pad = shape[6], shape[7]
    x, weight, bias, grad = _inputs(shape)
    if implementation == "torch":
        import torch

        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, weight, bias))
        tg = torch.from_numpy(grad)

        def torch_forward() -> Any:
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad)

        def torch_both() -> Any:
            out = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad)
            return torch.autograd.grad(out, (tx, tw, tb), tg)

        return torch_forward, torch_both
    if implementation == "ancestor":
        from ._ancestor import AncestorConv2D

        layer = AncestorConv2D(weight, bias, stride, pad)
        return (lambda: layer.forward(x)), (lambda: (layer.forward(x), layer.backward(grad)))
    if implementation == "xconv-layer":
        from xconv.layers import Conv2D

        f, k = shape[4], shape[5]
        conv = Conv2D(f, (k, k), input_shape=x.shape[1:], padding=pad, stride=stride)
        conv.initialize(seed=0, dtype="float32", backend="numpy")
        conv.params["W"], conv.params["b"] = weight, bias

        def layer_both() -> Any:
            conv.forward_pass(x)
            return conv.backward_pass(grad)

        return (lambda: conv.forward_pass(x, training=False)), layer_both
    if implementation in ("xconv", "xconv-generic"):
        from xconv.functional import conv2d, conv2d_backward

        if implementation == "xconv-generic":
            import xconv

            xconv.config.fast_kernels = False

        def xconv_both() -> Any:
            conv2d(x, weight, bias, stride=stride, padding=pad)
            return conv2d_backward(grad, x, weight, stride=stride, padding=pad)

        return (lambda: conv2d(x, weight, bias, stride=stride, padding=pad)), xconv_both
    raise SystemExit(f"unknown implementation {implementation!r}")


def _median_seconds(step: Step, repeats: int) -> float:
    step()  # warm-up: first-call costs (imports, page faults, caches) are not timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_shapes(
    implementation: str,
    repeats: int,
    indices: list[int],
    steps: Callable[[str, tuple[int, ...]], tuple[Step, Step]] | None = None,
) -> list[dict[str, Any]]:
    """Median seconds of forward and forward+backward for each shape in `indices`.

    `steps(implementation, shape)` makes the two steps (default: this module's).
    """
    make = _steps if steps is None else steps
    results = []
    for index in indices:
        forward, both = make(implementation, SHAPES[index])
        results.append(
            {
                "shape": SHAPES[index],
                "forward_s": _median_seconds(forward, repeats),
                "forward_backward_s": _median_seconds(both, repeats),
            }
        )
    return results


def _kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory(implementation: str, index: int) -> dict[str, Any]:
    """MiB by which one forward+backward raises the peak resident set, first call."""
    shape = SHAPES[index]
    tiny = (2, shape[1], 8, 8, 2, 3, 1, 1)
    _steps(implementation, tiny)[1]()  # load libraries and their thread pools
    _, both = _steps(implementation, shape)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak (VmHWM) to the current resident set
    before = _kib("VmRSS")
    both()
    return {"shape": shape, "peak_extra_mib": (_kib("VmHWM") - before) / 1024}


def sgemm_gflops(repeats: int = 7, size: int = 2048) -> float:
    """NumPy float32 matrix product, the ceiling any im2col conv works against."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    seconds = _median_seconds(lambda: a @ b, repeats)
    return 2 * size**3 / seconds / 1e9


def main(argv: list[str]) -> None:
    if argv[0] == "sgemm":
        result: Any = {"sgemm_gflops": sgemm_gflops()}
    elif argv[1] == "time":
        result = time_shapes(argv[0], int(argv[2]), [int(i) for i in argv[3:]])
    else:
        result = peak_memory(argv[0], int(argv[2]))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
