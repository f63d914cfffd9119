"""NeuralNetwork: a stack of layers trained with a loss and an optimizer, on any backend."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import array_api_compat
import numpy as np

from xconv import layers as _layers
from xconv import losses as _losses
from xconv import optimizers as _optimizers
from xconv._files import (
    FORMAT_VERSION,
    build_layer,
    check_array,
    check_format,
    generator_from_state,
    json_array,
    json_entry,
    read_npz,
    write_atomically,
)
from xconv.backends import Backend, get, get_backend
from xconv.data import to_categorical

__all__ = ["FORMAT_VERSION", "NeuralNetwork", "NonFiniteLossError"]

Array = Any


class NonFiniteLossError(FloatingPointError):
    """`NeuralNetwork.fit` met a NaN or infinite loss at batch `batch` of epoch `epoch`.

    Both count from 0, like `fit`'s callback. The model keeps its state from before
    that batch. A `FloatingPointError`, like NumPy's ``errstate(all="raise")`` errors.
    """

    def __init__(self, loss: float, epoch: int, batch: int) -> None:
        super().__init__(
            f"non-finite loss {loss} at epoch {epoch}, batch {batch} (counting from 0); "
            "lower the learning rate, check the data for NaN or inf, or pass "
            "on_nonfinite='skip'"
        )
        self.loss, self.epoch, self.batch = loss, epoch, batch


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
        if any(layer is added for added in self.layers):
            raise ValueError(f"this {layer.layer_name()} is in the model already; add a new one")
        if self.layers:
            previous = self.layers[-1].output_shape()
            if layer.input_shape is not None and tuple(layer.input_shape) != tuple(previous):
                raise ValueError(
                    f"{layer.layer_name()} was given input_shape {tuple(layer.input_shape)}, "
                    f"but the layer before it ({self.layers[-1].layer_name()}) puts out "
                    f"{tuple(previous)}"
                )
            layer.set_input_shape(previous)
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
            try:
                host = np.asarray(X)
            except ValueError as exc:  # ragged nested lists
                raise ValueError(f"`{name}` must be a rectangular array: {exc}") from None
            if not np.issubdtype(host.dtype, np.number) or host.dtype.kind == "c":
                raise TypeError(f"`{name}` must hold real numbers, got dtype {host.dtype}")
            array = self.backend.asarray(host, dtype=self.dtype)
        elif self.backend.owns_namespace(xp_of := array_api_compat.array_namespace(X)):
            if not xp_of.isdtype(X.dtype, ("integral", "real floating")):
                raise TypeError(f"`{name}` must hold real numbers, got dtype {X.dtype}")
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
        if host.ndim == 0:
            raise ValueError(f"`{name}` must hold one label per sample, got {y!r}")
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

    def _step(
        self, X: Array, y: Array, *, where: tuple[int, int] | None = None, skip: bool = False
    ) -> tuple[float, float] | None:
        """Forward, loss, backward, update; returns (loss, accuracy) before the step.

        Inside `fit` (`where` = (epoch, batch)) a non-finite loss undoes the forward
        pass's buffer updates, then raises `NonFiniteLossError`, or returns None if `skip`.
        """
        buffers = [dict(layer.buffers) for layer in self.layers]
        y_pred = self._forward(X, training=True)
        loss = float(self.loss_function.loss(y, y_pred))
        if where is not None and not math.isfinite(loss):
            # leave the model as it was before this batch
            for layer, kept in zip(self.layers, buffers, strict=True):
                layer.buffers = kept
            if skip:
                return None
            raise NonFiniteLossError(loss, *where)
        accuracy = self.loss_function.acc(y, y_pred)
        self._backward(self.loss_function.gradient(y, y_pred))
        self._update()
        if self.backend.lazy:
            self._settle()
        return loss, float(accuracy)

    def train_on_batch(self, X: Any, y: Any) -> tuple[float, float]:
        """One optimisation step on a batch; returns its (loss, accuracy) before the step."""
        self._require_layers()
        X = self._inputs(X)
        result = self._step(X, self._labels(y, X.shape[0]))
        assert result is not None  # only fit's steps check the loss
        return result

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
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: str | os.PathLike[str] | None = None,
        on_nonfinite: str = "raise",
    ) -> dict[str, list[float]]:
        """Train for `n_epochs` passes over (X, y) in batches of `batch_size`.

        Batches are reshuffled every epoch (the ancestor never did) from the model's
        seed. Returns the history: per epoch, the mean training ``loss`` and
        ``accuracy`` over the batches, and ``val_loss``/``val_accuracy`` with
        validation data. `callback(epoch, logs)` runs after each epoch (epochs count
        from 0).

        Args:
            checkpoint: a file to save the training state to, atomically, after every
                `checkpoint_every` epochs and after the last one (each time once the
                callback has returned): parameters, buffers
                (BatchNormalization statistics), optimizer state, the random generators
                (batch order, dropout masks), the epoch and the history.
            checkpoint_every: epochs between checkpoints, >= 1.
            resume: a checkpoint written by an earlier ``fit(..., checkpoint=...)`` of
                this architecture on the same data and batch size: training continues
                after its epoch (up to `n_epochs`), and ends exactly as if it had never
                been interrupted. The history returned covers every epoch.
            on_nonfinite: what a NaN or infinite batch loss does: ``"raise"`` a
                `NonFiniteLossError` naming the epoch and batch, or ``"skip"`` the
                batch (no update; the history gets ``skipped``, the count per epoch).
                Either way the model keeps its state from before that batch.

        Raises:
            ValueError: bad arguments or data, or an unusable `resume` file; nothing
                is trained then.
            NonFiniteLossError: a non-finite loss with ``on_nonfinite="raise"``.
        """
        self._require_layers()
        n_epochs = _positive_int(n_epochs, "n_epochs")
        batch_size = _positive_int(batch_size, "batch_size")
        checkpoint_every = _positive_int(checkpoint_every, "checkpoint_every")
        if not isinstance(shuffle, bool):
            raise TypeError(f"`shuffle` must be True or False, got {shuffle!r}")
        if callback is not None and not callable(callback):
            raise TypeError(f"`callback` must be callable, got {callback!r}")
        for name, file in (("checkpoint", checkpoint), ("resume", resume)):
            if file is not None and not isinstance(file, str | os.PathLike):
                raise TypeError(f"`{name}` must be a file path, got {file!r}")
        if checkpoint is not None and not Path(checkpoint).parent.is_dir():
            raise ValueError(
                f"`checkpoint` {str(checkpoint)!r} is in a folder that does not exist"
            )
        if on_nonfinite not in ("raise", "skip"):
            raise ValueError(f"`on_nonfinite` must be 'raise' or 'skip', got {on_nonfinite!r}")
        X = self._inputs(X)
        n = X.shape[0]
        if n == 0:
            raise ValueError(
                f"`X` must hold at least one sample to train on, got {tuple(X.shape)}"
            )
        y = self._labels(y, n)
        validation = None
        if self.validation_data is not None:
            X_val = self._inputs(self.validation_data[0], "validation X")
            validation = (
                X_val,
                self._labels(self.validation_data[1], X_val.shape[0], "validation y"),
            )
        run = {"n_samples": int(n), "batch_size": batch_size, "shuffle": shuffle}
        keys = ["loss", "accuracy"]
        keys += ["val_loss", "val_accuracy"] if validation is not None else []
        keys += ["skipped"] if on_nonfinite == "skip" else []
        history: dict[str, list[float]] = {key: [] for key in keys}
        start = 0
        if resume is not None:
            start, history = self._resume(Path(resume), run, keys, n_epochs)
        xp = self.xp
        for epoch in range(start, n_epochs):
            total_loss = total_accuracy = 0.0
            counted = skipped = 0
            for batch, index in enumerate(self._batches(n, batch_size, shuffle)):
                result = self._step(
                    xp.take(X, index, axis=0),
                    xp.take(y, index, axis=0),
                    where=(epoch, batch),
                    skip=on_nonfinite == "skip",
                )
                if result is None:
                    skipped += 1
                    continue
                count = index.shape[0]
                total_loss += result[0] * count
                total_accuracy += result[1] * count
                counted += count
            logs = {
                "loss": total_loss / counted if counted else math.nan,
                "accuracy": total_accuracy / counted if counted else math.nan,
            }
            if validation is not None:
                logs["val_loss"], logs["val_accuracy"] = self._evaluate(*validation, batch_size)
            if on_nonfinite == "skip":
                logs["skipped"] = float(skipped)
            for key, logged in logs.items():
                history[key].append(logged)
            if callback is not None:
                callback(epoch, logs)
            # after the callback, which may change the model (a learning-rate schedule)
            done = epoch + 1
            if checkpoint is not None and (done % checkpoint_every == 0 or done == n_epochs):
                self._save(Path(checkpoint), training=(done, run, history))
        return history

    def evaluate(self, X: Any, y: Any, batch_size: int = 256) -> tuple[float, float]:
        """(loss, accuracy) over all of (X, y), in inference mode."""
        self._require_layers()
        batch_size = _positive_int(batch_size, "batch_size")
        X = self._inputs(X)
        if X.shape[0] == 0:
            raise ValueError(
                f"`X` must hold at least one sample to evaluate, got {tuple(X.shape)}"
            )
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
        """The network's output for `X`, in inference mode, as an array of the backend.

        A Dask array `X` on an eager backend gives a lazy Dask array with X's batch
        chunks (`xconv.distributed.predict`: parameters enter the graph once).
        """
        self._require_layers()
        if array_api_compat.is_dask_array(X) and not self.backend.lazy:
            from xconv.distributed import predict as predict_chunks

            return predict_chunks(self, X)
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

        The file holds the architecture as JSON (``__config__``, with `FORMAT_VERSION`)
        and one array per parameter and buffer. It is written under a temporary name
        beside `path`, flushed to disk and renamed over `path`, so an interrupted save
        leaves the old file (or none), never a half-written one.
        """
        self._require_layers()
        self._save(Path(path))

    def _save(
        self,
        path: Path,
        training: tuple[int, dict[str, Any], dict[str, list[float]]] | None = None,
    ) -> None:
        """`save`, plus with `training` = (epochs done, run, history) a checkpoint's state."""
        arrays: dict[str, np.ndarray] = {"__config__": json_array(self.get_config())}
        for i, layer in enumerate(self.layers):
            for kind, store in (("params", layer.params), ("buffers", layer.buffers)):
                for key, value in store.items():
                    arrays[f"{i}/{kind}/{key}"] = np.asarray(self.backend.to_numpy(value))
        if training is not None:
            epoch, run, history = training
            state = self.optimizer.state_dict(backend=self.backend)
            for slot in self.optimizer.slots:
                for key, value in state[slot].items():
                    arrays[f"optimizer/{slot}/{key}"] = value
            arrays["__training__"] = json_array(
                {
                    "epoch": epoch,
                    "run": run,
                    "history": history,
                    "optimizer_steps": state["step"],
                    "batch_rng": self._batch_rng.bit_generator.state,
                    "layer_rngs": [layer.random_state() for layer in self.layers],
                }
            )
        write_atomically(path, arrays)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], backend: str | Backend | None = None
    ) -> NeuralNetwork:
        """A new model from a file written by `save` (or a checkpoint), on `backend`.

        Raises:
            ValueError: the file is not a complete, uncorrupted xconv model file of this
                format version (truncated, corrupted, holding pickled objects, missing or
                extra arrays, wrong shapes or dtypes), naming the file and the problem.
            FileNotFoundError: no file at `path`.
        """
        target = get(backend) if backend is not None else get_backend()
        path = Path(path)
        arrays = read_npz(path)
        config = json_entry(arrays, "__config__", path)
        check_format(config, path)
        try:
            model = cls(
                _optimizers.Optimizer.from_config(config["optimizer"]),
                config["loss"],
                dtype=config["dtype"],
                seed=config["seed"],
                backend=target,
            )
            for spec in config["layers"]:
                model.add(build_layer(spec))
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: invalid architecture in the file: {exc}") from None
        stores = model._checked_stores(arrays, path)
        if "__training__" in arrays:  # a checkpoint: its training state is for fit(resume=)
            arrays = {k: v for k, v in arrays.items() if not k.startswith("optimizer/")}
            del arrays["__training__"]
        if arrays:
            raise ValueError(f"{path}: unexpected arrays {sorted(arrays)}")
        for layer, (params, buffers) in zip(model.layers, stores, strict=True):
            layer.params, layer.buffers = params, buffers
        return model

    def _checked_stores(
        self, arrays: dict[str, np.ndarray], path: Path
    ) -> list[tuple[dict[str, Array], dict[str, Array]]]:
        """New params and buffers for each layer from `arrays` (consumed), all checked first."""
        dtype = np.dtype(self.dtype)
        found: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
        for i, layer in enumerate(self.layers):
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
        move = self.backend.asarray
        return [
            ({k: move(v) for k, v in params.items()}, {k: move(v) for k, v in buffers.items()})
            for params, buffers in found
        ]

    def _resume(
        self, path: Path, run: dict[str, Any], keys: list[str], n_epochs: int
    ) -> tuple[int, dict[str, list[float]]]:
        """Restore a checkpoint into this model; returns (epochs done, history so far).

        Everything is checked before anything changes, so a bad file leaves the model as
        it was.
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
        # the same architecture, loss and optimizer (the learning rate may have changed)
        mine = self.get_config()
        for key in ("dtype", "loss", "layers"):
            if config.get(key) != mine[key]:
                raise ValueError(
                    f"{path}: the checkpoint's {key} {config.get(key)!r} differs from this "
                    f"model's {mine[key]!r}"
                )
        saved_optimizer = dict(config.get("optimizer") or {})
        learning_rate = saved_optimizer.pop("learning_rate", None)
        current_optimizer = {k: v for k, v in mine["optimizer"].items() if k != "learning_rate"}
        if saved_optimizer != current_optimizer or not isinstance(learning_rate, int | float):
            raise ValueError(
                f"{path}: the checkpoint's optimizer {config.get('optimizer')!r} differs from "
                f"this model's {mine['optimizer']!r}"
            )
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
        if not isinstance(layer_states, list) or len(layer_states) != len(self.layers):
            raise ValueError(f"{path}: the checkpoint has no generator state for each layer")
        stores = self._checked_stores(arrays, path)
        optimizer_state = self._checked_optimizer_state(arrays, steps, path)
        if arrays:
            raise ValueError(f"{path}: unexpected arrays {sorted(arrays)}")
        batch_rng = generator_from_state(batch_state, path)
        # now change the model: the optimizer first, as it checks its state itself
        try:
            self.optimizer.load_state_dict(optimizer_state, backend=self.backend)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: invalid optimizer state: {exc}") from None
        old_states = [layer.random_state() for layer in self.layers]
        try:
            for layer, state in zip(self.layers, layer_states, strict=True):
                layer.set_random_state(state)
        except (TypeError, ValueError) as exc:
            for layer, state in zip(self.layers, old_states, strict=True):
                layer.set_random_state(state)
            raise ValueError(f"{path}: invalid generator state: {exc}") from None
        for layer, (params, buffers) in zip(self.layers, stores, strict=True):
            layer.params, layer.buffers, layer.grads = params, buffers, {}
        self.optimizer.learning_rate = float(learning_rate)
        self._batch_rng = batch_rng
        return epoch, {key: [float(v) for v in values] for key, values in history.items()}

    def _checked_optimizer_state(
        self, arrays: dict[str, np.ndarray], steps: Any, path: Path
    ) -> dict[str, dict[str, Any]]:
        """The optimizer's `state_dict` from a checkpoint's arrays (consumed), checked."""
        shapes = {
            f"{i}.{key}": tuple(param.shape)
            for i, layer in enumerate(self.layers)
            if layer.trainable
            for key, param in layer.params.items()
        }
        if not isinstance(steps, dict) or not set(steps) <= set(shapes):
            raise ValueError(
                f"{path}: the optimizer state names parameters {steps!r}; this model has "
                f"{sorted(shapes)}"
            )
        state: dict[str, dict[str, Any]] = {"step": dict(steps)}
        for slot in self.optimizer.slots:
            state[slot] = {}
            for key in steps:
                saved = arrays.pop(f"optimizer/{slot}/{key}", None)
                what = f"optimizer state {slot!r} of {key!r}"
                check_array(saved, what, shapes[key], np.dtype(self.dtype), path)
                state[slot][key] = saved
        return state


def _positive_int(value: object, name: str) -> int:
    """`value` as an int >= 1 (NumPy integers too), else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return int(value)


def _move(x: Array, source: Backend, target: Backend) -> Array:
    return target.asarray(source.to_numpy(x))
