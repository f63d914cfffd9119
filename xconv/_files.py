"""The model's files: atomic `.npz` writes, checked reads, saving, loading, resuming.

The configuration (``__config__``) lists the layers (class name as registered with
`xconv.layers.register`, and `get_config`), the loss's and metrics' configurations,
and for a graph model its wiring (``"graph"``: input shape, the tensors each layer
reads, the output; see `xconv._graph.Network`). Files of a stack have no ``"graph"``,
and older files name the loss by its class only: both still load.

`NeuralNetwork.save`/`load` and training checkpoints go through here. Nothing is
pickled: the architecture and the optimizer's settings are JSON stored as a uint8
array beside the parameters. Every read is checked whole before anything changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from xconv import layers as _layers
from xconv import losses as _losses
from xconv import optimizers as _optimizers
from xconv._graph import Network

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

Array = Any
#: a checkpoint's training state: (epochs done, the run's description, the history)
Training = tuple[int, dict[str, Any], dict[str, list[float]]]

#: version of the file layout written by `NeuralNetwork.save`
FORMAT_VERSION = 1


def json_array(data: Any) -> np.ndarray:
    """JSON text as a uint8 array, so an .npz file holds it without pickle."""
    return np.frombuffer(json.dumps(data).encode(), dtype=np.uint8)


def write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`np.savez` to a temporary file beside `path`, flushed to disk, renamed over `path`."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, allow_pickle=False, **cast("dict[str, Any]", arrays))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    # make the rename itself durable (POSIX; Windows cannot open a directory)
    if hasattr(os, "O_DIRECTORY"):
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read without pickle; a ValueError for a damaged file."""
    try:
        # our own handle, closed also when NumPy fails to open the archive
        with open(path, "rb") as file:
            data = np.load(file, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with data:
                return {key: data[key] for key in data.files}
    except OSError as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            raise
        problem = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # zipfile, EOF, pickle and format errors of a damaged file
        problem = f"{type(exc).__name__}: {exc}"
    raise ValueError(
        f"{path}: not a readable xconv model file (truncated, corrupted, or holding "
        f"pickled objects?): {problem}"
    )


def json_entry(arrays: dict[str, np.ndarray], key: str, path: Path) -> dict[str, Any]:
    """The JSON object stored under `key` (removed from `arrays`)."""
    what = "model configuration" if key == "__config__" else "training state"
    array = arrays.pop(key, None)
    if array is None or array.dtype != np.uint8 or array.ndim != 1:
        raise ValueError(f"{path}: no valid xconv {what} ({key!r} missing or not JSON text)")
    try:
        data = json.loads(array.tobytes().decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: no valid xconv {what} ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: no valid xconv {what} (not a JSON object)")
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
    layer: _layers.Layer = layer_class(**arguments)
    return layer


def check_array(
    saved: np.ndarray | None, what: str, shape: tuple[int, ...], dtype: np.dtype[Any], path: Path
) -> None:
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
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: invalid batch-order generator state: {exc}") from None
    return generator


def as_tuple(value: Sequence[Any]) -> tuple[Any, ...]:
    """JSON's nested lists back to the tuples a layer's arguments were."""
    return tuple(as_tuple(v) if isinstance(v, list) else v for v in value)


# -- a model's file ---------------------------------------------------------------------


def save_model(model: Any, path: Path, training: Training | None = None) -> None:
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


def load_model(cls: type[Any], path: Path, backend: Any) -> Any:
    """`NeuralNetwork.load`: a new model of class `cls` from `path`, on `backend`."""
    arrays = read_npz(path)
    config = json_entry(arrays, "__config__", path)
    check_format(config, path)
    try:
        layers = [build_layer(spec) for spec in config["layers"]]
        graph = config.get("graph")
        inputs, outputs = Network.connect(layers, graph) if graph is not None else (None, None)
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
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: invalid architecture in the file: {exc}") from None
    stores = _checked_stores(model, arrays, path)
    if "__training__" in arrays:  # a checkpoint: its training state is for fit(resume=)
        arrays = {k: v for k, v in arrays.items() if not k.startswith("optimizer/")}
        del arrays["__training__"]
    if arrays:
        raise ValueError(f"{path}: unexpected arrays {sorted(arrays)}")
    for layer, (params, buffers) in zip(model.layers, stores, strict=True):
        layer.params, layer.buffers = params, buffers
    return model


def _checked_stores(
    model: Any, arrays: dict[str, np.ndarray], path: Path
) -> list[tuple[dict[str, Array], dict[str, Array]]]:
    """New params and buffers for each layer from `arrays` (consumed), all checked first."""
    dtype = np.dtype(model.dtype)
    found: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
    for i, layer in enumerate(model.layers):
        pair: list[dict[str, np.ndarray]] = []
        for kind, store in (("params", layer.params), ("buffers", layer.buffers)):
            new: dict[str, np.ndarray] = {}
            for key, current in store.items():
                what = f"layer {i} ({layer.layer_name()}) {kind[:-1]} {key!r}"
                saved = arrays.pop(f"{i}/{kind}/{key}", None)
                check_array(saved, what, tuple(current.shape), dtype, path)
                assert saved is not None
                new[key] = saved
            pair.append(new)
        found.append((pair[0], pair[1]))
    # everything checked: move the arrays to the backend
    move = model.backend.asarray
    return [
        ({k: move(v) for k, v in params.items()}, {k: move(v) for k, v in buffers.items()})
        for params, buffers in found
    ]


# -- resuming from a checkpoint ---------------------------------------------------------


def restore_checkpoint(
    model: Any, path: Path, run: dict[str, Any], keys: list[str], n_epochs: int
) -> tuple[int, dict[str, list[float]]]:
    """Restore a checkpoint into `model`; returns (epochs done, history so far).

    `run` describes this fit (data size, batch size, shuffling) and `keys` the history
    it records. Everything is checked before anything changes, so a bad file leaves the
    model as it was.
    """
    arrays = read_npz(path)
    config = json_entry(arrays, "__config__", path)
    check_format(config, path)
    if "__training__" not in arrays:
        raise ValueError(
            f"{path}: not a checkpoint (a model file from save()); write one with "
            "fit(..., checkpoint=path)"
        )
    training = json_entry(arrays, "__training__", path)
    learning_rate = _check_same_model(model, config, path)
    # the same run: data size, batch size, shuffling, history kept
    try:
        epoch, history = training["epoch"], training["history"]
        saved_run, steps = training["run"], training["optimizer_steps"]
        batch_state, layer_states = training["batch_rng"], training["layer_rngs"]
    except (KeyError, TypeError):
        raise ValueError(f"{path}: incomplete training state in the checkpoint") from None
    if saved_run != run:
        raise ValueError(
            f"{path}: the checkpoint is of a run with {saved_run!r}, this one has {run!r}; "
            "resume with the same data, batch_size and shuffle"
        )
    if (
        isinstance(epoch, bool)
        or not isinstance(epoch, int)
        or epoch < 1
        or not isinstance(history, dict)
        or sorted(history) != sorted(keys)
        or any(not isinstance(v, list) or len(v) != epoch for v in history.values())
    ):
        raise ValueError(
            f"{path}: the checkpoint's epoch {epoch!r} and history (keys "
            f"{sorted(history) if isinstance(history, dict) else history!r}) do not fit "
            f"this fit(), which records {keys}"
        )
    if epoch > n_epochs:
        raise ValueError(
            f"{path}: the checkpoint is after epoch {epoch}, beyond `n_epochs`={n_epochs}"
        )
    if not isinstance(layer_states, list) or len(layer_states) != len(model.layers):
        raise ValueError(f"{path}: the checkpoint has no generator state for each layer")
    stores = _checked_stores(model, arrays, path)
    optimizer_state = _checked_optimizer_state(model, arrays, steps, path)
    if arrays:
        raise ValueError(f"{path}: unexpected arrays {sorted(arrays)}")
    batch_rng = generator_from_state(batch_state, path)
    # now change the model: the optimizer first, as it checks its state itself
    try:
        model.optimizer.load_state_dict(optimizer_state, backend=model.backend)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid optimizer state: {exc}") from None
    old_states = [layer.random_state() for layer in model.layers]
    try:
        for layer, state in zip(model.layers, layer_states, strict=True):
            layer.set_random_state(state)
    except (TypeError, ValueError) as exc:
        for layer, state in zip(model.layers, old_states, strict=True):
            layer.set_random_state(state)
        raise ValueError(f"{path}: invalid generator state: {exc}") from None
    for layer, (params, buffers) in zip(model.layers, stores, strict=True):
        layer.params, layer.buffers, layer.grads = params, buffers, {}
    model.optimizer.learning_rate = float(learning_rate)
    model.batch_rng = batch_rng
    return epoch, {key: [float(v) for v in values] for key, values in history.items()}


def _check_same_model(model: Any, config: dict[str, Any], path: Path) -> float:
    """Refuse a checkpoint of another architecture, loss or optimizer; its learning rate."""
    mine = model.get_config()
    config = dict(config)
    if isinstance(config.get("loss"), str):  # older files: the loss's class name
        with contextlib.suppress(TypeError, ValueError):  # else it differs below
            config["loss"] = _losses.from_config(config["loss"]).get_config()
    for key in ("dtype", "loss", "layers", "graph"):
        if config.get(key) != mine.get(key):
            raise ValueError(
                f"{path}: the checkpoint's {key} {config.get(key)!r} differs from this "
                f"model's {mine.get(key)!r}"
            )
    saved_optimizer = dict(config.get("optimizer") or {})
    learning_rate = saved_optimizer.pop("learning_rate", None)
    current_optimizer = {k: v for k, v in mine["optimizer"].items() if k != "learning_rate"}
    if saved_optimizer != current_optimizer or not isinstance(learning_rate, int | float):
        raise ValueError(
            f"{path}: the checkpoint's optimizer {config.get('optimizer')!r} differs from "
            f"this model's {mine['optimizer']!r}"
        )
    return float(learning_rate)


def _checked_optimizer_state(
    model: Any, arrays: dict[str, np.ndarray], steps: Any, path: Path
) -> dict[str, dict[str, Any]]:
    """The optimizer's `state_dict` from a checkpoint's arrays (consumed), checked."""
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
    state: dict[str, dict[str, Any]] = {"step": dict(steps)}
    for slot in model.optimizer.slots:
        state[slot] = {}
        for key in steps:
            saved = arrays.pop(f"optimizer/{slot}/{key}", None)
            what = f"optimizer state {slot!r} of {key!r}"
            check_array(saved, what, shapes[key], np.dtype(model.dtype), path)
            state[slot][key] = saved
    return state
