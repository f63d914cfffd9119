"""NumPy: the default backend, on the CPU."""

from __future__ import annotations

import ctypes
import functools
import sys

import numpy as np

from xconv import config
from xconv._typing import Array, Namespace

from ._base import Backend


class NumpyBackend(Backend):
    """NumPy arrays on the CPU, through ``array_api_compat.numpy``.

    xconv's functional ops take a faster path for NumPy arrays (in-place im2col and
    col2im, reused buffers, batch chunks on threads: xconv/functional/_kernels/_numpy/);
    ``xconv.config.fast_kernels = False`` runs the generic code instead.
    """

    def prepare_workspace(self) -> None:
        if config.retain_freed_memory:
            retain_freed_memory()  # asked for: once per process

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


#: glibc's mallopt parameters, and what `retain_freed_memory` sets them to
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
RETAINED_BYTES = 256 * 2**20
MMAP_BYTES = 32 * 2**20


@functools.cache
def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse; True if it agreed.

    Process-wide and irreversible, so only on request: the first NumPy convolution
    calls this (`NumpyBackend.prepare_workspace`) when
    ``xconv.config.retain_freed_memory`` is True (default False).
    Keeps up to `RETAINED_BYTES` of freed heap and takes blocks up to `MMAP_BYTES`
    from it, as a caching allocator would. A no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES) and mallopt(_M_TRIM_THRESHOLD, RETAINED_BYTES)
    )
