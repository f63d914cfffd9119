"""The model's files: atomic `.npz` writes, checked reads, saving, loading, resuming.

The configuration (``__config__``) lists the layers (class name as registered with
`xconv.layers.register`, and `get_config`), the loss's and metrics' configurations,
and for a graph model its wiring (``"graph"``: input shape, the tensors each layer
reads, the output; see `xconv.training.Network`). Files of a stack have no ``"graph"``,
and older files name the loss by its class only: both still load.

`NeuralNetwork.save`/`load` and training checkpoints go through here. Nothing is
pickled: the architecture and the optimizer's settings are JSON stored as a uint8
array beside the parameters. Every read is checked whole before anything changes.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from xconv import layers as _layers
from xconv import losses as _losses
from xconv import optimizers as _optimizers
from xconv._atomic import write_atomically
from xconv._limits import NpzArchive, check_layer_sizes, check_parameter_bound
from xconv._typing import Array
from xconv.backends import Backend

from ._network import Network
from ._protocols import StepModel, TrainableModel
from ._resume import check_same_model, check_training

__all__ = [
    "FORMAT_VERSION",
    "as_tuple",
    "build_layer",
    "check_array",
    "check_format",
    "generator_from_state",
    "json_array",
    "json_entry",
    "load_model",
    "read_npz",
    "restore_checkpoint",
    "save_model",
    "write_atomically",
]

#: the class of the model a file is loaded into (`NeuralNetwork`)
Model = TypeVar("Model", bound=TrainableModel)
#: a checkpoint's training state: (epochs done, the run's description, the history)
Training = tuple[int, dict[str, Any], dict[str, list[float]]]

#: version of the file layout written by `NeuralNetwork.save`
FORMAT_VERSION = 1


def json_array(data: Any) -> np.ndarray:
    """JSON text as a uint8 array, so an .npz file holds it without pickle."""
    return np.frombuffer(json.dumps(data).encode(), dtype=np.uint8)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read without pickle; a ValueError for a damaged file.

    Each member's header is checked first (`xconv._limits.NpzArchive`).
    """
    with NpzArchive(path) as archive:
        return {name: archive.read(name) for name in archive.headers}


def json_entry(archive: NpzArchive, key: str) -> dict[str, Any]:
    """The JSON object stored under `key`, its size and nesting checked first."""
    what = "model configuration" if key == "__config__" else "training state"
    data = archive.read_json(key, what)
    if data is None:
        raise ValueError(
            f"{archive.path}: no valid xconv {what} ({key!r} missing or not JSON text)"
        )
    if not isinstance(data, dict):
        raise ValueError(f"{archive.path}: no valid xconv {what} (not a JSON object)")
    return data


def check_format(config: dict[str, Any], path: Path) -> None:
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format version {version!r}, but this xconv reads version {FORMAT_VERSION}"
        )
    if not isinstance(config.get("layers"), list) or not config["layers"]:
        raise ValueError(f"{path}: the configuration lists no layers")


def build_layer(spec: Any) -> _layers.Layer:
    """A layer from its saved ``{"class": ..., "config": ...}``."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise ValueError(f"a layer must be saved as {{'class', 'config'}}, got {spec!r}")
    layer_class = _layers.get_layer_class(str(spec.get("class")))
    arguments = {
        key: as_tuple(value) if isinstance(value, list) else value
        for key, value in spec["config"].items()
    }
    try:
        layer: _layers.Layer = layer_class(**arguments)
    except (TypeError, ValueError):
        raise
    except Exception as exc:  # a registered layer's own __init__: RuntimeError, OSError...
        raise ValueError(
            f"{layer_class.__name__}(**config) raised {type(exc).__name__}: {exc}"
        ) from exc
    return layer


def check_array(
    saved: Any, what: str, shape: tuple[int, ...], dtype: np.dtype[Any], path: Path
) -> None:
    """Refuse a missing array, or one (or its `Header`) of another shape or dtype."""
    if saved is None:
        raise ValueError(f"{path}: {what} is missing")
    if saved.shape != shape:
        raise ValueError(f"{path}: {what} has shape {saved.shape}, expected {shape}")
    if saved.dtype != dtype:
        raise ValueError(f"{path}: {what} has dtype {saved.dtype}, expected {dtype}")


def generator_from_state(state: Any, path: Path) -> np.random.Generator:
    """A NumPy generator in the saved `state` (a `bit_generator.state` dict)."""
    kinds = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM}
    kind = kinds.get(str(state.get("bit_generator"))) if isinstance(state, dict) else None
    if kind is None:
        raise ValueError(f"{path}: invalid batch-order generator state {state!r}")
    generator = np.random.Generator(kind())
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"{path}: invalid batch-order generator state: {exc}") from None
    return generator


def as_tuple(value: Sequence[Any]) -> tuple[Any, ...]:
    """JSON's nested lists back to the tuples a layer's arguments were."""
    return tuple(as_tuple(v) if isinstance(v, list) else v for v in value)


# -- a model's file ---------------------------------------------------------------------


def save_model(model: TrainableModel, path: Path, training: Training | None = None) -> None:
    """`NeuralNetwork.save`; with `training` a checkpoint's state too (see `Checkpoint`)."""
    arrays: dict[str, np.ndarray] = {"__config__": json_array(model.get_config())}
    for i, layer in enumerate(model.layers):
        for kind, store in (("params", layer.params), ("buffers", layer.buffers)):
            for key, value in store.items():
                arrays[f"{i}/{kind}/{key}"] = np.asarray(model.backend.to_numpy(value))
    if training is not None:
        epoch, run, history = training
        state = model.optimizer.state_dict(backend=model.backend)
        for slot in model.optimizer.slots:
            for key, value in state[slot].items():
                arrays[f"optimizer/{slot}/{key}"] = value
        arrays["__training__"] = json_array(
            {
                "epoch": epoch,
                "run": run,
                "history": history,
                "optimizer_steps": state["step"],
                "batch_rng": model.batch_rng.bit_generator.state,
                "layer_rngs": [layer.random_state() for layer in model.layers],
            }
        )
    write_atomically(path, arrays)


def load_model(cls: Callable[..., Model], path: Path, backend: Backend) -> Model:
    """`NeuralNetwork.load`: a new model of class `cls` from `path`, on `backend`.

    Headers, configuration and sizes are checked before any parameter is created, and
    every stored array's shape and dtype before any array's data is read.
    """
    with NpzArchive(path) as archive:
        config = json_entry(archive, "__config__")
        model = _model_from_config(cls, config, path, backend)
        names = set(archive.headers) - {"__config__"}
        plan = _stores_plan(model, archive, names)
        if "__training__" in names:  # a checkpoint: its training state is for fit(resume=)
            names = {n for n in names if not n.startswith("optimizer/")} - {"__training__"}
        if names:
            raise ValueError(f"{path}: unexpected arrays {sorted(names)}")
        stores = _read_stores(model, archive, plan)
    for layer, (params, buffers) in zip(model.layers, stores, strict=True):
        layer.params, layer.buffers = params, buffers
    return model


#: what a damaged configuration may raise while the model is built from it
_CONFIG_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError)


def _model_from_config(
    cls: Callable[..., Model], config: dict[str, Any], path: Path, backend: Backend
) -> Model:
    """A new model as `config` describes it, its sizes checked before it is built."""
    check_format(config, path)
    check_layer_sizes(config, path)
    try:
        layers = [build_layer(spec) for spec in config["layers"]]
        graph = config.get("graph")
        inputs, outputs = Network.connect(layers, graph) if graph is not None else (None, None)
        if graph is None:  # the shapes a stack will have, before any layer is built
            for before, layer in itertools.pairwise(layers):
                layer.set_input_shape(before.output_shape())
    except _CONFIG_ERRORS as exc:
        raise ValueError(f"{path}: invalid architecture in the file: {exc}") from None
    check_parameter_bound(layers, path)
    try:
        model = cls(
            _optimizers.Optimizer.from_config(config["optimizer"]),
            _losses.from_config(config["loss"]),
            dtype=config["dtype"],
            seed=config["seed"],
            backend=backend,
            inputs=inputs,
            outputs=outputs,
            metrics=[_losses.get_metric(m) for m in config.get("metrics", ["accuracy"])],
        )
        if graph is None:
            for layer in layers:
                model.add(layer)
    except _CONFIG_ERRORS as exc:
        raise ValueError(f"{path}: invalid architecture in the file: {exc}") from None
    return model


#: (layer, "params" or "buffers", key) of each array a model's file holds
Plan = list[tuple[int, str, str]]


def _stores_plan(model: StepModel, archive: NpzArchive, names: set[str]) -> Plan:
    """The arrays of each layer's params and buffers, their headers checked (`names`
    loses them); nothing is read yet."""
    dtype = np.dtype(model.dtype)
    plan: Plan = []
    for i, layer in enumerate(model.layers):
        for kind, store in (("params", layer.params), ("buffers", layer.buffers)):
            for key, current in store.items():
                what = f"layer {i} ({layer.layer_name()}) {kind[:-1]} {key!r}"
                name = f"{i}/{kind}/{key}"
                names.discard(name)
                check_array(
                    archive.headers.get(name), what, tuple(current.shape), dtype, archive.path
                )
                plan.append((i, kind, key))
    return plan


def _read_stores(
    model: StepModel, archive: NpzArchive, plan: Plan
) -> list[tuple[dict[str, Array], dict[str, Array]]]:
    """New params and buffers for each layer, read as `plan` says, on the backend."""
    found: list[tuple[dict[str, Array], dict[str, Array]]] = [({}, {}) for _ in model.layers]
    arrays = {
        (i, kind, key): archive.read_finite(
            f"{i}/{kind}/{key}", f"layer {i} ({model.layers[i].layer_name()}) {kind[:-1]} {key!r}"
        )
        for i, kind, key in plan
    }
    move = model.backend.asarray
    for (i, kind, key), array in arrays.items():
        found[i][0 if kind == "params" else 1][key] = move(array)
    return found


# -- resuming from a checkpoint ---------------------------------------------------------

#: what a damaged state may raise where an optimizer or a layer takes it (a generator
#: state's integers out of range are an OverflowError)
_STATE_ERRORS = (TypeError, ValueError, KeyError, ArithmeticError)


def restore_checkpoint(
    model: TrainableModel, path: Path, run: dict[str, Any], keys: list[str], n_epochs: int
) -> tuple[int, dict[str, list[float]]]:
    """Restore a checkpoint into `model`; returns (epochs done, history so far).

    `run` describes this fit (data size and fingerprint, batch size, shuffling) and
    `keys` the history it records. The whole checkpoint is read and checked into new
    objects (parameters, buffers, optimizer state, generators, history) before any is
    swapped into the model, so a bad file leaves the model as it was.
    """
    with NpzArchive(path) as archive:
        config = json_entry(archive, "__config__")
        check_format(config, path)
        if "__training__" not in archive.headers:
            raise ValueError(
                f"{path}: not a checkpoint (a model file from save()); write one with "
                "fit(..., checkpoint=path)"
            )
        training = json_entry(archive, "__training__")
        learning_rate = check_same_model(model, config, path)
        epoch, history, steps, batch_state, layer_states = check_training(
            training, run, keys, n_epochs, len(model.layers), path
        )
        names = set(archive.headers) - {"__config__", "__training__"}
        plan = _stores_plan(model, archive, names)
        slots = _optimizer_plan(model, archive, names, steps)
        if names:
            raise ValueError(f"{path}: unexpected arrays {sorted(names)}")
        stores = _read_stores(model, archive, plan)
        optimizer_state: dict[str, Any] = {"step": dict(steps)}
        for slot, keys_of_slot in slots.items():
            optimizer_state[slot] = {
                k: archive.read_finite(
                    f"optimizer/{slot}/{k}", f"optimizer state {slot!r} of {k!r}"
                )
                for k in keys_of_slot
            }
    batch_rng = generator_from_state(batch_state, path)
    # try the optimizer state and the layers' generators on copies first
    try:
        trial = _optimizers.Optimizer.from_config(model.optimizer.get_config())
        trial.load_state_dict(optimizer_state, backend=model.backend)
    except _STATE_ERRORS as exc:
        raise ValueError(f"{path}: invalid optimizer state: {exc}") from None
    try:
        for layer, state in zip(model.layers, layer_states, strict=True):
            copy.copy(layer).set_random_state(state)
    except _STATE_ERRORS as exc:
        raise ValueError(f"{path}: invalid generator state: {exc}") from None
    # all known good: swap everything in
    model.optimizer.load_state_dict(optimizer_state, backend=model.backend)
    for layer, state in zip(model.layers, layer_states, strict=True):
        layer.set_random_state(state)
    for layer, (params, buffers) in zip(model.layers, stores, strict=True):
        layer.params, layer.buffers, layer.grads = params, buffers, {}
    model.optimizer.learning_rate = float(learning_rate)
    model.batch_rng = batch_rng
    return epoch, history


def _optimizer_plan(
    model: StepModel, archive: NpzArchive, names: set[str], steps: Any
) -> dict[str, list[str]]:
    """The optimizer state's arrays per slot, their headers checked (`names` loses them)."""
    path = archive.path
    shapes = {
        f"{i}.{key}": tuple(param.shape)
        for i, layer in enumerate(model.layers)
        if layer.trainable
        for key, param in layer.params.items()
    }
    if not isinstance(steps, dict) or not set(steps) <= set(shapes):
        raise ValueError(
            f"{path}: the optimizer state names parameters {steps!r}; this model has "
            f"{sorted(shapes)}"
        )
    plan: dict[str, list[str]] = {}
    for slot in model.optimizer.slots:
        plan[slot] = []
        for key in steps:
            name = f"optimizer/{slot}/{key}"
            names.discard(name)
            what = f"optimizer state {slot!r} of {key!r}"
            check_array(archive.headers.get(name), what, shapes[key], np.dtype(model.dtype), path)
            plan[slot].append(key)
    return plan
