"""Data handed to a model: checked, and converted to its backend and dtype.

`model_inputs`, `model_labels` and `take_rows` are what `NeuralNetwork` and the fit
loop call with a model; the functions below them take the backend and shapes.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from xconv import losses as _losses
from xconv._typing import Array
from xconv.backends import Backend
from xconv.data import to_categorical

from ._protocols import StepModel

__all__ = [
    "as_inputs",
    "as_labels",
    "check_backend_dtype",
    "check_finite",
    "check_label_values",
    "count_nonfinite",
    "model_inputs",
    "model_labels",
    "take_rows",
    "to_host",
]


def model_inputs(model: StepModel, X: Any, name: str = "X") -> Array:
    """`X` as an array of the model's backend and dtype, checked against its input shape."""
    expected = model.network.input_shape if model.layers else None
    return as_inputs(X, model.backend, model.dtype, expected, name)


def model_labels(model: StepModel, y: Any, n_samples: int, name: str = "y") -> Array:
    """Labels (indices or one-hot) as one-hot rows on the model's backend."""
    n_classes = math.prod(model.network.output_shape())
    categorical = isinstance(model.loss_function, _losses.CrossEntropy)
    return as_labels(
        y, model.backend, model.dtype, n_classes, n_samples, name, probabilities=categorical
    )


def take_rows(backend: Backend, a: Array, index: np.ndarray) -> Array:
    """The rows `index` (host integers) of `a`, an array of `backend`."""
    xp = backend.namespace
    # the library's own index dtype (JAX without x64 has no int64)
    index_dtype = xp.__array_namespace_info__().default_dtypes()["indexing"]
    return xp.take(a, backend.asarray(index, dtype=index_dtype), axis=0)


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
    y: Any,
    backend: Backend,
    dtype: str,
    n_classes: int,
    n_samples: int,
    name: str = "y",
    *,
    probabilities: bool = False,
) -> Array:
    """Labels (class indices or one-hot rows) as one-hot rows of `backend` in `dtype`.

    Rows must be finite; with `probabilities` (a categorical loss) each row must be
    one-hot or a probability distribution (see `check_label_values`).
    """
    host = to_host(y, backend)
    if host.ndim == 0:
        raise ValueError(f"`{name}` must hold one label per sample, got {y!r}")
    if host.shape[0] != n_samples:
        raise ValueError(f"`{name}` has {host.shape[0]} labels but X has {n_samples} samples")
    check_label_values(host, n_classes, name, probabilities=probabilities)
    if host.ndim == 1:
        host = to_categorical(host, n_classes, dtype=dtype)
    return backend.asarray(host, dtype=dtype)


def check_label_values(
    host: np.ndarray, n_classes: int, name: str = "y", *, probabilities: bool = False
) -> None:
    """Refuse labels that no loss can use: not integers in [0, n_classes) for (N,),
    non-finite rows for (N, n_classes), and, with `probabilities`, rows that are not
    one-hot or probability distributions (entries in [0, 1] summing to 1 within 1e-3).
    """
    if host.ndim == 1:
        if host.dtype.kind not in "iu":
            raise TypeError(
                f"`{name}` must hold integer class labels (N,) or one-hot rows "
                f"(N, {n_classes}), got dtype {host.dtype}"
            )
        outside = (host < 0) | (host >= n_classes)
        if np.any(outside):
            raise ValueError(
                f"`{name}` must hold labels in [0, {n_classes}) for `n_classes`={n_classes}, "
                f"got {host[outside][0]} ({int(np.count_nonzero(outside))} labels outside)"
            )
        return
    if host.ndim != 2 or host.shape[1] != n_classes:
        raise ValueError(
            f"`{name}` must be class indices (N,) or one-hot rows (N, {n_classes}), "
            f"got shape {host.shape}"
        )
    if host.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {host.dtype}")
    check_finite(host, name)
    if probabilities and host.size:
        rows = host.astype(np.float64)
        bad = np.any((rows < 0) | (rows > 1), axis=1) | (np.abs(rows.sum(axis=1) - 1) > 1e-3)
        if np.any(bad):
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"`{name}` has {int(np.count_nonzero(bad))} rows that are neither one-hot nor "
                f"probabilities summing to 1 (the first, row {first}: {host[first].tolist()})"
            )


def count_nonfinite(a: Any) -> int:
    """How many entries of `a` (any library's array) are NaN or infinite."""
    if isinstance(a, np.ndarray):
        return int(a.size - np.count_nonzero(np.isfinite(a)))
    xp = array_api_compat.array_namespace(a)
    if xp.isdtype(a.dtype, "integral"):
        return 0
    return int(xp.count_nonzero(xp.logical_not(xp.isfinite(a))))


def check_finite(a: Any, name: str = "X") -> None:
    """Refuse an array holding NaN or infinity, naming how many entries are."""
    count = count_nonfinite(a)
    if count:
        raise ValueError(
            f"`{name}` holds {count} NaN or infinite values; training on them makes every "
            "parameter NaN: clean or impute them first"
        )


def check_backend_dtype(backend: Backend, dtype: str) -> None:
    """Refuse a floating `dtype` that `backend` cannot hold (JAX without x64: float64)."""
    info = backend.namespace.__array_namespace_info__()
    held = {str(k) for k in info.dtypes(kind="real floating")}
    if dtype not in held:
        hint = (
            ": enable JAX's 64-bit mode, with the environment variable JAX_ENABLE_X64=1 "
            "or jax.config.update('jax_enable_x64', True) before creating the model"
            if backend.name == "jax"
            else ""
        )
        raise ValueError(
            f"`dtype`={dtype!r} is not available on backend {backend.name!r} "
            f"(it holds {sorted(held)}){hint}"
        )


def to_host(a: Any, backend: Backend) -> np.ndarray:
    """`a` as a NumPy array: through `backend` for its arrays, `np.asarray` otherwise."""
    if array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray):
        return np.asarray(backend.to_numpy(a))
    return np.asarray(a)
