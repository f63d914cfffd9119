"""Data-parallel training on a `dask.distributed` cluster, through the shared loop and step."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

from xconv import backends as _backends
from xconv import callbacks as _callbacks
from xconv._typing import Array
from xconv._validation import nonnegative_int, positive_int, true_or_false
from xconv.data import to_categorical
from xconv.training import (
    BatchOutcome,
    FitLoop,
    StepModel,
    TrainableModel,
    check_training_data,
    data_fingerprint,
    fit_callbacks,
    gradients,
    score_names,
)

from ._replica import Spec, State, replica, replicas, spec_of, state_of

__all__ = ["fit"]


# -- data-parallel training -------------------------------------------------------------


def _shard_step(
    spec: Spec,
    state: State,
    X: Any,
    y: Any,
    index: np.ndarray | None,
    weight: float,
    seed: np.random.SeedSequence,
    backend: str,
) -> dict[str, np.ndarray]:
    """Gradients of one shard, times its share of the batch; loss and accuracy sums.

    The shard runs the training step's `gradients`, the same code as a local `fit`.
    """
    started = time.perf_counter()
    chosen = _backends.get(backend)
    layers = replica(spec, chosen)
    replicas.loaded = None  # the layers get a step's parameters, not a prediction's
    # dropout masks from the seed, the step and the shard
    for layer in layers:
        if layer.stochastic:
            layer.initialize(
                seed=np.random.default_rng(seed.spawn(1)[0]), dtype=spec.dtype, backend=chosen
            )
    x_host, y_host = (X, y) if index is None else (X[index], y[index])
    if y_host.ndim == 1:
        y_host = to_categorical(y_host, math.prod(spec.output_shape), dtype=spec.dtype)
    x = chosen.asarray(np.asarray(x_host), dtype=spec.dtype)
    target = chosen.asarray(np.asarray(y_host), dtype=spec.dtype)
    params = [{k: chosen.asarray(v) for k, v in stores[0].items()} for stores in state]
    buffers = [{k: chosen.asarray(v) for k, v in stores[1].items()} for stores in state]
    grads, new_buffers, loss, scores = gradients(
        layers, spec.loss, params, buffers, x, target, [None] * len(layers), spec.metrics
    )
    count = x.shape[0]
    result = {"loss": np.asarray(float(loss) * count)}
    result |= {f"score/{name}": np.asarray(float(value) * count) for name, value in scores.items()}
    for i, (layer_grads, layer_buffers) in enumerate(zip(grads, new_buffers, strict=True)):
        for key, value in layer_grads.items():
            result[f"grad/{i}/{key}"] = chosen.to_numpy(value) * weight
        for key, value in layer_buffers.items():
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


def _host(a: Any, model: StepModel, name: str) -> Any:
    """A Dask array as it is; anything else as a NumPy array."""
    if array_api_compat.is_dask_array(a):
        return a
    if array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray):
        return np.asarray(model.backend.to_numpy(a))
    host = np.asarray(a)
    if not np.issubdtype(host.dtype, np.number):
        raise TypeError(f"`{name}` must hold numbers, got dtype {host.dtype}")
    return host


def fit(
    model: TrainableModel,
    X: Any,
    y: Any,
    *,
    client: Any,
    n_epochs: int,
    batch_size: int,
    shuffle: bool = True,
    seed: int | None = None,
    callbacks: Sequence[_callbacks.Callback] | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    n_shards: int | None = None,
    backend: str | None = None,
    timings: list[dict[str, float]] | None = None,
) -> dict[str, list[float]]:
    """Train `model` data-parallel on a `dask.distributed` cluster.

    Every global batch (the batches of `NeuralNetwork.fit`, in the same order) is
    split into `n_shards` near-equal shards, one task each. Per step the client
    sends the current parameters once; each task runs the training step's forward
    and backward (`xconv.training.gradients`, as a local fit does) on its shard, weighted
    by the shard's share of the batch; a tree of additions sums them into the batch's
    mean gradient; the model's optimizer steps once, on the client. The epochs run in
    the same loop as `NeuralNetwork.fit`, with its callbacks and its non-finite-loss
    check. The layers' description goes to the workers once per call. A worker lost
    mid-training costs its tasks, which Dask runs again elsewhere: the result does
    not change.

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
        callbacks, callback: as for `NeuralNetwork.fit`.
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
        NonFiniteLossError: a batch's loss is NaN or infinite (the model keeps its
            state from before that batch).
    """
    spec = spec_of(model)
    # integers as `NeuralNetwork.fit` takes them: NumPy integers too
    n_epochs, batch_size = (
        positive_int(n_epochs, "n_epochs"),
        positive_int(batch_size, "batch_size"),
    )
    if n_shards is not None:
        n_shards = positive_int(n_shards, "n_shards")
    if seed is not None:
        seed = nonnegative_int(seed, "seed")
    shuffle = true_or_false(shuffle, "shuffle")
    if not all(hasattr(client, name) for name in ("scatter", "submit", "scheduler_info")):
        raise TypeError(f"`client` must be a dask.distributed.Client, got {client!r}")
    chosen = fit_callbacks(callbacks, callback, None, 1, None)
    if backend is None:
        backend = "numpy" if model.backend.lazy else model.backend.name
    _backends.get(backend)
    X, y = _host(X, model, "X"), _host(y, model, "y")
    check_training_data(model, X, y)
    n = int(X.shape[0])
    if n_shards is None:
        n_shards = max(1, len(client.scheduler_info()["workers"]))
    trainer = _Trainer(client, model, spec, X, y, n_shards, backend)
    base_seed = model.seed if seed is None else seed
    step_count = 0

    def step(index: np.ndarray) -> BatchOutcome:
        nonlocal step_count
        started = time.perf_counter()
        total, scattered = trainer.step(index, base_seed, step_count)
        step_count += 1
        count = index.shape[0]

        def keep() -> None:
            trainer.apply(total)
            if timings is not None:
                timings.append(
                    {
                        "seconds": time.perf_counter() - started,
                        "scatter_seconds": scattered,
                        "compute_seconds": float(total["compute_seconds"]) / trainer.n_parts,
                        "slowest_compute_seconds": float(total["slowest_seconds"]),
                    }
                )

        scores = {
            key.removeprefix("score/"): float(value) / count
            for key, value in total.items()
            if key.startswith("score/")
        }
        return BatchOutcome(float(total["loss"]) / count, scores, keep)

    validate = None
    if model.validation_data is not None:

        def validate() -> dict[str, float]:
            data = model.validation_data
            assert data is not None
            logs: dict[str, float] = model.evaluate(
                data[0], data[1], batch_size=batch_size, return_dict=True
            )
            return logs

    order = None
    if seed is not None:
        rng = np.random.default_rng(seed)

        def order(n_samples: int, shuffle: bool) -> np.ndarray:
            return rng.permutation(n_samples) if shuffle else np.arange(n_samples)

    loop = FitLoop(
        model,
        step,
        n_samples=n,
        epochs=n_epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        callbacks=chosen,
        validate=validate,
        batch_order=order,
        scores=score_names(model.metrics),
        fingerprint=data_fingerprint(model, X, y, chosen, lazy=False),
    )
    return loop.run()


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
        self,
        client: Any,
        model: TrainableModel,
        spec: Spec,
        X: Any,
        y: Any,
        n_shards: int,
        backend: str,
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
        state = _put(client, state_of(self.model))
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

    def apply(self, total: dict[str, np.ndarray]) -> None:
        """One optimizer step with the summed gradients; the shards' mean buffers."""
        model = self.model
        grads: list[dict[str, Array]] = []
        buffers: list[dict[str, Array]] = []
        for i, layer in enumerate(model.layers):
            grads.append(
                {
                    key: model.backend.asarray(total[f"grad/{i}/{key}"], dtype=model.dtype)
                    for key in layer.params
                }
            )
            buffers.append(
                {
                    key: model.backend.asarray(total[f"buffer/{i}/{key}"], dtype=model.dtype)
                    for key in layer.buffers
                }
            )
        model.training_step.apply(grads, buffers)
