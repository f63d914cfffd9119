"""Dask arrays: lazy, chunked NumPy (or CuPy) arrays."""

from __future__ import annotations

import numpy as np

from xconv._typing import Array, Namespace

from ._base import Backend

__all__ = ["DaskBackend"]


class DaskBackend(Backend):
    """``dask.array`` through ``array_api_compat.dask.array``.

    xconv's functional ops stay lazy on Dask arrays: nothing is computed until you ask.
    `to_numpy` computes.

    Arrays chunked along the batch axis keep their batch chunks through every op:
    im2col and col2im run chunk by chunk, each chunk with its own library's code
    (NumPy, or CuPy for CuPy-backed chunks; xconv/functional/_kernels/_dask.py).
    """

    name = "dask"
    module = "dask"
    array_api_name = "dask"
    extra = "dask"

    @property
    def namespace(self) -> Namespace:
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
