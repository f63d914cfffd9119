"""Data handed to a model: checked, and converted to its backend and dtype."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from xconv.backends import Backend
from xconv.data import to_categorical

__all__ = ["as_inputs", "as_labels", "to_host"]

Array = Any


def as_inputs(
    X: Any, backend: Backend, dtype: str, expected: tuple[int, ...] | None, name: str = "X"
) -> Array:
    """`X` as an array of `backend` in `dtype`, of shape (N, *expected) when given.

    NumPy arrays, nested lists and arrays of `backend` are accepted; arrays of another
    library are refused (never a silent copy between libraries).
    """
    xp = backend.namespace
    if isinstance(X, np.ndarray) or not array_api_compat.is_array_api_obj(X):
        try:
            host = np.asarray(X)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"`{name}` must be a rectangular array: {exc}") from None
        if not np.issubdtype(host.dtype, np.number) or host.dtype.kind == "c":
            raise TypeError(f"`{name}` must hold real numbers, got dtype {host.dtype}")
        array = backend.asarray(host, dtype=dtype)
    elif backend.owns_namespace(xp_of := array_api_compat.array_namespace(X)):
        if not xp_of.isdtype(X.dtype, ("integral", "real floating")):
            raise TypeError(f"`{name}` must hold real numbers, got dtype {X.dtype}")
        array = X if X.dtype == getattr(xp, dtype) else xp.astype(X, getattr(xp, dtype))
    else:
        raise TypeError(
            f"`{name}` is a {type(X).__module__}.{type(X).__name__}, but the model runs on "
            f"{backend.name}: pass a NumPy array or an array of {backend.name}"
        )
    if expected is not None and tuple(array.shape[1:]) != tuple(expected):
        raise ValueError(
            f"`{name}` must have shape (N, {', '.join(map(str, expected))}) for this model, "
            f"got {tuple(array.shape)}"
        )
    return array


def as_labels(
    y: Any, backend: Backend, dtype: str, n_classes: int, n_samples: int, name: str = "y"
) -> Array:
    """Labels (class indices or one-hot rows) as one-hot rows of `backend` in `dtype`."""
    host = to_host(y, backend)
    if host.ndim == 0:
        raise ValueError(f"`{name}` must hold one label per sample, got {y!r}")
    if host.shape[0] != n_samples:
        raise ValueError(f"`{name}` has {host.shape[0]} labels but X has {n_samples} samples")
    if host.ndim == 1:
        host = to_categorical(host, n_classes, dtype=dtype)
    elif host.ndim != 2 or host.shape[1] != n_classes:
        raise ValueError(
            f"`{name}` must be class indices (N,) or one-hot rows (N, {n_classes}), "
            f"got shape {host.shape}"
        )
    return backend.asarray(host, dtype=dtype)


def to_host(a: Any, backend: Backend) -> np.ndarray:
    """`a` as a NumPy array: through `backend` for its arrays, `np.asarray` otherwise."""
    if array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray):
        return np.asarray(backend.to_numpy(a))
    return np.asarray(a)
