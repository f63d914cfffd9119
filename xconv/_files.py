"""The model's files: atomic `.npz` writes, checked reads, the pieces of a saved model.

`NeuralNetwork.save`/`load` and training checkpoints go through here. Nothing is
pickled: the architecture and the optimizer's settings are JSON stored as a uint8
array beside the parameters.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from xconv import layers as _layers

__all__ = [
    "FORMAT_VERSION",
    "as_tuple",
    "build_layer",
    "check_array",
    "check_format",
    "generator_from_state",
    "json_array",
    "json_entry",
    "read_npz",
    "write_atomically",
]

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
    layer_class = getattr(_layers, str(spec.get("class")), None)
    if not (isinstance(layer_class, type) and issubclass(layer_class, _layers.Layer)):
        raise ValueError(f"unknown layer class {spec.get('class')!r}")
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
