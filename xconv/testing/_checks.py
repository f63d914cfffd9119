"""Argument checks shared by the helpers of xconv.testing (`xconv._validation` has the
rest): each names the argument it refuses, in backquotes, and quotes the value.

>>> numeric_data(["a"], "actual")
Traceback (most recent call last):
...
TypeError: `actual` must be numeric data, got ['a'] of dtype <U1
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

import xconv.backends as backends
from xconv._validation import _quote

__all__ = ["function", "host_copy", "is_array", "numeric_data"]


def function(value: Any, name: str) -> None:
    """`value` must be callable."""
    if not callable(value):
        raise TypeError(f"`{name}` must be a function, got {_quote(value)}")


def is_array(value: Any) -> bool:
    """Whether `value` is an array of some library (a NumPy scalar or a Python number is
    not)."""
    import array_api_compat

    return isinstance(value, np.ndarray) or (
        array_api_compat.is_array_api_obj(value) and not isinstance(value, np.generic)
    )


def host_copy(value: Any, name: str) -> np.ndarray:
    """`value` on the host, as `to_numpy` copies it: an array of any registered backend,
    or a NumPy array or scalar, a Python number or a (nested) list or tuple."""
    if isinstance(value, np.ndarray | np.generic | numbers.Number | list | tuple):
        try:
            return np.asarray(value)
        except ValueError as exc:  # a ragged list: "... inhomogeneous shape ..."
            raise ValueError(f"`{name}` must be rectangular data: {exc}") from None
    import array_api_compat

    what = f"`{name}`: expected an array, got {type(value).__name__}"
    try:
        xp = array_api_compat.array_namespace(value)
    except TypeError:
        raise TypeError(
            f"{what} (not an array of a registered backend, a number, or a list or tuple)"
        ) from None
    backend = backends.backend_for(xp)
    if backend is None:
        raise TypeError(
            f"{what}, which no xconv backend handles; registered backends: "
            f"{', '.join(backends.registered())}"
        )
    return np.asarray(backend.to_numpy(value))


def numeric_data(value: Any, name: str, *, real: bool = False) -> np.ndarray:
    """`host_copy(value)`, which must hold numbers: bool, integer, floating and, unless
    `real`, complex (not strings, nor objects such as None or ints beyond int64)."""
    host = host_copy(value, name)
    if host.dtype.kind not in ("biuf" if real else "biufc"):
        what = "real numeric data (bool, integer or floating)" if real else "numeric data"
        raise TypeError(f"`{name}` must be {what}, got {_quote(value)} of dtype {host.dtype}")
    return host
