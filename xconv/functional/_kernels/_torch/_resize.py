"""Adaptive pooling and interpolation on PyTorch tensors by PyTorch's own kernels.

Imported only when `adaptive_avg_pool2d`, `adaptive_max_pool2d` or `interpolate` meets
torch tensors with ``xconv.config.delegate`` and ``fast_kernels`` on, never at
``import xconv``. The ATen ops that ``torch.nn.functional`` and its autograd run are
called directly, with xconv's checked output size:

- adaptive pooling: ``aten._adaptive_avg_pool2d`` and ``adaptive_max_pool2d`` (the
  same windows as xconv's, the first maximum in row-major order, its flat index
  ``h * W + w``), and their ``*_backward``; the max gradient runs the forward kernel
  again for its index (xconv's backward takes the forward pass's input). A window
  holding several NaN: PyTorch keeps its last NaN, xconv's code its first (the output
  is NaN either way; the index and the gradient's pixel differ).
- interpolation: ``aten.upsample_nearest{1,2}d``, ``_upsample_nearest_exact{1,2}d``,
  ``upsample_linear1d`` and ``upsample_bilinear2d`` and their ``*_backward``, given
  the output size and the scale factors (None where xconv uses in / out). The 2-D
  "nearest" kernel copies an axis that keeps its size and takes ``dst // 2`` on one
  that doubles, whatever the scale factor; xconv's code does the same.

Only non-empty float32 and float64 tensors are taken (an output gradient of the
input's dtype and device); anything else runs the generic code.
"""

from __future__ import annotations

from typing import Any

import torch

from ._tensors import same_float_tensors

__all__ = [
    "adaptive_avg",
    "adaptive_avg_backward",
    "adaptive_max",
    "adaptive_max_backward",
    "interpolate",
    "interpolate_backward",
    "takes",
    "takes_resize",
]


def takes(x: Any, *others: Any) -> bool:
    """Whether `x` and the tensors `others` can go to torch's kernels: float32/float64,
    `x` non-empty, one dtype and device."""
    return same_float_tensors(x, *others) and x.numel() > 0


# -- adaptive pooling -----------------------------------------------------------------


def adaptive_avg(x: Any, output_size: tuple[int, int]) -> Any:
    return torch.ops.aten._adaptive_avg_pool2d(x, list(output_size))


def adaptive_avg_backward(grad_output: Any, x: Any) -> Any:
    return torch.ops.aten._adaptive_avg_pool2d_backward(grad_output, x)


def adaptive_max(x: Any, output_size: tuple[int, int]) -> tuple[Any, Any]:
    out, indices = torch.ops.aten.adaptive_max_pool2d(x, list(output_size))
    return out, indices


def adaptive_max_backward(grad_output: Any, x: Any, output_size: tuple[int, int]) -> Any:
    _, indices = torch.ops.aten.adaptive_max_pool2d(x, list(output_size))
    return torch.ops.aten.adaptive_max_pool2d_backward(grad_output, x, indices)


# -- interpolation --------------------------------------------------------------------

_OPS = {
    ("nearest", 1): "upsample_nearest1d",
    ("nearest", 2): "upsample_nearest2d",
    ("nearest-exact", 1): "_upsample_nearest_exact1d",
    ("nearest-exact", 2): "_upsample_nearest_exact2d",
    ("linear", 1): "upsample_linear1d",
    ("bilinear", 2): "upsample_bilinear2d",
}


def takes_resize(
    x: Any,
    mode: str,
    outputs: tuple[int, ...],
    factors: tuple[float | None, ...],
    *,
    backward: bool = False,
) -> bool:
    """Whether torch's kernel gives xconv's interpolation (its gradient if `backward`).

    Not the 1-D "nearest" gradient by a scale factor that keeps or doubles the axis:
    there torch's backward copies or halves, as its 2-D kernels do, while its 1-D
    forward takes ``floor(dst / factor)`` (1.1 on 5 pixels: forward sources 0, 0, 1,
    2, 3, backward as if 0, 1, 2, 3, 4): not the gradient of its own forward.
    """
    if (mode, len(outputs)) not in _OPS:
        return False
    if backward and mode == "nearest" and len(outputs) == 1:
        (n_in,), (n_out,), (factor,) = tuple(x.shape[2:]), outputs, factors
        return factor is None or n_out not in (n_in, 2 * n_in)
    return True


def _arguments(mode: str, factors: tuple[float | None, ...], align_corners: bool) -> list[Any]:
    """The arguments after the sizes: align_corners for the linear modes, the scales."""
    corners = [align_corners] if mode in ("linear", "bilinear") else []
    return [*corners, *factors]


def interpolate(
    x: Any,
    mode: str,
    outputs: tuple[int, ...],
    factors: tuple[float | None, ...],
    align_corners: bool,
) -> Any:
    op = getattr(torch.ops.aten, _OPS[mode, len(outputs)])
    return op(x, list(outputs), *_arguments(mode, factors, align_corners))


def interpolate_backward(
    grad_output: Any,
    x: Any,
    mode: str,
    outputs: tuple[int, ...],
    factors: tuple[float | None, ...],
    align_corners: bool,
) -> Any:
    op = getattr(torch.ops.aten, _OPS[mode, len(outputs)] + "_backward")
    arguments = _arguments(mode, factors, align_corners)
    return op(grad_output, list(outputs), list(x.shape), *arguments)
