"""NeuralNetwork: a stack of layers trained with a loss and an optimizer, on any backend."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import array_api_compat
import numpy as np

from xconv import layers as _layers
from xconv import losses as _losses
from xconv import optimizers as _optimizers
from xconv.backends import Backend, get, get_backend
from xconv.data import to_categorical

__all__ = ["FORMAT_VERSION", "NeuralNetwork"]

Array = Any
#: version of the file layout written by `NeuralNetwork.save`
FORMAT_VERSION = 1


class NeuralNetwork:
    """A feed-forward network: add layers, then `fit`, `evaluate` and `predict`.

    Args:
        optimizer: an optimizer instance, class or name (``"adam"``); it receives each
            parameter with its gradient after every batch.
        loss: a loss instance, class or name (``"cross_entropy"``).
        validation_data: optional ``(X, y)`` evaluated after every epoch of `fit`.
        dtype: floating dtype of parameters and inputs, ``"float32"`` or ``"float64"``.
        seed: fixes the initial parameters, dropout masks and batch order, identically
            on every backend.
        backend: name or `Backend` for parameters and computation; None means the
            current backend (`xconv.set_backend` / `xconv.use_backend`).

    Inputs may be NumPy arrays or arrays of the model's backend; labels may be integer
    class indices or one-hot rows.

    Example:
        >>> import numpy as np
        >>> from xconv.layers import Activation, Dense
        >>> model = NeuralNetwork("sgd", "square_loss", seed=0)
        >>> model.add(Dense(3, input_shape=(2,)))
        >>> model.add(Activation("sigmoid"))
        >>> model.predict(np.zeros((4, 2))).shape
        (4, 3)
    """

    def __init__(
        self,
        optimizer: Any,
        loss: Any,
        validation_data: tuple[Any, Any] | None = None,
        *,
        dtype: str = "float32",
        seed: int = 0,
        backend: str | Backend | None = None,
    ) -> None:
        if dtype not in ("float32", "float64"):
            raise ValueError(f"`dtype` must be 'float32' or 'float64', got {dtype!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
        if validation_data is not None and (
            not isinstance(validation_data, tuple | list) or len(validation_data) != 2
        ):
            raise ValueError("`validation_data` must be a pair (X, y)")
        self.optimizer = _optimizers.get(optimizer)
        self.loss_function = _losses.get(loss)
        self.validation_data = validation_data
        self.dtype = dtype
        self.seed = seed
        self.backend = get(backend) if backend is not None else get_backend()
        self.layers: list[_layers.Layer] = []
        # independent random streams: one per layer (parameters, dropout), one for batches
        self._seeds = np.random.SeedSequence(seed)
        self._batch_rng = np.random.default_rng(self._seeds.spawn(1)[0])

    @property
    def xp(self) -> Any:
        """The array namespace of the model's backend."""
        return self.backend.namespace

    # -- building ------------------------------------------------------------------

    def add(self, layer: _layers.Layer) -> None:
        """Append `layer`, give it its input shape and create its parameters now."""
        if not isinstance(layer, _layers.Layer):
            raise TypeError(f"`layer` must be an xconv layer, got {type(layer).__name__}")
        if self.layers:
            layer.set_input_shape(self.layers[-1].output_shape())
        elif layer.input_shape is None:
            raise ValueError(
                f"the first layer ({layer.layer_name()}) needs an input_shape, e.g. "
                "Conv2D(16, 3, input_shape=(1, 8, 8))"
            )
        layer.initialize(
            seed=np.random.default_rng(self._seeds.spawn(1)[0]),
            dtype=self.dtype,
            backend=self.backend,
        )
        self.layers.append(layer)

    def summary(self, name: str = "Model Summary") -> str:
        """A table of the layers, their output shapes and parameter counts (also printed)."""
        if not self.layers:
            raise ValueError("the model has no layers yet: add() some first")
        rows = [("Layer Type", "Parameters", "Output Shape")]
        rows += [
            (layer.layer_name(), str(layer.parameters()), str(layer.output_shape()))
            for layer in self.layers
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        table = [line]
        for i, row in enumerate(rows):
            table.append(
                "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
            )
            if i == 0:
                table.append(line)
        table.append(line)
        total = sum(layer.parameters() for layer in self.layers)
        text = "\n".join(
            [
                f"{name} (backend {self.backend.name}, {self.dtype})",
                f"Input Shape: {self.layers[0].input_shape}",
                *table,
                f"Total Parameters: {total}",
            ]
        )
        print(text)
        return text

    # -- data ----------------------------------------------------------------------

    def _inputs(self, X: Any, name: str = "X") -> Array:
        """`X` as an array of the model's backend and dtype, checked against the input shape."""
        xp = self.xp
        if isinstance(X, np.ndarray) or not array_api_compat.is_array_api_obj(X):
            host = np.asarray(X)
            if not np.issubdtype(host.dtype, np.number):
                raise TypeError(f"`{name}` must hold numbers, got dtype {host.dtype}")
            array = self.backend.asarray(host, dtype=self.dtype)
        elif self.backend.owns_namespace(array_api_compat.array_namespace(X)):
            array = (
                X if X.dtype == getattr(xp, self.dtype) else xp.astype(X, getattr(xp, self.dtype))
            )
        else:
            raise TypeError(
                f"`{name}` is a {type(X).__module__}.{type(X).__name__}, but the model runs on "
                f"{self.backend.name}: pass a NumPy array or an array of {self.backend.name}"
            )
        expected = self.layers[0].input_shape if self.layers else None
        if expected is not None and tuple(array.shape[1:]) != tuple(expected):
            raise ValueError(
                f"`{name}` must have shape (N, {', '.join(map(str, expected))}) for this model, "
                f"got {tuple(array.shape)}"
            )
        return array

    def _labels(self, y: Any, n_samples: int, name: str = "y") -> Array:
        """Labels (indices or one-hot) as one-hot rows on the model's backend."""
        host = self._to_host(y)
        n_classes = math.prod(self.layers[-1].output_shape())
        if host.shape[0] != n_samples:
            raise ValueError(f"`{name}` has {host.shape[0]} labels but X has {n_samples} samples")
        if host.ndim == 1:
            host = to_categorical(host, n_classes, dtype=self.dtype)
        elif host.ndim != 2 or host.shape[1] != n_classes:
            raise ValueError(
                f"`{name}` must be class indices (N,) or one-hot rows (N, {n_classes}), "
                f"got shape {host.shape}"
            )
        return self.backend.asarray(host, dtype=self.dtype)

    def _to_host(self, a: Any) -> np.ndarray:
        if array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray):
            return self.backend.to_numpy(a)
        return np.asarray(a)

    def _batches(self, n: int, batch_size: int, shuffle: bool) -> Iterator[Array]:
        order = self._batch_rng.permutation(n) if shuffle else np.arange(n)
        # the library's own index dtype (JAX without x64 has no int64)
        index_dtype = self.xp.__array_namespace_info__().default_dtypes()["indexing"]
        for start in range(0, n, batch_size):
            yield self.backend.asarray(order[start : start + batch_size], dtype=index_dtype)

    # -- computing -----------------------------------------------------------------

    def _forward(self, X: Array, training: bool) -> Array:
        for layer in self.layers:
            X = layer.forward_pass(X, training=training)
        return X

    def _backward(self, grad: Array) -> None:
        for layer in reversed(self.layers):
            grad = layer.backward_pass(grad)

    def _update(self) -> None:
        for i, layer in enumerate(self.layers):
            if not layer.trainable:
                continue
            for key, param in layer.params.items():
                layer.params[key] = self.optimizer.update(f"{i}.{key}", param, layer.grads[key])

    def _settle(self) -> None:
        """On a lazy backend, compute what the next step reads, in one go (see persist)."""
        stores = [store for layer in self.layers for store in (layer.params, layer.buffers)]
        holders = [(store, key) for store in stores for key in store]
        arrays = [store[key] for store, key in holders] + self.optimizer.state_arrays()
        settled = self.backend.persist(*arrays)
        for (store, key), array in zip(holders, settled[: len(holders)], strict=True):
            store[key] = array
        self.optimizer.set_state_arrays(list(settled[len(holders) :]))

    def _step(self, X: Array, y: Array) -> tuple[float, float]:
        y_pred = self._forward(X, training=True)
        loss = self.loss_function.loss(y, y_pred)
        accuracy = self.loss_function.acc(y, y_pred)
        self._backward(self.loss_function.gradient(y, y_pred))
        self._update()
        if self.backend.lazy:
            self._settle()
        return float(loss), float(accuracy)

    def train_on_batch(self, X: Any, y: Any) -> tuple[float, float]:
        """One optimisation step on a batch; returns its (loss, accuracy) before the step."""
        self._require_layers()
        X = self._inputs(X)
        return self._step(X, self._labels(y, X.shape[0]))

    def test_on_batch(self, X: Any, y: Any) -> tuple[float, float]:
        """(loss, accuracy) on a batch, in inference mode."""
        self._require_layers()
        X = self._inputs(X)
        y = self._labels(y, X.shape[0])
        y_pred = self._forward(X, training=False)
        return float(self.loss_function.loss(y, y_pred)), float(self.loss_function.acc(y, y_pred))

    def fit(
        self,
        X: Any,
        y: Any,
        n_epochs: int,
        batch_size: int,
        shuffle: bool = True,
        *,
        callback: Callable[[int, dict[str, float]], None] | None = None,
    ) -> dict[str, list[float]]:
        """Train for `n_epochs` passes over (X, y) in batches of `batch_size`.

        Batches are reshuffled every epoch (the ancestor never did) from the model's
        seed. Returns the history: per epoch, the mean training ``loss`` and
        ``accuracy`` over the batches, and ``val_loss``/``val_accuracy`` with
        validation data. `callback(epoch, logs)` runs after each epoch.
        """
        self._require_layers()
        for name, value in (("n_epochs", n_epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        X = self._inputs(X)
        n = X.shape[0]
        y = self._labels(y, n)
        validation = None
        if self.validation_data is not None:
            X_val = self._inputs(self.validation_data[0], "validation X")
            validation = (
                X_val,
                self._labels(self.validation_data[1], X_val.shape[0], "validation y"),
            )
        xp = self.xp
        history: dict[str, list[float]] = {"loss": [], "accuracy": []}
        if validation is not None:
            history |= {"val_loss": [], "val_accuracy": []}
        for epoch in range(n_epochs):
            total_loss = total_accuracy = 0.0
            for index in self._batches(n, batch_size, shuffle):
                count = index.shape[0]
                loss, accuracy = self._step(xp.take(X, index, axis=0), xp.take(y, index, axis=0))
                total_loss += loss * count
                total_accuracy += accuracy * count
            logs = {"loss": total_loss / n, "accuracy": total_accuracy / n}
            if validation is not None:
                logs["val_loss"], logs["val_accuracy"] = self._evaluate(*validation, batch_size)
            for key, value in logs.items():
                history[key].append(value)
            if callback is not None:
                callback(epoch, logs)
        return history

    def evaluate(self, X: Any, y: Any, batch_size: int = 256) -> tuple[float, float]:
        """(loss, accuracy) over all of (X, y), in inference mode."""
        self._require_layers()
        X = self._inputs(X)
        return self._evaluate(X, self._labels(y, X.shape[0]), batch_size)

    def _evaluate(self, X: Array, y: Array, batch_size: int) -> tuple[float, float]:
        n = X.shape[0]
        total_loss = total_accuracy = 0.0
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            y_pred = self._forward(X[start:stop, ...], training=False)
            total_loss += float(self.loss_function.loss(y[start:stop, ...], y_pred)) * (
                stop - start
            )
            total_accuracy += float(self.loss_function.acc(y[start:stop, ...], y_pred)) * (
                stop - start
            )
        return total_loss / n, total_accuracy / n

    def predict(self, X: Any) -> Array:
        """The network's output for `X`, in inference mode, as an array of the backend."""
        self._require_layers()
        return self._forward(self._inputs(X), training=False)

    def _require_layers(self) -> None:
        if not self.layers:
            raise ValueError("the model has no layers yet: add() some first")

    # -- moving and saving -----------------------------------------------------------

    def to(self, backend: str | Backend) -> NeuralNetwork:
        """Move parameters, buffers and optimizer state to `backend`; returns self."""
        target = get(backend)
        state = self.optimizer.state_dict(backend=self.backend)
        for layer in self.layers:
            layer.params = {k: _move(v, self.backend, target) for k, v in layer.params.items()}
            layer.buffers = {k: _move(v, self.backend, target) for k, v in layer.buffers.items()}
            layer.grads = {}
            layer.backend = target
        self.backend = target
        self.optimizer.load_state_dict(state, backend=target)
        return self

    def get_config(self) -> dict[str, Any]:
        """The architecture and settings as JSON-able data (no arrays)."""
        return {
            "format_version": FORMAT_VERSION,
            "dtype": self.dtype,
            "seed": self.seed,
            "optimizer": self.optimizer.get_config(),
            "loss": type(self.loss_function).__name__,
            "layers": [
                {"class": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ],
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write architecture and parameters to a ``.npz`` file, atomically, without pickle.

        The file is written under a temporary name beside `path` and renamed over it,
        so an interrupted save never leaves a half-written model.
        """
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "__config__": np.frombuffer(json.dumps(self.get_config()).encode(), dtype=np.uint8)
        }
        for i, layer in enumerate(self.layers):
            for kind, store in (("params", layer.params), ("buffers", layer.buffers)):
                for key, value in store.items():
                    arrays[f"{i}/{kind}/{key}"] = np.asarray(self.backend.to_numpy(value))
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, allow_pickle=False, **cast("dict[str, Any]", arrays))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], backend: str | Backend | None = None
    ) -> NeuralNetwork:
        """A new model from a file written by `save`, on `backend` (default: current)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise ValueError(
                f"{path}: not a readable xconv model file ({type(exc).__name__}: {exc})"
            ) from None
        try:
            config = json.loads(arrays.pop("__config__").tobytes().decode())
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: no valid xconv model configuration ({exc})") from None
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: format version {config.get('format_version')!r}, "
                f"expected {FORMAT_VERSION}"
            )
        model = cls(
            _optimizers.Optimizer.from_config(config["optimizer"]),
            config["loss"],
            dtype=config["dtype"],
            seed=config["seed"],
            backend=backend,
        )
        for i, spec in enumerate(config["layers"]):
            layer_class = getattr(_layers, spec["class"], None)
            if not (isinstance(layer_class, type) and issubclass(layer_class, _layers.Layer)):
                raise ValueError(f"{path}: unknown layer class {spec['class']!r}")
            arguments = {
                key: _as_tuple(value) if isinstance(value, list) else value
                for key, value in spec["config"].items()
            }
            layer = layer_class(**arguments)
            model.add(layer)
            for kind, store in (("params", layer.params), ("buffers", layer.buffers)):
                for key, current in list(store.items()):
                    saved = arrays.pop(f"{i}/{kind}/{key}", None)
                    if saved is None or saved.shape != tuple(current.shape):
                        raise ValueError(
                            f"{path}: layer {i} ({spec['class']}) {kind[:-1]} {key!r} is "
                            f"{'missing' if saved is None else f'of shape {saved.shape}'}, "
                            f"expected shape {tuple(current.shape)}"
                        )
                    store[key] = model.backend.asarray(saved, dtype=model.dtype)
        if arrays:
            raise ValueError(f"{path}: unexpected arrays {sorted(arrays)}")
        return model


def _move(x: Array, source: Backend, target: Backend) -> Array:
    return target.asarray(source.to_numpy(x))


def _as_tuple(value: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_as_tuple(v) if isinstance(v, list) else v for v in value)
