"""``python -m benchmarks [conv|train|all|dask] [--gpu] [--out DIR] [--quick] [--repeats R]``.

conv: conv2d forward and forward+backward on seven anchor shapes, xconv against
PyTorch on the CPU and an ancestor-style implementation. train: the digits CNN's
training, xconv against PyTorch. all: both. dask: prediction and data-parallel training
on dask.distributed. --gpu: the same questions on CuPy against PyTorch CUDA (cuDNN).
Every result prints as a markdown table; --out DIR also writes it as JSON there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

SUITES = {"conv": ["conv"], "train": ["train"], "all": ["conv", "train"], "dask": ["dask"]}
SUITES["ops"] = ["ops"]  # relu, max pooling, batch normalization: xconv against torch


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("suite", choices=list(SUITES), nargs="?", default="all")
    parser.add_argument("--gpu", action="store_true", help="CuPy against PyTorch CUDA")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller runs")
    parser.add_argument("--repeats", type=int, help="repeat rounds (default: per suite)")
    parser.add_argument("--out", type=Path, help="write each result as JSON in this folder")
    args = parser.parse_args()
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be a positive integer, got {args.repeats}")
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
