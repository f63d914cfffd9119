"""``python -m benchmarks train``: the digits demo's training, xconv against PyTorch.

The ancestor's CNN, Adam, batch 256, with xconv on NumPy against the same network in
PyTorch on the CPU, each run in a fresh process, timed over the training loop only;
medians over repeats (50 epochs, or 5 with ``--quick``), and their ratio. Where JAX is
installed, xconv on JAX too: its training step compiled (`jax.jit`) and not.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from typing import Any

from ._common import run_worker, worker_environment


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time both trainings, alternating; print the table and return the result."""
    epochs = 5 if args.quick else 50
    repeats = args.repeats or 3
    runs: dict[str, list[dict[str, float]]] = {"xconv": [], "torch": []}
    if importlib.util.find_spec("jax") is not None:
        runs |= {"xconv-jax": [], "xconv-jax-eager": []}
    for repeat in range(repeats):
        for implementation in runs:  # interleaved, so drifts in machine load hit both
            command = ["benchmarks._train_worker", implementation, str(epochs), str(repeat)]
            runs[implementation].append(run_worker(command))
    medians = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    epoch_medians = {
        name: statistics.median(r["epoch_seconds"] for r in rs) for name, rs in runs.items()
    }
    result = {
        "benchmark": "train",
        "epochs": epochs,
        "repeats": repeats,
        "runs": runs,
        "median_seconds": medians,
        "median_epoch_seconds": epoch_medians,
        "ratio_xconv_to_torch": medians["xconv"] / medians["torch"],
        "environment": worker_environment(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"digits CNN, {epochs} epochs, batch 256, median of {repeats} runs\n")
    print("| implementation | median s | median epoch s (after the first) | accuracies |")
    print("| --- | --- | --- | --- |")
    for name, rs in runs.items():
        accuracies = ", ".join(f"{r['accuracy']:.4f}" for r in rs)
        print(f"| {name} | {medians[name]:.2f} | {epoch_medians[name]:.4f} | {accuracies} |")
    print(f"\nxconv / torch: {result['ratio_xconv_to_torch']:.2f}")
    print(f"BLAS: {result['environment']['blas']}")
    return result
