"""``python -m benchmarks conv``: conv2d forward and forward+backward on the anchor shapes.

Every implementation runs in worker processes of its own (PyTorch's OpenMP pool and
OpenBLAS's threads disturb each other in one process): one process times all shapes,
and one fresh process per shape measures peak memory. Implementations alternate within
each repeat round, so drifts in the machine's load reach all of them. Float32.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from ._common import geomean, run_worker, worker_environment
from ._conv_worker import SHAPES

IMPLEMENTATIONS = ["torch", "xconv", "xconv-layer", "xconv-generic", "ancestor"]


def flops(shape: tuple[int, ...]) -> int:
    """Forward FLOPs, 2 * N * F * OH * OW * C * kh * kw; backward is twice that."""
    n, c, h, w, f, k, stride, pad = shape
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    return 2 * n * f * oh * ow * c * k * k


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time, size and tabulate every implementation; return the result."""
    rounds = args.repeats or (1 if args.quick else 3)
    repeats = "3" if args.quick else "7"  # timed calls per shape, per round
    indices = [str(i) for i in range(len(SHAPES))]
    # timing: a round runs every implementation once over all shapes, in turn
    timed: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in IMPLEMENTATIONS}
    for _ in range(rounds):
        for name in IMPLEMENTATIONS:
            timed[name].append(
                run_worker(["benchmarks._conv_worker", name, "time", repeats, *indices])
            )
    sgemm = statistics.median(
        run_worker(["benchmarks._conv_worker", "sgemm"])["sgemm_gflops"] for _ in range(rounds)
    )
    memory = {
        name: [
            run_worker(["benchmarks._conv_worker", name, "memory", index])["peak_extra_mib"]
            for index in indices
        ]
        for name in IMPLEMENTATIONS
    }
    rows = []
    for i, shape in enumerate(SHAPES):
        row: dict[str, Any] = {"shape": shape, "gflop_forward": flops(shape) / 1e9}
        for name in IMPLEMENTATIONS:
            forward = statistics.median(r[i]["forward_s"] for r in timed[name])
            both = statistics.median(r[i]["forward_backward_s"] for r in timed[name])
            row[name] = {
                "forward_s": forward,
                "forward_backward_s": both,
                "gflops_forward_backward": 3 * flops(shape) / both / 1e9,
                "peak_extra_mib": memory[name][i],
            }
        rows.append(row)
    ratios = {
        name: {
            "forward": geomean([r[name]["forward_s"] / r["torch"]["forward_s"] for r in rows]),
            "forward_backward": geomean(
                [r[name]["forward_backward_s"] / r["torch"]["forward_backward_s"] for r in rows]
            ),
        }
        for name in IMPLEMENTATIONS
    }
    result = {
        "benchmark": "conv",
        "rounds": rounds,
        "timed_calls_per_round": int(repeats),
        "sgemm_gflops": sgemm,
        "shapes": rows,
        "geomean_ratio_to_torch": ratios,
        "environment": worker_environment(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(table(result))
    return result


def table(result: dict[str, Any]) -> str:
    """The result as markdown: one row per shape and implementation, then geomeans."""
    sgemm = result["sgemm_gflops"]
    lines = [
        f"conv2d float32, median over {result['rounds']} rounds x "
        f"{result['timed_calls_per_round']} calls; sgemm ceiling {sgemm:.0f} GFLOP/s",
        "",
        "| shape (N,C,H,W,F,k,s,p) | implementation | fwd ms | fwd+bwd ms | "
        "fwd+bwd / torch | GFLOP/s | % sgemm | peak extra MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["shapes"]:
        torch_both = row["torch"]["forward_backward_s"]
        for name in IMPLEMENTATIONS:
            r = row[name]
            both = r["forward_backward_s"]
            lines.append(
                f"| {tuple(row['shape'])} | {name} | {r['forward_s'] * 1e3:.2f} | "
                f"{both * 1e3:.2f} | {both / torch_both:.2f} | "
                f"{r['gflops_forward_backward']:.1f} | "
                f"{100 * r['gflops_forward_backward'] / sgemm:.0f} | {r['peak_extra_mib']:.1f} |"
            )
    lines += ["", "| implementation | geomean fwd / torch | geomean fwd+bwd / torch |"]
    lines.append("| --- | ---: | ---: |")
    for name, ratio in result["geomean_ratio_to_torch"].items():
        lines.append(f"| {name} | {ratio['forward']:.2f} | {ratio['forward_backward']:.2f} |")
    lines += ["", f"BLAS: {result['environment']['blas']}"]
    return "\n".join(lines)
