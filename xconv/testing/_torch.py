"""PyTorch as a reference: its functions on the CPU in float64, on host copies."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

from xconv._validation import _quote

from ._checks import is_array
from ._compare import to_numpy

__all__ = ["TORCH_MISSING", "reference_torch"]

#: the reason `reference_torch` skips with where PyTorch is not installed
TORCH_MISSING = "PyTorch (the reference) is not installed: pip install 'xconv[torch]'"


def _to_torch(value: Any, torch: Any) -> Any:
    """An array argument as a CPU tensor (floating and complex ones in 64-bit)."""
    if not is_array(value):
        return value
    host = to_numpy(value)
    if host.dtype.kind == "f":
        host = host.astype(np.float64)
    elif host.dtype.kind == "c":
        host = host.astype(np.complex128)
    return torch.from_numpy(np.ascontiguousarray(host))


def _to_numpy(value: Any, torch: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, tuple | list):
        return type(value)(_to_numpy(v, torch) for v in value)
    return value


def reference_torch(fn_name: str, /, *args: Any, **kwargs: Any) -> Any:
    """PyTorch's `fn_name` on host float64 copies of the array arguments, as NumPy.

    `fn_name` names a function of ``torch.nn.functional`` (``"conv2d"``,
    ``"softmax"``), or of ``torch`` itself where ``torch.nn.functional`` has none
    (``"logsumexp"``). Every positional or keyword argument that is an array of any
    backend or device is copied to a CPU tensor -- floating arrays in float64, complex
    in complex128, integer and bool arrays as they are; other arguments pass through.
    The result (a tensor, or a tuple or list of them) comes back as NumPy arrays.

    Skips the calling test (`pytest.skip`, reason `TORCH_MISSING`) where PyTorch is not
    installed, so tests that use it need no marker. A `fn_name` that is not a str is a
    `TypeError`, one naming no such function a `ValueError`.

    Example (with PyTorch installed)::

        expected = reference_torch("conv2d", x, weight, bias, stride=2, padding=1)
        assert_close(conv2d(x, weight, bias, stride=2, padding=1), expected)
    """
    if not isinstance(fn_name, str):
        raise TypeError(f"`fn_name` must be a str, got {_quote(fn_name)}")
    if importlib.util.find_spec("torch") is None:
        pytest.skip(TORCH_MISSING)
    import torch
    import torch.nn.functional as F

    fn = getattr(F, fn_name, None) or getattr(torch, fn_name, None)
    if fn is None or not callable(fn):
        raise ValueError(
            f"`fn_name` must name a function of torch.nn.functional or torch, got {fn_name!r}"
        )
    args = tuple(_to_torch(a, torch) for a in args)
    kwargs = {key: _to_torch(value, torch) for key, value in kwargs.items()}
    with torch.no_grad():
        return _to_numpy(fn(*args, **kwargs), torch)
