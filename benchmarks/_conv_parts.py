"""``python -m benchmarks conv-parts``: where NumPy's convolution spends its time.

For each anchor shape of ``benchmarks conv``, the two convolutions of the MNIST network
and the 3x3 convolutions of ResNet-20's three stages (batch 128), float32, every step
of xconv's NumPy convolution timed alone on the whole batch, in the layout xconv picks
for the shape (`_columns.rows_layout`): one row per window (`_rows`) or one column per
window (`_threads`), all in xconv/functional/_kernels/_numpy/. The steps: im2col
next to a plain copy of the same bytes;
the forward matrix product; the output's layout (the product into the (N, F, OH, OW)
result, bias added); the output gradient as a matrix; the weight-gradient and
input-gradient matrix products; col2im. The three matrix products together are the
sgemm ceiling: what an im2col convolution in that layout cannot go below on this BLAS.
Next to them, the real forward and forward+backward (`conv2d_forward` keeping its
columns, then `conv2d_gradients`, as a layer runs them; threads and chunks as
configured) and PyTorch's (``F.conv2d`` and autograd).

Each round runs in a fresh process; figures are the median over rounds of a median
over calls. Run as a worker: ``python -m benchmarks._conv_parts REPEATS``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

import numpy as np

from ._common import machine_load, record, run_worker
from ._conv_worker import SHAPES, Step, _inputs, _median_seconds
from ._conv_worker import _steps as conv_steps

#: the anchors, then the MNIST network's two convolutions and ResNet-20's three stages'
#: 3x3 convolutions, at batch 128
CASES = [
    *SHAPES,
    (128, 1, 28, 28, 32, 3, 1, 0),
    (128, 32, 13, 13, 64, 3, 1, 0),
    (128, 16, 32, 32, 16, 3, 1, 1),
    (128, 32, 16, 16, 32, 3, 1, 1),
    (128, 64, 8, 8, 64, 3, 1, 1),
]
PARTS = [
    "unfold",
    "copy",
    "gemm_forward",
    "layout",
    "grad_columns",
    "gemm_weight",
    "gemm_input",
    "fold",
    "xconv_forward",
    "xconv_forward_backward",
    "torch_forward",
    "torch_forward_backward",
]


def _case_parts(case: tuple[int, ...], calls: int) -> dict[str, float]:
    """Milliseconds of each part of one case (see the module docstring)."""

    from xconv.functional import ConvGeometry, conv2d_forward, conv2d_gradients
    from xconv.functional._kernels._numpy import _columns

    _, c, h, w, _, k, stride, pad = case
    x, weight, bias, grad = _inputs(case)
    geometry = ConvGeometry.build((h, w), (k, k), stride=stride, padding=pad)
    rows = _columns.rows_layout(1, c, geometry)
    steps = (_row_steps if rows else _column_steps)(x, weight, bias, grad, geometry)

    def xconv_forward_backward() -> Any:
        _, kept = conv2d_forward(x, weight, bias, geometry=geometry, keep_columns=True)
        return conv2d_gradients(grad, x, weight, geometry=geometry, columns=kept)

    torch_forward, torch_forward_backward = conv_steps("torch", case)
    steps |= {
        "xconv_forward": lambda: conv2d_forward(x, weight, bias, geometry=geometry),
        "xconv_forward_backward": xconv_forward_backward,
        "torch_forward": torch_forward,
        "torch_forward_backward": torch_forward_backward,
    }
    timed = {name: _median_seconds(steps[name], calls) * 1e3 for name in PARTS}
    return timed | {"rows": rows}


def _column_steps(x: Any, weight: Any, bias: Any, grad: Any, geometry: Any) -> dict[str, Step]:
    """The column layout's parts: (C * kh * kw, N * L) columns, (F, K) @ (K, N * L)."""
    from xconv.functional._kernels._numpy import _threads as _numpy_kernels

    n, f = x.shape[0], weight.shape[0]
    oh, ow = geometry.out_size
    matrix = weight.reshape(f, -1)
    cols = _numpy_kernels.unfold(x, geometry)
    product = matrix @ cols
    out = np.empty((f, n, oh, ow), dtype=np.float32).transpose(1, 0, 2, 3)
    shift = bias.reshape(1, f, 1, 1)
    grad_cols = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(f, -1)
    input_cols = matrix.T @ grad_cols

    def layout() -> None:
        np.add(product.reshape(f, n, oh, ow).transpose(1, 0, 2, 3), shift, out=out)

    return {
        "unfold": lambda: _numpy_kernels.unfold(x, geometry),
        "copy": cols.copy,
        "gemm_forward": lambda: matrix @ cols,
        "layout": layout,
        "grad_columns": lambda: np.ascontiguousarray(grad.transpose(1, 0, 2, 3)),
        "gemm_weight": lambda: grad_cols @ cols.T,
        "gemm_input": lambda: matrix.T @ grad_cols,
        "fold": lambda: _numpy_kernels.fold(input_cols, geometry),
    }


def _row_steps(x: Any, weight: Any, bias: Any, grad: Any, geometry: Any) -> dict[str, Step]:
    """The row layout's parts (`_numpy_conv`): (N * L, kh * kw * C) rows, rows @ (K, F)."""
    from xconv.functional._kernels._numpy import _rows as _numpy_conv
    from xconv.functional._kernels._numpy import _threads as _numpy_kernels

    n, f = x.shape[0], weight.shape[0]
    oh, ow = geometry.out_size
    matrix = _numpy_conv.weight_rows(weight)
    rows = _numpy_conv.unfold_rows(x, geometry).copy()
    product = rows @ matrix
    out = np.empty((n, f, oh, ow), dtype=np.float32)
    shift = bias.reshape(1, f, 1, 1)
    grad_rows = np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).reshape(-1, f)
    matrix_t = np.ascontiguousarray(matrix.T)  # (F, K), as `_numpy_conv` multiplies by
    input_rows = grad_rows @ matrix_t
    grad_input = np.empty(x.shape, dtype=np.float32)

    def unfold() -> None:
        _numpy_kernels.BUFFERS.give(_numpy_conv.unfold_rows(x, geometry))

    def layout() -> None:
        np.add(product.reshape(n, oh, ow, f).transpose(0, 3, 1, 2), shift, out=out)

    return {
        "unfold": unfold,
        "copy": rows.copy,
        "gemm_forward": lambda: rows @ matrix,
        "layout": layout,
        "grad_columns": lambda: np.ascontiguousarray(grad.transpose(0, 2, 3, 1)),
        "gemm_weight": lambda: rows.T @ grad_rows,
        "gemm_input": lambda: grad_rows @ matrix_t,
        "fold": lambda: _numpy_conv._fold_rows(input_rows, geometry, grad_input),
    }


def worker(calls: int) -> list[dict[str, float]]:
    """Every case's parts, in this process."""
    return [_case_parts(case, calls) for case in CASES]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time every case's parts in fresh processes; print and return the result."""
    rounds = args.repeats or (1 if args.quick else 3)
    calls = 3 if args.quick else 9
    before = machine_load()
    timed = [run_worker(["benchmarks._conv_parts", str(calls)]) for _ in range(rounds)]
    after = machine_load()
    rows = []
    for i, case in enumerate(CASES):
        row: dict[str, Any] = {"shape": list(case)}
        for part in PARTS:
            row[part] = statistics.median(r[i][part] for r in timed)
        row["layout_used"] = "rows" if timed[0][i]["rows"] else "columns"
        row["sgemm_ceiling"] = row["gemm_forward"] + row["gemm_weight"] + row["gemm_input"]
        rows.append(row)
    result = record(
        "conv-parts",
        before,
        after,
        rounds=rounds,
        calls=calls,
        rows=rows,
    )
    print(table(result))
    return result


def table(result: dict[str, Any]) -> str:
    """The result as markdown: the parts, then each total against the sgemm ceiling."""
    lines = [
        f"NumPy conv2d, float32, ms per call (median over {result['rounds']} fresh processes "
        f"x {result['calls']} calls); the parts run on the whole batch",
        "",
        "| shape (N,C,H,W,F,k,s,p) | layout | im2col | plain copy | GEMM fwd | layout+bias "
        "| grad matrix | GEMM dW | GEMM dX | col2im |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        cells = [f"{r[p]:.2f}" for p in PARTS[:8]]
        layout = r.get("layout_used", "columns")
        lines.append(f"| {tuple(r['shape'])} | {layout} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| shape | sgemm ceiling (3 GEMMs) | xconv fwd | xconv fwd+bwd | xconv / ceiling "
        "| torch fwd | torch fwd+bwd | torch / ceiling | xconv / torch |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        ceiling, ours, theirs = (
            r["sgemm_ceiling"],
            r["xconv_forward_backward"],
            r["torch_forward_backward"],
        )
        lines.append(
            f"| {tuple(r['shape'])} | {ceiling:.2f} | {r['xconv_forward']:.2f} | {ours:.2f} | "
            f"{ours / ceiling:.2f} | {r['torch_forward']:.2f} | {theirs:.2f} | "
            f"{theirs / ceiling:.2f} | {ours / theirs:.2f} |"
        )
    lines += ["", result["load_note"]]
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(worker(int(sys.argv[1]))))
