"""``python -m benchmarks SUITE [--gpu] [--out DIR] [--quick] ...`` (SUITE below).

conv: conv2d forward and forward+backward on seven anchor shapes, xconv against
PyTorch on the CPU and an ancestor-style implementation. train: training steps of an
MNIST CNN, ResNet-20 and the digits CNN, xconv against PyTorch from the same weights,
with a per-layer-type breakdown. all: conv and train. record: the accuracy record
(LeNet-5 on MNIST, ResNet-20's first-epoch loss), xconv next to PyTorch, for minutes
to an hour. ops: relu, 2x2 max pooling and batch normalization, forward and backward,
xconv's NumPy fast paths and generic code against PyTorch. delegation: xconv on torch
tensors and JAX arrays against the library's own convolution. conv-parts: NumPy's
convolution step by step (im2col, the matrix products, col2im) against the sgemm
ceiling, a plain copy and PyTorch. dask: prediction and
data-parallel training on dask.distributed. mnist-recipe: MNIST's default recipe
(`xconv train --dataset mnist`), 3 seeds, xconv next to PyTorch. --gpu: the same
questions on CuPy against PyTorch CUDA (cuDNN).
Every result prints as a markdown table; --out DIR also writes it as JSON there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

SUITES = {
    "conv": ["conv"],
    "train": ["train"],
    "record": ["record"],
    "ops": ["ops"],
    "all": ["conv", "train"],
    "dask": ["dask"],
    "delegation": ["delegation"],
    "conv-parts": ["conv_parts"],
    "mnist-recipe": ["recipe"],
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("suite", choices=list(SUITES), nargs="?", default="all")
    parser.add_argument("--gpu", action="store_true", help="CuPy against PyTorch CUDA")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller runs")
    parser.add_argument("--repeats", type=int, help="repeat rounds (default: per suite)")
    parser.add_argument("--out", type=Path, help="write each result as JSON in this folder")
    parser.add_argument(
        "--threads", type=int, help="train, record: threads for both libraries (default: BLAS's)"
    )
    parser.add_argument(
        "--cifar10", type=Path, help="train, record: a real CIFAR-10 folder (default: synthetic)"
    )
    parser.add_argument(
        "--batches", type=int, help="record: ResNet-20 batches (default: one epoch, 391)"
    )
    parser.add_argument("--epochs", type=int, help="record, mnist-recipe: epochs (default: 3)")
    parser.add_argument(
        "--parallel", action="store_true", help="mnist-recipe: train the seeds at the same time"
    )
    args = parser.parse_args()
    for name in ("repeats", "threads", "batches", "epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a positive integer, got {value}")
    modules = ["_gpu"] if args.gpu else [f"_{suite}" for suite in SUITES[args.suite]]
    for module in modules:
        result: dict[str, Any] = importlib.import_module(f"benchmarks.{module}").run(args)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            path = args.out / f"{result['benchmark']}.json"
            path.write_text(json.dumps(result, indent=2) + "\n")
            print(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
