"""What every one of PyTorch's kernels here takes: float32 or float64 tensors, all of
one dtype and on one device (None for an absent optional tensor)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["same_float_tensors"]

_DTYPES = (torch.float32, torch.float64)


def same_float_tensors(x: Any, *others: Any) -> bool:
    """Whether `x` is a float32 or float64 tensor and each of `others` is None or a
    tensor of `x`'s dtype on `x`'s device."""
    if not isinstance(x, torch.Tensor) or x.dtype not in _DTYPES:
        return False
    return all(
        a is None or (isinstance(a, torch.Tensor) and a.dtype == x.dtype and a.device == x.device)
        for a in others
    )
