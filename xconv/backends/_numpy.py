"""NumPy: the default backend, on the CPU."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xconv import config

from . import _numpy_kernels
from ._base import Array, Backend


class NumpyBackend(Backend):
    """NumPy arrays on the CPU, through ``array_api_compat.numpy``.

    Registers in-place im2col/col2im kernels for the convolution, and runs a large
    convolution's batch chunks on threads (xconv/backends/_numpy_kernels.py);
    ``xconv.config.fast_kernels = False`` or `unregister_kernel` falls back to the
    generic code.
    """

    name = "numpy"
    module = "numpy"
    array_api_name = "numpy"

    def __init__(self) -> None:
        super().__init__()
        self.register_kernel("im2col_t", _numpy_kernels.im2col_t)
        self.register_kernel("col2im_t", _numpy_kernels.col2im_t)

    def workspace_for(self, x: Array, /) -> int:
        # every convolution asks, so this is where malloc learns to keep freed memory
        if config.retain_freed_memory:
            _numpy_kernels.retain_freed_memory()
        return self.workspace_bytes

    def parallel_chunks(self, flops: float, /) -> int:
        return _numpy_kernels.parallel_chunks(flops)

    def map_chunks(
        self, fn: Callable[[int, int], Any], spans: Sequence[tuple[int, int]], /
    ) -> list[Any]:
        return _numpy_kernels.map_chunks(fn, spans)

    def unavailable_reason(self) -> str | None:
        return None  # a dependency of xconv

    @property
    def namespace(self) -> Any:
        import array_api_compat.numpy

        return array_api_compat.numpy

    def to_numpy(self, x: Array, /) -> np.ndarray:
        return np.asarray(x)
