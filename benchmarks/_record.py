"""``python -m benchmarks record``: the accuracy record, xconv next to PyTorch.

1. `xconv.models.lenet5` on real MNIST (``../shared/data/mnist``; synthetic
   MNIST-shaped data, said so, where it is absent): 3 epochs (``--epochs``), batch 128,
   its default optimizer (Adam), float32; the test accuracy after each epoch (goal:
   >= 0.99 after 3) and the mean training loss of each epoch.
2. `xconv.models.resnet20` on CIFAR-10-shaped data (synthetic, 10 classes, unless
   ``--cifar10 DIR``): the first epoch's 391 batches (``--batches``), batch 128, its
   default optimizer (SGD 0.1, momentum 0.9, weight decay 1e-4), float32; the training
   loss per 20 batches.

Next to each, PyTorch 2.13 CPU trains the same network from the same initial weights on
the same batches in the same order (`benchmarks._record_worker`). Each training runs
in a fresh process, one after the other. The numbers (accuracy, losses) do not depend
on the machine's load; the seconds do. ``--quick``: 1 epoch and 20 batches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

from ._common import load_note, machine_load, run_worker, worker_environment

LOSS_EVERY = 20  # batches per row of ResNet-20's loss table


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the four trainings; print the tables and return the result."""
    if args.threads:
        os.environ["XCONV_BENCH_THREADS"] = str(args.threads)
    if args.cifar10:
        os.environ["XCONV_BENCH_CIFAR10"] = str(args.cifar10)
    epochs = args.epochs or (1 if args.quick else 3)
    batches = args.batches or (LOSS_EVERY if args.quick else 391)
    before = machine_load()
    environment = worker_environment()
    lenet5: dict[str, Any] = {}
    resnet20: dict[str, Any] = {}
    for implementation in ("xconv", "torch"):
        command = ["benchmarks._record_worker", "lenet5", implementation, str(epochs)]
        lenet5[implementation] = run_worker(command)
    for implementation in ("xconv", "torch"):
        command = ["benchmarks._record_worker", "resnet20", implementation, str(batches)]
        resnet20[implementation] = run_worker(command)
    after = machine_load()
    result = {
        "benchmark": "record",
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "lenet5": {"epochs": epochs, **lenet5},
        "resnet20": {"batches": batches, "loss_every": LOSS_EVERY, **resnet20},
        "environment": environment,
        "load_before": before,
        "load_after": after,
    }
    print(format_markdown(result))
    return result


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def format_markdown(result: dict[str, Any]) -> str:
    """The record's tables, as `run` prints them."""
    env = result["environment"]
    lenet, resnet = result["lenet5"], result["resnet20"]
    x, t = lenet["xconv"], lenet["torch"]
    per_epoch = len(x["batch_losses"]) // lenet["epochs"]
    out = [
        f"# Accuracy record: xconv (NumPy) next to PyTorch CPU, {result['date']}",
        "",
        f"`{result.get('command', 'python -m benchmarks record')}`",
        "",
        f"Machine: {env['processor']}, {env['cpus']} CPUs ({env.get('node')}); "
        f"versions {env.get('versions')}; BLAS {env['blas']}; "
        f"threads: xconv {x['threads']} (BLAS), torch {t['threads']}.",
        load_note(result["load_before"], result["load_after"], env["cpus"])
        + " The accuracies and losses do not depend on the load; the seconds do.",
        f"`uptime` before: {result['load_before']['uptime']}; "
        f"after: {result['load_after']['uptime']}.",
        "",
        f"## LeNet-5 on {x['data']}",
        "",
        f"`xconv.models.lenet5()`, {lenet['epochs']} epoch(s), batch {x['batch_size']}, Adam "
        "(its default), float32; PyTorch from the same initial weights, same batches.",
        "",
        "| epoch | xconv train loss | torch train loss | xconv test acc | torch test acc "
        "| xconv s | torch s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for epoch in range(lenet["epochs"]):
        part = slice(epoch * per_epoch, (epoch + 1) * per_epoch)
        out.append(
            f"| {epoch + 1} | {_mean(x['batch_losses'][part]):.4f} "
            f"| {_mean(t['batch_losses'][part]):.4f} | {x['test_accuracy'][epoch]:.4f} "
            f"| {t['test_accuracy'][epoch]:.4f} | {x['epoch_seconds'][epoch]:.1f} "
            f"| {t['epoch_seconds'][epoch]:.1f} |"
        )
    final = x["test_accuracy"][-1]
    out += [
        "",
        f"xconv's test accuracy after {lenet['epochs']} epoch(s): **{final:.4f}** "
        f"({'meets' if final >= 0.99 else 'misses'} the goal >= 0.99); PyTorch's: "
        f"{t['test_accuracy'][-1]:.4f}.",
    ]
    x, t = resnet["xconv"], resnet["torch"]
    n, every = resnet["batches"], resnet["loss_every"]
    whole = n >= x["batches_per_epoch"]
    out += [
        "",
        f"## ResNet-20 on {x['data']}",
        "",
        f"`xconv.models.resnet20()`, batch {x['batch_size']}, SGD 0.1 with momentum 0.9 and "
        "weight decay 1e-4 (its default), float32; "
        + (
            f"the whole first epoch ({n} batches)"
            if whole
            else f"the first {n} of the first epoch's {x['batches_per_epoch']} batches "
            "(not a whole epoch)"
        )
        + "; PyTorch from the same initial weights, same batches. Mean training loss "
        f"per {every} batches:",
        "",
        "| batches | xconv loss | torch loss | difference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for start in range(0, n, every):
        a = _mean(x["batch_losses"][start : start + every])
        b = _mean(t["batch_losses"][start : start + every])
        out.append(f"| {start + 1}-{min(start + every, n)} | {a:.4f} | {b:.4f} | {a - b:+.4f} |")
    out += [
        "",
        f"First batch: xconv {x['batch_losses'][0]:.6f}, torch {t['batch_losses'][0]:.6f}. "
        f"Seconds of training: xconv {x['seconds']:.1f}, torch {t['seconds']:.1f}.",
    ]
    return "\n".join(out)
