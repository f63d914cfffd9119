"""Scale-out on Dask: lazy prediction over batch chunks, data-parallel training.

`predict` maps a model over the batch chunks of a Dask array, lazily; `fit` trains a
model on a `dask.distributed` cluster, one shard of every batch per worker. Both send
the model as two parts: a small description of its layers (classes and
constructor arguments) and its parameters as host arrays. Each worker rebuilds the
layers once and loads the parameters into its chunks' library: NumPy, CuPy for
CuPy-backed chunks, or the backend you name.

Data-parallel training without batch normalization or dropout gives the same model
as `NeuralNetwork.fit` with the same seed and batch size, up to rounding: the
gradient of each batch is the size-weighted sum of its shards' mean gradients, which
is the batch's mean gradient. With batch normalization each shard normalises with
its own statistics (as in PyTorch's DistributedDataParallel without SyncBatchNorm)
and the running statistics are the size-weighted mean of the shards'. Dropout masks
are drawn per shard from the seed, the step and the shard.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from xconv import backends as _backends
from xconv import layers as _layers
from xconv.data import to_categorical

__all__ = ["fit", "predict"]

Array = Any
_State = list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]


@dataclass(frozen=True)
class _Spec:
    """What a worker needs to rebuild a model's layers, without their arrays."""

    token: str  # names this description in the workers' caches
    layers: tuple[tuple[str, dict[str, Any]], ...]  # (class name, get_config())
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dtype: str
    loss: Any  # the model's loss object (small, no arrays)


def _spec_of(model: Any) -> _Spec:
    if not model.layers:
        raise ValueError("the model has no layers yet: add() some first")
    return _Spec(
        token=uuid.uuid4().hex,
        layers=tuple((type(layer).__name__, layer.get_config()) for layer in model.layers),
        input_shape=tuple(model.layers[0].input_shape),
        output_shape=tuple(model.layers[-1].output_shape()),
        dtype=model.dtype,
        loss=model.loss_function,
    )


def _state_of(model: Any) -> _State:
    """Parameters and buffers of every layer, as host copies."""

    def host(store: dict[str, Array]) -> dict[str, np.ndarray]:
        return {k: np.array(model.backend.to_numpy(v), copy=True) for k, v in store.items()}

    return [(host(layer.params), host(layer.buffers)) for layer in model.layers]


# -- on the workers: rebuild once per thread, load parameters per step -----------------

_replicas = threading.local()


def _replica(spec: _Spec, backend: _backends.Backend) -> list[_layers.Layer]:
    """The layers of `spec` on `backend`, built once per thread and reused."""
    cache: dict[tuple[str, str], list[_layers.Layer]] = getattr(_replicas, "cache", {})
    _replicas.cache = cache
    key = (spec.token, backend.name)
    if key not in cache:
        built: list[_layers.Layer] = []
        for name, config in spec.layers:
            layer = getattr(_layers, name)(**config)
            if built:
                layer.set_input_shape(built[-1].output_shape())
            layer.initialize(seed=0, dtype=spec.dtype, backend=backend)
            built.append(layer)
        # forget older models: one per thread is what a fit or predict needs
        cache.clear()
        cache[key] = built
        _replicas.loaded = None
    return cache[key]


def _load(layers: list[_layers.Layer], state: _State, backend: _backends.Backend) -> None:
    for layer, (params, buffers) in zip(layers, state, strict=True):
        layer.params = {k: backend.asarray(v) for k, v in params.items()}
        layer.buffers = {k: backend.asarray(v) for k, v in buffers.items()}


def _chunk_backend(block: Array, name: str | None) -> tuple[_backends.Backend, Array]:
    """The backend to compute `block` with, and `block` as an array of it."""
    if name is not None:
        backend = _backends.get(name)
        if not backend.owns_namespace(array_api_compat.array_namespace(block)):
            block = backend.asarray(np.asarray(block))
        return backend, block
    found = _backends.backend_for(array_api_compat.array_namespace(block))
    if found is None:
        raise TypeError(f"chunks of type {type(block)!r} belong to no xconv backend")
    return found, block


def _predict_block(block: Array, payload: tuple[_Spec, _State, str], backend: str | None) -> Array:
    spec, state, state_token = payload
    chosen, x = _chunk_backend(block, backend)
    layers = _replica(spec, chosen)
    # load the parameters once per thread and prediction, not once per chunk
    if getattr(_replicas, "loaded", None) != (state_token, chosen.name):
        _load(layers, state, chosen)
        _replicas.loaded = (state_token, chosen.name)
    xp = chosen.namespace
    x = xp.astype(x, getattr(xp, spec.dtype))
    for layer in layers:
        x = layer.forward_pass(x, training=False)
    return x


def predict(model: Any, X: Array, /, *, backend: str | None = None) -> Array:
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

    spec = _spec_of(model)
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
        (spec, _state_of(model), token), pure=False, traverse=False, name=f"xconv-model-{token}"
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


# -- data-parallel training -------------------------------------------------------------


def _shard_step(
    spec: _Spec,
    state: _State,
    X: Any,
    y: Any,
    index: np.ndarray | None,
    weight: float,
    seed: np.random.SeedSequence,
    backend: str,
) -> dict[str, np.ndarray]:
    """Gradients of one shard, times its share of the batch; loss and accuracy sums."""
    started = time.perf_counter()
    chosen = _backends.get(backend)
    layers = _replica(spec, chosen)
    _load(layers, state, chosen)
    _replicas.loaded = None  # not a prediction's parameters
    # dropout masks from the seed, the step and the shard
    for layer in layers:
        if not layer.params:
            layer.initialize(
                seed=np.random.default_rng(seed.spawn(1)[0]), dtype=spec.dtype, backend=chosen
            )
    x_host, y_host = (X, y) if index is None else (X[index], y[index])
    if y_host.ndim == 1:
        y_host = to_categorical(y_host, math.prod(spec.output_shape), dtype=spec.dtype)
    x = chosen.asarray(np.asarray(x_host), dtype=spec.dtype)
    target = chosen.asarray(np.asarray(y_host), dtype=spec.dtype)
    # forward, loss, backward: the layers keep their parameters' gradients
    out = x
    for layer in layers:
        out = layer.forward_pass(out, training=True)
    count = out.shape[0]
    loss, accuracy = float(spec.loss.loss(target, out)), spec.loss.acc(target, out)
    grad = spec.loss.gradient(target, out)
    for layer in reversed(layers):
        grad = layer.backward_pass(grad)
    result = {"loss": np.asarray(loss * count), "accuracy": np.asarray(accuracy * count)}
    for i, layer in enumerate(layers):
        for key, value in layer.grads.items():
            result[f"grad/{i}/{key}"] = chosen.to_numpy(value) * weight
        for key, value in layer.buffers.items():
            result[f"buffer/{i}/{key}"] = chosen.to_numpy(value) * weight
    result["compute_seconds"] = result["slowest_seconds"] = np.asarray(
        time.perf_counter() - started
    )
    return result


def _add(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # sums, except the time of the slowest shard
    return {
        key: np.maximum(a[key], b[key]) if key == "slowest_seconds" else a[key] + b[key]
        for key in a
    }


def _tree_sum(client: Any, parts: list[Any]) -> Any:
    """Sum futures pairwise, level by level: depth log2(len(parts))."""
    while len(parts) > 1:
        pairs = [
            client.submit(_add, a, b, pure=False)
            for a, b in zip(parts[::2], parts[1::2], strict=False)
        ]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def _host(a: Any, model: Any, name: str) -> Any:
    """A Dask array as it is; anything else as a NumPy array."""
    if array_api_compat.is_dask_array(a):
        return a
    if array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray):
        return np.asarray(model.backend.to_numpy(a))
    host = np.asarray(a)
    if not np.issubdtype(host.dtype, np.number):
        raise TypeError(f"`{name}` must hold numbers, got dtype {host.dtype}")
    return host


def _check_fit_data(spec: _Spec, X: Any, y: Any) -> None:
    if tuple(X.shape[1:]) != spec.input_shape:
        raise ValueError(
            f"`X` must have shape (N, {', '.join(map(str, spec.input_shape))}) for this "
            f"model, got {tuple(X.shape)}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"`X` must hold at least one sample to train on, got {tuple(X.shape)}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"`y` has {y.shape[0]} labels but X has {X.shape[0]} samples")
    n_classes = math.prod(spec.output_shape)
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] != n_classes):
        raise ValueError(
            f"`y` must be class indices (N,) or one-hot rows (N, {n_classes}), "
            f"got shape {tuple(y.shape)}"
        )


def fit(
    model: Any,
    X: Any,
    y: Any,
    *,
    client: Any,
    n_epochs: int,
    batch_size: int,
    shuffle: bool = True,
    seed: int | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    n_shards: int | None = None,
    backend: str | None = None,
    timings: list[dict[str, float]] | None = None,
) -> dict[str, list[float]]:
    """Train `model` data-parallel on a `dask.distributed` cluster.

    Every global batch (the batches of `NeuralNetwork.fit`, in the same order) is
    split into `n_shards` near-equal shards, one task each. Per step the client
    sends the current parameters once (``client.scatter(..., broadcast=True)``);
    each task computes its shard's gradients, weighted by the shard's share of the
    batch; a tree of additions sums them into the batch's mean gradient; the model's
    optimizer steps once, on the client. The layers' description goes to the
    workers once per call. A worker lost mid-training costs its tasks, which Dask
    runs again elsewhere: the result does not change.

    Args:
        model: a `NeuralNetwork` with layers; trained in place.
        X: inputs (N, *input shape), a NumPy array, an array of the model's backend
            (both sent to every worker once) or a Dask array (left where it is; each
            step gathers its shards' rows on the cluster).
        y: class indices (N,) or one-hot rows (N, classes), the same kinds.
        client: a ``dask.distributed.Client``.
        n_epochs, batch_size: as for `NeuralNetwork.fit`, positive integers.
        shuffle: reshuffle every epoch.
        seed: None (default) draws the batch order from the model's own generator,
            exactly as `NeuralNetwork.fit` would; an integer uses a fresh generator
            seeded with it. Dropout masks come from it (or the model's seed).
        callback: ``callback(epoch, logs)`` after each epoch, as in
            `NeuralNetwork.fit`.
        n_shards: shards per batch; default the number of workers at the start.
        backend: the xconv backend the workers compute with; default the model's,
            or NumPy for a model on Dask.
        timings: a list to append one dict per step to: ``seconds`` (the step on
            the client), ``scatter_seconds`` (sending parameters) and
            ``compute_seconds`` (the mean over shards of a task's own time) and
            ``slowest_compute_seconds`` (the slowest shard's, which the step waits for).

    Returns:
        The history, as `NeuralNetwork.fit` returns it: per epoch ``loss`` and
        ``accuracy`` (and ``val_loss``, ``val_accuracy`` with validation data).

    Raises:
        TypeError, ValueError: bad arguments or data; nothing is trained then.
    """
    spec = _spec_of(model)
    for name, value in (("n_epochs", n_epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    if n_shards is not None and (
        isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1
    ):
        raise ValueError(f"`n_shards` must be a positive integer, got {n_shards!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"`seed` must be a non-negative integer or None, got {seed!r}")
    if not all(hasattr(client, name) for name in ("scatter", "submit", "scheduler_info")):
        raise TypeError(f"`client` must be a dask.distributed.Client, got {client!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable, got {callback!r}")
    if backend is None:
        backend = "numpy" if model.backend.lazy else model.backend.name
    _backends.get(backend)
    X, y = _host(X, model, "X"), _host(y, model, "y")
    _check_fit_data(spec, X, y)
    n = int(X.shape[0])
    if n_shards is None:
        n_shards = max(1, len(client.scheduler_info()["workers"]))
    trainer = _Trainer(client, model, spec, X, y, n_shards, backend)
    rng = model._batch_rng if seed is None else np.random.default_rng(seed)
    base_seed = model.seed if seed is None else seed
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    if model.validation_data is not None:
        history |= {"val_loss": [], "val_accuracy": []}
    step = 0
    for epoch in range(n_epochs):
        order = rng.permutation(n) if shuffle else np.arange(n)
        total_loss = total_accuracy = 0.0
        for start in range(0, n, batch_size):
            started = time.perf_counter()
            total, scattered = trainer.step(order[start : start + batch_size], base_seed, step)
            _apply(model, total)
            total_loss += float(total["loss"])
            total_accuracy += float(total["accuracy"])
            if timings is not None:
                timings.append(
                    {
                        "seconds": time.perf_counter() - started,
                        "scatter_seconds": scattered,
                        "compute_seconds": float(total["compute_seconds"]) / trainer.n_parts,
                        "slowest_compute_seconds": float(total["slowest_seconds"]),
                    }
                )
            step += 1
        logs = {"loss": total_loss / n, "accuracy": total_accuracy / n}
        if model.validation_data is not None:
            logs["val_loss"], logs["val_accuracy"] = model.evaluate(
                *model.validation_data, batch_size=batch_size
            )
        for key, logged in logs.items():
            history[key].append(logged)
        if callback is not None:
            callback(epoch, logs)
    return history


#: tries of one step whose data a lost worker took with it (Dask reruns lost tasks
#: itself; data sent with scatter it cannot rebuild, so the step sends it again)
_STEP_ATTEMPTS = 3


def _identity(value: Any) -> Any:
    return value


def _put(client: Any, value: Any) -> Any:
    """`value` on the cluster as a task's result: Dask reruns the task if its worker dies.

    (Scattered data is lost with its worker, and a broadcast to a worker that just died
    waits for it.) Workers fetch it from one another, once per worker.
    """
    import dask

    # parameters are meant to travel with their task: no warning for a large one
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1TiB"}):
        return client.submit(_identity, value, pure=False)


class _Trainer:
    """The client's side of data-parallel steps: what is on the cluster, and one step."""

    def __init__(
        self, client: Any, model: Any, spec: _Spec, X: Any, y: Any, n_shards: int, backend: str
    ) -> None:
        self.client, self.model, self.spec = client, model, spec
        self.X, self.y = X, y
        self.n_shards, self.backend = n_shards, backend
        self.lazy_data = array_api_compat.is_dask_array(X) or array_api_compat.is_dask_array(y)
        self.n_parts = 1
        self._share()

    def _share(self) -> None:
        """Send the layers' description, and host data, to every worker."""
        client = self.client
        self.spec_future = _put(client, self.spec)
        if self.lazy_data:
            self.X, self.y = client.persist([self.X, self.y])
        else:
            self.data = client.scatter([self.X, self.y], broadcast=True, hash=False)

    def step(self, index: np.ndarray, base_seed: int, step: int) -> tuple[dict[str, Any], float]:
        """The summed shard results of one batch, and the seconds spent sending parameters."""
        from concurrent.futures import CancelledError

        for attempt in range(_STEP_ATTEMPTS):
            try:
                return self._step(index, base_seed, step)
            except (CancelledError, OSError):
                if attempt == _STEP_ATTEMPTS - 1:
                    raise
                self.client.wait_for_workers(1)
                self._share()
        raise AssertionError("unreachable")  # pragma: no cover

    def _step(self, index: np.ndarray, base_seed: int, step: int) -> tuple[dict[str, Any], float]:
        client = self.client
        started = time.perf_counter()
        # the current parameters, once per step
        state = _put(client, _state_of(self.model))
        scattered = time.perf_counter() - started
        # one task per shard; its gradients come weighted by its share of the batch
        parts = []
        for shard, rows in enumerate(np.array_split(index, min(self.n_shards, index.size))):
            if self.lazy_data:
                shard_data, where = client.compute([self.X[rows], self.y[rows]]), None
            else:
                shard_data, where = self.data, rows
            seed = np.random.SeedSequence(base_seed, spawn_key=(step, shard))
            parts.append(
                client.submit(
                    _shard_step,
                    self.spec_future,
                    state,
                    *shard_data,
                    where,
                    rows.size / index.size,
                    seed,
                    self.backend,
                    pure=False,
                )
            )
        self.n_parts = len(parts)
        # sum in a tree, then bring the one result to the client
        return _tree_sum(client, parts).result(), scattered


def _apply(model: Any, total: dict[str, np.ndarray]) -> None:
    """One optimizer step with the summed gradients; the shards' mean buffers."""
    backend = model.backend
    for i, layer in enumerate(model.layers):
        for key in list(layer.buffers):
            layer.buffers[key] = backend.asarray(total[f"buffer/{i}/{key}"], dtype=model.dtype)
        if not layer.trainable:
            continue
        for key, param in list(layer.params.items()):
            grad = backend.asarray(total[f"grad/{i}/{key}"], dtype=model.dtype)
            layer.params[key] = model.optimizer.update(f"{i}.{key}", param, grad)
    if backend.lazy:
        stores = [store for layer in model.layers for store in (layer.params, layer.buffers)]
        for store in stores:
            store.update(zip(store, backend.persist(*store.values()), strict=True))
