"""``python -m benchmarks mnist-recipe``: MNIST's default recipe, xconv next to PyTorch.

`xconv.models.mnist_bn` trained as `xconv.models.MNIST_RECIPE` says (what ``xconv train
--dataset mnist`` does: 3 epochs, batch 128, AdamW under a one-cycle learning rate
peaking at 0.01), float32, on xconv's NumPy backend; beside it PyTorch 2.13 CPU trains
the same network from the same initial weights on the same batches in the same order,
with the same rate at every batch (`benchmarks._recipe_worker`). Seeds 0, 1 and 2
(``--seeds``), each training in a fresh process, xconv and PyTorch alternating. The
goal: test accuracy >= 0.992 after 3 epochs on every seed. The accuracies and losses do
not depend on the machine's load; the seconds do.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._common import load_note, machine_load, run_worker, worker_environment

GOAL = 0.992
SEEDS = (0, 1, 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train every seed on both libraries; print the tables and return the result."""
    if args.threads:
        os.environ["XCONV_BENCH_THREADS"] = str(args.threads)
    epochs = args.epochs or (1 if args.quick else 3)
    seeds = list(SEEDS[:1] if args.quick else SEEDS)
    before = machine_load()
    environment = worker_environment()
    # the host's float32 matrix-product rate: ratios differ between hosts with it
    sgemm = run_worker(["benchmarks._conv_worker", "sgemm"])["sgemm_gflops"]

    def one_seed(seed: int) -> dict[str, Any]:
        entry: dict[str, Any] = {"seed": seed}
        for implementation in ("xconv", "torch"):
            command = ["benchmarks._recipe_worker", implementation, str(seed), str(epochs)]
            entry[implementation] = run_worker(command)
            entry[f"{implementation}_load_after"] = machine_load()
        return entry

    # --parallel: the seeds at once (each xconv, then PyTorch), for a loaded machine
    jobs = len(seeds) if getattr(args, "parallel", False) else 1
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(one_seed, seeds))
    after = machine_load()
    result = {
        "benchmark": "mnist-recipe",
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "epochs": epochs,
        "parallel_seeds": jobs,
        "goal": GOAL,
        "sgemm_gflops": sgemm,
        "runs": runs,
        "environment": environment,
        "load_before": before,
        "load_after": after,
    }
    print(format_markdown(result))
    return result


def format_markdown(result: dict[str, Any]) -> str:
    """The record's tables, as `run` prints them."""
    env, epochs = result["environment"], result["epochs"]
    first = result["runs"][0]
    out = [
        f"# MNIST's default recipe: xconv (NumPy) next to PyTorch CPU, {result['date']}",
        "",
        f"`{result.get('command', 'python -m benchmarks mnist-recipe')}`",
        "",
        f"Machine: {env['processor']}, {env['cpus']} CPUs ({env.get('node')}); "
        f"versions {env.get('versions')}; BLAS {env['blas']}; "
        f"threads: xconv {first['xconv']['threads']} (BLAS), torch {first['torch']['threads']}; "
        + _sgemm_note(result),
        load_note(result["load_before"], result["load_after"], env["cpus"])
        + " The accuracies and losses do not depend on the load; the seconds do.",
        f"`uptime` before: {result['load_before']['uptime']}; "
        f"after: {result['load_after']['uptime']}.",
        (
            f"The {result['parallel_seeds']} seeds ran at the same time (`--parallel`), "
            "each xconv then PyTorch: every epoch's seconds include the other seeds' load."
            if result.get("parallel_seeds", 1) > 1
            else "The seeds ran one after the other."
        ),
        "",
        f"`xconv.models.mnist_bn()` on {first['xconv']['data']}, {epochs} epoch(s), batch "
        f"{first['xconv']['batch_size']}, AdamW (weight decay 0.01) under "
        "`callbacks.OneCycle(0.01, pct_start=0.25)`, float32; PyTorch from the same initial "
        "weights, same batches, same rate at every batch.",
        "",
        "| seed | epoch | xconv train loss | torch train loss | xconv test acc "
        "| torch test acc | xconv s | torch s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for entry in result["runs"]:
        x, t = entry["xconv"], entry["torch"]
        out.extend(
            f"| {entry['seed']} | {epoch + 1} | {x['epoch_loss'][epoch]:.4f} "
            f"| {t['epoch_loss'][epoch]:.4f} | {x['test_accuracy'][epoch]:.4f} "
            f"| {t['test_accuracy'][epoch]:.4f} | {x['epoch_seconds'][epoch]:.1f} "
            f"| {t['epoch_seconds'][epoch]:.1f} |"
            for epoch in range(epochs)
        )
    finals = [entry["xconv"]["test_accuracy"][-1] for entry in result["runs"]]
    torch_finals = [entry["torch"]["test_accuracy"][-1] for entry in result["runs"]]
    met = all(value >= result["goal"] for value in finals)
    out += [
        "",
        f"xconv's test accuracy after {epochs} epoch(s): "
        + ", ".join(f"{value:.4f}" for value in finals)
        + f" (seeds {', '.join(str(e['seed']) for e in result['runs'])}): "
        f"**{'meets' if met else 'misses'} the goal >= {result['goal']}** on "
        f"{'every' if met else 'not every'} seed; PyTorch's: "
        + ", ".join(f"{value:.4f}" for value in torch_finals)
        + ".",
    ]
    ratios = [
        statistics.median(
            x / t
            for x, t in zip(
                entry["xconv"]["epoch_seconds"], entry["torch"]["epoch_seconds"], strict=True
            )
        )
        for entry in result["runs"]
    ]
    out.append(
        "Time per epoch, xconv's over PyTorch's (median over the epochs of each seed): "
        + ", ".join(f"{value:.2f}" for value in ratios)
        + "."
    )
    return "\n".join(out)


def _sgemm_note(result: dict[str, Any]) -> str:
    """The host's sgemm rate as the record gives it (older records lack it)."""
    if "sgemm_gflops" not in result:
        return "host sgemm not measured."
    note = f" ({result['sgemm_note']})" if result.get("sgemm_note") else ""
    return f"host sgemm {result['sgemm_gflops']:.0f} GFLOP/s (float32, 2048x2048){note}."
