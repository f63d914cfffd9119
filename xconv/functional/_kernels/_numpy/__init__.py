"""NumPy's kernels: `NumpyKernels`, over the modules of this package.

- `_threads`: in-place im2col/col2im, the buffer cache and result pool, batch chunks
  on threads, BLAS held to one thread (`one_thread_blas`);
- `_rows`: the convolution with one row per window, for groups == 1 and kw * C >= 16;
- `_columns`: the convolution in the column layout, and the choices between layouts;
- `_ops`: pooling without padding, relu and leaky relu;
- `_batch_norm`: batch normalization in fused passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xconv._typing import Array

from ..._chunks import ConvColumns, batch_chunks
from ..._geometry import ConvGeometry
from ..._interface import Blocks, Kernels
from . import _batch_norm, _columns, _ops, _rows, _threads

__all__ = ["NumpyKernels"]


class NumpyKernels(Kernels):
    """xconv's kernels for NumPy arrays."""

    name = "numpy"

    # -- convolution ---------------------------------------------------------------------

    def conv_forward(
        self,
        x: Array,
        weight: Array,
        bias: Array | None,
        geometry: ConvGeometry,
        groups: int,
        *,
        keep_columns: bool,
    ) -> tuple[Array, ConvColumns | None]:
        chunks = batch_chunks(x, geometry, self, filters=weight.shape[0])
        keep = keep_columns and chunks.whole_fits
        if _columns.rows_layout(groups, x.shape[1], geometry):
            return _rows.forward(x, weight, bias, geometry, chunks, keep=keep)
        return _columns.forward(x, weight, bias, geometry, groups, chunks, keep)

    def conv_weight_gradient(
        self,
        grad_output: Array,
        x: Array,
        columns: Any,
        weight_shape: tuple[int, ...],
        geometry: ConvGeometry,
        groups: int,
    ) -> Array | None:
        """Groups == 1: a product with the output gradient channels-last (`_rows`)."""
        if groups != 1:
            return None
        rows = _columns.rows_layout(groups, x.shape[1], geometry)
        if columns is not None and columns.rows != rows:
            columns = None  # (made in the other layout: `fast_kernels` changed in between)
        if columns is not None:
            chunks = columns.chunks
        else:
            chunks = batch_chunks(x, geometry, self, filters=grad_output.shape[1])
        return _rows.weight_gradient(
            grad_output, x, columns, weight_shape, geometry, chunks, rows=rows
        )

    def conv_input_gradient(
        self, grad_output: Array, weight: Array, geometry: ConvGeometry, groups: int
    ) -> Array | None:
        """A forward convolution with flipped kernels where cheaper (`as_convolution`),
        else the row layout's fold; None: the generic columns, on these kernels."""
        rows = _columns.rows_layout(groups, weight.shape[1], geometry)
        limit = _columns.ROWS_FLIP_LIMIT if rows else _columns.FOLD_OVER_UNFOLD / 2
        plan = _columns.as_convolution(weight, geometry, groups, limit=limit)
        if plan is not None:
            flipped, mirrored = plan
            out, _ = self.conv_forward(
                grad_output, flipped, None, mirrored, groups, keep_columns=False
            )
            return out
        if not rows:
            return None
        chunks = batch_chunks(
            grad_output, geometry, self, channels=weight.shape[1], filters=weight.shape[0]
        )
        return _rows.input_gradient(grad_output, weight, geometry, chunks)

    def conv_bias_gradient(self, grad_output: Array) -> Array | None:
        return _columns.bias_gradient(grad_output)

    # -- pooling -------------------------------------------------------------------------

    def max_pool(
        self, x: Array, geometry: ConvGeometry, *, keep_index: bool
    ) -> tuple[Array, Any] | None:
        if not _ops.pooling_supported(x, geometry):
            return None
        out = _ops.max_pool(x, geometry)
        return out, (_ops.MaxPoolIndex(x, out) if keep_index else None)

    def max_pool_gradient(
        self, grad_output: Array, index: Any, geometry: ConvGeometry
    ) -> Array | None:
        if not isinstance(index, _ops.MaxPoolIndex):
            return None
        if not _ops.pooling_supported(index.x, geometry, grad_output):
            return None  # (another gradient dtype: the generic code, from `positions`)
        return _ops.max_pool_backward(grad_output, index.x, index.out, geometry)

    def max_pool_backward(
        self, grad_output: Array, x: Array, geometry: ConvGeometry
    ) -> Array | None:
        if not _ops.pooling_supported(x, geometry, grad_output):
            return None
        return _ops.max_pool_backward(grad_output, x, _ops.max_pool(x, geometry), geometry)

    def avg_pool(
        self,
        x: Array,
        geometry: ConvGeometry,
        *,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> Array | None:
        if not _ops.pooling_supported(x, geometry):
            return None  # (unpadded: every window's divisor is its size, or the override)
        return _ops.avg_pool(x, geometry, _ops.window_divisor(geometry, divisor_override))

    def avg_pool_gradient(
        self,
        grad_output: Array,
        geometry: ConvGeometry,
        *,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> Array | None:
        if not _ops.pooling_supported(grad_output, geometry):
            return None
        n, c = grad_output.shape[0], grad_output.shape[1]
        divisor = _ops.window_divisor(geometry, divisor_override)
        return _ops.avg_pool_backward(grad_output, (n, c, *geometry.in_size), geometry, divisor)

    # -- activations ---------------------------------------------------------------------

    def relu(self, x: Array) -> Array | None:
        return _ops.relu(x) if _ops.supported(x) else None

    def relu_backward(self, grad_output: Array, x: Array) -> Array | None:
        return _ops.relu_backward(grad_output, x) if _ops.supported(grad_output, x) else None

    def leaky_relu(self, x: Array, slope: float) -> Array | None:
        return _ops.leaky_relu(x, slope) if slope >= 0 and _ops.supported(x) else None

    def leaky_relu_backward(self, grad_output: Array, x: Array, slope: float) -> Array | None:
        if not _ops.supported(grad_output, x):
            return None
        return _ops.leaky_relu_backward(grad_output, x, slope)

    # -- batch normalization -------------------------------------------------------------

    def batch_norm_training(
        self, x: Array, weight: Array | None, bias: Array | None, eps: float
    ) -> tuple[Array, Array, Array, Any] | None:
        if not _batch_norm.takes(x, weight, bias):
            return None
        return _batch_norm.training(x, weight, bias, eps)

    def batch_norm_inference(
        self,
        x: Array,
        weight: Array | None,
        bias: Array | None,
        mean: Array,
        var: Array,
        eps: float,
    ) -> Array | None:
        if not _batch_norm.takes(x, weight, bias, mean, var):
            return None
        return _batch_norm.inference(x, weight, bias, mean, var, eps)

    def batch_norm_backward(
        self, grad_output: Array, saved: Any, weight: Array | None
    ) -> tuple[Array, Array, Array] | None:
        if not isinstance(saved, _batch_norm.FusedSaved):
            return None
        if not _batch_norm.takes(grad_output, weight) or grad_output.dtype != saved.x.dtype:
            return None
        return _batch_norm.backward(grad_output, saved, weight)

    # -- building blocks -----------------------------------------------------------------

    def unfold(
        self, x: Array, geometry: ConvGeometry, *, scratch: bool, blocks: Blocks
    ) -> Array | None:
        return _threads.unfold(x, geometry, scratch=scratch)

    def fold(self, cols: Array, geometry: ConvGeometry, *, blocks: Blocks) -> Array | None:
        return _threads.fold(cols, geometry)

    def scratch_copy(self, a: Array, shape: tuple[int, ...]) -> Array | None:
        copy = _threads.BUFFERS.take(shape, a.dtype)
        _threads.copy_into(copy.reshape(a.shape), a)
        return copy

    def release(self, a: Array) -> None:
        _threads.BUFFERS.give(a)

    def matmul(self, a: Array, b: Array) -> Array:
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            out = _threads.split_matmul(a, b)
            if out is not None:
                return out
        return a @ b

    def scratch_matmul(self, a: Array, b: Array) -> Array:
        return _threads.matmul(a, b)

    def chunk_threads(self, flops: float) -> int:
        return _threads.parallel_chunks(flops)

    def map_chunks(
        self, fn: Callable[[int, int], Any], spans: Sequence[tuple[int, int]]
    ) -> list[Any]:
        return _threads.map_chunks(fn, spans)

    def threads(self) -> contextlib.AbstractContextManager[None]:
        return _threads.one_thread_blas()
