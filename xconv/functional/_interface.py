"""The seam between xconv's generic ops and one array library's fast kernels.

`Kernels` declares everything a library's kernels may take over. Each public op asks
for its arrays' namespace once, gets that library's `Kernels` from `kernels_for`
(`_dispatch`), and hands it down with the namespace; the generic code calls a hook and
runs its own array-API code wherever the hook answers None. So this class, as it is,
is "no fast kernels": every whole-op hook answers None and every building block is
the plain array-API operation. A library's module under `_kernels/` subclasses it
and overrides what it does better; it imports this module, `_geometry` and `_chunks`,
never the generic ops, another library's kernels or a layer.

Two kinds of hook:

- **ops**: a whole convolution, pooling, activation, normalization or interpolation
  pass (PyTorch's and JAX's own kernels, NumPy's row-layout convolution and fused
  passes).
  Arguments are already checked. None means "not these arrays": an unsupported dtype,
  or a geometry the library's kernel cannot express.
- **building blocks** of xconv's own im2col convolution: im2col/col2im, scratch
  buffers, the matrix product, running batch chunks on threads (NumPy's in-place
  kernels and threads, CuPy's CUDA kernels, Dask's chunk-by-chunk tasks).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from xconv._typing import Array, Namespace

from ._geometry import ConvGeometry

__all__ = ["Blocks", "Kernels"]

#: how a library of chunked arrays (Dask) runs an op on one chunk: (block, geometry) -> block
Blocks = Callable[[Array, ConvGeometry], Array]


class Kernels:
    """A library's fast kernels: here, none (every op runs xconv's generic code).

    Args:
        xp: the array-API namespace the kernels are for.
    """

    #: how `xconv info` and error messages name these kernels
    name = "generic"

    def __init__(self, xp: Namespace) -> None:
        self.xp = xp

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

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
    ) -> tuple[Array, Any] | None:
        """``(output, columns)`` of the convolution; `columns` a `ConvColumns` or None."""
        return None

    def conv_gradients(
        self,
        grad_output: Array,
        x: Array,
        weight: Array,
        geometry: ConvGeometry,
        groups: int,
        *,
        bias: bool,
        input_gradient: bool,
    ) -> tuple[Array | None, Array, Array | None] | None:
        """All three gradients in one call (the input's None without `input_gradient`)."""
        return None

    def conv_input_gradient(
        self, grad_output: Array, weight: Array, geometry: ConvGeometry, groups: int
    ) -> Array | None:
        """The convolution's input gradient (also the transposed convolution)."""
        return None

    def conv_weight_gradient(
        self,
        grad_output: Array,
        x: Array,
        columns: Any,
        weight_shape: tuple[int, ...],
        geometry: ConvGeometry,
        groups: int,
    ) -> Array | None:
        """The weight gradient; `columns` are `conv_forward`'s, or None."""
        return None

    def conv_bias_gradient(self, grad_output: Array) -> Array | None:
        """The sum of (N, F, OH, OW) over all axes but the filters'."""
        return None

    # -- pooling -------------------------------------------------------------------------

    def max_pool(
        self, x: Array, geometry: ConvGeometry, *, keep_index: bool
    ) -> tuple[Array, Any] | None:
        """``(output, index)``: index (None unless `keep_index`) for `max_pool_gradient`.

        The geometry may be dilated, and padded past the padding asked for by
        ``ceil_mode`` (`ConvGeometry.ceil_padding`); padding is -inf, and a window whose
        real pixels are all -inf has its first real pixel as its maximum.

        An index of the library's own kind has a ``positions(geometry)`` method giving
        xconv's layout, (C, 1, N, L) window positions, for the generic gradient.
        """
        return None

    def max_pool_gradient(
        self, grad_output: Array, index: Any, geometry: ConvGeometry
    ) -> Array | None:
        """The input gradient of `max_pool` from its index."""
        return None

    def max_pool_backward(
        self, grad_output: Array, x: Array, geometry: ConvGeometry
    ) -> Array | None:
        """The input gradient of max pooling from the forward pass's input."""
        return None

    def avg_pool(
        self,
        x: Array,
        geometry: ConvGeometry,
        *,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> Array | None:
        """Average pooling: each window's sum over its divisor
        (`ConvGeometry.pool_divisors` of the two options)."""
        return None

    def avg_pool_gradient(
        self,
        grad_output: Array,
        geometry: ConvGeometry,
        *,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> Array | None:
        """The input gradient of `avg_pool`."""
        return None

    # -- activations ---------------------------------------------------------------------

    def relu(self, x: Array) -> Array | None:
        return None

    def relu_backward(self, grad_output: Array, x: Array) -> Array | None:
        return None

    def leaky_relu(self, x: Array, slope: float) -> Array | None:
        return None

    def leaky_relu_backward(self, grad_output: Array, x: Array, slope: float) -> Array | None:
        return None

    # -- batch normalization -------------------------------------------------------------

    def batch_norm_training(
        self, x: Array, weight: Array | None, bias: Array | None, eps: float
    ) -> tuple[Array, Array, Array, Any] | None:
        """``(output, mean, var, saved)``: the batch's per-channel mean and biased
        variance, and what `batch_norm_backward` needs (opaque)."""
        return None

    def batch_norm_inference(
        self,
        x: Array,
        weight: Array | None,
        bias: Array | None,
        mean: Array,
        var: Array,
        eps: float,
    ) -> Array | None:
        """The batch normalised by given statistics, scaled and shifted."""
        return None

    def batch_norm_backward(
        self, grad_output: Array, saved: Any, weight: Array | None
    ) -> tuple[Array, Array, Array] | None:
        """Gradients for input, weight and bias from `batch_norm_training`'s `saved`."""
        return None

    # -- layer and group normalization ---------------------------------------------------

    def layer_norm(
        self,
        x: Array,
        shape: tuple[int, ...],
        weight: Array | None,
        bias: Array | None,
        eps: float,
    ) -> Array | None:
        """`x` normalised over its last axes, `shape`, then scaled and shifted."""
        return None

    def layer_norm_backward(
        self,
        grad_output: Array,
        x: Array,
        shape: tuple[int, ...],
        weight: Array | None,
        eps: float,
        *,
        bias: bool,
    ) -> tuple[Array, Array | None, Array | None] | None:
        """Gradients for input, weight (None without `weight`) and bias (None unless
        `bias`), from the forward pass's input."""
        return None

    def group_norm(
        self, x: Array, groups: int, weight: Array | None, bias: Array | None, eps: float
    ) -> Array | None:
        """(N, C, *) normalised over each of `groups` groups of channels, then scaled
        and shifted per channel."""
        return None

    def group_norm_backward(
        self,
        grad_output: Array,
        x: Array,
        groups: int,
        weight: Array | None,
        eps: float,
        *,
        bias: bool,
    ) -> tuple[Array, Array | None, Array | None] | None:
        """Gradients for input, weight (None without `weight`) and bias (None unless
        `bias`), from the forward pass's input."""
        return None

    # -- adaptive pooling ----------------------------------------------------------------

    def adaptive_avg_pool(self, x: Array, output_size: tuple[int, int]) -> Array | None:
        """(N, C, H, W) or (C, H, W): the mean of each adaptive window."""
        return None

    def adaptive_avg_pool_backward(
        self, grad_output: Array, x: Array, output_size: tuple[int, int]
    ) -> Array | None:
        """The input gradient of `adaptive_avg_pool` (only `x`'s shape matters)."""
        return None

    def adaptive_max_pool(
        self, x: Array, output_size: tuple[int, int]
    ) -> tuple[Array, Array] | None:
        """``(output, indices)``: each adaptive window's first maximum in row-major
        order, and its flat index ``h * W + w`` in its plane."""
        return None

    def adaptive_max_pool_backward(
        self, grad_output: Array, x: Array, output_size: tuple[int, int]
    ) -> Array | None:
        """The input gradient of `adaptive_max_pool`, from the forward pass's input."""
        return None

    # -- interpolation -------------------------------------------------------------------

    def interpolate(
        self,
        x: Array,
        mode: str,
        outputs: tuple[int, ...],
        factors: tuple[float | None, ...],
        *,
        align_corners: bool,
    ) -> Array | None:
        """(N, C, L) or (N, C, H, W) resized to the spatial size `outputs`; `factors`:
        each axis's scale factor, or None where the source coordinates use in / out."""
        return None

    def interpolate_backward(
        self,
        grad_output: Array,
        x: Array,
        mode: str,
        outputs: tuple[int, ...],
        factors: tuple[float | None, ...],
        *,
        align_corners: bool,
    ) -> Array | None:
        """The input gradient of `interpolate` (only `x`'s shape matters)."""
        return None

    # -- building blocks of xconv's own convolution --------------------------------------

    def unfold(
        self, x: Array, geometry: ConvGeometry, *, scratch: bool, blocks: Blocks
    ) -> Array | None:
        """im2col: the columns (C * kh * kw, N * L) of a checked (N, C, H, W) array.

        With `scratch` they may come from a buffer cache (`release` them once used).
        `blocks` runs the generic op on one chunk, for libraries of chunked arrays.
        """
        return None

    def fold(self, cols: Array, geometry: ConvGeometry, *, blocks: Blocks) -> Array | None:
        """col2im, the adjoint of `unfold`: (C * kh * kw, N * L) to (N, C, H, W)."""
        return None

    def scratch_copy(self, a: Array, shape: tuple[int, ...]) -> Array | None:
        """`a` copied into a scratch buffer of `shape` (as many elements; `release` it),
        or None: no buffer cache, the generic code reshapes `a`."""
        return None

    def release(self, a: Array) -> None:
        """Give a scratch array back to the buffer cache; here, nothing to do."""

    def matmul(self, a: Array, b: Array) -> Array:
        """``a @ b`` (the public `matmul`)."""
        return a @ b

    def scratch_matmul(self, a: Array, b: Array) -> Array:
        """``a @ b`` inside an op, possibly into a scratch buffer (`release` it)."""
        return a @ b

    def chunk_threads(self, flops: float) -> int:
        """How many batch chunks of a convolution of `flops` to run at once."""
        return 1

    def map_chunks(
        self, fn: Callable[[int, int], Any], spans: Sequence[tuple[int, int]]
    ) -> list[Any]:
        """``fn(start, stop)`` for every span, in order (on threads where they pay)."""
        return [fn(start, stop) for start, stop in spans]

    def threads(self) -> contextlib.AbstractContextManager[None]:
        """The context a block of many ops (a training step) runs in; here, nothing."""
        return contextlib.nullcontext()
