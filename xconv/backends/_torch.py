"""PyTorch tensors, on the CPU or a CUDA device."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Array, Backend


class TorchBackend(Backend):
    """``torch.Tensor`` through ``array_api_compat.torch``.

    New tensors go to ``torch.get_default_device()``; pass ``device="cuda"`` to
    `asarray` (or move inputs yourself) to work on a GPU. xconv computes gradients
    itself and never uses autograd.
    """

    name = "torch"
    module = "torch"
    array_api_name = "torch"
    extra = "torch"

    @property
    def namespace(self) -> Any:
        import array_api_compat.torch

        return array_api_compat.torch

    @property
    def default_device(self) -> Any:
        return self.library.get_default_device()

    def asarray(self, a: Any, /, *, dtype: Any = None, device: Any = None) -> Array:
        torch = self.library
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        host = torch.from_numpy(np.array(a, copy=True))
        return host.to(device=device or self.default_device, dtype=dtype)

    def to_numpy(self, x: Array, /) -> np.ndarray:
        return x.detach().cpu().numpy()  # type: ignore[no-any-return]

    def synchronize(self, *arrays: Array) -> None:
        torch = self.library
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
