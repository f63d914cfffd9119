"""CuPy: NumPy-like arrays on an NVIDIA GPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from xconv._typing import Array, Namespace
from xconv._validation import as_int

from ._base import Backend

# DLPack device types (dlpack.h): where an exported array's memory lives
_DLPACK_CPU = 1
_DLPACK_CUDA_DEVICES = frozenset({2, 13})  # kDLCUDA, kDLCUDAManaged


class CupyBackend(Backend):
    """``cupy.ndarray`` through ``array_api_compat.cupy``.

    Available only where CuPy imports and sees a CUDA device (the one asked for, with
    `device`). New arrays go to `default_device`: device number `device` if given,
    else the current device (``cupy.cuda.Device()``). Outputs of xconv's ops stay on
    their inputs' device. xconv's im2col and col2im run as single CUDA kernels on
    CuPy arrays (xconv/functional/_kernels/_cupy.py).

    Random numbers are drawn on the host from the model's NumPy generator and copied
    over, so one seed gives the same numbers as on every other backend.

    Args:
        device: CUDA device number for new arrays; None follows the current device.

    Example:
        >>> CupyBackend(device=1)
        <xconv backend 'cupy' on cuda:1>
    """

    name = "cupy"
    module = "cupy"
    array_api_name = "cupy"
    extra = "cupy"
    #: a GPU pays a kernel launch per chunk and has memory to spare: chunk far less
    workspace_bytes = 2**30

    def __init__(self, *, device: int | None = None) -> None:
        super().__init__()
        number = None if device is None else as_int(device)
        if device is not None and number is None:
            raise TypeError(f"`device` must be a CUDA device number or None, got {device!r}")
        if number is not None and number < 0:
            raise ValueError(f"`device` must be a CUDA device number >= 0, got {device!r}")
        self.device = number

    def __repr__(self) -> str:
        where = "the current device" if self.device is None else f"cuda:{self.device}"
        return f"<xconv backend {self.name!r} on {where}>"

    def with_device(self, device: int | None, /) -> CupyBackend:
        """A CuPy backend like this one whose new arrays go to CUDA device `device`."""
        return type(self)(device=device)

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
        if self.device is not None and self.device >= count:
            return f"CUDA device {self.device} was asked for but cupy sees {count} device(s)"
        return None

    @property
    def namespace(self) -> Namespace:
        import array_api_compat.cupy

        return array_api_compat.cupy

    @property
    def default_device(self) -> Any:
        return self.library.cuda.Device(self.device)

    def _device(self, device: Any) -> Any:
        """`device` (None, a number or a ``cupy.cuda.Device``) as a ``cupy.cuda.Device``."""
        cuda = self.library.cuda
        if device is None:
            return self.default_device
        if isinstance(device, cuda.Device):
            return device
        if as_int(device) is not None:
            return cuda.Device(as_int(device))
        raise TypeError(
            f"`device` must be None, a CUDA device number or a cupy.cuda.Device, got {device!r}"
        )

    def asarray(self, a: Any, /, *, dtype: Any = None, device: Any = None) -> Array:
        """A copy of `a` on CUDA device `device` (default: `default_device`).

        `a` may be host data (NumPy arrays, sequences, any DLPack array in host memory)
        or a GPU array of CuPy or of another library that exports DLPack (a CUDA
        ``torch.Tensor``, a JAX array on a GPU): those are read on the GPU, with no
        trip through the host.
        """
        cupy = self.library
        if isinstance(dtype, str):
            dtype = getattr(cupy, dtype)
        target = self._device(device)
        source = self._source(a)
        with target:
            if isinstance(source, cupy.ndarray) and source.device.id != target.id:
                source = source.copy()  # `copy` is CuPy's way from one GPU to another
            return cupy.array(source, dtype=dtype, copy=True)

    def _source(self, a: Any) -> Any:
        """`a` as something ``cupy.array`` copies from: a CuPy view or host data."""
        cupy = self.library
        if isinstance(a, (cupy.ndarray, np.ndarray)):
            return a
        exported = getattr(a, "__dlpack_device__", None)
        if exported is not None:
            kind = int(exported()[0])
            if kind in _DLPACK_CUDA_DEVICES:
                return cupy.from_dlpack(a)  # zero-copy view of the other library's memory
            if kind == _DLPACK_CPU:
                return np.from_dlpack(a)
        return np.asarray(a)

    def to_numpy(self, x: Array, /) -> np.ndarray:
        """A host copy of `x` (a device-to-host transfer; it waits for `x`'s producers)."""
        return x.get()  # type: ignore[no-any-return]

    def synchronize(self, *arrays: Array) -> None:
        """Wait for every queued kernel on the devices of `arrays` (default: `default_device`)."""
        devices = {array.device.id for array in arrays} or {self.default_device.id}
        for device in sorted(devices):
            self.library.cuda.Device(device).synchronize()
