"""PyTorch tensors, on the CPU or a CUDA device."""

from __future__ import annotations

from typing import Any

import numpy as np

from xconv._typing import Array, Namespace

from ._base import Backend

# DLPack device type (dlpack.h) of host memory
_DLPACK_CPU = 1


class TorchBackend(Backend):
    """``torch.Tensor`` through ``array_api_compat.torch``.

    New tensors go to `device` if given (``"cuda"``, ``"cuda:1"``, ``"cpu"``, a
    ``torch.device``), else to ``torch.get_default_device()``. Functional ops follow
    their input tensors' device whatever the backend says, so CUDA tensors work
    through them as they are. xconv computes gradients itself and never uses autograd.

    The registered ``"torch"`` backend follows the default device; for a model on a
    GPU, pass ``TorchBackend(device="cuda")`` as its backend, or register it in place of
    the default one (``xconv.backends.register(..., replace=True)``).

    Args:
        device: where new tensors go; None follows ``torch.get_default_device()``.

    Example:
        >>> TorchBackend(device="cuda")
        <xconv backend 'torch' on 'cuda'>
    """

    name = "torch"
    module = "torch"
    array_api_name = "torch"
    extra = "torch"

    def __init__(self, *, device: Any = None) -> None:
        super().__init__()
        if device is not None and (isinstance(device, bool) or not _device_like(device)):
            raise TypeError(
                f"`device` must be None, a device string such as 'cuda', a device number "
                f"or a torch.device, got {device!r}"
            )
        self.device = device

    def __repr__(self) -> str:
        if self.device is None:
            return super().__repr__()
        return f"<xconv backend {self.name!r} on {str(self.device)!r}>"

    def workspace_for(self, x: Array, /) -> int:
        """1 GiB for tensors on a GPU (a chunk costs kernel launches), else the CPU's."""
        return 2**30 if x.device.type != "cpu" else self.workspace_bytes

    def with_device(self, device: Any, /) -> TorchBackend:
        """A torch backend like this one whose new tensors go to `device`."""
        return type(self)(device=device)

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason is not None or self.device is None:
            return reason
        torch = self.library
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError, ValueError) as exc:
            return f"torch does not know the device {self.device!r} ({exc})"
        if device.type != "cuda":
            return None
        if not torch.cuda.is_available():
            build = torch.version.cuda
            built = f"built with CUDA {build}" if build else "a CPU-only build"
            return (
                f"device {str(self.device)!r} was asked for but torch sees no CUDA device "
                f"(torch {torch.__version__}, {built})"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            asked = f"device {str(self.device)!r} was asked for"
            return f"{asked} but torch sees {count} CUDA device(s)"
        return None

    @property
    def namespace(self) -> Namespace:
        import array_api_compat.torch

        return array_api_compat.torch

    @property
    def default_device(self) -> Any:
        torch = self.library
        if self.device is None:
            return torch.get_default_device()
        return torch.device(self.device)

    def asarray(self, a: Any, /, *, dtype: Any = None, device: Any = None) -> Array:
        """A copy of `a` as a tensor on `device` (default: `default_device`).

        `a` may be host data (NumPy arrays, sequences), a tensor, or an array of another
        library that exports DLPack: a CuPy array or a JAX array on a GPU is read on the
        GPU, with no trip through the host.
        """
        torch = self.library
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        target = device if device is not None else self.default_device
        # host data is copied here; tensors and DLPack arrays are read where they are
        shared = True
        if isinstance(a, torch.Tensor):
            source = a.detach()
        elif isinstance(a, np.ndarray) or not hasattr(a, "__dlpack_device__"):
            source, shared = torch.from_numpy(np.array(a, copy=True)), False
        elif int(a.__dlpack_device__()[0]) == _DLPACK_CPU:
            source, shared = torch.from_numpy(np.array(np.from_dlpack(a), copy=True)), False
        else:
            source = torch.from_dlpack(a)  # zero-copy view of the other library's memory
        moved = source.to(device=target, dtype=dtype)
        # `to` hands back `source` itself when nothing changes: copy, so `a` stays apart
        if shared and moved.data_ptr() == source.data_ptr():
            moved = moved.clone()
        return moved

    def to_numpy(self, x: Array, /) -> np.ndarray:
        return x.detach().cpu().numpy()  # type: ignore[no-any-return]

    def synchronize(self, *arrays: Array) -> None:
        """Wait for queued CUDA work (on the devices of `arrays`, else every one in use)."""
        torch = self.library
        if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
            return
        devices = {a.device for a in arrays if a.device.type == "cuda"}
        if arrays and not devices:
            return  # CPU tensors: nothing is queued
        for device in devices or [None]:
            torch.cuda.synchronize(device)


def _device_like(device: Any) -> bool:
    """Whether `device` could name a torch device, checked without importing torch."""
    if isinstance(device, str | int):
        return True
    return type(device).__module__ == "torch" and type(device).__name__ == "device"
