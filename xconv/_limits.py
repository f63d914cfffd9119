"""Bounds on what a model file may make xconv read, parse and allocate.

A model file comes from anyone. Before any array's data is decompressed, and before
any layer creates its parameters, `NpzArchive` reads each member's ``.npy`` header
(shape, dtype, order) and the caps below are checked; every refusal is a ValueError
naming the file. The caps are module attributes: raise them here for a larger model.

- `MAX_FILE_BYTES`: the arrays' total size as their headers declare it (4 GiB).
- `MAX_MEMBERS`: arrays in one file (100 000).
- `MAX_JSON_BYTES`: the JSON configuration or training state (16 MiB each).
- `MAX_JSON_DEPTH`: nesting of lists and objects in that JSON (64 levels).
- `MAX_LAYER_SIZE`: any integer in a layer's configuration or in the graph's input
  shape (units, filters, kernel sizes, strides, shapes): 65 536.
- `MAX_PARAMETERS`: an upper estimate of the numbers all layers would create, from
  their configurations and input shapes (2**28, 1 GiB of float32).
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LAYER_SIZE",
    "MAX_MEMBERS",
    "MAX_PARAMETERS",
    "Header",
    "NpzArchive",
    "check_layer_sizes",
    "check_parameter_bound",
    "json_depth",
]

MAX_FILE_BYTES = 2**32
MAX_MEMBERS = 100_000
MAX_JSON_BYTES = 2**24
MAX_JSON_DEPTH = 64
MAX_LAYER_SIZE = 2**16
MAX_PARAMETERS = 2**28

#: the errors a damaged archive raises while it is read
_DAMAGE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    ValueError,
    OSError,
    KeyError,
    TypeError,
    RuntimeError,  # zipfile: an encrypted member; NotImplementedError: an unknown method
    struct.error,
)
#: dtypes a model file may hold: numbers, no objects, no records
_KINDS = "biuf"


class Header(NamedTuple):
    """A member's ``.npy`` header: what reading it would make."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]


def _unreadable(path: Path, problem: str) -> ValueError:
    return ValueError(
        f"{path}: not a readable xconv model file (truncated, corrupted, or holding "
        f"pickled objects?): {problem}"
    )


class NpzArchive:
    """An ``.npz`` file opened with every member's header read and checked, no data yet.

    `headers` maps each array's name to its `Header`; `read` returns one array. A
    member that is not ``.npy``, holds objects or records, declares a size its zip entry
    does not have (a zip bomb), or makes the total exceed `MAX_FILE_BYTES` is refused.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            if self._file.read(6) == b"\x93NUMPY":
                raise ValueError(
                    f"{path}: not a readable xconv model file: a single .npy array, not an "
                    ".npz archive"
                )
            self._file.seek(0)
            self._zip = zipfile.ZipFile(self._file)
            self.headers, self._members = self._read_headers()
        except BaseException as exc:
            self._file.close()
            if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
                raise
            if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
                raise
            if isinstance(exc, _DAMAGE):
                raise _unreadable(path, f"{type(exc).__name__}: {exc}") from None
            raise

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def _read_headers(self) -> tuple[dict[str, Header], dict[str, zipfile.ZipInfo]]:
        path, infos = self.path, self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ValueError(f"{path}: {len(infos)} arrays, more than MAX_MEMBERS={MAX_MEMBERS}")
        headers: dict[str, Header] = {}
        members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{path}: the member {info.filename!r} is not an .npy array")
            name = info.filename.removesuffix(".npy")
            if name in headers:
                raise ValueError(f"{path}: the array {name!r} is stored twice")
            with self._zip.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"{path}: {name!r} has .npy format version {version}")
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
                offset = stream.tell()
            if dtype.hasobject:
                raise _unreadable(path, f"{name!r} holds Object arrays (pickle)")
            if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype:
                raise ValueError(f"{path}: {name!r} has dtype {dtype}, not a number type")
            if fortran and len(shape) > 1:
                raise ValueError(f"{path}: {name!r} is stored in Fortran order")
            nbytes = math.prod(shape) * dtype.itemsize
            # the zip entry's size must be the header's: nothing more to decompress
            if info.file_size != offset + nbytes:
                raise ValueError(
                    f"{path}: {name!r} declares {nbytes} bytes of data but its zip entry "
                    f"holds {info.file_size - offset}"
                )
            total += nbytes
            if total > MAX_FILE_BYTES:
                raise ValueError(
                    f"{path}: the arrays declare more than MAX_FILE_BYTES={MAX_FILE_BYTES} bytes"
                )
            headers[name] = Header(tuple(shape), dtype)
            members[name] = info
        return headers, members

    def read(self, name: str) -> np.ndarray:
        """The array `name` (its header was checked)."""
        try:
            with self._zip.open(self._members[name]) as stream:
                array = np.lib.format.read_array(stream, allow_pickle=False)
        except _DAMAGE as exc:
            raise _unreadable(self.path, f"{type(exc).__name__}: {exc}") from None
        if tuple(array.shape) != self.headers[name].shape:  # pragma: no cover (checked)
            raise _unreadable(self.path, f"{name!r} does not match its header")
        return array

    def read_finite(self, name: str, what: str) -> np.ndarray:
        """The array `name`, refused where it holds NaN or infinity (`what` it is)."""
        array = self.read(name)
        bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ValueError(f"{self.path}: {what} holds {bad} NaN or infinite values")
        return array

    def read_json(self, name: str, what: str) -> Any:
        """The JSON value stored as the uint8 array `name`, its size and nesting checked;
        None when there is no such array."""
        header = self.headers.get(name)
        if header is None:
            return None
        problem = f"{self.path}: no valid xconv {what}"
        if header.dtype != np.uint8 or len(header.shape) != 1:
            raise ValueError(f"{problem} ({name!r} is not JSON text)")
        if header.shape[0] > MAX_JSON_BYTES:
            raise ValueError(f"{problem} (over MAX_JSON_BYTES={MAX_JSON_BYTES})")
        deep = ValueError(f"{problem} (nested deeper than MAX_JSON_DEPTH={MAX_JSON_DEPTH})")
        try:
            value = json.loads(self.read(name).tobytes().decode())
        except RecursionError:  # the parser's own limit, far beyond ours
            raise deep from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{problem} ({exc})") from None
        if json_depth(value) > MAX_JSON_DEPTH:
            raise deep
        return value


def json_depth(value: Any) -> int:
    """How deep lists and objects nest in a parsed JSON `value` (no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in node)
    return deepest


def _integers(value: Any, skip: tuple[str, ...] = ("seed",)) -> list[int]:
    """Every integer in a configuration value (nested lists too), but under `skip` keys."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list | tuple):
        return [i for v in value for i in _integers(v, skip)]
    if isinstance(value, dict):
        return [i for k, v in value.items() if k not in skip for i in _integers(v, skip)]
    return []


def check_layer_sizes(config: dict[str, Any], path: Path) -> None:
    """Refuse a layer's integer, or the graph's input shape, over `MAX_LAYER_SIZE`."""
    graph = config.get("graph")
    shapes = (
        [("the graph's input_shape", graph.get("input_shape"))] if isinstance(graph, dict) else []
    )
    layers = config.get("layers")
    for i, spec in enumerate(layers if isinstance(layers, list) else []):
        shapes.append((f"layer {i}", spec.get("config") if isinstance(spec, dict) else None))
    for what, value in shapes:
        big = [v for v in _integers(value) if abs(v) > MAX_LAYER_SIZE]
        if big:
            raise ValueError(
                f"{path}: {what} has the size {big[0]}, over MAX_LAYER_SIZE={MAX_LAYER_SIZE} "
                "(see xconv._limits)"
            )


def check_parameter_bound(layers: list[Any], path: Path) -> None:
    """Refuse layers that could create more than `MAX_PARAMETERS` numbers.

    Each layer's estimate is ``2 (C + 1) prod(its integers) + 2 prod(input shape)``, with
    C its input's first axis (features or channels): at least what any built-in layer
    creates (weights, biases, statistics), computed before it creates anything.
    """
    total = 0
    for i, layer in enumerate(layers):
        shape = getattr(layer, "input_shape", None)
        if shape is None:
            continue
        try:
            sizes = _integers(layer.get_config(), ("seed", "input_shape"))
        except (TypeError, ValueError):
            sizes = []
        product = math.prod(max(int(v), 1) for v in sizes)
        first = int(shape[0]) if len(shape) else 1
        total += 2 * (first + 1) * product + 2 * math.prod(int(d) for d in shape)
        if total > MAX_PARAMETERS:
            raise ValueError(
                f"{path}: the layers up to layer {i} ({layer.layer_name()}) could hold "
                f"{total} numbers, over MAX_PARAMETERS={MAX_PARAMETERS} (see xconv._limits)"
            )
