"""NumPy: the default backend, on the CPU."""

from __future__ import annotations

import numpy as np

from xconv._typing import Array, Namespace

from ._base import Backend


class NumpyBackend(Backend):
    """NumPy arrays on the CPU, through ``array_api_compat.numpy``.

    xconv's functional ops take a faster path for NumPy arrays (in-place im2col and
    col2im, reused buffers, batch chunks on threads: xconv/functional/_numpy_kernels.py);
    ``xconv.config.fast_kernels = False`` runs the generic code instead.
    """

    name = "numpy"
    module = "numpy"
    array_api_name = "numpy"

    def unavailable_reason(self) -> str | None:
        return None  # a dependency of xconv

    @property
    def namespace(self) -> Namespace:
        import array_api_compat.numpy

        return array_api_compat.numpy

    def to_numpy(self, x: Array, /) -> np.ndarray:
        return np.asarray(x)
