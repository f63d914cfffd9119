"""``python -m benchmarks train [--epochs N] [--repeats R] [--out DIR] [--quick]``.

train: the digits demo's training (the ancestor's CNN, Adam, batch 256) with xconv on
NumPy against the same network in PyTorch on the CPU, each run in a fresh process,
timed over the training loop only; medians over repeats, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._environment import child_environment


def _run(implementation: str, epochs: int, seed: int) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks._train_worker", implementation, str(epochs)]
    done = subprocess.run(
        [*command, str(seed)], capture_output=True, text=True, env=child_environment(), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{implementation} run failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _environment() -> dict[str, Any]:
    """`describe()` as a worker process sees it (OpenBLAS variables unset)."""
    code = (
        "import json; from benchmarks._environment import describe; print(json.dumps(describe()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_environment(),
        check=True,
    )
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def train(args: argparse.Namespace) -> dict[str, Any]:
    epochs = 5 if args.quick else args.epochs
    runs: dict[str, list[dict[str, float]]] = {"xconv": [], "torch": []}
    for repeat in range(args.repeats):
        for implementation in runs:  # interleaved, so drifts in machine load hit both
            runs[implementation].append(_run(implementation, epochs, seed=repeat))
    medians = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    result = {
        "benchmark": "train",
        "epochs": epochs,
        "repeats": args.repeats,
        "runs": runs,
        "median_seconds": medians,
        "ratio_xconv_to_torch": medians["xconv"] / medians["torch"],
        "environment": _environment(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"digits CNN, {epochs} epochs, batch 256, median of {args.repeats} runs\n")
    print("| implementation | median s | accuracies |")
    print("| --- | --- | --- |")
    for name, rs in runs.items():
        accuracies = ", ".join(f"{r['accuracy']:.4f}" for r in rs)
        print(f"| {name} | {medians[name]:.2f} | {accuracies} |")
    print(f"\nxconv / torch: {result['ratio_xconv_to_torch']:.2f}")
    print(f"BLAS: {result['environment']['blas']}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("suite", choices=["train"], nargs="?", default="train")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5 epochs")
    parser.add_argument("--out", type=Path, help="write the result as JSON in this folder")
    args = parser.parse_args()
    result = train(args)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"{result['benchmark']}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
