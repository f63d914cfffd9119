"""Lazy prediction over the batch chunks of a Dask array."""

from __future__ import annotations

import uuid

import array_api_compat
import numpy as np

from xconv import backends as _backends
from xconv._typing import Array
from xconv.training import StepModel

from ._replica import (
    Spec,
    State,
    chunk_backend,
    forward,
    load,
    replica,
    replicas,
    spec_of,
    state_of,
)

__all__ = ["predict"]


def _predict_block(block: Array, payload: tuple[Spec, State, str], backend: str | None) -> Array:
    spec, state, state_token = payload
    chosen, x = chunk_backend(block, backend)
    layers = replica(spec, chosen)
    # load the parameters once per thread and prediction, not once per chunk
    if getattr(replicas, "loaded", None) != (state_token, chosen.name):
        load(layers, state, chosen)
        replicas.loaded = (state_token, chosen.name)
    xp = chosen.namespace
    x = xp.astype(x, getattr(xp, spec.dtype))
    return forward(layers, x)


def predict(model: StepModel, X: Array, /, *, backend: str | None = None) -> Array:
    """The model's output for a Dask array `X`, as a lazy Dask array.

    One task per batch chunk runs the model in inference mode on that chunk; the
    parameters enter the graph once, as one shared task, whatever the number of
    chunks. Nothing is computed until you ask (``.compute()``, ``.persist()``, or a
    `dask.distributed` client).

    Args:
        model: a `NeuralNetwork` with layers.
        X: a Dask array (N, *input shape) of numbers; its batch axis may have any
            chunks, the other axes are made whole.
        backend: the xconv backend to compute each chunk with; None (default) is the
            chunk's own library (NumPy, or CuPy for CuPy-backed chunks).

    Returns:
        A Dask array (N, *output shape) in the model's dtype, with the batch chunks
        of `X`.

    Raises:
        TypeError: `X` is not a Dask array of numbers.
        ValueError: the model has no layers, or `X` has the wrong sample shape.

    Example:
        >>> import pytest
        >>> da = pytest.importorskip("dask.array", reason="needs pip install 'xconv[dask]'")
        >>> from xconv import NeuralNetwork
        >>> from xconv.layers import Dense
        >>> model = NeuralNetwork("sgd", "square_loss", seed=0)
        >>> model.add(Dense(3, input_shape=(2,)))
        >>> out = predict(model, da.zeros((10, 2), chunks=4))
        >>> out.shape, out.chunks[0]
        ((10, 3), (4, 4, 2))
    """
    import dask
    from dask.array.utils import meta_from_array

    spec = spec_of(model)
    if not array_api_compat.is_dask_array(X):
        raise TypeError(f"`X` must be a Dask array, got {type(X).__module__}.{type(X).__name__}")
    if not np.issubdtype(np.dtype(X.dtype), np.number):
        raise TypeError(f"`X` must hold numbers, got dtype {X.dtype}")
    if tuple(X.shape[1:]) != spec.input_shape:
        raise ValueError(
            f"`X` must have shape (N, {', '.join(map(str, spec.input_shape))}) for this "
            f"model, got {tuple(X.shape)}"
        )
    if backend is not None:
        _backends.get(backend)  # unknown or unusable names fail here, not on a worker
    # whole samples in every chunk
    X = X.rechunk(dict.fromkeys(range(1, X.ndim), -1))
    # the parameters: one task that every chunk's task reads
    token = uuid.uuid4().hex
    payload = dask.delayed(
        (spec, state_of(model), token), pure=False, traverse=False, name=f"xconv-model-{token}"
    )
    ndim = 1 + len(spec.output_shape)
    chunks = (X.chunks[0], *((size,) for size in spec.output_shape))
    return X.map_blocks(
        _predict_block,
        payload,
        backend,
        chunks=chunks,
        drop_axis=list(range(ndim, X.ndim)),
        new_axis=list(range(X.ndim, ndim)),
        dtype=np.dtype(spec.dtype),
        meta=meta_from_array(X, ndim=ndim, dtype=np.dtype(spec.dtype)),
        name=f"xconv-predict-{token}",
    )
