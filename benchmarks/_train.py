"""``python -m benchmarks train``: whole training, xconv against PyTorch, step by step.

Three workloads (`benchmarks._workloads`): issue 14's CNN on MNIST (real, from
``../shared/data/mnist``, where present), ResNet-20 on CIFAR-10-shaped images
(synthetic unless ``--cifar10 DIR``), and the ancestor's digits CNN. For each, xconv on
NumPy against the same network in PyTorch (`benchmarks._torch_mirror`: the same
initial weights, the same batches in the same order, the same number of threads), and
xconv on JAX (its step compiled) where JAX is installed.

What is timed: after WARMUP untimed steps, each of the next STEPS training steps
(forward, loss, backward, the optimizer's update) on the first batches of the first
shuffled epoch; the table gives the mean step over those, the median of it over
repeats (each run a fresh process, implementations alternating) and the epoch that
step projects to (mean step x batches per epoch). ``xconv-torch`` is xconv's model on
the torch backend (float32, its convolutions and poolings delegated to PyTorch), from
the same weights and on the same batches as ``torch``. Then a per-layer-type breakdown of
one more run per library (see `benchmarks._steps_worker`), and the digits demo's whole
50-epoch training (2 with ``--quick``) as before.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import statistics
import time
from typing import Any

from ._common import load_note, machine_load, run_worker, worker_environment

WORKLOADS = ("mnist", "resnet20", "digits")
# (warmup, steps) per workload; --quick keeps each network well under a minute
FULL = {"mnist": (5, 50), "resnet20": (3, 20), "digits": (5, 50)}
QUICK = {"mnist": (2, 5), "resnet20": (1, 2), "digits": (2, 10)}
LAYER_STEPS = {False: (2, 10), True: (1, 2)}  # (warmup, steps) of the breakdown


def implementations(quick: bool, workload: str) -> list[str]:
    """The implementations timed: xconv, torch, xconv-torch (xconv's model on the torch
    backend, issue 18's target: within 1.3x of torch), and xconv-jax where JAX is
    installed."""
    names = ["xconv", "torch", "xconv-torch"]
    # compiling ResNet-20 takes longer than --quick's budget
    if importlib.util.find_spec("jax") is not None and not (quick and workload == "resnet20"):
        names.append("xconv-jax")
    return names


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time the workloads, alternating; print the tables and return the result."""
    if getattr(args, "threads", None):
        os.environ["XCONV_BENCH_THREADS"] = str(args.threads)
    if getattr(args, "cifar10", None):
        os.environ["XCONV_BENCH_CIFAR10"] = str(args.cifar10)
    repeats = args.repeats or (1 if args.quick else 3)
    plan = QUICK if args.quick else FULL
    before = machine_load()
    environment = worker_environment()
    steps: dict[str, Any] = {}
    for workload in WORKLOADS:
        warmup, count = plan[workload]
        runs: dict[str, list[dict[str, Any]]] = {
            name: [] for name in implementations(args.quick, workload)
        }
        for _ in range(repeats):
            for name in runs:  # interleaved, so drifts in the machine's load reach each
                command = [
                    "benchmarks._steps_worker",
                    "steps",
                    workload,
                    name,
                    str(warmup),
                    str(count),
                ]
                runs[name].append(run_worker(command))
        steps[workload] = {
            "warmup_steps": warmup,
            "timed_steps": count,
            "data": runs["xconv"][0]["data"],
            "runs": runs,
            "median_step_seconds": {
                name: statistics.median(r["mean_step_seconds"] for r in rs)
                for name, rs in runs.items()
            },
            "median_projected_epoch_seconds": {
                name: statistics.median(r["projected_epoch_seconds"] for r in rs)
                for name, rs in runs.items()
            },
        }
    breakdown: dict[str, Any] = {}
    warmup, count = LAYER_STEPS[bool(args.quick)]
    for workload in WORKLOADS:
        breakdown[workload] = {
            name: run_worker(
                ["benchmarks._steps_worker", "layers", workload, name, str(warmup), str(count)]
            )
            for name in ("xconv", "torch")
        }
    digits = _digits_epochs(args, repeats)
    after = machine_load()
    result = {
        "benchmark": "train",
        "repeats": repeats,
        "steps": steps,
        "breakdown": breakdown,
        "breakdown_steps": {"warmup": warmup, "timed": count},
        "digits_training": digits,
        "environment": environment,
        "load_before": before,
        "load_after": after,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(format_markdown(result))
    return result


def _digits_epochs(args: argparse.Namespace, repeats: int) -> dict[str, Any]:
    """The digits demo's whole training, as this suite measured it before (epochs)."""
    epochs = 2 if args.quick else 50
    runs: dict[str, list[dict[str, float]]] = {"xconv": [], "torch": [], "xconv-torch": []}
    if importlib.util.find_spec("jax") is not None:
        runs["xconv-jax"] = []
        if not args.quick:  # eager JAX dispatches op by op: minutes
            runs["xconv-jax-eager"] = []
    for repeat in range(repeats):
        for implementation in runs:
            command = ["benchmarks._train_worker", implementation, str(epochs), str(repeat)]
            runs[implementation].append(run_worker(command))
    medians = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    return {
        "epochs": epochs,
        "runs": runs,
        "median_seconds": medians,
        "median_epoch_seconds": {
            name: statistics.median(r["epoch_seconds"] for r in rs) for name, rs in runs.items()
        },
        "ratio_xconv_to_torch": medians["xconv"] / medians["torch"],
        "ratio_xconv_torch_to_torch": medians["xconv-torch"] / medians["torch"],
    }


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f}"


def breakdown_table(layers: dict[str, Any]) -> list[str]:
    """Markdown rows: each layer type's forward and backward ms and share, both libraries."""
    xconv, torch = layers["xconv"]["seconds"], layers["torch"]["seconds"]
    kinds = sorted(
        {key.rsplit(" ", 1)[0] for key in itertools.chain(xconv, torch) if key != "whole step"}
    )

    def total(times: dict[str, float], kind: str) -> float:
        return times.get(f"{kind} forward", 0.0) + times.get(f"{kind} backward", 0.0)

    lines = [
        "| layer type | xconv fwd ms | xconv bwd ms | xconv share | torch fwd ms "
        "| torch bwd ms | torch share | xconv / torch |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = []
    for kind in kinds:
        x, t = total(xconv, kind), total(torch, kind)
        rows.append((x, kind, t))
    rows.sort(reverse=True)
    for x, kind, t in rows:
        lines.append(
            f"| {kind} | {_ms(xconv.get(f'{kind} forward', 0.0))} "
            f"| {_ms(xconv.get(f'{kind} backward', 0.0))} | {x / xconv['whole step']:.0%} "
            f"| {_ms(torch.get(f'{kind} forward', 0.0))} "
            f"| {_ms(torch.get(f'{kind} backward', 0.0))} | {t / torch['whole step']:.0%} "
            f"| {x / t:.2f} |"
            if t > 0
            else f"| {kind} | {_ms(xconv.get(f'{kind} forward', 0.0))} "
            f"| {_ms(xconv.get(f'{kind} backward', 0.0))} | {x / xconv['whole step']:.0%} "
            "| - | - | - | - |"
        )
    x_rest, t_rest = (
        times["whole step"] - sum(total(times, kind) for kind in kinds) for times in (xconv, torch)
    )
    lines.append(
        f"| the rest (summing gradients at forks, Python) | {_ms(x_rest)} | | "
        f"{x_rest / xconv['whole step']:.0%} | {_ms(t_rest)} | | "
        f"{t_rest / torch['whole step']:.0%} | |"
    )
    lines.append(
        f"| **whole step** | {_ms(xconv['whole step'])} | | 100% | {_ms(torch['whole step'])} "
        f"| | 100% | {xconv['whole step'] / torch['whole step']:.2f} |"
    )
    return lines


def format_markdown(result: dict[str, Any]) -> str:
    """The result's tables, as `run` prints them."""
    env = result["environment"]
    out = [
        f"Whole training steps, xconv against PyTorch ({result['date']}; "
        f"median of {result['repeats']} run(s) per implementation, fresh processes, "
        "alternating)",
        "",
        "| network | data | implementation | threads | warm-up + timed steps "
        "| s / step | projected epoch s | / torch |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for workload, measured in result["steps"].items():
        torch_step = measured["median_step_seconds"]["torch"]
        for name, seconds in measured["median_step_seconds"].items():
            threads = measured["runs"][name][0]["threads"]
            epoch = measured["median_projected_epoch_seconds"][name]
            out.append(
                f"| {workload} | {measured['data']} | {name} | {threads} "
                f"| {measured['warmup_steps']} + {measured['timed_steps']} | {seconds:.4f} "
                f"| {epoch:.1f} | {seconds / torch_step:.2f} |"
            )
    steps = result["breakdown_steps"]
    out += [
        "",
        "s / step: the mean of the timed steps (forward, loss, backward, update), the "
        "median of it over runs; projected epoch: that x batches per epoch.",
    ]
    for workload, layers in result["breakdown"].items():
        real = layers["torch"].get("real_step_seconds")
        out += [
            "",
            f"Per layer type, {workload} (medians over {steps['timed']} steps after "
            f"{steps['warmup']}; "
            + (
                "'Conv2D+tanh' is a layer with its activation inside; "
                if any("+" in key for key in layers["xconv"]["seconds"])
                else ""
            )
            + "torch's modules run one at a time"
            + (f", its real step {_ms(real)} ms" if real else "")
            + ")",
            "",
            *breakdown_table(layers),
        ]
    digits = result["digits_training"]
    out += [
        "",
        f"Digits CNN, whole training: {digits['epochs']} epochs, batch 256",
        "",
        "| implementation | median s | median epoch s (after the first) | accuracies |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, rs in digits["runs"].items():
        accuracies = ", ".join(f"{r['accuracy']:.4f}" for r in rs)
        out.append(
            f"| {name} | {digits['median_seconds'][name]:.2f} "
            f"| {digits['median_epoch_seconds'][name]:.4f} | {accuracies} |"
        )
    out += [
        "",
        f"xconv / torch (digits, whole training): {digits['ratio_xconv_to_torch']:.2f}; "
        f"xconv-torch / torch: {digits['ratio_xconv_torch_to_torch']:.2f}",
        f"BLAS: {env['blas']}",
        f"Versions: {env.get('versions')}; {env['processor']}, {env['cpus']} CPUs",
        load_note(result["load_before"], result["load_after"], env["cpus"]),
        f"uptime before: {result['load_before']['uptime']}",
        f"uptime after: {result['load_after']['uptime']}",
    ]
    return "\n".join(out)
