"""PyTorch's own kernels for xconv's ops: `TorchKernels`, over `_ops` (convolution,
pooling, relu), `_batch_norm`, `_norms` (layer and group norm) and `_resize`
(adaptive pooling, interpolation); used with ``xconv.config.delegate`` on."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..._geometry import ConvGeometry
from ..._interface import Kernels
from . import _batch_norm, _norms, _ops, _resize

__all__ = ["TorchKernels"]


def _group_size(x: Any, groups: int) -> int:
    """How many values each of `groups` groups of an (N, C, *) tensor normalises."""
    return int(math.prod(x.shape[1:])) // groups


class TorchKernels(Kernels):
    """PyTorch's convolution, pooling, relu, normalization and resizing kernels on
    torch tensors."""

    name = "torch"

    # -- convolution ---------------------------------------------------------------------

    def conv_forward(
        self,
        x: Any,
        weight: Any,
        bias: Any,
        geometry: ConvGeometry,
        groups: int,
        *,
        keep_columns: bool,
    ) -> tuple[Any, None] | None:
        if not geometry.is_exact:
            return None  # (a transposed geometry torch's ops refuse)
        return _ops.conv_forward(x, weight, bias, geometry, groups), None

    def conv_gradients(
        self,
        grad_output: Any,
        x: Any,
        weight: Any,
        geometry: ConvGeometry,
        groups: int,
        *,
        bias: bool,
        input_gradient: bool,
    ) -> tuple[Any, Any, Any | None] | None:
        if not geometry.is_exact:
            return None
        return _ops.gradients(grad_output, x, weight, geometry, groups, bias, input_gradient)

    def conv_input_gradient(
        self, grad_output: Any, weight: Any, geometry: ConvGeometry, groups: int
    ) -> Any:
        if not geometry.is_exact:
            return None
        return _ops.input_gradient(grad_output, weight, geometry, groups)

    def conv_weight_gradient(
        self,
        grad_output: Any,
        x: Any,
        columns: Any,
        weight_shape: tuple[int, ...],
        geometry: ConvGeometry,
        groups: int,
    ) -> Any:
        if not geometry.is_exact:
            return None
        return _ops.weight_gradient(grad_output, x, weight_shape, geometry, groups)

    # -- pooling -------------------------------------------------------------------------

    def max_pool(
        self, x: Any, geometry: ConvGeometry, *, keep_index: bool
    ) -> tuple[Any, Any] | None:
        if keep_index:
            return _ops.max_forward_index(x, geometry)
        return _ops.max_forward(x, geometry), None

    def max_pool_gradient(self, grad_output: Any, index: Any, geometry: ConvGeometry) -> Any:
        if not isinstance(index, _ops.MaxPoolIndex | torch.Tensor):
            return None  # (another library's index)
        return _ops.max_backward(grad_output, index, geometry)

    def max_pool_backward(self, grad_output: Any, x: Any, geometry: ConvGeometry) -> Any:
        index = _ops.max_forward_index(x, geometry)[1]
        return _ops.max_backward(grad_output, index, geometry)

    def avg_pool(
        self,
        x: Any,
        geometry: ConvGeometry,
        *,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> Any:
        return _ops.avg_forward(x, geometry, count_include_pad, divisor_override)

    def avg_pool_gradient(
        self,
        grad_output: Any,
        geometry: ConvGeometry,
        *,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> Any:
        return _ops.avg_backward(grad_output, geometry, count_include_pad, divisor_override)

    # -- activations ---------------------------------------------------------------------

    def relu(self, x: Any) -> Any:
        return _ops.relu(x)

    def relu_backward(self, grad_output: Any, x: Any) -> Any:
        return _ops.relu_backward(grad_output, x)

    # -- batch normalization -------------------------------------------------------------

    def batch_norm_training(
        self, x: Any, weight: Any, bias: Any, eps: float
    ) -> tuple[Any, Any, Any, Any] | None:
        if not _batch_norm.takes(x, weight, bias):
            return None
        return _batch_norm.training(x, weight, bias, eps)

    def batch_norm_inference(
        self, x: Any, weight: Any, bias: Any, mean: Any, var: Any, eps: float
    ) -> Any:
        if not _batch_norm.takes(x, weight, bias, mean, var):
            return None
        return _batch_norm.inference(x, weight, bias, mean, var, eps)

    def batch_norm_backward(
        self, grad_output: Any, saved: Any, weight: Any
    ) -> tuple[Any, Any, Any] | None:
        if not isinstance(saved, _batch_norm.TorchSaved) or weight is None:
            return None
        if not _batch_norm.takes(grad_output, saved.x, weight):
            return None
        return _batch_norm.backward(grad_output, saved, weight)

    # -- layer and group normalization ---------------------------------------------------

    def layer_norm(
        self, x: Any, shape: tuple[int, ...], weight: Any, bias: Any, eps: float
    ) -> Any:
        if not _norms.takes(x, math.prod(shape), weight, bias):
            return None
        return _norms.layer_forward(x, shape, weight, bias, eps)

    def layer_norm_backward(
        self,
        grad_output: Any,
        x: Any,
        shape: tuple[int, ...],
        weight: Any,
        eps: float,
        *,
        bias: bool,
    ) -> tuple[Any, Any, Any] | None:
        if not _norms.takes(x, math.prod(shape), grad_output, weight):
            return None
        return _norms.layer_backward(grad_output, x, shape, weight, eps, bias)

    def group_norm(self, x: Any, groups: int, weight: Any, bias: Any, eps: float) -> Any:
        if not _norms.takes(x, _group_size(x, groups), weight, bias):
            return None
        return _norms.group_forward(x, groups, weight, bias, eps)

    def group_norm_backward(
        self, grad_output: Any, x: Any, groups: int, weight: Any, eps: float, *, bias: bool
    ) -> tuple[Any, Any, Any] | None:
        if not _norms.takes(x, _group_size(x, groups), grad_output, weight):
            return None
        return _norms.group_backward(grad_output, x, groups, weight, eps, bias)

    # -- adaptive pooling ----------------------------------------------------------------

    def adaptive_avg_pool(self, x: Any, output_size: tuple[int, int]) -> Any:
        if not _resize.takes(x):
            return None
        return _resize.adaptive_avg(x, output_size)

    def adaptive_avg_pool_backward(
        self, grad_output: Any, x: Any, output_size: tuple[int, int]
    ) -> Any:
        if not _resize.takes(x, grad_output):
            return None
        return _resize.adaptive_avg_backward(grad_output, x)

    def adaptive_max_pool(self, x: Any, output_size: tuple[int, int]) -> tuple[Any, Any] | None:
        if not _resize.takes(x):
            return None
        return _resize.adaptive_max(x, output_size)

    def adaptive_max_pool_backward(
        self, grad_output: Any, x: Any, output_size: tuple[int, int]
    ) -> Any:
        if not _resize.takes(x, grad_output):
            return None
        return _resize.adaptive_max_backward(grad_output, x, output_size)

    # -- interpolation -------------------------------------------------------------------

    def interpolate(
        self,
        x: Any,
        mode: str,
        outputs: tuple[int, ...],
        factors: tuple[float | None, ...],
        *,
        align_corners: bool,
    ) -> Any:
        if not _resize.takes(x) or not _resize.takes_resize(x, mode, outputs, factors):
            return None
        return _resize.interpolate(x, mode, outputs, factors, align_corners)

    def interpolate_backward(
        self,
        grad_output: Any,
        x: Any,
        mode: str,
        outputs: tuple[int, ...],
        factors: tuple[float | None, ...],
        *,
        align_corners: bool,
    ) -> Any:
        if not _resize.takes(x, grad_output):
            return None
        if not _resize.takes_resize(x, mode, outputs, factors, backward=True):
            return None
        return _resize.interpolate_backward(grad_output, x, mode, outputs, factors, align_corners)
