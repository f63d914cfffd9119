"""CuPy: NumPy-like arrays on an NVIDIA GPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Array, Backend


class CupyBackend(Backend):
    """``cupy.ndarray`` through ``array_api_compat.cupy``.

    Available only where CuPy imports and sees at least one CUDA device. New arrays go
    to the current device (``cupy.cuda.Device()``); outputs of xconv's ops stay on
    their inputs' device.
    """

    name = "cupy"
    module = "cupy"
    array_api_name = "cupy"
    extra = "cupy"

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason is not None:
            return reason
        try:
            count = self.library.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDA runtime errors, missing driver libraries
            return f"cupy cannot reach a CUDA device ({type(exc).__name__}: {exc})"
        if count < 1:
            return "cupy is installed but no CUDA device is present"
        return None

    @property
    def namespace(self) -> Any:
        import array_api_compat.cupy

        return array_api_compat.cupy

    @property
    def default_device(self) -> Any:
        return self.library.cuda.Device()

    def asarray(self, a: Any, /, *, dtype: Any = None, device: Any = None) -> Array:
        cupy = self.library
        if isinstance(dtype, str):
            dtype = getattr(cupy, dtype)
        with device if device is not None else self.default_device:
            return cupy.array(np.asarray(a), dtype=dtype, copy=True)

    def to_numpy(self, x: Array, /) -> np.ndarray:
        return x.get()  # type: ignore[no-any-return]

    def synchronize(self, *arrays: Array) -> None:
        self.library.cuda.Device().synchronize()
