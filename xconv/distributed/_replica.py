"""What workers need of a model: its layers' description, its arrays, a cached rebuild.

A worker rebuilds the model's network (a stack or a graph, `xconv.training.Network`)
from the layers' registered class names and configurations and the wiring.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from xconv import backends as _backends
from xconv import layers as _layers
from xconv._typing import Array
from xconv.losses import Loss, Metric
from xconv.training import Network, StepModel, build_layer

__all__ = [
    "Spec",
    "State",
    "chunk_backend",
    "forward",
    "load",
    "replica",
    "replicas",
    "spec_of",
    "state_of",
]

State = list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]


@dataclass(frozen=True)
class Spec:
    """What a worker needs to rebuild a model's layers, without their arrays."""

    token: str  # names this description in the workers' caches
    layers: tuple[tuple[str, dict[str, Any]], ...]  # (class name, get_config())
    graph: dict[str, Any] | None  # a graph's wiring (`Network.get_config`), None: a stack
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dtype: str
    loss: Loss  # the model's loss object (small, no arrays)
    metrics: tuple[Metric, ...] = ()  # the model's metrics (small, no arrays)


def spec_of(model: StepModel) -> Spec:
    if not model.layers:
        raise ValueError("the model has no layers yet: add() some first")
    return Spec(
        token=uuid.uuid4().hex,
        layers=tuple(
            (_layers.registered_name(type(layer)), layer.get_config()) for layer in model.layers
        ),
        graph=None if model.network.is_chain else model.network.get_config(),
        input_shape=tuple(model.network.input_shape),
        output_shape=tuple(model.network.output_shape()),
        dtype=model.dtype,
        loss=model.loss_function,
        metrics=tuple(model.metrics),
    )


def state_of(model: StepModel) -> State:
    """Parameters and buffers of every layer, as host copies."""

    def host(store: dict[str, Array]) -> dict[str, np.ndarray]:
        return {k: np.array(model.backend.to_numpy(v), copy=True) for k, v in store.items()}

    return [(host(layer.params), host(layer.buffers)) for layer in model.layers]


# -- on the workers: rebuild once per thread, load parameters per step -----------------

replicas = threading.local()


def replica(spec: Spec, backend: _backends.Backend) -> Network:
    """The network of `spec` on `backend`, built once per thread and reused.

    A sequence of its layers (what `xconv.training.gradients` and `load` take).
    """
    cache: dict[tuple[str, str], Network] = getattr(replicas, "cache", {})
    replicas.cache = cache
    key = (spec.token, backend.name)
    if key not in cache:
        built = [build_layer({"class": name, "config": config}) for name, config in spec.layers]
        if spec.graph is None:
            for previous, layer in itertools.pairwise(built):
                layer.set_input_shape(previous.output_shape())
            network = Network(built)
        else:
            network = Network.from_tensors(*Network.connect(built, spec.graph))
        for layer in network:
            layer.initialize(seed=0, dtype=spec.dtype, backend=backend)
        # forget older models: one per thread is what a fit or predict needs
        cache.clear()
        cache[key] = network
        replicas.loaded = None
    return cache[key]


def forward(network: Network, x: Array) -> Array:
    """The network's output for the batch `x`, in inference mode."""
    return network.forward(x, training=False)


def load(layers: Network, state: State, backend: _backends.Backend) -> None:
    for layer, (params, buffers) in zip(layers, state, strict=True):
        layer.params = {k: backend.asarray(v) for k, v in params.items()}
        layer.buffers = {k: backend.asarray(v) for k, v in buffers.items()}


def chunk_backend(block: Array, name: str | None) -> tuple[_backends.Backend, Array]:
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
