"""Dask arrays: lazy, chunked NumPy (or CuPy) arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._base import KERNEL_OPS, Array, Backend

__all__ = [
    "DaskBackend",
    "chunkwise_col2im",
    "chunkwise_col2im_t",
    "chunkwise_im2col",
    "chunkwise_im2col_t",
]


class DaskBackend(Backend):
    """``dask.array`` through ``array_api_compat.dask.array``.

    xconv's functional ops stay lazy on Dask arrays: nothing is computed until you ask.
    `to_numpy` computes.

    Arrays chunked along the batch axis keep their batch chunks through every op:
    im2col and col2im run chunk by chunk (`chunkwise_im2col`, `chunkwise_col2im`),
    each chunk with its own library's code (NumPy, or CuPy for CuPy-backed chunks),
    because the generic code would build whole-batch arrays (a zero image, padding)
    and merge the chunks. A kernel you register replaces the built-in one;
    `unregister_kernel` goes back to the generic code, `reset_kernels` to the built-in
    ones.
    """

    name = "dask"
    module = "dask"
    array_api_name = "dask"
    extra = "dask"

    def __init__(self) -> None:
        super().__init__()
        self._builtin: dict[str, Callable[..., Any]] = {
            "im2col": chunkwise_im2col,
            "col2im": chunkwise_col2im,
            "im2col_t": chunkwise_im2col_t,
            "col2im_t": chunkwise_col2im_t,
        }
        self._generic: set[str] = set()

    @property
    def namespace(self) -> Any:
        import array_api_compat.dask.array

        return array_api_compat.dask.array

    lazy = True

    def persist(self, *arrays: Array) -> tuple[Array, ...]:
        from dask.base import persist

        persisted: tuple[Array, ...] = persist(*arrays)
        return persisted

    def to_numpy(self, x: Array, /) -> np.ndarray:
        return np.asarray(x.compute())

    def synchronize(self, *arrays: Array) -> None:
        # Dask is lazy: there is no queue to wait for until something is computed.
        return None

    # -- kernels: a registered one, else the built-in chunkwise one ----------------------

    def register_kernel(self, op: str, fn: Callable[..., Any], /) -> None:
        super().register_kernel(op, fn)
        self._generic.discard(op)

    def unregister_kernel(self, op: str, /) -> None:
        super().unregister_kernel(op)
        if op in KERNEL_OPS:
            self._generic.add(op)

    def reset_kernels(self) -> None:
        """Drop registered kernels and use the built-in chunkwise ones again."""
        self._kernels.clear()
        self._generic.clear()

    def kernel(self, op: str, /) -> Callable[..., Any] | None:
        registered = super().kernel(op)
        if registered is not None or op in self._generic:
            return registered
        return self._builtin.get(op)


# -- chunkwise im2col and col2im -----------------------------------------------------------
# Each batch chunk is one task: the chunk's own library unfolds (or folds) it with
# xconv's code for that library, so chunks never meet and the batch chunks stay as
# they are. The other axes are made whole first (a no-op when they already are).


def chunkwise_im2col(x: Array, geometry: Any, /) -> Array:
    """im2col of a Dask array (N, C, H, W), one task per batch chunk: (N, C*kh*kw, L)."""
    from dask.array.utils import meta_from_array

    x = x.rechunk({1: -1, 2: -1, 3: -1})
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    chunks = (x.chunks[0], (x.shape[1] * kh * kw,), (oh * ow,))
    return x.map_blocks(
        _unfold_block,
        geometry,
        chunks=chunks,
        drop_axis=3,
        dtype=x.dtype,
        meta=meta_from_array(x, ndim=3),
    )


def chunkwise_col2im(cols: Array, geometry: Any, /) -> Array:
    """col2im of Dask columns (N, C*kh*kw, L), one task per batch chunk: (N, C, H, W)."""
    from dask.array.utils import meta_from_array

    cols = cols.rechunk({1: -1, 2: -1})
    kh, kw = geometry.kernel_size
    chunks = (cols.chunks[0], (cols.shape[1] // (kh * kw),), *((s,) for s in geometry.in_size))
    return cols.map_blocks(
        _fold_block,
        geometry,
        chunks=chunks,
        new_axis=3,
        dtype=cols.dtype,
        meta=meta_from_array(cols, ndim=4),
    )


def chunkwise_im2col_t(x: Array, geometry: Any, /) -> Array:
    """The convolution's layout of im2col, (C*kh*kw, N*L), one task per batch chunk.

    Column chunk i holds the N_i * L columns of batch chunk i.
    """
    from dask.array import blockwise

    x = x.rechunk({1: -1, 2: -1, 3: -1})
    kh, kw = geometry.kernel_size
    pixels = geometry.out_size[0] * geometry.out_size[1]
    # output axes "k" (rows, new) and "i" (columns, from the batch axis "i")
    return blockwise(
        _unfold_t_block,
        "ki",
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


def chunkwise_col2im_t(cols: Array, geometry: Any, /) -> Array:
    """The adjoint of `chunkwise_im2col_t`, back to (N, C, H, W), one task per chunk.

    Column chunks must hold whole samples (multiples of L columns), as those of
    `chunkwise_im2col_t` and of products with them do; others are made so.
    """
    from dask.array import blockwise

    kh, kw = geometry.kernel_size
    pixels = geometry.out_size[0] * geometry.out_size[1]
    cols = cols.rechunk({0: -1})
    if any(size % pixels for size in cols.chunks[1]):
        cols = cols.rechunk({1: max(1, max(cols.chunks[1]) // pixels) * pixels})
    height, width = geometry.in_size
    return blockwise(
        _fold_t_block,
        "iabc",
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


def _unfold_t_block(block: Any, geometry: Any) -> Any:
    import array_api_compat

    from xconv.functional._im2col import unfold_t

    return unfold_t(block, geometry, array_api_compat.array_namespace(block))


def _fold_t_block(block: Any, geometry: Any) -> Any:
    import array_api_compat

    from xconv.functional._im2col import fold_t

    return fold_t(block, geometry, array_api_compat.array_namespace(block))


def _unfold_block(block: Any, geometry: Any) -> Any:
    # imported here: the backends layer sits above the functional one
    import array_api_compat

    from xconv.functional._im2col import unfold

    return unfold(block, geometry, array_api_compat.array_namespace(block))


def _fold_block(block: Any, geometry: Any) -> Any:
    import array_api_compat

    from xconv.functional._im2col import fold

    return fold(block, geometry, array_api_compat.array_namespace(block))
