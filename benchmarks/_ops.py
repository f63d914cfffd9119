"""``python -m benchmarks ops``: relu, 2x2 max pooling and batch normalization.

Forward and backward at (128, 32, 28, 28), float32: xconv on NumPy with its fast
kernels, xconv with the generic array-API code (``fast_kernels=False``) and PyTorch on
the CPU. Each implementation runs in a worker process of its own (this module, run as
``python -m benchmarks._ops NAME CALLS``), implementations alternating within each
round; a worker reports the median of CALLS timed calls, the suite the median over
rounds. The machine's load (`os.getloadavg`) is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from ._common import run_worker, worker_environment

SHAPE = (128, 32, 28, 28)
IMPLEMENTATIONS = ["xconv", "xconv-generic", "torch"]
OPS = ["relu", "max_pool2d", "batch_norm"]


def _median_seconds(fn: Callable[[], Any], calls: int) -> float:
    fn()  # warm up: first-touch pages, caches, thread pools
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _xconv_ops(x: Any, g: Any) -> dict[str, Callable[[], Any]]:
    from xconv.functional import (
        ConvGeometry,
        max_pool2d_forward,
        max_pool2d_gradient,
        relu,
        relu_backward,
    )
    from xconv.layers import BatchNormalization

    geometry = ConvGeometry.for_pooling(SHAPE[2:], 2)
    pooled_grad = g[:, :, ::2, ::2].copy()
    norm = BatchNormalization(input_shape=SHAPE[1:])
    norm.initialize(dtype="float32")

    def pool() -> Any:  # what MaxPooling2D runs
        _, index = max_pool2d_forward(x, geometry=geometry)
        return max_pool2d_gradient(pooled_grad, index, geometry=geometry)

    def batch_norm() -> Any:
        norm.forward_pass(x)
        return norm.backward_pass(g)

    return {
        "relu": lambda: relu_backward(g, relu(x)),
        "max_pool2d": pool,
        "batch_norm": batch_norm,
    }


def _torch_ops(x: Any, g: Any) -> dict[str, Callable[[], Any]]:
    import torch
    import torch.nn.functional as F

    xt = torch.from_numpy(x).requires_grad_(True)
    gt = torch.from_numpy(g)
    pooled_grad = gt[:, :, ::2, ::2].contiguous()
    weight = torch.ones(SHAPE[1], requires_grad=True)
    bias = torch.zeros(SHAPE[1], requires_grad=True)
    running_mean, running_var = torch.zeros(SHAPE[1]), torch.ones(SHAPE[1])

    def backward(out: Any, grad: Any) -> Any:
        xt.grad = weight.grad = bias.grad = None
        out.backward(grad)
        return xt.grad

    def batch_norm() -> Any:
        out = F.batch_norm(xt, running_mean, running_var, weight, bias, training=True)
        return backward(out, gt)

    return {
        "relu": lambda: backward(torch.relu(xt), gt),
        "max_pool2d": lambda: backward(F.max_pool2d(xt, 2), pooled_grad),
        "batch_norm": batch_norm,
    }


def work(name: str, calls: int) -> dict[str, float]:
    """Median seconds of forward+backward of each op, for one implementation."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal(SHAPE, dtype=np.float32)
    g = rng.standard_normal(SHAPE, dtype=np.float32)
    if name == "torch":
        return {op: _median_seconds(fn, calls) for op, fn in _torch_ops(x, g).items()}
    import xconv

    with xconv.config.using(fast_kernels=name == "xconv"):
        return {op: _median_seconds(fn, calls) for op, fn in _xconv_ops(x, g).items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time every implementation, alternating; print the table and return the result."""
    rounds = args.repeats or (1 if args.quick else 3)
    calls = "5" if args.quick else "15"
    load_before = os.getloadavg()
    timed: dict[str, list[dict[str, float]]] = {name: [] for name in IMPLEMENTATIONS}
    for _ in range(rounds):
        for name in IMPLEMENTATIONS:
            timed[name].append(run_worker(["benchmarks._ops", name, calls]))
    load_after = os.getloadavg()
    medians = {
        name: {op: statistics.median(r[op] for r in runs) for op in OPS}
        for name, runs in timed.items()
    }
    result = {
        "benchmark": "ops",
        "shape": SHAPE,
        "rounds": rounds,
        "calls": int(calls),
        "runs": timed,
        "median_seconds": medians,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "environment": worker_environment(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"forward+backward at {SHAPE}, float32, median of {rounds} rounds x {calls} calls")
    print(f"load average before {load_before}, after {load_after}\n")
    print("| op | xconv ms | xconv generic ms | torch ms | xconv / torch | generic / xconv |")
    print("| --- | --- | --- | --- | --- | --- |")
    for op in OPS:
        fast, generic, torch = (medians[name][op] for name in IMPLEMENTATIONS)
        print(
            f"| {op} | {fast * 1e3:.2f} | {generic * 1e3:.2f} | {torch * 1e3:.2f} "
            f"| {fast / torch:.2f} | {generic / fast:.1f} |"
        )
    return result


if __name__ == "__main__":
    print(json.dumps(work(sys.argv[1], int(sys.argv[2]))))
