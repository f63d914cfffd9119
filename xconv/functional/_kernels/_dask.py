"""Dask's kernels: unfold and fold as one task per batch chunk.

The generic code would build whole-batch arrays (a zero image, padding) and merge a
Dask array's batch chunks. Instead each batch chunk is one task, in which the chunk's
own library (NumPy, or CuPy for CuPy-backed chunks) runs the per-block function the op
gives (`Blocks`: `unfold` or `fold` of xconv/functional/_im2col.py with that library's
kernels). Column chunk i holds the N_i * L columns of batch chunk i, so batch chunks
never meet. Dask is imported only when these run.
"""

from __future__ import annotations

from typing import Any

from .._geometry import ConvGeometry
from .._interface import Blocks, Kernels

__all__ = ["DaskKernels", "chunkwise_fold", "chunkwise_unfold"]


def chunkwise_unfold(x: Any, geometry: ConvGeometry, block_unfold: Blocks, /) -> Any:
    """Columns (C*kh*kw, N*L) of a Dask (N, C, H, W), `block_unfold` per batch chunk."""
    from dask.array import blockwise

    x = x.rechunk({1: -1, 2: -1, 3: -1})  # (a no-op when the other axes are whole)
    kh, kw = geometry.kernel_size
    pixels = geometry.out_size[0] * geometry.out_size[1]
    # output axes "k" (rows, new) and "i" (columns, from the batch axis "i")
    return blockwise(
        _on_block,
        "ki",
        block_unfold,
        None,
        x,
        "iabc",
        geometry,
        None,
        new_axes={"k": x.shape[1] * kh * kw},
        adjust_chunks={"i": lambda n: n * pixels},
        concatenate=True,
        dtype=x.dtype,
        meta=x._meta.reshape((0, 0)),
    )


def chunkwise_fold(cols: Any, geometry: ConvGeometry, block_fold: Blocks, /) -> Any:
    """Dask columns (C*kh*kw, N*L) summed back to (N, C, H, W), `block_fold` per chunk.

    Column chunks must hold whole samples (multiples of L columns), as those of
    `chunkwise_unfold` and of products with them do; others are made so.
    """
    from dask.array import blockwise

    kh, kw = geometry.kernel_size
    pixels = geometry.out_size[0] * geometry.out_size[1]
    cols = cols.rechunk({0: -1})
    if any(size % pixels for size in cols.chunks[1]):
        cols = cols.rechunk({1: max(1, max(cols.chunks[1]) // pixels) * pixels})
    height, width = geometry.in_size
    return blockwise(
        _on_block,
        "iabc",
        block_fold,
        None,
        cols,
        "ki",
        geometry,
        None,
        new_axes={"a": cols.shape[0] // (kh * kw), "b": height, "c": width},
        adjust_chunks={"i": lambda m: m // pixels},
        concatenate=True,
        dtype=cols.dtype,
        meta=cols._meta.reshape((0, 0, 0, 0)),
    )


def _on_block(fn: Blocks, block: Any, geometry: ConvGeometry) -> Any:
    return fn(block, geometry)


class DaskKernels(Kernels):
    """xconv's kernels for Dask arrays: unfold and fold one task per batch chunk."""

    name = "dask"

    def unfold(self, x: Any, geometry: ConvGeometry, *, scratch: bool, blocks: Blocks) -> Any:
        return chunkwise_unfold(x, geometry, blocks)

    def fold(self, cols: Any, geometry: ConvGeometry, *, blocks: Blocks) -> Any:
        return chunkwise_fold(cols, geometry, blocks)
