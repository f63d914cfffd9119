"""``python -m benchmarks delegation``: xconv on torch tensors and JAX arrays against
the library's own convolution, on the anchor shapes of ``benchmarks conv``.

Four implementations, float32, forward and forward+backward (input, weight and bias
gradients): ``torch`` (``F.conv2d`` and autograd), ``xconv-torch`` (`conv2d` and
`conv2d_backward` on torch tensors, delegated to ``torch.nn.functional``), ``jax``
(``lax.conv_general_dilated`` and ``jax.vjp``, jitted) and ``xconv-jax`` (xconv's ops
on JAX arrays, jitted). A library and xconv on its arrays run in one worker process,
in turn (each sample a batch of calls of at least 5 ms), so that both meet the same
allocator and caches: in separate processes glibc's heap settles differently from one
process to the next, and a shape took 1.5 ms in one torch process and 4.7 ms in
another (faulting its freed pages in again), more than any difference between the two
calls. Each round is a fresh worker
per library; every figure is the median over rounds of a median over calls. The
ratios are xconv's time over its library's native time (issue 18's target: within
1.1x).

Run as a worker: ``python -m benchmarks._delegation LIBRARY REPEATS INDEX...``
(LIBRARY: ``torch`` or ``jax``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from ._common import geomean, machine_load, record, run_worker
from ._conv_worker import SHAPES, _inputs
from ._conv_worker import _steps as conv_steps

IMPLEMENTATIONS = ["torch", "xconv-torch", "jax", "xconv-jax"]
PAIRS = {"xconv-torch": "torch", "xconv-jax": "jax"}

Step = Callable[[], Any]


def _torch_steps(implementation: str, shape: tuple[int, ...]) -> tuple[Step, Step]:
    import torch

    if implementation == "torch":  # F.conv2d and autograd, as `benchmarks conv` times it
        return conv_steps("torch", shape)
    stride, pad = shape[6], shape[7]
    x, weight, bias, grad = (torch.from_numpy(a) for a in _inputs(shape))
    from xconv.functional import conv2d, conv2d_backward

    def xconv_both() -> Any:
        # the output lives through the backward pass, as autograd's does in `both` (and
        # as a network's does): freed before it, the allocator hands its pages back and
        # faults them in again, which times glibc's heap rather than the convolution
        out = conv2d(x, weight, bias, stride=stride, padding=pad)
        return out, conv2d_backward(grad, x, weight, stride=stride, padding=pad)

    return (lambda: conv2d(x, weight, bias, stride=stride, padding=pad)), xconv_both


def _jax_steps(implementation: str, shape: tuple[int, ...]) -> tuple[Step, Step]:
    import jax
    import jax.numpy as jnp

    stride, pad = shape[6], shape[7]
    x, weight, bias, grad = (jnp.asarray(a) for a in _inputs(shape))
    if implementation == "jax":

        def conv(x: Any, w: Any, b: Any) -> Any:
            out = jax.lax.conv_general_dilated(
                x,
                w,
                (stride, stride),
                ((pad, pad), (pad, pad)),
                dimension_numbers=("NCHW", "OIHW", "NCHW"),
            )
            return out + b[None, :, None, None]

        def native_both(x: Any, w: Any, b: Any, g: Any) -> Any:
            out, pullback = jax.vjp(conv, x, w, b)
            return out, pullback(g)

        forward, both = jax.jit(conv), jax.jit(native_both)
    else:
        from xconv.functional import conv2d, conv2d_backward

        def xconv_forward(x: Any, w: Any, b: Any) -> Any:
            return conv2d(x, w, b, stride=stride, padding=pad)

        def xconv_both(x: Any, w: Any, b: Any, g: Any) -> Any:
            out = conv2d(x, w, b, stride=stride, padding=pad)
            return out, conv2d_backward(g, x, w, stride=stride, padding=pad)

        forward, both = jax.jit(xconv_forward), jax.jit(xconv_both)
    return (
        lambda: jax.block_until_ready(forward(x, weight, bias)),
        lambda: jax.block_until_ready(both(x, weight, bias, grad)),
    )


#: each timed sample covers at least this long (calls batched): a jitted call of
#: 0.3 ms jitters by half its time alone, more than the difference being measured
SAMPLE_SECONDS = 0.005


def _paired_seconds(steps: dict[str, Step], repeats: int) -> dict[str, float]:
    """Median seconds per call of each step: `repeats` samples each, the steps in turn,
    each sample a batch of calls lasting at least `SAMPLE_SECONDS`."""
    batch = 1
    for step in steps.values():
        step()  # warm-up: compilation, first-call page faults
        start = time.perf_counter()
        step()
        once = time.perf_counter() - start
        batch = max(batch, math.ceil(SAMPLE_SECONDS / max(once, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(batch):
                step()
            times[name].append((time.perf_counter() - start) / batch)
    return {name: statistics.median(t) for name, t in times.items()}


def _worker(library: str, repeats: int, indices: list[int]) -> list[dict[str, Any]]:
    """For each shape: the library's and xconv's steps, alternated, in this process."""
    make = _jax_steps if library == "jax" else _torch_steps
    names = [library, f"xconv-{library}"]
    results = []
    for index in indices:
        shape = SHAPES[index]
        steps = {name: make(name, shape) for name in names}
        forward = _paired_seconds({name: steps[name][0] for name in names}, repeats)
        both = _paired_seconds({name: steps[name][1] for name in names}, repeats)
        results.append(
            {
                name: {"forward_s": forward[name], "forward_backward_s": both[name]}
                for name in names
            }
        )
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time every implementation on every anchor shape, alternated; return the result."""
    rounds = args.repeats or (1 if args.quick else 3)
    repeats = "3" if args.quick else "15"
    indices = [str(i) for i in range(len(SHAPES))]
    before = machine_load()
    timed: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in IMPLEMENTATIONS}
    for _ in range(rounds):
        for library in ("torch", "jax"):
            shapes = run_worker(["benchmarks._delegation", library, repeats, *indices])
            for name in (library, f"xconv-{library}"):
                timed[name].append([shape[name] for shape in shapes])
    after = machine_load()
    rows = []
    for i, shape in enumerate(SHAPES):
        row: dict[str, Any] = {"shape": shape}
        for name in IMPLEMENTATIONS:
            row[name] = {
                key: statistics.median(r[i][key] for r in timed[name])
                for key in ("forward_s", "forward_backward_s")
            }
        rows.append(row)
    ratios = {
        name: {
            key: geomean([r[name][key] / r[native][key] for r in rows])
            for key in ("forward_s", "forward_backward_s")
        }
        for name, native in PAIRS.items()
    }
    result = record(
        "delegation",
        before,
        after,
        rounds=rounds,
        timed_calls_per_round=int(repeats),
        shapes=rows,
        geomean_ratio_to_native=ratios,
    )
    print(table(result))
    return result


def table(result: dict[str, Any]) -> str:
    """The result as markdown: one row per shape, xconv next to its library's native."""
    lines = [
        f"conv2d float32, xconv delegated vs the library's own, median over "
        f"{result['rounds']} rounds x {result['timed_calls_per_round']} calls (each "
        "library and xconv alternated call by call in one process per round)",
        "",
        "| shape (N,C,H,W,F,k,s,p) | torch fwd+bwd ms | xconv-torch | ratio | "
        "jax (jit) fwd+bwd ms | xconv-jax (jit) | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["shapes"]:
        cells = []
        for name, native in PAIRS.items():
            mine, theirs = row[name]["forward_backward_s"], row[native]["forward_backward_s"]
            cells += [f"{theirs * 1e3:.2f}", f"{mine * 1e3:.2f}", f"{mine / theirs:.2f}"]
        lines.append(f"| {tuple(row['shape'])} | " + " | ".join(cells) + " |")
    lines += ["", "| xconv on | geomean fwd / native | geomean fwd+bwd / native |"]
    lines.append("| --- | ---: | ---: |")
    for name, ratio in result["geomean_ratio_to_native"].items():
        lines.append(f"| {name} | {ratio['forward_s']:.2f} | {ratio['forward_backward_s']:.2f} |")
    lines += ["", result["load_note"]]
    return "\n".join(lines)


if __name__ == "__main__":
    name, count, *shape_indices = sys.argv[1:]
    if name not in PAIRS.values():
        raise SystemExit(f"unknown library {name!r}; known: {', '.join(PAIRS.values())}")
    print(json.dumps(_worker(name, int(count), [int(i) for i in shape_indices])))
